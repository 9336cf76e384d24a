"""The server side: :class:`Upgrader`, the host-server integrations and :class:`Handler`.

An :class:`Upgrader` (gorilla's ``Upgrader``) turns an HTTP request into a
:class:`~gorillaws.conn.Conn`.  :meth:`Upgrader.upgrade` accepts what the
server you already run gives you:

1. **http.server** (the zero-dependency path): pass the
   :class:`http.server.BaseHTTPRequestHandler` itself, from ``do_GET``, under a
   :class:`http.server.ThreadingHTTPServer`::

       class Handler(http.server.BaseHTTPRequestHandler):
           def do_GET(self):
               try:
                   conn = upgrader.upgrade(self)
               except gorillaws.HandshakeError:
                   return                      # the error response was sent
               with conn:
                   echo(conn)                  # runs in the server's thread

2. **WSGI** (werkzeug's dev server as used by Flask's ``app.run``, and
   gunicorn's ``sync`` and ``gthread`` workers): pass the environ.  The view
   must then return :data:`HIJACKED` (a WSGI app), and, on failure, the
   error response carried by the exception::

       @app.route("/ws")
       def ws():
           try:
               conn = upgrader.upgrade(request.environ)
           except gorillaws.HandshakeError as e:
               return e.response               # a WSGI app with the error
           with conn:
               echo(conn)
           return gorillaws.server.HIJACKED

3. **A raw accepted socket**: the library reads the HTTP request itself,
   bounded by :data:`~gorillaws.http11.MAX_HEAD_SIZE` bytes and
   :attr:`Upgrader.handshake_timeout` seconds (slow clients are cut off), and
   answers errors and closes the socket itself.

How the socket is taken over (cases 1 and 2): the library keeps the
connection on a duplicate file descriptor and points the host server's
descriptor at a dead socket pair (``dup2``).  Whatever the host server does
afterwards (write its own response, shut the socket down, close it, read the
next request) then touches nothing the client can see, and the
:class:`~gorillaws.conn.Conn` may outlive the request: the view may run the
connection to its end in the server's thread, or hand it to a thread of its
own and return at once.  Bytes the host server had already buffered past the
request head (a pipelined first frame) are handed to the ``Conn``.  TLS
sockets cannot be duplicated; there the ``Conn`` uses the host's socket
object directly and the view must run the connection to its end before
returning.

TLS (``wss://``): wrap the listening socket with
``ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)``.
With the default (True) the TLS handshake runs inside ``accept()``, in the
accepting thread, where one client that connects and stays silent stalls
every later one; with False it runs in the connection's own thread: inside
:meth:`Upgrader.upgrade` for a raw socket (bounded by ``handshake_timeout``),
or in the handler's first read for ``http.server``.

gunicorn's ``sync`` worker serves one request per process at a time and is
killed by the arbiter after ``--timeout`` seconds of silence: hand the
connection to a thread and return, or use the ``gthread`` worker.
"""

from __future__ import annotations

import email.message
import http
import io
import os
import select
import socket
import ssl
import threading
import time
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)
from urllib.parse import quote

from .conn import BufferPool, Conn
from .exceptions import HandshakeError
from .handshake import (
    accept_key,
    build_response,
    check_client_request,
    check_same_origin,
    origin_allowed,
    parse_extensions,
    parse_subprotocols,
    select_subprotocol,
    token_list_contains,
)
from .http11 import (
    MAX_HEAD_SIZE,
    Headers,
    HttpParseError,
    Request,
    Response,
    find_head_end,
    parse_request_head,
    serialize_response,
)

__all__ = [
    "DEFAULT_HANDSHAKE_TIMEOUT",
    "HIJACKED",
    "Handler",
    "HijackedResponse",
    "UpgradeRequest",
    "Upgrader",
    "WSGIErrorResponse",
    "is_websocket_upgrade",
    "subprotocols",
]

#: Seconds a client has to complete the opening handshake (raw sockets: to
#: send its request; every mode: to accept our response).
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

StartResponse = Callable[..., Any]
HeaderInput = Union[Headers, Mapping[str, str], Iterable[Tuple[str, str]], None]


# ---------------------------------------------------------------------------
# WSGI responses
# ---------------------------------------------------------------------------


