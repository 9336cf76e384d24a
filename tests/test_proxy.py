"""Tests for gorillaws.proxy: environment rules (pure) and tunnelling through real proxies."""

from __future__ import annotations

import base64
import os
import socket
import sys
import threading
import time
from typing import Iterator, List, Tuple

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from proxies import TcpServer, echo_handler, microsocks, read_head, tinyproxy  # noqa: E402

from gorillaws.exceptions import DeadlineExceeded  # noqa: E402
from gorillaws.proxy import (  # noqa: E402
    NoProxy,
    ProxyConfig,
    ProxyError,
    connect_via_proxy,
    join_host_port,
    parse_proxy_url,
    proxy_from_environment,
)

_ENV_NAMES = [
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD",
]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# ---------------------------------------------------------------- pure part


def cfg(**kw: str) -> ProxyConfig:
    return ProxyConfig(**kw)  # type: ignore[arg-type]


def test_scheme_selects_variable() -> None:
    c = cfg(http_proxy="http://hp:1", https_proxy="http://sp:2")
    assert c.proxy_for_url("ws://example.com/x") == "http://hp:1"
    assert c.proxy_for_url("http://example.com/x") == "http://hp:1"
    assert c.proxy_for_url("wss://example.com/x") == "http://sp:2"
    assert c.proxy_for_url("https://example.com/x") == "http://sp:2"


def test_https_does_not_fall_back_to_http_proxy() -> None:
    c = cfg(http_proxy="http://hp:1")
    assert c.proxy_for_url("wss://example.com") is None


def test_all_proxy_is_a_fallback() -> None:
    c = cfg(all_proxy="socks5h://ap:1080", https_proxy="http://sp:2")
    assert c.proxy_for_url("ws://example.com") == "socks5h://ap:1080"
    assert c.proxy_for_url("wss://example.com") == "http://sp:2"


def test_scheme_less_value_means_http() -> None:
    assert parse_proxy_url("proxy.local:3128") == "http://proxy.local:3128"
    assert parse_proxy_url("  ") is None
    assert parse_proxy_url("") is None
    assert parse_proxy_url("SOCKS5://p:1") == "socks5://p:1"
    assert cfg(http_proxy="p:3128").proxy_for_url("ws://example.com") == "http://p:3128"


def test_unknown_url_scheme_raises() -> None:
    with pytest.raises(ValueError):
        cfg(http_proxy="http://p:1").proxy_for_url("ftp://example.com")


def test_localhost_and_loopback_never_proxied() -> None:
    # Go's httpproxy rule: localhost and loopback IPs bypass the proxy.
    c = cfg(http_proxy="http://p:1", https_proxy="http://p:1")
    for url in [
        "ws://localhost:8080/",
        "wss://localhost/",
        "ws://127.0.0.1:9000/",
        "ws://127.3.4.5/",
        "ws://[::1]:80/",
        "ws://[::ffff:127.0.0.1]/",
    ]:
        assert c.proxy_for_url(url) is None, url
    # Not loopback by Go's parser: proxied.
    assert c.proxy_for_url("ws://localhost.example.com/") == "http://p:1"
    assert c.proxy_for_url("ws://10.0.0.1/") == "http://p:1"


