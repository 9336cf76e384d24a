"""``gorillaws connect`` as wscat/websocat users drive it: in pipelines, in a terminal, with mistakes.

Pipelines run the tool with pipes for its standard streams; the terminal tests
give it a pseudo-terminal (the ``pty`` module) as its controlling terminal, so
typing, Ctrl-D and Ctrl-C reach it the way they do for a user.  Servers are
ours (``gorillaws serve``, in-process gorillaws servers) and the ``websockets``
package's.  Every server listens on 127.0.0.1; every subprocess is bounded
by a timeout and ended by its PID.
"""

from __future__ import annotations

import base64
import fcntl
import os
import platform
import pty
import select
import signal
import ssl
import subprocess
import sys
import termios
import threading
import time
from typing import Any, Callable, List

import pytest

import gorillaws
from gorillaws import mask
from tests.peers import peer_missing
from tests.test_cli import ROOT, TIMEOUT, CliServer, InProcServer, _closed_port, _env, cli_process, echo, run_cli

# slow: every test runs the CLI in a subprocess or a pseudo-terminal; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow


def _no_traceback(stderr: bytes) -> None:
    assert b"Traceback" not in stderr, stderr.decode(errors="replace")


def _one_message_line(stderr: bytes) -> str:
    """The tool's single ``gorillaws: ...`` line on standard error (after any usage lines)."""
    _no_traceback(stderr)
    lines = [ln for ln in stderr.decode().splitlines() if ln.startswith("gorillaws:")]
    assert len(lines) == 1, stderr.decode()
    return lines[0]


# ---------------------------------------------------------------------------
# servers
# ---------------------------------------------------------------------------


