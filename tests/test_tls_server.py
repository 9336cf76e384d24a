"""The wss:// server path: Upgrader over TLS sockets, end to end.

Two ways a server gets a TLS socket, both tested:

* ``http.server``: a ``ThreadingHTTPServer`` whose listening socket is wrapped
  with ``ssl_context.wrap_socket(server.socket, server_side=True)``; the
  handler's ``connection`` is then an :class:`ssl.SSLSocket`, which cannot be
  duplicated, so the ``Conn`` uses the host's socket object directly;
* a raw accepted :class:`ssl.SSLSocket` passed to :meth:`Upgrader.upgrade`.

Peers: our own :class:`gorillaws.Dialer` and the ``websockets`` sync client,
both trusting a throw-away CA made by ``tests/certs.py``.  Covered: echo,
large messages, a reader and a writer thread on the same TLS ``Conn``, a
non-fatal read deadline followed by more reads, the close handshake in both
directions, and a first frame pipelined behind the request head.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import socket
import ssl
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, Union

import pytest
from websockets.sync.client import connect as ws_connect
from websockets.version import version as ws_version

# websockets < 17 (the newest for Python 3.9 and 3.10) races its own threads on
# a TLS socket: now and then its handshake request never leaves, or its read
# times out while closing (1006).  17 does neither; its client tests need it.
needs_websockets_17 = pytest.mark.skipif(
    int(ws_version.split(".")[0]) < 17,
    reason="websockets < 17 races its own TLS socket (lost handshake, 1006 on close)",
)

sys.path.insert(0, os.path.dirname(__file__))

from certs import TestPKI, make_test_pki  # noqa: E402
from conftest import build_frame  # noqa: E402
from helpers import AcceptLoop, HTTPServerHarness, closing_factory, read_head, recv_at_least  # noqa: E402

from gorillaws import (  # noqa: E402
    BINARY_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    DeadlineExceeded,
    Dialer,
    HandshakeError,
    Upgrader,
    WebSocketError,
)
from gorillaws.handshake import accept_key, generate_key  # noqa: E402
from gorillaws.http11 import parse_response_head  # noqa: E402

pytestmark = pytest.mark.timeout(60)

TIMEOUT = 10.0
BIG = 3 * 1024 * 1024 + 17  # spans many TLS records and Conn buffer refills

App = Callable[[Conn], None]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


def server_ctx(pki: TestPKI, tickets: bool = True) -> ssl.SSLContext:
    """The server's TLS context.  ``tickets=False``: no TLS 1.3 session tickets.

    websockets' sync client writes its handshake request from one thread
    while its reader thread is inside the same SSL object's read; when the
    server's session tickets arrive at that moment, OpenSSL (not thread-safe
    per connection) now and then loses the request and both sides wait.  The
    tests that use that client turn tickets off: nothing reaches the client
    before our 101, so the peer's race cannot happen.  Our own Dialer locks
    around every SSL call, and its tests keep tickets on.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    if not tickets:
        ctx.num_tickets = 0
    return ctx


def client_ctx(pki: TestPKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=pki.ca_cert)


class TlsServer:
    """A wss server on 127.0.0.1 running ``app(conn)`` for each connection.

    ``mode`` is ``"http.server"`` (ThreadingHTTPServer with a TLS-wrapped
    listening socket, upgrade from ``do_GET``) or ``"raw"`` (our own accept
    loop on a TLS listening socket, upgrade of the accepted SSLSocket).
    Errors raised by ``app`` (or the upgrade) are kept in ``errors``.
    """

    def __init__(
        self,
        pki: TestPKI,
        mode: str,
        app: App,
        upgrader: Optional[Upgrader] = None,
        lazy: bool = False,
        tickets: bool = True,
    ) -> None:
        self.mode = mode
        self.app = app
        self.upgrader = upgrader or Upgrader(handshake_timeout=TIMEOUT)
        self.errors: List[BaseException] = []
        self.conns: List[Conn] = []
        self.done = threading.Event()
        ctx = server_ctx(pki, tickets)
        self.host: Union[HTTPServerHarness, AcceptLoop]
        if mode == "http.server":
            self.host = HTTPServerHarness(
                lambda h: self._serve(lambda: self.upgrader.upgrade(h)), ssl_context=ctx, lazy=lazy
            )
        else:
            listener = ctx.wrap_socket(
                socket.create_server(("127.0.0.1", 0)), server_side=True, do_handshake_on_connect=not lazy
            )
            self.host = AcceptLoop(lambda sock: self._serve(lambda: self.upgrader.upgrade(sock)), listener)
        self.port = self.host.port

    def _serve(self, upgrade: Callable[[], Conn]) -> None:
        try:
            conn = upgrade()
        except BaseException as e:
            self.errors.append(e)
            self.done.set()
            return
        self.conns.append(conn)
        try:
            assert isinstance(conn.underlying_conn(), ssl.SSLSocket)
            self.app(conn)
        except BaseException as e:
            self.errors.append(e)
        finally:
            conn.close_now()
            self.done.set()

    @property
    def url(self) -> str:
        return f"wss://localhost:{self.port}/ws"

    def wait(self) -> None:
        assert self.done.wait(TIMEOUT), "server app did not finish"

    def check(self) -> None:
        self.wait()
        if self.errors:
            raise self.errors[0]

    def close(self) -> None:
        for c in self.conns:
            c.close_now()
        self.host.close()


