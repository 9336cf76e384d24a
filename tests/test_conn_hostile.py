"""Hostile peers: every protocol violation fails the connection with the right close code.

Each test sends hand-made frames from a :class:`conftest.RawPeer`, checks the
exception the Conn's read raises, the close code the Conn sent, that the Conn
then closed the connection, and that the error is sticky.
"""

from __future__ import annotations

import time
from typing import Callable, List, Optional, Tuple

import pytest

from gorillaws import BINARY_MESSAGE, TEXT_MESSAGE, CloseError, Conn, ProtocolError

from conftest import RawPeer, close_payload, run_in_thread
from helpers import RawFactory

pytestmark = pytest.mark.usefixtures("no_leaks")


# Generous bound: a Conn that does not fail fast raises DeadlineExceeded instead.
FAIL_FAST_BOUND = 3.0


def expect_failure(conn: Conn, peer: RawPeer, code: int, read: Optional[Callable[[], object]] = None) -> ProtocolError:
    """The next read fails with ``code``, the peer gets a close frame with it, then EOF."""
    watcher = run_in_thread(peer.recv_close_and_hang_up)
    conn.set_read_deadline(time.monotonic() + FAIL_FAST_BOUND)
    with pytest.raises(ProtocolError) as ei:
        (read or conn.read_message)()
    assert ei.value.code == code, str(ei.value)
    sent_code, _ = watcher.join()
    assert sent_code == code
    with pytest.raises(ProtocolError) as again:
        conn.read_message()
    assert again.value is ei.value, "read errors are sticky"
    assert conn.closed
    return ei.value


# ----------------------------------------------------------------------
# Masking
# ----------------------------------------------------------------------


@pytest.mark.parametrize("opcode", [TEXT_MESSAGE, BINARY_MESSAGE, 9, 10, 8])
def test_server_rejects_unmasked_client_frames(raw_peer: RawFactory, opcode: int) -> None:
    conn, peer = raw_peer(server=True)
    payload = close_payload(1000) if opcode == 8 else b"hi"
    peer.send_frame(opcode, payload, masked=False)
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("opcode", [TEXT_MESSAGE, BINARY_MESSAGE, 9, 10, 8])
def test_client_rejects_masked_server_frames(raw_peer: RawFactory, opcode: int) -> None:
    conn, peer = raw_peer(server=False)
    payload = close_payload(1000) if opcode == 8 else b"hi"
    peer.send_frame(opcode, payload, masked=True)
    expect_failure(conn, peer, 1002)


def test_unmasked_continuation_rejected(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"ok ", fin=False)
    peer.send_frame(0, b"then unmasked", masked=False)
    expect_failure(conn, peer, 1002)


# ----------------------------------------------------------------------
# Header violations
# ----------------------------------------------------------------------


