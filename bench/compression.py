#!/usr/bin/env python3
"""permessage-deflate: gorillaws compressed vs uncompressed, next to websockets.

Rows (client and server of the same library, each in its own process):

* ``gorillaws off`` / ``websockets off``: no compression;
* ``gorillaws no-context``: ``compression_mode=COMPRESSION_NO_CONTEXT_TAKEOVER``
  on both ends (gorilla's ``EnableCompression``); ``websockets no-context``:
  permessage-deflate with ``server_no_context_takeover`` and
  ``client_no_context_takeover`` on both ends;
* ``gorillaws context``: ``COMPRESSION_CONTEXT_TAKEOVER``; ``websockets
  context``: websockets' default ``compression="deflate"`` (context takeover).

Scenarios, on semi-repetitive text (JSON-like, compresses about 3-4x):
echo round trips (client and server pinned to one CPU, as the harness does for
echo) and a one-way stream client -> server (unpinned; the server answers
the byte count at the end, which is checked).  Every cell is the median of
``--reps`` runs; the runs of all rows are interleaved.

Usage::

    python3 bench/compression.py
    python3 bench/compression.py --sizes 1k,64k --reps 5 --duration 1
    python3 bench/compression.py --distinct 16   # cycle through 16 different payloads

By default every message is the same payload, which context takeover
compresses to one back-reference to the previous message; ``--distinct N``
sends N different payloads of the same size in turn (same vocabulary, so
context takeover still finds shared words across messages).
"""

from __future__ import annotations

import argparse
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

ROWS = ["gorillaws off", "gorillaws no-context", "gorillaws context",
        "websockets off", "websockets no-context", "websockets context"]
BIG = 1 << 30


def make_payload(size: int, seed: int = 7) -> bytes:
    """Semi-repetitive text of ``size`` bytes (deflate gets ~3-4x out of it)."""
    rnd = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"user", b"room", b"message",
             b"hello", b"world", b"42", b"true", b"false", b"null", b"price", b"time"]
    out = bytearray()
    while len(out) < size:
        out += b'{"%s": "%s %d"} ' % (rnd.choice(words), rnd.choice(words), rnd.randrange(1000))
    return bytes(out[:size])


def _gw_level() -> int:
    """The level for gorillaws rows: ``GW_LEVEL`` (``--gw-level``), else the codec's default."""
    from gorillaws import deflate

    return int(os.environ.get("GW_LEVEL") or deflate.DEFAULT_COMPRESSION_LEVEL)


def _gw_mode(mode: str) -> int:
    from gorillaws import deflate

    return {"off": deflate.COMPRESSION_DISABLED,
            "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
            "context": deflate.COMPRESSION_CONTEXT_TAKEOVER}[mode]


def _ws_kwargs(mode: str, server: bool) -> Dict[str, Any]:
    from websockets.extensions.permessage_deflate import (
        ClientPerMessageDeflateFactory,
        ServerPerMessageDeflateFactory,
    )

    if mode == "off":
        return {"compression": None}
    if mode == "context":
        return {"compression": "deflate"}
    factory = ServerPerMessageDeflateFactory if server else ClientPerMessageDeflateFactory
    return {"compression": None, "extensions": [factory(server_no_context_takeover=True,
                                                        client_no_context_takeover=True)]}


# ------------------------------------------------------------------ servers
def serve(row: str, sink: bool) -> None:
    lib, mode = row.split()

    def loop(recv: Callable[[], Any], send: Callable[[Any], None]) -> None:
        total = 0
        while True:
            msg = recv()
            if not sink:
                send(msg)
            elif isinstance(msg, str):
                send(str(total))
                total = 0
            else:
                total += len(msg)

    if lib == "websockets":
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.server import serve as ws_serve

        def handler(ws: Any) -> None:
            try:
                loop(ws.recv, ws.send)
            except ConnectionClosed:
                pass

        server = ws_serve(handler, "127.0.0.1", 0, max_size=BIG, **_ws_kwargs(mode, True))
        print(server.socket.getsockname()[1], flush=True)
        server.serve_forever()
        return

    import gorillaws as gw

    upgrader = gw.Upgrader(compression_mode=_gw_mode(mode), compression_level=_gw_level())
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    print(lsock.getsockname()[1], flush=True)

    def handle(sock: socket.socket) -> None:
        conn = upgrader.upgrade(sock)
        conn.set_read_limit(BIG)

        def recv() -> Any:
            mt, data = conn.read_message()
            return data.decode() if mt == gw.TEXT_MESSAGE else data

        def send(msg: Any) -> None:
            conn.write_message(gw.TEXT_MESSAGE if isinstance(msg, str) else gw.BINARY_MESSAGE, msg)

        try:
            loop(recv, send)
        except (gw.WebSocketError, OSError):
            pass
        finally:
            conn.close_now()

    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