@pytest.mark.parametrize(
    "no_proxy, host, port, expected",
    [
        ("*", "anything.example", 80, True),
        ("example.com", "example.com", 80, True),
        ("example.com", "www.example.com", 443, True),
        ("example.com", "notexample.com", 80, False),
        (".example.com", "example.com", 80, False),
        (".example.com", "a.b.example.com", 80, True),
        ("*.example.com", "example.com", 80, False),
        ("*.example.com", "a.example.com", 80, True),
        ("EXAMPLE.com", "www.example.COM", 80, True),
        ("example.com:8080", "example.com", 8080, True),
        ("example.com:8080", "example.com", 80, False),
        ("10.1.2.3", "10.1.2.3", 1, True),
        ("10.1.2.3", "10.1.2.4", 1, False),
        ("10.1.2.3:80", "10.1.2.3", 80, True),
        ("10.1.2.3:80", "10.1.2.3", 81, False),
        ("10.0.0.0/8", "10.200.3.4", 80, True),
        ("10.0.0.0/8", "11.0.0.1", 80, False),
        ("10.0.0.0/8", "ten.example", 80, False),
        ("fd00::/8", "fd12::1", 80, True),
        ("fd00::/8", "[fd12::1]", 80, True),
        ("2001:db8::1", "2001:db8::1", 80, True),
        ("[2001:db8::1]:443", "2001:db8::1", 443, True),
        ("[2001:db8::1]:443", "2001:db8::1", 80, False),
        ("10.1.2.3", "::ffff:10.1.2.3", 80, True),
        (" foo.com , bar.com ", "x.bar.com", 80, True),
        (",,", "foo.com", 80, False),
        ("", "foo.com", 80, False),
        ("10.0.0.0/99, :80, example.org", "example.org", 80, True),
        ("bücher.example", "xn--bcher-kva.example", 80, True),
    ],
)
def test_no_proxy_matching(no_proxy: str, host: str, port: int, expected: bool) -> None:
    assert NoProxy(no_proxy).matches(host, port) is expected


def test_no_proxy_uses_default_ports() -> None:
    c = cfg(http_proxy="http://p:1", https_proxy="http://p:1", no_proxy="a.example:80,b.example:443")
    assert c.proxy_for_url("ws://a.example/") is None
    assert c.proxy_for_url("ws://a.example:81/") == "http://p:1"
    assert c.proxy_for_url("wss://b.example/") is None
    assert c.proxy_for_url("wss://a.example/") == "http://p:1"


