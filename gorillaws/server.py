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
   answers errors and closes the socket itself.  Bytes that cannot start an
   HTTP request (a TLS ClientHello on a plain port, binary data, bare-LF
   line ends) are answered 400 at once, not held until the timeout.

Each host has a small adapter (``_HTTPServerHost``, ``_WSGIHost``,
``_SocketHost``: how it hands over the request, answers a refusal and gives
up its socket); one function, ``_upgrade``, checks, negotiates and answers
101 through whichever adapter applies, so every mode behaves the same.

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
import logging
import os
import socket
import ssl
import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import quote

from . import deflate
from .conn import BufferPool, Conn, socket_addresses
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
from .http11 import Headers, HttpParseError, Request, Response, parse_request_head, serialize_response
from .options import HandshakeOptions
from .transport import HeadEOF, SocketIO, read_http_head

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
    "upgrade_accepted",
]

#: Seconds a client has to complete the opening handshake (raw sockets: to
#: send its request; every mode: to accept our response).
DEFAULT_HANDSHAKE_TIMEOUT = 10.0

log = logging.getLogger("gorillaws.server")

StartResponse = Callable[..., Any]
#: ``response_header``: Headers, (name, value) pairs, or a mapping of names
#: to a value or to a list of values (Go's ``http.Header``).
HeaderInput = Union[Headers, Mapping[str, str], Mapping[str, Sequence[str]], Iterable[Tuple[str, str]], None]

if TYPE_CHECKING:  # http.server costs ~20 ms to import; only its name is needed here
    from http.server import BaseHTTPRequestHandler

#: What :meth:`Upgrader.upgrade` takes: an ``http.server`` request handler, a
#: WSGI environ, or an accepted socket whose request has not been read yet.
UpgradeSource = Union["BaseHTTPRequestHandler", Mapping[str, Any], socket.socket]


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
        self.kind = kind  # the host: "http.server", "wsgi" or "raw" (for repr and logs)

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


def _peek_buffered(stream: Any, shared: Optional[socket.socket]) -> bytes:
    """Bytes a host's buffered reader holds past the request head (call after _take_over).

    ``shared`` is the host's socket when it could not be taken over (TLS):
    it is made non-blocking while peeking so that nothing blocks.
    """
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



# ---------------------------------------------------------------------------
# Host adapters: what differs between http.server, WSGI and a raw socket
# ---------------------------------------------------------------------------


class _Host:
    """One host server's side of an upgrade; the upgrade path itself is :func:`_upgrade`.

    An adapter knows how its host hands over the request (``request``), how
    to answer a refused handshake when the user gave no ``error`` callback
    (:meth:`answer_error`), what to do with the callback's result
    (:meth:`keep_error_result`), how to end a refused request
    (:meth:`after_refusal`, given the exception about to be raised), and how to take the connection away from the
    host (:meth:`take_over`, which returns the socket and any bytes the host
    had already read past the head).
    """

    request: UpgradeRequest
    #: The SocketIO the host read the request with, if any: the Conn takes it over.
    io: Optional[SocketIO] = None

    def answer_error(self, status: int, headers: Headers) -> None:
        raise NotImplementedError

    def keep_error_result(self, exc: HandshakeError, result: Any) -> None:
        """Hosts that answer through a return value (WSGI) keep the callback's result."""

    def after_refusal(self, exc: HandshakeError) -> None:
        """Hosts that own nothing after a refusal do nothing."""

    def take_over(self) -> Tuple[socket.socket, bytes]:
        raise NotImplementedError

    def addresses(self, sock: socket.socket) -> Tuple[Any, Any]:
        """(local, peer) addresses of the taken-over socket (see :func:`socket_addresses`)."""
        return socket_addresses(sock)


