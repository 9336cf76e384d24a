"""The client side: :class:`Dialer` opens WebSocket connections (gorilla's ``Dialer``).

One dial, top to bottom (:meth:`Dialer.dial`):

1. parse the URL (``ws``/``wss``, ``http``/``https`` read as ``ws``/``wss``);
2. ask ``proxy`` whether to go through a proxy;
3. open the TCP connection: ``net_dial``, or a tunnel through the proxy
   (:func:`gorillaws.proxy.connect_via_proxy`), or ``net_dial_tls``;
4. for ``wss``, the TLS handshake with ``tls_client_config``;
5. send the upgrade request (:func:`gorillaws.handshake.build_request`), read
   the response head (at most :data:`gorillaws.http11.MAX_HEAD_SIZE` bytes),
   store cookies in ``jar``, and check the answer
   (:func:`gorillaws.handshake.check_server_response`, then the
   permessage-deflate answer with :func:`gorillaws.deflate.client_accept`);
6. hand the socket to a client-side :class:`gorillaws.conn.Conn`.

``handshake_timeout`` bounds steps 3 to 5 together.  Whatever fails, the
socket is closed before the error propagates.

Name mapping from gorilla: ``NetDial`` -> ``net_dial``, ``NetDialTLSContext``
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
import email.message
import http.cookiejar
import socket
import ssl
import time
import urllib.request
from typing import Callable, Iterable, List, Mapping, NamedTuple, Optional, Sequence, Tuple, Union
from urllib.parse import quote, unquote, urlsplit

from . import deflate
from .conn import DEFAULT_BUFFER_SIZE, BufferPool, Conn
from .exceptions import DeadlineExceeded, ErrBadHandshake
from .handshake import build_request, check_server_response, generate_key, parse_subprotocols
from .http11 import MAX_HEAD_SIZE, Headers, HttpParseError, Response, find_head_end, parse_response_head
from .proxy import NetDial, connect_via_proxy, join_host_port, proxy_from_environment

__all__ = ["Dialer", "DEFAULT_DIALER", "dial", "Response", "RequestHeader"]

#: ``request_header`` may be a :class:`Headers`, a mapping of name to a value
#: (or to a list of values, like Go's ``http.Header``), or (name, value) pairs.
RequestHeader = Union[Headers, Mapping[str, Union[str, Sequence[str]]], Iterable[Tuple[str, str]]]

#: How much of a refused handshake's body is kept in ``response.body``.
MAX_ERROR_BODY = 1024

_SCHEMES = {"ws": ("ws", 80), "http": ("ws", 80), "wss": ("wss", 443), "https": ("wss", 443)}

# Characters left as they are when percent-encoding a path or query.
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"
_QUERY_SAFE = _PATH_SAFE + "?"


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


def _parse_url(url: str) -> _Target:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"websocket: malformed URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEMES:
        raise ValueError(f"websocket: bad scheme {parts.scheme!r} in {url!r} (want ws, wss, http or https)")
    ws_scheme, default_port = _SCHEMES[scheme]
    hostname = parts.hostname
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
    path = quote(parts.path or "/", safe=_PATH_SAFE)
    if not path.startswith("/"):
        path = "/" + path
    resource = path + ("?" + quote(parts.query, safe=_QUERY_SAFE) if parts.query else "")
    return _Target(
        url=f"{ws_scheme}://{host_header}{resource}",
        secure=ws_scheme == "wss",
        hostname=hostname,
        port=port if port is not None else default_port,
        host_header=host_header,
        resource=resource,
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _to_headers(request_header: Optional[RequestHeader]) -> Headers:
    h = Headers()
    if request_header is None:
        return h
    if isinstance(request_header, Headers):
        return request_header.copy()
    if isinstance(request_header, Mapping):
        for name, value in request_header.items():
            if isinstance(value, str):
                h.add(name, value)
            else:
                for v in value:
                    h.add(name, v)
        return h
    for name, value in request_header:
        h.add(name, value)
    return h


def _default_tls_config() -> ssl.SSLContext:
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi is a dependency
        return ssl.create_default_context()


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


class Dialer:
    """Opens client connections; configure with keyword arguments or attributes.

    Every option is also a plain attribute of the same name, so a dialer can
    be built and then adjusted.  A Dialer holds no per-connection state: one
    instance may dial from many threads at once (the ``jar`` you give must be
    thread-safe then; the stdlib's :class:`http.cookiejar.CookieJar` is).

    :param net_dial: ``net_dial(network, addr) -> socket`` opens the TCP
        connection (``network`` is ``"tcp"``, ``addr`` ``"host:port"``, IPv6
        in brackets, as in Go).  Default: :func:`socket.create_connection`
        with the handshake timeout.  Also used to reach an HTTP(S) proxy.
        Return any connected stream socket, e.g. a Unix socket.
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
        HTTP upgrade together; None for no limit.  When it passes,
        :class:`gorillaws.exceptions.DeadlineExceeded` (a
        :class:`TimeoutError`) is raised.  A custom ``net_dial`` is called
        without a limit (it gets no timeout argument); the limit applies to
        everything after it returns.
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
        net_dial_tls: Optional[Callable[[str, str], socket.socket]] = None,
        proxy: Optional[Callable[[str], Optional[str]]] = None,
        tls_client_config: Optional[ssl.SSLContext] = None,
        proxy_tls_config: Optional[ssl.SSLContext] = None,
        handshake_timeout: Optional[float] = None,
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
        self.net_dial = net_dial
        self.net_dial_tls = net_dial_tls
        self.proxy = proxy
        self.tls_client_config = tls_client_config
        self.proxy_tls_config = proxy_tls_config
        self.handshake_timeout = handshake_timeout
        self.read_buffer_size = read_buffer_size
        self.write_buffer_size = write_buffer_size
        self.write_buffer_pool = write_buffer_pool
        self.subprotocols = list(subprotocols)
        self.enable_compression = enable_compression
        self.compression_mode = compression_mode
        self.compression_level = compression_level
        self.compression_threshold = compression_threshold
        self.jar = jar
        self.host = host

    def __repr__(self) -> str:
        return (
            f"Dialer(handshake_timeout={self.handshake_timeout!r}, proxy={self.proxy!r}, "
            f"subprotocols={self.subprotocols!r}, compression_mode={self._mode()!r})"
        )

    def _mode(self) -> int:
        if self.compression_mode is not None:
            return self.compression_mode
        return deflate.COMPRESSION_NO_CONTEXT_TAKEOVER if self.enable_compression else deflate.COMPRESSION_DISABLED

    def dial(self, url: str, request_header: Optional[RequestHeader] = None) -> Tuple[Conn, Response]:
        """Connect to ``url`` and perform the opening handshake.

        ``request_header`` adds request headers (Origin, Cookie,
        Authorization, Sec-WebSocket-Protocol when ``subprotocols`` is
        empty, Host to override the host).  User info in the URL
        (``wss://user:pass@host/``) is sent as Basic ``Authorization`` unless
        ``request_header`` has one.

        Returns the connection and the server's response (``.status`` 101,
        ``.headers``: the chosen subprotocol, cookies, ...).

        Raises:

        * :class:`ValueError`: a malformed URL, a scheme other than
          ws/wss/http/https, or a request header that is the library's to
          write (Upgrade, Connection, Sec-WebSocket-Key/-Version/-Extensions).
        * :class:`gorillaws.exceptions.ErrBadHandshake`: the server did not
          upgrade, or its answer breaks RFC 6455 section 4.1.  ``.response``
          (when the response head could be parsed) has ``.status``,
          ``.headers`` and up to 1024 bytes of ``.body``, so redirects (3xx
          with ``Location``) and authentication (401) can be handled.
        * :class:`gorillaws.exceptions.DeadlineExceeded`: ``handshake_timeout``
          passed.
        * :class:`gorillaws.proxy.ProxyError`: the proxy refused.
        * :class:`ssl.SSLCertVerificationError`: the server's certificate did
          not verify; the message names the URL.
        * :class:`OSError`: the connection could not be made or broke.
        """
        target = _parse_url(url)
        deadline = time.monotonic() + self.handshake_timeout if self.handshake_timeout is not None else None
        headers = _to_headers(request_header)
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

        mode = self._mode()
        offer = deflate.client_offer(mode) if mode != deflate.COMPRESSION_DISABLED else ""
        offered_protocols = list(self.subprotocols) or parse_subprotocols(headers)
        key = generate_key()
        request = build_request(
            target.host_header, target.resource, key, self.subprotocols, offer, headers
        )

        sock = self._connect(target, deadline)
        try:
            _set_timeout(sock, deadline, "sending the handshake request")
            sock.sendall(request)
            resp, leftover = _read_response(sock, deadline)
            if self.jar is not None:
                self.jar.extract_cookies(_CookieResponse(resp.headers), _cookie_request(target))  # type: ignore[arg-type]
            if resp.status != 101:
                resp.body = _read_error_body(sock, resp, leftover, deadline)
            subprotocol, extensions = check_server_response(
                resp, key, offered_protocols, [offer] if offer else []
            )
            try:
                compression = deflate.client_accept(
                    extensions, mode, level=self.compression_level, threshold=self.compression_threshold
                )
            except ValueError as exc:
                raise ErrBadHandshake(f"websocket: bad handshake: {exc}", response=resp) from None
            conn = Conn(
                sock,
                is_server=False,
                subprotocol=subprotocol,
                read_buffer_size=self.read_buffer_size or DEFAULT_BUFFER_SIZE,
                write_buffer_size=self.write_buffer_size or DEFAULT_BUFFER_SIZE,
                write_buffer_pool=self.write_buffer_pool,
                initial_data=leftover,
                compression=compression,
            )
            return conn, resp
        except socket.timeout as exc:
            sock.close()
            raise DeadlineExceeded(f"websocket: handshake timeout dialling {target.url}") from exc
        except BaseException:
            sock.close()
            raise

    def _connect(self, target: _Target, deadline: Optional[float]) -> socket.socket:
        """The connected (and for wss, TLS-wrapped) socket; closed on failure."""
        addr = join_host_port(target.hostname, target.port)
        net_dial = self.net_dial if self.net_dial is not None else _default_net_dial(deadline)
        proxy_url = self.proxy(target.url) if self.proxy is not None else None
        try:
            if proxy_url:
                proxy_tls = self.proxy_tls_config or self.tls_client_config
                sock = connect_via_proxy(
                    proxy_url,
                    target.hostname,
                    target.port,
                    deadline=deadline,
                    net_dial=net_dial,
                    proxy_tls_context=proxy_tls,
                )
            elif target.secure and self.net_dial_tls is not None:
                sock = self.net_dial_tls("tcp", addr)
                if not isinstance(sock, ssl.SSLSocket):
                    sock.close()
                    raise TypeError("websocket: net_dial_tls must return an ssl.SSLSocket")
                return sock
            else:
                sock = net_dial("tcp", addr)
        except socket.timeout as exc:
            raise DeadlineExceeded(f"websocket: handshake timeout connecting to {addr}") from exc
        try:
            if target.secure:
                # TCP_NODELAY for the TLS handshake's writes; for plain
                # connections the Conn sets it once the handshake is done
                # (the request is a single write, which Nagle never delays).
                if sock.family in (socket.AF_INET, socket.AF_INET6):
                    try:
                        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    except OSError:
                        pass
                sock = self._tls_handshake(sock, target, deadline)
            return sock
        except socket.timeout as exc:
            sock.close()
            raise DeadlineExceeded(f"websocket: handshake timeout during TLS with {target.url}") from exc
        except BaseException:
            sock.close()
            raise

    def _tls_handshake(self, sock: socket.socket, target: _Target, deadline: Optional[float]) -> ssl.SSLSocket:
        ctx = self.tls_client_config if self.tls_client_config is not None else _default_tls_config()
        tls = ctx.wrap_socket(sock, server_hostname=target.hostname, do_handshake_on_connect=False)
        try:
            _set_timeout(tls, deadline, "during the TLS handshake")
            try:
                tls.do_handshake()
            except ssl.SSLCertVerificationError as exc:
                err = ssl.SSLCertVerificationError(
                    f"websocket: TLS certificate verification failed for {target.url}: "
                    f"{exc.verify_message or exc.reason}"
                )
                err.verify_code = exc.verify_code
                err.verify_message = exc.verify_message
                err.reason = exc.reason
                err.library = exc.library
                raise err from exc
            alpn = tls.selected_alpn_protocol()
            if alpn not in (None, "http/1.1"):
                raise ssl.SSLError(
                    f"websocket: the server chose ALPN protocol {alpn!r} for {target.url}; "
                    "the tls_client_config must offer only 'http/1.1' (or no ALPN)"
                )
            return tls
        except BaseException:
            tls.close()
            raise


def _default_net_dial(deadline: Optional[float]) -> NetDial:
    def dial(network: str, addr: str) -> socket.socket:
        host, _, port = addr.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        timeout = None
        if deadline is not None:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                raise DeadlineExceeded(f"websocket: handshake timeout before connecting to {addr}")
        family = _ip_family(host)
        if family is None:
            return socket.create_connection((host, int(port)), timeout=timeout)
        # An IP address: no name resolution needed, connect directly.
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            if timeout is not None or socket.getdefaulttimeout() is not None:
                sock.settimeout(timeout)
            sock.connect((host, int(port)))
        except BaseException:
            sock.close()
            raise
        return sock

    return dial


def _ip_family(host: str) -> Optional[int]:
    """AF_INET or AF_INET6 when ``host`` is an IP address literal, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return None


def _set_timeout(sock: socket.socket, deadline: Optional[float], what: str) -> None:
    if deadline is None:
        if sock.gettimeout() is not None:  # settimeout is a system call even when unchanged
            sock.settimeout(None)
        return
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded(f"websocket: handshake timeout {what}")
    sock.settimeout(left)


def _read_response(sock: socket.socket, deadline: Optional[float]) -> Tuple[Response, bytes]:
    """Read and parse the response head; returns it and the bytes that followed it."""
    buf = bytearray()
    end = -1
    while end < 0:
        _set_timeout(sock, deadline, "waiting for the handshake response")
        chunk = sock.recv(4096)
        if not chunk:
            raise ErrBadHandshake(
                "websocket: bad handshake: connection closed before the response head was complete"
                if buf
                else "websocket: bad handshake: the server closed the connection without answering"
            )
        start = len(buf) - 3
        buf += chunk
        end = find_head_end(buf, start)
        if (end < 0 and len(buf) > MAX_HEAD_SIZE) or end > MAX_HEAD_SIZE:
            raise ErrBadHandshake(f"websocket: bad handshake: response head larger than {MAX_HEAD_SIZE} bytes")
    try:
        resp = parse_response_head(bytes(buf[:end]))
    except HttpParseError as exc:
        raise ErrBadHandshake(f"websocket: bad handshake: malformed response: {exc}") from None
    return resp, bytes(buf[end:])


def _read_error_body(sock: socket.socket, resp: Response, have: bytes, deadline: Optional[float]) -> bytes:
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
    if deadline is None:
        deadline = time.monotonic() + 5.0  # never wait long for an error body
    data = bytearray(have)
    try:
        while len(data) < want and not (chunked and b"\r\n0\r\n" in data):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            sock.settimeout(left)
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
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
DEFAULT_DIALER = Dialer(proxy=proxy_from_environment, handshake_timeout=45.0)


def dial(url: str, request_header: Optional[RequestHeader] = None) -> Tuple[Conn, Response]:
    """``DEFAULT_DIALER.dial(url, request_header)``; see :meth:`Dialer.dial`."""
    return DEFAULT_DIALER.dial(url, request_header)
