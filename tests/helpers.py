"""Shared test helpers for the handshake side: servers to upgrade on, raw HTTP peers.

Import with ``from helpers import ...`` (the tests directory is on
``sys.path`` under pytest).  Everything listens on 127.0.0.1, every socket
read is bounded by :data:`TIMEOUT`, and every server joins its threads on
``close()`` (all are context managers).

* :class:`AcceptLoop`: accepts connections and runs ``handler(sock)`` in a
  thread per connection (the raw-socket upgrade server, fake proxies, fake
  servers that answer by hand).
* :class:`HTTPServerHarness`: a ``ThreadingHTTPServer`` whose ``do_GET``
  (and ``do_POST``) calls ``app(handler)``, optionally behind TLS.
* :func:`upgrade_request`, :func:`read_head`, :func:`read_response`,
  :func:`raw_request`, :func:`recv_at_least`, :func:`read_until_close`: write a hand-made request,
  read a response head the way a test needs it.
* :func:`silent_listener` and :func:`full_listener`: peers that never answer
  (the handshake or TLS phase hangs) and that never accept (the TCP connect
  itself hangs), for timeouts and cancellation.
* :func:`encode_frame`, :func:`mask_bytes`, :func:`close_payload`: frames
  built by hand, independently of gorillaws, for raw frame peers (the
  conformance fuzzer's :class:`~conformance.fuzzer.FuzzPeer`).
* :func:`closing_factory`: the body of a fixture that hands out servers and
  closes them all at teardown.
* :func:`echo`: the usual server-side app; :func:`wait_for`: poll a
  condition a server thread makes true, bounded.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import ssl
import struct
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Iterator, List, Optional, Tuple, TypeVar, Union

from gorillaws import Conn, WebSocketError
from gorillaws.handshake import generate_key
from gorillaws.http11 import Response, find_head_end, parse_response_head

TIMEOUT = 5.0

if TYPE_CHECKING:  # (conftest may import this module: no import of it at run time)
    from conftest import RawPeer

#: The ``raw_peer`` fixture: ``raw_peer(server=..., **conn_options)`` -> (Conn, RawPeer).
RawFactory = Callable[..., Tuple[Conn, "RawPeer"]]
#: The ``conn_pair_factory`` fixture: ``(server, client)`` Conns talking to each other.
PairFactory = Callable[..., Tuple[Conn, Conn]]

_T = TypeVar("_T")


def echo(conn: Conn) -> None:
    """Echo every message until the peer closes or fails; then close."""
    with conn, contextlib.suppress(WebSocketError, OSError):
        while True:
            conn.write_message(*conn.read_message())


def read_until_error(conn: Conn, hang_up: bool = False) -> BaseException:
    """Read until a read fails and return what it raised; with ``hang_up``, then close the socket like an app would."""
    while True:
        try:
            conn.read_message()
        except BaseException as e:  # noqa: BLE001
            if hang_up:
                conn.close_now()
            return e


def read_in_pieces(reader: Any, sizes: Iterator[int]) -> bytes:
    """Read a message ``reader`` to its end, each read asking for the next of ``sizes``; return the bytes."""
    got = bytearray()
    for n in sizes:
        chunk = reader.read(n)
        if not chunk:
            break
        got += chunk
    return bytes(got)


def wait_for(cond: Callable[[], Any], timeout: float = TIMEOUT) -> None:
    """Poll ``cond`` until true (a server thread may still be finishing); fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


# ----------------------------------------------------------------------
# Hand-made frames (independent of gorillaws)
# ----------------------------------------------------------------------


