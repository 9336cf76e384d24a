"""The client side: :class:`Dialer` opens WebSocket connections (gorilla's ``Dialer``).

One dial, top to bottom (:meth:`Dialer.dial`):

1. parse the URL (``ws``/``wss``, ``http``/``https`` read as ``ws``/``wss``);
2. ask ``proxy`` whether to go through a proxy;
3. open the TCP connection: ``net_dial_context``/``net_dial`` (default
   :func:`gorillaws.dialing.dial_tcp`), or a tunnel through the proxy
   (:func:`gorillaws.proxy.connect_via_proxy`), or ``net_dial_tls``;
4. for ``wss``, the TLS handshake with ``tls_client_config``
   (:func:`gorillaws.dialing.tls_handshake`);
5. send the upgrade request (:func:`gorillaws.handshake.build_request`), read
   the response head (:func:`gorillaws.transport.read_http_head`), store
   cookies in ``jar``, and check the answer
   (:func:`gorillaws.handshake.check_server_response`, then the
   permessage-deflate answer with :func:`gorillaws.deflate.client_accept`);
6. hand the socket to a client-side :class:`gorillaws.conn.Conn`.

``handshake_timeout`` bounds steps 3 to 5 together, and a ``cancel`` event
aborts any of them.  Whatever fails, the socket is closed before the error
propagates.

Name mapping from gorilla: ``NetDial`` -> ``net_dial``, ``NetDialContext`` ->
``net_dial_context``, ``DialContext`` -> ``dial(..., cancel=)``, ``NetDialTLSContext``
-> ``net_dial_tls``, ``Proxy`` -> ``proxy``, ``TLSClientConfig`` ->
``tls_client_config``, ``HandshakeTimeout`` -> ``handshake_timeout``,
``ReadBufferSize``/``WriteBufferSize`` -> ``read_buffer_size``/``write_buffer_size``,
``WriteBufferPool`` -> ``write_buffer_pool``, ``Subprotocols`` ->
``subprotocols``, ``EnableCompression`` -> ``enable_compression``, ``Jar`` ->
``jar``, ``DefaultDialer`` -> :data:`DEFAULT_DIALER`.  From nhooyr's
``DialOptions``: ``host`` and ``compression_mode``.
"""

from __future__ import annotations

import base64
import re
import email.message
import http.cookiejar
import socket
import ssl
import threading
import time
import urllib.request
from typing import Callable, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import SplitResult, quote, unquote, urlsplit

from . import deflate
from .conn import DEFAULT_BUFFER_SIZE, BufferPool, Conn, socket_addresses
from .deadline import remaining
from .dialing import (
    NetDialContext,
    check_cancel,
    connect_tcp,
    dial_error,
    fail_closed,
    head_reader,
    join_host_port,
    tls_handshake,
)
from .exceptions import DeadlineExceeded, ErrBadHandshake
from .handshake import Extension, build_request, check_server_response, generate_key, parse_subprotocols
from .http11 import Headers, HttpParseError, Response, parse_response_head
from .options import HandshakeOptions
from .proxy import NetDial, connect_via_proxy, proxy_from_environment
from .transport import HeadEOF, SocketIO, default_tls_context, read_http_head

__all__ = ["Dialer", "DEFAULT_DIALER", "dial", "Response", "RequestHeader"]

#: ``request_header`` may be a :class:`Headers`, a mapping of name to a value
#: (or to a list of values, like Go's ``http.Header``), or (name, value) pairs.
RequestHeader = Union[Headers, Mapping[str, Union[str, Sequence[str]]], Iterable[Tuple[str, str]]]

#: gorilla's ``DefaultDialer`` handshake timeout, also the default of a new :class:`Dialer`.
DEFAULT_HANDSHAKE_TIMEOUT = 45.0

#: How much of a refused handshake's body is kept in ``response.body``.
MAX_ERROR_BODY = 1024

_SCHEMES = {"ws": ("ws", 80), "http": ("ws", 80), "wss": ("wss", 443), "https": ("wss", 443)}

# Characters left as they are when percent-encoding a path or query, and
# a search for any other (quote() leaves ASCII letters and digits too).
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"
_QUERY_SAFE = _PATH_SAFE + "?"
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9/:@!$&'()*+,;=%\-._~]")
_QUERY_UNSAFE = re.compile(r"[^A-Za-z0-9/:@!$&'()*+,;=%\-._~?]")


