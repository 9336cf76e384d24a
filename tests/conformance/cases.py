# mypy: disable-error-code="misc"
"""The conformance case table, modelled on the Autobahn TestSuite's case groups.

Case ids follow Autobahn's numbering where a case corresponds to one of
Autobahn's (``1.1.1``, ``5.19``, ``7.9.3``...).  Group 6 is generated from the
lists of valid and invalid UTF-8 sequences in :mod:`utf8_sequences`, each in
several deliveries (one frame, one byte per frame, one byte per TCP write, and
"fail fast" for invalid ones).  Ids in group ``x`` are checks of our own that
Autobahn has no number for (masking by role, deflate corruption, streaming
writer fragmentation).

Expectations are the strict ones: exact echo, exact pongs, and for protocol
violations a close frame with the exact code (1002 protocol error, 1007
invalid payload data) followed by the end of the TCP connection.
"""

from __future__ import annotations

import random
import struct
from functools import partial
from typing import Any, Callable, List, Optional, Sequence, Tuple

from .fuzzer import BINARY, CLOSE, CONT, PING, PONG, RSV1, TEXT, DeflateSetup, FuzzPeer, encode_frame
from .harness import Case, Events
from .utf8_sequences import INVALID, VALID, first_invalid_index

MiB = 1 << 20

# Autobahn's RSV numbering (a 3-bit value) to the header flags.
_RSV = {1: 0x10, 2: 0x20, 3: 0x30, 4: 0x40, 5: 0x50, 6: 0x60, 7: 0x70}

HELLO = b"Hello, world!"


def _text(n: int) -> bytes:
    return b"*" * n


def _binary(n: int) -> bytes:
    return b"\xfe" * n


def _rand(n: int, seed: int) -> bytes:
    return random.Random(seed).randbytes(n) if hasattr(random.Random, "randbytes") else bytes(
        random.Random(seed).getrandbits(8) for _ in range(n)
    )


_WORDS = (
    "the quick brown fox jumps over a lazy dog while websocket frames carry "
    "text and binary messages between client and server with deflate on"
).split()


