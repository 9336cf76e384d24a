"""Run a command for each browser tab; stream its output there and its input from there.

Run it with::

    python examples/command/server.py                    # a Python prompt
    python examples/command/server.py -- bc -q           # any command after "--"

and open the printed URL.  Each WebSocket connection starts its own copy of
the command:

* the command's stdout and stderr are read by two threads and sent to the
  page as JSON text messages ``{"stream": "stdout"|"stderr", "data": ...}``;
  when both end, the exit status is sent as ``{"exit": N}`` and the
  connection is closed normally;
* each message from the page is written to the command's stdin;
* when the socket closes (tab closed, network gone, keepalive timed out), the
  command is ended: its stdin is closed, then after a grace period it gets
  SIGTERM, then SIGKILL (its whole process group, on POSIX).

It runs on :class:`gorillaws.serving.Server`, which also serves the page;
Ctrl-C (or SIGTERM) closes every connection with 1001 and ends its command.

There is one reading thread (the connection's) and the two output threads
write; writes are serialized by a lock so that each runs under its own write
deadline.  The keepalive is :meth:`gorillaws.Conn.start_keepalive` (the
nhooyr-style helper) rather than a hand-written ping loop; see
``examples/chat`` for the gorilla-style one.

Running commands for whoever can reach the port is dangerous: the server
listens on 127.0.0.1 and accepts same-origin pages only.
"""

from __future__ import annotations

import argparse
import codecs
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from typing import IO, Any, Dict, List, Optional

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - lets it run from a source checkout
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402
from gorillaws.server import UpgradeRequest  # noqa: E402
from gorillaws.serving import HTTPAnswer, Server  # noqa: E402

log = logging.getLogger("command")

HOME_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "home.html")

WRITE_WAIT = 10.0  # seconds allowed for one write
PONG_WAIT = 60.0  # seconds without a pong before the connection is dropped
PING_PERIOD = PONG_WAIT * 9 / 10
MAX_MESSAGE_SIZE = 8192  # largest input message accepted
CLOSE_GRACE = 1.0  # seconds between closing stdin, SIGTERM and SIGKILL


def end_process(proc: "subprocess.Popen[bytes]") -> None:
    """Close the command's stdin; if it keeps running, terminate it, then kill it."""
    try:
        if proc.stdin is not None:
            proc.stdin.close()
    except OSError:
        pass
    for sig in (signal.SIGTERM, getattr(signal, "SIGKILL", signal.SIGTERM)):
        try:
            proc.wait(CLOSE_GRACE)
            return
        except subprocess.TimeoutExpired:
            pass
        try:
            if os.name == "posix":
                os.killpg(proc.pid, sig)  # the command and anything it started
            else:  # pragma: no cover
                proc.kill()
        except (ProcessLookupError, PermissionError):
            pass
    try:
        proc.wait(CLOSE_GRACE)
    except subprocess.TimeoutExpired:  # pragma: no cover - unkillable
        log.warning("process %d did not exit", proc.pid)


def run_command(conn: gorillaws.Conn, argv: List[str]) -> None:
    """Run ``argv`` wired to ``conn`` until either side ends; see the module docs."""
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=(os.name == "posix"),
        )
    except OSError as err:
        conn.write_json({"stream": "stderr", "data": f"cannot start {argv[0]!r}: {err}\n"})
        conn.close(gorillaws.CLOSE_INTERNAL_SERVER_ERR, "cannot start the command")
        return
    log.info("started pid %d: %s", proc.pid, " ".join(argv))
    write_lock = threading.Lock()

    def send(obj: Dict[str, Any]) -> None:
        with write_lock:
            conn.set_write_deadline(time.monotonic() + WRITE_WAIT)
            conn.write_json(obj)

    def pump(stream: IO[bytes], name: str) -> None:
        # Forward output as it comes (not line by line: prompts have no newline).
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        try:
            while True:
                chunk = os.read(stream.fileno(), 4096)
                text = decoder.decode(chunk, final=not chunk)
                if text:
                    send({"stream": name, "data": text})
                if not chunk:
                    return
        except (gorillaws.WebSocketError, OSError):
            pass

    assert proc.stdout is not None and proc.stderr is not None and proc.stdin is not None
    pumps = [
        threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
        threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True),
    ]

    def finish() -> None:
        # When the command has closed its output, report its status and close.
        for t in pumps:
            t.join()
        code = proc.wait()
        log.info("pid %d exited with %d", proc.pid, code)
        try:
            send({"exit": code})
            conn.close(gorillaws.CLOSE_NORMAL_CLOSURE, "process exited")
        except (gorillaws.WebSocketError, OSError):
            pass

    finisher = threading.Thread(target=finish, daemon=True)
    for t in pumps:
        t.start()
    finisher.start()
    conn.start_keepalive(PING_PERIOD, PONG_WAIT)
    conn.set_read_limit(MAX_MESSAGE_SIZE)
    try:
        # This thread is the connection's only reader: page input -> stdin.
        while True:
            _, data = conn.read_message()
            proc.stdin.write(data)
            proc.stdin.flush()
    except (gorillaws.WebSocketError, OSError) as err:
        log.info("pid %d: connection ended: %s", proc.pid, err)
    finally:
        end_process(proc)
        conn.close_now()
        finisher.join(WRITE_WAIT)
        for stream in (proc.stdout, proc.stderr):
            stream.close()


def make_server(host: str, port: int, command: List[str]) -> Server:
    """A :class:`gorillaws.serving.Server`: the page at ``/``, the command at ``/ws``."""

    def page(request: UpgradeRequest) -> HTTPAnswer:
        if request.path != "/":
            return 404, None, "404 page not found\n"
        with open(HOME_PAGE, "rb") as f:
            return 200, {"Content-Type": "text/html; charset=utf-8"}, f.read()

    def handler(conn: gorillaws.Conn, request: UpgradeRequest) -> None:
        if request.path != "/ws":
            conn.close(gorillaws.CLOSE_POLICY_VIOLATION, "no WebSocket at this path")
            return
        run_command(conn, command)

    return Server(handler, host, port, http_handler=page)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="gorillaws command example: a command's stdio in the browser")
    p.add_argument("--addr", default="127.0.0.1:8080", help="host:port to listen on (default %(default)s; port 0 picks one)")
    p.add_argument("command", nargs=argparse.REMAINDER, help="the command to run, after '--' (default: a Python prompt)")
    args = p.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        command = [sys.executable, "-u", "-q", "-i"]
    host, _, port = args.addr.rpartition(":")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = make_server(host.strip("[]") or "127.0.0.1", int(port), command)
    shown, port_bound = server.address
    print(f"Running {' '.join(command)!r} for each visitor of http://{shown}:{port_bound}/ (Ctrl-C to stop)", flush=True)
    # Ctrl-C or SIGTERM: every page gets a close frame (1001), its command
    # is ended, then the server returns.
    server.install_signal_handlers()
    server.serve_forever()
    log.info("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