# ------------------------------------------------------------------ clients
def connect(row: str, url: str) -> Tuple[Callable[[bytes], None], Callable[[str], None],
                                         Callable[[], Any], Callable[[], None], bool]:
    lib, mode = row.split()
    if lib == "websockets":
        from websockets.sync.client import connect as ws_connect

        ws = ws_connect(url, max_size=BIG, **_ws_kwargs(mode, False))
        on = bool(ws.protocol.extensions)
        return ws.send, ws.send, ws.recv, ws.close, on
    import gorillaws as gw

    conn, _ = gw.Dialer(compression_mode=_gw_mode(mode), compression_level=_gw_level()).dial(url)
    conn.set_read_limit(BIG)

    def recv() -> Any:
        mt, data = conn.read_message()
        return data.decode() if mt == gw.TEXT_MESSAGE else data

    def send_bin(data: bytes) -> None:
        conn.write_message(gw.BINARY_MESSAGE, data)

    def send_text(text: str) -> None:
        conn.write_message(gw.TEXT_MESSAGE, text)

    return send_bin, send_text, recv, conn.close, conn.compression is not None


def measure(row: str, scenario: str, size: int, duration: float, pin: bool, distinct: int = 1) -> float:
    """One run in fresh processes: round trips/s (echo) or messages/s (stream)."""
    cmd = [sys.executable, os.path.abspath(__file__), "_serve", row, "sink" if scenario == "stream" else "echo"]
    pinned = pin and scenario == "echo"
    if pinned:
        cmd = ["taskset", "-c", "0"] + cmd
    old = os.sched_getaffinity(0)
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        if pinned:
            os.sched_setaffinity(0, {0})
        send_bin, send_text, recv, close, on = connect(row, f"ws://127.0.0.1:{port}/")
        if row.split()[1] != "off" and not on:
            raise RuntimeError(f"{row}: compression was not negotiated")
        payloads = [make_payload(size, seed=7 + i) for i in range(distinct)]
        if scenario == "echo":
            for i in range(max(20, distinct)):
                payload = payloads[i % distinct]
                send_bin(payload)
                if recv() != payload:
                    raise RuntimeError("echo came back altered")
            n = 0
            t0 = time.perf_counter()
            end = t0 + duration
            while time.perf_counter() < end:
                send_bin(payloads[n % distinct])
                recv()
                n += 1
            rate = n / (time.perf_counter() - t0)
        else:
            n = 0
            t0 = time.perf_counter()
            end = t0 + duration
            while time.perf_counter() < end:
                send_bin(payloads[n % distinct])
                n += 1
            send_text("?")
            counted = int(recv())
            rate = n / (time.perf_counter() - t0)
            if counted != n * size:
                raise RuntimeError(f"sink counted {counted}, sent {n * size}")
        close()
        return rate
    finally:
        os.sched_setaffinity(0, old)
        if proc.stdin:
            proc.stdin.close()
        proc.kill()
        proc.wait(10)


def parse_sizes(text: str) -> List[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        mult = {"k": 1 << 10, "m": 1 << 20}.get(part[-1:], 1)
        out.append(int(part.rstrip("km")) * mult)
    return out


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default=",".join(ROWS))
    ap.add_argument("--sizes", default="1k,64k")
    ap.add_argument("--scenarios", default="echo,stream")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--gw-level", type=int, help="gorillaws compression level (default: the codec's)")
    ap.add_argument("--duration", type=float, default=0.5)
    ap.add_argument("--distinct", type=int, default=1,
                    help="cycle through this many different payloads (default 1: the same one)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin echo to one CPU")
    args = ap.parse_args(argv)
    if args.gw_level is not None:
        os.environ["GW_LEVEL"] = str(args.gw_level)  # read by the server processes too
    rows = args.rows.split(",")
    sizes = parse_sizes(args.sizes)
    scenarios = args.scenarios.split(",")
    samples: Dict[Tuple[str, str, int], List[float]] = {}
    for rep in range(args.reps):
        for scenario in scenarios:
            for size in sizes:
                for i in range(len(rows)):
                    row = rows[(i + rep) % len(rows)]  # rotate the order per rep
                    samples.setdefault((row, scenario, size), []).append(
                        measure(row, scenario, size, args.duration, not args.no_pin, max(1, args.distinct)))
    cols = [(s, z) for s in scenarios for z in sizes]
    print("\nmsgs/s (median of %d, %d distinct payload(s)); in parentheses: ratio to the websockets row of the "
          "same compression mode\n" % (args.reps, max(1, args.distinct)))
    print("| row | " + " | ".join(f"{s} {z // 1024} KiB" for s, z in cols) + " |")
    print("|---|" + "---:|" * len(cols))
    for row in rows:
        cells = []
        for s, z in cols:
            med = statistics.median(samples[(row, s, z)])
            peer = "websockets " + row.split()[1]
            ratio = ""
            if row.startswith("gorillaws") and (peer, s, z) in samples:
                ratio = f" ({med / statistics.median(samples[(peer, s, z)]):.2f}x)"
            cells.append(f"{med:,.0f}{ratio}")
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        serve(sys.argv[2], sys.argv[3] == "sink")
    else:
        main(sys.argv[1:])