def _words(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    out = []
    size = 0
    while size < n:
        w = rnd.choice(_WORDS)
        out.append(w)
        size += len(w) + 1
    return " ".join(out).encode("ascii")[:n]


# ----------------------------------------------------------------------
# 1: framing
# ----------------------------------------------------------------------


def group1() -> List[Case]:
    cases = []
    sizes = [0, 125, 126, 127, 128, 65535, 65536]
    for sub, (op, kind, make) in enumerate([(TEXT, "text", _text), (BINARY, "binary", _binary)], 1):
        for i, n in enumerate(sizes, 1):
            p = make(n)
            cases.append(
                Case(
                    "1.%d.%d" % (sub, i),
                    "%s message, payload %d" % (kind, n),
                    lambda f, op=op, p=p: f.send_message(op, p),
                    [(kind, p)],
                )
            )
        p = make(65536)
        cases.append(
            Case(
                "1.%d.8" % sub,
                "%s message, payload 65536, in TCP writes of 997 bytes" % kind,
                lambda f, op=op, p=p: f.send_message(op, p, chop=997),
                [(kind, p)],
            )
        )
    return cases


# ----------------------------------------------------------------------
# 2: pings and pongs
# ----------------------------------------------------------------------


def group2() -> List[Case]:
    bin8 = b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"
    p125 = b"\xfe" * 125

    def ten_pings(chop: Optional[int]) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            for i in range(10):
                f.send_frame(PING, b"payload-%d" % i, chop=chop, delay=0.001 if chop else 0.0)

        return act

    return [
        Case("2.1", "ping, empty payload", lambda f: f.send_frame(PING), [("pong", b"")]),
        Case("2.2", "ping, small text payload", lambda f: f.send_frame(PING, HELLO), [("pong", HELLO)]),
        Case("2.3", "ping, small binary payload", lambda f: f.send_frame(PING, bin8), [("pong", bin8)]),
        Case("2.4", "ping, 125-byte payload", lambda f: f.send_frame(PING, p125), [("pong", p125)]),
        Case("2.5", "ping, 126-byte payload", lambda f: f.send_frame(PING, b"\xfe" * 126), [], 1002, False),
        Case(
            "2.6",
            "ping, 125-byte payload, one byte per TCP write",
            lambda f: f.send_frame(PING, p125, chop=1, delay=0.0005),
            [("pong", p125)],
        ),
        Case("2.7", "unsolicited pong, empty", lambda f: f.send_frame(PONG), []),
        Case("2.8", "unsolicited pong with payload", lambda f: f.send_frame(PONG, b"unsolicited pong payload"), []),
        Case(
            "2.9",
            "unsolicited pong, then ping",
            lambda f: f.send_frames([f.frame(PONG, b"unsolicited pong payload"), f.frame(PING, b"ping payload")]),
            [("pong", b"ping payload")],
        ),
        Case("2.10", "10 pings", ten_pings(None), [("pong", b"payload-%d" % i) for i in range(10)]),
        Case(
            "2.11",
            "10 pings, one byte per TCP write",
            ten_pings(1),
            [("pong", b"payload-%d" % i) for i in range(10)],
        ),
    ]


# ----------------------------------------------------------------------
# 3: reserved bits (no extension negotiated)
# ----------------------------------------------------------------------


def group3() -> List[Case]:
    def seq(rsv: int, op: int, payload: bytes, chop: Optional[int]) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            f.send_frames(
                [f.frame(TEXT, HELLO), f.frame(op, payload, rsv=_RSV[rsv]), f.frame(PING, HELLO)],
                chop=chop,
            )

        return act

    return [
        Case("3.1", "text with RSV=1", lambda f: f.send_frame(TEXT, HELLO, rsv=_RSV[1]), [], 1002, False),
        Case("3.2", "text, text with RSV=2, ping", seq(2, TEXT, HELLO, None), [("text", HELLO)], 1002, False),
        Case("3.3", "as 3.2 with RSV=3, one write", seq(3, TEXT, HELLO, None), [("text", HELLO)], 1002, False),
        Case("3.4", "as 3.2 with RSV=4, byte writes", seq(4, TEXT, HELLO, 1), [("text", HELLO)], 1002, False),
        Case(
            "3.5",
            "binary with RSV=5",
            lambda f: f.send_frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=_RSV[5]),
            [],
            1002,
            False,
        ),
        Case("3.6", "ping with RSV=6", lambda f: f.send_frame(PING, HELLO, rsv=_RSV[6]), [], 1002, False),
        Case(
            "3.7",
            "close with RSV=7",
            lambda f: f.send_raw(f.frame(CLOSE, struct.pack("!H", 1000), rsv=_RSV[7])),
            [],
            1002,
            False,
        ),
    ]


# ----------------------------------------------------------------------
# 4: opcodes
# ----------------------------------------------------------------------


def group4() -> List[Case]:
    cases = []
    for sub, ops in ((1, (3, 4, 5, 6, 7)), (2, (11, 12, 13, 14, 15))):
        for i, op in enumerate(ops, 1):
            payload = b"" if i == 1 else HELLO
            if i <= 2:
                cases.append(
                    Case(
                        "4.%d.%d" % (sub, i),
                        "reserved opcode %d" % op,
                        lambda f, op=op, payload=payload: f.send_frame(op, payload),
                        [],
                        1002,
                        False,
                    )
                )
            else:

                def act(f: FuzzPeer, op: int = op, payload: bytes = payload) -> None:
                    f.send_frames([f.frame(TEXT, HELLO), f.frame(op, payload), f.frame(PING, HELLO)])

                cases.append(
                    Case(
                        "4.%d.%d" % (sub, i),
                        "text, reserved opcode %d, ping" % op,
                        act,
                        [("text", HELLO)],
                        1002,
                        False,
                    )
                )
    return cases


# ----------------------------------------------------------------------
# 5: fragmentation
# ----------------------------------------------------------------------


