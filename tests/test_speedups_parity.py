"""The pure-Python paths that work in pieces give the C speedup's bytes, with bounded memory.

The pure mask works 1 MiB at a time; here the piece size is made tiny so
that every piece boundary, key position and buffer type is crossed with
small inputs, and the results are compared with the C speedup (or, when it
is not built, with RFC 6455's byte-by-byte definition).
"""

from __future__ import annotations

import os
import random
import tracemalloc
from typing import Any, Callable

import pytest

from gorillaws import mask as mask_mod

try:
    from gorillaws import _speedups

    c_mask: Callable[..., bytes] = _speedups.apply_mask
except ImportError:  # pure Python only: compare with the definition

    def c_mask(data: Any, key: Any, offset: int = 0) -> bytes:
        return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(bytes(data)))


SIZES = [0, 1, 3, 63, 64, 65, 127, 128, 129, 255, 1000]


@pytest.fixture
def small_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mask_mod, "_CHUNK", 64)


@pytest.mark.usefixtures("small_pieces")
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 7])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_pieces_match_c(n: int, offset: int, kind: str) -> None:
    rnd = random.Random(n * 10 + offset)
    raw = bytes(rnd.randrange(256) for _ in range(n + 5))
    key = bytes(rnd.randrange(256) for _ in range(4))
    data: Any = {"bytes": raw[:n], "bytearray": bytearray(raw[:n]), "memoryview": memoryview(raw)[5:]}[kind]
    want = c_mask(raw[5:] if kind == "memoryview" else raw[:n], key, offset)
    assert mask_mod.apply_mask_python(data, key, offset) == want
    buf = bytearray(raw)
    mask_mod.apply_mask_inplace_python(memoryview(buf)[5:], key, offset)
    assert bytes(buf[5:]) == c_mask(raw[5:], key, offset) and buf[:5] == raw[:5]


@pytest.mark.usefixtures("small_pieces")
def test_pieces_key_inside_buffer() -> None:
    # The key is read once, before the first piece overwrites it.
    buf = bytearray(os.urandom(300))
    orig = bytes(buf)
    mask_mod.apply_mask_inplace_python(buf, memoryview(buf)[:4], 1)
    assert bytes(buf) == c_mask(orig, orig[:4], 1)


def test_pieces_read_only_untouched() -> None:
    with pytest.raises(TypeError):
        mask_mod.apply_mask_inplace_python(memoryview(b"abcdefgh"), b"\x01\x02\x03\x04")


def test_pure_mask_memory_is_bounded() -> None:
    n = 8 << 20
    data = os.urandom(n)
    key = b"\x11\x22\x33\x44"
    tracemalloc.start()
    try:
        out = mask_mod.apply_mask_python(data, key, 2)
        peak = tracemalloc.get_traced_memory()[1]
        assert out == c_mask(data, key, 2)
        del out
        # The result twice (bytearray, then bytes) and a few 1 MiB pieces;
        # whole-payload big integers took over 4x.
        assert peak < 2 * n + (6 << 20)
        buf = bytearray(data)
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        mask_mod.apply_mask_inplace_python(buf, key, 2)
        assert tracemalloc.get_traced_memory()[1] - base < 6 << 20
        assert buf == c_mask(data, key, 2)
    finally:
        tracemalloc.stop()
