"""Tests for gorillaws.client.Dialer against real peers and tiny fake servers on 127.0.0.1."""

from __future__ import annotations

import base64
import http.cookiejar
import os
import socket
import sys
import tempfile
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from helpers import silent_listener  # noqa: E402
from proxies import TcpServer, WsServer, microsocks, read_head, tinyproxy  # noqa: E402

from gorillaws import deflate  # noqa: E402
from gorillaws.client import DEFAULT_DIALER, Dialer, dial  # noqa: E402
from gorillaws.exceptions import DeadlineExceeded, ErrBadHandshake  # noqa: E402
from gorillaws.frames import BINARY_MESSAGE, TEXT_MESSAGE  # noqa: E402
from gorillaws.handshake import accept_key  # noqa: E402
from gorillaws.proxy import ProxyError, proxy_from_environment  # noqa: E402

_ENV_NAMES = [
    "HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
    "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy", "REQUEST_METHOD",
]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in _ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.fixture
def server() -> Iterator[WsServer]:
    with WsServer() as srv:
        yield srv


def echo_ok(conn: object, text: str = "hello") -> None:
    conn.write_message(TEXT_MESSAGE, text)  # type: ignore[attr-defined]
    assert conn.read_message() == (TEXT_MESSAGE, text.encode())  # type: ignore[attr-defined]


def header(srv: WsServer, name: str, i: int = -1) -> Optional[str]:
    return srv.requests[i].headers.get(name)  # type: ignore[attr-defined, no-any-return]


# ------------------------------------------------------------ against websockets


def test_dial_echo_text_and_binary(server: WsServer) -> None:
    conn, resp = Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{server.port}/chat?room=1&x=%20y")
    try:
        assert resp.status == 101
        assert (resp.headers.get("Upgrade") or "").lower() == "websocket"
        echo_ok(conn)
        conn.write_message(BINARY_MESSAGE, b"\x00\x01\xff" * 1000)
        assert conn.read_message() == (BINARY_MESSAGE, b"\x00\x01\xff" * 1000)
        assert conn.subprotocol() == ""
    finally:
        conn.close()
    assert server.requests[0].path == "/chat?room=1&x=%20y"  # type: ignore[attr-defined]
    assert header(server, "Host") == f"127.0.0.1:{server.port}"


def test_http_url_reads_as_ws_and_default_path(server: WsServer) -> None:
    conn, _ = Dialer(handshake_timeout=5).dial(f"http://127.0.0.1:{server.port}")
    with_close(conn, echo_ok)
    assert server.requests[0].path == "/"  # type: ignore[attr-defined]


def with_close(conn: object, fn: Callable[[object], None]) -> None:
    try:
        fn(conn)
    finally:
        conn.close()  # type: ignore[attr-defined]


def test_module_dial_and_default_dialer(server: WsServer) -> None:
    assert DEFAULT_DIALER.handshake_timeout == 45.0
    assert DEFAULT_DIALER.proxy is proxy_from_environment
    conn, resp = dial(f"ws://127.0.0.1:{server.port}/", {"Origin": "http://127.0.0.1"})
    with_close(conn, echo_ok)
    assert header(server, "Origin") == "http://127.0.0.1"


def test_request_headers_forms(server: WsServer) -> None:
    d = Dialer(handshake_timeout=5)
    conn, _ = d.dial(f"ws://127.0.0.1:{server.port}/", {"X-Multi": ["a", "b"], "X-One": "1"})
    conn.close()
    assert server.requests[-1].headers.get_all("X-Multi") == ["a", "b"]  # type: ignore[attr-defined]
    conn, _ = d.dial(f"ws://127.0.0.1:{server.port}/", [("X-Pair", "p")])
    conn.close()
    assert header(server, "X-Pair") == "p"