class HijackedResponse:
    """The WSGI response a view returns after a successful upgrade.

    Calling it starts a ``101 Switching Protocols`` response with an empty
    body, so access logs show 101.  The host server's socket no longer
    reaches the client (see the module docs), so whatever it writes is
    discarded; werkzeug and gunicorn treat the failed write as a client that
    went away and log nothing alarming.  Use the shared instance
    :data:`HIJACKED`.
    """

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> List[bytes]:
        start_response("101 Switching Protocols", [])
        return []


#: Return this from a WSGI view after :meth:`Upgrader.upgrade` succeeded.
HIJACKED = HijackedResponse()


class WSGIErrorResponse:
    """A WSGI app answering a refused handshake: status, headers, short text body.

    This is what :class:`HandshakeError`'s ``response`` holds when
    :meth:`Upgrader.upgrade` refuses a WSGI request; return it from the view.
    """

    def __init__(self, status: int, headers: HeaderInput = None, body: Optional[bytes] = None) -> None:
        self.status = status
        self.headers = Headers(headers)
        self.body = _error_body(status) if body is None else body

    def __call__(self, environ: Mapping[str, Any], start_response: StartResponse) -> List[bytes]:
        headers = self.headers.copy()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers["Content-Length"] = str(len(self.body))
        start_response(f"{self.status} {_phrase(self.status)}", headers.raw_items())
        return [self.body]


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _error_body(status: int) -> bytes:
    return (_phrase(status) + "\n").encode("ascii")


# ---------------------------------------------------------------------------
# The request, whatever the host server
# ---------------------------------------------------------------------------


class UpgradeRequest:
    """An upgrade request as the Upgrader sees it, whatever the host server.

    Passed to :attr:`Upgrader.check_origin`, :attr:`Upgrader.error` and
    :attr:`Handler.access_ok`.  Attributes:

    * ``method``, ``target`` (path and query), ``version``, ``headers``
      (:class:`~gorillaws.http11.Headers`, case-insensitive; WSGI servers
      have already joined repeated headers);
    * ``path`` (``target`` without the query), ``origin`` (None when absent),
      ``host``, ``remote_addr``;
    * ``raw``: what was passed to :meth:`Upgrader.upgrade` (the
      ``BaseHTTPRequestHandler``, the WSGI environ, or the socket);
    * ``protocol``: the subprotocol to answer with; a :class:`Handler`'s
      ``access_ok`` sets it (seehuhn's ``conn.Protocol``);
    * ``response_headers``: headers to add to an error response (``Allow``,
      ``Sec-WebSocket-Version``), filled in before ``error`` is called.
    """

    def __init__(
        self,
        raw: Any,
        request: Request,
        remote_addr: Any = None,
        kind: str = "raw",
    ) -> None:
        self.raw = raw
        self.method = request.method
        self.target = request.target
        self.version = request.version
        self.headers = request.headers
        self.remote_addr = remote_addr
        self.protocol = ""
        self.response_headers = Headers()
        self.kind = kind  # "http.server", "wsgi" or "raw"

    @property
    def path(self) -> str:
        """The request-target without its query string."""
        return self.target.split("?", 1)[0]

    @property
    def origin(self) -> Optional[str]:
        """The Origin header, or None."""
        return self.headers.get("Origin")

    @property
    def host(self) -> str:
        """The Host header ("" when absent)."""
        return self.headers.get("Host") or ""

    def as_request(self) -> Request:
        """The head as an :class:`~gorillaws.http11.Request`."""
        return Request(self.method, self.target, self.version, self.headers)

    def __repr__(self) -> str:
        return f"<UpgradeRequest {self.kind} {self.method} {self.target!r}>"


def _is_request_handler(obj: Any) -> bool:
    return hasattr(obj, "connection") and hasattr(obj, "headers") and hasattr(obj, "command")


def _headers_from_environ(environ: Mapping[str, Any]) -> Headers:
    h = Headers()
    for key, value in environ.items():
        if not isinstance(value, str):
            continue
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").title()
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            if not value:
                continue
            name = key.replace("_", "-").title()
        else:
            continue
        try:
            h.add(name, value)
        except ValueError:
            continue  # a header a WSGI server let through that we can't represent
    return h


def _target_from_environ(environ: Mapping[str, Any]) -> str:
    for key in ("RAW_URI", "REQUEST_URI"):
        v = environ.get(key)
        if isinstance(v, str) and v:
            return v
    path = quote(
        (environ.get("SCRIPT_NAME", "") + environ.get("PATH_INFO", "")).encode("latin-1"),
        safe="/;=,:@!$&'()*+~",
    )
    query = environ.get("QUERY_STRING", "")
    return f"{path or '/'}?{query}" if query else (path or "/")


