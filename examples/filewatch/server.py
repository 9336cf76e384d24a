"""Show a file in the browser and push its new contents whenever it changes.

Run it with::

    python examples/filewatch/server.py notes.txt

open the printed URL, then edit ``notes.txt``: the page updates by itself.

How it works:

* ``/`` serves a page with the file's current text and its modification
  time (nanoseconds) built in; the page connects to ``/ws?since=<mtime>``.
* A writer thread per connection checks the file's modification time every
  ``--poll`` seconds and sends the whole file as one text message when it
  differs from what the page has, so a change made between loading the page
  and connecting is not lost.  It also pings every ``ping_period`` seconds.
* It runs on :class:`gorillaws.serving.Server`, which also serves the page;
  Ctrl-C (or SIGTERM) closes every page's connection with 1001.
* The connection's reading thread (the one Server gave it) reads only to see
  pongs and the close; each pong pushes the read deadline ``pong_wait``
  ahead.  The page never sends data, so a data message is refused.
"""

from __future__ import annotations

import argparse
import html
import logging
import os
import sys
import threading
import time
from typing import List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - lets it run from a source checkout
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402
from gorillaws.server import UpgradeRequest  # noqa: E402
from gorillaws.serving import HTTPAnswer, Server  # noqa: E402

log = logging.getLogger("filewatch")

WRITE_WAIT = 10.0
PONG_WAIT = 60.0
PING_PERIOD = PONG_WAIT * 9 / 10
MAX_FILE_SIZE = 1 << 20  # larger files are cut, with a note

PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<style>
  body {{ margin: 0; font: 14px/1.45 ui-monospace, Menlo, Consolas, monospace; background: #fbfaf7; }}
  header {{ padding: 6px 14px; background: #37474f; color: #eceff1; font-family: system-ui, sans-serif; }}
  #state {{ float: right; opacity: .8; }}
  #file {{ margin: 0; padding: 12px 14px; white-space: pre-wrap; word-break: break-word; }}
</style>
</head>
<body>
<header>{title} <span id="state">connecting...</span></header>
<pre id="file">{content}</pre>
<script>
(function () {{
  "use strict";
  var state = document.getElementById("state");
  var scheme = location.protocol === "https:" ? "wss://" : "ws://";
  var ws = new WebSocket(scheme + location.host + "/ws?since={mtime}");
  ws.onopen = function () {{ state.textContent = "watching"; document.body.dataset.state = "open"; }};
  ws.onclose = function () {{ state.textContent = "disconnected"; document.body.dataset.state = "closed"; }};
  ws.onmessage = function (ev) {{
    document.getElementById("file").textContent = ev.data;
    state.textContent = "updated " + new Date().toLocaleTimeString();
  }};
}})();
</script>
</body>
</html>
"""


def read_file(path: str) -> Tuple[str, int]:
    """The file's text (UTF-8, errors replaced) and modification time in ns; ("", 0) if missing."""
    try:
        with open(path, "rb") as f:
            st = os.fstat(f.fileno())
            data = f.read(MAX_FILE_SIZE + 1)
    except FileNotFoundError:
        return "", 0
    text = data[:MAX_FILE_SIZE].decode("utf-8", "replace")
    if len(data) > MAX_FILE_SIZE:
        text += f"\n[... cut at {MAX_FILE_SIZE} bytes]"
    return text, st.st_mtime_ns


def mtime_ns(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except FileNotFoundError:
        return 0


def watch(conn: gorillaws.Conn, path: str, since: int, poll: float) -> None:
    """Serve one page: push the file when it changes, ping, and read until the end."""
    stop = threading.Event()

    def writer() -> None:
        last = since
        next_ping = time.monotonic() + PING_PERIOD
        try:
            while not stop.is_set():
                if mtime_ns(path) != last:
                    text, last = read_file(path)
                    conn.set_write_deadline(time.monotonic() + WRITE_WAIT)
                    conn.write_message(gorillaws.TEXT_MESSAGE, text)
                if time.monotonic() >= next_ping:
                    conn.set_write_deadline(time.monotonic() + WRITE_WAIT)
                    conn.write_message(gorillaws.PING_MESSAGE, b"")
                    next_ping = time.monotonic() + PING_PERIOD
                stop.wait(poll)
        except (gorillaws.WebSocketError, OSError) as err:
            log.info("writer stopped: %s", err)
        finally:
            conn.close_now()  # wakes the reader

    t = threading.Thread(target=writer, name="filewatch-writer", daemon=True)
    t.start()
    conn.set_read_limit(512)
    conn.set_read_deadline(time.monotonic() + PONG_WAIT)
    conn.set_pong_handler(lambda _data: conn.set_read_deadline(time.monotonic() + PONG_WAIT))
    try:
        while True:
            conn.read_message()
            # The page has nothing to say: a data message is a protocol misuse.
            conn.close(gorillaws.CLOSE_POLICY_VIOLATION, "this endpoint only sends")
            break
    except (gorillaws.WebSocketError, OSError):
        pass
    finally:
        stop.set()
        t.join(WRITE_WAIT + 1)
        conn.close_now()


def make_server(host: str, port: int, path: str, poll: float) -> Server:
    """A :class:`gorillaws.serving.Server`: the page at ``/``, the live file at ``/ws``."""

    def page(request: UpgradeRequest) -> HTTPAnswer:
        if request.path != "/":
            return 404, None, "404 page not found\n"
        text, mtime = read_file(path)
        body = PAGE.format(title=html.escape(os.path.basename(path)), content=html.escape(text), mtime=mtime)
        return 200, {"Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"}, body

    def handler(conn: gorillaws.Conn, request: UpgradeRequest) -> None:
        if request.path != "/ws":
            conn.close(gorillaws.CLOSE_POLICY_VIOLATION, "no WebSocket at this path")
            return
        try:
            since = int(parse_qs(urlsplit(request.target).query).get("since", ["0"])[0])
        except ValueError:
            since = 0
        watch(conn, path, since, poll)

    return Server(handler, host, port, http_handler=page)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="gorillaws filewatch example: a file's contents, live")
    p.add_argument("file", help="the file to show")
    p.add_argument("--addr", default="127.0.0.1:8080", help="host:port to listen on (default %(default)s; port 0 picks one)")
    p.add_argument("--poll", type=float, default=1.0, help="seconds between checks of the file (default %(default)s)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    host, _, port = args.addr.rpartition(":")
    server = make_server(host.strip("[]") or "127.0.0.1", int(port), os.path.abspath(args.file), args.poll)
    shown, port_bound = server.address
    print(f"Watching {args.file}: open http://{shown}:{port_bound}/ (Ctrl-C to stop)", flush=True)
    # Ctrl-C or SIGTERM: every page gets a close frame (1001), then the server returns.
    server.install_signal_handlers()
    server.serve_forever()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