MODES = ["http.server", "raw"]


@pytest.fixture(params=MODES)
def mode(request: Any) -> str:
    return str(request.param)


@pytest.fixture
def serve(pki: TestPKI, mode: str) -> Iterator[Callable[..., TlsServer]]:
    with closing_factory(
        lambda app, upgrader=None, tickets=True: TlsServer(pki, mode, app, upgrader, tickets=tickets)
    ) as factory:
        yield factory


def dial(pki: TestPKI, srv: TlsServer, **kw: Any) -> Conn:
    d = Dialer(tls_client_config=client_ctx(pki), handshake_timeout=TIMEOUT, **kw)
    conn, resp = d.dial(srv.url)
    assert resp.status == 101
    return conn


@contextlib.contextmanager
def session(pki: TestPKI, srv: TlsServer, **kw: Any) -> Iterator[Conn]:
    """:func:`dial` ``srv``; on the way out close the Conn at once, then re-raise what the server's app raised."""
    conn = dial(pki, srv, **kw)
    try:
        yield conn
    finally:
        conn.close_now()
    srv.check()


def echo(conn: Conn) -> None:
    conn.set_read_limit(BIG * 2)
    while True:
        try:
            mt, data = conn.read_message()
        except CloseError:
            return
        conn.write_message(mt, data)