def test_environment_upper_case_wins_like_go(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("HTTP_PROXY", "http://upper:1")
    clean_env.setenv("http_proxy", "http://lower:1")
    assert proxy_from_environment("ws://example.com") == "http://upper:1"
    clean_env.setenv("HTTP_PROXY", "")  # empty counts as unset
    assert proxy_from_environment("ws://example.com") == "http://lower:1"


def test_environment_lower_case_only(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("https_proxy", "socks5://s:1")
    clean_env.setenv("no_proxy", "internal.example")
    assert proxy_from_environment("wss://example.com") == "socks5://s:1"
    assert proxy_from_environment("wss://api.internal.example") is None
    assert proxy_from_environment("ws://example.com") is None


def test_environment_all_proxy(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("all_proxy", "http://all:3128")
    assert proxy_from_environment("ws://example.com") == "http://all:3128"
    assert proxy_from_environment("wss://example.com") == "http://all:3128"
    clean_env.setenv("NO_PROXY", "*")
    assert proxy_from_environment("wss://example.com") is None


def test_environment_nothing_set(clean_env: pytest.MonkeyPatch) -> None:
    assert proxy_from_environment("ws://example.com") is None


def test_environment_is_read_on_each_call(clean_env: pytest.MonkeyPatch) -> None:
    assert proxy_from_environment("ws://example.com") is None
    clean_env.setenv("HTTP_PROXY", "http://p:1")
    assert proxy_from_environment("ws://example.com") == "http://p:1"


def test_cgi_refuses_http_proxy(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("REQUEST_METHOD", "GET")
    clean_env.setenv("HTTP_PROXY", "http://evil:1")
    clean_env.setenv("HTTPS_PROXY", "http://fine:1")
    with pytest.raises(ValueError, match="CGI"):
        proxy_from_environment("ws://example.com")
    assert proxy_from_environment("wss://example.com") == "http://fine:1"


def test_join_host_port() -> None:
    assert join_host_port("example.com", 80) == "example.com:80"
    assert join_host_port("::1", 80) == "[::1]:80"
    assert join_host_port("[::1]", 80) == "[::1]:80"


# ---------------------------------------------------------------- tunnelling


def roundtrip(sock: socket.socket, payload: bytes = b"hello through the tunnel") -> bytes:
    sock.settimeout(5)
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(4096)
        if not chunk:
            break
        got += chunk
    return got


@pytest.fixture
def echo() -> Iterator[TcpServer]:
    with TcpServer(echo_handler) as srv:
        yield srv


def test_tinyproxy_connect(echo: TcpServer) -> None:
    with tinyproxy() as pport:
        sock = connect_via_proxy(f"http://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)
        with sock:
            assert type(sock) is socket.socket
            assert roundtrip(sock) == b"hello through the tunnel"


def test_tinyproxy_basic_auth(echo: TcpServer) -> None:
    with tinyproxy(auth="alice:s3cret") as pport:
        # Percent-encoded user info is decoded before it is sent.
        url = f"http://%61lice:s3cr%65t@127.0.0.1:{pport}"
        with connect_via_proxy(url, "127.0.0.1", echo.port, timeout=10) as sock:
            assert roundtrip(sock) == b"hello through the tunnel"
        with pytest.raises(ProxyError) as ei:
            connect_via_proxy(f"http://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)
        assert ei.value.status == 407
        assert isinstance(ei.value, ConnectionError)
        with pytest.raises(ProxyError) as ei:
            connect_via_proxy(f"http://alice:wrong@127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)
        assert ei.value.status in (401, 407)  # tinyproxy answers wrong credentials with 401


def test_tinyproxy_refused_port(echo: TcpServer) -> None:
    with tinyproxy(connect_ports=[1]) as pport:
        with pytest.raises(ProxyError) as ei:
            connect_via_proxy(f"http://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)
        assert ei.value.status is not None and ei.value.status >= 400


def test_tinyproxy_unreachable_target() -> None:
    with TcpServer(echo_handler) as dead:
        port = dead.port
    with tinyproxy() as pport:
        with pytest.raises(ProxyError) as ei:
            connect_via_proxy(f"http://127.0.0.1:{pport}", "127.0.0.1", port, timeout=10)
        assert ei.value.status is not None and ei.value.status >= 500


def test_microsocks_socks5(echo: TcpServer) -> None:
    with microsocks() as pport:
        for scheme in ("socks5", "socks5h"):
            with connect_via_proxy(f"{scheme}://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10) as sock:
                assert type(sock) is socket.socket
                assert roundtrip(sock) == b"hello through the tunnel"
        # socks5h: the proxy resolves the name.
        with connect_via_proxy(f"socks5h://127.0.0.1:{pport}", "localhost", echo.port, timeout=10) as sock:
            assert roundtrip(sock) == b"hello through the tunnel"


def test_microsocks_socks5_auth(echo: TcpServer) -> None:
    with microsocks(auth="bob:pa:ss") as pport:
        with connect_via_proxy(
            f"socks5://bob:pa%3Ass@127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10
        ) as sock:
            assert roundtrip(sock) == b"hello through the tunnel"
        with pytest.raises(ProxyError):
            connect_via_proxy(f"socks5://bob:nope@127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)
        with pytest.raises(ProxyError):
            connect_via_proxy(f"socks5://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10)


def test_socks_proxy_unreachable() -> None:
    with TcpServer(echo_handler) as dead:
        port = dead.port
    with pytest.raises(OSError):
        connect_via_proxy(f"socks5://127.0.0.1:{port}", "127.0.0.1", 80, timeout=5)


def fake_socks4(record: List[bytes]) -> TcpServer:
    """A minimal SOCKS4/4a server that grants the request and then echoes."""

    def handler(conn: socket.socket) -> None:
        buf = b""
        while buf.count(b"\0") < (2 if buf[4:7] == b"\0\0\0" and buf[7:8] != b"\0" else 1) or len(buf) < 9:
            chunk = conn.recv(1024)
            if not chunk:
                return
            buf += chunk
        record.append(buf)
        conn.sendall(b"\x00\x5a" + b"\0" * 6)
        echo_handler(conn)

    return TcpServer(handler)


def test_socks4_and_socks4a_requests() -> None:
    record: List[bytes] = []
    with fake_socks4(record) as srv:
        with connect_via_proxy(f"socks4://u@127.0.0.1:{srv.port}", "127.0.0.1", 4321, timeout=5) as sock:
            assert roundtrip(sock) == b"hello through the tunnel"
        with connect_via_proxy(f"socks4a://127.0.0.1:{srv.port}", "host.example", 4321, timeout=5) as sock:
            assert roundtrip(sock) == b"hello through the tunnel"
    # SOCKS4: version 4, CONNECT, port, the IPv4 address, user id.
    assert record[0][:8] == b"\x04\x01" + (4321).to_bytes(2, "big") + bytes([127, 0, 0, 1])
    assert record[0][8:].startswith(b"u\0")
    # SOCKS4a: address 0.0.0.x and the name after the (empty) user id.
    assert record[1][4:7] == b"\0\0\0"
    assert b"host.example\0" in record[1]


def test_missing_pysocks_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "socks", None)
    with pytest.raises(ImportError, match=r"install it with .pip install PySocks."):
        connect_via_proxy("socks5://127.0.0.1:1", "127.0.0.1", 80, timeout=1)


def test_bad_proxy_urls() -> None:
    with pytest.raises(ValueError, match="unsupported proxy scheme"):
        connect_via_proxy("ftp://127.0.0.1:1", "h", 80, timeout=1)
    with pytest.raises(ValueError, match="no host"):
        connect_via_proxy("http://:8080", "h", 80, timeout=1)
    with pytest.raises(ValueError, match="bad port"):
        connect_via_proxy("http://p:99999999", "h", 80, timeout=1)


def fake_proxy(answer: bytes, seen: List[bytes], hold: float = 0.0) -> TcpServer:
    def handler(conn: socket.socket) -> None:
        seen.append(read_head(conn))
        if answer:
            conn.sendall(answer)
        if hold:
            # Keep the connection open without answering further.
            end = time.monotonic() + hold
            conn.settimeout(hold)
            while time.monotonic() < end:
                try:
                    if not conn.recv(1024):
                        return
                except OSError:
                    return

    return TcpServer(handler)


def test_connect_request_shape() -> None:
    seen: List[bytes] = []
    with fake_proxy(b"HTTP/1.1 200 Connection established\r\nX: y\r\n\r\n", seen) as srv:
        sock = connect_via_proxy(f"http://user:p%40ss@127.0.0.1:{srv.port}", "::1", 8443, timeout=5)
        sock.close()
    head = seen[0].decode()
    assert head.startswith("CONNECT [::1]:8443 HTTP/1.1\r\n")
    assert "\r\nHost: [::1]:8443\r\n" in head
    cred = base64.b64encode(b"user:p@ss").decode()
    assert f"\r\nProxy-Authorization: Basic {cred}\r\n" in head


def test_no_auth_header_without_userinfo() -> None:
    seen: List[bytes] = []
    with fake_proxy(b"HTTP/1.0 200 OK\r\n\r\n", seen) as srv:
        connect_via_proxy(f"http://127.0.0.1:{srv.port}", "example.com", 443, timeout=5).close()
    assert b"Proxy-Authorization" not in seen[0]


@pytest.mark.parametrize(
    "answer, match",
    [
        (b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n", "407"),
        (b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n", "502"),
        (b"garbage\r\n\r\n", "malformed"),
        (b"HTTP/1.1 200 OK\r\n", "closed before"),
        (b"", "closed before"),
        (b"HTTP/1.1 200 OK\r\n\r\nSSH-2.0-surprise", "unexpected data"),
        (b"HTTP/1.1 200 OK\r\n" + b"X-Pad: " + b"a" * 20000 + b"\r\n\r\n", "larger than"),
    ],
)
def test_connect_failures(answer: bytes, match: str) -> None:
    seen: List[bytes] = []
    with fake_proxy(answer, seen) as srv:
        with pytest.raises(ProxyError, match=match) as ei:
            connect_via_proxy(f"http://127.0.0.1:{srv.port}", "example.com", 80, timeout=5)
    if match in ("407", "502"):
        assert ei.value.status == int(match)
        assert ei.value.headers is not None
    if match == "407":
        assert ei.value.headers.get("Proxy-Authenticate") == "Basic"  # type: ignore[attr-defined]


def test_proxy_that_never_answers_times_out() -> None:
    seen: List[bytes] = []
    with fake_proxy(b"", seen, hold=5.0) as srv:
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded) as ei:
            connect_via_proxy(f"http://127.0.0.1:{srv.port}", "example.com", 80, timeout=0.5)
        assert time.monotonic() - t0 < 4
        assert isinstance(ei.value, TimeoutError)


def test_custom_net_dial_is_used(echo: TcpServer) -> None:
    calls: List[Tuple[str, str]] = []

    def dial(network: str, addr: str) -> socket.socket:
        calls.append((network, addr))
        host, _, port = addr.rpartition(":")
        return socket.create_connection((host, int(port)), timeout=5)

    with tinyproxy() as pport:
        with connect_via_proxy(f"http://127.0.0.1:{pport}", "127.0.0.1", echo.port, timeout=10, net_dial=dial) as s:
            assert roundtrip(s) == b"hello through the tunnel"
    assert calls == [("tcp", f"127.0.0.1:{pport}")]


def test_https_proxy(echo: TcpServer, tmp_path: "os.PathLike[str]") -> None:
    """A TLS-speaking CONNECT proxy (a fake one in a thread, with a test CA)."""
    import ssl

    from certs import make_test_pki

    pki = make_test_pki(str(tmp_path))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    done = threading.Event()

    def handler(conn: socket.socket) -> None:
        tls = server_ctx.wrap_socket(conn, server_side=True)
        try:
            head = read_head(tls)
            assert head.startswith(f"CONNECT 127.0.0.1:{echo.port} ".encode())
            up = socket.create_connection(("127.0.0.1", echo.port), timeout=5)
            tls.sendall(b"HTTP/1.1 200 OK\r\n\r\n")
            data = tls.recv(4096)
            up.sendall(data)
            tls.sendall(up.recv(4096))
            up.close()
            done.set()
        finally:
            tls.close()

    client_ctx = ssl.create_default_context(cafile=pki.ca_cert)
    with TcpServer(handler) as srv:
        # The test certificate names "localhost" and 127.0.0.1.
        with connect_via_proxy(
            f"https://localhost:{srv.port}", "127.0.0.1", echo.port, timeout=10, proxy_tls_context=client_ctx
        ) as s:
            assert roundtrip(s, b"ping") == b"ping"
        assert done.wait(5)
        # Without the test CA, verification fails.
        with pytest.raises(ssl.SSLCertVerificationError):
            connect_via_proxy(f"https://localhost:{srv.port}", "127.0.0.1", echo.port, timeout=10)


@pytest.mark.parametrize("start", [microsocks, tinyproxy])
def test_a_proxy_whose_port_was_taken_starts_on_another(start, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    """Parallel test runs can take a port between our check and the proxy's bind."""
    import proxies

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        ports = [taken.getsockname()[1]]
        real = proxies.free_port
        monkeypatch.setattr(proxies, "free_port", lambda: ports.pop() if ports else real())
        with start() as pport:
            assert pport != taken.getsockname()[1]
            with socket.create_connection(("127.0.0.1", pport), timeout=5):
                pass
