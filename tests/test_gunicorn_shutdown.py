"""gunicorn's SIGTERM with open WebSockets: 1001 at once with gorillaws.gunicorn's hook.

A real gunicorn (gthread worker) runs tests/apps/flask_sock_app.py; the test
opens live connections, sends SIGTERM to the gunicorn master it started (by
PID; the master passes it on to its worker), and reads what the clients get.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List

import pytest

pytest.importorskip("flask")
pytest.importorskip("gunicorn")

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from examples_util import Program, child_env, free_port, wait_port  # noqa: E402
from test_flask_ext import gunicorn_argv, stop  # noqa: E402

from gorillaws import CloseError, Conn, Dialer  # noqa: E402
from gorillaws.frames import TEXT_MESSAGE  # noqa: E402

# slow: a gunicorn subprocess per test; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

TIMEOUT = 10.0
CLIENTS = 5


def open_clients(port: int) -> List[Conn]:
    conns = []
    for i in range(CLIENTS):
        conn, _ = Dialer(handshake_timeout=TIMEOUT).dial(f"ws://127.0.0.1:{port}/echo")
        conn.set_read_deadline(time.monotonic() + TIMEOUT)
        conn.write_message(TEXT_MESSAGE, f"c{i}")
        assert conn.read_message() == (TEXT_MESSAGE, f"c{i}".encode())
        conns.append(conn)
    return conns


def close_codes(conns: List[Conn], within: float) -> List[int]:
    codes = []
    for conn in conns:
        conn.set_read_deadline(time.monotonic() + within)
        try:
            while True:
                conn.read_message()
        except CloseError as e:
            codes.append(e.code)
        finally:
            conn.close_now()
    return codes


def test_sigterm_closes_websockets_with_1001_promptly() -> None:
    port = free_port()
    # The default graceful timeout (30 s) stays: the hook must not need it.
    prog = Program(gunicorn_argv(port, "-c", "python:gorillaws.gunicorn"), env=child_env())
    try:
        prog.wait_for(r"Booting worker", timeout=30)
        wait_port(port)
        conns = open_clients(port)
        start = time.monotonic()
        prog.proc.terminate()  # SIGTERM to the master we started, by PID
        codes = close_codes(conns, TIMEOUT)
        assert codes == [1001] * CLIENTS
        assert prog.proc.wait(TIMEOUT) == 0
        assert time.monotonic() - start < TIMEOUT  # not gunicorn's 30 s graceful timeout
        text = prog.output.decode("utf-8", "replace")
        assert "Traceback" not in text
    finally:
        stop(prog)


def test_without_the_hook_clients_wait_and_are_dropped() -> None:
    """The problem the hook solves: gunicorn alone waits out its graceful timeout, then 1006."""
    port = free_port()
    prog = Program(gunicorn_argv(port, "--graceful-timeout", "2"), env=child_env())
    try:
        prog.wait_for(r"Booting worker", timeout=30)
        wait_port(port)
        conns = open_clients(port)
        start = time.monotonic()
        prog.proc.terminate()
        codes = close_codes(conns, TIMEOUT)
        assert codes == [1006] * CLIENTS
        assert time.monotonic() - start >= 1.5
    finally:
        stop(prog)