class _HTTPServerHost(_Host):
    """A :class:`http.server.BaseHTTPRequestHandler`, upgraded from ``do_GET``."""

    KIND = "http.server"

    def __init__(self, handler: Any) -> None:
        self.handler = handler
        self.request = self.parse(handler)

    @classmethod
    def parse(cls, handler: Any) -> UpgradeRequest:
        h = Headers()
        msg: email.message.Message = handler.headers
        for name, value in msg.items():
            try:
                h.add(name, str(value))
            except ValueError:
                continue
        req = Request(handler.command, handler.path, handler.request_version, h)
        return UpgradeRequest(handler, req, getattr(handler, "client_address", None), cls.KIND)

    def answer_error(self, status: int, headers: Headers) -> None:
        """Answer through the handler, the way its own methods do."""
        handler = self.handler
        body = _error_body(status)
        try:
            handler.send_response(status)
            for name, value in _error_headers(headers, body, close=False).raw_items():
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body)
        except OSError:
            handler.close_connection = True

    def take_over(self) -> Tuple[socket.socket, bytes]:
        handler = self.handler
        orig: socket.socket = handler.connection
        sock = _take_over(orig)
        initial = _peek_buffered(getattr(handler, "rfile", None), None if sock is not orig else orig)
        handler.close_connection = True
        if sock is not orig:
            # The handler's rfile reads the repointed descriptor (EOF) from
            # now on; free its buffer (8 KiB) now rather than when do_GET
            # returns, which is when the WebSocket has ended.
            try:
                handler.rfile.close()
            except Exception:
                pass
            handler.rfile = io.BytesIO()
        try:
            handler.log_request(101)
        except Exception:  # logging must never break the upgrade
            pass
        return sock, initial


class _WSGIHost(_Host):
    """A WSGI environ (werkzeug, gunicorn); errors become the exception's ``response``."""

    KIND = "wsgi"

    def __init__(self, environ: Mapping[str, Any]) -> None:
        self.environ = environ
        self.request = self.parse(environ)
        _warn_if_sync_worker(environ)

    @classmethod
    def parse(cls, env: Mapping[str, Any]) -> UpgradeRequest:
        req = Request(
            str(env.get("REQUEST_METHOD", "GET")),
            _target_from_environ(env),
            str(env.get("SERVER_PROTOCOL", "HTTP/1.0")),
            _headers_from_environ(env),
        )
        return UpgradeRequest(env, req, (env.get("REMOTE_ADDR"), env.get("REMOTE_PORT")), cls.KIND)

    def answer_error(self, status: int, headers: Headers) -> None:
        """Nothing to write: the view returns the exception's ``response``."""

    def keep_error_result(self, exc: HandshakeError, result: Any) -> None:
        exc.response = result

    def after_refusal(self, exc: HandshakeError) -> None:
        if exc.response is None:
            exc.response = WSGIErrorResponse(exc.status, self.request.response_headers)

    def take_over(self) -> Tuple[socket.socket, bytes]:
        env = self.environ
        orig = env.get("werkzeug.socket") or env.get("gunicorn.socket")
        if not isinstance(orig, socket.socket):
            raise HandshakeError(
                "websocket: this WSGI server does not expose its socket (werkzeug.socket / gunicorn.socket)", 500
            )
        sock = _take_over(orig)
        stream = env.get("wsgi.input")
        # gunicorn keeps read-ahead in its parser's "unreader".
        unreader = getattr(getattr(stream, "reader", None), "unreader", None)
        if unreader is None:
            return sock, _peek_buffered(stream, None if sock is not orig else orig)
        take = getattr(unreader, "take_buffered", None)
        if callable(take):
            return sock, bytes(take())
        buf = getattr(unreader, "buf", None)
        return sock, bytes(buf.getvalue()) if buf is not None and hasattr(buf, "getvalue") else b""


