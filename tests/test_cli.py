"""The ``gorillaws`` command-line tool, driven through subprocesses.

Every server here listens on 127.0.0.1 on a free port; every subprocess runs
under a timeout and is ended by its PID; every in-process server thread is
joined.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import select
import socket
import ssl
import subprocess
import sys
import threading
import time
from typing import Callable, Iterator, List, Optional, Tuple

import pytest

import gorillaws
from gorillaws.server import Upgrader

from helpers import AcceptLoop

# slow: every test drives the CLI in subprocesses; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT = 20.0


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def run_cli(*args: str, input: bytes = b"", timeout: float = TIMEOUT) -> subprocess.CompletedProcess:  # noqa: A002
    """Run ``python -m gorillaws ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "gorillaws", *args],
        input=input,
        capture_output=True,
        timeout=timeout,
        env=_env(),
        cwd=ROOT,
    )


@contextlib.contextmanager
def cli_process(*args: str, stdin: Optional[int] = None) -> Iterator["subprocess.Popen[bytes]"]:
    """``python -m gorillaws ARGS`` with stdout and stderr piped; killed (by its PID) if it outlives the block."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "gorillaws", *args],
        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(), cwd=ROOT,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


class CliServer:
    """``python -m gorillaws serve`` in a subprocess on a free port."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gorillaws", "serve", "--port", "0", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=_env(),
            cwd=ROOT,
        )
        line = _readline(self.proc, 15.0)
        m = re.search(rb"listening on ws://127\.0\.0\.1:(\d+)/", line)
        if not m:
            self.close()
            raise AssertionError(f"serve printed {line!r}")
        self.port = int(m.group(1))
        self.url = f"ws://127.0.0.1:{self.port}/"

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()

    def __enter__(self) -> "CliServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _readline(proc: subprocess.Popen, timeout: float) -> bytes:
    assert proc.stdout is not None
    end = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    buf = b""
    while not buf.endswith(b"\n"):
        left = end - time.monotonic()
        if left <= 0:
            return buf
        r, _, _ = select.select([fd], [], [], left)
        if not r:
            return buf
        ch = os.read(fd, 1)
        if not ch:
            return buf
        buf += ch
    return buf


class InProcServer:
    """A gorillaws server thread on 127.0.0.1 that runs ``handle(conn, request_head)``.

    Uses the raw-socket mode of the Upgrader; the request head is peeked
    first so tests can look at what the client sent.
    """

    def __init__(
        self,
        handle: Callable[[gorillaws.Conn], None],
        upgrader: Optional[Upgrader] = None,
        tls: Optional[ssl.SSLContext] = None,
        raw: Optional[Callable[[socket.socket], None]] = None,
    ) -> None:
        self.handle = handle
        self.upgrader = upgrader or Upgrader()
        self.tls = tls
        self.raw = raw
        self.heads: List[bytes] = []
        self._loop = AcceptLoop(self._serve)
        self.port = self._loop.port
        self.url = f"ws://127.0.0.1:{self.port}/path"

    def _serve(self, s: socket.socket) -> None:
        # (The accept loop times the plain socket out after 10 s and closes it afterwards.)
        if self.tls is not None:
            try:
                s = self.tls.wrap_socket(s, server_side=True)
            except (ssl.SSLError, OSError):
                return
        try:
            if self.raw is not None:
                self.raw(s)
                return
            head = s.recv(65536, socket.MSG_PEEK) if self.tls is None else b""
            self.heads.append(head)
            try:
                conn = self.upgrader.upgrade(s)
            except gorillaws.HandshakeError:
                return
            try:
                self.handle(conn)
            except (gorillaws.WebSocketError, OSError):
                pass
            finally:
                conn.close_now()
        finally:
            s.close()

    def close(self) -> None:
        self._loop.close()

    def __enter__(self) -> "InProcServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def echo(conn: gorillaws.Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


# ---------------------------------------------------------------------------
# usage errors (exit 2)
# ---------------------------------------------------------------------------


def test_no_command_is_usage_error() -> None:
    r = run_cli()
    assert r.returncode == 2
    assert b"usage:" in r.stderr


def test_help_lists_commands_and_exit_codes() -> None:
    r = run_cli("--help")
    assert r.returncode == 0
    for word in (b"connect", b"serve", b"ping", b"exit codes"):
        assert word in r.stdout