def test_subprotocols(clean_env: pytest.MonkeyPatch) -> None:
    with WsServer(subprotocols=["chat.v2", "chat.v1"]) as srv:
        conn, resp = Dialer(handshake_timeout=5, subprotocols=["chat.v1", "chat.v2"]).dial(
            f"ws://127.0.0.1:{srv.port}/"
        )
        with_close(conn, echo_ok)
        assert conn.subprotocol() in ("chat.v1", "chat.v2")
        assert resp.headers.get("Sec-WebSocket-Protocol") == conn.subprotocol()
        # Offered through request_header instead of the attribute.
        conn, _ = Dialer(handshake_timeout=5).dial(
            f"ws://127.0.0.1:{srv.port}/", {"Sec-WebSocket-Protocol": "chat.v1"}
        )
        with_close(conn, echo_ok)
        assert conn.subprotocol() == "chat.v1"


def test_compression_negotiated(server: WsServer) -> None:
    conn, resp = Dialer(handshake_timeout=5, enable_compression=True).dial(f"ws://127.0.0.1:{server.port}/")
    try:
        assert conn.compression is not None
        assert "permessage-deflate" in (resp.headers.get("Sec-WebSocket-Extensions") or "")
        echo_ok(conn, "compressible " * 500)
    finally:
        conn.close()
    offered = header(server, "Sec-WebSocket-Extensions") or ""
    assert "client_no_context_takeover" in offered

    d = Dialer(handshake_timeout=5, compression_mode=deflate.COMPRESSION_CONTEXT_TAKEOVER)
    conn, _ = d.dial(f"ws://127.0.0.1:{server.port}/")
    try:
        assert conn.compression is not None
        for _ in range(3):
            echo_ok(conn, "again and again " * 200)
    finally:
        conn.close()

    conn, _ = Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{server.port}/")
    with_close(conn, echo_ok)
    assert conn.compression is None
    assert header(server, "Sec-WebSocket-Extensions") is None


def test_host_override(server: WsServer) -> None:
    conn, _ = Dialer(handshake_timeout=5, host="example.test").dial(f"ws://127.0.0.1:{server.port}/")
    conn.close()
    assert header(server, "Host") == "example.test"
    conn, _ = Dialer(handshake_timeout=5, host="example.test").dial(
        f"ws://127.0.0.1:{server.port}/", {"Host": "other.test:81"}
    )
    conn.close()
    assert header(server, "Host") == "other.test:81"


def test_userinfo_becomes_basic_auth(server: WsServer) -> None:
    conn, _ = Dialer(handshake_timeout=5).dial(f"ws://al%20ice:p%40ss@127.0.0.1:{server.port}/")
    conn.close()
    assert header(server, "Authorization") == "Basic " + base64.b64encode(b"al ice:p@ss").decode()
    assert header(server, "Host") == f"127.0.0.1:{server.port}"
    # An explicit Authorization header wins.
    conn, _ = Dialer(handshake_timeout=5).dial(
        f"ws://u:p@127.0.0.1:{server.port}/", {"Authorization": "Bearer t"}
    )
    conn.close()
    assert header(server, "Authorization") == "Bearer t"


def test_cookies_round_trip() -> None:
    def set_cookie(connection: object, request: object, response: object) -> None:
        if "session=" not in (request.headers.get("Cookie") or ""):  # type: ignore[attr-defined]
            response.headers["Set-Cookie"] = "session=abc123; Path=/"  # type: ignore[attr-defined]

    jar = http.cookiejar.CookieJar()
    with WsServer(process_response=set_cookie) as srv:
        d = Dialer(handshake_timeout=5, jar=jar)
        conn, resp = d.dial(f"ws://127.0.0.1:{srv.port}/a")
        conn.close()
        assert (resp.headers.get("Set-Cookie") or "").startswith("session=abc123")
        assert header(srv, "Cookie") is None
        assert [c.name for c in jar] == ["session"]
        conn, _ = d.dial(f"ws://127.0.0.1:{srv.port}/b", {"Cookie": "mine=1"})
        conn.close()
        assert header(srv, "Cookie") == "mine=1; session=abc123"


def test_reserved_request_headers_rejected(server: WsServer) -> None:
    d = Dialer(handshake_timeout=5)
    for name in ("Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Extensions"):
        with pytest.raises(ValueError, match="duplicate header"):
            d.dial(f"ws://127.0.0.1:{server.port}/", {name: "x"})
    with pytest.raises(ValueError):
        Dialer(subprotocols=["a"]).dial(f"ws://127.0.0.1:{server.port}/", {"Sec-WebSocket-Protocol": "b"})
    assert server.requests == []


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "ws:///nohost", "ws://127.0.0.1:99999999/", "127.0.0.1:80"])
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValueError):
        Dialer(handshake_timeout=1).dial(url)