def mask_bytes(data: bytes, key: bytes) -> bytes:
    """XOR ``data`` with the repeated 4-byte ``key`` (a big-integer XOR, not gorillaws.mask)."""
    n = len(data)
    if not n:
        return b""
    reps = key * (n // 4 + 1)
    return (int.from_bytes(data, "big") ^ int.from_bytes(reps[:n], "big")).to_bytes(n, "big")


def close_payload(code: Optional[int], reason: Union[bytes, str] = b"") -> bytes:
    """A close frame payload: big-endian code then reason (``code`` None: empty)."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


def encode_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    key: Optional[bytes] = None,
    length: Optional[int] = None,
    length_form: Optional[int] = None,
) -> bytes:
    """The bytes of one frame, masked with ``key`` when it is given.

    For hostile frames: ``length`` writes another payload length than the
    real one, ``length_form`` (7, 16 or 64) picks the length encoding even
    where a shorter one would do.
    """
    n = len(payload) if length is None else length
    form = length_form or (7 if n < 126 else 16 if n <= 0xFFFF else 64)
    marker, extended = {7: (n, ""), 16: (126, "!H"), 64: (127, "!Q")}[form]
    first = (0x80 if fin else 0) | (rsv & 0x70) | (opcode & 0x0F)
    head = bytes((first, (0x80 if key is not None else 0) | marker))
    if extended:
        head += struct.pack(extended, n)
    return head + (payload if key is None else key + mask_bytes(payload, key))


# ----------------------------------------------------------------------
# Hand-made HTTP
# ----------------------------------------------------------------------


def upgrade_request(
    host: str, path: str = "/ws", *, method: str = "GET", key: Optional[str] = None, drop: Tuple[str, ...] = (), **headers: str
) -> bytes:
    """The bytes of an upgrade request; ``headers`` (``Sec_WebSocket_Version="8"``) override, "" or ``drop`` removes."""
    h = {
        "Host": host,
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or generate_key(),
        "Sec-WebSocket-Version": "13",
    }
    for k, v in headers.items():
        h[k.replace("_", "-")] = v
    lines = [f"{method} {path} HTTP/1.1"] + [f"{k}: {v}" for k, v in h.items() if v and k not in drop]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_head(sock: socket.socket, limit: int = 65536) -> Tuple[bytes, bytes]:
    """Read up to a blank line: (head with its CRLFCRLF, bytes after it).

    At EOF or past ``limit`` bytes without a blank line: (everything read, b"").
    """
    buf = b""
    while find_head_end(buf) < 0 and len(buf) < limit:
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    end = find_head_end(buf)
    return (buf, b"") if end < 0 else (buf[:end], buf[end:])


def read_response(sock: socket.socket) -> Tuple[Response, bytes]:
    """Read and parse a response head, then its Content-Length body: (response, body and anything after)."""
    head, rest = read_head(sock)
    assert find_head_end(head) > 0, f"no response head: {head!r}"
    resp = parse_response_head(head)
    n = int(resp.headers.get("Content-Length") or 0)
    while len(rest) < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        rest += chunk
    return resp, rest


def raw_request(port: int, data: bytes, timeout: float = TIMEOUT) -> Tuple[Response, bytes]:
    """Send ``data`` on a fresh connection to 127.0.0.1:``port``; return :func:`read_response`."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        return read_response(s)


def recv_at_least(sock: socket.socket, n: int, have: bytes = b"") -> bytes:
    """``have`` plus what arrives until there are ``n`` bytes (fewer if the peer closes first)."""
    while len(have) < n:
        chunk = sock.recv(4096)
        if not chunk:
            break
        have += chunk
    return have


def read_until_close(sock: socket.socket) -> bytes:
    """Everything the peer sends until it closes (a reset counts as the end)."""
    buf = b""
    try:
        while True:
            chunk = sock.recv(4096)
            if not chunk:
                return buf
            buf += chunk
    except ConnectionResetError:
        return buf


# ----------------------------------------------------------------------
# Servers
# ----------------------------------------------------------------------


class AcceptLoop:
    """Accepts on 127.0.0.1 (or on ``listener``) and runs ``handler(sock)`` per connection.

    Each handler runs in its own thread; an exception it raises is kept in
    ``errors`` and the socket is closed afterwards.  ``close()`` stops
    accepting, shuts every accepted socket down and joins all threads.
    """

    def __init__(self, handler: Callable[[socket.socket], Any], listener: Optional[socket.socket] = None) -> None:
        self.handler = handler
        self.sock = listener if listener is not None else socket.create_server(("127.0.0.1", 0), backlog=16)
        self.sock.settimeout(0.05)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: List[socket.socket] = []
        self.errors: List[BaseException] = []
        self.threads: List[threading.Thread] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except (socket.timeout, ssl.SSLError):
                continue
            except OSError:
                return
            conn.settimeout(None if isinstance(conn, ssl.SSLSocket) else 10)
            self.accepted.append(conn)
            t = threading.Thread(target=self._run, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _run(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except BaseException as e:  # reported to the test
            self.errors.append(e)
        finally:
            conn.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(TIMEOUT)
        self.sock.close()
        for c in self.accepted:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in self.threads:
            t.join(TIMEOUT)

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class HTTPServerHarness:
    """A ThreadingHTTPServer on 127.0.0.1 whose do_GET/do_POST call ``app(handler)``.

    With ``ssl_context`` the listening socket is TLS-wrapped (``lazy``: the
    TLS handshake runs in the handler's thread, not in ``accept()``).
    Exceptions raised by ``app`` are kept in ``errors``.
    """

    def __init__(
        self,
        app: Callable[[http.server.BaseHTTPRequestHandler], None],
        ssl_context: Optional[ssl.SSLContext] = None,
        lazy: bool = False,
    ) -> None:
        outer = self
        self.app = app
        self.errors: List[BaseException] = []

        class RequestHandler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    outer.app(self)
                except BaseException as e:  # reported to the test
                    outer.errors.append(e)

            do_POST = do_GET

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), RequestHandler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            self.httpd.socket = ssl_context.wrap_socket(
                self.httpd.socket, server_side=True, do_handshake_on_connect=not lazy
            )
        self.port = int(self.httpd.server_address[1])
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(TIMEOUT)

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def closing_factory(
    make: Callable[..., _T], close: Callable[[_T], Any] = lambda obj: obj.close()  # type: ignore[attr-defined]
) -> Iterator[Callable[..., _T]]:
    """Yield ``factory(*args)`` = ``make(*args)``, remembering each result; ``close`` them all on exit.

    In a fixture: ``with closing_factory(RawServer) as factory: yield factory``;
    ``close`` ends one result (default: its ``close()`` method).
    """
    made: List[Any] = []

    def factory(*args: Any, **kwargs: Any) -> _T:
        obj = make(*args, **kwargs)
        made.append(obj)
        return obj

    try:
        yield factory
    finally:
        for obj in made:
            close(obj)


@contextlib.contextmanager
def running_server(server: Any) -> Iterator[Tuple[str, int]]:
    """Run a :mod:`socketserver` server's ``serve_forever`` in a thread; yield its (host, port).

    On exit: ``shutdown()``, ``server_close()`` and a bounded join.
    """
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        t.join(TIMEOUT)


@contextlib.contextmanager
def silent_listener() -> Iterator[int]:
    """A port whose connections complete (the kernel's backlog) but never get a byte back."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as lsock:
        yield int(lsock.getsockname()[1])


@contextlib.contextmanager
def full_listener() -> Iterator[int]:
    """A port whose accept queue is full, so a new TCP connect to it hangs (its SYN is dropped)."""
    lsock = socket.create_server(("127.0.0.1", 0), backlog=0)
    port = int(lsock.getsockname()[1])
    fillers: List[socket.socket] = []
    try:
        # Linux queues backlog + 1 connections; fill the queue (non-blocking
        # connects, so none of ours waits), then later connects hang.
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            s.connect_ex(("127.0.0.1", port))
            fillers.append(s)
        yield port
    finally:
        for s in fillers:
            s.close()
        lsock.close()
