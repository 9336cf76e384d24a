"""``gorillaws serve`` on :class:`gorillaws.serving.Server`: origins, graceful Ctrl-C and SIGTERM.

Each server is a ``gorillaws serve`` subprocess on 127.0.0.1 and a free port,
ended by its PID; clients are the library's own, with read deadlines.
"""

from __future__ import annotations

import signal
import time
from typing import List

import pytest

import gorillaws
from tests.test_cli import TIMEOUT, CliServer, run_cli

# slow: every server is a gorillaws serve subprocess; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow


def _dial(url: str) -> gorillaws.Conn:
    conn, _ = gorillaws.Dialer(handshake_timeout=5).dial(url)
    conn.set_read_deadline(time.monotonic() + TIMEOUT)
    return conn


def _stderr(srv: CliServer) -> str:
    assert srv.proc.stderr is not None
    return srv.proc.stderr.read().decode(errors="replace")


@pytest.mark.parametrize(
    "sig, code, name, mode",
    [
        (signal.SIGINT, 130, "Ctrl-C", "echo"),
        (signal.SIGTERM, 143, "SIGTERM", "echo"),
        (signal.SIGINT, 130, "Ctrl-C", "broadcast"),
    ],
)
def test_signal_closes_every_client_with_1001(sig: int, code: int, name: str, mode: str) -> None:
    with CliServer(*(["--broadcast"] if mode == "broadcast" else [])) as srv:
        clients: List[gorillaws.Conn] = []
        try:
            for i in range(5):
                conn = _dial(srv.url)
                clients.append(conn)
                # Its own message coming back proves the server's handler
                # runs for this client (in broadcast mode others get it too).
                conn.write_message(gorillaws.TEXT_MESSAGE, f"client {i}")
                while conn.read_message() != (gorillaws.TEXT_MESSAGE, f"client {i}".encode()):
                    pass
            srv.proc.send_signal(sig)
            codes = [_close_code(conn) for conn in clients]
            assert codes == [1001] * 5
            assert srv.proc.wait(TIMEOUT) == code
            log = _stderr(srv)
        finally:
            for conn in clients:
                conn.close_now()
    assert f"stopped ({name})" in log
    assert "Traceback" not in log


def _close_code(conn: gorillaws.Conn) -> int:
    """Read (and skip broadcast messages) until the server's close frame; its code."""
    for _ in range(100):
        try:
            conn.read_message()
        except gorillaws.CloseError as err:
            return err.code
    raise AssertionError("no close frame")


def test_refused_origin_is_logged_with_the_option_that_allows_it() -> None:
    with CliServer() as srv:
        r = run_cli("connect", "--origin", "http://evil.example", srv.url)
        assert r.returncode == 1
        assert b"403" in r.stderr
        srv.proc.send_signal(signal.SIGINT)
        srv.proc.wait(TIMEOUT)
        log = _stderr(srv)
    line = next(ln for ln in log.splitlines() if "refused" in ln)
    assert "'http://evil.example'" in line and "--any-origin" in line
    assert "Upgrader(" not in log  # the library's advice is for code, not for CLI users


def test_plain_http_request_gets_a_short_answer() -> None:
    import urllib.error
    import urllib.request

    with CliServer("-q") as srv:
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(f"http://127.0.0.1:{srv.port}/", timeout=TIMEOUT)
        assert info.value.code == 426
        info.value.close()


def test_a_host_that_does_not_resolve() -> None:
    r = run_cli("serve", "--host", "no-such-host.invalid", "--port", "0")
    assert r.returncode == 1
    assert r.stderr.decode().startswith("gorillaws: cannot listen on no-such-host.invalid:0: cannot resolve")
    assert "Unknown error" not in r.stderr.decode() and "Traceback" not in r.stderr.decode()