class _Target(NamedTuple):
    """A parsed WebSocket URL."""

    url: str  # normalised: ws:// or wss://, no user info, no fragment
    secure: bool
    hostname: str  # no brackets, IDNA-encoded
    port: int
    host_header: str  # host[:port] as written in the URL
    resource: str  # path and query
    username: Optional[str]
    password: Optional[str]


def _netloc(parts: SplitResult) -> Tuple[Optional[str], Optional[int], Optional[str], Optional[str]]:
    """``(hostname, port, username, password)`` exactly as ``parts``' properties give them.

    The properties parse the netloc once each (about half the cost of a
    dial's URL parsing); the common netloc, ``host[:digits]`` with no user
    info, brackets or zone, is split here once instead.  Raises ValueError
    for a bad port, as ``parts.port`` does.
    """
    netloc = parts.netloc
    if "@" not in netloc and "[" not in netloc and "%" not in netloc:
        host, _, port = netloc.partition(":")
        if host and (not port or (port.isdigit() and port.isascii() and int(port) <= 65535)):
            return host.lower(), int(port) if port else None, None, None
    return parts.hostname, parts.port, parts.username, parts.password


def _quoted(text: str, unsafe: "re.Pattern[str]", safe: str) -> str:
    """``quote(text, safe=safe)``, skipped when ``unsafe`` (the complement of what it leaves) finds nothing."""
    return quote(text, safe=safe) if unsafe.search(text) else text