class WebsocketsServer:
    """The ``websockets`` package's threaded server, running ``handler(ws)`` on 127.0.0.1."""

    def __init__(self, handler: Callable[[Any], None]) -> None:
        try:
            from websockets.sync.server import serve
        except ImportError as exc:  # it is in the test extra
            peer_missing("websockets", f"{exc} (pip install -e '.[test]')")
        self.server = serve(handler, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"ws://127.0.0.1:{self.port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __enter__(self) -> "WebsocketsServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(10)


def _ws_echo(ws: Any) -> None:
    for message in ws:
        ws.send(message)


class Recorder:
    """A gorillaws server handler that runs ``script(conn)`` and records what the client sent and its close code."""

    def __init__(self, script: Callable[[gorillaws.Conn], None] = lambda conn: None, echo: bool = False) -> None:
        self.script = script
        self.echo = echo
        self.received: List[bytes] = []
        self.close_codes: List[int] = []
        self.done = threading.Event()

    def __call__(self, conn: gorillaws.Conn) -> None:
        try:
            self.script(conn)
            while True:
                _, data = conn.read_message()
                self.received.append(data)
                if self.echo:
                    conn.write_message(gorillaws.TEXT_MESSAGE, data)
        except gorillaws.CloseError as err:
            self.close_codes.append(err.code)
        finally:
            self.done.set()


# ---------------------------------------------------------------------------
# pipelines: replies are not lost at end of input
# ---------------------------------------------------------------------------


def test_pipeline_prints_the_echo_of_the_websockets_server_every_time() -> None:
    # The issue: `printf 'hello\n' | gorillaws connect URL` printed nothing in
    # 6 of 7 runs, because the close went out at end of input and the server
    # answered it before its handler sent the echo.
    with WebsocketsServer(_ws_echo) as srv:
        for _ in range(5):
            r = run_cli("connect", srv.url, input=b"hello\n")
            assert (r.returncode, r.stdout) == (0, b"hello\n"), r.stderr
            r = run_cli("connect", srv.url, input=b"one\ntwo\nthree\n")
            assert (r.returncode, r.stdout) == (0, b"one\ntwo\nthree\n"), r.stderr


def test_end_of_input_waits_for_a_slow_reply() -> None:
    # The reply comes well after the input ended; the websockets server
    # answers a close frame at once and would drop the reply if the tool
    # closed at end of input.
    def slow_echo(ws: Any) -> None:
        for message in ws:
            time.sleep(0.5)
            ws.send(message)

    with WebsocketsServer(slow_echo) as srv:
        r = run_cli("connect", srv.url, input=b"take your time\n")
    assert (r.returncode, r.stdout) == (0, b"take your time\n"), r.stderr
    _no_traceback(r.stderr)


def test_wait_bounds_the_wait_for_a_silent_server() -> None:
    rec = Recorder()
    with InProcServer(rec) as srv:
        r = run_cli("connect", "--wait", "0.3", srv.url, input=b"anyone?\n")
        assert rec.done.wait(TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b""), r.stderr
    assert rec.received == [b"anyone?"]
    assert rec.close_codes == [1000]


def test_empty_input_closes_at_once() -> None:
    rec = Recorder()
    with InProcServer(rec) as srv:
        r = run_cli("connect", srv.url, input=b"")
        assert rec.done.wait(TIMEOUT)
    assert r.returncode == 0, r.stderr
    assert rec.close_codes == [1000]


def _late_greeting(conn: gorillaws.Conn) -> None:
    time.sleep(1.0)
    conn.write_message(gorillaws.TEXT_MESSAGE, "late news")
    conn.close()


@pytest.mark.parametrize("flag", ["--no-close", "-n", "--listen-only", "-u"])
def test_no_close_keeps_listening_after_end_of_input(flag: str) -> None:
    with InProcServer(_late_greeting) as srv:
        r = run_cli("connect", flag, "--wait", "0.1", srv.url, input=b"")
    assert (r.returncode, r.stdout) == (0, b"late news\n"), r.stderr
    assert b"closed by the server: 1000" in r.stderr


def test_listen_only_does_not_send_input() -> None:
    rec = Recorder(lambda conn: conn.write_message(gorillaws.TEXT_MESSAGE, "hi"))
    with InProcServer(rec) as srv:
        r = run_cli("connect", "-u", "--max-messages", "1", srv.url, input=b"not for the server\n")
        assert rec.done.wait(TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"hi\n"), r.stderr
    assert rec.received == []


def _three_messages(conn: gorillaws.Conn) -> None:
    for word in ("one", "two", "three"):
        conn.write_message(gorillaws.TEXT_MESSAGE, word)


def test_one_message_listens_for_one_and_closes() -> None:
    rec = Recorder(_three_messages)
    with InProcServer(rec) as srv:
        r = run_cli("connect", "-1", srv.url, input=b"")
        assert rec.done.wait(TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"one\n"), r.stderr
    assert rec.close_codes == [1000]


def test_one_message_sends_only_the_first_line() -> None:
    rec = Recorder(echo=True)
    with InProcServer(rec) as srv:
        r = run_cli("connect", "--one-message", srv.url, input=b"first\nsecond\n")
        assert rec.done.wait(TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"first\n"), r.stderr
    assert rec.received == [b"first"]


def test_max_messages() -> None:
    rec = Recorder(_three_messages)
    with InProcServer(rec) as srv:
        r = run_cli("connect", "--max-messages", "2", srv.url, input=b"")
        assert rec.done.wait(TIMEOUT)
    assert (r.returncode, r.stdout) == (0, b"one\ntwo\n"), r.stderr
    assert rec.close_codes == [1000]


def test_stdout_closed_early_ends_quietly() -> None:
    def flood(conn: gorillaws.Conn) -> None:
        for i in range(20000):
            conn.write_message(gorillaws.TEXT_MESSAGE, f"line {i}")

    rec = Recorder(flood)
    with InProcServer(rec) as srv:
        with cli_process("connect", "--no-close", srv.url, stdin=subprocess.DEVNULL) as proc:
            try:
                assert proc.stdout is not None and proc.stderr is not None
                assert proc.stdout.readline() == b"line 0\n"
                proc.stdout.close()  # as `| head -1` does
                err = proc.stderr.read()
                proc.wait(TIMEOUT)
            finally:
                proc.stderr.close()  # type: ignore[union-attr]
        assert rec.done.wait(TIMEOUT)
    _no_traceback(err)
    assert proc.returncode == 0, err
    assert rec.close_codes == [1000]


# ---------------------------------------------------------------------------
# binary input and output
# ---------------------------------------------------------------------------


def test_send_hex_and_print_base64() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--send-hex", "--binary-output", "base64", srv.url, input=b"00ff10\nde ad\nnot hex\n\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [base64.b64encode(b"\x00\xff\x10"), base64.b64encode(b"\xde\xad"), b""]
    assert b"not sent: input is not hex" in r.stderr
    _no_traceback(r.stderr)


def test_whole_input_is_one_binary_message() -> None:
    payload = b"line 1\nline 2\n\x00\xff"
    with CliServer("-q") as srv:
        r = run_cli("connect", "-b", "--whole-input", "-x", srv.url, input=payload)
    assert (r.returncode, r.stdout) == (0, payload.hex().encode() + b"\n"), r.stderr


def test_binary_output_raw_is_the_default() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--send-hex", srv.url, input=b"41420a43\n")
    assert (r.returncode, r.stdout) == (0, b"AB\nC\n"), r.stderr


# ---------------------------------------------------------------------------
# user mistakes: one line, exit 2, never a traceback
# ---------------------------------------------------------------------------


def test_missing_cacert_file() -> None:
    r = run_cli("connect", "--cacert", "/nonexistent/ca.pem", "wss://127.0.0.1:1/")
    assert r.returncode == 2
    assert "cannot read --cacert /nonexistent/ca.pem" in _one_message_line(r.stderr)


def test_cacert_that_is_not_a_certificate(tmp_path: Any) -> None:
    bogus = tmp_path / "ca.pem"
    bogus.write_text("this is not a certificate\n")
    r = run_cli("connect", "--cacert", str(bogus), "wss://127.0.0.1:1/")
    assert r.returncode == 2
    assert "holds no PEM certificate" in _one_message_line(r.stderr)


@pytest.mark.parametrize("port", ["70000", "-1", "http"])
def test_serve_bad_port(port: str) -> None:
    r = run_cli("serve", "--port", port)
    assert r.returncode == 2
    assert "port number from 0 to 65535" in _one_message_line(r.stderr)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["connect", "--wait", "soon", "ws://h/"], "--wait"),
        (["connect", "--max-messages", "0", "ws://h/"], "--max-messages"),
        (["connect", "--timeout", "0", "ws://h/"], "--timeout"),
        (["ping", "-W", "nan", "ws://h/"], "--wait"),
        (["connect", "ws://[::1/"], "malformed URL"),
        (["connect", "ftp://example.com/"], "bad scheme"),
    ],
)
def test_bad_values_are_usage_errors(args: List[str], fragment: str) -> None:
    r = run_cli(*args)
    assert r.returncode == 2
    assert fragment in _one_message_line(r.stderr)


