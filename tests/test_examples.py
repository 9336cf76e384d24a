"""Every example under ``examples/`` (except ``echo/``, tested with the server), run as a user would.

Each example is started as a subprocess on a free port exactly as its README
says, driven by a gorillaws client, and ended by its PID.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import urllib.error
import urllib.request
from typing import Iterator, List, Tuple

import pytest

import gorillaws
from tests.examples_util import ROOT, Program, child_env, free_port, python, wait_port

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
        # Registration is asynchronous (via the hub): wait until c sees a's probe.
        deadline = time.monotonic() + READ_WAIT
        a.write_message(gorillaws.TEXT_MESSAGE, "probe")
        while read_text(c) != "probe":
            assert time.monotonic() < deadline
        a.write_message(gorillaws.TEXT_MESSAGE, "  hello\n  everyone  ")
        for conn in (b, c):
            got = read_text(conn)
            while got == "probe":
                got = read_text(conn)
            assert got == "hello everyone"
        while read_text(a) != "hello everyone":
            pass
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

