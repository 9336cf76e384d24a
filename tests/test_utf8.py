"""Tests for gorillaws.utf8: the C automaton and the pure-Python validator.

Both implementations are checked against Python's own UTF-8 decoder: for every
input, the piece that raises must be the one holding the first byte that
cannot be part of valid UTF-8 (or the final piece, when the message only ends
inside a character), whatever the split.
"""

from __future__ import annotations

import itertools
import os
from typing import Any, List, Optional, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorillaws import utf8 as utf8_mod
from gorillaws.exceptions import ProtocolError
from gorillaws.utf8 import Utf8Validator, is_valid_utf8, is_valid_utf8_python

speedups: Optional[Any]
try:
    from gorillaws import _speedups as speedups
except ImportError:
    speedups = None

C_ON = utf8_mod.HAVE_SPEEDUPS
NO_C = pytest.mark.skipif(not C_ON, reason="gorillaws._speedups not built or disabled")
NO_RAW_C = pytest.mark.skipif(speedups is None, reason="gorillaws._speedups is not built")

IMPLS = [pytest.param(False, id="python"), pytest.param(True, id="c", marks=NO_C)]


def implementations() -> List[bool]:
    return [False, True] if C_ON else [False]


def first_bad(data: bytes) -> Optional[int]:
    """Index of the first byte after which ``data`` can no longer be valid UTF-8.

    Derived from Python's decoder: it reports the maximal valid prefix of a
    broken character as the error span, so the offending byte is the one
    after that span for a bad continuation, or the span's only byte for a bad
    start byte.  ``len(data)`` means "valid so far but unfinished"; None means
    valid.
    """
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason == "invalid start byte":
            return int(exc.start)
        if exc.reason == "invalid continuation byte":
            return int(exc.end)
        assert exc.reason == "unexpected end of data", exc.reason
        return len(data)
    return None


def failing_piece(speedups_on: bool, pieces: Sequence[bytes]) -> Optional[int]:
    """Feed the pieces (the last one final) and return the index of the one that raised."""
    v = Utf8Validator(speedups=speedups_on)
    for i, piece in enumerate(pieces):
        try:
            v.feed(piece, final=i == len(pieces) - 1)
        except ProtocolError as exc:
            assert exc.code == 1007
            return i
    return None


def expected_piece(data: bytes, bounds: Sequence[int]) -> Optional[int]:
    """Which piece (cut at ``bounds``) must raise for ``data``."""
    bad = first_bad(data)
    if bad is None:
        return None
    if bad == len(data):
        return len(bounds) - 2  # the final piece
    for i, (a, b) in enumerate(zip(bounds, bounds[1:])):
        if a <= bad < b:
            return i
    raise AssertionError("unreachable")


def check_all_ways(data: bytes, speedups_on: bool) -> None:
    """Whole, byte by byte, and split in two at every point."""
    n = len(data)
    cases = [[0, n], list(range(n + 1)) + [n]]  # byte by byte, then an empty final piece
    cases += [[0, k, n] for k in range(n + 1)]
    for bounds in cases:
        pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
        assert failing_piece(speedups_on, pieces) == expected_piece(data, bounds), (data, bounds)
    assert is_valid_utf8(data) is (first_bad(data) is None)
    assert is_valid_utf8_python(data) is (first_bad(data) is None)


def test_first_bad_reference() -> None:
    """The reference itself, on cases whose answer is known by hand."""
    assert first_bad(b"abc") is None
    assert first_bad(b"\xc0\x80") == 0  # C0 can never start a character
    assert first_bad(b"\xe0\x80\x80") == 1  # overlong: E0 needs A0..BF next
    assert first_bad(b"\xed\xa0\x80") == 1  # surrogate: ED needs 80..9F next
    assert first_bad(b"\xf4\x90\x80\x80") == 1  # above U+10FFFF
    assert first_bad(b"\xe2\x82") == 2  # unfinished
    assert first_bad(b"\xe2\x82A") == 2
    assert first_bad(b"ok\xff") == 2


def test_speedups_built() -> None:
    if not C_ON:
        if os.environ.get("CI") == "true" and not os.environ.get("GORILLAWS_NO_SPEEDUPS"):
            pytest.fail("gorillaws._speedups was not built (needs a C compiler and Python headers)")
        pytest.skip("C speedup not built or disabled; pure Python only")
    assert Utf8Validator().uses_speedups
    assert not Utf8Validator(speedups=False).uses_speedups


