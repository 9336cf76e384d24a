"""Every example under ``examples/`` (except ``echo/``, tested with the server), run as a user would.

Each example is started as a subprocess on a free port exactly as its README
says, driven by a gorillaws client, and ended by its PID.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator, List, Tuple

import pytest

import gorillaws
from tests.examples_util import ROOT, Program, child_env, free_port, python, wait_port

# slow: every example runs as a subprocess; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

EXAMPLES = os.path.join(ROOT, "examples")
READ_WAIT = 10.0


def dial(url: str, **kwargs: object) -> gorillaws.Conn:
    conn, _ = gorillaws.Dialer(handshake_timeout=5, **kwargs).dial(url)  # type: ignore[arg-type]
    conn.set_read_deadline(time.monotonic() + READ_WAIT)
    return conn


def read_text(conn: gorillaws.Conn) -> str:
    mt, data = conn.read_message()
    assert mt == gorillaws.TEXT_MESSAGE
    return data.decode()


def read_until(conn: gorillaws.Conn, text: str) -> None:
    """Read text messages until ``text`` arrives (others are skipped)."""
    while read_text(conn) != text:
        pass


def join_chat(*conns: gorillaws.Conn) -> None:
    """Wait until every connection is registered with the chat hub.

    A client's own message comes back only after its registration (both go
    through the hub's queue in order), so seeing it proves registration.
    """
    for i, conn in enumerate(conns):
        conn.write_message(gorillaws.TEXT_MESSAGE, f"joined {i}")
        read_until(conn, f"joined {i}")


def http_get(url: str) -> Tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read()


def test_every_example_has_a_readme() -> None:
    for name in ("chat", "command", "filewatch", "flask"):
        readme = os.path.join(EXAMPLES, name, "README.md")
        assert os.path.isfile(readme), readme
        with open(readme, encoding="utf-8") as f:
            text = f.read()
        assert "```" in text and "python" in text, f"{readme} should show the command to run"


# ---------------------------------------------------------------------------
# chat
# ---------------------------------------------------------------------------


@pytest.fixture
def chat() -> Iterator[str]:
    """The chat example with short keepalive timings; yields its base URL."""
    prog = Program(python("examples/chat/server.py", "--addr", "127.0.0.1:0", "--pong-wait", "1.5", "--ping-period", "0.3"))
    try:
        m = prog.wait_for(r"open (http://127\.0\.0\.1:\d+/)")
        yield m.group(1)
    finally:
        prog.stop()


def test_chat_prints_default_url_and_serves_page() -> None:
    port = free_port()
    with Program(python("examples/chat/server.py", "--addr", f"127.0.0.1:{port}")) as prog:
        prog.wait_for(rf"open http://127\.0\.0\.1:{port}/ in two browser windows")
        status, ctype, body = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and ctype.startswith("text/html")
        for needle in (b'id="log"', b'id="form"', b'id="msg"', b'"/ws"'):
            assert needle in body
        assert http_get(f"http://127.0.0.1:{port}/missing")[0] == 404


def test_chat_default_address_is_8080() -> None:
    out = Program(python("examples/chat/server.py", "--help"))
    try:
        out.proc.wait(10)
        assert b"127.0.0.1:8080" in out.drain()
    finally:
        out.stop()


def test_chat_broadcasts_to_everyone(chat: str) -> None:
    ws = chat.replace("http://", "ws://") + "ws"
    a, b, c = dial(ws), dial(ws), dial(ws)
    try:
        join_chat(a, b, c)
        a.write_message(gorillaws.TEXT_MESSAGE, "  hello\n  everyone  ")
        for conn in (a, b, c):
            read_until(conn, "hello everyone")
    finally:
        for conn in (a, b, c):
            conn.close()


def test_chat_enforces_max_message_size(chat: str) -> None:
    ws = chat.replace("http://", "ws://") + "ws"
    conn = dial(ws)
    try:
        conn.write_message(gorillaws.TEXT_MESSAGE, "x" * 513)
        with pytest.raises(gorillaws.CloseError) as info:
            while True:
                conn.read_message()
        assert info.value.code == gorillaws.CLOSE_MESSAGE_TOO_BIG
    finally:
        conn.close_now()


def test_chat_pings_and_keeps_answering_clients_alive(chat: str) -> None:
    ws = chat.replace("http://", "ws://") + "ws"
    conn = dial(ws)
    pings: List[float] = []
    default = conn.ping_handler()

    def on_ping(data: bytes) -> None:
        pings.append(time.monotonic())
        default(data)

    conn.set_ping_handler(on_ping)
    try:
        # Alive well past pong_wait (1.5 s) because we answer the pings.
        end = time.monotonic() + 2.5
        conn.set_read_deadline(end)
        with pytest.raises(gorillaws.DeadlineExceeded):
            conn.read_message()
        assert len(pings) >= 3
        conn.set_read_deadline(time.monotonic() + READ_WAIT)
        conn.write_message(gorillaws.TEXT_MESSAGE, "still here")
        assert read_text(conn) == "still here"
    finally:
        conn.close()


def test_chat_drops_clients_that_stop_answering(chat: str) -> None:
    ws = chat.replace("http://", "ws://") + "ws"
    conn = dial(ws)
    conn.set_ping_handler(lambda data: None)  # never answer: look dead
    start = time.monotonic()
    try:
        with pytest.raises((gorillaws.CloseError, OSError)):
            while True:
                conn.read_message()
        # Dropped after pong_wait (1.5 s), not at once and not much later.
        assert 1.0 < time.monotonic() - start < READ_WAIT
    finally:
        conn.close_now()


def test_chat_refuses_cross_origin(chat: str) -> None:
    ws = chat.replace("http://", "ws://") + "ws"
    with pytest.raises(gorillaws.ErrBadHandshake) as info:
        gorillaws.Dialer(handshake_timeout=5).dial(ws, {"Origin": "http://evil.example"})
    assert info.value.response.status == 403


def test_chat_ctrl_c_closes_every_client_with_1001() -> None:
    import signal

    prog = Program(python("examples/chat/server.py", "--addr", "127.0.0.1:0"))
    clients: List[gorillaws.Conn] = []
    try:
        ws = prog.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1).replace("http://", "ws://") + "ws"
        clients = [dial(ws) for _ in range(15)]
        join_chat(*clients)
        os.kill(prog.proc.pid, signal.SIGINT)  # what Ctrl-C sends
        codes = []
        for conn in clients:
            with pytest.raises(gorillaws.CloseError) as info:
                while True:
                    conn.read_message()
            codes.append(info.value.code)
        assert codes == [gorillaws.CLOSE_GOING_AWAY] * 15
        assert prog.proc.wait(10) == 0
    finally:
        for conn in clients:
            conn.close_now()
        prog.stop()


def test_chat_across_two_processes_through_redis() -> None:
    from tests.redis_server import RedisServer, find_redis_server

    redis = RedisServer(find_redis_server())
    progs: List[Program] = []
    conns: List[gorillaws.Conn] = []
    try:
        redis.start()
        for _ in range(2):  # as the README says: the same command, another port
            progs.append(Program(python("examples/chat/server.py", "--addr", "127.0.0.1:0", "--redis", redis.url)))
        urls = [p.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1).replace("http://", "ws://") + "ws" for p in progs]
        a, b = dial(urls[0]), dial(urls[1])
        conns = [a, b]
        join_chat(a, b)
        end = time.monotonic() + READ_WAIT
        while redis.numsub("gorillaws:hub:chat") != 2:
            assert time.monotonic() < end, "both chat processes should subscribe in Redis"
            time.sleep(0.05)
        a.write_message(gorillaws.TEXT_MESSAGE, "hello from process 1")
        read_until(b, "hello from process 1")
        b.write_message(gorillaws.TEXT_MESSAGE, "and back from process 2")
        read_until(a, "and back from process 2")
    finally:
        for conn in conns:
            conn.close_now()
        for p in progs:
            p.stop()
        redis.cleanup()


def test_chat_websocket_only_at_ws(chat: str) -> None:
    conn = dial(chat.replace("http://", "ws://") + "elsewhere")
    try:
        with pytest.raises(gorillaws.CloseError) as info:
            conn.read_message()
        assert info.value.code == gorillaws.CLOSE_POLICY_VIOLATION
    finally:
        conn.close_now()



# ---------------------------------------------------------------------------
# command
# ---------------------------------------------------------------------------


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead for our purposes (its parent reaps it soon).
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def _command_server(*command: str) -> Program:
    return Program(python("examples/command/server.py", "--addr", "127.0.0.1:0", "--", *command))


def _collect(conn: gorillaws.Conn, until: str, stream: str = "stdout") -> str:
    text = ""
    while until not in text:
        msg = conn.read_json()
        if msg.get("stream") == stream:
            text += msg["data"]
    return text


def test_command_streams_stdout_stderr_and_stdin() -> None:
    script = (
        "import sys\n"
        "print('ready', flush=True)\n"
        "print('to stderr', file=sys.stderr, flush=True)\n"
        "for line in sys.stdin:\n"
        "    print('got:' + line.strip(), flush=True)\n"
        "sys.exit(3)\n"
    )
    with _command_server(sys.executable, "-c", script) as prog:
        url = prog.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        status, _, body = http_get(url)
        assert status == 200 and b'id="out"' in body
        conn = dial(url.replace("http://", "ws://") + "ws")
        try:
            # Output arrives in chunks as written; gather each stream.
            got = {"stdout": "", "stderr": ""}
            while "ready\n" not in got["stdout"] or "to stderr\n" not in got["stderr"]:
                msg = conn.read_json()
                got[msg["stream"]] += msg["data"]
            assert got == {"stdout": "ready\n", "stderr": "to stderr\n"}
            conn.write_message(gorillaws.TEXT_MESSAGE, "hello\n")
            assert "got:hello" in _collect(conn, "got:hello")
            conn.write_message(gorillaws.TEXT_MESSAGE, "wor")
            conn.write_message(gorillaws.TEXT_MESSAGE, "ld\n")
            assert "got:world" in _collect(conn, "got:world")
        finally:
            conn.close()


def test_command_exit_is_reported_and_closes() -> None:
    with _command_server(sys.executable, "-c", "print('bye'); raise SystemExit(7)") as prog:
        url = prog.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        conn = dial(url.replace("http://", "ws://") + "ws")
        try:
            seen = []
            with pytest.raises(gorillaws.CloseError) as info:
                while True:
                    seen.append(conn.read_json())
            assert {"exit": 7} in seen
            assert info.value.code == gorillaws.CLOSE_NORMAL_CLOSURE
        finally:
            conn.close_now()


def test_command_process_ends_when_socket_closes() -> None:
    # A process that ignores stdin EOF and SIGTERM must still be killed.
    script = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print(os.getpid(), flush=True)\n"
        "time.sleep(120)\n"
    )
    with _command_server(sys.executable, "-c", script) as prog:
        url = prog.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        conn = dial(url.replace("http://", "ws://") + "ws")
        pid = int(_collect(conn, "\n").strip())
        assert _pid_alive(pid)
        conn.close_now()  # vanish without a close frame
        deadline = time.monotonic() + 10
        while _pid_alive(pid):
            assert time.monotonic() < deadline, "the command outlived its socket"
            time.sleep(0.05)


def test_command_default_is_a_python_prompt() -> None:
    with Program(python("examples/command/server.py", "--addr", "127.0.0.1:0")) as prog:
        url = prog.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        conn = dial(url.replace("http://", "ws://") + "ws")
        try:
            _collect(conn, ">>> ", "stderr")
            conn.write_message(gorillaws.TEXT_MESSAGE, "print(6 * 7)\n")
            assert "42" in _collect(conn, "42")
        finally:
            conn.close()


def _close_code_after(conn: gorillaws.Conn) -> int:
    """Read (skipping messages) until the server's close frame; its code."""
    with pytest.raises(gorillaws.CloseError) as info:
        while True:
            conn.read_message()
    return info.value.code


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_command_stops_gracefully(sig: str) -> None:
    """Ctrl-C (SIGINT) or SIGTERM: each page gets 1001, its command ends, the server exits 0."""
    script = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(120)\n"
    with _command_server(sys.executable, "-c", script) as prog:
        url = prog.wait_for(r"(http://127\.0\.0\.1:\d+/)").group(1)
        assert http_get(url + "nothing-here")[0] == 404
        conns = [dial(url.replace("http://", "ws://") + "ws") for _ in range(2)]
        pids = [int(_collect(c, "\n").strip()) for c in conns]
        os.kill(prog.proc.pid, getattr(signal, sig))  # the example we started, by PID
        try:
            assert [_close_code_after(c) for c in conns] == [gorillaws.CLOSE_GOING_AWAY] * 2
        finally:
            for c in conns:
                c.close_now()
        assert prog.proc.wait(READ_WAIT) == 0
        assert not any(_pid_alive(pid) for pid in pids)


