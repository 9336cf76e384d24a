"""Server side over 127.0.0.1: http.server integration, raw sockets, Handler.

The peer is the ``websockets`` package's sync client (an independent
implementation); hand-written requests cover what it cannot send (bad
versions, missing keys, other methods, slow or oversized heads).
"""

from __future__ import annotations

import http.server
import queue
import os
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gorillaws import HandshakeError
from gorillaws.handshake import accept_key, generate_key
from gorillaws.http11 import MAX_HEAD_SIZE, Request, parse_response_head
from gorillaws.server import (
    HIJACKED,
    Handler,
    UpgradeRequest,
    Upgrader,
    is_websocket_upgrade,
    subprotocols,
    upgrade_accepted,
)

from conftest import build_frame
from helpers import (
    TIMEOUT,
    AcceptLoop,
    HTTPServerHarness,
    closing_factory,
    echo,
    raw_request,
    read_head,
    read_until_close,
    recv_at_least,
    upgrade_request,
    wait_for,
)

App = Callable[[http.server.BaseHTTPRequestHandler], None]


Server = HTTPServerHarness


@pytest.fixture
def serve() -> Iterator[Callable[[App], Server]]:
    with closing_factory(Server) as factory:
        yield factory


def upgrade_and_echo(upgrader: Upgrader, **kw: Any) -> App:
    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        try:
            conn = upgrader.upgrade(h, **kw)
        except HandshakeError:
            return
        echo(conn)

    return app


def handshake_bytes(port: int, *, method: str = "GET", drop: Tuple[str, ...] = (), **headers: str) -> bytes:
    return upgrade_request(f"127.0.0.1:{port}", method=method, drop=drop, **headers)


# ---------------------------------------------------------------------------
# http.server
# ---------------------------------------------------------------------------