def test_socks_proxy_without_pysocks(tmp_path: Any) -> None:
    # Hide PySocks behind a module that fails to import, as if not installed.
    (tmp_path / "socks.py").write_text("raise ImportError('No module named socks')\n")
    env = _env()
    env["PYTHONPATH"] = str(tmp_path) + os.pathsep + env["PYTHONPATH"]
    r = subprocess.run(
        [sys.executable, "-m", "gorillaws", "connect", "--proxy", "socks5h://127.0.0.1:1080", "ws://example.com/"],
        input=b"", capture_output=True, timeout=TIMEOUT, env=env, cwd=ROOT,
    )
    assert r.returncode == 2
    assert "PySocks" in _one_message_line(r.stderr)


def test_a_refused_proxy_is_named_not_the_server() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--proxy", f"http://127.0.0.1:{_closed_port()}", srv.url)
    assert r.returncode == 1
    line = _one_message_line(r.stderr)
    assert "proxy http://127.0.0.1:" in line and "nothing is listening" not in line


# ---------------------------------------------------------------------------
# TLS: the hint that fits the mistake
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: Any) -> Any:
    from tests.certs import make_test_pki

    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


def _tls_server(pki: Any) -> InProcServer:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    return InProcServer(echo, tls=ctx)


def test_wss_to_a_plain_server_suggests_ws_not_insecure() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", f"wss://127.0.0.1:{srv.port}/")
    assert r.returncode == 1
    line = _one_message_line(r.stderr)
    assert "did you mean ws://" in line
    assert "-k" not in line and "--insecure" not in line


def test_ws_to_a_tls_server_suggests_wss(pki: Any) -> None:
    with _tls_server(pki) as srv:
        r = run_cli("connect", f"ws://127.0.0.1:{srv.port}/")
    assert r.returncode == 1
    assert "did you mean wss://" in _one_message_line(r.stderr)


