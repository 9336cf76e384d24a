"""The chat example's page in headless Chromium: two tabs talk through our server.

Chromium is driven with the Chrome DevTools Protocol (CDP), which is JSON
over a WebSocket, so the driver is a few lines over our own
:class:`gorillaws.Dialer`; no browser-automation package is needed.

Needs ``chromium`` (Debian: ``apt-get install -y chromium``).  Outside CI a
missing browser skips the test; under ``CI=true`` it fails.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import Any, Dict, Iterator, List, Optional

import pytest

import gorillaws
from tests.examples_util import Program, free_port, python
from tests.peers import require_peer

# slow: drives headless Chromium; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
STEP_TIMEOUT = 20.0


def find_browser() -> str:
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return require_peer("chromium", "chromium", "apt-get install -y chromium")


class CDP:
    """A minimal synchronous Chrome DevTools Protocol client over gorillaws."""

    def __init__(self, ws_url: str) -> None:
        self.conn, _ = gorillaws.Dialer(handshake_timeout=10).dial(ws_url)
        self.conn.set_read_limit(64 << 20)
        self._id = 0

    def call(self, method: str, params: Optional[Dict[str, Any]] = None, session: Optional[str] = None) -> Dict[str, Any]:
        """Send one command and return its result; events in between are ignored."""
        self._id += 1
        msg: Dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        self.conn.write_json(msg)
        self.conn.set_read_deadline(time.monotonic() + STEP_TIMEOUT)
        while True:
            reply = self.conn.read_json()
            if reply.get("id") == self._id:
                if "error" in reply:
                    raise RuntimeError(f"CDP {method}: {reply['error']}")
                result: Dict[str, Any] = reply.get("result", {})
                return result

    def evaluate(self, session: str, expression: str) -> Any:
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"JS error in {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_until(self, session: str, expression: str, what: str) -> Any:
        end = time.monotonic() + STEP_TIMEOUT
        while True:
            value = self.evaluate(session, expression)
            if value:
                return value
            if time.monotonic() > end:
                raise AssertionError(f"timed out waiting for {what} ({expression})")
            time.sleep(0.05)

    def close(self) -> None:
        self.conn.close_now()


@pytest.fixture
def browser() -> Iterator[CDP]:
    path = find_browser()
    profile = tempfile.mkdtemp(prefix="gorillaws-chromium-")
    proc = subprocess.Popen(
        [
            path,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    cdp: Optional[CDP] = None
    try:
        # Chromium writes its port and the browser target's path here.
        port_file = os.path.join(profile, "DevToolsActivePort")
        end = time.monotonic() + 30
        lines: List[str] = []
        while len(lines) < 2:
            if proc.poll() is not None:
                pytest.fail(f"chromium exited with {proc.returncode} before DevTools was ready")
            if time.monotonic() > end:
                pytest.fail("chromium did not open its DevTools port within 30 s")
            time.sleep(0.1)
            try:
                with open(port_file) as f:
                    lines = f.read().split()
            except FileNotFoundError:
                pass
        cdp = CDP(f"ws://127.0.0.1:{lines[0]}{lines[1]}")
        yield cdp
    finally:
        if cdp is not None:
            try:
                cdp.call("Browser.close")
            except (gorillaws.WebSocketError, OSError, RuntimeError):
                pass
            cdp.close()
        if proc.poll() is None:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(5)
        shutil.rmtree(profile, ignore_errors=True)


def open_tab(cdp: CDP, url: str) -> str:
    target = cdp.call("Target.createTarget", {"url": url})["targetId"]
    session: str = cdp.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    cdp.wait_until(session, "document.body && document.body.dataset.state === 'open'", "the chat socket to open")
    return session


def say(cdp: CDP, session: str, text: str) -> None:
    cdp.evaluate(
        session,
        f"document.getElementById('msg').value = {json.dumps(text)};"
        "document.getElementById('form').requestSubmit(); true",
    )


def log_has(text: str) -> str:
    return f"Array.from(document.querySelectorAll('#log div')).some(d => d.textContent === {json.dumps(text)})"


def test_two_tabs_chat_through_our_server(browser: CDP) -> None:
    with Program(python("examples/chat/server.py", "--addr", "127.0.0.1:0")) as chat:
        url = chat.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1)
        alice = open_tab(browser, url)
        bob = open_tab(browser, url)

        say(browser, alice, "hello from alice")
        browser.wait_until(bob, log_has("hello from alice"), "bob to see alice's message")
        browser.wait_until(alice, log_has("hello from alice"), "alice to see her own message")

        say(browser, bob, "hi alice, bob here")
        browser.wait_until(alice, log_has("hi alice, bob here"), "alice to see bob's answer")

        # The input is cleared after sending, as a chat box should be.
        assert browser.evaluate(alice, "document.getElementById('msg').value") == ""

        # Stopping the server closes both pages' sockets.
        chat.stop()
        browser.wait_until(alice, "document.body.dataset.state === 'closed'", "alice's socket to close")


def state_is(state: str) -> str:
    return f"document.body.dataset.state === {json.dumps(state)}"


def test_limits_in_bytes_close_reported_and_reconnect(browser: CDP) -> None:
    """Non-ASCII text of the maximum size goes through; a stopped server is reported and rejoined."""
    port = free_port()
    argv = python("examples/chat/server.py", "--addr", f"127.0.0.1:{port}")
    chat = Program(argv)
    try:
        url = chat.wait_for(r"open (http://127\.0\.0\.1:\d+/)").group(1)
        alice = open_tab(browser, url)
        bob = open_tab(browser, url)
        assert browser.evaluate(alice, "document.body.dataset.maxBytes") == "512"

        # 256 Cyrillic letters are 512 bytes: exactly the server's limit
        # (the old page allowed 400 characters, 800 bytes, and died with 1009).
        biggest = "я" * 256
        say(browser, alice, biggest)
        browser.wait_until(bob, log_has(biggest), "bob to see the largest message")
        browser.wait_until(alice, log_has(biggest), "alice to see her own message")

        # Typing past the limit is cut at a character boundary, in bytes.
        typed = browser.evaluate(
            alice,
            "(() => { const m = document.getElementById('msg'); m.value = 'ab' + 'я'.repeat(300);"
            " m.dispatchEvent(new Event('input')); return [m.value.length, new TextEncoder().encode(m.value).length,"
            " document.getElementById('count').textContent]; })()",
        )
        assert typed == [257, 512, "512 / 512 bytes"]
        browser.evaluate(alice, "document.getElementById('msg').value = ''; true")
        assert browser.evaluate(alice, state_is("open")) and not browser.evaluate(alice, "document.getElementById('msg').disabled")

        # The server stops: both pages say so, with the close code and reason, and disable input.
        chat.stop()
        for tab in (alice, bob):
            browser.wait_until(tab, state_is("closed"), "the page to report the close")
            browser.wait_until(
                tab,
                "document.getElementById('status').textContent.includes('code 1001: going away')",
                "the close code and reason to be shown",
            )
            assert browser.evaluate(tab, "document.getElementById('msg').disabled && document.getElementById('send').disabled")

        # The server comes back on the same port: the pages reconnect by themselves.
        chat = Program(argv)
        chat.wait_for(r"open http://")
        for tab in (alice, bob):
            browser.wait_until(tab, state_is("open"), "the page to reconnect")
        say(browser, bob, "back again")
        browser.wait_until(alice, log_has("back again"), "alice to see bob after the restart")
    finally:
        chat.stop()
