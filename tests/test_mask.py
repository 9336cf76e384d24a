"""Tests for gorillaws.mask: the C speedup and the pure-Python fallback.

Both implementations run in this process, side by side, on the same inputs.
The C one is taken from ``gorillaws._speedups`` directly, so it is tested even
when ``GORILLAWS_NO_SPEEDUPS`` keeps ``gorillaws.mask`` on pure Python.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
from typing import Any, Callable, List, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorillaws import mask as mask_mod
from gorillaws.mask import apply_mask_inplace_python, apply_mask_python

speedups: Optional[Any]
try:
    from gorillaws import _speedups as speedups
except ImportError:  # not built: only the pure path is tested
    speedups = None

NO_C = pytest.mark.skipif(speedups is None, reason="gorillaws._speedups is not built")

MaskFn = Callable[..., bytes]
InplaceFn = Callable[..., None]


def _c_mask(data: Any, key: Any, offset: int = 0) -> bytes:
    assert speedups is not None
    result: bytes = speedups.apply_mask(data, key, offset)
    return result


def _c_mask_into(buf: Any, key: Any, offset: int = 0) -> None:
    assert speedups is not None
    speedups.apply_mask_into(buf, key, offset)


MASKS = [
    pytest.param(apply_mask_python, id="python"),
    pytest.param(_c_mask, id="c", marks=NO_C),
]
INPLACE = [
    pytest.param(apply_mask_inplace_python, id="python"),
    pytest.param(_c_mask_into, id="c", marks=NO_C),
]


def reference_mask(data: bytes, key: bytes, offset: int = 0) -> bytes:
    """The definition from RFC 6455 5.3, byte by byte."""
    return bytes(b ^ key[(offset + i) % 4] for i, b in enumerate(data))


def test_speedups_built() -> None:
    """The C speedup must be built in CI (unless explicitly disabled)."""
    if speedups is None:
        if os.environ.get("CI") == "true" and not os.environ.get("GORILLAWS_NO_SPEEDUPS"):
            pytest.fail("gorillaws._speedups was not built (needs a C compiler and Python headers)")
        pytest.skip("gorillaws._speedups is not built; pure Python only")
    assert mask_mod.HAVE_SPEEDUPS is (not os.environ.get("GORILLAWS_NO_SPEEDUPS"))


@pytest.mark.parametrize("fn", MASKS)
def test_rfc_example(fn: MaskFn) -> None:
    # RFC 6455 section 5.7: "Hello" masked with key 37 fa 21 3d.
    assert fn(b"Hello", bytes.fromhex("37fa213d")) == bytes.fromhex("7f9f4d5158")


@pytest.mark.parametrize("fn", MASKS)
@pytest.mark.parametrize("n", [0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 127, 200])
@pytest.mark.parametrize("offset", [0, 1, 2, 3, 5, -1, -6, 2**70 + 3])
def test_matches_reference(fn: MaskFn, n: int, offset: int) -> None:
    rng = random.Random(n * 131 + offset % 97)
    data = bytes(rng.getrandbits(8) for _ in range(n))
    key = bytes(rng.getrandbits(8) for _ in range(4))
    out = fn(data, key, offset)
    assert type(out) is bytes
    assert out == reference_mask(data, key, offset % 4)


@pytest.mark.parametrize("fn", MASKS)
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview", "unaligned-slice", "array"])
def test_buffer_types(fn: MaskFn, kind: str) -> None:
    import array

    raw = bytes(range(256)) * 5
    key_b = b"\x01\x80\xfe\x7f"
    data: Any
    if kind == "bytes":
        data, expect_src = raw, raw
    elif kind == "bytearray":
        data, expect_src = bytearray(raw), raw
    elif kind == "memoryview":
        data, expect_src = memoryview(raw), raw
    elif kind == "unaligned-slice":
        data, expect_src = memoryview(raw)[3:1001], raw[3:1001]
    else:
        data, expect_src = array.array("B", raw), raw
    assert fn(data, key_b, 1) == reference_mask(expect_src, key_b, 1)
    # The mask may be any 4-byte buffer too.
    assert fn(data, bytearray(key_b), 1) == fn(data, memoryview(key_b), 1) == fn(data, key_b, 1)


@pytest.mark.parametrize("fn", MASKS)
@pytest.mark.parametrize("key", [b"", b"abc", b"abcde", b"\x00" * 8])
def test_bad_mask_length(fn: MaskFn, key: bytes) -> None:
    with pytest.raises(ValueError):
        fn(b"payload", key)
    with pytest.raises(ValueError):
        fn(b"", key)


@pytest.mark.parametrize("fn", MASKS)
def test_not_a_buffer(fn: MaskFn) -> None:
    with pytest.raises(TypeError):
        fn("text", b"abcd")


@pytest.mark.parametrize("fn", MASKS)
def test_large_inputs(fn: MaskFn) -> None:
    """Sizes around and above the C threshold where the GIL is released."""
    rng = random.Random(7)
    key = b"\x9a\x11\x00\xff"
    for n in (65535, 65536, 65537, 1 << 20):
        data = rng.randbytes(n) if hasattr(rng, "randbytes") else os.urandom(n)
        out = fn(data, key, n)
        assert len(out) == n
        assert out[:50] == reference_mask(data[:50], key, n)
        assert out[-50:] == reference_mask(data[-50:], key, n + n - 50)
        assert fn(out, key, n) == data


@NO_C
def test_c_equals_python_big() -> None:
    data = os.urandom((1 << 20) + 13)
    for offset in range(4):
        assert _c_mask(data, b"\x01\x02\x03\x04", offset) == apply_mask_python(
            data, b"\x01\x02\x03\x04", offset
        )


@NO_C
def test_c_keywords_and_arity() -> None:
    assert speedups is not None
    am = speedups.apply_mask
    assert am(data=b"abcd", mask=b"\x01\x01\x01\x01", offset=1) == b"`cbe"
    assert am(b"abcd", b"\x01\x01\x01\x01") == am(b"abcd", mask=b"\x01\x01\x01\x01")
    with pytest.raises(TypeError):
        am(b"abcd")
    with pytest.raises(TypeError):
        am(b"abcd", b"1234", 0, 1)
    with pytest.raises(TypeError):
        am(b"abcd", b"1234", bogus=1)
    with pytest.raises(TypeError):
        am(b"abcd", b"1234", mask=b"1234")
    with pytest.raises(TypeError):
        am(b"abcd", b"1234", "1")
    with pytest.raises(TypeError):
        am(b"abcd", b"1234", 1.0)


@NO_C
def test_c_releases_gil_safely() -> None:
    """Several threads masking large buffers at once all get the right bytes."""
    data = os.urandom(1 << 20)
    expect = apply_mask_python(data, b"wxyz", 2)
    results: List[bytes] = []
    lock = threading.Lock()

    def work() -> None:
        out = _c_mask(data, b"wxyz", 2)
        with lock:
            results.append(out)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
        assert not t.is_alive()
    assert results == [expect] * 4


# -- in place -----------------------------------------------------------------


@pytest.mark.parametrize("fn", INPLACE)
@pytest.mark.parametrize("n", [0, 1, 5, 16, 33, 70000])
def test_inplace_bytearray(fn: InplaceFn, n: int) -> None:
    data = bytes((i * 7 + 3) & 0xFF for i in range(n))
    buf = bytearray(data)
    fn(buf, b"\x10\x20\x30\x40", 3)
    assert bytes(buf) == reference_mask(data, b"\x10\x20\x30\x40", 3)


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_memoryview_slice(fn: InplaceFn) -> None:
    """Only the viewed part of the receive buffer changes."""
    buf = bytearray(b"HEADERpayload-bytes-hereTAIL")
    fn(memoryview(buf)[6:24], b"\x01\x02\x03\x04")
    assert buf[:6] == b"HEADER"
    assert buf[24:] == b"TAIL"
    assert bytes(buf[6:24]) == reference_mask(b"payload-bytes-here", b"\x01\x02\x03\x04")


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_key_inside_buffer(fn: InplaceFn) -> None:
    """The key may be a view into the buffer being unmasked, even overlapping it."""
    frame = bytearray(b"\x81\x85\x37\xfa\x21\x3d" + bytes.fromhex("7f9f4d5158"))
    view = memoryview(frame)
    fn(view[6:], view[2:6])
    assert frame[6:] == b"Hello"
    whole = bytearray(b"abcdefghij")
    fn(whole, memoryview(whole)[:4], 1)
    assert bytes(whole) == reference_mask(b"abcdefghij", b"abcd", 1)


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_read_only(fn: InplaceFn) -> None:
    for ro in (b"abcdef", memoryview(bytearray(b"abcdef")).toreadonly()):
        with pytest.raises(TypeError):
            fn(ro, b"1234")


@pytest.mark.parametrize("fn", INPLACE)
def test_inplace_bad_mask(fn: InplaceFn) -> None:
    buf = bytearray(b"abcdef")
    with pytest.raises(ValueError):
        fn(buf, b"123")
    assert buf == b"abcdef"


def test_module_functions_agree() -> None:
    """The exported names (whichever implementation they are) behave as the pure ones."""
    data = os.urandom(1000)
    assert mask_mod.apply_mask(data, b"abcd", 6) == apply_mask_python(data, b"abcd", 6)
    buf = bytearray(data)
    mask_mod.apply_mask_inplace(buf, b"abcd", 6)
    assert bytes(buf) == apply_mask_python(data, b"abcd", 6)


# -- property tests ---------------------------------------------------------------

keys = st.binary(min_size=4, max_size=4)
offsets = st.integers(min_value=-(2**40), max_value=2**70)


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=600), key=keys, offset=offsets)
def test_hypothesis_c_equals_python(data: bytes, key: bytes, offset: int) -> None:
    expect = apply_mask_python(data, key, offset)
    assert expect == reference_mask(data, key, offset % 4)
    if speedups is not None:
        assert _c_mask(data, key, offset) == expect
        buf = bytearray(data)
        _c_mask_into(buf, key, offset)
        assert bytes(buf) == expect
    buf = bytearray(data)
    apply_mask_inplace_python(buf, key, offset)
    assert bytes(buf) == expect


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=400),
    key=keys,
    start=st.integers(min_value=0, max_value=3),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_hypothesis_piecewise(data: bytes, key: bytes, start: int, cuts: List[int]) -> None:
    """Masking the pieces with offset = position gives the whole, for both paths."""
    expect = reference_mask(data, key, start)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    fns: List[MaskFn] = [apply_mask_python] + ([_c_mask] if speedups is not None else [])
    for fn in fns:
        out = b"".join(fn(data[a:b], key, start + a) for a, b in zip(bounds, bounds[1:]))
        assert out == expect
        buf = bytearray(data)
        view = memoryview(buf)
        for a, b in zip(bounds, bounds[1:]):
            (_c_mask_into if fn is _c_mask else apply_mask_inplace_python)(view[a:b], key, start + a)
        assert bytes(buf) == expect


def test_env_var_disables_speedups() -> None:
    code = (
        "import gorillaws.mask as m, gorillaws.utf8 as u;"
        "print(m.HAVE_SPEEDUPS, u.HAVE_SPEEDUPS, m.apply_mask is m.apply_mask_python)"
    )
    env = dict(os.environ, GORILLAWS_NO_SPEEDUPS="1")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert out.stdout.split() == ["False", "False", "True"]
