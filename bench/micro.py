"""Micro-benchmarks of gorillaws's pure protocol layer, for spotting regressions.

Run from the project root::

    python bench/micro.py              # everything, about 15 s
    python bench/micro.py mask utf8    # only rows whose name contains a word

Prints one row per operation: operations per second and, for operations on a
payload, MB/s (1 MB = 10**6 bytes of payload).  Each row is timed in batches
of at least ~50 ms; the best of three batches is reported, so numbers are an
upper bound for this machine at this moment.  Nothing here asserts on speed:
compare against a previous run on the same machine.

Rows: frame header encode/parse (gorillaws.frames), masking with the C
speedup and in pure Python at 16 B .. 1 MiB (gorillaws.mask), UTF-8
validation both ways (gorillaws.utf8), and permessage-deflate compress and
decompress (gorillaws.deflate) when that module imports.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any, Callable, List, Optional, Tuple

# Run against the source tree this file lives in, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gorillaws import frames, mask, utf8  # noqa: E402

speedups: Optional[Any]
try:
    from gorillaws import _speedups as speedups
except ImportError:
    speedups = None

BATCH_SECONDS = 0.05
REPEATS = 3

Row = Tuple[str, float, Optional[float]]


def measure(fn: Callable[[], object]) -> float:
    """Seconds per call of ``fn``: best of REPEATS batches of >= BATCH_SECONDS."""
    timer = time.perf_counter
    n = 1
    while True:  # calibrate the batch size
        t0 = timer()
        for _ in range(n):
            fn()
        elapsed = timer() - t0
        if elapsed >= BATCH_SECONDS:
            break
        n = n * 10 if elapsed < BATCH_SECONDS / 10 else n * 2
    best = elapsed / n
    for _ in range(REPEATS - 1):
        t0 = timer()
        for _ in range(n):
            fn()
        best = min(best, (timer() - t0) / n)
    return best


def size_label(n: int) -> str:
    if n >= 1 << 20:
        return f"{n >> 20} MiB"
    if n >= 1 << 10:
        return f"{n >> 10} KiB"
    return f"{n} B"


class Table:
    def __init__(self, filters: List[str]) -> None:
        self.filters = [f.lower() for f in filters]
        self.rows: List[Row] = []

    def wanted(self, name: str) -> bool:
        return not self.filters or any(f in name.lower() for f in self.filters)

    def add(self, name: str, fn: Callable[[], object], nbytes: Optional[int] = None) -> None:
        if not self.wanted(name):
            return
        per_call = measure(fn)
        mbps = nbytes / per_call / 1e6 if nbytes else None
        row = (name, 1.0 / per_call, mbps)
        self.rows.append(row)
        print(self.format(row), flush=True)

    def note(self, text: str) -> None:
        print(f"  ({text})", flush=True)

    @staticmethod
    def header() -> str:
        return f"{'operation':<46} {'ops/s':>14} {'MB/s':>10}\n{'-' * 46} {'-' * 14} {'-' * 10}"

    @staticmethod
    def format(row: Row) -> str:
        name, ops, mbps = row
        mb = f"{mbps:10.1f}" if mbps is not None else f"{'':>10}"
        return f"{name:<46} {ops:14,.0f} {mb}"


def bench_frames(t: Table) -> None:
    key = b"\x01\x02\x03\x04"
    encode = frames.encode_header
    parse = frames.parse_header
    t.add("frames.encode_header 16 B, server", lambda: encode(frames.BINARY_MESSAGE, 16))
    t.add("frames.encode_header 16 B, client (masked)", lambda: encode(frames.BINARY_MESSAGE, 16, mask=key))
    t.add("frames.encode_header 1 MiB, client (masked)", lambda: encode(frames.BINARY_MESSAGE, 1 << 20, mask=key))
    small = encode(frames.TEXT_MESSAGE, 16) + b"x" * 16
    mid = encode(frames.BINARY_MESSAGE, 1000, mask=key)
    big = bytearray(encode(frames.BINARY_MESSAGE, 1 << 20, mask=key))
    t.add("frames.parse_header 2-byte header", lambda: parse(small))
    t.add("frames.parse_header 8-byte masked header", lambda: parse(mid))
    t.add("frames.parse_header 14-byte masked (bytearray)", lambda: parse(big))
    # The one-frame fast path: a whole frame per call (C twin when built).
    which = "C" if frames.HAVE_SPEEDUPS else "pure"
    payload = b"x" * 16
    t.add(f"frames.encode_frame 16 B, server ({which})", lambda: frames.encode_frame(2, payload, True, 0, None))
    t.add(f"frames.encode_frame 16 B, client ({which})", lambda: frames.encode_frame(2, payload, True, 0, key))
    for n, name in ((16, "16 B"), (1000, "1000 B")):
        frame = bytearray(frames.encode_frame_python(2, b"y" * n, True, 0, key))
        end = len(frame)
        t.add(f"frames.parse_frame {name} masked ({which})",
              lambda frame=frame, end=end: frames.parse_frame(frame, 0, end, True, 0))  # type: ignore[misc]


def bench_mask(t: Table) -> None:
    key = b"\x37\xfa\x21\x3d"
    for n in (16, 1 << 10, 1 << 16, 1 << 20):
        data = os.urandom(n)
        buf = bytearray(data)
        label = size_label(n)
        if speedups is not None:
            c_mask, c_into = speedups.apply_mask, speedups.apply_mask_into
            t.add(f"mask C apply_mask {label}", lambda: c_mask(data, key, 1), n)
            t.add(f"mask C apply_mask_into {label}", lambda: c_into(buf, key, 1), n)
        py_mask, py_into = mask.apply_mask_python, mask.apply_mask_inplace_python
        t.add(f"mask pure apply_mask {label}", lambda: py_mask(data, key, 1), n)
        t.add(f"mask pure apply_mask_inplace {label}", lambda: py_into(buf, key, 1), n)
    if speedups is None and t.wanted("mask"):
        t.note("C speedup not built: no C mask rows")


def bench_utf8(t: Table) -> None:
    ascii_small = b"hello, websocket"
    ascii_big = (b"The quick brown fox jumps over the lazy dog. " * 1500)[: 1 << 16]
    mixed = ("na\u00efve caf\u00e9 \u4e2d\u6587 \U0001f600 " * 4000).encode()[: 1 << 16]
    while True:  # cut on a character boundary
        try:
            mixed.decode()
            break
        except UnicodeDecodeError:
            mixed = mixed[:-1]
    impls = [("C", True)] if utf8.HAVE_SPEEDUPS else []
    impls.append(("pure", False))
    for label, on in impls:
        v = utf8.Utf8Validator(speedups=on)
        for name, data in (("16 B ascii", ascii_small), ("64 KiB ascii", ascii_big), ("64 KiB mixed", mixed)):
            t.add(f"utf8 {label} Utf8Validator.feed {name}", lambda: v.feed(data, True), len(data))
    t.add("utf8 is_valid_utf8 64 KiB mixed", lambda: utf8.is_valid_utf8(mixed), len(mixed))
    if not utf8.HAVE_SPEEDUPS and t.wanted("utf8"):
        t.note("C speedup not built or disabled: no C UTF-8 rows")


def bench_deflate(t: Table) -> None:
    try:
        from gorillaws import deflate
    except ImportError as exc:
        if t.wanted("deflate"):
            t.note(f"gorillaws.deflate does not import ({exc}): no deflate rows")
        return
    text = b"".join(
        b'{"seq": %d, "user": "someone", "event": "update", "value": %d}\n' % (i, i * 7919 % 10007)
        for i in range(1200)
    )
    text = text[: 1 << 16]
    small = text[:200]
    fresh = deflate.DeflateParams(server_no_context_takeover=True, client_no_context_takeover=True)
    sender = deflate.PerMessageDeflate(fresh, True, deflate.COMPRESSION_NO_CONTEXT_TAKEOVER)
    keeper = deflate.PerMessageDeflate(deflate.DeflateParams(), True, deflate.COMPRESSION_CONTEXT_TAKEOVER)
    receiver = deflate.PerMessageDeflate(fresh, False, deflate.COMPRESSION_NO_CONTEXT_TAKEOVER)
    for label, data in (("200 B json", small), ("64 KiB json", text)):
        payload = sender.compress_message(data)

        def inflate(payload: bytes = payload) -> bytes:
            receiver.start_decompress()
            out = receiver.decompress(payload, -1)
            return out + receiver.finish_decompress(-1)

        assert inflate() == data
        t.add(f"deflate compress no-takeover {label}", lambda: sender.compress_message(data), len(data))
        t.add(f"deflate compress takeover {label}", lambda: keeper.compress_message(data), len(data))
        t.add(f"deflate decompress {label} ({len(payload)} B in)", inflate, len(data))


def main(argv: List[str]) -> int:
    filters = [a for a in argv if not a.startswith("-")]
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    print(f"gorillaws micro-benchmarks: Python {platform.python_version()} on {platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(f"C speedups: built={speedups is not None}, used by mask={mask.HAVE_SPEEDUPS}, "
          f"by utf8={utf8.HAVE_SPEEDUPS}, by frames={frames.HAVE_SPEEDUPS}")
    print(Table.header())
    t = Table(filters)
    start = time.perf_counter()
    bench_frames(t)
    bench_mask(t)
    bench_utf8(t)
    bench_deflate(t)
    print(f"{len(t.rows)} rows in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