def test_speedups_required_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(utf8_mod, "_c_validate", None)
    with pytest.raises(RuntimeError):
        Utf8Validator(speedups=True)
    assert not Utf8Validator().uses_speedups


# Sequences in the spirit of Autobahn's case 6 (UTF-8 handling), which follow
# Markus Kuhn's UTF-8 decoder stress test: boundaries, malformed sequences,
# overlong forms, surrogates, impossible bytes.
KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode()
ADVERSARIAL = {
    "empty": b"",
    "kosme": KOSME,
    "kosme+bad": KOSME + b"\xed\xa0\x80edited",
    "hello-euro": "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode(),
    "first-1": b"\x00",
    "first-2": b"\xc2\x80",
    "first-3": b"\xe0\xa0\x80",
    "first-4": b"\xf0\x90\x80\x80",
    "first-5": b"\xf8\x88\x80\x80\x80",
    "first-6": b"\xfc\x84\x80\x80\x80\x80",
    "last-1": b"\x7f",
    "last-2": b"\xdf\xbf",
    "last-3": b"\xef\xbf\xbf",
    "last-4-u10ffff": b"\xf4\x8f\xbf\xbf",
    "last-4-u1fffff": b"\xf7\xbf\xbf\xbf",
    "u-d7ff": b"\xed\x9f\xbf",
    "u-e000": b"\xee\x80\x80",
    "u-fffd": b"\xef\xbf\xbd",
    "u-110000": b"\xf4\x90\x80\x80",
    "lone-80": b"\x80",
    "lone-bf": b"\xbf",
    "cont-run": b"\x80\xbf\x80\xbf\x80\xbf\x80",
    "all-continuations": bytes(range(0x80, 0xC0)),
    "lonely-2-starts": b"".join(bytes((b, 0x20)) for b in range(0xC0, 0xE0)),
    "lonely-3-starts": b"".join(bytes((b, 0x20)) for b in range(0xE0, 0xF0)),
    "lonely-4-starts": b"".join(bytes((b, 0x20)) for b in range(0xF0, 0xF8)),
    "missing-last-2": b"\xc0",
    "missing-last-3": b"\xe0\x80",
    "missing-last-4": b"\xf0\x80\x80",
    "missing-last-2-max": b"\xdf",
    "missing-last-3-max": b"\xef\xbf",
    "missing-last-4-max": b"\xf4\x8f\xbf",
    "missing-concat": b"\xc0\xe0\x80\xf0\x80\x80\xdf\xef\xbf\xf7\xbf\xbf",
    "impossible-fe": b"\xfe",
    "impossible-ff": b"\xff",
    "impossible-run": b"\xfe\xfe\xff\xff",
    "overlong-slash-2": b"\xc0\xaf",
    "overlong-slash-3": b"\xe0\x80\xaf",
    "overlong-slash-4": b"\xf0\x80\x80\xaf",
    "overlong-max-2": b"\xc1\xbf",
    "overlong-max-3": b"\xe0\x9f\xbf",
    "overlong-max-4": b"\xf0\x8f\xbf\xbf",
    "overlong-nul-2": b"\xc0\x80",
    "overlong-nul-3": b"\xe0\x80\x80",
    "surrogate-d800": b"\xed\xa0\x80",
    "surrogate-db7f": b"\xed\xad\xbf",
    "surrogate-dc00": b"\xed\xb0\x80",
    "surrogate-dfff": b"\xed\xbf\xbf",
    "surrogate-pair": b"\xed\xa0\x80\xed\xb0\x80",
    "surrogate-after-text": b"abc\xed\xbf",
    "noncharacter-fffe": b"\xef\xbf\xbe",
    "noncharacter-10fffe": b"\xf4\x8f\xbf\xbe",
    "truncated-after-ascii-run": b"a" * 40 + b"\xf0\x9f\x98",
    "bad-after-ascii-run": b"a" * 37 + b"\xff" + b"a" * 40,
}


@pytest.mark.parametrize("speedups_on", IMPLS)
@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_adversarial_every_split(speedups_on: bool, name: str) -> None:
    check_all_ways(ADVERSARIAL[name], speedups_on)


BOUNDARY_BYTES = [
    0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF,
    0xE0, 0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF,
]  # fmt: skip