def group5() -> List[Case]:
    f1, f2 = b"fragment1", b"fragment2"

    def two(op: int, chop: Optional[int], delay: float = 0.0, ping: bool = False) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            frames = [f.frame(op, f1, fin=False)]
            if ping:
                frames.append(f.frame(PING, b"ping payload"))
            frames.append(f.frame(CONT, f2))
            f.send_frames(frames, chop=chop, delay=delay)

        return act

    def stray(fin: bool, chop: Optional[int]) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            f.send_frames(
                [f.frame(CONT, b"non-continuation payload", fin=fin), f.frame(TEXT, HELLO)],
                chop=chop,
                delay=0.0005 if chop == 1 else 0.0,
            )

        return act

    def c5_15(f: FuzzPeer) -> None:
        f.send_frames(
            [
                f.frame(TEXT, f1, fin=False),
                f.frame(CONT, f2),
                f.frame(CONT, b"fragment3", fin=False),
                f.frame(TEXT, b"fragment4"),
            ]
        )

    def repeated(fin: bool) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            frames = []
            for _ in range(2):
                frames += [
                    f.frame(CONT, b"fragment1", fin=fin),
                    f.frame(TEXT, b"fragment2", fin=False),
                    f.frame(CONT, b"fragment3"),
                ]
            f.send_frames(frames)

        return act

    def c5_19(chop: Optional[int]) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            f.send_frames([f.frame(TEXT, b"fragment1", fin=False), f.frame(CONT, b"fragment2", fin=False)], chop)
            f.send_frames([f.frame(PING, b"pongme 1!"), f.frame(CONT, b"fragment3", fin=False)], chop)
            f.wait_events(1, 2.0)
            f.send_frames([f.frame(CONT, b"fragment4", fin=False), f.frame(PING, b"pongme 2!")], chop)
            f.send_frames([f.frame(CONT, b"fragment5")], chop)

        return act

    whole = f1 + f2
    five = b"fragment1fragment2fragment3fragment4fragment5"
    return [
        Case(
            "5.1",
            "ping in 2 fragments",
            lambda f: f.send_frames([f.frame(PING, f1, fin=False), f.frame(CONT, f2)]),
            [],
            1002,
            False,
        ),
        Case(
            "5.2",
            "pong in 2 fragments",
            lambda f: f.send_frames([f.frame(PONG, f1, fin=False), f.frame(CONT, f2)]),
            [],
            1002,
            False,
        ),
        Case("5.3", "text in 2 fragments", two(TEXT, None), [("text", whole)]),
        Case("5.4", "text in 2 fragments, frame-wise writes", two(TEXT, 11), [("text", whole)]),
        Case("5.5", "text in 2 fragments, byte writes", two(TEXT, 1, 0.0005), [("text", whole)]),
        Case("5.6", "text in 2 fragments, ping between", two(TEXT, None, ping=True), [("pong", b"ping payload"), ("text", whole)]),
        Case("5.7", "as 5.6, small writes", two(TEXT, 7, ping=True), [("pong", b"ping payload"), ("text", whole)]),
        Case("5.8", "as 5.6, byte writes", two(TEXT, 1, 0.0005, ping=True), [("pong", b"ping payload"), ("text", whole)]),
        Case("5.9", "continuation (FIN) with nothing to continue, then text", stray(True, None), [], 1002, False),
        Case("5.10", "as 5.9, small writes", stray(True, 7), [], 1002, False),
        Case("5.11", "as 5.9, byte writes", stray(True, 1), [], 1002, False),
        Case("5.12", "continuation (no FIN) with nothing to continue, then text", stray(False, None), [], 1002, False),
        Case("5.13", "as 5.12, small writes", stray(False, 7), [], 1002, False),
        Case("5.14", "as 5.12, byte writes", stray(False, 1), [], 1002, False),
        Case(
            "5.15",
            "2-fragment text, stray continuation, text",
            c5_15,
            [("text", whole)],
            1002,
            False,
        ),
        Case("5.16", "2x (stray continuation, 2-fragment text)", repeated(False), [], 1002, False),
        Case("5.17", "as 5.16, stray continuation with FIN", repeated(True), [], 1002, False),
        Case(
            "5.18",
            "text in 2 fragments both with the text opcode",
            lambda f: f.send_frames([f.frame(TEXT, f1, fin=False), f.frame(TEXT, f2)]),
            [],
            1002,
            False,
        ),
        Case(
            "5.19",
            "text in 5 fragments with 2 pings between",
            c5_19(None),
            [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("text", five)],
        ),
        Case(
            "5.20",
            "as 5.19, byte writes",
            c5_19(1),
            [("pong", b"pongme 1!"), ("pong", b"pongme 2!"), ("text", five)],
        ),
    ]


# ----------------------------------------------------------------------
# 6: UTF-8
# ----------------------------------------------------------------------


