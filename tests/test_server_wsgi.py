"""Upgrader under WSGI servers: werkzeug's dev server (plain WSGI and Flask) and gunicorn.

werkzeug runs in-process on 127.0.0.1; gunicorn runs as a subprocess (sync
and gthread workers) serving ``tests/apps/wsgi_echo.py`` and is ended by PID.
The peer is the ``websockets`` package's sync client.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Iterator, List, Tuple

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from gorillaws.http11 import Response

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
APPS = os.path.join(HERE, "apps")

sys.path.insert(0, APPS)
import wsgi_echo  # noqa: E402
from helpers import TIMEOUT, closing_factory, upgrade_request  # noqa: E402
from helpers import raw_request as send_request  # noqa: E402

# slow: gunicorn subprocesses and werkzeug servers, seconds a test; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

werkzeug_serving = pytest.importorskip("werkzeug.serving")
flask = pytest.importorskip("flask")


def raw_request(port: int, path: str = "/ws", method: str = "GET", **headers: str) -> Response:
    """A hand-written upgrade request; ``headers`` override (value "" drops)."""
    return send_request(port, upgrade_request(f"127.0.0.1:{port}", path, method=method, **headers))[0]


def check_rejections(port: int, path: str = "/ws") -> None:
    """426, 400, 405 and 403 answered through the WSGI server."""
    r = raw_request(port, path, Sec_WebSocket_Version="8")
    assert r.status == 426 and r.headers["Sec-WebSocket-Version"] == "13"
    assert raw_request(port, path, Sec_WebSocket_Key="").status == 400
    r = raw_request(port, path, method="POST", Content_Length="0")
    assert r.status == 405 and "GET" in r.headers["Allow"]  # Flask's router may answer first
    assert raw_request(port, path, Origin="http://evil.example").status == 403


def check_echo(url: str) -> None:
    with connect(
        url,
        subprotocols=["superchat", "chat"],  # type: ignore[list-item]
        additional_headers={"Cookie": "session=xyz"},
        open_timeout=TIMEOUT,
        close_timeout=TIMEOUT,
    ) as ws:
        assert ws.subprotocol == "chat"  # the server's preference wins
        assert ws.response.headers["Set-Cookie"] == "served=yes"
        assert ws.response.headers["X-App"] == "wsgi_echo"
        assert ws.recv(timeout=TIMEOUT) == "cookie=session=xyz"
        ws.send("hello")
        assert ws.recv(timeout=TIMEOUT) == "hello"
        ws.send(b"\xff" * 70000)
        assert ws.recv(timeout=TIMEOUT) == b"\xff" * 70000


# ---------------------------------------------------------------------------
# werkzeug (in-process)
# ---------------------------------------------------------------------------


class WerkzeugServer:
    def __init__(self, app: Any) -> None:
        self.srv = werkzeug_serving.make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.srv.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.srv.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self) -> None:
        self.srv.shutdown()
        self.srv.server_close()
        self.thread.join(TIMEOUT)


@pytest.fixture
def werkzeug_server() -> Iterator[Callable[[Any], WerkzeugServer]]:
    with closing_factory(WerkzeugServer) as factory:
        yield factory


def flask_app() -> Any:
    from flask import Flask, request

    from gorillaws import HandshakeError
    from gorillaws.server import HIJACKED, Upgrader

    app = Flask("gorillaws_test")
    upgrader = Upgrader(subprotocols=["chat", "superchat"])

    # websocket=True: werkzeug's router answers 400 to an upgrade request
    # that hits an ordinary (HTTP-only) rule.
    @app.route("/ws", websocket=True)
    def ws() -> Any:
        try:
            conn = upgrader.upgrade(request.environ, {"Set-Cookie": "served=yes", "X-App": "wsgi_echo"})
        except HandshakeError as e:
            return e.response
        conn.send_text("cookie=session=" + request.cookies.get("session", "?"))
        wsgi_echo.echo(conn)
        return HIJACKED

    @app.route("/plain")
    def plain() -> str:
        return "plain\n"

    return app


@pytest.mark.parametrize("kind", ["wsgi", "flask"])
def test_werkzeug_echo_and_rejections(werkzeug_server: Callable[[Any], WerkzeugServer], kind: str) -> None:
    srv = werkzeug_server(wsgi_echo.app if kind == "wsgi" else flask_app())
    check_echo(f"ws://127.0.0.1:{srv.port}/ws")
    check_rejections(srv.port)
    # The server still serves plain HTTP afterwards.
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")
        assert s.recv(4096).startswith(b"HTTP/1.1 200")


def test_werkzeug_conn_outlives_view(werkzeug_server: Callable[[Any], WerkzeugServer]) -> None:
    srv = werkzeug_server(wsgi_echo.app)
    with connect(f"ws://127.0.0.1:{srv.port}/ws-thread", open_timeout=TIMEOUT) as ws:
        assert ws.recv(timeout=TIMEOUT) == "cookie="
        time.sleep(0.1)  # the view has returned and werkzeug has closed its side
        for i in range(3):
            ws.send(str(i))
            assert ws.recv(timeout=TIMEOUT) == str(i)


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_werkzeug_no_leaks_after_200_cycles(werkzeug_server: Callable[[Any], WerkzeugServer]) -> None:
    srv = werkzeug_server(wsgi_echo.app)
    url = f"ws://127.0.0.1:{srv.port}/ws"

    def settle(t0: int, f0: int) -> Tuple[int, int]:
        deadline = time.monotonic() + TIMEOUT
        while True:
            t, f = threading.active_count(), len(os.listdir("/proc/self/fd"))
            if (t <= t0 and f <= f0) or time.monotonic() > deadline:
                return t, f
            time.sleep(0.02)

    with connect(url, open_timeout=TIMEOUT) as ws:
        ws.recv(timeout=TIMEOUT)
    t0, f0 = settle(threading.active_count(), len(os.listdir("/proc/self/fd")))
    for _ in range(200):
        with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            ws.recv(timeout=TIMEOUT)
    t1, f1 = settle(t0, f0)
    assert t1 <= t0, f"threads {t0} -> {t1}"
    assert f1 <= f0, f"fds {f0} -> {f1}"


# ---------------------------------------------------------------------------
# gunicorn (subprocess)
# ---------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def plain_get(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return s.recv(4096)


@contextlib.contextmanager
def gunicorn_process(kind: str, threads: int = 4) -> Iterator[Tuple[int, "subprocess.Popen[bytes]"]]:
    """gunicorn serving tests/apps/wsgi_echo.py with one ``kind`` worker; yields (port, process).

    Note that gunicorn runs a ``sync`` worker as ``gthread`` when ``threads``
    is more than 1.  Its output (stdout and stderr) stays unread in ``process.stdout`` until it ends.
    """
    pytest.importorskip("gunicorn")
    port = free_port()
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    cmd = [
        sys.executable, "-m", "gunicorn",
        "--workers", "1", "--worker-class", kind, "--threads", str(threads),
        "--bind", f"127.0.0.1:{port}", "--chdir", APPS,
        "--graceful-timeout", "1", "--log-level", "warning",
        "wsgi_echo:app",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20.0
        while True:
            if proc.poll() is not None:
                out = proc.stdout.read().decode(errors="replace") if proc.stdout else ""
                pytest.fail(f"gunicorn exited early ({proc.returncode}):\n{out}")
            try:
                if plain_get(port).startswith(b"HTTP/1.1 200"):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("gunicorn did not become ready")
            time.sleep(0.1)
        yield port, proc
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(5)
        if proc.stdout:
            proc.stdout.close()


@pytest.fixture(params=["sync", "gthread"])
def gunicorn(request: Any) -> Iterator[Tuple[str, int, int]]:
    kind = str(request.param)
    with gunicorn_process(kind) as (port, proc):
        yield kind, port, proc.pid


@pytest.mark.parametrize("kind", ["sync", "gthread"])
def test_gunicorn_sync_worker_warns_once(kind: str) -> None:
    # Under the sync worker each WebSocket holds the worker process; the
    # library says so once, naming the fix.  gthread gets no warning.
    with gunicorn_process(kind, threads=1 if kind == "sync" else 4) as (port, proc):
        for _ in range(2):
            with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
                ws.recv(timeout=TIMEOUT)  # the app's greeting
        os.kill(proc.pid, signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    text = out.decode(errors="replace")
    assert text.count("-k gthread") == (1 if kind == "sync" else 0), text


def test_sync_worker_warning_from_environ(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    from gorillaws import HandshakeError, server
    from gorillaws.server import Upgrader

    monkeypatch.setattr(server, "_sync_worker_warned", False)
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/ws", "SERVER_PROTOCOL": "HTTP/1.1", "HTTP_HOST": "x"}
    with caplog.at_level("WARNING", logger="gorillaws.server"):
        for multithread in (True, False, False):
            env = dict(environ, SERVER_SOFTWARE="gunicorn/22.0.0", **{"wsgi.multithread": multithread})
            with pytest.raises(HandshakeError):  # not an upgrade request; only the warning matters here
                Upgrader().upgrade(env)
        with pytest.raises(HandshakeError):
            Upgrader().upgrade(dict(environ, SERVER_SOFTWARE="Werkzeug/3.0", **{"wsgi.multithread": False}))
    warnings = [r.getMessage() for r in caplog.records if "gthread" in r.getMessage()]
    assert len(warnings) == 1 and "-k gthread" in warnings[0]


def _worker_fds(master: int) -> int:
    """Open fds of gunicorn's (single) worker process, -1 if unknown."""
    try:
        with open(f"/proc/{master}/task/{master}/children") as f:
            kids = f.read().split()
        return len(os.listdir(f"/proc/{kids[0]}/fd"))
    except (OSError, IndexError):
        return -1