def test_version() -> None:
    r = run_cli("--version")
    assert r.returncode == 0
    assert gorillaws.__version__.encode() in r.stdout


@pytest.mark.parametrize(
    "url, fragment",
    [
        ("foo://example.com/", b"bad scheme"),
        ("ws://", b"no host"),
        ("ws://host:99999999/", b"malformed URL"),
    ],
)
def test_bad_url_is_usage_error(url: str, fragment: bytes) -> None:
    r = run_cli("connect", url)
    assert r.returncode == 2, r.stderr
    assert fragment in r.stderr


def test_bad_header_is_usage_error() -> None:
    r = run_cli("connect", "-H", "no colon here", "ws://127.0.0.1:1/")
    assert r.returncode == 2
    assert b"Name: value" in r.stderr


def test_ping_count_must_be_positive() -> None:
    r = run_cli("ping", "-c", "0", "ws://127.0.0.1:1/")
    assert r.returncode == 2
    assert b"--count" in r.stderr


# ---------------------------------------------------------------------------
# connection errors (exit 1)
# ---------------------------------------------------------------------------


def _closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_connection_refused() -> None:
    r = run_cli("connect", f"ws://127.0.0.1:{_closed_port()}/")
    assert r.returncode == 1
    assert b"connection refused" in r.stderr


def test_failed_handshake_shows_status_and_body() -> None:
    def answer_404(s: socket.socket) -> None:
        s.recv(65536)
        body = b"no websocket here, try /ws"
        s.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: %d\r\nContent-Type: text/plain\r\n\r\n%s" % (len(body), body))

    with InProcServer(echo, raw=answer_404) as srv:
        r = run_cli("connect", srv.url)
    assert r.returncode == 1
    assert b"404 Not Found" in r.stderr
    assert b"no websocket here, try /ws" in r.stderr


