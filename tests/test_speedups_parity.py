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


# ----------------------------------------------------------------------
# One-frame fast path: frames.parse_frame / encode_frame, C and pure twins
# ----------------------------------------------------------------------

from typing import Iterator, List, Optional, Tuple  # noqa: E402

from helpers import encode_frame as hand_frame  # noqa: E402

from gorillaws import frames  # noqa: E402

try:
    c_parse_frame: Optional[Callable[..., Any]] = _speedups.parse_frame
    c_encode_frame: Optional[Callable[..., bytes]] = _speedups.encode_frame
except NameError:  # no _speedups at all
    c_parse_frame = c_encode_frame = None

KEY = b"\x5a\xa5\x0f\xf0"
TEXT_OK = "aé中😀".encode()
TEXT_CASES = {
    "ascii": b"hello",
    "multibyte": TEXT_OK * 3,
    "bad byte": b"ab\xffcd",
    "surrogate": b"a\xed\xa0\x80",
    "cut character": TEXT_OK[:-1],
    "overlong": b"\xc0\xaf",
}


class Case:
    """A frame with what the fast path should make of it when it is all there."""

    def __init__(self, name: str, frame: bytes, accept: bool, opcode: int, payload: bytes, masked: bool) -> None:
        self.name, self.frame, self.accept = name, frame, accept
        self.opcode, self.payload, self.masked = opcode, payload, masked


