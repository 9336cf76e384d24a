"""Valid and invalid UTF-8 sequences for conformance group 6.

The categories follow the classic UTF-8 decoder stress test that Autobahn's
group 6 is built on (first/last sequence of each length, boundaries,
continuation bytes out of place, lonely start bytes, truncated sequences,
impossible bytes, overlong forms, UTF-16 surrogates, noncharacters); the byte
strings are generated here from those rules, not copied.

:func:`first_invalid_index` is an independent reference (RFC 3629's table of
well-formed byte sequences) giving the offset of the first byte at which a
sequence can no longer be the start of valid UTF-8: a strict endpoint fails
the connection on that byte ("fail fast").
"""

from __future__ import annotations

from typing import List, Optional, Tuple

KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode("utf-8")  # Greek "kosme", 11 bytes


def _cp(c: int) -> bytes:
    """Encode a code point by the UTF-8 bit layout (surrogates allowed, for building bad input)."""
    if c < 0x80:
        return bytes((c,))
    if c < 0x800:
        return bytes((0xC0 | c >> 6, 0x80 | c & 0x3F))
    if c < 0x10000:
        return bytes((0xE0 | c >> 12, 0x80 | (c >> 6) & 0x3F, 0x80 | c & 0x3F))
    return bytes((0xF0 | c >> 18, 0x80 | (c >> 12) & 0x3F, 0x80 | (c >> 6) & 0x3F, 0x80 | c & 0x3F))


def _valid() -> List[Tuple[str, bytes]]:
    out: List[Tuple[str, bytes]] = [
        ("Hello-mu-at-sz-umlauts", "Hello-\u00b5@\u00df\u00f6\u00e4\u00fc\u00e0\u00e1-UTF-8!!".encode("utf-8")),
        ("kosme", KOSME),
    ]
    for c in (0x0000, 0x0080, 0x0800, 0x10000):
        out.append(("first sequence of its length U+%04X" % c, _cp(c)))
    for c in (0x007F, 0x07FF, 0xFFFF, 0x10FFFF):
        out.append(("last sequence of its length U+%04X" % c, _cp(c)))
    for c in (0xD7FF, 0xE000, 0xFFFD, 0x10FFFF, 0x10000, 0xFFFE):
        out.append(("boundary U+%04X" % c, _cp(c)))
    for c in (0xFDD0, 0xFDEF, 0x1FFFE, 0x1FFFF, 0x10FFFE):
        out.append(("noncharacter U+%04X" % c, _cp(c)))
    out.append(("kosme + every first/last boundary", KOSME + b"".join(_cp(c) for c in (0x80, 0x7FF, 0x800, 0xFFFF, 0x10000, 0x10FFFF))))
    return out