def test_gunicorn_echo_and_rejections(gunicorn: Tuple[str, int, int]) -> None:
    kind, port, _ = gunicorn
    # The sync worker serves one request at a time: the app hands the
    # connection to a thread of its own.  gthread can run it inline.
    paths = ["/ws-thread"] if kind == "sync" else ["/ws", "/ws-thread"]
    for path in paths:
        check_echo(f"ws://127.0.0.1:{port}{path}")
        check_rejections(port, path)
    assert plain_get(port).startswith(b"HTTP/1.1 200")


def test_gunicorn_many_cycles_no_fd_leak(gunicorn: Tuple[str, int, int]) -> None:
    kind, port, master = gunicorn
    path = "/ws-thread" if kind == "sync" else "/ws"
    url = f"ws://127.0.0.1:{port}{path}"

    def settle(limit: int) -> int:
        deadline = time.monotonic() + TIMEOUT
        while True:
            n = _worker_fds(master)
            if n <= limit or time.monotonic() > deadline:
                return n
            time.sleep(0.05)

    with connect(url, open_timeout=TIMEOUT) as ws:
        ws.recv(timeout=TIMEOUT)
    time.sleep(0.2)
    before = _worker_fds(master)
    for _ in range(100):
        with connect(url, open_timeout=TIMEOUT, close_timeout=TIMEOUT) as ws:
            assert ws.recv(timeout=TIMEOUT) == "cookie="
            ws.send("x")
            assert ws.recv(timeout=TIMEOUT) == "x"
    if before < 0:
        pytest.skip("cannot see gunicorn's worker in /proc")
    after = settle(before)
    assert after <= before, f"worker fds {before} -> {after}"