def _normalize(request: Any) -> UpgradeRequest:
    """Wrap a handler, a WSGI environ, an UpgradeRequest or a parsed head."""
    if isinstance(request, UpgradeRequest):
        return request
    if isinstance(request, Mapping):
        env = request
        req = Request(
            str(env.get("REQUEST_METHOD", "GET")),
            _target_from_environ(env),
            str(env.get("SERVER_PROTOCOL", "HTTP/1.0")),
            _headers_from_environ(env),
        )
        remote = (env.get("REMOTE_ADDR"), env.get("REMOTE_PORT"))
        return UpgradeRequest(env, req, remote, "wsgi")
    if _is_request_handler(request):
        h = Headers()
        msg: email.message.Message = request.headers
        for name, value in msg.items():
            try:
                h.add(name, str(value))
            except ValueError:
                continue
        req = Request(request.command, request.path, request.request_version, h)
        return UpgradeRequest(request, req, getattr(request, "client_address", None), "http.server")
    if isinstance(request, Request):
        return UpgradeRequest(request, request, None, "raw")
    raise TypeError(
        "upgrade() takes a BaseHTTPRequestHandler, a WSGI environ or a socket, "
        f"not {type(request).__name__}"
    )


def is_websocket_upgrade(request: Any) -> bool:
    """Whether ``request`` asks for a WebSocket upgrade (gorilla's ``IsWebSocketUpgrade``).

    True when Connection lists ``upgrade`` and Upgrade lists ``websocket``.
    ``request`` is a ``BaseHTTPRequestHandler``, a WSGI environ, an
    :class:`UpgradeRequest` or an :class:`~gorillaws.http11.Request`.
    """
    h = _normalize(request).headers
    return token_list_contains(h, "Connection", "upgrade") and token_list_contains(
        h, "Upgrade", "websocket"
    )


def subprotocols(request: Any) -> List[str]:
    """The subprotocols the client offers, in its order (gorilla's ``Subprotocols``)."""
    return parse_subprotocols(_normalize(request).headers)


# ---------------------------------------------------------------------------
# Socket take-over
# ---------------------------------------------------------------------------


def _take_over(orig: socket.socket) -> socket.socket:
    """A socket for the connection that the host server can no longer touch.

    The connection moves to a duplicate descriptor and the host's
    descriptor number is repointed (``dup2``) at one end of a socket pair
    whose other end is closed (one pair per process, shared by every
    take-over): reads there see EOF, writes fail with EPIPE,
    shutdown and close are harmless.  TLS sockets (whose state lives in the
    socket object) and platforms without ``dup2`` on sockets keep using the
    host's socket object.
    """
    if isinstance(orig, ssl.SSLSocket) or os.name == "nt":
        return orig
    fd = orig.fileno()
    new_fd = os.dup(fd)
    try:
        new = socket.socket(orig.family, orig.type, orig.proto, fileno=new_fd)
    except BaseException:
        os.close(new_fd)
        raise
    try:
        os.dup2(_dead_socket_fd(), fd, inheritable=False)
    except BaseException:
        new.close()
        raise
    # Its blocking mode is the Conn's to set (_send_all works in either).
    return new


_dead_fd = -1
_dead_lock = threading.Lock()


def _dead_socket_fd() -> int:
    """A descriptor of a socket whose peer is closed, made once per process.

    Every taken-over host descriptor is repointed (``dup2``) at it: reads
    see EOF and writes fail with EPIPE, whatever the host does with it.
    """
    global _dead_fd
    if _dead_fd < 0:
        with _dead_lock:
            if _dead_fd < 0:
                a, b = socket.socketpair()
                b.close()
                _dead_fd = a.detach()
    return _dead_fd


