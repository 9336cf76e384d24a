#!/usr/bin/env python3
"""Fan-out: one publisher, N subscribers (1,000 by default), deliveries per second.

Cases (each server in its own process, its subscribers' clients in two other
processes, the same two for every case; a delivery counts when the client has
the frame):

* ``naive``: gorillaws, one thread loops over the connections calling
  ``conn.write_message()`` for each message (what code without a hub does);
* ``hub``: gorillaws, ``gorillaws.hub.Hub()`` in one process: ``publish()``
  frames once and the hub's 4 writer threads write;
* ``hub-redis-2p``: two server processes, N/2 subscribers each, sharing the
  topic through a private ``redis-server``; the publisher lives in the first,
  which delivers to its own half directly and to the other half via Redis;
* ``hub-stream-2p`` (not run by default): the same with
  ``RedisStreamBackend`` (Redis Streams: every message, the publishing
  process's own too, goes through ``XADD`` / ``XREAD``);
* ``websockets``: websockets' asyncio ``broadcast()`` (websockets.sync has no
  broadcast; the asyncio server is what its users broadcast with), one event
  loop in one process, yielding to the loop after each message so it can
  flush.  Note: ``broadcast()`` has no backpressure and no per-connection
  bound (a slow client's buffer grows), so it does less work per delivery
  than a hub that bounds queues and watches for slow sockets.

Each case publishes ``--messages`` messages of ``--size`` bytes as fast as it
can and is timed from the first publish until the clients hold every frame.
``--repeat`` rounds run every case once each, in turn (so a change in the
machine's load hits every case alike); the table gives medians and the range.

The clients are built to cost as little as possible per delivery, so that the
figure measures the servers' fan-out, not the load generator: every frame has
the same size, so a client counts bytes instead of parsing frames; it drains
each ready socket with one large ``recv_into`` into one shared buffer; and it
waits ``--drain-every`` seconds after each drain so that data accumulates
(several frames per read; longer, up to 5x, while reads bring fewer than 4
frames, as with a slow server).  Their CPU per delivery is reported too.

Two figures per case: wall-clock deliveries/s, which also depends on how much
CPU the clients, Redis and anything else running leave to the servers; and
deliveries per server CPU-second (user + system time of the server processes
in the timed window, Redis not included), which does not.  The machine is
shared (2 cores for servers, clients and Redis): read ratios within one run.

Usage::

    python3 bench/fanout.py                     # 1000 subscribers, 2000 x 64 B, 3 rounds
    python3 bench/fanout.py --subs 200 --cases hub,websockets --repeat 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import socket
import statistics
import subprocess
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
sys.path.insert(0, HERE)

import gorillaws as gw  # noqa: E402
from broadcast import make_payload  # noqa: E402

CASES = ("naive", "hub", "hub-redis-2p", "websockets")
REDIS_CASES = ("hub-redis-2p", "hub-stream-2p")
TOPIC = "fanout"
WARMUP = 10


# ------------------------------------------------------------------ servers
def cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def gorillaws_server(case: str, n: int, redis_url: Optional[str]) -> None:
    """Accept n connections; on "GO m size" publish m messages; "QUIT" ends."""
    from gorillaws.hub import Hub

    hub = None
    if case != "naive":
        if case == "hub-stream-2p":
            from gorillaws.hub import RedisStreamBackend

            hub = Hub(backend=RedisStreamBackend(redis_url, maxlen=100_000), queue_size=100_000)
        else:
            hub = Hub(redis_url=redis_url, queue_size=100_000)
    lsock = socket.create_server(("127.0.0.1", 0), backlog=n + 16)
    print("PORT", lsock.getsockname()[1], flush=True)
    upgrader = gw.Upgrader()
    conns = []
    for _ in range(n):
        sock, _addr = lsock.accept()
        conn = upgrader.upgrade(sock)
        conns.append(conn)
        if hub is not None:
            hub.subscribe(conn, TOPIC)
    lsock.close()
    if case == "hub-stream-2p":
        while TOPIC not in hub.stats()["backend"]["last_ids"]:  # reading the stream from its end
            time.sleep(0.01)
    print("READY", flush=True)
    for line in sys.stdin:
        words = line.split()
        if words[0] == "GO":
            m, payload = int(words[1]), make_payload(int(words[2]))
            if hub is None:
                for _ in range(m):
                    for c in conns:
                        c.write_message(gw.BINARY_MESSAGE, payload)
            else:
                for _ in range(m):
                    hub.publish(TOPIC, gw.BINARY_MESSAGE, payload)
            print("SENT", flush=True)
        elif words[0] == "CPU":
            print(cpu_seconds(), flush=True)
        elif words[0] == "STATS":
            st = hub.stats() if hub is not None else {"dropped": 0, "backend": {}}
            print("STATS dropped=%d received=%s" % (st["dropped"], st["backend"].get("received", "-")), flush=True)
        elif words[0] == "QUIT":
            break
    if hub is not None:
        hub.close_timeout = 0.5
        hub.close()
    for c in conns:
        c.close_now()


def websockets_server(n: int) -> None:
    """The same protocol on websockets' asyncio server and ``broadcast()``."""
    from websockets.asyncio.server import broadcast, serve

    async def main() -> None:
        conns: set = set()
        ready = asyncio.Event()

        async def handler(ws: Any) -> None:
            conns.add(ws)
            if len(conns) == n:
                ready.set()
            await ws.wait_closed()

        loop = asyncio.get_running_loop()
        async with serve(handler, "127.0.0.1", 0, compression=None, ping_interval=None, max_queue=None) as server:
            port = next(iter(server.sockets)).getsockname()[1]
            print("PORT", port, flush=True)
            await ready.wait()
            print("READY", flush=True)
            while True:
                line = await loop.run_in_executor(None, sys.stdin.readline)
                words = line.split()
                if not words or words[0] == "QUIT":
                    break
                if words[0] == "GO":
                    m, payload = int(words[1]), make_payload(int(words[2]))
                    for _ in range(m):
                        broadcast(conns, payload)
                        await asyncio.sleep(0)  # let the loop flush the transports
                    print("SENT", flush=True)
                elif words[0] == "CPU":
                    print(cpu_seconds(), flush=True)
                elif words[0] == "STATS":
                    print("STATS dropped=0 received=-", flush=True)

    asyncio.run(main())