# ---------------------------------------------------------------------------
# filewatch
# ---------------------------------------------------------------------------


def test_filewatch_pushes_changes(tmp_path) -> None:
    watched = tmp_path / "notes.txt"
    watched.write_text("first <version>\n")
    with Program(python("examples/filewatch/server.py", str(watched), "--addr", "127.0.0.1:0", "--poll", "0.05")) as prog:
        url = prog.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1)
        status, _, body = http_get(url)
        assert status == 200
        assert b"first &lt;version&gt;" in body  # escaped into the page
        since = int(body.split(b"since=")[1].split(b'"')[0])
        assert since == watched.stat().st_mtime_ns

        conn = dial(url.replace("http://", "ws://") + f"ws?since={since}")
        try:
            watched.write_text("second version\n")
            os.utime(watched, ns=(since + 10**9, since + 10**9))
            assert read_text(conn) == "second version\n"
            watched.write_text("third\n")
            os.utime(watched, ns=(since + 2 * 10**9, since + 2 * 10**9))
            assert read_text(conn) == "third\n"
        finally:
            conn.close()

        # A page with a stale modification time gets the file at once.
        conn = dial(url.replace("http://", "ws://") + "ws?since=1")
        try:
            assert read_text(conn) == "third\n"
            # The page must not send data: 1008.
            conn.write_message(gorillaws.TEXT_MESSAGE, "hi")
            with pytest.raises(gorillaws.CloseError) as info:
                while True:
                    conn.read_message()
            assert info.value.code == gorillaws.CLOSE_POLICY_VIOLATION
        finally:
            conn.close_now()


