"""permessage-deflate against real peers: the ``websockets`` package and npm ``ws``.

Both compression modes, both directions (our Upgrader against their client,
our Dialer against their server), with context takeover and small window
bits configured on the peer, and random messages (text and binary, empty to
~200 KB, compressible and not) sent whole and in compressed fragmented
streams.  Each test also checks that compression was really used on the wire
in both directions, not merely negotiated.

The npm ``ws`` peer is ``tests/peers/node/peer.js``; install it with
``(cd tests/peers/node && npm ci)``.  Without node or the package the ws
tests skip, or fail under ``CI=true``.
"""

from __future__ import annotations

import inspect
import json
import os
import random
import socket
import subprocess
import threading
import time
import zlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest

from gorillaws.client import Dialer
from gorillaws.conn import Conn
from gorillaws.deflate import (
    COMPRESSION_CONTEXT_TAKEOVER as CT,
    COMPRESSION_NO_CONTEXT_TAKEOVER as NCT,
    PerMessageDeflate,
)
from gorillaws.exceptions import CloseError
from gorillaws.frames import BINARY_MESSAGE, TEXT_MESSAGE
from gorillaws.handshake import parse_extensions
from gorillaws.server import Upgrader

from helpers import AcceptLoop, closing_factory
from peers import require_peer

TIMEOUT = 20.0
NODE_DIR = Path(__file__).parent / "peers" / "node"
MODES = {"ct": CT, "nct": NCT}

Message = Tuple[int, bytes]


# ---------------------------------------------------------------------------
# Messages and checks


def seed(*parts: object) -> int:
    """A seed that is the same in every run (unlike hash() of a str)."""
    return zlib.crc32(repr(parts).encode())


def ext_set(value: str) -> List[Tuple[str, frozenset]]:  # type: ignore[type-arg]
    """A Sec-WebSocket-Extensions value with each element's parameter order ignored."""
    return [(name, frozenset(params)) for name, params in parse_extensions({"Sec-WebSocket-Extensions": value})]


def agreed(
    server_no_context_takeover: bool = False,
    client_no_context_takeover: bool = False,
    server_max_window_bits: Optional[int] = None,
    client_max_window_bits: Optional[int] = None,
) -> Dict[str, str]:
    """The Sec-WebSocket-Extensions answer each of our modes must agree ("ct", "nct").

    Given what the peer's settings add; parameters in the order gorillaws
    writes them, and "nct" always carries both ``*_no_context_takeover``.
    """

    def header(server_nct: bool, client_nct: bool) -> str:
        parts = ["permessage-deflate"]
        parts += ["server_no_context_takeover"] if server_nct else []
        parts += ["client_no_context_takeover"] if client_nct else []
        parts += [f"server_max_window_bits={server_max_window_bits}"] if server_max_window_bits else []
        parts += [f"client_max_window_bits={client_max_window_bits}"] if client_max_window_bits else []
        return "; ".join(parts)

    return {"ct": header(server_no_context_takeover, client_no_context_takeover), "nct": header(True, True)}