def test_all_boundary_sequences_up_to_3_bytes() -> None:
    """Every 1..3-byte string over the range boundaries, byte by byte, both paths agree
    with Python's decoder on where it fails."""
    impls = implementations()
    for n in (1, 2, 3):
        for combo in itertools.product(BOUNDARY_BYTES, repeat=n):
            data = bytes(combo)
            bounds = list(range(n + 1)) + [n]
            pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
            expect = expected_piece(data, bounds)
            for on in impls:
                assert failing_piece(on, pieces) == expect, (data, on)


@NO_RAW_C
def test_raw_automaton_exhaustive_two_bytes_and_four_byte_leads() -> None:
    """The C automaton on every 2-byte string, and on 4-byte strings over the
    boundary bytes: the state after each prefix is REJECT exactly from the
    first bad byte on, and ACCEPT exactly at the ends of valid strings."""
    assert speedups is not None
    validate = speedups.utf8_validate
    accept, reject = speedups.UTF8_ACCEPT, speedups.UTF8_REJECT
    strings = (bytes(p) for p in itertools.product(range(256), repeat=2))
    four = (bytes(p) for p in itertools.product(BOUNDARY_BYTES, repeat=4))
    for data in itertools.chain(strings, four):
        bad = first_bad(data)
        state = accept
        for i in range(len(data)):
            state = validate(data[i : i + 1], state)
            prefix_bad = bad is not None and bad <= i
            assert (state == reject) is prefix_bad, (data, i)
        assert (state == accept) is (bad is None), data
        assert validate(data, accept) == state


@NO_RAW_C
def test_raw_automaton_api() -> None:
    assert speedups is not None
    validate = speedups.utf8_validate
    assert speedups.UTF8_ACCEPT == 0 and speedups.UTF8_REJECT == 1
    assert validate(b"abc", 0) == 0
    assert validate(bytearray(b"\xe2\x82"), 0) not in (0, 1)
    assert validate(memoryview(b"\xac"), validate(b"\xe2\x82", 0)) == 0
    assert validate(b"abc", speedups.UTF8_REJECT) == speedups.UTF8_REJECT  # sticky
    assert validate(data=b"x", state=0) == 0
    for state in (-1, 9, 1000):
        with pytest.raises(ValueError):
            validate(b"abc", state)
    with pytest.raises(TypeError):
        validate("abc", 0)
    with pytest.raises(TypeError):
        validate(b"abc")
    with pytest.raises(TypeError):
        validate(b"abc", "0")
    with pytest.raises(OverflowError):
        validate(b"abc", 2**80)


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_bad_byte_at_every_position_in_ascii(speedups_on: bool) -> None:
    """Exercises the C path's 8- and 32-byte ASCII skipping at every alignment."""
    for pos in range(80):
        for bad in (b"\xff", b"\x80", b"\xed\xa0", b"\xc3"):
            data = b"x" * pos + bad + b"y" * (80 - pos)
            check = Utf8Validator(speedups=speedups_on)
            with pytest.raises(ProtocolError):
                check.feed(data, final=True)
            assert is_valid_utf8(data) is False


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_large_messages(speedups_on: bool) -> None:
    """Inputs above the C path's GIL-release threshold."""
    text = ("ascii and \u00e9\u4e2d\U0001f600 " * 20000).encode()
    assert len(text) > 64 * 1024
    v = Utf8Validator(speedups=speedups_on)
    v.feed(text[:100001])
    v.feed(text[100001:], final=True)
    broken = text[:-7] + b"\xed\xb0\x80" + text[-4:]
    v = Utf8Validator(speedups=speedups_on)
    with pytest.raises(ProtocolError):
        v.feed(broken)
    assert is_valid_utf8(text) and not is_valid_utf8(broken)


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_error_is_sticky_until_reset(speedups_on: bool) -> None:
    v = Utf8Validator(speedups=speedups_on)
    with pytest.raises(ProtocolError):
        v.feed(b"\xff")
    with pytest.raises(ProtocolError):
        v.feed(b"fine")
    v.reset()
    v.feed(b"fine", final=True)


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_messages_in_sequence(speedups_on: bool) -> None:
    """A final piece readies the validator for the next message; reset drops a partial one."""
    v = Utf8Validator(speedups=speedups_on)
    v.feed(b"\xe2\x82")
    v.feed(b"\xac", final=True)
    v.feed(b"\xe2\x82\xac", final=True)
    v.feed(b"\xe2\x82")
    v.reset()
    v.feed(b"abc", final=True)
    with pytest.raises(ProtocolError):
        v.feed(b"\xe2", final=True)
    v.reset()
    v.feed(b"", final=True)


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_buffer_types(speedups_on: bool) -> None:
    data = "\u00e9t\u00e9 \u2603".encode()
    for buf in (bytearray(data), memoryview(data), memoryview(b"--" + data)[2:]):
        v = Utf8Validator(speedups=speedups_on)
        v.feed(buf, final=True)
        assert is_valid_utf8(buf) and is_valid_utf8_python(buf)