def test_custom_net_dial_unix_socket() -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ws.sock")
        with WsServer(unix_path=path) as srv:
            calls: List[Tuple[str, str]] = []

            def unix_dial(network: str, addr: str) -> socket.socket:
                calls.append((network, addr))
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.settimeout(5)
                s.connect(path)
                return s

            conn, _ = Dialer(net_dial=unix_dial, handshake_timeout=5).dial("ws://unix.invalid:1234/u")
            with_close(conn, echo_ok)
            assert calls == [("tcp", "unix.invalid:1234")]
            assert srv.requests[0].path == "/u"  # type: ignore[attr-defined]
            assert header(srv, "Host") == "unix.invalid:1234"


def test_ipv6_literal() -> None:
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    with WsServer(host="::1") as srv:
        seen: List[str] = []

        def net_dial(network: str, addr: str) -> socket.socket:
            seen.append(addr)
            return socket.create_connection(("::1", srv.port), timeout=5)

        conn, _ = Dialer(handshake_timeout=5).dial(f"ws://[::1]:{srv.port}/v6")
        with_close(conn, echo_ok)
        assert header(srv, "Host") == f"[::1]:{srv.port}"
        conn, _ = Dialer(handshake_timeout=5, net_dial=net_dial).dial(f"ws://[::1]:{srv.port}/v6")
        conn.close()
        assert seen == [f"[::1]:{srv.port}"]


# ------------------------------------------------------------ through proxies


def test_through_tinyproxy(server: WsServer) -> None:
    with tinyproxy() as pport:
        used: List[str] = []

        def proxy(url: str) -> Optional[str]:
            used.append(url)
            return f"http://127.0.0.1:{pport}"

        conn, _ = Dialer(proxy=proxy, handshake_timeout=10).dial(f"ws://127.0.0.1:{server.port}/p?q=1")
        with_close(conn, echo_ok)
    assert used == [f"ws://127.0.0.1:{server.port}/p?q=1"]
    assert server.requests[0].path == "/p?q=1"  # type: ignore[attr-defined]


def test_through_tinyproxy_with_auth(server: WsServer) -> None:
    with tinyproxy(auth="carol:hunter2") as pport:
        good = Dialer(proxy=lambda u: f"http://carol:hunter2@127.0.0.1:{pport}", handshake_timeout=10)
        conn, _ = good.dial(f"ws://127.0.0.1:{server.port}/")
        with_close(conn, echo_ok)
        bad = Dialer(proxy=lambda u: f"http://127.0.0.1:{pport}", handshake_timeout=10)
        with pytest.raises(ProxyError) as ei:
            bad.dial(f"ws://127.0.0.1:{server.port}/")
        assert ei.value.status == 407


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_through_microsocks(server: WsServer, scheme: str) -> None:
    with microsocks(auth="dave:pw") as pport:
        d = Dialer(proxy=lambda u: f"{scheme}://dave:pw@127.0.0.1:{pport}", handshake_timeout=10)
        conn, _ = d.dial(f"ws://localhost:{server.port}/")
        with_close(conn, echo_ok)
        bad = Dialer(proxy=lambda u: f"{scheme}://dave:wrong@127.0.0.1:{pport}", handshake_timeout=10)
        with pytest.raises(ProxyError):
            bad.dial(f"ws://127.0.0.1:{server.port}/")