def _frag_frames(f: FuzzPeer, p: bytes, size: int) -> List[bytes]:
    if not p:
        return [f.frame(TEXT, b"")]
    pieces = [p[i : i + size] for i in range(0, len(p), size)]
    return [
        f.frame(TEXT if i == 0 else CONT, piece, fin=i == len(pieces) - 1) for i, piece in enumerate(pieces)
    ]


def group6() -> List[Case]:
    cases: List[Case] = [
        Case("6.1.1", "empty text message", lambda f: f.send_message(TEXT, b""), [("text", b"")]),
        Case(
            "6.1.2",
            "text message of 3 empty fragments",
            lambda f: f.send_frames([f.frame(TEXT, b"", fin=False), f.frame(CONT, b"", fin=False), f.frame(CONT, b"")]),
            [("text", b"")],
        ),
        Case(
            "6.1.3",
            "text message: empty, non-empty, empty fragments",
            lambda f: f.send_frames(
                [f.frame(TEXT, b"", fin=False), f.frame(CONT, b"middle frame payload", fin=False), f.frame(CONT, b"")]
            ),
            [("text", b"middle frame payload")],
        ),
    ]

    def whole_and_bytewise(cid: str, what: str, seq: bytes, *outcome: Any) -> None:
        """Cases cid.a (``seq`` in one frame) and, beyond one byte, cid.b (one byte per frame)."""
        cases.append(Case(cid + ".a", what + ", one frame", lambda f, s=seq: f.send_message(TEXT, s), *outcome))
        if len(seq) > 1:

            def bytewise(f: FuzzPeer, s: bytes = seq) -> None:
                f.send_frames(_frag_frames(f, s, 1))

            cases.append(Case(cid + ".b", what + ", one byte per frame", bytewise, *outcome))

    for n, (name, seq) in enumerate(VALID, 1):
        whole_and_bytewise("6.v.%d" % n, "valid %s" % name, seq, [("text", seq)])
        if len(seq) > 1:
            cases.append(
                Case(
                    "6.v.%d.c" % n,
                    "valid %s, one frame, one byte per TCP write" % name,
                    lambda f, s=seq: f.send_message(TEXT, s, chop=1),
                    [("text", seq)],
                )
            )
    for n, (name, seq) in enumerate(INVALID, 1):
        whole_and_bytewise("6.i.%d" % n, "invalid %s" % name, seq, [], 1007, False)
        k = first_invalid_index(seq)
        if k is not None and k + 1 < len(seq):
            # Fail fast: the bad byte arrives in a non-final frame; the
            # connection must fail before the rest of the message is sent.
            def fail_fast(f: FuzzPeer, s: bytes = seq, k: int = k) -> None:
                f.send_frame(TEXT, s[: k + 1], fin=False)
                f.expect_closed_now("the first invalid byte (offset %d)" % k)
                f.send_frame(CONT, s[k + 1 :])

            cases.append(Case("6.i.%d.c" % n, "invalid %s, fail fast" % name, fail_fast, [], 1007, False))

            # Split point: the bad byte is the first byte of a new frame.
            if k > 0:

                def split(f: FuzzPeer, s: bytes = seq, k: int = k) -> None:
                    f.send_frames([f.frame(TEXT, s[:k], fin=False), f.frame(CONT, s[k : k + 1], fin=False)])
                    f.expect_closed_now("the invalid byte in its own frame (offset %d)" % k)
                    f.send_frame(CONT, s[k + 1 :])

                cases.append(Case("6.i.%d.d" % n, "invalid %s, split at the bad byte" % name, split, [], 1007, False))
    # Autobahn 6.4.x: valid fragment, then one making it invalid, then more.
    p1 = "\u03ba\u1f79\u03c3\u03bc\u03b5".encode("utf-8")
    p2 = b"\xf4\x90\x80\x80"
    p3 = b"\x65\x64\x69\x74\x65\x64"

    def c6_4_1(f: FuzzPeer) -> None:
        f.send_frame(TEXT, p1, fin=False)
        f.send_frame(CONT, p2, fin=False)
        f.expect_closed_now("fragment with U+110000")
        f.send_frame(CONT, p3)

    def c6_4_2(f: FuzzPeer) -> None:
        f.send_frame(TEXT, p1 + p2[:1], fin=False)
        f.send_frame(CONT, p2[1:2], fin=False)
        f.expect_closed_now("F4 90 split across fragments")
        f.send_frame(CONT, p2[2:] + p3)

    def c6_4_3(f: FuzzPeer) -> None:
        frame = f.frame(TEXT, p1 + p2 + p3)
        hdr_end = len(frame) - len(p1 + p2 + p3)
        f.send_raw(frame[: hdr_end + len(p1)])
        f.send_raw(frame[hdr_end + len(p1) : hdr_end + len(p1) + 2])
        f.expect_closed_now("the invalid bytes inside one frame")
        f.send_raw(frame[hdr_end + len(p1) + 2 :])

    def c6_4_4(f: FuzzPeer) -> None:
        frame = f.frame(TEXT, p1 + p2 + p3)
        hdr_end = len(frame) - len(p1 + p2 + p3)
        f.send_raw(frame[: hdr_end + len(p1)])
        f.send_raw(frame[hdr_end + len(p1) : hdr_end + len(p1) + 1])
        f.sleep_short()
        f.send_raw(frame[hdr_end + len(p1) + 1 : hdr_end + len(p1) + 2])
        f.expect_closed_now("the second byte of F4 90 in its own write")
        f.send_raw(frame[hdr_end + len(p1) + 2 :])

    cases += [
        Case("6.4.1", "fail fast: invalid middle fragment", c6_4_1, [], 1007, False),
        Case("6.4.2", "fail fast: invalid sequence across fragments", c6_4_2, [], 1007, False),
        Case("6.4.3", "fail fast: invalid bytes within one frame (TCP writes)", c6_4_3, [], 1007, False),
        Case("6.4.4", "fail fast: byte-wise TCP writes within one frame", c6_4_4, [], 1007, False),
    ]
    return cases