def _buffered_input(raw: Any, kind: str, shared: Optional[socket.socket]) -> bytes:
    """Bytes the host server read past the request head (call after _take_over).

    ``shared`` is the host's socket when it could not be taken over (TLS):
    it is made non-blocking while peeking so that nothing blocks.
    """
    if kind == "http.server":
        stream = getattr(raw, "rfile", None)
    else:
        stream = raw.get("wsgi.input")
        # gunicorn keeps read-ahead in its parser's "unreader".
        unreader = getattr(getattr(stream, "reader", None), "unreader", None)
        if unreader is not None:
            take = getattr(unreader, "take_buffered", None)
            if callable(take):
                return bytes(take())
            buf = getattr(unreader, "buf", None)
            if buf is not None and hasattr(buf, "getvalue"):
                return bytes(buf.getvalue())
            return b""
    peek = getattr(stream, "peek", None)
    if not callable(peek):
        return b""
    # A taken-over host socket reads EOF, so peek cannot block; a shared one
    # is made non-blocking.  peek only reads the socket when nothing is
    # buffered, so an error here means there was nothing to hand over.
    saved = shared.gettimeout() if shared is not None else None
    try:
        if shared is not None:
            shared.settimeout(0.0)
        return bytes(peek())
    except (OSError, ValueError):
        return b""
    finally:
        if shared is not None:
            try:
                shared.settimeout(saved)
            except OSError:
                pass


def _close_gracefully(sock: socket.socket, deadline: float) -> None:
    """Half-close, drain what the peer still sends (bounded), then close.

    Draining lets an error response reach the client instead of being
    destroyed by a TCP reset caused by unread request bytes.
    """
    try:
        sock.shutdown(socket.SHUT_WR)
        end = min(deadline, time.monotonic() + 1.0)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            if not sock.recv(4096):
                break
    except OSError:
        pass
    finally:
        sock.close()


def _read_request_head(sock: socket.socket, deadline: Optional[float]) -> Tuple[bytes, bytes]:
    """Read one HTTP request head from ``sock``; return (head, bytes after it).

    Raises :class:`HandshakeError`: 408 when the deadline passes, 431 when
    the head exceeds MAX_HEAD_SIZE, 400 when the peer closes first.
    """
    buf = bytearray()
    scan = 0
    plain = _plain_socket(sock)
    while True:
        try:
            if plain:
                # No timeout mode (which polls before every call and costs
                # system calls to switch): try, and wait in poll on EAGAIN.
                if deadline is not None and time.monotonic() >= deadline:
                    raise socket.timeout()
                try:
                    chunk = sock.recv(4096, socket.MSG_DONTWAIT)
                except BlockingIOError:
                    if not _wait_ready(sock, False, deadline):
                        raise socket.timeout() from None
                    continue
            else:
                if deadline is None:
                    sock.settimeout(None)
                else:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise socket.timeout()
                    sock.settimeout(left)
                chunk = sock.recv(4096)
        except socket.timeout:
            raise HandshakeError("websocket: handshake timed out reading the request", 408) from None
        except OSError as e:
            raise HandshakeError(f"websocket: reading the request: {e}", 400) from e
        if not chunk:
            raise HandshakeError("websocket: connection closed before the request was complete", 400)
        buf += chunk
        end = find_head_end(buf, scan)
        if end >= 0:
            if end > MAX_HEAD_SIZE:
                raise HandshakeError("websocket: request head too large", 431)
            return bytes(buf[:end]), bytes(buf[end:])
        if len(buf) > MAX_HEAD_SIZE:
            raise HandshakeError("websocket: request head too large", 431)
        scan = max(0, len(buf) - 3)


def _plain_socket(sock: socket.socket) -> bool:
    """Whether ``sock`` takes MSG_DONTWAIT (not TLS, platform has the flag)."""
    return _HAVE_DONTWAIT and not isinstance(sock, ssl.SSLSocket)


_HAVE_DONTWAIT = hasattr(socket, "MSG_DONTWAIT")


def _wait_ready(sock: socket.socket, writing: bool, deadline: Optional[float]) -> bool:
    """Wait until ``sock`` is readable (writable); False when ``deadline`` passed first."""
    p = select.poll()
    p.register(sock, select.POLLOUT if writing else select.POLLIN)
    if deadline is None:
        p.poll()
        return True
    left = deadline - time.monotonic()
    return left > 0 and bool(p.poll(left * 1000.0 + 0.5))


def _send_all(sock: socket.socket, data: bytes, deadline: Optional[float]) -> None:
    """Send ``data`` by ``deadline``; raises socket.timeout (an OSError) after it."""
    if _plain_socket(sock):
        view = memoryview(data)
        while view:
            if deadline is not None and time.monotonic() >= deadline:
                raise socket.timeout("handshake deadline")
            try:
                view = view[sock.send(view, socket.MSG_DONTWAIT) :]
            except BlockingIOError:
                if not _wait_ready(sock, True, deadline):
                    raise socket.timeout("handshake deadline") from None
        return
    if deadline is None:
        sock.settimeout(None)
    else:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("handshake deadline")
        sock.settimeout(left)
    try:
        sock.sendall(data)
    finally:
        sock.settimeout(None)