@pytest.mark.parametrize("rsv", [0x40, 0x20, 0x10, 0x70])
@pytest.mark.parametrize("opcode", [TEXT_MESSAGE, BINARY_MESSAGE, 9])
def test_rsv_bits_rejected_without_extension(raw_peer: RawFactory, rsv: int, opcode: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(opcode, b"data", rsv=rsv)
    expect_failure(conn, peer, 1002)


def test_rsv_bit_on_continuation_rejected(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"a", fin=False)
    peer.send_frame(0, b"b", rsv=0x40)
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcode(raw_peer: RawFactory, opcode: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(opcode, b"???")
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_oversize_control_frame(raw_peer: RawFactory, opcode: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(opcode, b"x" * 126)
    expect_failure(conn, peer, 1002)


def test_oversize_control_frame_64bit_length_header_only(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    # Claims 1 MiB of ping payload and sends none of it: refused from the header.
    peer.send_frame(9, b"", length=1 << 20)
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_fragmented_control_frame(raw_peer: RawFactory, opcode: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(opcode, b"", fin=False)
    expect_failure(conn, peer, 1002)


def test_continuation_without_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(0, b"orphan")
    expect_failure(conn, peer, 1002)


def test_continuation_after_finished_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"done")
    peer.send_frame(0, b"orphan")
    assert conn.read_message() == (TEXT_MESSAGE, b"done")
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("second", [TEXT_MESSAGE, BINARY_MESSAGE])
def test_new_message_inside_fragmented_message(raw_peer: RawFactory, second: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"part", fin=False)
    peer.send_frame(second, b"interloper")
    expect_failure(conn, peer, 1002)


def test_64bit_length_with_top_bit(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"", length=1 << 63, length_form=64)
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("length,form", [(5, 16), (125, 16), (5, 64), (65535, 64)])
def test_non_minimal_lengths(raw_peer: RawFactory, length: int, form: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"", length=length, length_form=form)
    expect_failure(conn, peer, 1002)


def test_huge_length_hits_read_limit_not_memory(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"", length=(1 << 63) - 1)
    err = expect_failure(conn, peer, 1009)
    assert type(err).__name__ == "ErrReadLimit"


# ----------------------------------------------------------------------
# Close payloads
# ----------------------------------------------------------------------


def test_close_with_one_byte_payload(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(8, b"\x03")
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_close_with_invalid_code(raw_peer: RawFactory, code: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_close(code)
    expect_failure(conn, peer, 1002)
    assert conn.get_status() == (0, "")


def test_close_with_bad_utf8_reason(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_close(1000, b"bad \xff reason")
    expect_failure(conn, peer, 1007)


def test_close_payload_over_125_bytes(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(8, close_payload(1000, b"x" * 124))
    expect_failure(conn, peer, 1002)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1011, 1014, 3000, 4999])
def test_close_with_valid_codes_is_not_a_protocol_error(raw_peer: RawFactory, code: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_close(code, b"r")
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert (ei.value.code, ei.value.text) == (code, "r")
    assert peer.recv_close() == (code, b"")


# ----------------------------------------------------------------------
# UTF-8
# ----------------------------------------------------------------------

# (message, index of the first byte that makes it invalid)
BAD_UTF8: List[Tuple[bytes, int]] = [
    (b"abc\xffdef", 3),
    ("κόσμε".encode() + b"\xc0\xaf" + b"xyz", 10),  # overlong "/"
    (b"ab\xed\xa0\x80cd", 3),  # surrogate U+D800, refused at \xa0
    (b"a\xf4\x90\x80\x80b", 2),  # above U+10FFFF, refused at \x90
    (b"x\xe2\x82Ayz", 3),  # truncated euro sign followed by ASCII
    ("€uro ".encode() + b"\xf5\x80", 7),
]


def _fragment(msg: bytes, cuts: List[int]) -> List[bytes]:
    bounds = [0, *cuts, len(msg)]
    return [msg[a:b] for a, b in zip(bounds, bounds[1:])]


def _bad_cases() -> List[Tuple[bytes, int, List[int]]]:
    cases = []
    for msg, bad in BAD_UTF8:
        for cut in range(0, len(msg) + 1):
            cases.append((msg, bad, [cut]))
        cases.append((msg, bad, list(range(1, len(msg)))))  # one byte per fragment
    return cases


def test_bad_utf8_table_is_right() -> None:
    for msg, bad in BAD_UTF8:
        with pytest.raises(UnicodeDecodeError):
            msg.decode("utf-8")
        # Everything before the bad byte could still start valid UTF-8.
        import codecs

        dec = codecs.getincrementaldecoder("utf-8")()
        dec.decode(msg[:bad], False)


@pytest.mark.parametrize("how", ["read_message", "next_reader"])
def test_bad_utf8_at_every_split_point_fails_fast(raw_peer: RawFactory, how: str) -> None:
    # One Conn pair per case would be slow; a fresh one per case is needed
    # because each case fails the connection.  Run all cases in one test.
    for msg, bad, cuts in _bad_cases():
        conn, peer = raw_peer(server=True)
        frags = _fragment(msg, cuts)
        # Send fragments up to and including the one holding the bad byte,
        # none with FIN set: a Conn that waits for more would time out.
        pos = 0
        for i, frag in enumerate(frags):
            peer.send_frame(TEXT_MESSAGE if i == 0 else 0, frag, fin=False)
            pos += len(frag)
            if pos > bad:
                break

        def read() -> object:
            if how == "read_message":
                return conn.read_message()
            _, r = conn.next_reader()
            while r.read(3):
                pass
            return None

        expect_failure(conn, peer, 1007, read)
        conn.close_now()
        peer.close()


def test_bad_utf8_mid_frame_fails_fast_with_small_reads(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    # A frame announcing 100 bytes of which only the first 6 (with the bad byte) arrive.
    frame = b"\x81\xe4" + b"\x00\x00\x00\x00"  # FIN, text, masked, 100 bytes, zero key
    peer.send_raw(frame + b"ab\xffcde")

    def read() -> object:
        _, r = conn.next_reader()
        while r.read(1):
            pass
        return None

    expect_failure(conn, peer, 1007, read)


@pytest.mark.parametrize("tail", [b"\xe2", b"\xe2\x82", b"\xf0\x9f\x98"])
def test_message_ending_inside_a_character(raw_peer: RawFactory, tail: bytes) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"ok", fin=False)
    peer.send_frame(0, tail, fin=True)
    expect_failure(conn, peer, 1007)


def test_valid_utf8_at_every_split_point(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    msg = "aé€😀κόσμε\U0010ffff".encode()
    for cut in range(len(msg) + 1):
        frags = _fragment(msg, [cut])
        for i, frag in enumerate(frags):
            peer.send_frame(TEXT_MESSAGE if i == 0 else 0, frag, fin=i == len(frags) - 1)
        assert conn.read_message() == (TEXT_MESSAGE, msg)
    for i in range(len(msg)):
        peer.send_frame(TEXT_MESSAGE if i == 0 else 0, msg[i : i + 1], fin=i == len(msg) - 1)
    assert conn.read_message() == (TEXT_MESSAGE, msg)


def test_binary_messages_are_not_utf8_checked(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"\xff\xfe\xed\xa0\x80", fin=False)
    peer.send_frame(0, b"\xc0")
    assert conn.read_message() == (BINARY_MESSAGE, b"\xff\xfe\xed\xa0\x80\xc0")


def test_bad_utf8_in_control_frames_is_allowed(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(9, b"\xff")
    peer.send_frame(TEXT_MESSAGE, b"fine")
    assert conn.read_message() == (TEXT_MESSAGE, b"fine")
    f = peer.recv_frame()
    assert (f.opcode, f.payload) == (10, b"\xff")


def test_truncated_header_then_eof(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_raw(b"\x82\xfe\x01")  # 16-bit length cut short
    peer.close()
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 1006


def test_truncated_payload_then_eof(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_raw(b"\x82\x8a\x00\x00\x00\x00abc")  # 10 bytes announced, 3 sent
    peer.close()
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 1006