def random_messages(seed: int, count: int = 24) -> List[Message]:
    """Random text and binary messages: empty, tiny, around the thresholds, up to ~200 KB."""
    rnd = random.Random(seed)
    words = [rnd.choice(["alpha", "beta", "gamma", "delta", "ünïcødé", "→", "😀", '{"k":1}']) for _ in range(50)]
    out: List[Message] = [(TEXT_MESSAGE, b""), (BINARY_MESSAGE, b"")]
    for _ in range(count):
        size = rnd.choice([1, 50, 127, 128, 600, 3000, 20000, 70000, 200000])
        kind = rnd.random()
        if kind < 0.4:
            text = " ".join(rnd.choice(words) for _ in range(size // 6 + 1))[:size]
            out.append((TEXT_MESSAGE, text.encode("utf-8")))
        elif kind < 0.7:
            out.append((BINARY_MESSAGE, rnd.randbytes(size)))
        else:
            chunk = rnd.randbytes(rnd.randrange(1, 300))
            out.append((BINARY_MESSAGE, (chunk * (size // len(chunk) + 1))[:size]))
    # the same message again: context takeover has something to take over
    out.append(out[-1])
    out.append(out[-1])
    return out


class CodecCounter:
    """Counts messages compressed and decompressed by a Conn's codec."""

    def __init__(self, codec: PerMessageDeflate) -> None:
        self.compressed = 0
        self.decompressed = 0
        orig_message = codec.compress_message
        orig_start = codec.start_message
        orig_dec = codec.start_decompress

        inside = []  # compress_message may call start_message itself

        def compress_message(data: Any) -> bytes:
            self.compressed += 1
            inside.append(1)
            try:
                return orig_message(data)
            finally:
                inside.pop()

        def start_message() -> None:
            if not inside:
                self.compressed += 1
            orig_start()

        def start_decompress() -> None:
            self.decompressed += 1
            orig_dec()

        codec.compress_message = compress_message  # type: ignore[method-assign]
        codec.start_message = start_message  # type: ignore[method-assign]
        codec.start_decompress = start_decompress  # type: ignore[method-assign]


def prepare(conn: Conn, expect_codec: bool = True) -> Optional[CodecCounter]:
    conn.set_read_deadline(time.monotonic() + TIMEOUT)
    conn.set_write_deadline(time.monotonic() + TIMEOUT)
    codec = conn.compression
    if not expect_codec:
        assert codec is None
        return None
    assert isinstance(codec, PerMessageDeflate)
    codec.threshold = 0  # compress everything, even the empty message
    return CodecCounter(codec)


def send(conn: Conn, mtype: int, data: bytes, fragment: int) -> None:
    """Send whole (fragment 0) or as a stream of ``fragment``-byte writes."""
    if not fragment:
        conn.write_message(mtype, data)
        return
    w = conn.next_writer(mtype)
    for i in range(0, len(data), fragment):
        w.write(data[i : i + fragment])
    w.close()


def conn_echo(conn: Conn, fragment: int = 0) -> None:
    """Echo every message until the peer closes."""
    try:
        while True:
            mtype, data = conn.read_message()
            send(conn, mtype, data, fragment)
    except CloseError:
        pass
    finally:
        conn.close()


def exchange(conn: Conn, messages: List[Message], fragment: int) -> None:
    """Send each message to an echo peer and check what comes back."""
    for i, (mtype, data) in enumerate(messages):
        send(conn, mtype, data, fragment)
        got_type, got = conn.read_message()
        assert (got_type, len(got)) == (mtype, len(data)), i
        assert got == data, i


def exchange_compressed(conn: Conn, seed_value: int, fragment: int) -> None:
    """:func:`exchange` random messages, each compressed by us and by the peer."""
    counter = prepare(conn)
    assert counter is not None
    messages = random_messages(seed_value)
    exchange(conn, messages, fragment)
    assert counter.compressed == len(messages) and counter.decompressed == len(messages)


# ---------------------------------------------------------------------------
# Our server, our client


class OurServer:
    """An Upgrader on a 127.0.0.1 socket, echoing on every connection it accepts."""

    def __init__(self, mode: int, fragment: int = 0, write_buffer_size: int = 0) -> None:
        self.upgrader = Upgrader(compression_mode=mode, handshake_timeout=TIMEOUT, write_buffer_size=write_buffer_size)
        self.fragment = fragment
        self.counters: List[Optional[CodecCounter]] = []
        self.loop = AcceptLoop(self._serve)
        self.url = "ws://127.0.0.1:%d/echo" % self.loop.port

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        conn = self.upgrader.upgrade(sock)
        self.counters.append(prepare(conn, conn.compression is not None))
        conn_echo(conn, self.fragment)

    def close(self) -> None:
        """Stop, join every connection's thread, re-raise the first error a connection met."""
        self.loop.close()
        assert not any(t.is_alive() for t in self.loop.threads)
        if self.loop.errors:
            raise self.loop.errors[0]


@pytest.fixture
def our_server() -> Iterator[Callable[..., OurServer]]:
    with closing_factory(OurServer) as factory:
        yield factory


def dial(url: str, mode: int, **kw: Any) -> Tuple[Conn, Any]:
    return Dialer(compression_mode=mode, handshake_timeout=TIMEOUT, **kw).dial(url)


# ---------------------------------------------------------------------------
# The websockets package

ws_deflate = pytest.importorskip("websockets.extensions.permessage_deflate")
from websockets.sync.client import connect as ws_connect  # noqa: E402
from websockets.sync.server import serve as ws_serve  # noqa: E402

# websockets >= 17.1 wants legacy=True when connect() is not a context manager;
# the releases for Python 3.9 and 3.10 (15.x, 16.x) do not take the flag.
WS_DIRECT: Dict[str, Any] = {"legacy": True} if "legacy" in inspect.signature(ws_connect).parameters else {}

# (peer settings, header the negotiation must produce for (ct, nct))
WS_CLIENT_CASES: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]] = {
    "default": ({}, agreed()),
    "bits9-10": (
        {"server_max_window_bits": 9, "client_max_window_bits": 10},
        agreed(server_max_window_bits=9, client_max_window_bits=10),
    ),
    # (websockets itself refuses to compress with 8 bits, as zlib can't)
    "bits8-no-client-takeover": (
        {"server_max_window_bits": 8, "client_no_context_takeover": True, "client_max_window_bits": 9},
        agreed(client_no_context_takeover=True, server_max_window_bits=8, client_max_window_bits=9),
    ),
    "server-no-takeover": ({"server_no_context_takeover": True}, agreed(server_no_context_takeover=True)),
}


@pytest.mark.slow  # a websockets client per case
@pytest.mark.parametrize("case", sorted(WS_CLIENT_CASES))
@pytest.mark.parametrize("mode_name", sorted(MODES))
@pytest.mark.parametrize("fragment", [0, 1000])
def test_our_server_websockets_client(
    our_server: Callable[..., OurServer], case: str, mode_name: str, fragment: int
) -> None:
    settings, expected = WS_CLIENT_CASES[case]
    server = our_server(MODES[mode_name], fragment=fragment, write_buffer_size=700)
    factory = ws_deflate.ClientPerMessageDeflateFactory(
        compress_settings={"memLevel": 5}, **{"client_max_window_bits": True, **settings}
    )
    messages = random_messages(seed(case, mode_name, fragment))
    with ws_connect(
        server.url, extensions=[factory], compression=None, max_size=None, open_timeout=TIMEOUT, close_timeout=5
    ) as ws:
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Extensions"] == expected[mode_name]
        for i, (mtype, data) in enumerate(messages):
            payload: Any = data.decode("utf-8") if mtype == TEXT_MESSAGE else data
            if fragment and len(data) > fragment:
                pieces = [payload[j : j + fragment] for j in range(0, len(payload), fragment)]
                ws.send(iter(pieces))  # a fragmented, compressed stream
            else:
                ws.send(payload)
            got = ws.recv(timeout=TIMEOUT)
            assert type(got) is type(payload) and got == payload, i
    server.close()
    (counter,) = server.counters
    assert counter is not None
    assert counter.compressed == len(messages) and counter.decompressed == len(messages)


WS_SERVER_CASES: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]] = {
    "default": ({}, agreed()),
    "bits10-9": (
        {"server_max_window_bits": 10, "client_max_window_bits": 9},
        agreed(server_max_window_bits=10, client_max_window_bits=9),
    ),
    "server-forces-no-takeover": (
        {"server_no_context_takeover": True, "client_no_context_takeover": True},
        agreed(server_no_context_takeover=True, client_no_context_takeover=True),
    ),
}


@pytest.mark.slow  # a websockets server per case
@pytest.mark.parametrize("case", sorted(WS_SERVER_CASES))
@pytest.mark.parametrize("mode_name", sorted(MODES))
@pytest.mark.parametrize("fragment", [0, 1000])
def test_our_client_websockets_server(case: str, mode_name: str, fragment: int) -> None:
    settings, expected = WS_SERVER_CASES[case]
    factory = ws_deflate.ServerPerMessageDeflateFactory(compress_settings={"memLevel": 5}, **settings)

    def handler(ws: Any) -> None:
        for msg in ws:
            if fragment and len(msg) > fragment:
                ws.send(iter([msg[j : j + fragment] for j in range(0, len(msg), fragment)]))
            else:
                ws.send(msg)

    with ws_serve(handler, "127.0.0.1", 0, extensions=[factory], compression=None, max_size=None) as server:
        t = threading.Thread(target=server.serve_forever, daemon=True)
        t.start()
        try:
            port = server.socket.getsockname()[1]
            conn, resp = dial("ws://127.0.0.1:%d/" % port, MODES[mode_name], write_buffer_size=700)
            try:
                assert resp.headers["Sec-WebSocket-Extensions"] == expected[mode_name]
                exchange_compressed(conn, seed(case, mode_name, fragment, 1), fragment)
            finally:
                conn.close()
        finally:
            server.shutdown()
            t.join(TIMEOUT)


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_prepared_messages_to_websockets_clients(mode_name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """One PreparedMessage sent to clients with different windows, both modes.

    Without context takeover each message is compressed once per distinct
    window size and shared; with it, each goes through the connection's own
    compressor.
    """
    import gorillaws.deflate
    from gorillaws.prepared import PreparedMessage

    standalone: List[int] = []
    orig = gorillaws.deflate.compress_standalone

    def counting(data: Any, level: int = 1, window_bits: int = 15) -> bytes:
        standalone.append(window_bits)
        return orig(data, level, window_bits)

    monkeypatch.setattr(gorillaws.deflate, "compress_standalone", counting)

    upgrader = Upgrader(compression_mode=MODES[mode_name], handshake_timeout=TIMEOUT)
    rnd = random.Random(7)
    texts = [" ".join(rnd.choice(["spam", "eggs", "ham", "🍳"]) for _ in range(rnd.randrange(1, 3000))) for _ in range(6)]
    prepared = [PreparedMessage(TEXT_MESSAGE, t) for t in texts]
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    lsock.settimeout(TIMEOUT)
    url = "ws://127.0.0.1:%d/" % lsock.getsockname()[1]
    clients, conns = [], []
    counters_: List[Optional[CodecCounter]] = []
    try:
        for bits in (8, 9, 15, None):
            factory = ws_deflate.ClientPerMessageDeflateFactory(server_max_window_bits=bits)
            holder: List[Any] = []
            t = threading.Thread(
                target=lambda: holder.append(
                    ws_connect(url, extensions=[factory], compression=None, open_timeout=TIMEOUT, **WS_DIRECT)
                )
            )
            t.start()
            sock, _ = lsock.accept()
            sock.settimeout(None)
            conn = upgrader.upgrade(sock)
            t.join(TIMEOUT)
            clients.append(holder[0])
            conns.append(conn)
            counters_.append(prepare(conn))
            assert conn.compression.out_window_bits == (bits or 15)
        for _ in range(2):  # twice: with context takeover, the window now holds history
            for pm, text in zip(prepared, texts):
                for conn in conns:
                    conn.write_prepared_message(pm)
                for ws in clients:
                    assert ws.recv(timeout=TIMEOUT) == text
        counters = [c for c in counters_ if c is not None]
        if MODES[mode_name] == NCT:
            assert sorted(standalone) == sorted([8, 9, 15] * len(texts))
            assert all(c.compressed == 0 for c in counters)
        else:
            assert standalone == []
            assert all(c.compressed == 2 * len(texts) for c in counters)
    finally:
        lsock.close()
        for conn in conns:  # first: our side drains until the peer's close frame
            conn.close()
        for ws in clients:
            ws.close()


def test_websockets_client_without_deflate(our_server: Callable[..., OurServer]) -> None:
    server = our_server(CT)
    with ws_connect(server.url, compression=None, open_timeout=TIMEOUT) as ws:
        assert ws.response is not None and "Sec-WebSocket-Extensions" not in ws.response.headers
        ws.send("plain")
        assert ws.recv(timeout=TIMEOUT) == "plain"
    server.close()
    assert server.counters == [None]


# ---------------------------------------------------------------------------
# npm ws


def _node_check() -> Optional[str]:
    if not (NODE_DIR / "node_modules" / "ws" / "package.json").exists():
        return "tests/peers/node/node_modules/ws missing"
    return None


class NodePeer:
    """``node peer.js`` as a child process; ends when its stdin is closed."""

    def __init__(self, args: List[str]) -> None:
        node = require_peer("node", "node", "apt-get install nodejs")
        require_peer("npm ws", _node_check, "cd tests/peers/node && npm ci")
        self.proc = subprocess.Popen(
            [node, str(NODE_DIR / "peer.js")] + args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=str(NODE_DIR),
        )
        self.lines: List[str] = []
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._cond:
                self.lines.append(line.strip())
                self._cond.notify_all()
        with self._cond:
            self.lines.append("EOF")
            self._cond.notify_all()

    def wait_line(self, prefix: str) -> str:
        end = time.monotonic() + TIMEOUT
        with self._cond:
            while True:
                for line in self.lines:
                    if line.startswith(prefix):
                        return line[len(prefix) :].strip()
                    if line == "EOF" or line.startswith("ERROR"):
                        raise AssertionError("node peer: %s" % self.lines)
                left = end - time.monotonic()
                assert left > 0, "node peer printed no %r: %s" % (prefix, self.lines)
                self._cond.wait(left)

    def close(self) -> None:
        try:
            assert self.proc.stdin is not None
            self.proc.stdin.close()
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self._reader.join(5)
        assert not any(line.startswith("ERROR") for line in self.lines), self.lines


@pytest.fixture
def node_peer() -> Iterator[Callable[[List[str]], NodePeer]]:
    with closing_factory(NodePeer) as factory:
        yield factory


# ws option objects (perMessageDeflate) and the header each mode must produce
NODE_SERVER_CASES: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]] = {
    "default": ({}, agreed()),
    "bits9": (
        {"serverMaxWindowBits": 9, "clientMaxWindowBits": 9},
        agreed(server_max_window_bits=9, client_max_window_bits=9),
    ),
    "no-takeover": (
        {"serverNoContextTakeover": True, "clientNoContextTakeover": True},
        agreed(server_no_context_takeover=True, client_no_context_takeover=True),
    ),
}


@pytest.mark.slow  # a node process per case
@pytest.mark.peer
@pytest.mark.parametrize("case", sorted(NODE_SERVER_CASES))
@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_our_client_node_ws_server(node_peer: Callable[[List[str]], NodePeer], case: str, mode_name: str) -> None:
    settings, expected = NODE_SERVER_CASES[case]
    fragment = 1000 if case != "default" else 0
    peer = node_peer(["server", json.dumps({"deflate": {"threshold": 0, **settings}, "fragment": fragment})])
    port = int(peer.wait_line("PORT "))
    conn, resp = dial("ws://127.0.0.1:%d/" % port, MODES[mode_name], write_buffer_size=700)
    try:
        assert ext_set(resp.headers["Sec-WebSocket-Extensions"]) == ext_set(expected[mode_name])
        assert ext_set(peer.wait_line("EXT ")) == ext_set(expected[mode_name])
        exchange_compressed(conn, seed(case, mode_name, 2), 1000 - fragment)
    finally:
        conn.close()


NODE_CLIENT_CASES: Dict[str, Tuple[Dict[str, Any], Dict[str, str]]] = {
    "default": ({}, agreed()),
    "bits10-9": (
        {"serverMaxWindowBits": 10, "clientMaxWindowBits": 9},
        agreed(server_max_window_bits=10, client_max_window_bits=9),
    ),
    "client-no-takeover": ({"clientNoContextTakeover": True}, agreed(client_no_context_takeover=True)),
}


@pytest.mark.slow  # a node process per case
@pytest.mark.peer
@pytest.mark.parametrize("case", sorted(NODE_CLIENT_CASES))
@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_our_server_node_ws_client(node_peer: Callable[[List[str]], NodePeer], case: str, mode_name: str) -> None:
    settings, expected = NODE_CLIENT_CASES[case]
    fragment = 1000 if case != "default" else 0
    # The node client echoes; our server must drive the conversation, so the
    # roles of the echo are reversed here: our server sends, node echoes.
    upgrader = Upgrader(compression_mode=MODES[mode_name], handshake_timeout=TIMEOUT, write_buffer_size=700)
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(TIMEOUT)
    try:
        url = "ws://127.0.0.1:%d/" % lsock.getsockname()[1]
        peer = node_peer(["client", url, json.dumps({"deflate": {"threshold": 0, **settings}, "fragment": fragment})])
        sock, _ = lsock.accept()
    finally:
        lsock.close()
    sock.settimeout(None)
    conn = upgrader.upgrade(sock)
    try:
        assert ext_set(peer.wait_line("EXT ")) == ext_set(expected[mode_name])
        exchange_compressed(conn, seed(case, mode_name, 3), 1000 - fragment)
    finally:
        conn.close()
    assert peer.wait_line("CLOSED ") == "1000"


# ---------------------------------------------------------------------------
# The Conn's compression path, frame by frame (no third-party peer)

from conftest import RawPeer, make_conn_pair, run_in_thread  # noqa: E402

from gorillaws.deflate import DeflateParams  # noqa: E402
from gorillaws.exceptions import ErrReadLimit, ProtocolError  # noqa: E402


def codec_pair(mode: int, bits: Optional[int] = None) -> Tuple[PerMessageDeflate, PerMessageDeflate]:
    nct = mode == NCT
    params = DeflateParams(nct, nct, bits, bits)
    return PerMessageDeflate(params, True, mode), PerMessageDeflate(params, False, mode)


def fail_and_get_close(conn: Conn, peer: RawPeer, exc_type: type) -> Tuple[int, Any]:
    closing = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(exc_type) as ei:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        conn.read_message()
    return closing.join()[0], ei.value


@pytest.mark.parametrize("mode_name", sorted(MODES))
def test_conn_refuses_decompression_bomb(raw_peer: Callable[..., Tuple[Conn, RawPeer]], mode_name: str) -> None:
    import gc
    import tracemalloc

    # 100 MiB of zeros in one ~100 KB frame; the read limit is 1 MiB.
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    bomb = b"".join(c.compress(zeros) for _ in range(100)) + c.flush(zlib.Z_SYNC_FLUSH)[:-4]
    conn, peer = raw_peer(server=True, compression=codec_pair(MODES[mode_name])[0])
    conn.set_read_limit(1 << 20)
    sender = run_in_thread(lambda: peer.send_frame(BINARY_MESSAGE, bomb, rsv=0x40))
    gc.collect()
    tracemalloc.start()
    try:
        code, exc = fail_and_get_close(conn, peer, ErrReadLimit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    sender.join()
    assert code == 1009 and exc.code == 1009
    assert peak < 8 << 20, peak  # the limit and some buffers, never 100 MiB


def test_conn_read_limit_counts_decompressed_bytes(raw_peer: Callable[..., Tuple[Conn, RawPeer]]) -> None:
    server_codec, client_codec = codec_pair(CT)
    conn, peer = raw_peer(server=True, compression=server_codec)
    conn.set_read_limit(5000)
    # 5000 bytes compress to a few dozen: accepted at exactly the limit ...
    peer.send_frame(BINARY_MESSAGE, client_codec.compress_message(b"a" * 5000), rsv=0x40)
    conn.set_read_deadline(time.monotonic() + TIMEOUT)
    assert conn.read_message() == (BINARY_MESSAGE, b"a" * 5000)
    # ... and one more byte, split over two frames, is too big.
    payload = client_codec.compress_message(b"b" * 5001)
    peer.send_frame(BINARY_MESSAGE, payload[:5], rsv=0x40, fin=False)
    peer.send_frame(0, payload[5:])
    code, _ = fail_and_get_close(conn, peer, ErrReadLimit)
    assert code == 1009


@pytest.mark.parametrize(
    "frames_kind",
    ["rsv1-continuation", "rsv1-ping", "rsv1-close", "rsv2", "corrupt"],
)
def test_conn_compressed_protocol_errors(raw_peer: Callable[..., Tuple[Conn, RawPeer]], frames_kind: str) -> None:
    server_codec, client_codec = codec_pair(CT)
    conn, peer = raw_peer(server=True, compression=server_codec)
    expected = 1002
    if frames_kind == "rsv1-continuation":
        payload = client_codec.compress_message(b"hello hello hello")
        peer.send_frame(TEXT_MESSAGE, payload[:3], rsv=0x40, fin=False)
        peer.send_frame(0, payload[3:], rsv=0x40)
    elif frames_kind == "rsv1-ping":
        peer.send_frame(9, b"\x00", rsv=0x40)
    elif frames_kind == "rsv1-close":
        peer.send_frame(8, b"\x03\xe8", rsv=0x40)
    elif frames_kind == "rsv2":
        peer.send_frame(TEXT_MESSAGE, client_codec.compress_message(b"x" * 100), rsv=0x20)
    else:
        peer.send_frame(BINARY_MESSAGE, b"\xff\xff\xff\xff", rsv=0x40)
        expected = 1007
    code, exc = fail_and_get_close(conn, peer, ProtocolError)
    assert code == expected and exc.code == expected


def test_conn_rsv1_without_negotiation(raw_peer: Callable[..., Tuple[Conn, RawPeer]]) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, bytes.fromhex("f248cdc9c90700"), rsv=0x40)
    code, _ = fail_and_get_close(conn, peer, ProtocolError)
    assert code == 1002


@pytest.mark.slow  # about 5 s per case
@pytest.mark.parametrize("mode_name", sorted(MODES))
@pytest.mark.parametrize("bits", [None, 9])
def test_conn_pair_random_fragmented_round_trips(mode_name: str, bits: Optional[int]) -> None:
    """Random messages both ways through compressed fragmented streams, read whole and in pieces."""
    server_codec, client_codec = codec_pair(MODES[mode_name], bits)
    server_codec.threshold = client_codec.threshold = 0
    server, client = make_conn_pair(
        server_kwargs={"compression": server_codec, "write_buffer_size": 512},
        client_kwargs={"compression": client_codec, "write_buffer_size": 777},
    )
    rnd = random.Random(seed(mode_name, bits))
    messages = random_messages(seed(mode_name, bits, "conn"), count=16)
    try:
        for conn in (server, client):
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.set_write_deadline(time.monotonic() + TIMEOUT)
        for sender, receiver in ((server, client), (client, server), (server, client)):
            for mtype, data in messages:
                fragment = rnd.choice([0, 1, 300, 5000])
                w = run_in_thread(lambda: send(sender, mtype, data, fragment))
                if rnd.random() < 0.5:
                    assert receiver.read_message() == (mtype, data)
                else:
                    got_type, reader = receiver.next_reader()
                    parts = []
                    while True:
                        piece = reader.read(rnd.choice([1, 100, 4096, 65536]))
                        if not piece:
                            break
                        parts.append(piece)
                    assert (got_type, b"".join(parts)) == (mtype, data)
                w.join()
    finally:
        close = run_in_thread(client.close)
        server.close()
        close.join()
