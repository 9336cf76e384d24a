"""gorillaws.flask.Sock under werkzeug's dev server (in-process) and gunicorn's gthread worker.

The same app (tests/apps/flask_sock_app.py) runs under both; the checks:
echo, URL variables, blueprints, a refused origin (403, reason logged), a
plain GET (426), a view that raises (1011, logged once), and a client that
closes normally (no traceback, no 500 anywhere in the logs).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from contextlib import contextmanager
from typing import Iterator, List, Tuple

import pytest

pytest.importorskip("flask")

HERE = os.path.dirname(os.path.abspath(__file__))
APPS = os.path.join(HERE, "apps")
sys.path.insert(0, HERE)
sys.path.insert(0, APPS)

from examples_util import Program, child_env, free_port, wait_port  # noqa: E402
from test_serving import http_request  # noqa: E402

from gorillaws import CloseError, Dialer, HandshakeError  # noqa: E402
from gorillaws.frames import BINARY_MESSAGE, TEXT_MESSAGE  # noqa: E402

# slow: werkzeug and a gunicorn subprocess, seconds a test; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

TIMEOUT = 10.0


def http_get(port: int, path: str) -> Tuple[int, bytes]:
    status, _, body = http_request(("127.0.0.1", port), path)
    return status, body


def exercise(port: int) -> None:
    """Everything a Sock route must do, against a running server."""
    url = f"ws://127.0.0.1:{port}"
    d = Dialer(handshake_timeout=TIMEOUT)

    conn, _ = d.dial(url + "/echo")
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        conn.write_message(TEXT_MESSAGE, "hi")
        assert conn.read_message() == (TEXT_MESSAGE, b"hi")
        conn.write_message(BINARY_MESSAGE, b"\x00\x01")
        assert conn.read_message() == (BINARY_MESSAGE, b"\x00\x01")
    # (closed by the client: a normal end, checked in the logs by the callers)

    conn, _ = d.dial(url + "/room/blue")
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        assert conn.read_message() == (TEXT_MESSAGE, b"room blue")
        with pytest.raises(CloseError) as info:
            conn.read_message()
        assert info.value.code == 1000  # closed when the view returned

    conn, _ = d.dial(url + "/bp/hello")
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        assert conn.read_message() == (TEXT_MESSAGE, b"hello from a blueprint")

    conn, _ = d.dial(url + "/boom")
    with conn:
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        with pytest.raises(CloseError) as info:
            conn.read_message()
        assert info.value.code == 1011

    with pytest.raises(HandshakeError) as refused:
        d.dial(url + "/echo", {"Origin": "http://evil.example"})
    assert refused.value.status == 403

    status, body = http_get(port, "/echo")
    assert status == 426 and b"WebSocket endpoint" in body
    assert http_get(port, "/") == (200, b"home page")
    # Every connection was untracked when its view ended.
    end = time.monotonic() + TIMEOUT
    while http_get(port, "/count")[1] != b"0":
        assert time.monotonic() < end
        time.sleep(0.05)


def check_log(text: str) -> None:
    """The log of a run of exercise(): the right errors, and only those."""
    assert "boom from the view" in text  # the raising view is logged ...
    assert text.count("Traceback") == 1  # ... and it is the only traceback
    assert "http://evil.example" in text and "origin_patterns" in text
    assert '" 500 ' not in text and " 500 -" not in text


# ---------------------------------------------------------------------------
# werkzeug (in-process)
# ---------------------------------------------------------------------------


@contextmanager
def werkzeug_server() -> Iterator[int]:
    from werkzeug.serving import make_server

    import flask_sock_app

    srv = make_server("127.0.0.1", 0, flask_sock_app.app, threaded=True)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_port
    finally:
        srv.shutdown()
        srv.server_close()
        t.join(TIMEOUT)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: List[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_sock_under_werkzeug(capfd: pytest.CaptureFixture[str]) -> None:
    collect = _Collect()
    collect.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    loggers = [logging.getLogger(n) for n in ("werkzeug", "flask_sock_app", "gorillaws")]
    for lg in loggers:
        lg.addHandler(collect)
        lg.setLevel(logging.INFO)
    try:
        with werkzeug_server() as port:
            exercise(port)
    finally:
        for lg in loggers:
            lg.removeHandler(collect)
    out, err = capfd.readouterr()
    text = "\n".join(collect.lines) + "\n" + out + err
    check_log(text)
    assert " 101 " in text  # werkzeug's access log shows the upgrades


def test_routes_declared_before_init_app() -> None:
    from flask import Flask

    from gorillaws.flask import Sock

    sock = Sock()

    @sock.route("/late")
    def late(conn: object) -> None:
        pass

    app = Flask("late_app")
    sock.init_app(app)
    rules = {(r.rule, r.endpoint, r.websocket) for r in app.url_map.iter_rules()}
    assert ("/late", "late", True) in rules
    assert ("/late", "late__not_websocket", False) in rules
    assert app.extensions["gorillaws"] is sock


# ---------------------------------------------------------------------------
# gunicorn gthread (subprocess)
# ---------------------------------------------------------------------------


def gunicorn_argv(port: int, *extra: str) -> List[str]:
    return [
        sys.executable, "-m", "gunicorn", "-k", "gthread", "--threads", "16", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--chdir", APPS, "--access-logfile", "-",
        *extra, "flask_sock_app:app",
    ]  # fmt: skip


@contextmanager
def gunicorn(*extra: str) -> Iterator[Tuple[Program, int]]:
    pytest.importorskip("gunicorn")
    port = free_port()
    prog = Program(gunicorn_argv(port, *extra), env=child_env())
    try:
        prog.wait_for(r"Booting worker", timeout=30)
        wait_port(port)
        yield prog, port
    finally:
        stop(prog)


def stop(prog: Program) -> None:
    if prog.proc.poll() is None:
        prog.proc.terminate()  # by PID: the gunicorn master we started
        try:
            prog.proc.wait(TIMEOUT)
        except Exception:
            prog.proc.kill()
            prog.proc.wait(TIMEOUT)


def output(prog: Program) -> str:
    """The log so far, once the access-log line of exercise()'s last request is in."""
    prog.wait_for(r'"GET /count HTTP/1.1" 200 1 ', timeout=TIMEOUT)
    return prog.output.decode("utf-8", "replace")


def test_sock_under_gunicorn_gthread() -> None:
    with gunicorn() as (prog, port):
        exercise(port)
        text = output(prog)
    check_log(text)
    assert '"GET /echo HTTP/1.1" 101' in text