class _SocketHost(_Host):
    """An accepted socket: the library reads the request and answers on it itself.

    Reading the head is bounded by the deadline and
    :data:`~gorillaws.http11.MAX_HEAD_SIZE`, and fails at once on bytes that
    cannot start an HTTP request (a TLS ClientHello on a plain port, binary
    data, a bare-LF line end): 400 (431 for a head too large) is answered
    and the socket closed.  A client that times out or goes away is just
    dropped.  Raises :class:`HandshakeError` in every failure case.
    """

    KIND = "raw"
    io: SocketIO

    def __init__(
        self, sock: socket.socket, deadline: Optional[float], peer: Any = None, local: Any = None
    ) -> None:
        self.sock = sock
        self.io = SocketIO(sock)
        # Addresses the caller already knows (a server has the peer's from
        # accept()): each one asked of the socket is a system call.
        self.peer = peer
        self.local = local
        # An error answer gets a short while to reach a client that is still sending.
        self.close_by = min(deadline, time.monotonic() + 1.0) if deadline is not None else time.monotonic() + 1.0

    @classmethod
    def read(
        cls, sock: socket.socket, deadline: Optional[float], peer: Any = None, local: Any = None
    ) -> "_SocketHost":
        """The host for ``sock``, its request head read (see the class).

        Not in ``__init__``: a constructor is a C-level call, so the reads
        and waits below it would run one interpreter frame deeper on the
        thread's stack; with the Conn's, that touched one more 4 KiB page in
        every connection's thread, resident for as long as it idles.
        """
        self = cls(sock, deadline, peer, local)
        self._read_request(deadline)
        return self

    def _read_request(self, deadline: Optional[float]) -> None:
        sock = self.sock
        try:
            head, self.rest = read_http_head(lambda view: self.io.recv_into(view, deadline), response=False)
            parsed = parse_request_head(head)
        except HttpParseError as e:
            refused = HandshakeError(f"websocket: malformed request: {e}", e.status)
            self.answer_error(e.status, Headers())
            self.after_refusal(refused)
            raise refused from e
        except socket.timeout:
            sock.close()
            raise HandshakeError("websocket: handshake timed out reading the request", 408) from None
        except HeadEOF:
            sock.close()
            raise HandshakeError("websocket: connection closed before the request was complete", 400) from None
        except OSError as e:
            sock.close()
            raise HandshakeError(f"websocket: reading the request: {e}", 400) from e
        peer = self.peer
        if peer is None:
            try:
                peer = self.peer = sock.getpeername()
            except OSError:
                pass
        self.request = UpgradeRequest(sock, parsed, peer, self.KIND)

    def answer_error(self, status: int, headers: Headers) -> None:
        body = _error_body(status)
        data = serialize_response(Response(status, headers=_error_headers(headers, body, close=True), body=body))
        try:
            self.io.sendall(data, self.close_by)
        except OSError:
            pass

    def after_refusal(self, exc: HandshakeError) -> None:
        """Half-close, drain what the peer still sends (bounded), then close.

        Draining lets the error response reach the client instead of being
        destroyed by a TCP reset caused by unread request bytes.
        """
        try:
            self.sock.shutdown(socket.SHUT_WR)
            self.io.drain(self.close_by)
        except OSError:
            pass
        finally:
            self.sock.close()

    def take_over(self) -> Tuple[socket.socket, bytes]:
        return self.sock, self.rest

    def addresses(self, sock: socket.socket) -> Tuple[Any, Any]:
        return (self.local if self.local is not None else sock.getsockname()), self.peer


def _host_for(request: UpgradeSource, deadline: Optional[float]) -> _Host:
    """The adapter for what was passed to ``upgrade``; the one place that looks at its type."""
    if isinstance(request, socket.socket):
        return _SocketHost.read(request, deadline)
    if isinstance(request, Mapping):
        return _WSGIHost(request)
    if _is_request_handler(request):
        return _HTTPServerHost(request)
    if isinstance(request, (Request, UpgradeRequest)):
        raise TypeError("upgrade() of a parsed request needs the socket: pass the socket instead")
    raise TypeError(
        "upgrade() takes a BaseHTTPRequestHandler, a WSGI environ or a socket, " f"not {type(request).__name__}"
    )


def _as_request(request: Any) -> UpgradeRequest:
    """An :class:`UpgradeRequest` for a handler, a WSGI environ, an UpgradeRequest or a parsed head."""
    if isinstance(request, UpgradeRequest):
        return request
    if isinstance(request, Request):
        return UpgradeRequest(request, request, None, _SocketHost.KIND)
    if isinstance(request, Mapping):
        return _WSGIHost.parse(request)
    if _is_request_handler(request):
        return _HTTPServerHost.parse(request)
    raise TypeError(
        "expected a BaseHTTPRequestHandler, a WSGI environ, an UpgradeRequest or a Request, "
        f"not {type(request).__name__}"
    )


def is_websocket_upgrade(request: Any) -> bool:
    """Whether ``request`` asks for a WebSocket upgrade (gorilla's ``IsWebSocketUpgrade``).

    True when Connection lists ``upgrade`` and Upgrade lists ``websocket``.
    ``request`` is a ``BaseHTTPRequestHandler``, a WSGI environ, an
    :class:`UpgradeRequest` or an :class:`~gorillaws.http11.Request`.
    """
    h = _as_request(request).headers
    return token_list_contains(h, "Connection", "upgrade") and token_list_contains(h, "Upgrade", "websocket")


def subprotocols(request: Any) -> List[str]:
    """The subprotocols the client offers, in its order (gorilla's ``Subprotocols``)."""
    return parse_subprotocols(_as_request(request).headers)


def _is_request_handler(obj: Any) -> bool:
    return hasattr(obj, "connection") and hasattr(obj, "headers") and hasattr(obj, "command")