def frame_cases() -> Iterator[Case]:
    for key in (None, KEY):
        masked = key is not None
        for n in (0, 1, 125, 126, 127, 65535, 65536):
            payload = bytes(range(256)) * (n // 256) + bytes(range(n % 256))
            yield Case(f"binary {n}", hand_frame(2, payload, key=key), True, 2, payload, masked)
            for form in (16, 64):
                if form == 16 and n > 0xFFFF:
                    continue
                minimal = 7 if n < 126 else 16 if n <= 0xFFFF else 64
                if form != minimal:
                    frame = hand_frame(2, payload, key=key, length_form=form)
                    yield Case(f"binary {n} non-minimal {form}", frame, False, 2, payload, masked)
        for name, text in TEXT_CASES.items():
            ok = name in ("ascii", "multibyte")
            yield Case(f"text {name}", hand_frame(1, text, key=key), ok, 1, text, masked)
        for opcode in (0, 3, 7, 8, 9, 10, 11, 15):
            yield Case(f"opcode {opcode}", hand_frame(opcode, b"ab", key=key), False, opcode, b"ab", masked)
        yield Case("not final", hand_frame(2, b"ab", fin=False, key=key), False, 2, b"ab", masked)
        for rsv in (0x40, 0x20, 0x10):
            yield Case(f"rsv {rsv:#x}", hand_frame(2, b"ab", rsv=rsv, key=key), False, 2, b"ab", masked)
        yield Case("64-bit top bit", hand_frame(2, b"", key=key, length=(1 << 63) | 70000), False, 2, b"", masked)
        yield Case("control too long", hand_frame(9, b"p" * 126, key=key), False, 9, b"", masked)


CASES = list(frame_cases())


def header_len(case: Case) -> int:
    n = len(case.frame) - len(case.payload)
    return n if n >= 2 else 2


def expected(case: Case, avail: int, is_server: bool, limit: int) -> Any:
    """What parse_frame must return, worked out from the case (not from either twin)."""
    if not case.accept or case.masked != is_server:
        return None
    hs = header_len(case)
    if avail < hs or 0 < limit < len(case.payload):
        return None
    if avail < len(case.frame):
        return len(case.frame) if case.opcode == 2 else None
    return (case.opcode, case.payload, len(case.frame))


def cuts(case: Case) -> List[int]:
    """Every length of a short frame; the edges of a long one."""
    total = len(case.frame)
    if total <= 160:
        return list(range(total + 1))
    hs = header_len(case)
    return sorted({0, 1, 2, 3, hs - 1, hs, hs + 1, total - 1, total})


def both_parse(buf: Any, pos: int, end: int, is_server: bool, limit: int) -> Any:
    pure = frames.parse_frame_python(buf, pos, end, is_server, limit)
    if c_parse_frame is not None:
        assert c_parse_frame(buf, pos, end, is_server, limit) == pure
    return pure


@pytest.mark.parametrize("case", CASES, ids=[c.name + (" masked" if c.masked else "") for c in CASES])
@pytest.mark.parametrize("is_server", [True, False], ids=["server", "client"])
def test_parse_frame_twins_agree(case: Case, is_server: bool) -> None:
    """C and pure give the same answer for valid and invalid frames, cut at every boundary."""
    n = len(case.payload)
    for limit in sorted({0, -1, n, max(n - 1, 1), 1 << 40, 1 << 70, -(1 << 70)}):
        for cut in cuts(case):
            # The frame at an offset in a bigger buffer, which also holds the
            # start of the next frame: parsing stops at ``end``.
            buf = bytearray(b"\x00\x01\x02" + case.frame[:cut] + b"\x82\x00")
            got = both_parse(buf, 3, 3 + cut, is_server, limit)
            assert got == expected(case, cut, is_server, limit), (cut, limit)


@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_parse_frame_buffer_kinds(kind: str) -> None:
    frame = hand_frame(2, b"payload", key=KEY)
    buf: Any = {"bytes": frame, "bytearray": bytearray(frame), "memoryview": memoryview(b"--" + frame)[2:]}[kind]
    assert both_parse(buf, 0, len(frame), True, 0) == (2, b"payload", len(frame))


@pytest.mark.parametrize("pos,end", [(-1, 3), (3, 2), (0, 100)])
def test_parse_frame_bad_window(pos: int, end: int) -> None:
    buf = bytearray(hand_frame(2, b"abc"))
    with pytest.raises(ValueError, match="pos and end"):
        frames.parse_frame_python(buf, pos, end, False, 0)
    if c_parse_frame is not None:
        with pytest.raises(ValueError, match="pos and end"):
            c_parse_frame(buf, pos, end, False, 0)


def both_encode(opcode: int, payload: Any, fin: bool, rsv: int, mask: Any) -> bytes:
    pure = frames.encode_frame_python(opcode, payload, fin, rsv, mask)
    if c_encode_frame is not None:
        assert c_encode_frame(opcode, payload, fin, rsv, mask) == pure
    return pure


@pytest.mark.parametrize("n", [0, 1, 125, 126, 65535, 65536, 70001])
@pytest.mark.parametrize("mask", [None, KEY, bytearray(KEY), "view"])
@pytest.mark.parametrize("kind", ["bytes", "bytearray", "memoryview"])
def test_encode_frame_twins_agree(n: int, mask: Any, kind: str) -> None:
    """Every length form, masked or not, from any buffer: C, pure and the hand-made frame agree."""
    raw = os.urandom(n)
    payload: Any = {"bytes": raw, "bytearray": bytearray(raw), "memoryview": memoryview(b"xy" + raw)[2:]}[kind]
    if mask == "view":
        mask = memoryview(b"ab" + KEY)[2:]
    for opcode, fin, rsv in ((2, True, 0), (1, False, 0x40), (0, True, 0x30), (9, True, 0)):
        want = hand_frame(opcode, raw, fin=fin, rsv=rsv, key=None if mask is None else bytes(mask))
        assert both_encode(opcode, payload, fin, rsv, mask) == want


@pytest.mark.parametrize("args", [(2, b"x", True, 0, b"abc"), (2, b"x", True, 0, b"abcde"), (256, b"", False, 0, None),
                                  (2, b"", True, 0x100, None), (-1, b"", False, 0, None),
                                  (1 << 70, b"", True, 0, None), (2, b"", True, -(1 << 70), None),
                                  (256, b"", True, 0, b"abc")])  # both wrong: the mask is reported
def test_encode_frame_errors_agree(args: Tuple[Any, ...]) -> None:
    with pytest.raises(ValueError) as pure:
        frames.encode_frame_python(*args)
    if c_encode_frame is not None:
        with pytest.raises(ValueError) as c:
            c_encode_frame(*args)
        assert str(c.value) == str(pure.value)


def test_frames_module_picks_its_twins_as_mask_does() -> None:
    """C when built and not disabled (GORILLAWS_NO_SPEEDUPS), else pure; the same choice as gorillaws.mask."""
    assert frames.HAVE_SPEEDUPS == mask_mod.HAVE_SPEEDUPS
    if frames.HAVE_SPEEDUPS:
        assert frames.parse_frame is c_parse_frame and frames.encode_frame is c_encode_frame
    else:
        assert frames.parse_frame is frames.parse_frame_python
        assert frames.encode_frame is frames.encode_frame_python
