"""Every resource limit, enforced end to end through a real opening handshake.

* message size (``set_read_limit``, default 1 MiB): one big frame, a frame
  that only *announces* a huge length, many small fragments, on both sides;
  the reader raises :class:`ErrReadLimit` and the peer sees close 1009;
* decompressed size: a compression bomb (tens of MiB of zeros squeezed into a
  few KiB) over a negotiated permessage-deflate connection, from the
  ``websockets`` client and from a hand-written client; never inflated past
  the limit;
* handshake head size: a request head over ``MAX_HEAD_SIZE`` (431), a header
  line over ``MAX_LINE``, more than ``MAX_HEADERS`` headers (431) on the
  server; a response head over ``MAX_HEAD_SIZE`` or with too many headers on
  the client (:class:`ErrBadHandshake`);
* handshake time: a slowloris client trickling its request is cut at the
  Upgrader's ``handshake_timeout``; a server trickling its response head is
  cut at the Dialer's ``handshake_timeout``.

Every socket has a timeout and every thread is joined with one: nothing here
can hang.
"""

from __future__ import annotations

import socket
import threading
import time
import tracemalloc
import zlib
from typing import Any, Callable, Iterator, List, Optional

import pytest
from websockets.sync.client import connect as ws_connect

from conftest import build_frame
from helpers import AcceptLoop, closing_factory

from gorillaws import (
    BINARY_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    DeadlineExceeded,
    Dialer,
    ErrBadHandshake,
    ErrReadLimit,
    HandshakeError,
    Upgrader,
)
from gorillaws.conn import DEFAULT_READ_LIMIT
from gorillaws.handshake import accept_key, generate_key
from gorillaws.http11 import MAX_HEAD_SIZE, MAX_HEADERS, MAX_LINE, find_head_end, parse_response_head

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 10.0
MASK = b"\x11\x22\x33\x44"


# ---------------------------------------------------------------------------
# A server that upgrades accepted sockets itself
# ---------------------------------------------------------------------------


class Server:
    """Accepts on 127.0.0.1; each socket goes through ``upgrader.upgrade`` then ``app``.

    ``results`` collects, per connection, what ``app`` returned or the
    exception it (or the upgrade) raised, with the time the upgrade ended.
    """

    def __init__(self, app: Callable[[Conn], Any], upgrader: Optional[Upgrader] = None) -> None:
        self.app = app
        self.upgrader = upgrader or Upgrader(handshake_timeout=TIMEOUT)
        self.results: List[Any] = []
        self.upgrade_ended: List[float] = []
        self.done = threading.Event()
        self._conns: List[Conn] = []
        self._loop = AcceptLoop(self._serve)
        self.port = self._loop.port

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(None)  # blocking, as a server's accepted socket: the Upgrader sets the deadlines
        try:
            try:
                conn = self.upgrader.upgrade(sock)
            finally:
                self.upgrade_ended.append(time.monotonic())
            self._conns.append(conn)
            try:
                self.results.append(self.app(conn))
            finally:
                conn.close_now()
        except BaseException as e:
            self.results.append(e)
        finally:
            self.done.set()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/"

    def result(self) -> Any:
        assert self.done.wait(TIMEOUT), "server did not finish"
        return self.results[0]

    def close(self) -> None:
        for c in self._conns:
            c.close_now()
        self._loop.close()
        assert not any(t.is_alive() for t in self._loop.threads)


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    with closing_factory(Server) as factory:
        yield factory


def read_one(limit: Optional[int] = None) -> Callable[[Conn], Any]:
    """An app that reads one message (under ``limit``) and returns it or the error."""

    def app(conn: Conn) -> Any:
        if limit is not None:
            conn.set_read_limit(limit)
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        try:
            return conn.read_message()
        except ErrReadLimit as e:
            return e

    return app