def test_unverified_certificate_suggests_cacert_and_k(pki: Any) -> None:
    with _tls_server(pki) as srv:
        url = f"wss://127.0.0.1:{srv.port}/"
        r = run_cli("connect", url)
        assert r.returncode == 1
        line = _one_message_line(r.stderr)
        assert "certificate verification failed" in line and "--cacert" in line and "-k" in line
        # A CA bundle that did not sign it: the message names the file.
        r = run_cli("connect", "--cacert", certifi_bundle(), url)
        assert r.returncode == 1
        assert f"--cacert {certifi_bundle()} did not sign it" in _one_message_line(r.stderr)


def certifi_bundle() -> str:
    import certifi

    return str(certifi.where())


# ---------------------------------------------------------------------------
# --version
# ---------------------------------------------------------------------------


def test_version_names_python_and_speedup() -> None:
    r = run_cli("--version")
    assert r.returncode == 0
    out = r.stdout.decode()
    assert out.splitlines()[0] == f"gorillaws {gorillaws.__version__}"
    assert f"Python {platform.python_version()}" in out
    assert ("C speedup: active" if mask.HAVE_SPEEDUPS else "C speedup: not built") in out
    env = _env()
    env["GORILLAWS_NO_SPEEDUPS"] = "1"
    r = subprocess.run([sys.executable, "-m", "gorillaws", "--version"], capture_output=True, timeout=TIMEOUT, env=env, cwd=ROOT)
    assert "C speedup: off" in r.stdout.decode()


# ---------------------------------------------------------------------------
# a terminal: typing, Ctrl-D, Ctrl-C
# ---------------------------------------------------------------------------


class Terminal:
    """``gorillaws ARGS`` with a pseudo-terminal as its controlling terminal."""

    def __init__(self, *args: str) -> None:
        self.master, slave = pty.openpty()

        def take_terminal() -> None:  # runs in the child, after setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gorillaws", *args],
            stdin=slave, stdout=slave, stderr=slave, env=_env(), cwd=ROOT,
            start_new_session=True, preexec_fn=take_terminal,
        )
        os.close(slave)
        self.output = b""

    def type(self, data: bytes) -> None:
        os.write(self.master, data)

    def expect(self, text: bytes, count: int = 1) -> None:
        """Read the screen until ``text`` appeared ``count`` times (bounded)."""
        end = time.monotonic() + TIMEOUT
        while self.output.count(text) < count:
            left = end - time.monotonic()
            if left <= 0 or not self._read(left):
                raise AssertionError(f"never saw {text!r} x{count}; screen: {self.output!r}")

    def _read(self, timeout: float) -> bool:
        r, _, _ = select.select([self.master], [], [], timeout)
        if not r:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child is gone
            return False
        self.output += chunk
        return bool(chunk)

    def wait(self) -> int:
        code = self.proc.wait(TIMEOUT)
        while self._read(0.2):
            pass
        return code

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        os.close(self.master)

    def __enter__(self) -> "Terminal":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def test_terminal_typing_then_ctrl_c_says_the_user_closed_it() -> None:
    rec = Recorder(echo=True)
    with InProcServer(rec) as srv, Terminal("connect", srv.url) as term:
        term.type(b"hello\n")
        term.expect(b"hello\r\n", 2)  # the terminal's echo of the typing, then the reply
        term.type(b"\x03")  # Ctrl-C, as the terminal delivers it: SIGINT
        assert term.wait() == 130
        assert b"closed by you (Ctrl-C)" in term.output
        assert b"Traceback" not in term.output
        assert rec.done.wait(TIMEOUT)
    assert rec.close_codes == [1001]


def test_terminal_ctrl_d_closes_normally() -> None:
    rec = Recorder(echo=True)
    with InProcServer(rec) as srv, Terminal("connect", srv.url) as term:
        term.type(b"bye\n")
        term.expect(b"bye\r\n", 2)
        term.type(b"\x04")  # Ctrl-D at the start of a line: end of input
        assert term.wait() == 0, term.output
        assert rec.done.wait(TIMEOUT)
    assert rec.close_codes == [1000]


def test_sigint_while_listening_exits_130() -> None:
    rec = Recorder()
    with InProcServer(rec) as srv:
        with cli_process("connect", "-v", "--no-close", srv.url, stdin=subprocess.DEVNULL) as proc:
            assert proc.stderr is not None
            assert b"connected" in proc.stderr.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
        assert rec.done.wait(TIMEOUT)
    assert proc.returncode == 130
    assert b"closed by you (Ctrl-C)" in err
    _no_traceback(err)
    assert rec.close_codes == [1001]