def _parse_url(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        hostname, port, username, password = _netloc(parts)
    except ValueError as exc:
        raise ValueError(f"websocket: malformed URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"websocket: bad scheme {parts.scheme!r} in {url!r} (want ws, wss, http or https)")
    ws_scheme, default_port = _SCHEMES[scheme]
    if not hostname:
        raise ValueError(f"websocket: no host in URL {url!r}")
    try:
        hostname = hostname.encode("idna").decode("ascii") if not hostname.isascii() else hostname
    except UnicodeError:
        raise ValueError(f"websocket: bad host name in URL {url!r}") from None
    hostport = parts.netloc.rpartition("@")[2]
    host_header = hostport
    if not hostport.isascii():
        shown = f"[{hostname}]" if ":" in hostname else hostname
        host_header = f"{shown}:{port}" if port is not None else shown
    path = _quoted(parts.path or "/", _PATH_UNSAFE, _PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    resource = path + ("?" + _quoted(parts.query, _QUERY_UNSAFE, _QUERY_SAFE) if parts.query else "")
    return _Target(
        url=f"{ws_scheme}://{host_header}{resource}",
        secure=ws_scheme == "wss",
        hostname=hostname,
        port=port if port is not None else default_port,
        host_header=host_header,
        resource=resource,
        username=unquote(username) if username is not None else None,
        password=unquote(password) if password is not None else None,
    )


class _CookieResponse:
    """The little of ``http.client.HTTPResponse`` that CookieJar.extract_cookies uses."""

    def __init__(self, headers: Headers) -> None:
        self._msg = email.message.Message()
        for name, value in headers.items():
            if name.lower() in ("set-cookie", "set-cookie2"):
                self._msg[name] = value

    def info(self) -> email.message.Message:
        return self._msg


def _cookie_request(target: _Target) -> urllib.request.Request:
    http_scheme = "https" if target.secure else "http"
    return urllib.request.Request(f"{http_scheme}://{target.host_header}{target.resource}")


class Dialer(HandshakeOptions):
    """Opens client connections; configure with keyword arguments or attributes.

    Every option is also a plain attribute of the same name, so a dialer can
    be built and then adjusted; the shared options are checked when set (see
    :class:`gorillaws.options.HandshakeOptions`: a bad value raises
    :class:`ValueError` or :class:`TypeError` at once).  A Dialer holds no
    per-connection state: one instance may dial from many threads at once
    (the ``jar`` you give must be thread-safe then; the stdlib's
    :class:`http.cookiejar.CookieJar` is).

    :param net_dial: ``net_dial(network, addr) -> socket`` opens the TCP
        connection (``network`` is ``"tcp"``, ``addr`` ``"host:port"``, IPv6
        in brackets, as in Go).  It gets neither the deadline nor the cancel
        event; prefer ``net_dial_context``.  Also used to reach an HTTP(S)
        proxy.  Return any connected stream socket, e.g. a Unix socket.
    :param net_dial_context: ``net_dial_context(network, addr, deadline,
        cancel) -> socket`` (Go's ``NetDialContext``): as ``net_dial``, and
        also given the handshake deadline (a :func:`time.monotonic` time or
        None) and the ``cancel`` event of :meth:`dial` (or None).  Wins over
        ``net_dial``.  Default: :func:`gorillaws.dialing.dial_tcp`, whose
        errors name the address (``dial tcp 127.0.0.1:9: connection
        refused``).
    :param net_dial_tls: ``net_dial_tls(network, addr) -> ssl.SSLSocket``
        for ``wss`` URLs: it must return a socket whose TLS handshake is done
        (gorilla's ``NetDialTLSContext``); ``tls_client_config`` is then not
        used.  Not used when a proxy applies: the tunnel is dialled with
        ``net_dial`` and TLS is done with ``tls_client_config``.
    :param proxy: ``proxy(url) -> Optional[str]`` returns the proxy URL to
        use for the (normalised ``ws://``/``wss://``) URL, or None for a
        direct connection.  None (the default of a new Dialer): no proxy.
        :data:`DEFAULT_DIALER` uses
        :func:`gorillaws.proxy.proxy_from_environment`.  See
        :func:`gorillaws.proxy.connect_via_proxy` for the proxy schemes.
    :param tls_client_config: the :class:`ssl.SSLContext` for ``wss``.
        Default: certificate and host name verification against certifi's
        CA bundle.  The URL's host name is sent as SNI and verified.
    :param proxy_tls_config: the :class:`ssl.SSLContext` for TLS to an
        ``https://`` proxy.  Default: ``tls_client_config`` if given, else
        the same default as above.
    :param handshake_timeout: seconds for connecting, the proxy, TLS and the
        HTTP upgrade together; None for no limit.  Default 45, as gorilla's
        ``DefaultDialer`` (a zero Go ``Dialer`` has none; here a plain
        ``Dialer()`` never waits forever on a silent server).  When it
        passes, :class:`gorillaws.exceptions.DeadlineExceeded` (a
        :class:`TimeoutError`) is raised.  A custom 2-argument ``net_dial``
        is called without a limit; the limit applies to everything after it
        returns.
    :param read_buffer_size: ``write_buffer_size``, ``write_buffer_pool``:
        passed to :class:`gorillaws.conn.Conn` (0 means 4096).
    :param subprotocols: offered in ``Sec-WebSocket-Protocol``.
    :param enable_compression: offer permessage-deflate without context
        takeover (gorilla's behaviour).
    :param compression_mode: one of the ``gorillaws.deflate.COMPRESSION_*``
        modes (nhooyr's ``CompressionMode``); when not None it overrides
        ``enable_compression``.
    :param compression_level: deflate level (-2..9) of the connection's
        compressor (gorilla's default is 1).
    :param compression_threshold: messages shorter than this many bytes are
        sent uncompressed (nhooyr's ``CompressionThreshold``); None picks
        nhooyr's defaults, 512 without and 128 with context takeover.
    :param jar: an :class:`http.cookiejar.CookieJar`: its cookies for the URL
        are sent, and ``Set-Cookie`` headers of the response stored.
    :param host: the Host header to send instead of the URL's host (nhooyr's
        ``DialOptions.Host``).  A ``Host`` entry in ``request_header`` wins
        over both, as in gorilla.
    """

    def __init__(
        self,
        *,
        net_dial: Optional[NetDial] = None,
        net_dial_context: Optional[NetDialContext] = None,
        net_dial_tls: Optional[Callable[[str, str], socket.socket]] = None,
        proxy: Optional[Callable[[str], Optional[str]]] = None,
        tls_client_config: Optional[ssl.SSLContext] = None,
        proxy_tls_config: Optional[ssl.SSLContext] = None,
        handshake_timeout: Optional[float] = DEFAULT_HANDSHAKE_TIMEOUT,
        read_buffer_size: int = 0,
        write_buffer_size: int = 0,
        write_buffer_pool: Optional[BufferPool] = None,
        subprotocols: Sequence[str] = (),
        enable_compression: bool = False,
        compression_mode: Optional[int] = None,
        compression_level: int = 1,
        compression_threshold: Optional[int] = None,
        jar: Optional[http.cookiejar.CookieJar] = None,
        host: str = "",
    ) -> None:
        super().__init__(
            handshake_timeout, read_buffer_size, write_buffer_size, write_buffer_pool, subprotocols,
            enable_compression, compression_mode, compression_level, compression_threshold,
        )
        self.net_dial = net_dial
        self.net_dial_context = net_dial_context
        self.net_dial_tls = net_dial_tls
        self.proxy = proxy
        self.tls_client_config = tls_client_config
        self.proxy_tls_config = proxy_tls_config
        self.jar = jar
        self.host = host

    def __repr__(self) -> str:
        return (
            f"Dialer(handshake_timeout={self.handshake_timeout!r}, proxy={self.proxy!r}, "
            f"subprotocols={self.subprotocols!r}, compression_mode={self.effective_compression_mode()!r})"
        )

    def dial(
        self,
        url: str,
        request_header: Optional[RequestHeader] = None,
        *,
        cancel: Optional[threading.Event] = None,
    ) -> Tuple[Conn, Response]:
        """Connect to ``url`` and perform the opening handshake.

        ``request_header`` adds request headers (Origin, Cookie,
        Authorization, Sec-WebSocket-Protocol when ``subprotocols`` is
        empty, Host to override the host).  User info in the URL
        (``wss://user:pass@host/``) is sent as Basic ``Authorization`` unless
        ``request_header`` has one.  Setting ``cancel`` (a
        :class:`threading.Event`, from any thread) aborts the dial in any
        phase: connect, proxy, TLS or handshake (Go's ``DialContext``).

        Returns the connection and the server's response (``.status`` 101,
        ``.headers``: the chosen subprotocol, cookies, ...).

        Raises:

        * :class:`ValueError`: a malformed URL, a scheme other than
          ws/wss/http/https, or a request header that is the library's to
          write (Upgrade, Connection, Sec-WebSocket-Key/-Version/-Extensions).
        * :class:`gorillaws.exceptions.ErrBadHandshake`: the server did not
          upgrade, or its answer breaks RFC 6455 section 4.1, or is not HTTP
          at all (said at once, with a hint when it is TLS).  ``.response``
          (when the response head could be parsed) has ``.status``,
          ``.headers`` and up to 1024 bytes of ``.body``, so redirects (3xx
          with ``Location``) and authentication (401) can be handled.
        * :class:`gorillaws.exceptions.DeadlineExceeded`: ``handshake_timeout``
          passed.
        * :class:`gorillaws.dialing.DialCancelled`: ``cancel`` was set.
        * :class:`gorillaws.proxy.ProxyError`: the proxy refused.
        * :class:`ssl.SSLCertVerificationError`: the server's certificate did
          not verify; the message names the URL.  :class:`ssl.SSLError`: TLS
          failed (for a server that does not speak TLS, with the hint "did
          you mean ws://?").
        * :class:`OSError`: the connection could not be made or broke; a
          :class:`gorillaws.dialing.DialError` whose message names the
          address (and the proxy, when the proxy could not be reached).
        """
        target = _parse_url(url)
        deadline = time.monotonic() + self.handshake_timeout if self.handshake_timeout is not None else None
        headers = self._request_headers(target, request_header)
        mode = self.effective_compression_mode()
        offer = deflate.client_offer(mode) if mode != deflate.COMPRESSION_DISABLED else ""
        # Subprotocols and Origin can only come from request_header (the
        # headers added to it are Authorization, Cookie and Host).
        offered_protocols = list(self.subprotocols) or (parse_subprotocols(headers) if request_header else [])
        key = generate_key()
        request = build_request(target.host_header, target.resource, key, self.subprotocols, offer, headers)

        sock = self._connect(target, deadline, cancel)
        try:
            io = SocketIO(sock)
            if cancel is not None:
                check_cancel(cancel, "sending the handshake request")
            io.sendall(request, deadline)
            resp, leftover = _read_response(io, target, deadline, cancel)
            if self.jar is not None:
                self.jar.extract_cookies(_CookieResponse(resp.headers), _cookie_request(target))  # type: ignore[arg-type]
            if resp.status != 101:
                resp.body = _read_error_body(io, resp, leftover, deadline)
            subprotocol, extensions = _check_response(resp, key, offered_protocols, offer, target)
            # No extension in the answer: nothing to check (the options were
            # checked when set), and the connection is uncompressed.
            compression = self._accept_compression(extensions, mode, resp) if extensions else None
            addrs = socket_addresses(sock)  # read here, not in Conn(): see socket_addresses
            conn = Conn(
                sock,
                is_server=False,
                addrs=addrs,
                subprotocol=subprotocol,
                read_buffer_size=self.read_buffer_size or DEFAULT_BUFFER_SIZE,
                write_buffer_size=self.write_buffer_size or DEFAULT_BUFFER_SIZE,
                write_buffer_pool=self.write_buffer_pool,
                initial_data=leftover,
                compression=compression,
                resource_name=target.resource,
                origin=headers.get("Origin") if request_header else None,
                io=io,
            )
        except BaseException as exc:
            fail_closed(sock, exc, f"websocket: handshake timeout dialling {target.url}")
        return conn, resp

    def _accept_compression(self, extensions: List[Extension], mode: int, resp: Response) -> Optional[deflate.PerMessageDeflate]:
        """The permessage-deflate codec the server's answer agrees to, or None; ErrBadHandshake if it is wrong."""
        try:
            return deflate.client_accept(extensions, mode, level=self.compression_level, threshold=self.compression_threshold)
        except ValueError as exc:
            raise ErrBadHandshake(f"websocket: bad handshake: {exc}", response=resp) from None

    def _request_headers(self, target: _Target, request_header: Optional[RequestHeader]) -> Headers:
        """The caller's headers plus Authorization from the URL, the jar's cookies and ``host``."""
        headers = Headers(request_header)
        if target.username is not None and "Authorization" not in headers:
            cred = f"{target.username}:{target.password or ''}".encode("utf-8")
            headers.add("Authorization", "Basic " + base64.b64encode(cred).decode("ascii"))
        if self.jar is not None:
            creq = _cookie_request(target)
            self.jar.add_cookie_header(creq)
            jar_cookies = creq.get_header("Cookie")
            if jar_cookies:
                existing = headers.get("Cookie")
                headers["Cookie"] = f"{existing}; {jar_cookies}" if existing else jar_cookies
        if "Host" not in headers and self.host:
            headers["Host"] = self.host
        return headers

    def _connect(self, target: _Target, deadline: Optional[float], cancel: Optional[threading.Event]) -> socket.socket:
        """The connected (and for wss, TLS-wrapped) socket; closed on failure.

        A plain socket may still carry the connect's timeout: the caller's
        :class:`SocketIO` clears it.
        """
        proxy_url = self.proxy(target.url) if self.proxy is not None else None
        ctx_dial = self.net_dial_context
        try:
            if proxy_url:
                net_dial: Optional[NetDial] = self.net_dial
                if ctx_dial is not None:
                    net_dial = lambda network, addr: ctx_dial(network, addr, deadline, cancel)  # noqa: E731
                sock = connect_via_proxy(
                    proxy_url,
                    target.hostname,
                    target.port,
                    deadline=deadline,
                    net_dial=net_dial,
                    proxy_tls_context=self.proxy_tls_config or self.tls_client_config,
                    cancel=cancel,
                )
            elif target.secure and self.net_dial_tls is not None:
                sock = self.net_dial_tls("tcp", join_host_port(target.hostname, target.port))
                if not isinstance(sock, ssl.SSLSocket):
                    sock.close()
                    raise TypeError("websocket: net_dial_tls must return an ssl.SSLSocket")
                return sock
            elif ctx_dial is not None:
                sock = ctx_dial("tcp", join_host_port(target.hostname, target.port), deadline, cancel)
            elif self.net_dial is not None:
                sock = self.net_dial("tcp", join_host_port(target.hostname, target.port))
            else:  # the default, without a "host:port" string round trip
                sock = connect_tcp(target.hostname, target.port, deadline, cancel)
        except DeadlineExceeded:
            raise  # already says which step ran out of time
        except socket.timeout as exc:  # from a custom net_dial
            addr = join_host_port(target.hostname, target.port)
            raise DeadlineExceeded(f"websocket: handshake timeout connecting to {addr}") from exc
        if not target.secure:
            return sock
        # TCP_NODELAY for the TLS handshake's writes; for plain connections
        # the Conn sets it once the handshake is done (the request is a
        # single write, which Nagle never delays).
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        ctx = self.tls_client_config if self.tls_client_config is not None else default_tls_context()
        tls = tls_handshake(sock, ctx, target.hostname, deadline, cancel, target.url)
        alpn = tls.selected_alpn_protocol()
        if alpn not in (None, "http/1.1"):
            tls.close()
            raise ssl.SSLError(
                1,  # (errno, strerror), so that str() is the message
                f"websocket: the server chose ALPN protocol {alpn!r} for {target.url}; "
                "the tls_client_config must offer only 'http/1.1' (or no ALPN)"
            )
        return tls


def _read_response(
    io: SocketIO, target: _Target, deadline: Optional[float], cancel: Optional[threading.Event]
) -> Tuple[Response, bytes]:
    """Read and parse the response head; returns it and the bytes that followed it."""
    bad = "websocket: bad handshake"
    # A TLS server answers a plain request with a reset, an alert or silence.
    tls_hint = "" if target.secure else "if the server speaks TLS, did you mean wss://?"
    try:
        head, rest = read_http_head(head_reader(io, deadline, cancel), response=True)
        return parse_response_head(head), rest
    except HeadEOF as exc:
        if exc.received:
            raise ErrBadHandshake(f"{bad}: connection closed before the response head was complete") from None
        hint = f" ({tls_hint})" if tls_hint else ""
        raise ErrBadHandshake(f"{bad}: {target.url} closed the connection without answering{hint}") from None
    except HttpParseError as exc:
        if exc.not_http == "a TLS record" and not target.secure:
            raise ErrBadHandshake(f"{bad}: {target.url} answered with TLS: did you mean wss://?") from None
        if exc.not_http is not None:
            raise ErrBadHandshake(f"{bad}: {target.url} does not speak HTTP: it sent {exc.not_http}") from None
        raise ErrBadHandshake(f"{bad}: malformed response: {exc}") from None
    except ConnectionResetError as exc:
        raise dial_error(exc, f"websocket: reading the handshake response from {target.url}", tls_hint) from None


def _check_response(
    resp: Response, key: str, offered_protocols: Sequence[str], offer: str, target: _Target
) -> Tuple[str, List[Extension]]:
    """check_server_response, with a hint when a plain request reached an HTTPS server."""
    try:
        return check_server_response(resp, key, offered_protocols, [offer] if offer else [])
    except ErrBadHandshake as exc:
        if not target.secure and b"HTTPS server" in resp.body:
            raise ErrBadHandshake(f"{exc}; the server speaks TLS: did you mean wss://?", response=resp) from None
        raise


def _read_error_body(io: SocketIO, resp: Response, have: bytes, deadline: Optional[float]) -> bytes:
    """Up to MAX_ERROR_BODY bytes of a refused handshake's body (best effort)."""
    chunked = "chunked" in (resp.headers.get("Transfer-Encoding") or "").lower()
    length: Optional[int] = None
    cl = resp.headers.get("Content-Length")
    if cl is not None and cl.strip().isdigit():
        length = int(cl.strip())
    if resp.status in (204, 304) or 100 <= resp.status < 200:
        length = 0
    # Raw bytes wanted: the body, or for chunked encoding enough to decode it.
    want = MAX_ERROR_BODY if length is None else min(length, MAX_ERROR_BODY)
    if chunked:
        want = MAX_ERROR_BODY + 256
    left = remaining(deadline)
    deadline = time.monotonic() + (5.0 if left is None else min(left, 5.0))  # never wait long for an error body
    data = bytearray(have)
    chunk = bytearray(4096)
    try:
        while len(data) < want and not (chunked and b"\r\n0\r\n" in data):
            n = io.recv_into(memoryview(chunk), deadline)
            if not n:
                break
            data += chunk[:n]
    except OSError:
        pass
    if chunked:
        return _dechunk(bytes(data))[:MAX_ERROR_BODY]
    return bytes(data[:want])


def _dechunk(data: bytes) -> bytes:

    out = bytearray()
    pos = 0
    while True:
        eol = data.find(b"\r\n", pos)
        if eol < 0:
            break
        try:
            size = int(data[pos:eol].split(b";", 1)[0].strip(), 16)
        except ValueError:
            break
        if size == 0:
            break
        out += data[eol + 2 : eol + 2 + size]
        pos = eol + 2 + size + 2
        if pos > len(data):
            break
    return bytes(out)


#: gorilla's ``DefaultDialer``: proxies from the environment
#: (:func:`gorillaws.proxy.proxy_from_environment`) and a 45 second
#: handshake timeout.  Shared: set attributes on your own :class:`Dialer`
#: rather than on this one.
DEFAULT_DIALER = Dialer(proxy=proxy_from_environment, handshake_timeout=DEFAULT_HANDSHAKE_TIMEOUT)


def dial(
    url: str, request_header: Optional[RequestHeader] = None, *, cancel: Optional[threading.Event] = None
) -> Tuple[Conn, Response]:
    """``DEFAULT_DIALER.dial(url, request_header, cancel=cancel)``; see :meth:`Dialer.dial`."""
    return DEFAULT_DIALER.dial(url, request_header, cancel=cancel)
