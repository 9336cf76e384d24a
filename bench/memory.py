#!/usr/bin/env python3
"""Memory per idle connection on a gorillaws server, per compression mode.

A server process (gorillaws ``Upgrader``, one thread per connection running an
echo loop) accepts N connections from this process.  Measured from
``/proc/PID/status`` (VmRSS) of the server, divided by N:

* **idle**: every connection has done one 16 B echo (so its handler runs and
  its buffers exist), then sits blocked in ``read_message``;
* **after traffic**: every connection has then echoed a mix of messages
  (10 x 1 KiB, 2 x 16 KiB, 1 x 256 KiB of semi-repetitive text), and sits idle
  again.  This shows what a connection keeps after its peak (buffers that
  grew, compressor state kept for context takeover).

Servers: ``sock`` (``upgrade(accepted socket)``, a thread per connection) and
``http`` (``upgrade(handler)`` under ``http.server.ThreadingHTTPServer``).
Threads per connection are reported too (expected: 1.0).

Usage::

    python3 bench/memory.py                       # 500 conns, every mode, both servers
    python3 bench/memory.py --conns 200 --modes off --servers sock
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from compression import make_payload  # noqa: E402  (bench/ is on sys.path as the script dir)

MODES = ("off", "no-context", "context")
TRAFFIC = [1024] * 10 + [16384] * 2 + [262144]


def _mode(name: str) -> int:
    from gorillaws import deflate

    return {"off": deflate.COMPRESSION_DISABLED,
            "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
            "context": deflate.COMPRESSION_CONTEXT_TAKEOVER}[name]


def serve(server: str, mode: str) -> None:
    import gorillaws as gw

    upgrader = gw.Upgrader(compression_mode=_mode(mode))

    def run(conn: Any) -> None:
        conn.set_read_limit(1 << 24)
        try:
            while True:
                # No local keeps the last message alive while the loop waits.
                conn.write_message(*conn.read_message())
        except (gw.WebSocketError, OSError):
            pass
        finally:
            conn.close_now()

    threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    if server == "http":
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    conn = upgrader.upgrade(self)
                except gw.HandshakeError:
                    return
                run(conn)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        srv = Server(("127.0.0.1", 0), Handler)
        print(srv.server_port, flush=True)
        srv.serve_forever()
        return
    lsock = socket.create_server(("127.0.0.1", 0), backlog=1024)
    print(lsock.getsockname()[1], flush=True)

    def handle(sock: socket.socket) -> None:
        try:
            conn = upgrader.upgrade(sock)
        except (gw.HandshakeError, OSError):
            return
        run(conn)

    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


def status(pid: int) -> Tuple[int, int]:
    """(VmRSS in KiB, thread count) of a process."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def measure(server: str, mode: str, n: int, settle: float) -> Dict[str, float]:
    import gorillaws as gw

    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_serve", server, mode],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = f"ws://127.0.0.1:{int(proc.stdout.readline())}/"
        dialer = gw.Dialer(compression_mode=_mode(mode))
        small = b"x" * 16
        # Warm-up: one connection with the whole traffic mix, then closed.
        c, _ = dialer.dial(url)
        c.set_read_limit(1 << 24)
        for size in [16] + TRAFFIC:
            c.write_message(gw.BINARY_MESSAGE, make_payload(size))
            c.read_message()
        c.close()
        time.sleep(settle)
        rss0, th0 = status(proc.pid)
        conns = []
        for _ in range(n):
            c, _ = dialer.dial(url)
            c.set_read_limit(1 << 24)
            c.write_message(gw.BINARY_MESSAGE, small)
            c.read_message()
            conns.append(c)
        compressed = sum(1 for c in conns if c.compression is not None)
        time.sleep(settle)
        rss1, th1 = status(proc.pid)
        payloads = [make_payload(size) for size in TRAFFIC]
        for c in conns:
            for p in payloads:
                c.write_message(gw.BINARY_MESSAGE, p)
                c.read_message()
        time.sleep(settle)
        rss2, th2 = status(proc.pid)
        for c in conns:
            c.close()
        return {"idle_kib": (rss1 - rss0) / n, "traffic_kib": (rss2 - rss0) / n,
                "threads": (th1 - th0) / n, "compressed": compressed / n}
    finally:
        if proc.stdin:
            proc.stdin.close()
        proc.wait(10)


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=500)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--servers", default="sock,http")
    ap.add_argument("--settle", type=float, default=0.5)
    args = ap.parse_args(argv)
    print(f"\nServer RSS growth per connection, {args.conns} connections "
          f"(traffic mix: {len(TRAFFIC)} messages, up to {max(TRAFFIC) // 1024} KiB)\n")
    print("| server | compression | KiB/conn idle | KiB/conn after traffic | threads/conn |")
    print("|---|---|---:|---:|---:|")
    for server in args.servers.split(","):
        for mode in args.modes.split(","):
            r = measure(server, mode, args.conns, args.settle)
            if mode != "off" and r["compressed"] < 1:
                raise RuntimeError(f"{mode}: compression not negotiated")
            print(f"| {server} | {mode} | {r['idle_kib']:.1f} | {r['traffic_kib']:.1f} | "
                  f"{r['threads']:.2f} |", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        main(sys.argv[1:])
