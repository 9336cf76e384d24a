#!/usr/bin/env python3
"""Profile the opening + closing handshake (the harness's "handshake" scenario).

The client loop (``Dialer().dial()`` then ``close()``) runs in this process;
the server runs in a child process: gorillaws's ``Upgrader`` under
``http.server`` (``--server http``) or on accepted sockets (``--server sock``),
or websockets' sync server (``--server websockets``, with its client).

Usage::

    python3 bench/profile_handshake.py                        # rates only
    python3 bench/profile_handshake.py --profile client
    python3 bench/profile_handshake.py --profile server --server http
    python3 bench/profile_handshake.py --callgrind            # client instructions per dial
    python3 bench/profile_handshake.py --callgrind --tree /tmp/old   # ... of another checkout
    python3 bench/profile_handshake.py --callgrind --close    # ... per dial + Conn.close()

``--callgrind`` counts the client's user-space instructions per dial, a
measure the machine's load does not move: ``Dialer(handshake_timeout=45.0)``
dials a raw-socket server of this checkout and closes the underlying socket,
under valgrind's callgrind, for two loop lengths; the difference divided by
the difference in length cancels start-up.  ``--tree`` measures another
checkout's client (e.g. a ``git worktree`` of an older commit with its C
speedup built in place) against the same server.  ``--close`` ends each
dial with ``conn.close()`` (the full close handshake) instead, which counts
dial + close as the harness's "handshake" cell does.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Callable, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))


def serve(kind: str, port_cb: Callable[[int], None]) -> None:
    if kind == "websockets":
        from websockets.sync.server import serve as ws_serve

        def handler(ws: Any) -> None:
            for msg in ws:
                ws.send(msg)

        server = ws_serve(handler, "127.0.0.1", 0, compression=None)
        port_cb(server.socket.getsockname()[1])
        server.serve_forever()
        return

    import gorillaws as gw

    upgrader = gw.Upgrader()

    def run(conn: Any) -> None:
        try:
            while True:
                mt, data = conn.read_message()
                conn.write_message(mt, data)
        except (gw.WebSocketError, OSError):
            pass
        finally:
            conn.close_now()

    if kind == "http":
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

        httpd = Server(("127.0.0.1", 0), Handler)
        port_cb(httpd.server_port)
        httpd.serve_forever()
    else:
        lsock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        port_cb(lsock.getsockname()[1])

        def handle(sock: socket.socket) -> None:
            try:
                conn = upgrader.upgrade(sock)
            except (gw.HandshakeError, OSError):
                return
            run(conn)

        while True:
            sock, _ = lsock.accept()
            threading.Thread(target=handle, args=(sock,), daemon=True).start()


def server_main(kind: str, profile: bool, seconds: float) -> None:
    prof = cProfile.Profile(time.process_time) if profile else None

    def ready(port: int) -> None:
        print(port, flush=True)
        if prof:
            prof.enable()

    if prof:
        # cProfile only sees the thread that enabled it; profile the whole
        # process by installing it for new threads too.
        threading.setprofile(lambda *a: prof.enable())  # type: ignore[union-attr,unused-ignore]

        def stop() -> None:
            time.sleep(seconds)
            prof.disable()
            prof.dump_stats(os.environ["PROFILE_OUT"])
            os._exit(0)

        threading.Thread(target=stop, daemon=True).start()
    else:
        threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()
    serve(kind, ready)


def _proc_cpu(pid: int) -> float:
    """utime + stime of a process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dial_loop(tree: str, port: int, n: int, close: bool = False) -> None:
    """``n`` dials of ``tree``'s client (the ``--callgrind`` loop).

    Each closes the underlying socket, or with ``close`` calls ``conn.close()``.
    """
    sys.path.insert(0, tree)
    import gorillaws as gw

    assert os.path.realpath(gw.__file__).startswith(os.path.realpath(tree)), gw.__file__
    dialer = gw.Dialer(handshake_timeout=45.0)
    url = f"ws://127.0.0.1:{port}/"
    for _ in range(n):
        conn, _ = dialer.dial(url)
        if close:
            conn.close()
        else:
            conn.underlying_conn().close()