# ----------------------------------------------------------------------
# 7: close handling
# ----------------------------------------------------------------------

VALID_CODES = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999]
# 1012-1014 are registered with IANA (service restart, try again later, bad
# gateway) after Autobahn's list was made; gorillaws accepts them (group x).
INVALID_CODES = [0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999]


def group7() -> List[Case]:
    def after_close(second: Callable[[FuzzPeer], None]) -> Callable[[FuzzPeer], None]:
        def act(f: FuzzPeer) -> None:
            f.send_close(1000)
            second(f)

        return act

    def c7_1_5(f: FuzzPeer) -> None:
        f.send_frame(TEXT, b"fragment1", fin=False)
        f.send_close(1000)
        f.send_frame(CONT, b"fragment2")

    big = _text(256 * 1024)

    def c7_1_6(f: FuzzPeer) -> None:
        f.send_message(TEXT, big)
        f.send_close(1000)
        f.send_frame(PING, HELLO)

    cases = [
        Case("7.1.1", "text then close", lambda f: f.send_message(TEXT, HELLO), [("text", HELLO)]),
        Case("7.1.2", "close twice", after_close(lambda f: f.send_close(1000)), [], 1000, False),
        Case("7.1.3", "close, then ping", after_close(lambda f: f.send_frame(PING, HELLO)), [], 1000, False),
        Case("7.1.4", "close, then text", after_close(lambda f: f.send_message(TEXT, HELLO)), [], 1000, False),
        Case("7.1.5", "fragment, close, fragment", c7_1_5, [], 1000, False),
        Case(
            "7.1.6",
            "256 KiB text, close, ping",
            c7_1_6,
            [("text", big)],
            1000,
            False,
            alternatives=[[]],
        ),
        Case("7.3.1", "close with empty payload", lambda f: f.send_close(None), [], 1005, False),
        Case("7.3.2", "close with 1-byte payload", lambda f: f.send_frame(CLOSE, b"\x03"), [], 1002, False),
        Case("7.3.3", "close with code only", lambda f: f.send_close(1000), [], 1000, False),
        Case("7.3.4", "close with code and reason", lambda f: f.send_close(1000, "Hello World!"), [], 1000, False),
        Case("7.3.5", "close with 123-byte reason", lambda f: f.send_close(1000, "*" * 123), [], 1000, False),
        Case(
            "7.3.6",
            "close with 124-byte reason (payload 126)",
            lambda f: f.send_close(1000, "*" * 124),
            [],
            1002,
            False,
        ),
        Case(
            "7.5.1",
            "close reason not UTF-8",
            lambda f: f.send_frame(CLOSE, struct.pack("!H", 1000) + b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64"),
            [],
            1007,
            False,
        ),
    ]
    for i, code in enumerate(VALID_CODES, 1):
        cases.append(
            Case("7.7.%d" % i, "close with valid code %d" % code, lambda f, c=code: f.send_close(c), [], code, False)
        )
    for i, code in enumerate(INVALID_CODES, 1):
        cases.append(
            Case("7.9.%d" % i, "close with invalid code %d" % code, lambda f, c=code: f.send_close(c), [], 1002, False)
        )
    cases += [
        Case("7.13.1", "close with code 5000", lambda f: f.send_close(5000), [], 1002, False),
        Case("7.13.2", "close with code 65535", lambda f: f.send_close(65535), [], 1002, False),
    ]
    return cases


# ----------------------------------------------------------------------
# 9: large messages
# ----------------------------------------------------------------------


def _send_split(f: FuzzPeer, op: int, p: bytes, how: str, n: int) -> None:
    """Send ``p`` in pieces of ``n`` bytes: ``how`` is "frag" (frames) or "chop" (TCP writes)."""
    f.send_message(op, p, **{how: n})


def group9(full: bool = True) -> List[Case]:
    """Large messages; ``full`` includes every size up to 16 MiB."""
    cases = []
    sizes = [64 * 1024, 256 * 1024, MiB, 4 * MiB, 8 * MiB, 16 * MiB]
    if not full:
        sizes = sizes[:4]
    limit = 20 * MiB

    def large(sub: int, i: int, kind: str, p: bytes, what: str, send: Callable[[FuzzPeer], None]) -> Case:
        """Case 9.sub.i: ``send`` delivers the one ``kind`` message ``p``, which must come back whole."""
        return Case("9.%d.%d" % (sub, i), what, send, [(kind, p)], read_limit=limit, timeout=20.0)

    for sub, (op, kind) in ((1, (TEXT, "text")), (2, (BINARY, "binary"))):
        for i, n in enumerate(sizes, 1):
            p = _text(n) if op == TEXT else _rand(n, n)
            what = "%s message of %d bytes" % (kind, n)
            cases.append(large(sub, i, kind, p, what, lambda f, op=op, p=p: f.send_message(op, p)))
    # 9.3/9.4: a 4 MiB message in fragments; 9.5/9.6: a 1 MiB message in small TCP writes.
    # (first sub-group, message size, send_message keyword, what a piece is, piece sizes, the quick run's smallest)
    split_ways = [
        (3, 4 * MiB, "frag", "fragments", [64, 256, 1024, 4096, 16384, 65536, 256 * 1024, MiB, 4 * MiB], 4096),
        (5, MiB, "chop", "TCP writes", [64, 128, 256, 512, 1024, 2048], 1024),
    ]
    for first, size, how, pieces, splits, quick_from in split_ways:
        for sub, (op, kind) in ((first, (TEXT, "text")), (first + 1, (BINARY, "binary"))):
            p = _text(size) if op == TEXT else _rand(size, sub)
            for i, n in enumerate(splits, 1):
                if not full and n < quick_from:
                    continue
                what = "%d MiB %s message in %s of %d" % (size // MiB, kind, pieces, n)
                send = partial(_send_split, op=op, p=p, how=how, n=n)
                cases.append(large(sub, i, kind, p, what, send))
    msg_sizes = [0, 16, 64, 256, 1024, 4096]
    for sub, (op, kind) in ((7, (TEXT, "text")), (8, (BINARY, "binary"))):
        for i, n in enumerate(msg_sizes, 1):
            p = _text(n) if op == TEXT else _binary(n)
            count = 1000 if full else 100

            def many(f: FuzzPeer, op: int = op, p: bytes = p, count: int = count) -> None:
                frame = f.frame(op, p)
                f.send_frames([frame] * count)

            cases.append(
                Case(
                    "9.%d.%d" % (sub, i),
                    "%d %s messages of %d bytes" % (count, kind, n),
                    many,
                    [(kind, p)] * count,
                    timeout=20.0,
                )
            )
    return cases


# ----------------------------------------------------------------------
# 10: fragmentation of large messages
# ----------------------------------------------------------------------


def _frames_at_most(size: int, min_frames: int) -> Callable:  # type: ignore[type-arg]
    def check(obs) -> List[str]:  # type: ignore[no-untyped-def]
        data = [fr for fr in obs.frames if fr.opcode in (TEXT, BINARY, CONT)]
        out = []
        if len(data) < min_frames:
            out.append("message came in %d frames, expected at least %d" % (len(data), min_frames))
        big = [len(fr.payload) for fr in data if len(fr.payload) > size]
        if big:
            out.append("frames larger than the write buffer (%d): %s" % (size, big[:5]))
        return out

    return check


def group10() -> List[Case]:
    p = _text(65536)
    return [
        Case(
            "10.1.1",
            "64 KiB text in fragments of 1300 bytes",
            lambda f: f.send_message(TEXT, p, frag=1300),
            [("text", p)],
        ),
        Case(
            "10.x.1",
            "streaming echo: the writer fragments a 64 KiB message at write_buffer_size",
            lambda f: f.send_message(TEXT, p),
            [("text", p)],
            echo="stream",
            write_buffer_size=4096,
            extra_check=_frames_at_most(4096, 16),
        ),
        Case(
            "10.x.2",
            "streaming echo of a 1 MiB binary message in 1300-byte fragments",
            lambda f: f.send_message(BINARY, _rand(MiB, 10), frag=1300),
            [("binary", _rand(MiB, 10))],
            echo="stream",
            write_buffer_size=8192,
            read_limit=2 * MiB,
            extra_check=_frames_at_most(8192, 128),
        ),
    ]


# ----------------------------------------------------------------------
# 12 / 13: permessage-deflate
# ----------------------------------------------------------------------

# (fuzzer_no_context_takeover, fuzzer_window_bits, sut_no_context_takeover, sut_window_bits):
# Autobahn's 13.x client offers, as agreed parameters.
DEFLATE_SETUPS: List[Tuple[str, DeflateSetup]] = [
    ("13.1", DeflateSetup(False, 15, False, 15)),
    ("13.2", DeflateSetup(True, 15, True, 15)),
    ("13.3", DeflateSetup(False, 8, False, 8)),
    ("13.4", DeflateSetup(False, 15, False, 15, level=9)),
    ("13.5", DeflateSetup(True, 8, True, 8)),
    ("13.6", DeflateSetup(True, 15, True, 15, level=1)),
    ("13.7", DeflateSetup(False, 9, True, 12)),
]

DEFLATE_SIZES = [16, 64, 256, 1024, 4096, 8192, 16384, 32768, 65536, 131072]


def _deflate_stream(sizes: Sequence[int], count: int, make: Callable[[int, int], bytes], op: int) -> Tuple[
    Callable[[FuzzPeer], None], Events
]:
    kind = "text" if op == TEXT else "binary"
    msgs = [make(n, i) for n in sizes for i in range(count)]

    def act(f: FuzzPeer) -> None:
        for i, m in enumerate(msgs):
            # Alternate compressed and plain messages, and fragment some.
            f.send_message(op, m, compress=(i % 4 != 3), frag=(1000 if i % 5 == 2 else None))

    return act, [(kind, m) for m in msgs]


def group12_13(count: int = 4) -> List[Case]:
    cases = []
    # 12.x: default parameters (context takeover both ways), different payloads.
    payloads = [
        ("12.1", TEXT, lambda n, i: _words(n, n * 7 + i)),
        ("12.2", BINARY, lambda n, i: _words(n, n * 11 + i)),
        ("12.3", TEXT, lambda n, i: (_words(n // 2, i) + b"\xce\xba" * n)[:n].decode("utf-8", "ignore").encode("utf-8")),
        ("12.4", BINARY, lambda n, i: _rand(n, n + i)),
        ("12.5", BINARY, lambda n, i: bytes((j * i) & 0xFF for j in range(n))),
    ]
    for gid, op, make in payloads:
        act, expect = _deflate_stream(DEFLATE_SIZES, count, make, op)
        cases.append(
            Case(
                gid + ".x",
                "permessage-deflate defaults, %d messages of sizes 16..128 KiB" % len(expect),
                act,
                expect,
                deflate=DeflateSetup(),
                read_limit=4 * MiB,
                timeout=20.0,
            )
        )
    for gid, setup in DEFLATE_SETUPS:
        for echo in ("message", "stream"):
            act, expect = _deflate_stream(DEFLATE_SIZES, count, lambda n, i: _words(n, n + 3 * i), TEXT)
            cases.append(
                Case(
                    gid + ".x." + echo,
                    "permessage-deflate %s, %s echo, %d messages" % (setup.describe(), echo, len(expect)),
                    act,
                    expect,
                    deflate=setup,
                    echo=echo,
                    read_limit=4 * MiB,
                    timeout=20.0,
                )
            )
    return cases


# ----------------------------------------------------------------------
# x: our own checks
# ----------------------------------------------------------------------


def group_x() -> List[Case]:
    def unmasked(f: FuzzPeer) -> None:
        f.send_raw(encode_frame(TEXT, HELLO, key=None if f.is_client else b"\x01\x02\x03\x04"))

    d = DeflateSetup()

    def rsv1_cont(f: FuzzPeer) -> None:
        f.send_frames([f.frame(TEXT, f.compress(b"fragment1"), fin=False, rsv=RSV1), f.frame(CONT, b"x", rsv=RSV1)])

    def corrupt(f: FuzzPeer) -> None:
        f.send_frame(TEXT, b"\xff\xff\xff\xff\xff", rsv=RSV1)

    def bomb(f: FuzzPeer) -> None:
        f.send_message(BINARY, b"\x00" * (4 * MiB), compress=True)

    def compressed_invalid_utf8(f: FuzzPeer) -> None:
        f.send_message(TEXT, b"valid start " * 10 + b"\xc0\xaf", compress=True)

    return [
        Case("x.1", "frame masked wrongly for the role (client unmasked / server masked)", unmasked, [], 1002, False),
        Case("x.2", "close with code 1012 (IANA: service restart)", lambda f: f.send_close(1012), [], 1012, False),
        Case("x.3", "close with code 1013 (IANA: try again later)", lambda f: f.send_close(1013), [], 1013, False),
        Case("x.4", "close with code 1014 (IANA: bad gateway)", lambda f: f.send_close(1014), [], 1014, False),
        Case("x.5", "close with code 1015 (TLS handshake; never on the wire)", lambda f: f.send_close(1015), [], 1002, False),
        Case("x.6", "ping with RSV1 (deflate negotiated)", lambda f: f.send_frame(PING, HELLO, rsv=RSV1), [], 1002, False, deflate=d),
        Case("x.7", "continuation with RSV1 (deflate negotiated)", rsv1_cont, [], 1002, False, deflate=d),
        Case("x.8", "corrupt deflate data", corrupt, [], 1007, False, deflate=d),
        Case(
            "x.9",
            "deflate bomb: 4 MiB of zeros with a 1 MiB read limit",
            bomb,
            [],
            1009,
            False,
            deflate=d,
            read_limit=MiB,
        ),
        Case("x.10", "message over the read limit", lambda f: f.send_message(BINARY, b"\x01" * (MiB + 1)), [], 1009, False, read_limit=MiB),
        Case("x.11", "compressed text with invalid UTF-8", compressed_invalid_utf8, [], 1007, False, deflate=d),
        Case(
            "x.12",
            "RSV2 on a text frame with deflate negotiated",
            lambda f: f.send_frame(TEXT, HELLO, rsv=0x20),
            [],
            1002,
            False,
            deflate=d,
        ),
        Case(
            "x.13",
            "16-bit length used for a 5-byte payload (non-minimal)",
            lambda f: f.send_raw(_nonminimal(f)),
            [],
            1002,
            False,
        ),
    ]


def _nonminimal(f: FuzzPeer) -> bytes:
    key = b"\x11\x22\x33\x44" if f.is_client else None
    from .fuzzer import mask_bytes

    head = bytes((0x81, (0x80 if key else 0) | 126)) + struct.pack("!H", 5)
    return head + (key + mask_bytes(b"hello", key) if key else b"hello")


def all_cases(full: bool = True) -> List[Case]:
    """Every case, in Autobahn order."""
    return (
        group1()
        + group2()
        + group3()
        + group4()
        + group5()
        + group6()
        + group7()
        + group9(full)
        + group10()
        + group12_13()
        + group_x()
    )