def test_filewatch_ctrl_c_closes_pages_with_1001(tmp_path) -> None:
    watched = tmp_path / "notes.txt"
    watched.write_text("x\n")
    with Program(python("examples/filewatch/server.py", str(watched), "--addr", "127.0.0.1:0", "--poll", "0.05")) as prog:
        url = prog.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1)
        assert http_get(url + "elsewhere")[0] == 404
        conn = dial(url.replace("http://", "ws://") + "ws?since=1")
        try:
            assert read_text(conn) == "x\n"
            os.kill(prog.proc.pid, signal.SIGINT)  # Ctrl-C, to the example we started
            assert _close_code_after(conn) == gorillaws.CLOSE_GOING_AWAY
        finally:
            conn.close_now()
        assert prog.proc.wait(READ_WAIT) == 0


# ---------------------------------------------------------------------------
# echo on gorillaws.serve (the other echo variants: tests/test_server_wsgi.py)
# ---------------------------------------------------------------------------


def test_echo_on_serve_page_echo_and_graceful_stop() -> None:
    port = free_port()
    with Program(python("examples/echo/server.py", "--addr", f"127.0.0.1:{port}")) as prog:
        prog.wait_for(r"echo server")
        wait_port(port)
        status, ctype, body = http_get(f"http://127.0.0.1:{port}/")
        assert status == 200 and ctype.startswith("text/html") and b"<html" in body.lower()
        assert http_get(f"http://127.0.0.1:{port}/ws")[0] == 426
        conn = dial(f"ws://127.0.0.1:{port}/ws")
        try:
            conn.write_message(gorillaws.TEXT_MESSAGE, "echo me")
            assert read_text(conn) == "echo me"
            os.kill(prog.proc.pid, signal.SIGTERM)  # the example we started, by PID
            assert _close_code_after(conn) == gorillaws.CLOSE_GOING_AWAY
        finally:
            conn.close_now()
        assert prog.proc.wait(READ_WAIT) == 0