class RawClient:
    """A hand-written WebSocket client on a plain socket (for frames no library sends)."""

    def __init__(self, port: int, extra: str = "") -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT)
        key = generate_key()
        self.sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\n{extra}\r\n"
            ).encode()
        )
        buf = b""
        while find_head_end(buf) < 0:
            chunk = self.sock.recv(4096)
            assert chunk, "server closed during the handshake"
            buf += chunk
        end = find_head_end(buf)
        self.response = parse_response_head(buf[:end])
        assert self.response.status == 101
        assert self.response.headers.get("Sec-WebSocket-Accept") == accept_key(key)
        self.buf = buf[end:]

    def send(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError:
            pass  # the server may have closed on us already: that is the point

    def recv_close(self) -> int:
        """Read frames until a close frame; return its code (-1 on EOF)."""
        while True:
            while len(self.buf) < 2:
                if not self._more():
                    return -1
            n = self.buf[1] & 0x7F
            hlen = 2 + (2 if n == 126 else 8 if n == 127 else 0)
            while len(self.buf) < hlen:
                if not self._more():
                    return -1
            if n == 126:
                n = int.from_bytes(self.buf[2:4], "big")
            elif n == 127:
                n = int.from_bytes(self.buf[2:10], "big")
            while len(self.buf) < hlen + n:
                if not self._more():
                    return -1
            opcode, payload = self.buf[0] & 0x0F, self.buf[hlen : hlen + n]
            self.buf = self.buf[hlen + n :]
            if opcode == 8:
                return int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005

    def _more(self) -> bool:
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        self.buf += chunk
        return bool(chunk)

    def close(self) -> None:
        self.sock.close()


# ---------------------------------------------------------------------------
# Message size: set_read_limit and close 1009
# ---------------------------------------------------------------------------


def _check_refused_as_too_big(srv: Server, send: Callable[[Conn], None], **dialer_options: Any) -> None:
    """Dial ``srv`` and ``send``: the server must answer close 1009, its app get ErrReadLimit."""
    conn, _ = Dialer(handshake_timeout=TIMEOUT, **dialer_options).dial(srv.url)
    try:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        send(conn)
        with pytest.raises(CloseError) as ei:
            conn.read_message()
        assert ei.value.code == 1009
    finally:
        conn.close_now()
    assert isinstance(srv.result(), ErrReadLimit)


def test_default_read_limit_is_one_mib(serve: Callable[..., Server]) -> None:
    srv = serve(read_one())
    _check_refused_as_too_big(srv, lambda conn: conn.write_message(BINARY_MESSAGE, b"x" * (DEFAULT_READ_LIMIT + 1)))


def test_message_at_the_limit_passes(serve: Callable[..., Server]) -> None:
    srv = serve(read_one(limit=5000))
    conn, _ = Dialer(handshake_timeout=TIMEOUT).dial(srv.url)
    try:
        conn.write_message(BINARY_MESSAGE, b"y" * 5000)
        assert srv.result() == (BINARY_MESSAGE, b"y" * 5000)
    finally:
        conn.close_now()


def test_fragments_adding_up_over_the_limit(serve: Callable[..., Server]) -> None:
    """Each fragment is small; the message is not.  Caught as it crosses the limit."""
    srv = serve(read_one(limit=10_000))

    def send(conn: Conn) -> None:
        w = conn.next_writer(TEXT_MESSAGE)
        try:
            for _ in range(30):
                w.write(b"z" * 1000)  # 1000-byte fragments
            w.close()
        except (CloseError, OSError, Exception):
            pass  # the server may have closed mid-message

    _check_refused_as_too_big(srv, send, write_buffer_size=1000)


def test_announced_length_alone_trips_the_limit(serve: Callable[..., Server]) -> None:
    """A header claiming 2**62 bytes is refused before any payload is read."""
    srv = serve(read_one(limit=1 << 20))
    c = RawClient(srv.port)
    try:
        c.send(build_frame(2, b"", key=MASK, length=1 << 62))
        assert c.recv_close() == 1009
    finally:
        c.close()
    assert isinstance(srv.result(), ErrReadLimit)


def test_client_side_read_limit(serve: Callable[..., Server]) -> None:
    def app(conn: Conn) -> Any:
        conn.write_message(BINARY_MESSAGE, b"q" * 70_000)
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        try:
            conn.read_message()
        except CloseError as e:
            return e.code

    srv = serve(app)
    conn, _ = Dialer(handshake_timeout=TIMEOUT).dial(srv.url)
    try:
        conn.set_read_limit(65_536)
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        with pytest.raises(ErrReadLimit):
            conn.read_message()
        with pytest.raises(ErrReadLimit):
            conn.read_message()  # sticky
    finally:
        conn.close_now()
    assert srv.result() == 1009


def test_read_limit_applies_to_streaming_reader(serve: Callable[..., Server]) -> None:
    def app(conn: Conn) -> Any:
        conn.set_read_limit(4096)
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        _, r = conn.next_reader()
        got = 0
        try:
            while True:
                chunk = r.read(1000)
                if not chunk:
                    return got
                got += len(chunk)
        except ErrReadLimit:
            return ("limit", got)

    srv = serve(app)
    conn, _ = Dialer(handshake_timeout=TIMEOUT, write_buffer_size=1000).dial(srv.url)
    try:
        w = conn.next_writer(BINARY_MESSAGE)  # 1000-byte fragments: the reader starts
        try:
            for _ in range(10):
                w.write(b"s" * 1000)
            w.close()
        except Exception:
            pass  # the server may have closed mid-message
        result = srv.result()
        assert isinstance(result, tuple) and result[0] == "limit" and 0 < result[1] <= 4096
    finally:
        conn.close_now()


# ---------------------------------------------------------------------------
# Decompressed size: compression bombs over a negotiated connection
# ---------------------------------------------------------------------------

BOMB = 64 * 1024 * 1024  # 64 MiB of zeros: about 64 KiB once deflated


def deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def test_bomb_from_websockets_client(serve: Callable[..., Server]) -> None:
    """A real peer compresses 64 MiB of zeros; we stop inflating at the read limit."""
    srv = serve(read_one(), Upgrader(handshake_timeout=TIMEOUT, enable_compression=True))
    with ws_connect(srv.url, open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        ws.send(bytes(BOMB))
        with pytest.raises(Exception):
            ws.recv(timeout=TIMEOUT)
    assert ws.close_code == 1009
    assert isinstance(srv.result(), ErrReadLimit)


def test_handmade_bomb_is_not_inflated_past_the_limit(serve: Callable[..., Server]) -> None:
    """Peak Python memory stays far below the bomb's size while it is refused."""
    limit = 256 * 1024
    srv = serve(read_one(limit), Upgrader(handshake_timeout=TIMEOUT, enable_compression=True))
    payload = deflate_raw(bytes(BOMB))
    assert len(payload) < BOMB // 500
    c = RawClient(srv.port, "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n")
    assert "permessage-deflate" in (c.response.headers.get("Sec-WebSocket-Extensions") or "")
    tracemalloc.start()
    try:
        c.send(build_frame(2, payload, key=MASK, rsv=0x40))  # RSV1: compressed
        assert c.recv_close() == 1009
        result = srv.result()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
        c.close()
    assert isinstance(result, ErrReadLimit)
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes while refusing a {BOMB}-byte bomb"


def test_fragmented_bomb(serve: Callable[..., Server]) -> None:
    """The bomb split over many compressed fragments: the total is what counts."""
    srv = serve(read_one(100_000), Upgrader(handshake_timeout=TIMEOUT, enable_compression=True))
    payload = deflate_raw(bytes(8 * 1024 * 1024))
    c = RawClient(srv.port, "Sec-WebSocket-Extensions: permessage-deflate\r\n")
    try:
        step = max(1, len(payload) // 20)
        pieces = [payload[i : i + step] for i in range(0, len(payload), step)]
        for i, piece in enumerate(pieces):
            first, last = i == 0, i == len(pieces) - 1
            c.send(build_frame(2 if first else 0, piece, key=MASK, fin=last, rsv=0x40 if first else 0))
        assert c.recv_close() == 1009
    finally:
        c.close()
    assert isinstance(srv.result(), ErrReadLimit)


def test_bomb_against_our_dialer() -> None:
    """The client side: a websockets server sends a 64 MiB compressed message."""
    from websockets.sync.server import serve as ws_serve

    def handler(ws: Any) -> None:
        try:
            ws.send(bytes(BOMB))
            ws.recv(timeout=TIMEOUT)
        except Exception:
            pass

    with ws_serve(handler, "127.0.0.1", 0, compression="deflate", max_size=None) as server:
        port = server.socket.getsockname()[1]
        t = threading.Thread(target=server.serve_forever)
        t.start()
        try:
            conn, resp = Dialer(handshake_timeout=TIMEOUT, enable_compression=True).dial(f"ws://127.0.0.1:{port}/")
            try:
                assert "permessage-deflate" in (resp.headers.get("Sec-WebSocket-Extensions") or "")
                conn.set_read_deadline(time.monotonic() + TIMEOUT)
                with pytest.raises(ErrReadLimit):
                    conn.read_message()
            finally:
                conn.close_now()
        finally:
            server.shutdown()
            t.join(TIMEOUT)


# ---------------------------------------------------------------------------
# Handshake size: request head (server) and response head (client)
# ---------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes) -> bytes:
    """Send ``data`` (ignoring a reset once the server gave up) and read the answer to EOF."""
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
        except ConnectionResetError:
            pass
        return got


def upgrade_request(port: int, extra: str) -> bytes:
    return (
        f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {generate_key()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()


def status_of(answer: bytes) -> int:
    end = find_head_end(answer)
    assert end > 0, answer[:200]
    return parse_response_head(answer[:end]).status


def test_request_head_too_large(serve: Callable[..., Server]) -> None:
    srv = serve(read_one())
    headers = "".join(f"X-Pad-{i}: {'p' * 1000}\r\n" for i in range(MAX_HEAD_SIZE // 1000 + 2))
    assert status_of(raw_exchange(srv.port, upgrade_request(srv.port, headers))) in (400, 431)
    err = srv.result()
    assert isinstance(err, HandshakeError) and err.status in (400, 431)


def test_request_head_never_ending(serve: Callable[..., Server]) -> None:
    """Header bytes with no blank line: cut at MAX_HEAD_SIZE, not read forever."""
    srv = serve(read_one())
    data = upgrade_request(srv.port, "")[:-2] + b"X-Endless: " + b"a" * (4 * MAX_HEAD_SIZE)
    assert status_of(raw_exchange(srv.port, data)) in (400, 431)
    assert isinstance(srv.result(), HandshakeError)


def test_header_line_too_long(serve: Callable[..., Server]) -> None:
    srv = serve(read_one())
    data = upgrade_request(srv.port, f"X-Long: {'l' * (MAX_LINE + 10)}\r\n")
    assert len(data) < MAX_HEAD_SIZE
    assert status_of(raw_exchange(srv.port, data)) in (400, 431)
    assert isinstance(srv.result(), HandshakeError)


def test_too_many_headers(serve: Callable[..., Server]) -> None:
    srv = serve(read_one())
    data = upgrade_request(srv.port, "".join(f"X-{i}: v\r\n" for i in range(MAX_HEADERS + 1)))
    assert len(data) < MAX_HEAD_SIZE
    assert status_of(raw_exchange(srv.port, data)) == 431
    err = srv.result()
    assert isinstance(err, HandshakeError) and err.status == 431


def test_many_headers_under_the_limit_are_fine(serve: Callable[..., Server]) -> None:
    srv = serve(lambda conn: "ok")
    data = upgrade_request(srv.port, "".join(f"X-{i}: v\r\n" for i in range(MAX_HEADERS - 10)))
    assert status_of(raw_exchange(srv.port, data)) == 101
    assert srv.result() == "ok"


class FakeServer:
    """A TCP server that reads a request head and answers with ``answer(sock)``."""

    def __init__(self, answer: Callable[[socket.socket], None]) -> None:
        self.answer = answer
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.closed_at: Optional[float] = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError:
            return
        with sock:
            sock.settimeout(TIMEOUT)
            buf = b""
            try:
                while find_head_end(buf) < 0:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return
                    buf += chunk
                self.answer(sock)
            except OSError:
                self.closed_at = time.monotonic()

    def close(self) -> None:
        self.thread.join(TIMEOUT)
        self.listener.close()
        assert not self.thread.is_alive()

    def __enter__(self) -> "FakeServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_response_head_too_large() -> None:
    def answer(sock: socket.socket) -> None:
        sock.sendall(b"HTTP/1.1 101 Switching Protocols\r\n")
        pad = b"X-Pad: " + b"p" * 1000 + b"\r\n"
        for _ in range(MAX_HEAD_SIZE // len(pad) + 5):
            sock.sendall(pad)
        time.sleep(0.5)  # give the client time to give up before we go away

    with FakeServer(answer) as fake, pytest.raises(ErrBadHandshake, match="larger than"):
        Dialer(handshake_timeout=TIMEOUT).dial(f"ws://127.0.0.1:{fake.port}/")


def test_response_with_too_many_headers() -> None:
    def answer(sock: socket.socket) -> None:
        sock.sendall(
            b"HTTP/1.1 101 Switching Protocols\r\n"
            + b"".join(b"X-%d: v\r\n" % i for i in range(MAX_HEADERS + 1))
            + b"\r\n"
        )

    with FakeServer(answer) as fake, pytest.raises(ErrBadHandshake, match="too many"):
        Dialer(handshake_timeout=TIMEOUT).dial(f"ws://127.0.0.1:{fake.port}/")


# ---------------------------------------------------------------------------
# Handshake time: slowloris on both sides
# ---------------------------------------------------------------------------


def test_slowloris_client_is_cut_at_handshake_timeout(serve: Callable[..., Server]) -> None:
    hs_timeout = 0.6
    srv = serve(lambda conn: "upgraded", Upgrader(handshake_timeout=hs_timeout))
    data = upgrade_request(srv.port, "")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        start = time.monotonic()
        cut_at = None
        for i in range(len(data) - 1):  # never the final byte
            try:
                s.sendall(data[i : i + 1])
            except OSError:
                cut_at = time.monotonic()
                break
            if srv.done.wait(0.05):
                cut_at = time.monotonic()
                break
        assert cut_at is not None, "the server never gave up on a trickling client"
        # The server's socket is closed: the client sees EOF or a reset, not a 101.
        s.settimeout(TIMEOUT)
        try:
            rest = s.recv(4096)
        except ConnectionResetError:
            rest = b""
        assert not rest.startswith(b"HTTP/1.1 101")
    err = srv.result()
    assert isinstance(err, HandshakeError) and err.status == 408
    elapsed = srv.upgrade_ended[0] - start
    assert hs_timeout - 0.1 <= elapsed < hs_timeout + 3.0


def test_silent_client_is_cut_at_handshake_timeout(serve: Callable[..., Server]) -> None:
    srv = serve(lambda conn: "upgraded", Upgrader(handshake_timeout=0.3))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        start = time.monotonic()
        assert s.recv(4096) == b""  # closed without a word
    assert isinstance(srv.result(), HandshakeError)
    assert srv.upgrade_ended[0] - start >= 0.2


def test_trickling_server_is_cut_at_dialer_handshake_timeout() -> None:
    stop = threading.Event()

    def answer(sock: socket.socket) -> None:
        head = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        for i in range(len(head)):
            if stop.is_set():
                return
            sock.sendall(head[i : i + 1])
            time.sleep(0.05)
        stop.wait(TIMEOUT)

    fake = FakeServer(answer)
    try:
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            Dialer(handshake_timeout=0.6).dial(f"ws://127.0.0.1:{fake.port}/")
        elapsed = time.monotonic() - start
        assert 0.5 <= elapsed < 0.6 + 3.0
    finally:
        stop.set()
        fake.close()


def test_silent_server_is_cut_at_dialer_handshake_timeout() -> None:
    stop = threading.Event()

    def answer(sock: socket.socket) -> None:
        stop.wait(TIMEOUT)  # read the request, never answer

    fake = FakeServer(answer)
    try:
        with pytest.raises(DeadlineExceeded):
            Dialer(handshake_timeout=0.3).dial(f"ws://127.0.0.1:{fake.port}/")
    finally:
        stop.set()
        fake.close()


def test_client_that_never_reads_does_not_block_the_upgrade(serve: Callable[..., Server]) -> None:
    """A client that sends a request but never reads still gets upgraded.

    The 101 response is small, so it fits the socket buffer: the write
    (bounded by handshake_timeout) returns and the Conn's own deadlines take
    over from there.
    """
    srv = serve(lambda conn: "upgraded", Upgrader(handshake_timeout=0.5))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(upgrade_request(srv.port, ""))
        assert srv.result() == "upgraded"
