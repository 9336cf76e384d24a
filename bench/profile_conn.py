#!/usr/bin/env python3
"""Profile gorillaws.Conn's hot path over a 127.0.0.1 TCP pair, next to raw TCP.

No HTTP handshake: both ends wrap an already connected socket in
``Conn(sock, is_server=...)``, each in its own process (the server is this
script re-run with ``_server``).  The raw row is a 5-byte length-prefixed
protocol over plain sockets (the Python ceiling), measured in the same run.

Cases: ``echo16``, ``echo1k``, ``echo64k``, ``echo1m`` (round trips of that
size), ``stream64k``, ``stream1m`` (messages client -> server; the
server's byte count is checked at the end) and ``conc100`` (100 connections,
one thread per connection on each side, 16-byte round trips; the total).  System calls per message:
``strace -c -f -o OUT python3 bench/profile_conn.py --cases echo64k --kinds ws``
and divide by the message count printed.

Usage::

    python3 bench/profile_conn.py                      # throughput table
    python3 bench/profile_conn.py --profile client     # cProfile the client side
    python3 bench/profile_conn.py --profile server --cases echo16
    python3 bench/profile_conn.py --pin                # client and server on CPU 0

Profiles print the top functions by internal time (``--sort`` to change).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import resource
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gorillaws.conn import Conn  # noqa: E402
from gorillaws.frames import BINARY_MESSAGE, TEXT_MESSAGE  # noqa: E402

CASES = {
    "echo16": ("echo", 16),
    "echo1k": ("echo", 1024),
    "echo64k": ("echo", 65536),
    "echo1m": ("echo", 1 << 20),
    "stream64k": ("stream", 65536),
    "stream1m": ("stream", 1 << 20),
    "conc100": ("conc", 16),
}
CONNS = 100  # connections of the conc100 case, one thread each on both sides
_HDR = struct.Struct("!BI")


# ---------------------------------------------------------------- raw TCP
def raw_pair(sock: socket.socket) -> Tuple[Callable[[], Any], Callable[[Any], None]]:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    rfile = sock.makefile("rb", buffering=65536)
    unpack, pack = _HDR.unpack, _HDR.pack

    def recv() -> Any:
        head = rfile.read(5)
        if len(head) < 5:
            raise ConnectionError("eof")
        kind, n = unpack(head)
        data = rfile.read(n)
        return data.decode() if kind == 1 else data

    def send(msg: Any) -> None:
        if isinstance(msg, str):
            data, kind = msg.encode(), 1
        else:
            data, kind = msg, 2
        head = pack(kind, len(data))
        sent = sock.sendmsg([head, data])
        if sent < len(head) + len(data):
            sock.sendall((head + data)[sent:])

    return recv, send


def ws_pair(sock: socket.socket, is_server: bool) -> Tuple[Callable[[], Any], Callable[[Any], None]]:
    conn = Conn(sock, is_server=is_server, read_buffer_size=int(os.environ.get("RBUF", "4096")))
    conn.set_read_limit(0)
    read, write = conn.read_message, conn.write_message

    def recv() -> Any:
        mt, data = read()
        return data.decode() if mt == TEXT_MESSAGE else data

    def send(msg: Any) -> None:
        if isinstance(msg, str):
            write(TEXT_MESSAGE, msg)
        else:
            write(BINARY_MESSAGE, msg)

    return recv, send


# ---------------------------------------------------------------- server
def server_main(kind: str, mode: str, port: int, profile: bool) -> None:
    if mode == "conc":
        # One echo thread per connection (no profile: cProfile sees one thread).
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(CONNS)]
        threads = [threading.Thread(target=server_main_on, args=(kind, "echo", s, None)) for s in socks]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return
    sock = socket.create_connection(("127.0.0.1", port))
    prof = cProfile.Profile() if profile else None
    server_main_on(kind, mode, sock, prof)


def server_main_on(kind: str, mode: str, sock: socket.socket, prof: Optional[cProfile.Profile]) -> None:
    recv, send = raw_pair(sock) if kind == "raw" else ws_pair(sock, True)
    if prof:
        prof.enable()
    try:
        if mode == "echo":
            while True:
                send(recv())
        else:
            total = 0
            while True:
                msg = recv()
                if isinstance(msg, str):
                    send(str(total))
                    total = 0
                else:
                    total += len(msg)
    except Exception:  # noqa: BLE001 - peer went away
        pass
    finally:
        if prof:
            prof.disable()
            prof.dump_stats(os.environ["PROFILE_OUT"])


# ---------------------------------------------------------------- client
def client_run(kind: str, case: str, duration: float, profile: Optional[str],
               sort: str, pin: bool) -> Dict[str, float]:
    mode, size = CASES[case]
    lsock = socket.create_server(("127.0.0.1", 0))
    port = lsock.getsockname()[1]
    prof_path = f"/tmp/gws-prof-{os.getpid()}.out"
    env = dict(os.environ, PROFILE_OUT=prof_path)
    cmd = [sys.executable, os.path.abspath(__file__), "_server", kind, mode, str(port),
           "1" if profile == "server" else "0"]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
        os.sched_setaffinity(0, {0})
    proc = subprocess.Popen(cmd, env=env)
    if mode == "conc":
        return conc_run(kind, lsock, proc, duration, pin)
    sock, _ = lsock.accept()
    lsock.close()
    recv, send = raw_pair(sock) if kind == "raw" else ws_pair(sock, False)
    payload = os.urandom(size)
    prof = cProfile.Profile() if profile == "client" else None
    # warm-up
    end = time.perf_counter() + 0.1
    while time.perf_counter() < end:
        send(payload)
        if mode == "echo":
            recv()
    if mode == "stream":
        send("count")
        recv()
    if prof:
        prof.enable()
    n = 0
    flt0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0 = time.perf_counter()
    end = t0 + duration
    if mode == "echo":
        while time.perf_counter() < end:
            for _ in range(10 if size < 65536 else 1):
                send(payload)
                recv()
                n += 1
    else:
        while time.perf_counter() < end:
            send(payload)
            n += 1
        send("count")
        got = int(recv())
        assert got == n * size, (got, n * size)
    dt = time.perf_counter() - t0
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - flt0) / max(n, 1)
    if prof:
        prof.disable()
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()
    proc.wait(10)
    if profile:
        stats = pstats.Stats(prof_path if profile == "server" else prof, stream=sys.stdout)  # type: ignore[arg-type,unused-ignore]
        print(f"\n===== profile: {kind} {case} ({profile} side), sorted by {sort} =====")
        stats.sort_stats(sort).print_stats(22)
        if profile == "server":
            os.unlink(prof_path)
    if pin:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    return {"msgs_per_s": n / dt, "mb_per_s": n * size / dt / 1e6, "faults": faults, "n": n}


def conc_run(kind: str, lsock: socket.socket, proc: "subprocess.Popen[bytes]", duration: float,
             pin: bool) -> Dict[str, float]:
    """``CONNS`` connections, a thread each, echoing 16 bytes for ``duration`` seconds."""
    socks = [lsock.accept()[0] for _ in range(CONNS)]
    lsock.close()
    counts = [0] * CONNS
    start = threading.Barrier(CONNS + 1)
    payload = os.urandom(16)
    end = [0.0]

    def run(i: int, sock: socket.socket) -> None:
        recv, send = raw_pair(sock) if kind == "raw" else ws_pair(sock, False)
        send(payload)
        recv()  # warm-up round trip
        start.wait()
        n = 0
        while time.perf_counter() < end[0]:
            send(payload)
            recv()
            n += 1
        counts[i] = n
        sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    threads = [threading.Thread(target=run, args=(i, s)) for i, s in enumerate(socks)]
    for t in threads:
        t.start()
    end[0] = time.perf_counter() + 0.2 + duration
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    dt = time.perf_counter() - t0
    proc.wait(10)
    if pin:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
    n = sum(counts)
    return {"msgs_per_s": n / dt, "mb_per_s": n * 16 / dt / 1e6, "faults": 0.0, "n": n}


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(c for c in CASES if c != "conc100"),
                    help="comma-separated; conc100 (100 connections) runs only when named")
    ap.add_argument("--kinds", default="raw,ws")
    ap.add_argument("--duration", type=float, default=1.0)
    ap.add_argument("--reps", type=int, default=1)
    ap.add_argument("--profile", choices=("client", "server"))
    ap.add_argument("--sort", default="tottime")
    ap.add_argument("--pin", action="store_true", help="run both sides on CPU 0")
    args = ap.parse_args(argv)
    results: Dict[Tuple[str, str], List[Dict[str, float]]] = {}
    for _ in range(args.reps):
        for case in args.cases.split(","):
            for kind in args.kinds.split(","):
                r = client_run(kind, case, args.duration, args.profile, args.sort, args.pin)
                results.setdefault((case, kind), []).append(r)
    print(f"\n{'case':<10} {'kind':<5} {'msg/s':>10} {'MB/s':>9} {'faults/msg':>10} {'messages':>9}  (client side; median of {args.reps})")
    for (case, kind), rs in results.items():
        rs.sort(key=lambda r: r["msgs_per_s"])
        r = rs[len(rs) // 2]
        print(f"{case:<10} {kind:<5} {r['msgs_per_s']:>10,.0f} {r['mb_per_s']:>9,.1f} {r['faults']:>10.1f} {r['n']:>9,.0f}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        server_main(sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5] == "1")
    else:
        main(sys.argv[1:])