# ------------------------------------------------------------------ driver
class Proc:
    """A child speaking the line protocol on stdin/stdout."""

    def __init__(self, argv: List[str]) -> None:
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def send(self, line: str) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(line + "\n")
        self.p.stdin.flush()

    def expect(self, word: str) -> str:
        assert self.p.stdout is not None
        line = self.p.stdout.readline()
        if not line.startswith(word):
            raise RuntimeError(f"{self.p.args!r}: expected {word}, got {line!r}")
        return line.strip()

    def count(self) -> int:
        self.send("COUNT")
        assert self.p.stdout is not None
        return int(self.p.stdout.readline())

    def cpu(self) -> float:
        self.send("CPU")
        assert self.p.stdout is not None
        return float(self.p.stdout.readline())

    def stop(self) -> None:
        try:
            if self.p.stdin is not None:
                self.p.stdin.close()
            self.p.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.p.kill()
            self.p.wait(5)


def frame_bytes(size: int) -> int:
    """Bytes on the wire of one unmasked, uncompressed server frame with a ``size``-byte payload."""
    return size + (2 if size < 126 else 4 if size < 65536 else 10)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of another process, from /proc."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_counts(clients: List[Proc], expected: int, timeout: float = 300) -> None:
    end = time.monotonic() + timeout
    while True:
        got = sum(c.count() for c in clients)
        if got >= expected:
            return
        if time.monotonic() > end:
            raise RuntimeError(f"clients got {got} of {expected} frames")
        time.sleep(0.002)