def test_echo_over_http_server(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader()))
    with connect(srv.url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
        ws.send(b"\x00\x01" * 5000)
        assert ws.recv(timeout=TIMEOUT) == b"\x00\x01" * 5000
        assert ws.subprotocol is None
    assert not srv.errors


def test_subprotocol_choice_follows_server_preference(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader(subprotocols=["v2", "v1"])))
    with connect(srv.url, subprotocols=["v1", "v2"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v2"
    with connect(srv.url, subprotocols=["v1", "other"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v1"
    with connect(srv.url, subprotocols=["other"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol is None


def test_subprotocol_from_response_header(serve: Callable[[App], Server]) -> None:
    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        offered = subprotocols(h)
        conn = Upgrader().upgrade(h, {"Sec-WebSocket-Protocol": offered[-1]})
        assert conn.subprotocol() == offered[-1]
        echo(conn)

    srv = serve(app)
    with connect(srv.url, subprotocols=["a", "b"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "b"
    assert not srv.errors


def test_extra_response_headers_and_cookies(serve: Callable[[App], Server]) -> None:
    seen: Dict[str, Any] = {}

    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        seen["cookie"] = h.headers.get("Cookie")
        seen["is_upgrade"] = is_websocket_upgrade(h)
        conn = Upgrader().upgrade(h, [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X-Extra", "yes")])
        echo(conn)

    srv = serve(app)
    with connect(
        srv.url, additional_headers={"Cookie": "session=abc123"}, open_timeout=TIMEOUT
    ) as ws:
        assert ws.response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
        assert ws.response.headers["X-Extra"] == "yes"
    assert seen == {"cookie": "session=abc123", "is_upgrade": True}
    assert not srv.errors


@pytest.mark.parametrize("reserved", ["Sec-WebSocket-Accept", "Sec-WebSocket-Extensions", "Upgrade"])
def test_reserved_response_header_answers_500(serve: Callable[[App], Server], reserved: str) -> None:
    # As gorilla: the library answers 500 and raises HandshakeError (not a
    # ValueError that leaves the client without an answer).
    errors: "queue.Queue[BaseException]" = queue.Queue()

    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        try:
            Upgrader().upgrade(h, {reserved: "forged"})
        except BaseException as e:  # the answer is sent before this is raised
            errors.put(e)

    srv = serve(app)
    with pytest.raises(InvalidStatus) as ei:
        connect(srv.url, open_timeout=TIMEOUT)
    assert ei.value.response.status_code == 500
    err = errors.get(timeout=TIMEOUT)
    assert isinstance(err, HandshakeError) and err.status == 500 and reserved in str(err)


def test_go_shaped_response_header(serve: Callable[[App], Server]) -> None:
    # gorilla's responseHeader is an http.Header: a mapping of lists.
    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        with Upgrader().upgrade(h, {"Set-Cookie": ["a=1", "b=2"], "X-One": "1"}):
            pass

    srv = serve(app)
    with connect(srv.url, open_timeout=TIMEOUT) as ws:
        assert ws.response.headers.get_all("Set-Cookie") == ["a=1", "b=2"]
        assert ws.response.headers["X-One"] == "1"


def test_bad_origin_is_403(serve: Callable[[App], Server]) -> None:
    errors: List[HandshakeError] = []

    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        try:
            conn = Upgrader().upgrade(h)
        except HandshakeError as e:
            errors.append(e)
            return
        echo(conn)

    srv = serve(app)
    with pytest.raises(InvalidStatus) as ei:
        connect(srv.url, origin="http://evil.example", open_timeout=TIMEOUT)  # type: ignore[arg-type]
    assert ei.value.response.status_code == 403
    wait_for(lambda: errors)
    assert errors[0].status == 403
    # Same origin passes.
    with connect(srv.url, origin=f"http://127.0.0.1:{srv.port}", open_timeout=TIMEOUT) as ws:  # type: ignore[arg-type]
        ws.send("x")
        assert ws.recv(timeout=TIMEOUT) == "x"


def test_origin_patterns_and_skip_verify(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader(origin_patterns=["*.example.com"])))
    with connect(srv.url, origin="https://app.example.com", open_timeout=TIMEOUT):  # type: ignore[arg-type]
        pass
    with pytest.raises(InvalidStatus) as ei:
        connect(srv.url, origin="https://example.org", open_timeout=TIMEOUT)  # type: ignore[arg-type]
    assert ei.value.response.status_code == 403
    srv2 = serve(upgrade_and_echo(Upgrader(insecure_skip_verify=True)))
    with connect(srv2.url, origin="https://anything.test", open_timeout=TIMEOUT):  # type: ignore[arg-type]
        pass
    srv3 = serve(upgrade_and_echo(Upgrader(check_origin=lambda r: r.origin == "http://ok")))
    with connect(srv3.url, origin="http://ok", open_timeout=TIMEOUT):  # type: ignore[arg-type]
        pass
    with pytest.raises(InvalidStatus):
        connect(srv3.url, open_timeout=TIMEOUT)  # no Origin: the custom check says no


@pytest.mark.parametrize(
    "kwargs,status,header",
    [
        ({"Sec_WebSocket_Version": "8"}, 426, ("Sec-WebSocket-Version", "13")),
        ({"drop": ("Sec-WebSocket-Version",)}, 426, ("Sec-WebSocket-Version", "13")),
        ({"drop": ("Sec-WebSocket-Key",)}, 400, None),
        ({"Sec_WebSocket_Key": "short"}, 400, None),
        ({"method": "POST"}, 405, ("Allow", "GET")),
        ({"Upgrade": "h2c"}, 400, None),
        ({"Connection": "keep-alive"}, 400, None),
        ({"drop": ("Host",)}, 400, None),
    ],
)
def test_rejections_http_server(
    serve: Callable[[App], Server], kwargs: Dict[str, Any], status: int, header: Optional[Tuple[str, str]]
) -> None:
    errors: List[HandshakeError] = []

    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        try:
            Upgrader().upgrade(h)
        except HandshakeError as e:
            errors.append(e)

    srv = serve(app)
    resp, body = raw_request(srv.port, handshake_bytes(srv.port, **kwargs))
    assert resp.status == status
    assert body == (resp.reason + "\n").encode()
    if header is not None:
        assert resp.headers[header[0]] == header[1]
    wait_for(lambda: errors)
    assert [e.status for e in errors] == [status]


def test_custom_error_callback(serve: Callable[[App], Server]) -> None:
    calls: List[Tuple[int, str]] = []

    def error(req: UpgradeRequest, status: int, reason: str) -> None:
        calls.append((status, reason))
        h = req.raw
        h.send_response(status)
        h.send_header("X-Why", "custom")
        h.send_header("Content-Length", "0")
        h.end_headers()

    srv = serve(upgrade_and_echo(Upgrader(error=error)))
    resp, _ = raw_request(srv.port, handshake_bytes(srv.port, Sec_WebSocket_Version="7"))
    assert resp.status == 426 and resp.headers["X-Why"] == "custom"
    assert calls and calls[0][0] == 426 and "version" in calls[0][1]


def test_pipelined_first_frame_reaches_conn(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader()))
    key = generate_key()
    data = handshake_bytes(srv.port, Sec_WebSocket_Key=key)
    frame = build_frame(1, b"early bird", key=b"\x01\x02\x03\x04")
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(data + frame)  # one segment: http.server buffers the frame
        head, rest = read_head(s)
        resp = parse_response_head(head)
        assert resp.status == 101
        assert resp.headers["Sec-WebSocket-Accept"] == accept_key(key)
        assert recv_at_least(s, 12, rest)[:12] == b"\x81\x0aearly bird"
        s.sendall(build_frame(8, b"\x03\xe8", key=b"\x00\x00\x00\x00"))


def test_conn_outlives_the_request_handler(serve: Callable[[App], Server]) -> None:
    """The view may hand the Conn to its own thread and return at once."""
    threads: List[threading.Thread] = []
    returned = threading.Event()

    def app(h: http.server.BaseHTTPRequestHandler) -> None:
        conn = Upgrader().upgrade(h)
        t = threading.Thread(target=echo, args=(conn,))
        t.start()
        threads.append(t)
        returned.set()

    srv = serve(app)
    with connect(srv.url, open_timeout=TIMEOUT) as ws:
        assert returned.wait(TIMEOUT)
        time.sleep(0.1)  # the server has now finished with (and closed) its socket
        for i in range(3):
            ws.send(f"msg {i}")
            assert ws.recv(timeout=TIMEOUT) == f"msg {i}"
    for t in threads:
        t.join(TIMEOUT)
        assert not t.is_alive()


def _fd_count() -> int:
    return len(os.listdir("/proc/self/fd"))


def _settle(baseline_threads: int, baseline_fds: int) -> Tuple[int, int]:
    deadline = time.monotonic() + TIMEOUT
    while True:
        t, f = threading.active_count(), _fd_count()
        if (t <= baseline_threads and f <= baseline_fds) or time.monotonic() > deadline:
            return t, f
        time.sleep(0.02)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_no_thread_or_socket_leak_after_200_cycles(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader()))
    # Warm up once (lazy imports, thread-local state), then take the baseline.
    with connect(srv.url, open_timeout=TIMEOUT) as ws:
        ws.send("warm")
        ws.recv(timeout=TIMEOUT)
    threads0, fds0 = _settle(threading.active_count(), _fd_count())
    for i in range(200):
        with connect(srv.url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            if i % 20 == 0:
                ws.send("ping")
                assert ws.recv(timeout=TIMEOUT) == "ping"
    threads1, fds1 = _settle(threads0, fds0)
    assert threads1 <= threads0, f"threads: {threads0} before, {threads1} after"
    assert fds1 <= fds0, f"fds: {fds0} before, {fds1} after"
    assert not srv.errors


# ---------------------------------------------------------------------------
# Raw sockets: the library reads the request itself
# ---------------------------------------------------------------------------


class RawServer(AcceptLoop):
    """Accepts on 127.0.0.1 and runs ``upgrader.upgrade(sock)`` (or ``handler.serve``) per connection."""

    def __init__(self, upgrader: Upgrader, handler: Optional[Handler] = None) -> None:
        self.upgrader = upgrader
        self.ws_handler = handler
        super().__init__(self._serve)

    def _serve(self, sock: socket.socket) -> None:
        if self.ws_handler is not None:
            self.ws_handler.serve(sock)
        else:
            echo(self.upgrader.upgrade(sock))


@pytest.fixture
def raw_server() -> Iterator[Callable[..., RawServer]]:
    with closing_factory(RawServer) as factory:
        yield factory


def test_raw_socket_echo_and_subprotocol(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader(subprotocols=["chat"]))
    with connect(f"ws://127.0.0.1:{srv.port}/x?y=1", subprotocols=["chat"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "chat"
        ws.send("raw")
        assert ws.recv(timeout=TIMEOUT) == "raw"
    assert not srv.errors


@pytest.mark.parametrize(
    "kwargs,status",
    [
        ({"Sec_WebSocket_Version": "12"}, 426),
        ({"drop": ("Sec-WebSocket-Key",)}, 400),
        ({"Origin": "http://evil.example"}, 403),
    ],
)
def test_raw_socket_rejections_close_the_socket(
    raw_server: Callable[..., RawServer], kwargs: Dict[str, Any], status: int
) -> None:
    srv = raw_server(Upgrader())
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(handshake_bytes(srv.port, **kwargs))
        data = read_until_close(s)  # the server closes the connection
    resp = parse_response_head(data)
    assert resp.status == status
    assert resp.headers["Connection"] == "close"
    wait_for(lambda: srv.errors)
    assert isinstance(srv.errors[0], HandshakeError) and srv.errors[0].status == status


class _CountingSocket(socket.socket):
    """A socket that counts the timeout changes made on it (each one an ioctl)."""

    settimeouts = 0

    def settimeout(self, value: Optional[float]) -> None:
        self.settimeouts += 1
        super().settimeout(value)


def _raw_upgrade(upgrade: Callable[[socket.socket], Any]) -> Tuple[Any, socket.socket, _CountingSocket]:
    """Run ``upgrade(server_end)`` on a socket pair whose client end sent a valid request."""
    a, b = socket.socketpair()
    server_end = _CountingSocket(a.family, a.type, a.proto, fileno=a.detach())
    b.settimeout(TIMEOUT)
    b.sendall(upgrade_request("example.com"))
    return upgrade(server_end), b, server_end


def test_raw_upgrade_uses_one_socket_io() -> None:
    """The request read, the 101 and the Conn share one SocketIO: one timeout
    reset (an ioctl) per upgrade instead of one per SocketIO made."""
    conn, client, server_end = _raw_upgrade(Upgrader().upgrade)
    try:
        assert read_head(client)[0].startswith(b"HTTP/1.1 101")
        assert server_end.settimeouts == 1
        client.sendall(build_frame(0x1, b"hi", key=b"\x01\x02\x03\x04"))
        assert conn.read_message() == (1, b"hi")
    finally:
        conn.close_now()
        client.close()


def test_upgrade_accepted_takes_the_known_addresses() -> None:
    """Server passes the peer address accept() returned (and the listener's own):
    the Conn and the request report them, nothing is asked of the socket."""
    seen: List[Any] = []
    u = Upgrader(check_origin=lambda req: seen.append(req.remote_addr) or True)
    peer, local = ("192.0.2.7", 4242), ("192.0.2.1", 80)
    box: List[Any] = []
    conn, client, _ = _raw_upgrade(lambda s: box.extend(upgrade_accepted(u, s, peer, local)) or box[0])
    try:
        assert read_head(client)[0].startswith(b"HTTP/1.1 101")
        assert seen == [peer] and box[1].remote_addr == peer and box[1].target == "/ws"
        assert conn.remote_addr() == peer and conn.local_addr() == local
    finally:
        conn.close_now()
        client.close()


def test_raw_socket_non_get_is_405(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader())
    resp, _ = raw_request(srv.port, handshake_bytes(srv.port, method="PUT"))
    assert resp.status == 405 and resp.headers["Allow"] == "GET"


def test_raw_socket_malformed_request_is_400(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader())
    resp, _ = raw_request(srv.port, b"GET /ws HTTP/1.1\r\nBad Header\r\n\r\n")
    assert resp.status == 400


def test_slow_handshake_times_out(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader(handshake_timeout=0.3))
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        start = time.monotonic()
        s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\n")  # ... and never finish (slowloris)
        time.sleep(0.1)
        s.sendall(b"X-Slow: 1\r\n")
        assert s.recv(4096) == b""  # dropped without an answer
        assert time.monotonic() - start < TIMEOUT
    wait_for(lambda: srv.errors)
    err = srv.errors[0]
    assert isinstance(err, HandshakeError) and err.status == 408
    assert "timed out" in str(err)


def test_oversized_head_is_431(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader())
    head = b"GET /ws HTTP/1.1\r\n" + b"X-Pad: " + b"a" * 100 + b"\r\n"
    data = head * (MAX_HEAD_SIZE // len(head) + 2)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        try:
            s.sendall(data)
        except OSError:
            pass
        buf = read_until_close(s)
    assert buf.startswith(b"HTTP/1.1 431 ")


def test_raw_peer_disconnect_during_handshake(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader())
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /ws HTTP/1.1\r\n")
    wait_for(lambda: srv.errors)
    assert isinstance(srv.errors[0], HandshakeError)


# ---------------------------------------------------------------------------
# Handler (seehuhn) and helpers
# ---------------------------------------------------------------------------


def test_handler_with_access_ok_and_server_name(serve: Callable[[App], Server]) -> None:
    seen: List[Tuple[str, List[str], Optional[str]]] = []

    def access_ok(req: UpgradeRequest, protocols: List[str]) -> bool:
        seen.append((req.path, protocols, req.headers.get("Cookie")))
        if req.path == "/forbidden":
            return False
        if "v2" in protocols:
            req.protocol = "v2"
        return True

    handler = Handler(echo, access_ok=access_ok, server_name="gorillaws-test")
    srv = serve(handler.serve)
    base = f"ws://127.0.0.1:{srv.port}"
    with connect(base + "/ok", subprotocols=["v1", "v2"], additional_headers={"Cookie": "c=1"}, open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "v2"
        assert ws.response.headers["Server"] == "gorillaws-test"
        ws.send("hi")
        assert ws.recv(timeout=TIMEOUT) == "hi"
    assert seen[0] == ("/ok", ["v1", "v2"], "c=1")
    with pytest.raises(InvalidStatus) as ei:
        connect(base + "/forbidden", open_timeout=TIMEOUT)
    assert ei.value.response.status_code == 403
    # Offered subprotocols, none chosen by access_ok: the setup fails (seehuhn).
    with pytest.raises(InvalidStatus) as ei:
        connect(base + "/ok", subprotocols=["v1"], open_timeout=TIMEOUT)  # type: ignore[list-item]
    assert ei.value.response.status_code == 400


def test_handler_on_raw_sockets(raw_server: Callable[..., RawServer]) -> None:
    srv = raw_server(Upgrader(), Handler(echo))
    with connect(f"ws://127.0.0.1:{srv.port}/", open_timeout=TIMEOUT) as ws:
        ws.send(b"bin")
        assert ws.recv(timeout=TIMEOUT) == b"bin"


def test_helpers_on_environ_and_request() -> None:
    env = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/ws",
        "QUERY_STRING": "a=1",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "h",
        "HTTP_UPGRADE": "WebSocket",
        "HTTP_CONNECTION": "keep-alive, Upgrade",
        "HTTP_SEC_WEBSOCKET_PROTOCOL": "a, b",
    }
    assert is_websocket_upgrade(env)
    assert subprotocols(env) == ["a", "b"]
    assert not is_websocket_upgrade({**env, "HTTP_UPGRADE": "h2c"})
    req = Request("GET", "/", headers=__import__("gorillaws.http11").http11.Headers({"Connection": "upgrade"}))
    assert not is_websocket_upgrade(req)
    assert subprotocols(req) == []
    with pytest.raises(TypeError):
        is_websocket_upgrade(42)


def test_hijacked_response_is_a_wsgi_app() -> None:
    calls: List[Any] = []
    body = HIJACKED({}, lambda status, headers: calls.append((status, headers)))
    assert list(body) == []
    assert calls == [("101 Switching Protocols", [])]


def test_upgrader_attributes_mirror_gorilla() -> None:
    u = Upgrader(handshake_timeout=3.0, read_buffer_size=1024, write_buffer_size=2048,
                 subprotocols=["x"], enable_compression=True)
    assert (u.handshake_timeout, u.read_buffer_size, u.write_buffer_size) == (3.0, 1024, 2048)
    assert u.subprotocols == ["x"] and u.enable_compression is True
    assert u.check_origin is None and u.error is None and u.origin_patterns == []
    u.subprotocols = ["y"]
    assert u.subprotocols == ["y"]


def test_compression_negotiated_with_websockets(serve: Callable[[App], Server]) -> None:
    srv = serve(upgrade_and_echo(Upgrader(enable_compression=True)))
    with connect(srv.url, open_timeout=TIMEOUT) as ws:  # websockets offers deflate by default
        ext = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        assert ext.startswith("permessage-deflate")
        ws.send("z" * 5000)
        assert ws.recv(timeout=TIMEOUT) == "z" * 5000
    srv2 = serve(upgrade_and_echo(Upgrader()))
    with connect(srv2.url, open_timeout=TIMEOUT) as ws:
        assert "Sec-WebSocket-Extensions" not in ws.response.headers