def count_instructions(tree: str, short: int = 100, long: int = 600, close: bool = False) -> None:
    """Print the client instructions per dial of ``tree``, callgrind-counted and differenced."""
    import re
    import shutil

    if shutil.which("valgrind") is None:
        sys.exit("--callgrind needs valgrind (apt-get install valgrind)")
    server = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_server", "sock", "0", "0"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert server.stdout is not None
    port = int(server.stdout.readline())
    counts = []
    try:
        for n in (short, long):
            run = subprocess.run(
                ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                 os.path.abspath(__file__), "_dialloop", tree, str(port), str(n), "1" if close else "0"],
                capture_output=True, text=True, check=True)
            found = re.search(r"Collected : (\d+)", run.stderr)
            assert found, run.stderr[-2000:]
            counts.append(int(found.group(1)))
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(10)
    per_dial = (counts[1] - counts[0]) / (long - short)
    what = "dial + close()" if close else "dial"
    print(f"{tree}: {per_dial:,.0f} client instructions per {what} (callgrind; {short} dials: {counts[0]:,}, "
          f"{long} dials: {counts[1]:,})")


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", choices=("http", "sock", "websockets"), default="http")
    ap.add_argument("--profile", choices=("client", "server"))
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--pin", action="store_true", help="client and server on CPU 0")
    ap.add_argument("--callgrind", action="store_true", help="count client instructions per dial instead")
    ap.add_argument("--close", action="store_true", help="with --callgrind: end each dial with conn.close()")
    ap.add_argument("--tree", default=os.path.dirname(HERE), help="the checkout whose client --callgrind measures")
    args = ap.parse_args(argv)
    if args.callgrind:
        count_instructions(os.path.abspath(args.tree), close=args.close)
        return
    prof_path = f"/tmp/gws-hs-prof-{os.getpid()}.out"
    cmd = [sys.executable, os.path.abspath(__file__), "_server", args.server,
           "1" if args.profile == "server" else "0", str(args.duration + 1.0)]
    if args.pin:
        cmd = ["taskset", "-c", "0"] + cmd
        os.sched_setaffinity(0, {0})
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            env=dict(os.environ, PROFILE_OUT=prof_path))
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    url = f"ws://127.0.0.1:{port}/"
    if args.server == "websockets":
        from websockets.sync.client import connect as ws_connect

        def once() -> None:
            ws_connect(url, compression=None).close()
    else:
        import gorillaws as gw

        dialer = gw.Dialer()

        def once() -> None:
            dialer.dial(url)[0].close()

    for _ in range(50):
        once()
    prof: Optional[cProfile.Profile] = cProfile.Profile(time.process_time) if args.profile == "client" else None
    if prof:
        prof.enable()
    n = 0
    cpu0 = time.process_time()
    srv0 = _proc_cpu(proc.pid)
    t0 = time.perf_counter()
    end = t0 + args.duration
    while time.perf_counter() < end:
        once()
        n += 1
    dt = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    srv = _proc_cpu(proc.pid) - srv0
    if prof:
        prof.disable()
    print(f"{args.server}: {n / dt:,.0f} handshakes/s; CPU per handshake: client "
          f"{cpu / n * 1e6:,.0f} us, server {srv / n * 1e6:,.0f} us")
    stats: Optional[pstats.Stats] = None
    if args.profile == "server":
        proc.wait(args.duration + 10)
        stats = pstats.Stats(prof_path)
        os.unlink(prof_path)
    else:
        proc.stdin.close()  # type: ignore[union-attr]
        proc.wait(10)
        stats = pstats.Stats(prof) if prof else None
    if stats:
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        server_main(sys.argv[2], sys.argv[3] == "1", float(sys.argv[4]))
    elif len(sys.argv) > 1 and sys.argv[1] == "_dialloop":
        dial_loop(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:] == ["1"])
    else:
        main(sys.argv[1:])
