#!/usr/bin/env python3
"""Compression defaults by measurement: bytes on the wire and CPU per message.

For JSON-like text and for binary records, at each window size (8..15 bits)
and in both context modes, compresses the same message sequence with
gorillaws's codec (``PerMessageDeflate``) at every level (1..9) and memLevel
(1..9), and with websockets' settings (zlib's default level 6, memLevel 5,
a compressor per message without context takeover), and reports:

* bytes: total compressed payload bytes (deterministic);
* CPU: ``time.thread_time()`` per message, median of ``--reps`` runs.

The table lists, per window and payload: websockets, our default, and the
cheapest (CPU) level/memLevel that sends no more bytes than websockets.

Usage::

    python3 bench/deflate_defaults.py              # the table (markdown)
    python3 bench/deflate_defaults.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import sys
import time
import zlib
from typing import Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from gorillaws import deflate  # noqa: E402

TAIL = b"\x00\x00\xff\xff"


def json_messages(n: int, seed: int = 1) -> List[bytes]:
    """Chat/API-like JSON objects, 100 B to ~2 KB, shared keys and vocabulary."""
    rnd = random.Random(seed)
    words = "alpha beta gamma delta user room message hello world price time status ok error pending".split()
    out = []
    for i in range(n):
        obj = {
            "type": rnd.choice(["message", "presence", "update", "ack"]),
            "id": 100000 + i,
            "room": f"room-{rnd.randrange(20)}",
            "user": {"name": f"user{rnd.randrange(500)}", "online": rnd.random() < 0.8},
            "ts": 1764480000.0 + i * 0.37,
            "text": " ".join(rnd.choice(words) for _ in range(rnd.randrange(3, 40))),
            "items": [{"sku": rnd.randrange(10000), "price": round(rnd.random() * 100, 2)} for _ in range(rnd.randrange(0, 25))],
        }
        out.append(json.dumps(obj).encode())
    return out


def binary_messages(n: int, seed: int = 2) -> List[bytes]:
    """Sensor-like binary records: a fixed header, slowly varying values, some noise (100 B to ~4 KB)."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        k = rnd.randrange(4, 200)
        base = rnd.randrange(1000)
        recs = b"".join(struct.pack("<HIf", j, base + j + rnd.randrange(4), 20.0 + rnd.random()) for j in range(k))
        out.append(b"SENS\x01\x00" + struct.pack("<IQ", k, i) + recs + os.urandom(rnd.randrange(0, 16)))
    return out


def ours(window: int, context: bool, level: int, mem: int) -> Callable[[bytes], bytes]:
    mode = deflate.COMPRESSION_CONTEXT_TAKEOVER if context else deflate.COMPRESSION_NO_CONTEXT_TAKEOVER
    params = deflate.DeflateParams(server_no_context_takeover=not context, server_max_window_bits=window)
    codec = deflate.PerMessageDeflate(params, is_server=True, mode=mode, level=level, mem_level=mem)
    return codec.compress_message


def websockets_like(window: int, context: bool, level: int = -1, mem: int = 5) -> Callable[[bytes], bytes]:
    """What websockets' permessage-deflate does (level: zlib's default, i.e. 6; memLevel 5)."""
    wbits = -max(9, window)
    if context:
        c = zlib.compressobj(level, zlib.DEFLATED, wbits, mem)

        def one(data: bytes) -> bytes:
            out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
            return out[:-4] if out.endswith(TAIL) else out

        return one

    def fresh(data: bytes) -> bytes:
        c = zlib.compressobj(level, zlib.DEFLATED, wbits, mem)
        out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
        return out[:-4] if out.endswith(TAIL) else out

    return fresh


def measure(make: Callable[[], Callable[[bytes], bytes]], msgs: List[bytes], reps: int) -> Tuple[int, float]:
    """(total compressed bytes, median CPU µs per message)."""
    times = []
    total = 0
    for _ in range(reps):
        f = make()
        t0 = time.thread_time()
        total = sum(len(f(m)) for m in msgs)
        times.append((time.thread_time() - t0) / len(msgs) * 1e6)
    return total, statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--messages", type=int, default=200)
    p.add_argument("--reps", type=int, default=5)
    p.add_argument("--windows", default="8,9,10,11,12,13,14,15")
    p.add_argument("--levels", default="1,2,3,4,5,6,7,8,9")
    p.add_argument("--mems", default="1,2,3,4,5,6,7,8,9")
    p.add_argument("--json", help="write every measurement here")
    a = p.parse_args()
    payloads = {"json": json_messages(a.messages), "binary": binary_messages(a.messages)}
    windows = [int(x) for x in a.windows.split(",")]
    levels = [int(x) for x in a.levels.split(",")]
    mems = [int(x) for x in a.mems.split(",")]
    rows: List[Dict[str, object]] = []
    for kind, msgs in payloads.items():
        raw = sum(map(len, msgs))
        for context in (True, False):
            for w in windows:
                wb, wc = measure(lambda: websockets_like(w, context), msgs, a.reps)
                grid = {}
                for lv in levels:
                    for m in mems:
                        grid[(lv, m)] = measure(lambda: ours(w, context, lv, m), msgs, a.reps)
                rows.append({"payload": kind, "context": context, "window": w, "raw": raw, "websockets": (wb, wc),
                             "grid": {f"{lv},{m}": v for (lv, m), v in grid.items()}})
                print(f"{kind} {'context' if context else 'no-context'} w={w} done", file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f)
    report(rows)


def report(rows: List[Dict[str, object]]) -> None:
    default = f"{deflate.DEFAULT_COMPRESSION_LEVEL},{deflate.DEFAULT_MEM_LEVEL}"
    print("| payload | mode | window | websockets (6,5): bytes, µs/msg | ours now (" + default
          + "): bytes, µs/msg | cheapest ours with bytes <= websockets: level,mem: bytes, µs/msg |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        wb, wc = r["websockets"]  # type: ignore[misc]
        grid: Dict[str, Tuple[int, float]] = r["grid"]  # type: ignore[assignment]
        nb, nc = grid[default]
        ok = [(c, b, k) for k, (b, c) in grid.items() if b <= wb]
        best = min(ok)[2] if ok else None
        best_txt = f"{best}: {grid[best][0]:,}, {grid[best][1]:.1f}" if best else "none"
        mode = "context" if r["context"] else "no-context"
        print(f"| {r['payload']} | {mode} | {r['window']} | {wb:,}, {wc:.1f} | {nb:,}, {nc:.1f} | {best_txt} |")


if __name__ == "__main__":
    main()