def test_refused_origin_shows_403() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--origin", "http://evil.example", srv.url)
        assert r.returncode == 1
        assert b"403" in r.stderr
        # The same origin passes, and --any-origin accepts anything.
        r = run_cli("connect", "--origin", f"http://127.0.0.1:{srv.port}", srv.url, input=b"ok\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"ok\n"
    with CliServer("-q", "--any-origin") as srv:
        r = run_cli("connect", "--origin", "http://evil.example", srv.url, input=b"ok\n")
        assert r.returncode == 0, r.stderr


def test_handshake_timeout() -> None:
    stop = threading.Event()

    def silent(s: socket.socket) -> None:
        # Never answer, and keep the connection open until the tool is done,
        # however slow the machine: an early close would be a different error.
        s.recv(65536)
        stop.wait(TIMEOUT)

    with InProcServer(echo, raw=silent) as srv:
        try:
            r = run_cli("connect", "--timeout", "0.5", srv.url)
        finally:
            stop.set()
    assert r.returncode == 1
    assert b"timed out" in r.stderr


def test_abnormal_server_close_exits_1() -> None:
    def close_with_error(conn: gorillaws.Conn) -> None:
        conn.read_message()
        conn.close(gorillaws.CLOSE_INTERNAL_SERVER_ERR, "boom")

    with InProcServer(close_with_error) as srv:
        with cli_process("connect", srv.url, stdin=subprocess.PIPE) as proc:
            assert proc.stdin is not None
            proc.stdin.write(b"trigger\n")
            proc.stdin.flush()
            # stdin stays open: the tool must end because the server closed.
            out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 1
    assert b"1011" in err and b"boom" in err


def test_normal_server_close_exits_0_with_stdin_open() -> None:
    def greet_and_close(conn: gorillaws.Conn) -> None:
        conn.write_message(gorillaws.TEXT_MESSAGE, "bye")
        conn.close()

    with InProcServer(greet_and_close) as srv:
        with cli_process("connect", srv.url, stdin=subprocess.PIPE) as proc:
            out, err = _wait_keep_stdin(proc)
    assert proc.returncode == 0, err
    assert out == b"bye\n"
    assert b"1000" in err


def _wait_keep_stdin(proc: subprocess.Popen) -> Tuple[bytes, bytes]:
    """Wait for ``proc`` to exit while its stdin stays open; return (stdout, stderr)."""
    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    try:
        proc.wait(TIMEOUT)
    finally:
        proc.stdin.close()
    return proc.stdout.read(), proc.stderr.read()


# ---------------------------------------------------------------------------
# connect against `serve`
# ---------------------------------------------------------------------------


def test_connect_echo_text_lines() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", srv.url, input="hello\nwörld\n\nlast line without newline".encode())
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode() == "hello\nwörld\n\nlast line without newline\n"


def test_connect_binary_as_hex() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--send-binary", "--binary-hex", srv.url, input=b"hi\n\xff\x00\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"6869\nff00\n"


def test_connect_binary_raw_without_hex() -> None:
    with CliServer("-q") as srv:
        r = run_cli("connect", "--send-binary", srv.url, input=b"raw\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"raw\n"


@pytest.mark.parametrize("mode", ["no-context-takeover", "context-takeover"])
def test_connect_with_compression(mode: str) -> None:
    big = b"compress me " * 200
    with CliServer("-q", "--compression", mode) as srv:
        r = run_cli("connect", "-v", "--compression", mode, srv.url, input=big + b"\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == big + b"\n"
    assert b"compression on" in r.stderr


def test_connect_without_compression_offer() -> None:
    with CliServer("-q", "--compression", "no-context-takeover") as srv:
        r = run_cli("connect", "-v", srv.url, input=b"x\n")
    assert r.returncode == 0, r.stderr
    assert b"compression on" not in r.stderr


def test_connect_sends_subprotocol_headers_and_origin() -> None:
    upgrader = Upgrader(subprotocols=["chat.v2", "chat.v1"], check_origin=lambda req: True)

    def report(conn: gorillaws.Conn) -> None:
        conn.write_message(gorillaws.TEXT_MESSAGE, json.dumps({"subprotocol": conn.subprotocol()}))
        conn.close()

    with InProcServer(report, upgrader=upgrader) as srv:
        r = run_cli(
            "connect", "-s", "chat.v1", "-s", "chat.v2", "-H", "X-Token: abc 123", "-H", "X-Other:two",
            "--origin", "https://app.example", srv.url,
        )
        head = srv.heads[0].decode("latin-1")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"subprotocol": "chat.v2"}
    assert "X-Token: abc 123\r\n" in head
    assert "X-Other: two\r\n" in head
    assert "Origin: https://app.example\r\n" in head
    assert re.search(r"Sec-WebSocket-Protocol: chat\.v1, ?chat\.v2\r\n", head)


def _connect_proxy(seen: List[bytes]) -> Callable[[socket.socket], None]:
    """A minimal HTTP CONNECT proxy handler for InProcServer(raw=...)."""

    def handle(client: socket.socket) -> None:
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = client.recv(4096)
            if not chunk:
                return
            head += chunk
        seen.append(head)
        target = head.split(b" ")[1].decode()
        host, _, port = target.rpartition(":")
        upstream = socket.create_connection((host, int(port)), timeout=5)
        client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        socks = [client, upstream]
        try:
            while True:
                r, _, _ = select.select(socks, [], [], 10)
                if not r:
                    return
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (upstream if s is client else client).sendall(data)
        finally:
            upstream.close()

    return handle


def test_connect_through_proxy() -> None:
    seen: List[bytes] = []
    with CliServer("-q") as srv, InProcServer(echo, raw=_connect_proxy(seen)) as proxy:
        r = run_cli("connect", "--proxy", f"http://127.0.0.1:{proxy.port}", srv.url, input=b"via proxy\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == b"via proxy\n"
    assert seen and seen[0].startswith(b"CONNECT 127.0.0.1:%d " % srv.port)


def test_tls_verification_and_insecure(tmp_path) -> None:
    from tests.certs import make_test_pki

    pki = make_test_pki(str(tmp_path))
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    with InProcServer(echo, tls=ctx) as srv:
        url = f"wss://127.0.0.1:{srv.port}/"
        r = run_cli("connect", url, input=b"x\n")
        assert r.returncode == 1
        assert b"verification failed" in r.stderr and b"-k skips verification" in r.stderr
        r = run_cli("connect", "--insecure", url, input=b"secure enough\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"secure enough\n"
        r = run_cli("connect", "--cacert", pki.ca_cert, url, input=b"verified\n")
        assert r.returncode == 0, r.stderr
        assert r.stdout == b"verified\n"


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------


def test_ping_reports_rtts() -> None:
    with CliServer("-q") as srv:
        r = run_cli("ping", "-c", "3", "-i", "0.05", srv.url)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.decode().splitlines()
    assert [ln.split("seq=")[1].split()[0] for ln in lines[:3]] == ["1", "2", "3"]
    assert all(re.search(r"time=\d+\.\d{3} ms$", ln) for ln in lines[:3])
    assert "3 pings, 3 pongs, 0% lost" in lines[3]


def test_ping_without_pongs_exits_1() -> None:
    def no_pongs(conn: gorillaws.Conn) -> None:
        conn.set_ping_handler(lambda data: None)
        while True:
            conn.read_message()

    with InProcServer(no_pongs) as srv:
        r = run_cli("ping", "-c", "2", "-i", "0", "-W", "0.3", srv.url)
    assert r.returncode == 1
    assert b"no pong" in r.stdout
    assert b"2 pings, 0 pongs, 100% lost" in r.stdout


def test_ping_refused() -> None:
    r = run_cli("ping", f"ws://127.0.0.1:{_closed_port()}/")
    assert r.returncode == 1
    assert b"connection refused" in r.stderr


# ---------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------


def test_serve_echo_with_library_client() -> None:
    with CliServer("-q") as srv:
        conn, _ = gorillaws.Dialer(handshake_timeout=5).dial(srv.url)
        with conn:
            conn.set_read_deadline(time.monotonic() + 5)
            conn.write_message(gorillaws.BINARY_MESSAGE, b"\x00\x01")
            assert conn.read_message() == (gorillaws.BINARY_MESSAGE, b"\x00\x01")


def test_serve_broadcast() -> None:
    with CliServer("-q", "--broadcast") as srv:
        d = gorillaws.Dialer(handshake_timeout=5)
        a, _ = d.dial(srv.url)
        a.set_read_deadline(time.monotonic() + 5)
        b: Optional[gorillaws.Conn] = None
        try:
            # Each client sees its own message once it is registered.
            a.write_message(gorillaws.TEXT_MESSAGE, "ready a")
            assert a.read_message() == (gorillaws.TEXT_MESSAGE, b"ready a")
            b, _ = d.dial(srv.url)
            b.set_read_deadline(time.monotonic() + 5)
            b.write_message(gorillaws.TEXT_MESSAGE, "ready b")
            assert b.read_message() == (gorillaws.TEXT_MESSAGE, b"ready b")
            assert a.read_message() == (gorillaws.TEXT_MESSAGE, b"ready b")
            a.write_message(gorillaws.BINARY_MESSAGE, b"to everyone")
            assert a.read_message() == (gorillaws.BINARY_MESSAGE, b"to everyone")
            assert b.read_message() == (gorillaws.BINARY_MESSAGE, b"to everyone")
        finally:
            a.close()
            if b is not None:
                b.close()


def test_serve_subprotocol() -> None:
    with CliServer("-q", "-s", "v2", "-s", "v1") as srv:
        conn, resp = gorillaws.Dialer(handshake_timeout=5, subprotocols=["v1", "v2"]).dial(srv.url)
        conn.close()
    assert conn.subprotocol() == "v2"


def test_serve_port_in_use() -> None:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        r = run_cli("serve", "--port", str(port))
    finally:
        s.close()
    assert r.returncode == 1
    assert r.stderr == b"gorillaws: cannot listen on 127.0.0.1:%d: Address already in use\n" % port


def test_serve_logs_connections() -> None:
    with CliServer() as srv:
        r = run_cli("connect", srv.url, input=b"x\n")
        assert r.returncode == 0
        srv.proc.kill()
        srv.proc.wait(5)
        assert srv.proc.stderr is not None
        log = srv.proc.stderr.read()
    assert b"connected" in log


def test_ping_ctrl_c_prints_the_summary_and_exits_130() -> None:
    import signal

    with CliServer("-q") as srv:
        with cli_process("ping", "-c", "1000", "-i", "0.05", srv.url) as proc:
            assert proc.stdout is not None
            assert b"seq=1 " in proc.stdout.readline()
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=TIMEOUT)
    assert proc.returncode == 130
    assert b"closed by you (Ctrl-C)" in err and b"Traceback" not in err
    summary = out.decode().splitlines()[-1]
    assert re.match(r"--- ws://127\.0\.0\.1:\d+/: \d+ pings, \d+ pongs, 0% lost", summary), summary