def _error_headers(headers: Headers, body: bytes, close: bool) -> Headers:
    """The headers of an error answer: the caller's, a text body, and Connection: close."""
    h = headers.copy()
    h["Content-Type"] = "text/plain; charset=utf-8"
    h["X-Content-Type-Options"] = "nosniff"
    h["Content-Length"] = str(len(body))
    if close:
        h["Connection"] = "close"
    return h


_sync_worker_warned = False


def _warn_if_sync_worker(environ: Mapping[str, Any]) -> None:
    """Log once when the host is gunicorn's sync worker, which a WebSocket blocks."""
    global _sync_worker_warned
    if _sync_worker_warned:
        return
    software = str(environ.get("SERVER_SOFTWARE", ""))
    if software.lower().startswith("gunicorn") and not environ.get("wsgi.multithread", False):
        _sync_worker_warned = True
        log.warning(
            "gorillaws: gunicorn's sync worker serves one request per process: each WebSocket "
            "blocks its worker and the arbiter kills it after --timeout; run gunicorn with "
            "'-k gthread --threads N' (see docs/wsgi-flask-gunicorn.md)"
        )


# ---------------------------------------------------------------------------
# The upgrade, whatever the host
# ---------------------------------------------------------------------------

CheckOrigin = Callable[[UpgradeRequest], bool]
ErrorCallback = Callable[[UpgradeRequest, int, str], Any]
AccessCheck = Callable[[UpgradeRequest], Optional[str]]


def _upgrade(
    u: "Upgrader",
    host: _Host,
    response_header: HeaderInput,
    deadline: Optional[float],
    access_ok: Optional[AccessCheck] = None,
) -> Conn:
    """The one upgrade path: check, negotiate, answer 101, hand the socket to a Conn.

    ``access_ok`` (a :class:`Handler`'s) runs after the checks and returns
    the subprotocol to answer with (None: negotiate as usual).  A refusal is
    answered through the host (or ``u.error``) and raised as
    :class:`HandshakeError`.
    """
    req = host.request
    try:
        key = check_client_request(req.as_request())
        if not req.headers.get_all("Host"):
            raise HandshakeError("websocket: missing 'Host' header", 400)
        if not (u.check_origin(req) if u.check_origin is not None else u.default_check_origin(req)):
            raise HandshakeError("websocket: request origin not allowed by Upgrader.check_origin", 403)
        protocol = access_ok(req) if access_ok is not None else None
        extra: Optional[Headers] = None
        header_protocol = ""
        if response_header is not None:
            extra = Headers(response_header)  # a copy; Go-shaped mappings of lists too
            header_protocol = extra.pop("Sec-WebSocket-Protocol") or ""
        if protocol is None:
            protocol = (
                select_subprotocol(u.subprotocols, parse_subprotocols(req.headers)) if u.subprotocols else header_protocol
            )
        extensions, codec = _negotiate_compression(u, req)
        response = build_response(accept_key(key), protocol, extensions, extra)
        sock, initial = host.take_over()
    except HandshakeError as exc:
        raise _refuse(u, host, exc) from None
    except ValueError as exc:  # a response header the library writes itself, or a malformed one
        raise _refuse(u, host, HandshakeError(str(exc), 500)) from None
    # One SocketIO from the request read to the Conn: each new one is a system call.
    sio = host.io if host.io is not None and host.io.sock is sock else SocketIO(sock)
    try:
        sio.sendall(response, deadline)
    except OSError as e:
        sock.close()
        raise HandshakeError(f"websocket: writing the handshake response: {e}", 500) from e
    addrs = host.addresses(sock)  # read here, not in Conn(): see socket_addresses
    return Conn(
        sock,
        is_server=True,
        addrs=addrs,
        io=sio,
        subprotocol=protocol,
        read_buffer_size=u.read_buffer_size,
        write_buffer_size=u.write_buffer_size,
        write_buffer_pool=u.write_buffer_pool,
        initial_data=initial,
        compression=codec,
        resource_name=req.target,
        origin=req.origin,
    )


def upgrade_accepted(u: "Upgrader", sock: socket.socket, peer: Any, local: Any = None) -> Tuple[Conn, UpgradeRequest]:
    """``u.upgrade(sock)`` for a socket just accepted whose addresses the caller knows; also the request.

    ``peer`` is the address ``accept()`` returned; ``local`` the socket's own
    address when known (a listener bound to one address), else None: each
    one saves a system call per connection.  Returns the Conn and the
    :class:`UpgradeRequest` it was made from (for ``handler(conn,
    request)``).  Raises as :meth:`Upgrader.upgrade` does.  Used by
    :class:`gorillaws.Server`.
    """
    deadline = u._deadline()
    host = _SocketHost.read(sock, deadline, peer, local)
    return _upgrade(u, host, None, deadline), host.request


