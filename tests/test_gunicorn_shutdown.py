"""gunicorn's SIGTERM with open WebSockets: 1001 at once with gorillaws.gunicorn's hook.

A real gunicorn (gthread worker) runs tests/apps/flask_sock_app.py; the test
opens live connections, sends SIGTERM to the gunicorn master it started (by
PID; the master passes it on to its worker), and reads what the clients get.
"""

from __future__ import annotations

import os
import sys
import time
from typing import List, Tuple

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


def sigterm_with_clients(*gunicorn_options: str) -> Tuple[List[int], float, str, int]:
    """Run gunicorn, open live clients, SIGTERM the master (by PID).

    Returns the clients' close codes, the seconds from the signal until the
    last one, gunicorn's output and its exit status (-1 if still running).
    """
    port = free_port()
    prog = Program(gunicorn_argv(port, *gunicorn_options), env=child_env())
    try:
        prog.wait_for(r"Booting worker", timeout=30)
        wait_port(port)
        conns = open_clients(port)
        start = time.monotonic()
        prog.proc.terminate()  # SIGTERM to the master we started, by PID
        codes = close_codes(conns, TIMEOUT)
        elapsed = time.monotonic() - start
        try:
            status = prog.proc.wait(TIMEOUT)
        except Exception:
            status = -1
        prog.drain()
        return codes, elapsed, prog.output.decode("utf-8", "replace"), status
    finally:
        stop(prog)


def test_sigterm_closes_websockets_with_1001_promptly() -> None:
    # The default graceful timeout (30 s) stays: the hook must not need it.
    codes, elapsed, output, status = sigterm_with_clients("-c", "python:gorillaws.gunicorn")
    assert codes == [1001] * CLIENTS
    assert elapsed < TIMEOUT  # not gunicorn's 30 s graceful timeout
    assert status == 0
    assert "Traceback" not in output


def test_without_the_hook_clients_wait_and_are_dropped() -> None:
    """The problem the hook solves: gunicorn alone waits out its graceful timeout, then 1006."""
    codes, elapsed, _, _ = sigterm_with_clients("--graceful-timeout", "2")
    assert codes == [1006] * CLIENTS
    assert elapsed >= 1.5