def run_case(case: str, n: int, m: int, size: int, redis: Any, drain_every: float, parse: bool = False) -> Dict[str, Any]:
    me = os.path.abspath(__file__)
    if case in REDIS_CASES:
        parts = [n // 2, n - n // 2]
        servers = [Proc([sys.executable, me, "_server", case, str(k), redis.url]) for k in parts]
    elif case == "websockets":
        parts = [n]
        servers = [Proc([sys.executable, me, "_ws_server", str(n)])]
    else:
        parts = [n]
        servers = [Proc([sys.executable, me, "_server", case, str(n), "-"])]
    clients: List[Proc] = []
    try:
        ports = [int(s.expect("PORT").split()[1]) for s in servers]
        # Two client processes in every case, so the client side costs the same.
        plan = [(ports[0], n // 2), (ports[0], n - n // 2)] if len(ports) == 1 else list(zip(ports, parts))
        for port, k in plan:
            clients.append(Proc([sys.executable, os.path.join(HERE, "broadcast.py"), "_client", str(port), str(k), "off",
                                 str(0 if parse else frame_bytes(size)), str(drain_every)]))
        for c in clients:
            c.expect("READY")
        for s in servers:
            s.expect("READY")
        if case == "hub-redis-2p":
            end = time.monotonic() + 10
            while redis.numsub("gorillaws:hub:" + TOPIC) != 2:
                if time.monotonic() > end:
                    raise RuntimeError("the servers did not subscribe in Redis")
                time.sleep(0.02)
        servers[0].send(f"GO {WARMUP} {size}")
        servers[0].expect("SENT")
        wait_counts(clients, WARMUP * n)
        cpu0 = sum(s.cpu() for s in servers)
        ccpu0 = sum(c.cpu() for c in clients)
        rcpu0 = proc_cpu(redis.proc.pid) if case in REDIS_CASES else 0.0
        t0 = time.perf_counter()
        servers[0].send(f"GO {m} {size}")
        wait_counts(clients, (WARMUP + m) * n)
        dt = time.perf_counter() - t0
        servers[0].expect("SENT")
        cpu = sum(s.cpu() for s in servers) - cpu0
        client_cpu = sum(c.cpu() for c in clients) - ccpu0
        redis_cpu = proc_cpu(redis.proc.pid) - rcpu0 if case in REDIS_CASES else 0.0
        stats = []
        for s in servers:
            s.send("STATS")
            stats.append(s.expect("STATS"))
        return {"case": case, "subs": n, "messages": m, "size": size, "seconds": dt,
                "deliveries_per_s": n * m / dt, "server_cpu_s": cpu, "per_cpu_s": n * m / cpu,
                "client_us_per_delivery": 1e6 * client_cpu / (n * m), "redis_cpu_s": redis_cpu,
                "loadavg": os.getloadavg()[0], "stats": stats}
    finally:
        for s in servers:
            try:
                s.send("QUIT")
            except OSError:
                pass
            s.stop()
        for c in clients:
            c.stop()


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--messages", type=int, default=2000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--repeat", type=int, default=3, help="rounds; every case runs once per round")
    ap.add_argument("--drain-every", type=float, default=0.01,
                    help="seconds a client waits after each drain (up to 5x that while reads bring under 4 frames)")
    ap.add_argument("--parse", action="store_true",
                    help="clients parse every frame header instead of counting bytes (the first rounds' client)")
    ap.add_argument("--json", default=None, help="write every run's figures to this file")
    args = ap.parse_args(argv)
    cases = args.cases.split(",")
    redis = None
    if any(c in REDIS_CASES for c in cases):
        from tests.redis_server import RedisServer  # a private redis-server on a free port

        redis = RedisServer("redis-server")
        redis.start()
    runs: List[Dict[str, Any]] = []
    try:
        for rnd in range(args.repeat):
            for case in cases:
                row = run_case(case, args.subs, args.messages, args.size, redis, args.drain_every, args.parse)
                row["round"] = rnd
                runs.append(row)
                print(f"round {rnd + 1} {case}: {row['deliveries_per_s']:,.0f} deliveries/s, "
                      f"{row['per_cpu_s']:,.0f} per server CPU-second, client {row['client_us_per_delivery']:.2f} us/delivery, "
                      f"redis {row['redis_cpu_s']:.2f} s, load {row['loadavg']:.1f}  {row['stats']}", file=sys.stderr, flush=True)
    finally:
        if redis is not None:
            redis.cleanup()
    if args.json:
        import json

        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
    print_table(runs, cases, args)


def spread(values: List[float]) -> str:
    """``median (min-max)``, in thousands."""
    return f"{statistics.median(values) / 1e3:,.0f}k ({min(values) / 1e3:,.0f}-{max(values) / 1e3:,.0f}k)"


def print_table(runs: List[Dict[str, Any]], cases: List[str], args: Any) -> None:
    by: Dict[str, List[Dict[str, Any]]] = {c: [r for r in runs if r["case"] == c] for c in cases}
    med = {c: {k: statistics.median(r[k] for r in by[c]) for k in ("deliveries_per_s", "per_cpu_s")} for c in cases}

    def ratio(case: str, to: str, key: str) -> str:
        return f"{med[case][key] / med[to][key]:.2f}x" if to in med else "-"

    print(f"\nFan-out: 1 publisher, {args.subs} subscribers, {args.messages} messages of {args.size} B, "
          f"{args.repeat} rounds ({'C speedups' if gw.mask.HAVE_SPEEDUPS else 'pure Python'}; "
          f"{os.cpu_count()} CPUs shared with the clients); median (min-max)\n")
    print("| case | deliveries/s (wall) | vs websockets | vs hub | per server CPU-second | vs websockets | vs hub "
          "| client CPU per delivery |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        rows = by[c]
        print(f"| {c} | {spread([r['deliveries_per_s'] for r in rows])} | {ratio(c, 'websockets', 'deliveries_per_s')} | "
              f"{ratio(c, 'hub', 'deliveries_per_s')} | {spread([r['per_cpu_s'] for r in rows])} | "
              f"{ratio(c, 'websockets', 'per_cpu_s')} | {ratio(c, 'hub', 'per_cpu_s')} | "
              f"{statistics.median(r['client_us_per_delivery'] for r in rows):.2f} us |")
    if "hub" in by and "hub-redis-2p" in by:
        pairs = [(a, b) for a in by["hub"] for b in by["hub-redis-2p"] if a["round"] == b["round"]]
        wall = [b["deliveries_per_s"] / a["deliveries_per_s"] for a, b in pairs]
        cpu = [b["per_cpu_s"] / a["per_cpu_s"] for a, b in pairs]
        print(f"\nhub-redis-2p / hub, round by round: wall {', '.join(f'{x:.2f}x' for x in wall)} "
              f"(median {statistics.median(wall):.2f}x); per server CPU-second {', '.join(f'{x:.2f}x' for x in cpu)}; "
              f"load averages {', '.join('%.1f' % b['loadavg'] for _, b in pairs)}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_server":
        gorillaws_server(sys.argv[2], int(sys.argv[3]), None if sys.argv[4] == "-" else sys.argv[4])
    elif len(sys.argv) > 1 and sys.argv[1] == "_ws_server":
        websockets_server(int(sys.argv[2]))
    else:
        main(sys.argv[1:])