def pattern(n: int, seed: int = 0) -> bytes:
    block = hashlib.sha256(str(seed).encode()).digest() * 64  # 2 KiB
    return (block * (n // len(block) + 1))[:n]


# ---------------------------------------------------------------------------
# Echo and large messages, with both clients
# ---------------------------------------------------------------------------


def test_echo_with_dialer(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo)
    conn = dial(pki, srv)
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        conn.write_message(TEXT_MESSAGE, "héllo over tls")
        assert conn.read_message() == (TEXT_MESSAGE, "héllo over tls".encode())
        conn.write_message(BINARY_MESSAGE, b"\x00\xff" * 10)
        assert conn.read_message() == (BINARY_MESSAGE, b"\x00\xff" * 10)
    srv.check()


def test_large_messages_with_dialer(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo)
    conn = dial(pki, srv)
    conn.set_read_limit(BIG * 2)
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        for i, size in enumerate([BIG, 70_000, 1, BIG // 3]):
            data = pattern(size, i)
            conn.write_message(BINARY_MESSAGE, data)
            mt, got = conn.read_message()
            assert mt == BINARY_MESSAGE and got == data
        # Streaming writer: many small writes, fragmented by the write buffer.
        w = conn.next_writer(TEXT_MESSAGE)
        for _ in range(1000):
            w.write(b"0123456789" * 100)
        w.close()
        mt, got = conn.read_message()
        assert mt == TEXT_MESSAGE and got == b"0123456789" * 100_000
    srv.check()


@needs_websockets_17
def test_large_messages_with_websockets_client(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo, tickets=False)
    with ws_connect(
        srv.url, ssl=client_ctx(pki), open_timeout=TIMEOUT, close_timeout=TIMEOUT, max_size=None
    ) as ws:
        ws.send("text over tls")
        assert ws.recv(timeout=TIMEOUT) == "text over tls"
        data = pattern(BIG, 7)
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data
        ws.send([b"frag-", b"mented-", pattern(100_000, 3)])  # a fragmented message
        assert ws.recv(timeout=TIMEOUT) == b"frag-mented-" + pattern(100_000, 3)
    assert ws.close_code == 1000
    srv.check()


@needs_websockets_17
def test_compressed_over_tls(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo, Upgrader(handshake_timeout=TIMEOUT, enable_compression=True), tickets=False)
    with ws_connect(srv.url, ssl=client_ctx(pki), open_timeout=TIMEOUT, max_size=None) as ws:
        assert ws.response is not None
        assert "permessage-deflate" in (ws.response.headers.get("Sec-WebSocket-Extensions") or "")
        data = b"compressible " * 100_000
        ws.send(data)
        assert ws.recv(timeout=TIMEOUT) == data
    srv.check()


# ---------------------------------------------------------------------------
# A reader thread and a writer thread on the same TLS Conn
# ---------------------------------------------------------------------------

N_MESSAGES = 60
MSG_SIZE = 48 * 1024


@pytest.mark.parametrize("attempt", range(8))
def test_concurrent_reader_and_writer_threads(attempt: int, pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    """Both ends stream N messages at the same time while reading the peer's N.

    Repeated: without the TLS lock in ``SocketIO`` (OpenSSL objects are not
    thread-safe; TLS 1.3 writes session tickets from inside a read) about one
    run in ten lost the close frame to a corrupted record.
    """

    def app(conn: Conn) -> None:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        sent_err: List[BaseException] = []

        def writer() -> None:
            try:
                for i in range(N_MESSAGES):
                    conn.write_message(BINARY_MESSAGE, pattern(MSG_SIZE, 1000 + i))
                    if i % 10 == 0:
                        conn.write_control(10, b"tick", time.monotonic() + TIMEOUT)  # unsolicited pong
            except BaseException as e:  # pragma: no cover - reported below
                sent_err.append(e)

        t = threading.Thread(target=writer)
        t.start()
        for i in range(N_MESSAGES):
            mt, data = conn.read_message()
            assert (mt, data) == (BINARY_MESSAGE, pattern(MSG_SIZE, i))
        t.join(TIMEOUT)
        assert not t.is_alive() and not sent_err, sent_err
        conn.write_message(TEXT_MESSAGE, "server done")
        with pytest.raises(CloseError) as ei:
            conn.read_message()
        assert ei.value.code == 1000

    srv = serve(app)
    conn = dial(pki, srv)
    conn.set_read_deadline(time.monotonic() + TIMEOUT)
    werr: List[BaseException] = []

    def client_writer() -> None:
        try:
            for i in range(N_MESSAGES):
                conn.write_message(BINARY_MESSAGE, pattern(MSG_SIZE, i))
        except BaseException as e:  # pragma: no cover
            werr.append(e)

    t = threading.Thread(target=client_writer)
    t.start()
    try:
        for i in range(N_MESSAGES):
            mt, data = conn.read_message()
            assert (mt, data) == (BINARY_MESSAGE, pattern(MSG_SIZE, 1000 + i))
        t.join(TIMEOUT)
        assert not t.is_alive() and not werr, werr
        assert conn.read_message() == (TEXT_MESSAGE, b"server done")
        conn.close()
    finally:
        t.join(TIMEOUT)
        conn.close_now()
    srv.check()


def test_ping_from_another_thread_while_reading(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    """conn.ping() waits for the pong that the reading thread sees, all over TLS."""
    ready = threading.Event()

    def app(conn: Conn) -> None:
        ready.set()
        echo(conn)

    srv = serve(app)
    with session(pki, srv) as conn:
        assert ready.wait(TIMEOUT)
        box: "queue.Queue[Any]" = queue.Queue()

        def reader() -> None:
            try:
                conn.set_read_deadline(time.monotonic() + TIMEOUT)
                box.put(conn.read_message())
            except BaseException as e:
                box.put(e)

        t = threading.Thread(target=reader)
        t.start()
        rtt = conn.ping(timeout=TIMEOUT)
        assert rtt >= 0
        conn.write_message(TEXT_MESSAGE, "after ping")
        assert box.get(timeout=TIMEOUT) == (TEXT_MESSAGE, b"after ping")
        t.join(TIMEOUT)
        conn.close()


# ---------------------------------------------------------------------------
# Read deadlines over TLS
# ---------------------------------------------------------------------------


@needs_websockets_17
def test_read_deadline_is_not_fatal_then_continue(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    results: "queue.Queue[Any]" = queue.Queue()

    def app(conn: Conn) -> None:
        for _ in range(2):  # two timeouts in a row: still usable
            conn.set_read_deadline(time.monotonic() + 0.2)
            with pytest.raises(DeadlineExceeded) as ei:
                conn.read_message()
            assert ei.value.fatal is False
            results.put("timeout")
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        results.put(conn.read_message())
        conn.write_message(TEXT_MESSAGE, "still alive")
        conn.set_read_deadline(None)
        with pytest.raises(CloseError):
            conn.read_message()

    srv = serve(app, tickets=False)
    with ws_connect(srv.url, ssl=client_ctx(pki), open_timeout=TIMEOUT) as ws:
        assert results.get(timeout=TIMEOUT) == "timeout"
        assert results.get(timeout=TIMEOUT) == "timeout"
        ws.send(b"late message")
        assert results.get(timeout=TIMEOUT) == (BINARY_MESSAGE, b"late message")
        assert ws.recv(timeout=TIMEOUT) == "still alive"
    srv.check()


def test_client_read_deadline_over_tls(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    go = threading.Event()

    def app(conn: Conn) -> None:
        assert go.wait(TIMEOUT)
        conn.write_message(TEXT_MESSAGE, pattern(200_000).hex())  # spans TLS records
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        with pytest.raises(CloseError):
            conn.read_message()

    srv = serve(app)
    with session(pki, srv) as conn:
        conn.set_read_deadline(time.monotonic() + 0.2)
        with pytest.raises(DeadlineExceeded) as ei:
            conn.read_message()
        assert not ei.value.fatal
        go.set()
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        assert conn.read_message() == (TEXT_MESSAGE, pattern(200_000).hex().encode())
        conn.close()


def test_mid_frame_read_deadline_is_fatal(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    """A frame that stops arriving halfway: the deadline passes mid-frame and is fatal."""
    box: "queue.Queue[Any]" = queue.Queue()

    def app(conn: Conn) -> None:
        conn.set_read_deadline(time.monotonic() + 0.5)
        try:
            conn.read_message()
        except DeadlineExceeded as e:
            box.put(e.fatal)
            with pytest.raises(DeadlineExceeded):
                conn.read_message()  # sticky
            return
        box.put("no timeout")

    srv = serve(app)
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            key = generate_key()
            s.sendall(request_head(srv.port, key))
            head, _ = read_head(s)
            assert parse_response_head(head).status == 101
            frame = build_frame(2, b"x" * 1000, key=b"\x01\x02\x03\x04")
            s.sendall(frame[:500])  # half a frame, then silence
            assert box.get(timeout=TIMEOUT) is True
    srv.check()


# ---------------------------------------------------------------------------
# The close handshake over TLS
# ---------------------------------------------------------------------------


@needs_websockets_17
def test_server_initiated_close(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    closed: "queue.Queue[Any]" = queue.Queue()

    def app(conn: Conn) -> None:
        conn.write_message(TEXT_MESSAGE, "bye soon")
        t0 = time.monotonic()
        conn.close(1001, "going away")
        closed.put(time.monotonic() - t0)

    srv = serve(app, tickets=False)
    with ws_connect(srv.url, ssl=client_ctx(pki), open_timeout=TIMEOUT) as ws:
        assert ws.recv(timeout=TIMEOUT) == "bye soon"
        with pytest.raises(Exception):
            ws.recv(timeout=TIMEOUT)
        assert ws.close_code == 1001 and ws.close_reason == "going away"
    # The server's close() returned once the peer echoed the close frame,
    # well before its 5 s close timeout.
    assert closed.get(timeout=TIMEOUT) < 4.0
    srv.check()


def test_server_initiated_close_with_dialer(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    def app(conn: Conn) -> None:
        conn.close(4000, "custom")

    srv = serve(app)
    with session(pki, srv) as conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        with pytest.raises(CloseError) as ei:
            conn.read_message()
        assert (ei.value.code, ei.value.text) == (4000, "custom")


def test_client_initiated_close(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    seen: "queue.Queue[Any]" = queue.Queue()

    def app(conn: Conn) -> None:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        try:
            conn.read_message()
        except CloseError as e:
            seen.put((e.code, e.text))

    srv = serve(app)
    conn = dial(pki, srv)
    t0 = time.monotonic()
    conn.close(1000, "done here")  # waits for the server's echoed close frame
    assert time.monotonic() - t0 < 4.0
    assert seen.get(timeout=TIMEOUT) == (1000, "done here")
    srv.check()


def test_many_sequential_connections(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo)
    for i in range(15):
        conn = dial(pki, srv)
        with conn:
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.write_message(TEXT_MESSAGE, f"n{i}")
            assert conn.read_message() == (TEXT_MESSAGE, f"n{i}".encode())
    deadline = time.monotonic() + TIMEOUT
    while len(srv.conns) < 15 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not srv.errors


# ---------------------------------------------------------------------------
# Raw TLS client: pipelined first frame, refused handshakes
# ---------------------------------------------------------------------------


def request_head(port: int, key: str, extra: str = "") -> bytes:
    return (
        f"GET /ws HTTP/1.1\r\nHost: localhost:{port}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
        f"{extra}\r\n"
    ).encode()


def test_pipelined_first_frame(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    """Frames sent in the same TLS record as the request reach the Conn."""
    srv = serve(echo)
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            key = generate_key()
            frames = build_frame(1, b"first", key=b"\x01\x02\x03\x04") + build_frame(2, b"second", key=b"\x01\x02\x03\x04")
            s.sendall(request_head(srv.port, key) + frames)
            head, rest = read_head(s)
            resp = parse_response_head(head)
            assert resp.status == 101
            assert resp.headers.get("Sec-WebSocket-Accept") == accept_key(key)
            want = b"\x81\x05first\x82\x06second"
            assert recv_at_least(s, len(want), rest) == want
            s.sendall(build_frame(8, b"\x03\xe8", key=b"\x01\x02\x03\x04"))
            assert recv_at_least(s, 4)[:4] == b"\x88\x02\x03\xe8"
    srv.check()


def test_refused_handshake_over_tls(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    srv = serve(echo)
    ctx = client_ctx(pki)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            s.sendall(request_head(srv.port, generate_key(), "Origin: https://evil.example\r\n"))
            head, _ = read_head(s)
            assert parse_response_head(head).status == 403
    srv.wait()
    assert len(srv.errors) == 1 and isinstance(srv.errors[0], HandshakeError)
    assert srv.errors[0].status == 403


def test_websocket_error_types_reach_the_app(pki: TestPKI, serve: Callable[..., TlsServer]) -> None:
    """A peer that vanishes without a close frame: the server sees an abnormal closure."""
    box: "queue.Queue[Any]" = queue.Queue()

    def app(conn: Conn) -> None:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        try:
            conn.read_message()
        except (WebSocketError, OSError) as e:
            box.put(e)

    srv = serve(app)
    conn = dial(pki, srv)
    conn.close_now()
    err = box.get(timeout=TIMEOUT)
    assert isinstance(err, CloseError) and err.code == 1006
    srv.check()


# ---------------------------------------------------------------------------
# The TLS handshake itself: do_handshake_on_connect=False
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_lazy_tls_handshake(pki: TestPKI, mode: str) -> None:
    """Listening sockets wrapped with do_handshake_on_connect=False work in both modes.

    The TLS handshake then runs in the connection's own thread (inside
    upgrade() for raw sockets, in the handler's first read for http.server)
    instead of in the accepting thread.
    """
    with contextlib.closing(TlsServer(pki, mode, echo, lazy=True)) as srv:
        with dial(pki, srv) as conn:
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.write_message(TEXT_MESSAGE, "lazy")
            assert conn.read_message() == (TEXT_MESSAGE, b"lazy")
        srv.check()


def test_silent_tcp_client_is_cut_by_handshake_timeout(pki: TestPKI) -> None:
    """A client that connects but never starts TLS: upgrade() gives up after
    handshake_timeout (the TLS handshake happens inside it), and the next
    client is served."""
    with contextlib.closing(TlsServer(pki, "raw", echo, Upgrader(handshake_timeout=0.5), lazy=True)) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as silent:
            start = time.monotonic()
            srv.wait()
            assert len(srv.errors) == 1 and isinstance(srv.errors[0], HandshakeError)
            assert 0.4 <= time.monotonic() - start < TIMEOUT
            assert silent.recv(100) == b""  # dropped
        srv.done.clear()
        srv.errors.clear()
        with dial(pki, srv) as conn:
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.write_message(TEXT_MESSAGE, "next")
            assert conn.read_message() == (TEXT_MESSAGE, b"next")
        srv.check()
