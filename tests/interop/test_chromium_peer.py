"""Interop with headless Chromium: a page talks to our server, compression on.

Chromium (Debian ``chromium``) is started with ``--headless --no-sandbox``, a
fresh user data directory and ``--dump-dom`` on a page served here
(``chromium_page.html``).  The page connects to gorillaws's echo server,
checks text, binary, empty, large and fragmented (echoed in fragments split
inside characters) messages, answers our ping, has the server close with
4001, then closes a second connection itself with 4000; the result is written
into the DOM.  The page's load is held back by a script at ``/wait`` that is
answered once the server saw the page's close, so the dumped DOM holds the
result.  Chromium always offers permessage-deflate; the server runs with
context takeover, without, and with compression off.
"""

from __future__ import annotations

import html
import http.server
import json
import os
import re
import shutil
import tempfile
import threading
from typing import Any, Dict, Iterator, Tuple

import pytest

from peers import require_peer

from .ourside import EchoServer
from .procs import PeerProcess

PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "chromium_page.html")

pytestmark = [pytest.mark.timeout(90), pytest.mark.peer, pytest.mark.slow]  # slow: drives headless Chromium


def _chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        if shutil.which(name):
            return require_peer("chromium", name)
    return require_peer("chromium", "chromium", "apt-get install chromium")


class PageServer:
    """Serves the test page and the load-holding ``/wait`` script."""

    def __init__(self, ws: EchoServer) -> None:
        page = open(PAGE, encoding="utf-8").read().replace("__WS_URL__", ws.url)
        body = page.encode("utf-8")

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/":
                    data, ctype = body, "text/html; charset=utf-8"
                elif self.path == "/wait":
                    ws.wait_closes(1, 30.0)
                    data, ctype = b"/* done */", "application/javascript"
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def browser() -> Iterator[str]:
    exe = _chromium()
    yield exe


def _dump_dom(exe: str, url: str) -> Tuple[str, str]:
    profile = tempfile.mkdtemp(prefix="gorillaws-chromium-")
    try:
        argv = [
            exe,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--user-data-dir=" + profile,
            "--dump-dom",
            url,
        ]
        with PeerProcess(argv) as p:
            p.wait_exit(60)
            return p.output(), profile
    finally:
        shutil.rmtree(profile, ignore_errors=True)


@pytest.mark.parametrize("ours", ["context", "no-context", "off"])
def test_chromium_page_our_server(browser: str, ours: str) -> None:
    with EchoServer(ours) as ws:
        page = PageServer(ws)
        try:
            output, _ = _dump_dom(browser, page.url)
        finally:
            page.stop()
        m = re.search(r'<pre id="result">(.*?)</pre>', output, re.S)
        assert m, "no result in chromium's DOM dump:\n" + output[-3000:]
        assert m.group(1) != "pending", "the page never finished:\n" + output[-3000:]
        out: Dict[str, Any] = json.loads(html.unescape(m.group(1)))
        assert not out.get("error"), (out, output[-2000:])
        bad = [k for k, ok in out["echoes"].items() if not ok]
        assert not bad, out
        assert out["steps"] == ["pinged"], out
        assert out["pong"] == "pong-seen:from-server", out
        assert out["server_close"]["code"] == 4001 and out["server_close"]["reason"] == "server bye", out
        assert ws.wait_closes(1) == [(4000, "client bye")]
        if ours == "off":
            assert out["extensions"] == "", out
            assert ws.extensions == [None, None]
        else:
            assert out["extensions"].startswith("permessage-deflate"), out
            assert all(e is not None for e in ws.extensions), ws.extensions
        assert not ws.errors and not ws.handshake_errors, (ws.errors, ws.handshake_errors)
