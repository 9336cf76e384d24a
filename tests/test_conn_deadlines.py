"""Read and write deadlines (time.monotonic() points in time).

* A read deadline that passes before any byte of the next frame arrived is
  not fatal: the connection stays usable (gorilla issue #474's fix).
* One that passes mid-frame is fatal and sticky.
* A write deadline that passes is fatal and sticky for writing.
* write_control has its own deadline.
"""

from __future__ import annotations

import time
from typing import Tuple

import pytest

from gorillaws import BINARY_MESSAGE, CLOSE_MESSAGE, PING_MESSAGE, TEXT_MESSAGE, Conn, DeadlineExceeded

from conftest import run_in_thread
from helpers import RawFactory

pytestmark = pytest.mark.usefixtures("no_leaks")


SHORT = 0.1
# Big enough to fill any loopback socket buffer (TCP autotuning included).
BIG = 32 << 20


def test_read_deadline_before_any_byte_is_not_fatal(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    for _ in range(3):
        conn.set_read_deadline(time.monotonic() + SHORT)
        start = time.monotonic()
        with pytest.raises(DeadlineExceeded) as ei:
            conn.read_message()
        assert time.monotonic() - start >= SHORT * 0.9
        assert ei.value.fatal is False
        assert isinstance(ei.value, TimeoutError)
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.next_reader()
    assert ei.value.fatal is False
    conn.set_read_deadline(None)
    peer.send_frame(TEXT_MESSAGE, b"still usable")
    assert conn.read_message() == (TEXT_MESSAGE, b"still usable")
    # Writing was never affected.
    conn.write_message(TEXT_MESSAGE, b"reply")
    assert peer.recv_frame().payload == b"reply"


def test_read_deadline_in_the_past(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    server.set_read_deadline(time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded) as ei:
        server.read_message()
    assert not ei.value.fatal
    server.set_read_deadline(None)
    client.write_message(BINARY_MESSAGE, b"ok")
    assert server.read_message() == (BINARY_MESSAGE, b"ok")


def test_read_deadline_with_data_buffered_reads_it(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.write_message(BINARY_MESSAGE, b"already here")
    time.sleep(0.05)
    server.set_read_deadline(time.monotonic() + 2.0)
    assert server.read_message() == (BINARY_MESSAGE, b"already here")


def test_read_deadline_after_control_frames_is_not_fatal(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(PING_MESSAGE, b"p")
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.read_message()
    assert not ei.value.fatal
    assert peer.recv_frame().payload == b"p"  # the ping was answered meanwhile
    conn.set_read_deadline(None)
    peer.send_frame(BINARY_MESSAGE, b"after")
    assert conn.read_message() == (BINARY_MESSAGE, b"after")


def test_read_deadline_between_fragments_resumes_read_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"first half, ", fin=False)
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.read_message()
    assert not ei.value.fatal
    peer.send_frame(0, b"second half")
    conn.set_read_deadline(time.monotonic() + 2.0)
    assert conn.read_message() == (TEXT_MESSAGE, b"first half, second half")
    peer.send_frame(BINARY_MESSAGE, b"next")
    assert conn.read_message() == (BINARY_MESSAGE, b"next")


def test_read_deadline_between_fragments_with_next_reader(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"abc", fin=False)
    _, r = conn.next_reader()
    assert r.read(3) == b"abc"
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        r.read(3)
    assert not ei.value.fatal
    conn.set_read_deadline(None)
    peer.send_frame(0, b"def")
    assert r.read() == b"def"


@pytest.mark.parametrize(
    "partial",
    [
        b"\x82",  # one byte of a header
        b"\x82\xfe\x00",  # part of a 16-bit length
        b"\x82\x85\x00\x00",  # part of the masking key
        b"\x82\x85\x00\x00\x00\x00ab",  # part of the payload
        b"\x89\x85\x00\x00\x00\x00ab",  # part of a ping's payload
    ],
)
def test_read_deadline_mid_frame_is_fatal_and_sticky(raw_peer: RawFactory, partial: bytes) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_raw(partial)
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.read_message()
    assert ei.value.fatal is True
    conn.set_read_deadline(None)
    peer.send_raw(b"cde")  # the rest would now arrive: too late
    with pytest.raises(DeadlineExceeded) as again:
        conn.read_message()
    assert again.value is ei.value
    with pytest.raises(DeadlineExceeded):
        conn.next_reader()


def test_read_deadline_mid_frame_with_next_reader(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_raw(b"\x82\x8a\x00\x00\x00\x00abc")  # 10 bytes announced, 3 sent
    _, r = conn.next_reader()
    assert r.read(3) == b"abc"
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        r.read(3)
    assert ei.value.fatal


def test_read_deadline_over_tcp_large_message(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    data = bytes(range(256)) * 2000
    t = run_in_thread(lambda: client.write_message(BINARY_MESSAGE, data))
    server.set_read_deadline(time.monotonic() + 5.0)
    assert server.read_message() == (BINARY_MESSAGE, data)
    t.join()


# ----------------------------------------------------------------------
# Write deadlines
# ----------------------------------------------------------------------


def test_write_deadline_against_peer_that_does_not_read(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_write_deadline(time.monotonic() + 0.2)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.write_message(BINARY_MESSAGE, bytes(BIG))
    assert ei.value.fatal is True
    conn.set_write_deadline(None)
    # Sticky: writing is unusable, every writing call raises the same error at once.
    with pytest.raises(DeadlineExceeded) as e2:
        conn.write_message(TEXT_MESSAGE, b"x")
    with pytest.raises(DeadlineExceeded) as e3:
        conn.write_control(PING_MESSAGE, b"", time.monotonic() + 1)
    with pytest.raises(DeadlineExceeded) as e4:
        conn.next_writer(TEXT_MESSAGE)
    assert e2.value is e3.value is e4.value is ei.value
    # close() stays bounded.
    start = time.monotonic()
    conn.close()
    assert time.monotonic() - start < 3.0
    assert conn.closed


def test_write_deadline_in_next_writer(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    w = conn.next_writer(BINARY_MESSAGE)
    conn.set_write_deadline(time.monotonic() + 0.2)
    chunk = bytes(1 << 20)
    with pytest.raises(DeadlineExceeded) as ei:
        for _ in range(BIG // len(chunk)):
            w.write(chunk)
    assert ei.value.fatal
    with pytest.raises(DeadlineExceeded):
        w.close()
    with pytest.raises(DeadlineExceeded):
        conn.write_message(TEXT_MESSAGE, b"x")


def test_write_deadline_in_the_past(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.set_write_deadline(time.monotonic() - 1)
    with pytest.raises(DeadlineExceeded):
        client.write_message(TEXT_MESSAGE, b"late")
    server.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        server.read_message()  # nothing (or nothing whole) was sent
    assert not ei.value.fatal


def test_write_deadline_not_reached(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.set_write_deadline(time.monotonic() + 5.0)
    data = bytes(300_000)
    r = run_in_thread(server.read_message)
    client.write_message(BINARY_MESSAGE, data)
    assert r.join() == (BINARY_MESSAGE, data)
    client.write_message(TEXT_MESSAGE, b"again")
    assert server.read_message() == (TEXT_MESSAGE, b"again")


def test_write_control_own_deadline_while_writer_blocked(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    # A writer with no deadline blocks forever on a peer that does not read.
    blocked = run_in_thread(lambda: conn.write_message(BINARY_MESSAGE, bytes(BIG)))
    time.sleep(0.1)
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        conn.write_control(PING_MESSAGE, b"p", time.monotonic() + SHORT)
    assert time.monotonic() - start < 10.0
    conn.close_now()  # wakes the blocked writer
    with pytest.raises(OSError):
        blocked.join()


def test_write_control_own_deadline_on_full_socket(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_write_deadline(time.monotonic() + 0.2)
    with pytest.raises(DeadlineExceeded):
        conn.write_message(BINARY_MESSAGE, bytes(BIG))
    # The write deadline is fatal for writing, so write_control fails at once too.
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        conn.write_control(CLOSE_MESSAGE, b"", time.monotonic() + 30.0)
    assert time.monotonic() - start < 10.0


def test_write_control_deadline_on_full_socket_without_prior_error(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    # Fill the socket with pings (each with a deadline) until one cannot go out.
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        for _ in range(BIG // 127):
            conn.write_control(PING_MESSAGE, b"x" * 125, time.monotonic() + SHORT)
    assert time.monotonic() - start < 10.0


def test_write_control_without_deadline_interleaves(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    pings = []
    server.set_ping_handler(pings.append)
    client.write_control(PING_MESSAGE, b"a", None)
    client.write_control(PING_MESSAGE, b"b", time.monotonic() + 1.0)
    client.write_message(TEXT_MESSAGE, b"end")
    assert server.read_message() == (TEXT_MESSAGE, b"end")
    assert pings == [b"a", b"b"]