def test_proxy_from_environment_end_to_end(server: WsServer, clean_env: pytest.MonkeyPatch) -> None:
    # Loopback targets are never proxied (Go's rule), so name the target
    # "127.1": not an IP literal to the proxy rules, yet it resolves to
    # 127.0.0.1 (inet_aton short form), for us and for tinyproxy.
    d = Dialer(proxy=proxy_from_environment, handshake_timeout=10)
    with tinyproxy(connect_ports=[server.port]) as pport:
        clean_env.setenv("http_proxy", f"127.0.0.1:{pport}")
        conn, _ = d.dial(f"ws://127.1:{server.port}/env")
        with_close(conn, echo_ok)
    # Now the proxy is gone: a dial that used it would fail...
    with pytest.raises(OSError):
        d.dial(f"ws://127.1:{server.port}/env")
    # ...but NO_PROXY, and the loopback rule, route around it.
    clean_env.setenv("NO_PROXY", "127.1")
    conn, _ = d.dial(f"ws://127.1:{server.port}/direct")
    conn.close()
    clean_env.delenv("NO_PROXY")
    conn, _ = d.dial(f"ws://127.0.0.1:{server.port}/loopback")
    conn.close()
    conn, _ = d.dial(f"ws://localhost:{server.port}/loopback")
    conn.close()
    assert [r.path for r in server.requests] == ["/env", "/direct", "/loopback", "/loopback"]  # type: ignore[attr-defined]


# ------------------------------------------------------------ handshake failures


class FakeServer(TcpServer):
    """Answers each upgrade request with ``respond(key) -> bytes`` and records the request."""

    def __init__(self, respond: Callable[[str], bytes], then: Optional[Callable[[socket.socket], None]] = None) -> None:
        self.heads: List[bytes] = []
        self.closed_by_client = threading.Event()

        def handler(conn: socket.socket) -> None:
            head = read_head(conn)
            self.heads.append(head)
            key = ""
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"sec-websocket-key:"):
                    key = line.split(b":", 1)[1].strip().decode()
            conn.sendall(respond(key))
            if then is not None:
                then(conn)
            conn.settimeout(5)
            try:
                while conn.recv(4096):
                    pass
                self.closed_by_client.set()
            except ConnectionResetError:  # closed with our answer unread
                self.closed_by_client.set()
            except OSError:
                pass

        super().__init__(handler)


def ok_101(key: str, extra: str = "") -> bytes:
    return (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(key)}\r\n{extra}\r\n"
    ).encode()


BAD_RESPONSES = {
    "wrong accept": lambda k: ok_101("AAAAAAAAAAAAAAAAAAAAAA=="),
    "missing accept": lambda k: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    "missing upgrade": lambda k: (
        f"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept_key(k)}\r\n\r\n"
    ).encode(),
    "wrong upgrade": lambda k: (
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Accept: {accept_key(k)}\r\n\r\n"
    ).encode(),
    "missing connection": lambda k: (
        f"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {accept_key(k)}\r\n\r\n"
    ).encode(),
    "unrequested subprotocol": lambda k: ok_101(k, "Sec-WebSocket-Protocol: chat\r\n"),
    "unrequested extension": lambda k: ok_101(k, "Sec-WebSocket-Extensions: x-webkit-deflate-frame\r\n"),
    "unrequested deflate": lambda k: ok_101(k, "Sec-WebSocket-Extensions: permessage-deflate\r\n"),
    "status 200": lambda k: b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
    "malformed head": lambda k: b"HTTP/1.1 abc nope\r\n\r\n",
    "not http": lambda k: b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "closed mid head": lambda k: b"HTTP/1.1 101 Switching",
    "closed without answer": lambda k: b"",
    "huge head": lambda k: b"HTTP/1.1 101 Switching Protocols\r\n" + b"X-Pad: " + b"a" * 8000 + b"\r\n" * 1
    + b"X-Pad2: " + b"b" * 8000 + b"\r\n" + b"X-Pad3: " + b"c" * 8000 + b"\r\n\r\n",
}


@pytest.mark.parametrize("name", sorted(BAD_RESPONSES))
def test_bad_handshake_responses(name: str) -> None:
    respond = BAD_RESPONSES[name]

    def then(conn: socket.socket) -> None:
        if name in ("closed mid head", "closed without answer"):
            conn.shutdown(socket.SHUT_WR)

    with FakeServer(respond, then) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
        # The client closed its socket: the server sees EOF promptly.
        assert srv.closed_by_client.wait(5)
    err = ei.value
    assert str(err).startswith("websocket: bad handshake")
    if name in ("malformed head", "not http", "closed mid head", "closed without answer", "huge head"):
        assert err.response is None
    else:
        assert err.response is not None
        assert err.status == err.response.status


