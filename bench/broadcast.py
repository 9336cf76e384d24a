#!/usr/bin/env python3
"""Broadcast: one message to N connections, PreparedMessage vs write_message.

The server (this process) upgrades N connections (``Upgrader().upgrade(sock)``)
and then, for a fixed time, sends round after round of one message to every
connection from one thread, either

* ``prepared``: ``conn.write_prepared_message(pm)`` with one
  :class:`gorillaws.PreparedMessage` per round (framed, and compressed, once
  per round and reused for every connection), or
* ``write``: ``conn.write_message(BINARY_MESSAGE, payload)`` to each.

A client process opens the N connections with ``Dialer().dial()``, then drains
the raw sockets with one ``selectors`` loop (no thread per connection) and
counts the bytes; the measurement ends when every frame sent has arrived, so
"messages delivered per second" counts delivered, not just written, messages.

Compression (``--compression``): ``off``, ``no-context`` (both ends negotiate
permessage-deflate without context takeover: a prepared message is
compressed once per round, write_message compresses per connection) or
``context`` (context takeover: each connection's compressor has its own
history, so a prepared message is compressed per connection too).  The
payload is semi-repetitive text (compresses about 3-4x).

Usage::

    python3 bench/broadcast.py                          # 1000 conns, 16 B / 1 KiB / 64 KiB, off
    python3 bench/broadcast.py --compression no-context --sizes 1k
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import gorillaws as gw  # noqa: E402
from gorillaws import deflate  # noqa: E402

MODES = {"off": deflate.COMPRESSION_DISABLED,
         "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
         "context": deflate.COMPRESSION_CONTEXT_TAKEOVER}


def make_payload(size: int, seed: int = 7) -> bytes:
    """Semi-repetitive text of ``size`` bytes (deflate gets ~3-4x out of it)."""
    rnd = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"user", b"room", b"message",
             b"hello", b"world", b"42", b"true", b"false", b"null", b"price", b"time"]
    out = bytearray()
    while len(out) < size:
        out += b'{"%s": "%s %d"} ' % (rnd.choice(words), rnd.choice(words), rnd.randrange(1000))
    return bytes(out[:size])


# ------------------------------------------------------------------ client
def count_frames(st: List[Any], data: Any) -> int:
    """Count the frames completed in ``data`` (server frames: unmasked).

    ``st`` is the socket's state: [payload bytes still to skip, partial header].
    """
    if st[1]:
        data = st[1] + bytes(data)
        st[1] = b""
    pos, end, frames, skip = 0, len(data), 0, st[0]
    while True:
        if skip:
            take = min(skip, end - pos)
            pos += take
            skip -= take
            if skip:
                break
            frames += 1
        if pos >= end:
            break
        if end - pos < 2:
            st[1] = bytes(data[pos:end])
            break
        b1 = data[pos + 1] & 0x7F
        hl = 2 if b1 < 126 else (4 if b1 == 126 else 10)
        if end - pos < hl:
            st[1] = bytes(data[pos:end])
            break
        ln = b1 if b1 < 126 else int.from_bytes(data[pos + 2 : pos + hl], "big")
        pos += hl
        if ln == 0:
            frames += 1
        skip = ln
    st[0] = skip
    return frames


def client_main(port: int, n: int, mode: str, frame_bytes: int = 0, drain_every: float = 0.0) -> None:
    """Open n connections, print READY, then count frames; "COUNT" prints the count, "CPU" this process's CPU seconds.

    ``frame_bytes`` > 0: every frame has that many bytes on the wire (one
    payload size, no compression), so frames are counted as bytes // frame_bytes
    with no parsing: the client then costs one ``recv_into`` per socket per
    drain, whatever the number of frames.  ``drain_every`` > 0: after each
    drain, wait that long so data accumulates in the sockets (fewer, larger
    reads; the kernel buffers hold far more than arrives meanwhile); up to 5
    times that long while reads bring fewer than 4 frames each (a slow
    server), so the client costs little whatever the server's pace.
    """
    dialer = gw.Dialer(compression_mode=MODES[mode])
    socks: List[socket.socket] = []
    for _ in range(n):
        conn, _resp = dialer.dial(f"ws://127.0.0.1:{port}/")
        # From here on the raw socket is read directly (the Conn is dropped).
        sock = conn.underlying_conn()
        sock.setblocking(False)
        socks.append(sock)
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ, [0, b""])
    print("READY", flush=True)
    buf = bytearray(1 << 20)  # one buffer shared by every socket
    view = memoryview(buf)
    stop = threading.Event()
    queries: "queue.SimpleQueue[str]" = queue.SimpleQueue()

    def control() -> None:
        for line in sys.stdin:
            queries.put(line.strip())
        stop.set()

    threading.Thread(target=control, daemon=True).start()
    total = 0  # frames, or bytes when frame_bytes is set
    wait = drain_every
    while not stop.is_set():
        events = sel.select(0.02)
        before = total
        for key, _ in events:
            try:
                k = key.fileobj.recv_into(buf)  # type: ignore[union-attr]
            except BlockingIOError:
                continue
            total += k if frame_bytes else count_frames(key.data, view[:k])
        if events and frame_bytes:
            few = total - before < 4 * frame_bytes * len(events)
            wait = min(wait * 2, 5 * drain_every) if few else max(wait / 2, drain_every)
        while not queries.empty():
            q = queries.get()
            if q == "COUNT":
                print(total // frame_bytes if frame_bytes else total, flush=True)
            elif q == "CPU":
                ru = resource.getrusage(resource.RUSAGE_SELF)
                print(ru.ru_utime + ru.ru_stime, flush=True)
        if events and wait:
            time.sleep(wait)
    for s in socks:
        s.close()


# ------------------------------------------------------------------ server
def run(n: int, sizes: List[int], mode: str, duration: float) -> List[Dict[str, Any]]:
    upgrader = gw.Upgrader(compression_mode=MODES[mode])
    lsock = socket.create_server(("127.0.0.1", 0), backlog=n + 16)
    port = lsock.getsockname()[1]
    client = subprocess.Popen([sys.executable, os.path.abspath(__file__), "_client", str(port),
                               str(n), mode], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    assert client.stdin is not None and client.stdout is not None
    conns = []
    for _ in range(n):
        sock, _addr = lsock.accept()
        conns.append(upgrader.upgrade(sock))
    lsock.close()
    if client.stdout.readline().strip() != "READY":
        raise RuntimeError("client failed")
    compressed = sum(1 for c in conns if c.compression is not None)
    results = []
    delivered = 0

    def wait_delivered(expected: int, deadline: float) -> None:
        while True:
            got = _client_count(client)
            if got >= expected:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"client got {got} of {expected} messages")
            time.sleep(0.005)

    for size in sizes:
        payload = make_payload(size)
        for how in ("prepared", "write"):
            _round(conns, payload, how)  # warm-up
            delivered += n
            wait_delivered(delivered, time.monotonic() + 30)
            rounds = 0
            t0 = time.perf_counter()
            end = t0 + duration
            while time.perf_counter() < end:
                _round(conns, payload, how)
                rounds += 1
            delivered += rounds * n
            wait_delivered(delivered, time.monotonic() + 60)
            dt = time.perf_counter() - t0
            results.append({"size": size, "how": how, "mode": mode, "conns": n,
                            "compressed_conns": compressed, "rounds": rounds,
                            "msgs_per_s": rounds * n / dt})
    client.stdin.close()
    client.wait(30)
    for c in conns:
        c.close_now()
    return results


def _client_count(client: Any) -> int:
    client.stdin.write("COUNT\n")
    client.stdin.flush()
    return int(client.stdout.readline())


def _round(conns: List[Any], payload: bytes, how: str) -> None:
    if how == "prepared":
        pm = gw.PreparedMessage(gw.BINARY_MESSAGE, payload)
        for c in conns:
            c.write_prepared_message(pm)
    else:
        for c in conns:
            c.write_message(gw.BINARY_MESSAGE, payload)


def parse_sizes(text: str) -> List[int]:
    out = []
    for part in text.split(","):
        part = part.strip().lower()
        mult = {"k": 1 << 10, "m": 1 << 20}.get(part[-1:], 1)
        out.append(int(part.rstrip("km")) * mult)
    return out


def main(argv: List[str]) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--sizes", default="16,1k,64k")
    ap.add_argument("--compression", default="off", help="comma list of off, no-context, context")
    ap.add_argument("--duration", type=float, default=1.0, help="seconds per case")
    args = ap.parse_args(argv)
    rows = []
    for mode in args.compression.split(","):
        rows += run(args.conns, parse_sizes(args.sizes), mode, args.duration)
    print(f"\nBroadcast to {args.conns} connections, one sending thread "
          f"({'C speedups' if gw.mask.HAVE_SPEEDUPS else 'pure Python'})\n")
    print("| compression | size | prepared msgs/s | write_message msgs/s | prepared / write |")
    print("|---|---:|---:|---:|---:|")
    by = {(r["mode"], r["size"], r["how"]): r for r in rows}
    for mode in args.compression.split(","):
        for size in parse_sizes(args.sizes):
            p, w = by[(mode, size, "prepared")], by[(mode, size, "write")]
            print(f"| {mode} | {size:,} | {p['msgs_per_s']:,.0f} | {w['msgs_per_s']:,.0f} | "
                  f"{p['msgs_per_s'] / w['msgs_per_s']:.2f}x |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_client":
        extra = (int(sys.argv[5]), float(sys.argv[6])) if len(sys.argv) > 6 else (0, 0.0)
        client_main(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], *extra)
    else:
        main(sys.argv[1:])
