"""Proxy selection from the environment, and tunnelling through a proxy.

Two halves, kept apart:

* Pure selection.  :func:`proxy_from_environment` picks a proxy URL for a
  WebSocket URL the way Go's ``http.ProxyFromEnvironment`` does (which is the
  default ``Proxy`` of gorilla's ``DefaultDialer``).  :class:`ProxyConfig`,
  :class:`NoProxy` and :func:`parse_proxy_url` do the work without touching
  sockets, so they can be used and tested on their own.
* Tunnelling.  :func:`connect_via_proxy` opens a TCP tunnel to a target host
  and port through an HTTP CONNECT proxy (``http://`` or ``https://``, with
  Basic proxy authentication taken from the proxy URL) or a SOCKS proxy
  (``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://``) through
  PySocks, which is installed with gorillaws.

Both are used by :class:`gorillaws.client.Dialer`; nothing here speaks
WebSocket.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import socket
import ssl
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, List, Mapping, Optional, Tuple, Union
from urllib.parse import unquote, urlsplit

from .deadline import remaining
from .dialing import (
    DialCancelled,
    DialError,
    abort_on_cancel,
    check_cancel,
    dial_error,
    dial_tcp,
    fail_closed,
    head_reader,
    join_host_port,
    tls_handshake,
)
from .exceptions import DeadlineExceeded, ProxyError
from .http11 import HttpParseError, parse_response_head
from .transport import HeadEOF, SocketIO, default_tls_context, read_http_head

__all__ = [
    "ProxyError",
    "ProxyConfig",
    "NoProxy",
    "NetDial",
    "SUPPORTED_PROXY_SCHEMES",
    "parse_proxy_url",
    "proxy_from_environment",
    "connect_via_proxy",
    "join_host_port",
    "use_proxy",
]

#: ``net_dial(network, addr) -> socket``: ``network`` is ``"tcp"`` and
#: ``addr`` is ``"host:port"`` (``"[v6addr]:port"`` for IPv6), as in Go.
NetDial = Callable[[str, str], socket.socket]

#: Proxy URL schemes :func:`connect_via_proxy` understands.
SUPPORTED_PROXY_SCHEMES = ("http", "https", "socks4", "socks4a", "socks5", "socks5h")

_DEFAULT_PROXY_PORTS = {
    "http": 80,
    "https": 443,
    "socks4": 1080,
    "socks4a": 1080,
    "socks5": 1080,
    "socks5h": 1080,
}

# Request URL scheme -> the scheme whose proxy variable applies, and its port.
_URL_SCHEMES = {"ws": ("http", 80), "http": ("http", 80), "wss": ("https", 443), "https": ("https", 443)}


# --------------------------------------------------------------------------
# Pure part: environment, NO_PROXY matching, proxy URL parsing.
# --------------------------------------------------------------------------


def _as_ip(host: str) -> Optional[Union[ipaddress.IPv4Address, ipaddress.IPv6Address]]:
    """``host`` as an IP address (IPv4-mapped IPv6 folded to IPv4), or None."""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if "%" in host:  # Go's ParseIP rejects zones; so do we
        return None
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _idna(host: str) -> str:
    if host.isascii():
        return host
    try:
        return ".".join(
            label.encode("idna").decode("ascii") if label else "" for label in host.split(".")
        )
    except UnicodeError:
        return host


def _split_no_proxy_entry(entry: str) -> Tuple[str, str]:
    """Split a NO_PROXY entry into host and port (port may be ``""``)."""
    if entry.startswith("["):
        end = entry.find("]")
        if end < 0:
            return entry, ""
        host, rest = entry[1:end], entry[end + 1 :]
        if rest.startswith(":") and rest[1:].isdigit():
            return host, rest[1:]
        return host, ""
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        if port.isdigit():
            return host, port
    return entry, ""


@dataclass(frozen=True)
class _Rule:
    kind: str  # "ip", "cidr" or "domain"
    port: str = ""
    ip: object = None
    network: object = None
    suffix: str = ""  # ".example.com"
    match_exact: bool = False  # the entry had no leading dot: "example.com" matches too


@dataclass
class NoProxy:
    """A parsed ``NO_PROXY`` value: which hosts bypass the proxy.

    Comma-separated entries, matched case-insensitively, as Go reads them:

    * ``*`` alone: no host uses a proxy;
    * an IP address (``10.1.2.3``, ``::1``, ``[::1]:8080``), optionally with
      a port: that address (and port);
    * a CIDR block (``10.0.0.0/8``, ``fd00::/8``): any address in it;
    * a domain (``example.com``, optionally with ``:port``): that host and
      every subdomain; with a leading dot (``.example.com``) or ``*.``
      prefix, subdomains only.

    Malformed entries are ignored, as Go does.
    """

    value: str = ""
    match_all: bool = field(default=False, init=False)
    rules: List[_Rule] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        for raw in self.value.split(","):
            entry = raw.strip().lower()
            if not entry:
                continue
            if entry == "*":
                self.match_all = True
                self.rules = []
                return
            if "/" in entry:
                try:
                    net = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    continue
                self.rules.append(_Rule("cidr", network=net))
                continue
            host, port = _split_no_proxy_entry(entry)
            if not host:
                continue
            ip = _as_ip(host)
            if ip is not None:
                self.rules.append(_Rule("ip", port=port, ip=ip))
                continue
            if host.startswith("*."):
                host = host[1:]
            exact = not host.startswith(".")
            suffix = _idna(host if not exact else "." + host)
            self.rules.append(_Rule("domain", port=port, suffix=suffix, match_exact=exact))

    def matches(self, host: str, port: int) -> bool:
        """True when ``host``:``port`` must be reached directly (no proxy).

        ``host`` is a hostname or IP literal (brackets optional), ``port`` the
        target port with the scheme default already applied.
        """
        if self.match_all:
            return True
        host = _idna(host.strip().lower())
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        ip = _as_ip(host)
        sport = str(port)
        for rule in self.rules:
            if rule.kind == "cidr":
                if ip is not None and ip in rule.network:  # type: ignore[operator]
                    return True
            elif rule.kind == "ip":
                if ip is not None and ip == rule.ip and rule.port in ("", sport):
                    return True
            elif host.endswith(rule.suffix) or (rule.match_exact and host == rule.suffix[1:]):
                if rule.port in ("", sport):
                    return True
        return False


def parse_proxy_url(value: str) -> Optional[str]:
    """Normalise a proxy setting as found in ``HTTP_PROXY`` and friends.

    An empty value means "no proxy" (``None``).  A value without a scheme
    (``"proxy.local:3128"``) is read as ``http://`` as Go does.  The scheme
    is lower-cased; other schemes are kept as given and rejected later by
    :func:`connect_via_proxy`.
    """
    value = value.strip()
    if not value:
        return None
    scheme, sep, rest = value.partition("://")
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").replace(".", "").isalnum():
        return "http://" + value
    return scheme.lower() + "://" + rest


def _getenv_any(environ: Mapping[str, str], *names: str) -> str:
    for name in names:
        val = environ.get(name, "")
        if val:
            return val
    return ""


@dataclass(frozen=True)
class ProxyConfig:
    """Proxy settings, normally read from the environment.

    ``http_proxy`` applies to ``ws://`` (and ``http://``) URLs,
    ``https_proxy`` to ``wss://`` (and ``https://``), ``all_proxy`` to either
    when the specific one is empty, ``no_proxy`` lists the exceptions (see
    :class:`NoProxy`).  ``cgi`` is true when running as a CGI script, where
    ``HTTP_PROXY`` can be set by a client's ``Proxy:`` request header, so it
    is refused (Go's "httpoxy" guard).
    """

    http_proxy: str = ""
    https_proxy: str = ""
    all_proxy: str = ""
    no_proxy: str = ""
    cgi: bool = False

    @classmethod
    def from_environment(cls, environ: Optional[Mapping[str, str]] = None) -> "ProxyConfig":
        """Read ``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``.

        Each is looked up upper case first, then lower case; an empty
        variable counts as unset.  Upper case winning is what Go's
        ``httpproxy.FromEnvironment`` does (curl and Python's urllib prefer
        lower case instead; set both to the same value to be safe).
        ``REQUEST_METHOD`` being set marks a CGI environment.
        """
        env = os.environ if environ is None else environ
        return cls(
            http_proxy=_getenv_any(env, "HTTP_PROXY", "http_proxy"),
            https_proxy=_getenv_any(env, "HTTPS_PROXY", "https_proxy"),
            all_proxy=_getenv_any(env, "ALL_PROXY", "all_proxy"),
            no_proxy=_getenv_any(env, "NO_PROXY", "no_proxy"),
            cgi=bool(env.get("REQUEST_METHOD", "")),
        )

    def proxy_for_url(self, url: str) -> Optional[str]:
        """The proxy URL to use for ``url`` (ws, wss, http, https), or None.

        Raises :class:`ValueError` for a URL with another scheme or a bad
        port, and for ``HTTP_PROXY`` in a CGI environment (as Go does).
        ``localhost`` and loopback addresses are never proxied (Go's rule).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in _URL_SCHEMES:
            raise ValueError(f"proxy: unsupported URL scheme {parts.scheme!r} in {url!r}")
        kind, default_port = _URL_SCHEMES[scheme]
        if kind == "https":
            proxy = parse_proxy_url(self.https_proxy)
        else:
            proxy = parse_proxy_url(self.http_proxy)
            if proxy is not None and self.cgi:
                raise ValueError(
                    "proxy: refusing to use HTTP_PROXY in a CGI environment (REQUEST_METHOD is set)"
                )
        if proxy is None:
            proxy = parse_proxy_url(self.all_proxy)
        if proxy is None:
            return None
        host = (parts.hostname or "").lower()
        port = parts.port or default_port
        if not use_proxy(host, port, NoProxy(self.no_proxy)):
            return None
        return proxy


def use_proxy(host: str, port: int, no_proxy: NoProxy) -> bool:
    """Whether ``host``:``port`` should go through a proxy at all.

    ``localhost`` and loopback IP addresses (127.0.0.0/8, ``::1``) never do,
    whatever the environment says: that is Go's rule, kept here.  Then
    ``no_proxy`` decides.
    """
    if host == "localhost":
        return False
    ip = _as_ip(host)
    if ip is not None and ip.is_loopback:
        return False
    return not no_proxy.matches(host, port)


def proxy_from_environment(url: str) -> Optional[str]:
    """The proxy to use for ``url`` according to the environment, or None.

    The default ``proxy`` of :data:`gorillaws.client.DEFAULT_DIALER`,
    mirroring Go's ``http.ProxyFromEnvironment``:

    * ``ws://`` and ``http://`` URLs use ``HTTP_PROXY``; ``wss://`` and
      ``https://`` URLs use ``HTTPS_PROXY``.  Unlike Go, ``ALL_PROXY`` is a
      fallback for both (curl's convention).
    * Upper-case variables win over lower-case ones, as in Go; empty
      variables count as unset.  A value without a scheme means ``http://``.
    * ``NO_PROXY`` lists hosts reached directly (see :class:`NoProxy`).
    * As in Go, ``localhost`` and loopback addresses (``127.0.0.0/8``,
      ``::1``) are never proxied, whatever the variables say.  To force a
      proxy for a local target, pass your own ``proxy`` callable.
    * As in Go, ``HTTP_PROXY`` is refused (:class:`ValueError`) when
      ``REQUEST_METHOD`` is set (a CGI script).

    Unlike Go, the environment is read on every call, not once per process.
    Raises :class:`ValueError` for URLs that are not ws/wss/http/https.
    """
    return ProxyConfig.from_environment().proxy_for_url(url)


# --------------------------------------------------------------------------
# I/O part: tunnelling.
# --------------------------------------------------------------------------


def _parsed_proxy(proxy_url: str) -> Tuple[str, str, int, Optional[str], Optional[str]]:
    parts = urlsplit(proxy_url)
    scheme = parts.scheme.lower()
    if scheme not in SUPPORTED_PROXY_SCHEMES:
        raise ValueError(
            f"proxy: unsupported proxy scheme {parts.scheme!r} in {proxy_url!r} "
            f"(supported: {', '.join(SUPPORTED_PROXY_SCHEMES)})"
        )
    if not parts.hostname:
        raise ValueError(f"proxy: no host in proxy URL {proxy_url!r}")
    try:
        port = parts.port or _DEFAULT_PROXY_PORTS[scheme]
    except ValueError as exc:
        raise ValueError(f"proxy: bad port in proxy URL {proxy_url!r}") from exc
    user = unquote(parts.username) if parts.username is not None else None
    password = unquote(parts.password) if parts.password is not None else None
    return scheme, parts.hostname, port, user, password


def connect_via_proxy(
    proxy_url: str,
    target_host: str,
    target_port: int,
    *,
    timeout: Optional[float] = None,
    deadline: Optional[float] = None,
    net_dial: Optional[NetDial] = None,
    proxy_tls_context: Optional[ssl.SSLContext] = None,
    cancel: Optional[threading.Event] = None,
) -> socket.socket:
    """Open a TCP tunnel to ``target_host``:``target_port`` through a proxy.

    ``proxy_url`` schemes:

    * ``http://[user:pass@]host[:port]``: an HTTP proxy, asked with
      ``CONNECT``; user info becomes a Basic ``Proxy-Authorization`` header.
    * ``https://...``: the same, over TLS to the proxy, verified with
      ``proxy_tls_context`` (default: certifi's CA bundle, hostname checked).
    * ``socks4://``, ``socks4a://``, ``socks5://``, ``socks5h://``: a SOCKS
      proxy through PySocks (installed with gorillaws).  ``socks4``
      and ``socks5`` resolve the target name locally, ``socks4a`` and
      ``socks5h`` let the proxy resolve it (curl's convention).  SOCKS5 takes
      user and password from the URL.

    ``timeout`` (seconds) or ``deadline`` (a :func:`time.monotonic` value)
    bounds the whole exchange; setting ``cancel`` (a
    :class:`threading.Event`) aborts it (for SOCKS, by shutting the socket
    down under PySocks, from a watcher thread).  ``net_dial(network, addr)`` opens the
    TCP connection to an HTTP(S) proxy (``addr`` is ``"host:port"``;
    default: :func:`gorillaws.dialing.dial_tcp`); PySocks dials SOCKS
    proxies itself.

    Returns a connected socket on which the next byte written reaches the
    target, with no timeout set.  The socket is closed on every failure.
    Raises :class:`ProxyError` when the proxy refuses (``.status`` carries
    a CONNECT proxy's HTTP status) or does not answer HTTP,
    :class:`gorillaws.exceptions.DeadlineExceeded` when time runs out,
    :class:`gorillaws.dialing.DialCancelled` when cancelled,
    :class:`ValueError` for a bad or unsupported proxy URL,
    :class:`ImportError` when a SOCKS proxy is asked for without PySocks,
    and :class:`OSError` (a :class:`gorillaws.dialing.DialError` whose
    message names the proxy, or :class:`ssl.SSLError`) when the proxy cannot
    be reached.
    """
    if deadline is None and timeout is not None:
        deadline = time.monotonic() + timeout
    scheme, phost, pport, user, password = _parsed_proxy(proxy_url)
    where = f"proxy {_redacted(scheme, phost, pport)}"
    if scheme.startswith("socks"):
        return _connect_socks(scheme, phost, pport, user, password, target_host, target_port, deadline, cancel)

    addr = join_host_port(phost, pport)
    try:
        sock = net_dial("tcp", addr) if net_dial is not None else dial_tcp(addr, deadline, cancel)
    except (DeadlineExceeded, DialCancelled, socket.timeout):
        raise
    except OSError as exc:
        # Say that the proxy is what could not be reached, not the target
        # (dial_tcp's errors already name the address; a custom net_dial's may not).
        raise dial_error(exc, where if isinstance(exc, DialError) else f"{where}: dial tcp {addr}") from None
    try:
        if scheme == "https":
            ctx = proxy_tls_context if proxy_tls_context is not None else default_tls_context()
            sock = tls_handshake(sock, ctx, phost, deadline, cancel, where)
        _http_connect(SocketIO(sock), where, target_host, target_port, user, password, deadline, cancel)
    except BaseException as exc:
        fail_closed(sock, exc, f"websocket: timeout while talking to the {where}")
    return sock


def _redacted(scheme: str, host: str, port: int) -> str:
    """The proxy's URL for messages, without credentials."""
    return f"{scheme}://{join_host_port(host, port)}"


def _http_connect(
    io: SocketIO,
    where: str,
    host: str,
    port: int,
    user: Optional[str],
    password: Optional[str],
    deadline: Optional[float],
    cancel: Optional[threading.Event],
) -> None:
    authority = join_host_port(host, port)
    lines = [f"CONNECT {authority} HTTP/1.1", f"Host: {authority}"]
    if user is not None:
        cred = f"{user}:{password or ''}".encode("utf-8")
        lines.append("Proxy-Authorization: Basic " + base64.b64encode(cred).decode("ascii"))
    check_cancel(cancel, f"talking to the {where}")
    io.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("utf-8"), deadline)
    try:
        head, rest = read_http_head(head_reader(io, deadline, cancel), response=True)
        resp = parse_response_head(head)
    except HeadEOF:
        raise ProxyError(f"proxy: connection closed before the CONNECT response was complete ({where})") from None
    except HttpParseError as exc:
        if exc.status == 431:
            raise ProxyError(f"proxy: {where}: CONNECT response head too large: {exc}") from exc
        raise ProxyError(f"proxy: {where}: malformed CONNECT response: {exc}") from exc
    if not 200 <= resp.status < 300:
        reason = f" {resp.reason}" if resp.reason else ""
        raise ProxyError(
            f"proxy: CONNECT {authority} refused by the {where}: {resp.status}{reason}",
            status=resp.status,
            headers=resp.headers,
        )
    if rest:
        # Nothing may come from the target before we speak (WebSocket and
        # TLS are both client-first); stray bytes mean a confused proxy.
        raise ProxyError(f"proxy: unexpected data after the CONNECT response of the {where}")


def _connect_socks(
    scheme: str,
    phost: str,
    pport: int,
    user: Optional[str],
    password: Optional[str],
    host: str,
    port: int,
    deadline: Optional[float],
    cancel: Optional[threading.Event],
) -> socket.socket:
    try:
        import socks  # type: ignore[import-untyped, unused-ignore]  # PySocks
    except ImportError as exc:
        raise ImportError(
            f"proxy: a {scheme}:// proxy needs PySocks, which gorillaws depends on but is "
            "missing here; install it with 'pip install PySocks'"
        ) from exc
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    where = f"proxy {_redacted(scheme, phost, pport)}"
    proxy_type = socks.SOCKS4 if scheme.startswith("socks4") else socks.SOCKS5
    rdns = scheme in ("socks4a", "socks5h")
    check_cancel(cancel, f"connecting to the {where}")
    infos = socket.getaddrinfo(phost, pport, 0, socket.SOCK_STREAM)
    family = infos[0][0] if infos else socket.AF_INET
    s = socks.socksocket(family, socket.SOCK_STREAM)
    try:
        s.set_proxy(proxy_type, phost, pport, rdns=rdns, username=user, password=password)
        if deadline is not None and remaining(deadline) == 0:
            raise DeadlineExceeded(f"websocket: timeout before connecting to the {where}")
        s.settimeout(remaining(deadline))
        try:
            with abort_on_cancel(s, cancel):  # PySocks blocks; a cancel shuts the socket down under it
                s.connect((host, port))
        except (socks.ProxyError, OSError) as exc:
            check_cancel(cancel, f"talking to the {where}")
            if not isinstance(exc, socks.ProxyError):
                raise
            inner = getattr(exc, "socket_err", None)
            if isinstance(inner, socket.timeout):
                raise DeadlineExceeded(f"websocket: timeout while talking to the {where}") from exc
            if isinstance(exc, socks.ProxyConnectionError) and isinstance(inner, OSError):
                raise dial_error(inner, f"{where}: dial tcp {join_host_port(phost, pport)}") from exc
            raise ProxyError(f"proxy: {scheme}://{join_host_port(phost, pport)}: {exc}") from exc
        check_cancel(cancel, f"connecting through the {where}")
        # Hand back a plain blocking socket, not PySocks' subclass.
        plain = socket.socket(s.family, s.type, s.proto, fileno=s.detach())
        plain.settimeout(None)
        return plain
    except BaseException:
        s.close()
        raise