def _invalid() -> List[Tuple[str, bytes]]:
    out: List[Tuple[str, bytes]] = []
    k = KOSME
    # Beyond U+10FFFF and the old 5/6-byte forms.
    out.append(("U+110000", k + b"\xf4\x90\x80\x80" + b"edited"))
    out.append(("F7 BF BF BF", k + b"\xf7\xbf\xbf\xbf"))
    out.append(("5-byte form", b"\xf8\x88\x80\x80\x80"))
    out.append(("6-byte form", b"\xfc\x84\x80\x80\x80\x80"))
    out.append(("last 5-byte form", b"\xfb\xbf\xbf\xbf\xbf"))
    out.append(("last 6-byte form", b"\xfd\xbf\xbf\xbf\xbf\xbf"))
    # Unexpected continuation bytes.
    out.append(("first continuation byte 80", b"\x80"))
    out.append(("last continuation byte BF", b"\xbf"))
    for n in range(2, 8):
        out.append(("%d continuation bytes" % n, bytes((0x80, 0xBF) * 4)[:n]))
    out.append(("all 64 continuation bytes", bytes(range(0x80, 0xC0))))
    # Lonely start bytes followed by a space.
    out.append(("lonely 2-byte starts C0..DF", b"".join(bytes((b, 0x20)) for b in range(0xC0, 0xE0))))
    out.append(("lonely 3-byte starts E0..EF", b"".join(bytes((b, 0x20)) for b in range(0xE0, 0xF0))))
    out.append(("lonely 4-byte starts F0..F7", b"".join(bytes((b, 0x20)) for b in range(0xF0, 0xF8))))
    out.append(("lonely 5-byte starts F8..FB", b"".join(bytes((b, 0x20)) for b in range(0xF8, 0xFC))))
    out.append(("lonely 6-byte starts FC..FD", b"".join(bytes((b, 0x20)) for b in range(0xFC, 0xFE))))
    # Sequences with the last continuation byte missing (at the end of the message).
    truncated = [
        ("C0", b"\xc0"),
        ("E0 80", b"\xe0\x80"),
        ("F0 80 80", b"\xf0\x80\x80"),
        ("DF", b"\xdf"),
        ("EF BF", b"\xef\xbf"),
        ("F4 8F BF", b"\xf4\x8f\xbf"),
        ("E1 80", b"\xe1\x80"),
        ("F1 80 80", b"\xf1\x80\x80"),
    ]
    for name, seq in truncated:
        out.append(("truncated %s" % name, seq))
        out.append(("truncated %s after kosme" % name, k + seq))
    out.append(("all truncated sequences concatenated", b"".join(s for _, s in truncated)))
    # Impossible bytes.
    out.append(("FE", b"\xfe"))
    out.append(("FF", b"\xff"))
    out.append(("FE FE FF FF", b"\xfe\xfe\xff\xff"))
    # Overlong forms of "/" , maximum overlongs, overlong NUL.
    out.append(("overlong / (2 bytes)", b"\xc0\xaf"))
    out.append(("overlong / (3 bytes)", b"\xe0\x80\xaf"))
    out.append(("overlong / (4 bytes)", b"\xf0\x80\x80\xaf"))
    out.append(("overlong / (5 bytes)", b"\xf8\x80\x80\x80\xaf"))
    out.append(("maximum overlong C1 BF", b"\xc1\xbf"))
    out.append(("maximum overlong E0 9F BF", b"\xe0\x9f\xbf"))
    out.append(("maximum overlong F0 8F BF BF", b"\xf0\x8f\xbf\xbf"))
    out.append(("overlong NUL C0 80", b"\xc0\x80"))
    out.append(("overlong NUL E0 80 80", b"\xe0\x80\x80"))
    out.append(("overlong NUL F0 80 80 80", b"\xf0\x80\x80\x80"))
    # UTF-16 surrogates, single and paired.
    for c in (0xD800, 0xDB7F, 0xDB80, 0xDBFF, 0xDC00, 0xDF80, 0xDFFF):
        out.append(("surrogate U+%04X" % c, _cp(c)))
        out.append(("surrogate U+%04X after kosme, then text" % c, k + _cp(c) + b"edited"))
    for hi, lo in ((0xD800, 0xDC00), (0xD800, 0xDFFF), (0xDB7F, 0xDC00), (0xDBFF, 0xDFFF)):
        out.append(("surrogate pair U+%04X U+%04X" % (hi, lo), _cp(hi) + _cp(lo)))
    # Start bytes whose second byte is out of the allowed range.
    out.append(("E0 9F 80 (overlong 3-byte)", b"\xe0\x9f\x80"))
    out.append(("ED A0 (surrogate prefix) after ASCII", b"abc\xed\xa0\x80xyz"))
    out.append(("F0 8F (overlong 4-byte)", b"\xf0\x8f\x80\x80"))
    out.append(("F4 90 (above U+10FFFF)", b"\xf4\x90\x80\x80"))
    out.append(("F5 (never valid)", b"\xf5\x80\x80\x80"))
    return out


VALID: List[Tuple[str, bytes]] = _valid()
INVALID: List[Tuple[str, bytes]] = _invalid()


def _second_range(b: int) -> Tuple[int, int, int]:
    """For a start byte: (low, high) of the next byte and the sequence length; length 0 if invalid."""
    if 0xC2 <= b <= 0xDF:
        return 0x80, 0xBF, 2
    if b == 0xE0:
        return 0xA0, 0xBF, 3
    if 0xE1 <= b <= 0xEC or 0xEE <= b <= 0xEF:
        return 0x80, 0xBF, 3
    if b == 0xED:
        return 0x80, 0x9F, 3
    if b == 0xF0:
        return 0x90, 0xBF, 4
    if 0xF1 <= b <= 0xF3:
        return 0x80, 0xBF, 4
    if b == 0xF4:
        return 0x80, 0x8F, 4
    return 0, 0, 0


def first_invalid_index(data: bytes) -> Optional[int]:
    """Offset of the first byte that makes ``data`` an impossible UTF-8 prefix.

    None when every prefix is a valid prefix (the data is valid, or only
    truncated at its end).
    """
    i = 0
    n = len(data)
    while i < n:
        b = data[i]
        if b < 0x80:
            i += 1
            continue
        lo, hi, length = _second_range(b)
        if not length:
            return i
        for j in range(1, length):
            if i + j >= n:
                return None
            c = data[i + j]
            if j == 1:
                if not lo <= c <= hi:
                    return i + j
            elif not 0x80 <= c <= 0xBF:
                return i + j
        i += length
    return None


def _self_check() -> None:
    for name, seq in VALID:
        seq.decode("utf-8")
        assert first_invalid_index(seq) is None, name
    for name, seq in INVALID:
        try:
            seq.decode("utf-8")
        except UnicodeDecodeError:
            continue
        raise AssertionError("not invalid: " + name)


_self_check()