def _negotiate_compression(u: "Upgrader", req: UpgradeRequest) -> Tuple[str, Optional[deflate.PerMessageDeflate]]:
    """The single place permessage-deflate is negotiated: (header value, codec)."""
    mode = u.effective_compression_mode()
    if mode == deflate.COMPRESSION_DISABLED:
        return "", None
    try:
        offers = parse_extensions(req.headers)
    except ValueError:
        return "", None  # a malformed offer is declined, not fatal
    result = deflate.server_negotiate(offers, mode, level=u.compression_level, threshold=u.compression_threshold)
    return ("", None) if result is None else result


def _refuse(u: "Upgrader", host: _Host, exc: HandshakeError) -> HandshakeError:
    """Answer a refused handshake (the ``error`` callback, else the host's default); return exc."""
    req = host.request
    for name, value in exc.headers.items():
        req.response_headers[name] = value
    if u.error is not None:
        host.keep_error_result(exc, u.error(req, exc.status, str(exc)))
    else:
        host.answer_error(exc.status, req.response_headers)
    host.after_refusal(exc)
    return exc


class Upgrader(HandshakeOptions):
    """Upgrades HTTP requests to WebSocket connections (gorilla's ``Upgrader``).

    Every option is a keyword argument and a plain attribute of the same
    name; the shared ones are checked when set (see
    :class:`gorillaws.options.HandshakeOptions`: ``compression_level=42``
    raises :class:`ValueError` here, not at the first handshake).  An
    Upgrader holds no per-connection state, so one instance may serve every
    thread at once (don't mutate it while it does).

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
        super().__init__(
            handshake_timeout, read_buffer_size, write_buffer_size, write_buffer_pool, subprotocols,
            enable_compression, compression_mode, compression_level, compression_threshold,
        )
        self.error = error
        self.check_origin = check_origin
        self.origin_patterns = list(origin_patterns)
        self.insecure_skip_verify = insecure_skip_verify

    def default_check_origin(self, request: UpgradeRequest) -> bool:
        """The origin check used when :attr:`check_origin` is None.

        True with ``insecure_skip_verify``; else when the Origin matches
        ``origin_patterns`` or the Host (gorilla's same-origin rule), or
        there is no Origin header.  A custom ``check_origin`` may call it to
        extend the default rather than replace it.
        """
        if self.insecure_skip_verify:
            return True
        if self.origin_patterns:
            return origin_allowed(request.origin, request.host, self.origin_patterns)
        return check_same_origin(request.origin, request.host)

    def upgrade(self, request: UpgradeSource, response_header: HeaderInput = None) -> Conn:
        """Complete the opening handshake and return the server-side :class:`Conn`.

        ``request`` is a ``BaseHTTPRequestHandler`` (call from ``do_GET``), a
        WSGI environ (the view then returns :data:`HIJACKED`), or an accepted
        socket whose request the library reads.  ``response_header`` adds
        headers to the 101 response (``Set-Cookie``, or
        ``Sec-WebSocket-Protocol`` when :attr:`subprotocols` is empty): a
        :class:`~gorillaws.http11.Headers`, (name, value) pairs, or a mapping
        of names to a value or to a list of values (Go's ``http.Header``
        shape, ``{"Set-Cookie": ["a=1", "b=2"]}``).

        On failure the error response is answered (see ``error``) and
        :class:`HandshakeError` is raised with its ``status``; for WSGI its
        ``response`` is the WSGI app to return.  A raw socket is closed on
        failure; the host servers' sockets are left to them.  A
        ``response_header`` holding a header the library writes itself
        (Upgrade, Connection, Sec-WebSocket-Accept, Sec-WebSocket-Extensions)
        is answered 500 and raised as :class:`HandshakeError`, as gorilla
        does.  Raises :class:`TypeError` for a ``request`` of another type.
        """
        deadline = self._deadline()
        return _upgrade(self, _host_for(request, deadline), response_header, deadline)

    def _deadline(self) -> Optional[float]:
        """When a handshake starting now must be done by (None: no limit)."""
        return None if self.handshake_timeout is None else time.monotonic() + self.handshake_timeout


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
        extra = {"Server": self.server_name} if self.server_name else None
        return _upgrade(u, _host_for(request, deadline), extra, deadline, self._access)

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