def test_unrequested_deflate_parameters_rejected() -> None:
    # We offered no context takeover; the server answers a parameter we never allow.
    with FakeServer(lambda k: ok_101(k, "Sec-WebSocket-Extensions: permessage-deflate; bogus=1\r\n")) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5, enable_compression=True).dial(f"ws://127.0.0.1:{srv.port}/")
        assert ei.value.response.status == 101


def test_403_with_body() -> None:
    body = b"go away: " + b"x" * 2000
    resp = b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % len(body) + body
    with FakeServer(lambda k: resp) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
    r = ei.value.response
    assert r.status == 403 and ei.value.status == 403
    assert r.reason == "Forbidden"
    assert r.headers.get("Content-Type") == "text/plain"
    assert r.body == body[:1024]


def test_401_short_body_and_chunked_body() -> None:
    resp = b"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic\r\nContent-Length: 5\r\n\r\nnope!"
    with FakeServer(lambda k: resp) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
    assert ei.value.response.body == b"nope!"
    assert ei.value.response.headers.get("WWW-Authenticate") == "Basic"

    chunked = b"HTTP/1.1 400 Bad Request\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
    with FakeServer(lambda k: chunked) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
    assert ei.value.response.body == b"hello world"


def test_302_redirect_exposes_location() -> None:
    resp = b"HTTP/1.1 302 Found\r\nLocation: ws://127.0.0.1:1/elsewhere\r\nContent-Length: 0\r\n\r\n"
    with FakeServer(lambda k: resp) as srv:
        t0 = time.monotonic()
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
        assert time.monotonic() - t0 < 4  # Content-Length: 0 means no waiting for a body
    assert ei.value.response.status == 302
    assert ei.value.response.headers.get("Location") == "ws://127.0.0.1:1/elsewhere"
    assert ei.value.response.body == b""


def test_first_frame_right_behind_the_101() -> None:
    # A text frame "hi" (unmasked, server to client) in the same write as the 101.
    with FakeServer(lambda k: ok_101(k) + b"\x81\x02hi") as srv:
        conn, resp = Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{srv.port}/")
        try:
            assert resp.status == 101
            assert conn.read_message() == (TEXT_MESSAGE, b"hi")
        finally:
            conn.close_now()


def test_request_shape() -> None:
    with FakeServer(lambda k: ok_101(k)) as srv:
        conn, _ = Dialer(handshake_timeout=5, subprotocols=["a", "b"]).dial(
            f"ws://127.0.0.1:{srv.port}/p%C3%A9/ü?q=ü", {"Origin": "http://o.test"}
        )
        conn.close_now()
    head = srv.heads[0].decode("latin-1")
    lines = head.split("\r\n")
    assert lines[0] == "GET /p%C3%A9/%C3%BC?q=%C3%BC HTTP/1.1"
    names = [ln.split(":", 1)[0].lower() for ln in lines[1:] if ln]
    for n in ("host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version",
              "sec-websocket-protocol", "origin"):
        assert n in names
    assert "Sec-WebSocket-Protocol: a, b" in head
    assert "Sec-WebSocket-Version: 13" in head


def test_handshake_timeout_bounds_a_silent_server() -> None:
    with silent_listener() as port:
        t0 = time.monotonic()
        with pytest.raises(DeadlineExceeded) as ei:
            Dialer(handshake_timeout=0.5).dial(f"ws://127.0.0.1:{port}/")
        elapsed = time.monotonic() - t0
    assert isinstance(ei.value, TimeoutError)
    assert 0.4 <= elapsed < 5


def test_connection_refused_is_oserror() -> None:
    with TcpServer(lambda c: None) as srv:
        port = srv.port
    with pytest.raises(OSError):
        Dialer(handshake_timeout=5).dial(f"ws://127.0.0.1:{port}/")


def test_net_dial_receives_go_style_address(server: WsServer) -> None:
    seen: List[Tuple[str, str]] = []

    def net_dial(network: str, addr: str) -> socket.socket:
        seen.append((network, addr))
        return socket.create_connection(("127.0.0.1", server.port), timeout=5)

    conn, _ = Dialer(net_dial=net_dial, handshake_timeout=5).dial(f"ws://example.invalid:{server.port}/")
    with_close(conn, echo_ok)
    assert seen == [("tcp", f"example.invalid:{server.port}")]
    conn, _ = Dialer(net_dial=net_dial, handshake_timeout=5).dial("ws://example.invalid/")
    conn.close()
    assert seen[-1] == ("tcp", "example.invalid:80")
    assert header(server, "Host") == "example.invalid"