@pytest.mark.parametrize("speedups_on", IMPLS)
def test_long_random_mixed_inputs(speedups_on: bool) -> None:
    """Long mixed-width text with rare bad bytes, whole and split at random points:
    characters straddle the C loop's 16-byte blocks at every alignment."""
    import random

    rng = random.Random(1234)
    alphabet = ["a", " ", "\u00e9", "\u07ff", "\u0800", "\u4e2d", "\uffff", "\U00010000", "\U0010ffff"]
    nasty = [b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe0\x9f\xbf", b"\xc1\xbf", b"\xff", b"\x80", b"\xe4\xb8"]
    for _ in range(150):
        data = bytearray("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 700))).encode())
        if rng.random() < 0.6:
            at = rng.randrange(len(data) + 1)
            data[at:at] = rng.choice(nasty)
        blob = bytes(data)
        cut = rng.randrange(len(blob) + 1)
        bounds = [0, cut, len(blob)]
        assert failing_piece(speedups_on, [blob[:cut], blob[cut:]]) == expected_piece(blob, bounds)
        assert failing_piece(speedups_on, [blob]) == expected_piece(blob, [0, len(blob)])
        assert is_valid_utf8(blob) is (first_bad(blob) is None)


def test_receive_sized_views_both_implementations_agree() -> None:
    """Large streams fed as a connection feeds them: memoryview slices of a
    receive buffer, cut at receive-like sizes (1 B .. 70 KB).  Both validators
    fail at the same piece, the one holding the first bad byte."""
    import random

    rng = random.Random(99)
    unit = "text \u00e9\u4e2d\U0001f600 ".encode()
    for trial in range(40):
        size = rng.choice([100, 20_000, 300_000])
        data = bytearray((unit * (size // len(unit) + 1))[:size])
        if trial % 4:
            at = rng.randrange(size)
            data[at : at + 2] = rng.choice([b"\xf4\x90", b"\xed\xa0", b"\xff\xff", b"\xc0\xaf"])
        bounds = [0]
        while bounds[-1] < len(data):
            bounds.append(min(len(data), bounds[-1] + rng.choice([1, 7, 4096, 65536, 70_000])))
        with memoryview(data) as view:
            pieces = [view[a:b] for a, b in zip(bounds, bounds[1:])]
            want = expected_piece(bytes(data), bounds)
            for speedups_on in implementations():
                assert failing_piece(speedups_on, pieces) == want, (trial, speedups_on)  # type: ignore[arg-type]
            for piece in pieces:
                piece.release()


# -- property tests ---------------------------------------------------------------


def _mutate(text: str, inserts: List[bytes], positions: List[int]) -> bytes:
    data = bytearray(text.encode("utf-8", "surrogatepass"))
    for ins, pos in zip(inserts, positions):
        at = pos % (len(data) + 1)
        data[at:at] = ins
    return bytes(data)


nasty_bytes = st.sampled_from(
    [b"\x80", b"\xbf", b"\xc0", b"\xc1", b"\xc2", b"\xe0", b"\xe0\x9f", b"\xed", b"\xed\xa0",
     b"\xed\x9f", b"\xf0", b"\xf0\x8f", b"\xf4", b"\xf4\x90", b"\xf5", b"\xff"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=40),
    inserts=st.lists(nasty_bytes, max_size=3),
    positions=st.lists(st.integers(min_value=0, max_value=10**6), min_size=3, max_size=3),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=5),
)
def test_hypothesis_mutated_text(
    text: str, inserts: List[bytes], positions: List[int], cuts: List[int]
) -> None:
    data = _mutate(text, inserts, positions)
    bounds = sorted({0, len(data), *(c for c in cuts if c <= len(data))})
    pieces = [data[a:b] for a, b in zip(bounds, bounds[1:])]
    expect = expected_piece(data, bounds)
    for on in implementations():
        assert failing_piece(on, pieces) == expect


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=24))
def test_hypothesis_random_bytes_every_split(data: bytes) -> None:
    for on in implementations():
        check_all_ways(data, on)


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1, max_size=60))
def test_hypothesis_valid_text_every_split(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    for on in implementations():
        check_all_ways(data, on)