def test_gunicorn_refused_origin_with_websockets_client(gunicorn: Tuple[str, int, int]) -> None:
    _, port, _ = gunicorn
    with pytest.raises(InvalidStatus) as ei:
        connect(f"ws://127.0.0.1:{port}/ws-thread", origin="http://evil.example", open_timeout=TIMEOUT)  # type: ignore[arg-type]
    assert ei.value.response.status_code == 403


def test_handler_as_wsgi_app(werkzeug_server: Callable[[Any], WerkzeugServer]) -> None:
    from gorillaws.server import Handler

    def access_ok(req: Any, protocols: List[str]) -> bool:
        req.protocol = protocols[0] if protocols else ""
        return req.path != "/no"

    srv = werkzeug_server(Handler(wsgi_echo.echo, access_ok=access_ok, server_name="seehuhn-style"))
    with connect(f"ws://127.0.0.1:{srv.port}/yes", subprotocols=["p1"], open_timeout=TIMEOUT) as ws:  # type: ignore[list-item]
        assert ws.subprotocol == "p1"
        assert ws.response.headers["Server"] == "seehuhn-style"
        ws.send("via handler")
        assert ws.recv(timeout=TIMEOUT) == "via handler"
    with pytest.raises(InvalidStatus) as ei:
        connect(f"ws://127.0.0.1:{srv.port}/no", open_timeout=TIMEOUT)
    assert ei.value.response.status_code == 403


def test_echo_examples_run(werkzeug_server: Callable[[Any], WerkzeugServer]) -> None:
    """examples/echo: the Flask app served here, the http.server one on its own."""
    import http.server

    sys.path.insert(0, os.path.join(ROOT, "examples", "echo"))
    try:
        import server_flask
        import server_http
    finally:
        sys.path.pop(0)
    srv = werkzeug_server(server_flask.app)
    with connect(f"ws://127.0.0.1:{srv.port}/ws", open_timeout=TIMEOUT) as ws:
        ws.send("flask example")
        assert ws.recv(timeout=TIMEOUT) == "flask example"
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), server_http.EchoHandler)
    httpd.daemon_threads = True
    server_http.EchoHandler.log_message = lambda *a: None  # type: ignore[method-assign]
    t = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    t.start()
    try:
        port = httpd.server_address[1]
        with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=TIMEOUT) as ws:
            ws.send("http.server example")
            assert ws.recv(timeout=TIMEOUT) == "http.server example"
    finally:
        httpd.shutdown()
        httpd.server_close()
        t.join(TIMEOUT)
