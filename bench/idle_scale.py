"""One gorillaws.serving.Server process holding N idle WebSocket connections (default 10,000).

Measures, for the server process:

* KiB of resident memory per idle connection: (RSS with N held - RSS before
  any) / N, from /proc/<pid>/status (VmRSS); threads and their stacks
  included, kernel socket buffers not (they are not process memory);
* a new client's handshake latency while the N are held (connect, send the
  upgrade request, read the 101), over 200 fresh connections: median, p99, max.

The server runs in its own process (``--server`` mode of this script); the
clients are raw sockets in this process that do a real WebSocket handshake
and then stay idle.  Both processes raise their open-files limit to the hard
limit.  Linux only (reads /proc).

    python bench/idle_scale.py                 # 10,000 connections
    python bench/idle_scale.py -n 2000 --json  # smaller, machine-readable
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from typing import Dict, List

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

from gorillaws import Conn, Upgrader  # noqa: E402
from gorillaws.serving import DEFAULT_THREAD_STACK_SIZE, Server, raise_open_files_limit  # noqa: E402


def run_server(port: int, stack: int, read_buffer: int) -> None:
    """The measured process: a Server whose handlers wait for a message."""
    limit = raise_open_files_limit()

    def idle(conn: Conn) -> None:
        conn.read_message()  # blocks: an idle connection

    upgrader = Upgrader(read_buffer_size=read_buffer)
    srv = Server(idle, "127.0.0.1", port, upgrader=upgrader, thread_stack_size=stack, max_connections=0)
    print(f"READY {srv.address[1]} {limit}", flush=True)
    srv.install_signal_handlers()
    srv.serve_forever()


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def threads_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


def handshake(port: int) -> socket.socket:
    """A WebSocket handshake on a raw socket; returns the open socket after the 101."""
    key = base64.b64encode(os.urandom(16)).decode()
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            raise ConnectionError("closed during the handshake")
        data += chunk
    if not data.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(data.split(b"\r\n", 1)[0].decode(errors="replace"))
    return s


def settle(pid: int, seconds: float = 1.0) -> int:
    """RSS once it stops moving (threads finish starting; the allocator settles)."""
    last = rss_kib(pid)
    end = time.monotonic() + 10 * seconds
    while time.monotonic() < end:
        time.sleep(seconds)
        now = rss_kib(pid)
        if abs(now - last) < 64:
            return now
        last = now
    return last


def measure(n: int, stack: int, probes: int, read_buffer: int = 0) -> Dict[str, float]:
    limit = raise_open_files_limit()
    if limit < n + 100:
        raise SystemExit(f"open-files limit {limit} is too low for {n} connections")
    proc = subprocess.Popen(
        [sys.executable, os.path.abspath(__file__), "--server", "--stack", str(stack), "--read-buffer", str(read_buffer)],
        stdout=subprocess.PIPE,
        text=True,
    )
    held: List[socket.socket] = []
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().split()
        port = int(line[1])
        # A few connections first, so one-time costs (imports done lazily,
        # the first thread) are in the baseline, not in the per-connection cost.
        warm = [handshake(port) for _ in range(10)]
        for s in warm:
            s.close()
        time.sleep(0.5)
        base = settle(proc.pid)
        start = time.monotonic()
        for _ in range(n):
            held.append(handshake(port))
        open_secs = time.monotonic() - start
        full = settle(proc.pid)
        threads = threads_of(proc.pid)
        latencies = []
        for _ in range(probes):
            t0 = time.perf_counter()
            s = handshake(port)
            latencies.append((time.perf_counter() - t0) * 1000.0)
            s.close()
        latencies.sort()
        return {
            "connections": n,
            "thread_stack_kib": stack // 1024,
            "read_buffer": read_buffer,
            "server_threads": threads,
            "rss_base_mib": base / 1024,
            "rss_full_mib": full / 1024,
            "kib_per_conn": (full - base) / n,
            "open_seconds": open_secs,
            "handshakes_per_s_while_opening": n / open_secs,
            "probe_median_ms": statistics.median(latencies),
            "probe_p99_ms": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
            "probe_max_ms": latencies[-1],
        }
    finally:
        for s in held:
            s.close()
        proc.terminate()  # the server we started, by PID: it shuts down gracefully
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-n", type=int, default=10_000, help="idle connections to hold (default %(default)s)")
    p.add_argument("--stack", type=int, default=DEFAULT_THREAD_STACK_SIZE, help="thread stack size in bytes")
    p.add_argument("--read-buffer", type=int, default=0, help="Upgrader(read_buffer_size=...) (0: the default, 4 KiB)")
    p.add_argument("--probes", type=int, default=200, help="new handshakes timed while the N are held")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--server", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.server:
        run_server(0, args.stack, args.read_buffer)
        return
    r = measure(args.n, args.stack, args.probes, args.read_buffer)
    if args.json:
        print(json.dumps(r, indent=2))
        return
    print(
        f"{r['connections']:,} idle connections, thread stack {r['thread_stack_kib']} KiB, "
        f"read buffer {args.read_buffer or 'default'}, {r['server_threads']:,} server threads"
    )
    print(f"server RSS {r['rss_base_mib']:.1f} MiB -> {r['rss_full_mib']:.1f} MiB: {r['kib_per_conn']:.1f} KiB per connection")
    print(f"opened in {r['open_seconds']:.1f} s ({r['handshakes_per_s_while_opening']:,.0f} handshakes/s, one client thread)")
    print(
        f"new handshake while held: median {r['probe_median_ms']:.2f} ms, p99 {r['probe_p99_ms']:.2f} ms, "
        f"max {r['probe_max_ms']:.2f} ms ({args.probes} probes)"
    )


if __name__ == "__main__":
    main()