# ---------------------------------------------------------------------------
# The Upgrader
# ---------------------------------------------------------------------------

CheckOrigin = Callable[[UpgradeRequest], bool]
ErrorCallback = Callable[[UpgradeRequest, int, str], Any]


class Upgrader:
    """Upgrades HTTP requests to WebSocket connections (gorilla's ``Upgrader``).

    Every option is a keyword argument and a plain attribute of the same
    name; an Upgrader holds no per-connection state, so one instance may
    serve every thread at once (don't mutate it while it does).

    :param handshake_timeout: seconds for the handshake (raw sockets: reading
        the request, and the TLS handshake of an ``SSLSocket`` accepted with
        ``do_handshake_on_connect=False``; every mode: writing the
        response); None for no limit.
    :param read_buffer_size: the Conn's receive buffer size (0: default).
    :param write_buffer_size: the largest frame a streaming writer sends
        before fragmenting (0: default).
    :param write_buffer_pool: a :class:`~gorillaws.conn.BufferPool` for
        writer buffers.
    :param subprotocols: the server's subprotocols in order of preference;
        the first one the client also offers is chosen.  When empty, a
        ``Sec-WebSocket-Protocol`` in ``response_header`` is sent instead.
    :param error: ``error(request, status, reason)`` answers a refused
        handshake (``request`` is an :class:`UpgradeRequest`; its
        ``response_headers`` hold headers the answer needs, e.g. ``Allow``).
        With http.server it should write with ``request.raw.send_response``
        ...; with a raw socket, write on ``request.raw`` (the library then
        closes it); with WSGI, return a WSGI app or response object: it
        becomes the exception's ``response``.  The default answers with the
        status and its text, like gorilla's ``http.Error``.
    :param check_origin: ``check_origin(request) -> bool``; False answers
        403.  The default, as in gorilla, refuses a request whose Origin
        header is present and whose host differs from the Host header.
    :param enable_compression: negotiate permessage-deflate (RFC 7692) in
        "no context takeover" mode, as gorilla does.
    :param compression_mode: one of the ``COMPRESSION_*`` constants of
        :mod:`gorillaws.deflate` (nhooyr's ``CompressionMode``); overrides
        ``enable_compression`` when given.
    :param compression_level: deflate level (-2..9) of the connections'
        compressors (gorilla's ``SetCompressionLevel`` default is 1).
    :param compression_threshold: messages shorter than this many bytes are
        sent uncompressed (nhooyr's ``CompressionThreshold``); None picks
        nhooyr's defaults, 512 without and 128 with context takeover.
    :param origin_patterns: nhooyr's ``OriginPatterns``: host globs
        (case-insensitive; with ``://``, also the scheme) of origins allowed
        besides the request's own host.  Used when ``check_origin`` is None.
    :param insecure_skip_verify: accept any origin (nhooyr's
        ``InsecureSkipVerify``); used when ``check_origin`` is None.
    """

    def __init__(
        self,
        *,
        handshake_timeout: Optional[float] = DEFAULT_HANDSHAKE_TIMEOUT,
        read_buffer_size: int = 0,
        write_buffer_size: int = 0,
        write_buffer_pool: Optional[BufferPool] = None,
        subprotocols: Sequence[str] = (),
        error: Optional[ErrorCallback] = None,
        check_origin: Optional[CheckOrigin] = None,
        enable_compression: bool = False,
        compression_mode: Optional[int] = None,
        compression_level: int = 1,
        compression_threshold: Optional[int] = None,
        origin_patterns: Sequence[str] = (),
        insecure_skip_verify: bool = False,
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.read_buffer_size = read_buffer_size
        self.write_buffer_size = write_buffer_size
        self.write_buffer_pool = write_buffer_pool
        self.subprotocols = list(subprotocols)
        self.error = error
        self.check_origin = check_origin
        self.enable_compression = enable_compression
        self.compression_mode = compression_mode
        self.compression_level = compression_level
        self.compression_threshold = compression_threshold
        self.origin_patterns = list(origin_patterns)
        self.insecure_skip_verify = insecure_skip_verify

    # -- public ----------------------------------------------------------

    def upgrade(self, request: Any, response_header: HeaderInput = None) -> Conn:
        """Complete the opening handshake and return the server-side :class:`Conn`.

        ``request`` is a ``BaseHTTPRequestHandler`` (call from ``do_GET``), a
        WSGI environ (the view then returns :data:`HIJACKED`), or an accepted
        socket whose request the library reads.  ``response_header`` adds
        headers to the 101 response (``Set-Cookie``, or
        ``Sec-WebSocket-Protocol`` when :attr:`subprotocols` is empty).

        On failure the error response is answered (see ``error``) and
        :class:`HandshakeError` is raised with its ``status``; for WSGI its
        ``response`` is the WSGI app to return.  A raw socket is closed on
        failure; the host servers' sockets are left to them.  Raises
        :class:`ValueError` when ``response_header`` holds a header the
        library writes itself (Upgrade, Connection, Sec-WebSocket-Accept,
        Sec-WebSocket-Extensions).
        """
        deadline = None if self.handshake_timeout is None else time.monotonic() + self.handshake_timeout
        if isinstance(request, socket.socket):
            return self._upgrade_socket(request, response_header, deadline)
        req = _normalize(request)
        if req.kind == "raw":
            raise TypeError("upgrade() of a parsed Request needs the socket: pass the socket instead")
        return self._upgrade_hosted(req, response_header, deadline)

    # -- the checks, shared by every mode ----------------------------------

    def _origin_ok(self, req: UpgradeRequest) -> bool:
        if self.check_origin is not None:
            return bool(self.check_origin(req))
        if self.insecure_skip_verify:
            return True
        if self.origin_patterns:
            return origin_allowed(req.origin, req.host, self.origin_patterns)
        return check_same_origin(req.origin, req.host)

    def _validate(self, req: UpgradeRequest) -> str:
        """Run every check; return the client's key.  Raises HandshakeError."""
        key = check_client_request(req.as_request())
        if not req.headers.get_all("Host"):
            raise HandshakeError("websocket: missing 'Host' header", 400)
        if not self._origin_ok(req):
            raise HandshakeError("websocket: request origin not allowed by Upgrader.check_origin", 403)
        return key

    def _negotiate(
        self, req: UpgradeRequest, response_header: HeaderInput, access_protocol: Optional[str] = None
    ) -> Tuple[str, str, Any, Headers]:
        """(subprotocol, extensions header, codec, extra headers) for the 101."""
        extra = Headers(response_header)
        header_proto = extra.pop("Sec-WebSocket-Protocol") or ""
        if access_protocol is not None:
            proto = access_protocol
        elif self.subprotocols:
            proto = select_subprotocol(self.subprotocols, parse_subprotocols(req.headers))
        else:
            proto = header_proto
        ext_value, codec = self._negotiate_compression(req)
        return proto, ext_value, codec, extra

    def _mode(self) -> int:
        if self.compression_mode is not None:
            return int(self.compression_mode)
        return 1 if self.enable_compression else 0  # deflate.COMPRESSION_NO_CONTEXT_TAKEOVER / DISABLED

    def _negotiate_compression(self, req: UpgradeRequest) -> Tuple[str, Any]:
        """The single place permessage-deflate is negotiated."""
        mode = self._mode()
        if mode == 0:
            return "", None
        try:
            offers = parse_extensions(req.headers)
        except ValueError:
            return "", None  # a malformed offer is declined, not fatal
        from . import deflate

        result = deflate.server_negotiate(
            offers, mode, level=self.compression_level, threshold=self.compression_threshold
        )
        if result is None:
            return "", None
        return result[0], result[1]

    def _fail(self, req: UpgradeRequest, exc: HandshakeError) -> HandshakeError:
        """Answer a refused handshake through the error callback; return exc."""
        for name, value in exc.headers.items():
            req.response_headers[name] = value
        if self.error is not None:
            result = self.error(req, exc.status, str(exc))
            if req.kind == "wsgi":
                exc.response = result if result is not None else WSGIErrorResponse(exc.status, req.response_headers)
            return exc
        if req.kind == "wsgi":
            exc.response = WSGIErrorResponse(exc.status, req.response_headers)
        elif req.kind == "http.server":
            _http_server_error(req.raw, exc.status, req.response_headers)
        else:
            _socket_error(req.raw, exc.status, req.response_headers)
        return exc

    def _answer(
        self, sock: socket.socket, response: bytes, deadline: Optional[float], proto: str, codec: Any, initial: bytes
    ) -> Conn:
        """Send the 101 response and wrap the socket; closes it if the send fails."""
        try:
            _send_all(sock, response, deadline)
        except OSError as e:
            sock.close()
            raise HandshakeError(f"websocket: writing the handshake response: {e}", 500) from e
        return self._make_conn(sock, proto, codec, initial)

    def _make_conn(self, sock: socket.socket, proto: str, codec: Any, initial: bytes) -> Conn:
        return Conn(
            sock,
            is_server=True,
            subprotocol=proto,
            read_buffer_size=self.read_buffer_size,
            write_buffer_size=self.write_buffer_size,
            write_buffer_pool=self.write_buffer_pool,
            initial_data=initial,
            compression=codec,
        )

    # -- hosted: http.server and WSGI ------------------------------------------

    def _upgrade_hosted(
        self,
        req: UpgradeRequest,
        response_header: HeaderInput,
        deadline: Optional[float],
        access_ok: Optional[Callable[[UpgradeRequest], Optional[str]]] = None,
        server_name: str = "",
    ) -> Conn:
        try:
            key = self._validate(req)
            access_protocol = access_ok(req) if access_ok is not None else None
        except HandshakeError as exc:
            raise self._fail(req, exc) from None
        proto, ext_value, codec, extra = self._negotiate(req, response_header, access_protocol)
        if server_name:
            extra["Server"] = server_name
        response = build_response(accept_key(key), proto, ext_value, extra)  # may raise ValueError

        raw = req.raw
        if req.kind == "http.server":
            orig: socket.socket = raw.connection
        else:
            orig_any = raw.get("werkzeug.socket") or raw.get("gunicorn.socket")
            if not isinstance(orig_any, socket.socket):
                no_socket = HandshakeError(
                    "websocket: this WSGI server does not expose its socket "
                    "(werkzeug.socket / gunicorn.socket)",
                    500,
                )
                raise self._fail(req, no_socket)
            orig = orig_any
        sock = _take_over(orig)
        initial = _buffered_input(raw, req.kind, None if sock is not orig else orig)
        if req.kind == "http.server":
            raw.close_connection = True
            if sock is not orig:
                # The handler's rfile reads the repointed descriptor (EOF)
                # from now on; free its buffer (8 KiB) now rather than when
                # do_GET returns, which is when the WebSocket has ended.
                try:
                    raw.rfile.close()
                except Exception:
                    pass
                raw.rfile = io.BytesIO()
            try:
                raw.log_request(101)
            except Exception:  # logging must never break the upgrade
                pass
        return self._answer(sock, response, deadline, proto, codec, initial)

    # -- raw sockets -------------------------------------------------------

    def _upgrade_socket(
        self,
        sock: socket.socket,
        response_header: HeaderInput,
        deadline: Optional[float],
        access_ok: Optional[Callable[[UpgradeRequest], Optional[str]]] = None,
        server_name: str = "",
    ) -> Conn:
        close_by = deadline if deadline is not None else time.monotonic() + 5.0
        try:
            head, rest = _read_request_head(sock, deadline)
        except HandshakeError as exc:
            if exc.status == 431:
                _socket_error(sock, exc.status, Headers())
                _close_gracefully(sock, close_by)
            else:  # timed out (slowloris) or the peer went away: just drop it
                sock.close()
            raise
        try:
            parsed = parse_request_head(head)
        except HttpParseError as e:
            _socket_error(sock, e.status, Headers())
            _close_gracefully(sock, close_by)
            raise HandshakeError(f"websocket: malformed request: {e}", e.status) from e
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        req = UpgradeRequest(sock, parsed, peer, "raw")
        try:
            key = self._validate(req)
            access_protocol = access_ok(req) if access_ok is not None else None
        except HandshakeError as exc:
            self._fail(req, exc)
            _close_gracefully(sock, close_by)
            raise exc from None
        try:
            proto, ext_value, codec, extra = self._negotiate(req, response_header, access_protocol)
            if server_name:
                extra["Server"] = server_name
            response = build_response(accept_key(key), proto, ext_value, extra)
        except ValueError:
            _socket_error(sock, 500, Headers())
            _close_gracefully(sock, close_by)
            raise
        return self._answer(sock, response, deadline, proto, codec, rest)


def _http_server_error(handler: Any, status: int, headers: Headers) -> None:
    """Answer through a BaseHTTPRequestHandler, the way its own methods do."""
    body = _error_body(status)
    try:
        handler.send_response(status)
        for name, value in headers.raw_items():
            handler.send_header(name, value)
        handler.send_header("Content-Type", "text/plain; charset=utf-8")
        handler.send_header("X-Content-Type-Options", "nosniff")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    except OSError:
        handler.close_connection = True


def _socket_error(sock: socket.socket, status: int, headers: Headers) -> None:
    """Write an error response on a raw socket (the caller closes it)."""
    h = headers.copy()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["X-Content-Type-Options"] = "nosniff"
    h["Connection"] = "close"
    data = serialize_response(Response(status, headers=h, body=_error_body(status)))
    try:
        sock.settimeout(1.0)
        sock.sendall(data)
    except OSError:
        pass


# ---------------------------------------------------------------------------
# seehuhn's Handler
# ---------------------------------------------------------------------------


class Handler:
    """A ready WebSocket endpoint (seehuhn's ``Handler``), built on :class:`Upgrader`.

    ``handle(conn)`` is called with each new connection, in the host
    server's thread; the connection stays usable after it returns, so close
    it when done (``with conn: ...``).  ``access_ok(request, protocols)``,
    if given, runs during the handshake with the pending request (an
    :class:`UpgradeRequest`: ``path``, ``origin``, ``headers``,
    ``remote_addr``) and the subprotocols the client offered; it returns
    False to refuse (403), and when the client offered subprotocols it must
    pick one by setting ``request.protocol``, otherwise the handshake fails
    (400).  ``server_name``, when not empty, is sent as the ``Server``
    header of the 101 response.  Origins are checked by ``upgrader``
    (default: same-origin only) before ``access_ok`` runs.

    Use it as a WSGI application (``Handler(...)(environ, start_response)``,
    e.g. mounted with werkzeug's ``DispatcherMiddleware`` or returned from a
    Flask view as ``handler``), or call :meth:`serve` with a
    ``BaseHTTPRequestHandler`` (from ``do_GET``) or an accepted socket.
    """

    def __init__(
        self,
        handle: Callable[[Conn], Any],
        access_ok: Optional[Callable[[UpgradeRequest, List[str]], bool]] = None,
        server_name: str = "",
        upgrader: Optional[Upgrader] = None,
    ) -> None:
        self.handle = handle
        self.access_ok = access_ok
        self.server_name = server_name
        self.upgrader = upgrader or Upgrader()

    def _access(self, req: UpgradeRequest) -> Optional[str]:
        """The subprotocol access_ok chose; None lets the upgrader negotiate."""
        if self.access_ok is None:
            return None
        offered = parse_subprotocols(req.headers)
        if not self.access_ok(req, offered):
            raise HandshakeError("websocket: access refused by Handler.access_ok", 403)
        if offered and req.protocol not in offered:
            raise HandshakeError("websocket: access_ok chose no offered subprotocol", 400)
        return req.protocol if offered else ""

    def _upgrade(self, request: Any) -> Conn:
        u = self.upgrader
        deadline = None if u.handshake_timeout is None else time.monotonic() + u.handshake_timeout
        if isinstance(request, socket.socket):
            return u._upgrade_socket(request, None, deadline, self._access, self.server_name)
        req = _normalize(request)
        return u._upgrade_hosted(req, None, deadline, self._access, self.server_name)

    def serve(self, request: Any) -> None:
        """Upgrade ``request`` and run ``handle`` on the connection.

        ``request`` is a ``BaseHTTPRequestHandler`` or an accepted socket.
        A refused handshake has been answered; it is not re-raised.
        """
        try:
            conn = self._upgrade(request)
        except HandshakeError:
            return
        self.handle(conn)

    def __call__(self, environ: Dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The WSGI application: upgrade, run ``handle``, answer nothing more."""
        try:
            conn = self._upgrade(environ)
        except HandshakeError as exc:
            app = exc.response
            if callable(app):
                result: Iterable[bytes] = app(environ, start_response)
                return result
            return WSGIErrorResponse(exc.status)(environ, start_response)
        self.handle(conn)
        return HIJACKED(environ, start_response)