def test_dialer_attributes_are_plain() -> None:
    d = Dialer()
    assert d.handshake_timeout == 45.0 and d.proxy is None and d.jar is None
    d.subprotocols = ["x"]
    d.handshake_timeout = 3.0
    d.enable_compression = True
    assert "subprotocols=['x']" in repr(d)


def test_echo_example_client(server: WsServer) -> None:
    import subprocess

    script = os.path.join(os.path.dirname(__file__), "..", "examples", "echo", "client.py")
    env = dict(os.environ, PYTHONPATH=os.path.join(os.path.dirname(__file__), ".."))
    out = subprocess.run(
        [sys.executable, script, f"ws://127.0.0.1:{server.port}/ws"],
        input=b"first line\nsecond line\n",
        capture_output=True,
        timeout=30,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.decode().splitlines() == ["< first line", "< second line"]


# The URL parser's fast paths give exactly what urllib's properties and
# quote() give, for common and odd URLs alike (a bad port raises the same).
@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:8080/",
        "ws://Example.COM/chat?x=1",
        "ws://example.com:/",
        "ws://example.com:0080/",
        "ws://example.com:65535/",
        "ws://example.com:65536/",
        "ws://example.com:８０/",
        "ws://example.com:+80/",
        "ws://example.com:a:b/",
        "ws://:80/",
        "ws://user:pa%40ss@host:81/",
        "ws://user@host/",
        "ws://[::1]:9000/",
        "ws://[fe80::1%25eth0]:1/",
        "ws://bücher.de/",
        "ws://host/a b/ü?q=ä ö&r=/?x#frag",
        "ws://host/%7Euser/~x;p=1,2*@:!$'()+",
        "ws://host",
        "ws://host?only=query",
    ],
)
def test_url_fast_paths_match_urllib(url: str) -> None:
    from urllib.parse import quote, urlsplit

    from gorillaws.client import _PATH_SAFE, _PATH_UNSAFE, _QUERY_SAFE, _QUERY_UNSAFE, _netloc, _quoted

    parts = urlsplit(url)
    try:
        want: object = (parts.hostname, parts.port, parts.username, parts.password)
    except ValueError as exc:
        want = str(exc)
    try:
        got: object = _netloc(parts)
    except ValueError as exc:
        got = str(exc)
    assert got == want
    assert _quoted(parts.path, _PATH_UNSAFE, _PATH_SAFE) == quote(parts.path, safe=_PATH_SAFE)
    assert _quoted(parts.query, _QUERY_UNSAFE, _QUERY_SAFE) == quote(parts.query, safe=_QUERY_SAFE)


def test_origin_and_protocol_come_from_request_header_in_any_form() -> None:
    # The dial skips looking for Origin and Sec-WebSocket-Protocol when no
    # request_header is given; any form of one (a generator of pairs too) is read.
    with WsServer(subprotocols=["chat"]) as srv:
        url = f"ws://127.0.0.1:{srv.port}/"
        forms = [
            {"Origin": "https://a.example", "Sec-WebSocket-Protocol": "chat"},
            [("Origin", "https://a.example"), ("Sec-WebSocket-Protocol", "chat")],
            ((k, v) for k, v in [("Origin", "https://a.example"), ("Sec-WebSocket-Protocol", "chat")]),
        ]
        for form in forms:
            conn, _ = Dialer(handshake_timeout=5).dial(url, form)  # type: ignore[arg-type]
            try:
                assert (conn.origin, conn.subprotocol()) == ("https://a.example", "chat")
            finally:
                conn.close_now()
    with WsServer() as srv:  # (one with subprotocols refuses a client that offers none)
        url = f"ws://127.0.0.1:{srv.port}/"
        for empty in (None, {}):
            conn, _ = Dialer(handshake_timeout=5, host="h.example").dial(url, empty)
            try:
                assert (conn.origin, conn.subprotocol()) == (None, "")
            finally:
                conn.close_now()