# ---------------------------------------------------------------------------
# flask (dev server and gunicorn)
# ---------------------------------------------------------------------------


def _exercise_flask(base: str) -> None:
    status, ctype, body = http_get(base + "/")
    assert status == 200 and b'id="log"' in body
    ws = base.replace("http://", "ws://")
    e = dial(ws + "/echo")
    try:
        e.write_message(gorillaws.BINARY_MESSAGE, b"\x00flask")
        assert e.read_message() == (gorillaws.BINARY_MESSAGE, b"\x00flask")
        e.write_message(gorillaws.TEXT_MESSAGE, "text too")
        assert read_text(e) == "text too"
    finally:
        e.close()
    a, b = dial(ws + "/ws"), dial(ws + "/ws")
    try:
        join_chat(a, b)
        b.write_message(gorillaws.TEXT_MESSAGE, "hello from b")
        read_until(a, "hello from b")
    finally:
        a.close()
        b.close()
    # A plain GET on a Sock route: 426 and a short text, not werkzeug's 400.
    status, _, body = http_get(base + "/echo")
    assert status == 426 and b"WebSocket endpoint" in body


def test_flask_dev_server() -> None:
    port = free_port()
    with Program(python("examples/flask/app.py", "--addr", f"127.0.0.1:{port}")) as prog:
        prog.wait_for(r"Flask example")
        wait_port(port)
        _exercise_flask(f"http://127.0.0.1:{port}")


def test_flask_under_gunicorn() -> None:
    pytest.importorskip("gunicorn")
    port = free_port()
    argv = python(
        "-m", "gunicorn", "-k", "gthread", "--threads", "16", "-w", "1",
        "-b", f"127.0.0.1:{port}", "--chdir", os.path.join(EXAMPLES, "flask"), "app:app",
    )
    with Program(argv) as prog:
        prog.wait_for(r"Booting worker")
        wait_port(port)
        _exercise_flask(f"http://127.0.0.1:{port}")
