"""The fast paths keep their behaviour: batched prepared writes, the idle read buffer, bounded masking.

* ``Conn.write_prepared_messages`` sends the messages in order, with the
  right frames for both roles and compression modes, joining small frames
  into one system call; a peer that goes away mid-batch fails writing for
  good with the connection-closed error family.
"""

from __future__ import annotations

import os
import contextlib
import socket
import threading
import time
from typing import Any, Iterator, List, Tuple

import pytest

from gorillaws import BINARY_MESSAGE, TEXT_MESSAGE, Conn, PreparedMessage
from gorillaws.deflate import (
    COMPRESSION_CONTEXT_TAKEOVER,
    COMPRESSION_NO_CONTEXT_TAKEOVER,
    DeflateParams,
    PerMessageDeflate,
)
from gorillaws.exceptions import ConnectionClosedError

from conftest import socket_pair

pytestmark = pytest.mark.usefixtures("no_leaks")


class CountingSocket(socket.socket):
    """A socket that counts the system calls that send."""

    sends = 0

    def send(self, *args: Any) -> int:
        self.sends += 1
        return super().send(*args)

    def sendall(self, *args: Any) -> None:
        self.sends += 1
        super().sendall(*args)

    def sendmsg(self, *args: Any) -> int:
        self.sends += 1
        return super().sendmsg(*args)


def counting(sock: socket.socket) -> CountingSocket:
    return CountingSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())


def _messages() -> List[PreparedMessage]:
    out = [PreparedMessage(TEXT_MESSAGE, f"message {i}") for i in range(20)]
    out.insert(5, PreparedMessage(BINARY_MESSAGE, bytes(range(256)) * 300))  # 75 KiB: sent on its own
    out.append(PreparedMessage(BINARY_MESSAGE, b""))
    return out


@contextlib.contextmanager
def tcp_conns(server_reads: bool = True, **reader_kwargs: Any) -> Iterator[Tuple[Conn, Conn]]:
    """``(reader, writer)`` over TCP, the reader's limit raised to 4 MiB; both closed after."""
    a, b = socket_pair("tcp")
    reader = Conn(a, is_server=server_reads, **reader_kwargs)
    writer = Conn(b, is_server=not server_reads)
    reader.set_read_limit(1 << 22)
    try:
        yield reader, writer
    finally:
        reader.close_now()
        writer.close_now()


def send_all(conn: Conn, msgs: List[bytes]) -> None:
    for m in msgs:
        conn.write_message(BINARY_MESSAGE, m)


def _pair(server_writes: bool, **kwargs: Any) -> Tuple[Conn, Conn, CountingSocket]:
    a, b = socket_pair("tcp")
    wsock = counting(a)
    writer = Conn(wsock, is_server=server_writes, **kwargs)
    reader = Conn(b, is_server=not server_writes, **kwargs)
    reader.set_read_limit(1 << 20)
    return writer, reader, wsock


@pytest.mark.parametrize("server_writes", [True, False], ids=["server", "client"])
@pytest.mark.parametrize("deadline", [False, True], ids=["no-deadline", "deadline"])
def test_batch_in_order_and_joined(server_writes: bool, deadline: bool) -> None:
    writer, reader, wsock = _pair(server_writes)
    try:
        pms = _messages()
        got: List[Tuple[int, bytes]] = []
        t = threading.Thread(target=lambda: got.extend(reader.read_message() for _ in pms))
        t.start()
        if deadline:
            writer.set_write_deadline(time.monotonic() + 5)
        before = wsock.sends
        writer.write_prepared_messages(pms)
        # 5 small frames, the large one, then the other 16 small ones.
        assert wsock.sends - before == 3
        t.join(5)
        assert got == [(pm.message_type, pm.data) for pm in pms]
        writer.write_message(TEXT_MESSAGE, "after")
        assert reader.read_message() == (TEXT_MESSAGE, b"after")
    finally:
        writer.close_now()
        reader.close_now()


@pytest.mark.parametrize("takeover", [False, True], ids=["no-context", "context"])
def test_batch_compressed(takeover: bool) -> None:
    params = DeflateParams(server_no_context_takeover=not takeover, client_no_context_takeover=not takeover)
    mode = COMPRESSION_CONTEXT_TAKEOVER if takeover else COMPRESSION_NO_CONTEXT_TAKEOVER
    a, b = socket_pair("tcp")
    writer = Conn(a, is_server=True, compression=PerMessageDeflate(params, True, mode))
    reader = Conn(b, is_server=False, compression=PerMessageDeflate(params, False, mode))
    try:
        pms = [PreparedMessage(TEXT_MESSAGE, '{"n": %d, "text": "%s"}' % (i, "abc" * i)) for i in range(40)]
        got: List[Tuple[int, bytes]] = []
        t = threading.Thread(target=lambda: got.extend(reader.read_message() for _ in pms))
        t.start()
        writer.write_prepared_messages(pms)
        t.join(5)
        assert got == [(TEXT_MESSAGE, pm.data) for pm in pms]
    finally:
        writer.close_now()
        reader.close_now()


def test_peer_gone_mid_batch_fails_writing_for_good() -> None:
    a, b = socket_pair("tcp")
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    writer = Conn(a, is_server=True)
    try:
        # Far more than both socket buffers hold: the batch is still being
        # sent when the peer resets the connection.
        pms = [PreparedMessage(BINARY_MESSAGE, b"x" * 100)] * 10 + [PreparedMessage(BINARY_MESSAGE, b"y" * (1 << 20))] * 16

        def vanish() -> None:
            b.recv(100)
            b.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            b.close()

        t = threading.Thread(target=vanish)
        t.start()
        writer.set_write_deadline(time.monotonic() + 5)
        with pytest.raises(ConnectionClosedError) as info:
            writer.write_prepared_messages(pms)
        t.join(5)
        assert isinstance(info.value.__cause__, OSError)
        # Sticky: nothing more may follow a half-sent frame.
        with pytest.raises(ConnectionClosedError):
            writer.write_prepared_messages(pms[:1])
        with pytest.raises(ConnectionClosedError):
            writer.write_message(TEXT_MESSAGE, "more")
    finally:
        writer.close_now()


# ----------------------------------------------------------------------
# An idle connection holds no read buffer


def test_idle_conn_holds_no_read_buffer() -> None:
    with tcp_conns(read_buffer_size=8192) as (server, client):
        assert len(server._rbuf) == 0
        got: List[Tuple[int, bytes]] = []
        t = threading.Thread(target=lambda: got.append(server.read_message()))
        t.start()
        time.sleep(0.1)  # the reader is waiting for the first bytes
        assert t.is_alive() and len(server._rbuf) == 0
        client.write_message(BINARY_MESSAGE, b"first")
        t.join(5)
        assert got == [(BINARY_MESSAGE, b"first")]
        assert len(server._rbuf) == 8192  # made once the bytes were there, at the configured size


def test_first_read_honours_deadline_and_close() -> None:
    from gorillaws import DeadlineExceeded
    from gorillaws.exceptions import CloseError

    a, b = socket_pair("tcp")
    server = Conn(a, is_server=True)
    try:
        server.set_read_deadline(time.monotonic() + 0.05)
        with pytest.raises(DeadlineExceeded):
            server.read_message()
        server.set_read_deadline(None)
        # A waiting first read ends when the peer goes away.
        t = threading.Timer(0.05, b.close)
        t.start()
        with pytest.raises(CloseError):
            server.read_message()
        t.join()
    finally:
        server.close_now()
        b.close()


def test_initial_data_is_read_first() -> None:
    a, b = socket_pair("tcp")
    frame = bytes([0x82, 0x83, 1, 2, 3, 4]) + bytes(x ^ k for x, k in zip(b"abc", b"\x01\x02\x03"))
    server = Conn(a, is_server=True, initial_data=frame + frame[:3])
    try:
        assert server.read_message() == (BINARY_MESSAGE, b"abc")
        b.sendall(frame[3:])
        assert server.read_message() == (BINARY_MESSAGE, b"abc")
        assert len(server._rbuf) == 4096
    finally:
        server.close_now()
        b.close()


# ----------------------------------------------------------------------
# The read buffer grows for connections that keep receiving large frames


@pytest.mark.parametrize("server_reads", [True, False], ids=["server", "client"])
def test_read_buffer_grows_for_large_frames(server_reads: bool) -> None:
    from gorillaws import conn as conn_mod

    with tcp_conns(server_reads) as (reader, writer):
        small = [bytes([i]) * 100 for i in range(20)]
        for m in small:  # small messages never grow it
            writer.write_message(BINARY_MESSAGE, m)
            assert reader.read_message() == (BINARY_MESSAGE, m)
        assert len(reader._rbuf) == 4096
        msgs = [bytes([i % 251]) * 65536 + bytes([i]) for i in range(3 * conn_mod._LARGE_FRAMES_TO_GROW)]
        # Sent ahead (a thread), so frames arrive back to back, across the swap.
        t = threading.Thread(target=send_all, args=(writer, msgs))
        t.start()
        got = [reader.read_message() for _ in msgs]
        t.join(5)
        assert got == [(BINARY_MESSAGE, m) for m in msgs]
        assert len(reader._rbuf) == conn_mod._LARGE_READ_BUFFER
        writer.write_message(TEXT_MESSAGE, "small again")
        assert reader.read_message() == (TEXT_MESSAGE, b"small again")


def test_huge_frames_do_not_grow_the_buffer() -> None:
    with tcp_conns() as (reader, writer):
        m = os.urandom(1 << 20)
        t = threading.Thread(target=send_all, args=(writer, [m] * 10))
        t.start()
        for _ in range(10):
            assert reader.read_message() == (BINARY_MESSAGE, m)
        t.join(5)
        assert len(reader._rbuf) == 4096  # the direct read takes those either way


# ----------------------------------------------------------------------
# The one-frame fast path (frames.parse_frame / encode_frame)


@pytest.fixture(params=["c", "pure"])
def twin(request: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run the test with Conn's fast path on the C twins, then on the pure ones."""
    from gorillaws import conn as conn_mod, frames

    if request.param == "c":
        if not frames.HAVE_SPEEDUPS:
            pytest.skip("the C speedup is not built (or is disabled)")
    else:
        monkeypatch.setattr(conn_mod, "parse_frame", frames.parse_frame_python)
        monkeypatch.setattr(conn_mod, "encode_frame", frames.encode_frame_python)
    return str(request.param)


def count_general_reads(monkeypatch: pytest.MonkeyPatch) -> List[int]:
    """A list that gets one item per frame header read by the general path."""
    calls: List[int] = []
    original = Conn._next_data_frame

    def counted(self: Conn, *args: Any) -> int:
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(Conn, "_next_data_frame", counted)
    return calls


# Binary, then the same as hex text: 3.8 KiB with headers, so all fit the 4 KiB buffer.
ONE_FRAME = [b"", b"x", b"y" * 125, b"z" * 126, bytes(range(256)) * 4]


@pytest.mark.parametrize("server_reads", [True, False], ids=["server", "client"])
def test_one_frame_messages_take_the_fast_path(twin: str, server_reads: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Text and binary messages in one frame that fits the buffer: no general-path header read."""
    general = count_general_reads(monkeypatch)
    with tcp_conns(server_reads) as (reader, writer):
        writer.write_message(BINARY_MESSAGE, b"first")  # the first read makes the buffer
        assert reader.read_message() == (BINARY_MESSAGE, b"first")
        del general[:]
        for m in ONE_FRAME:
            writer.write_message(BINARY_MESSAGE, m)
            writer.write_message(TEXT_MESSAGE, m.hex())
        for m in ONE_FRAME:  # several frames per receive
            assert reader.read_message() == (BINARY_MESSAGE, m)
            assert reader.read_message() == (TEXT_MESSAGE, m.hex().encode())
        assert general == []


@pytest.mark.parametrize("server_reads", [True, False], ids=["server", "client"])
def test_fast_path_hands_everything_else_to_the_general_path(
    twin: str, server_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pings, fragments, frames larger than the buffer: read as before, in order, between fast ones."""
    general = count_general_reads(monkeypatch)
    with tcp_conns(server_reads) as (reader, writer):
        big = os.urandom(10000)
        writer.write_message(BINARY_MESSAGE, b"first")
        assert reader.read_message() == (BINARY_MESSAGE, b"first")
        del general[:]
        writer.write_control(9, b"ping!")
        writer.write_message(BINARY_MESSAGE, b"after ping")
        writer.write_buffer_size = 128  # the writer sends 300 bytes as three fragments
        with writer.next_writer(TEXT_MESSAGE) as w:
            w.write(b"fragmented" * 30)
        writer.write_message(BINARY_MESSAGE, big)  # 10000 > 4096: around the buffer
        writer.write_message(TEXT_MESSAGE, "fast again")
        assert reader.read_message() == (BINARY_MESSAGE, b"after ping")
        assert reader.read_message() == (TEXT_MESSAGE, b"fragmented" * 30)
        assert reader.read_message() == (BINARY_MESSAGE, big)
        assert reader.read_message() == (TEXT_MESSAGE, b"fast again")
        # The ping then "after ping" (1), the three fragments (3), the big one (1).
        assert len(general) == 5


@pytest.mark.parametrize("server_reads", [True, False], ids=["server", "client"])
def test_binary_frame_cut_after_its_header_waits_on_the_fast_path(
    twin: str, server_reads: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from helpers import encode_frame as hand_frame

    general = count_general_reads(monkeypatch)
    a, b = socket_pair("tcp")
    reader = Conn(a, is_server=server_reads)
    try:
        payload = os.urandom(3000)
        frame = hand_frame(BINARY_MESSAGE, payload, key=b"\x01\x02\x03\x04" if server_reads else None)
        b.sendall(hand_frame(BINARY_MESSAGE, b"first", key=b"abcd" if server_reads else None))
        assert reader.read_message() == (BINARY_MESSAGE, b"first")
        b.sendall(frame[:10])
        t = threading.Timer(0.05, b.sendall, (frame[10:],))
        t.start()
        assert reader.read_message() == (BINARY_MESSAGE, payload)
        t.join()
        assert general == [1]  # the first message only: no buffer yet
    finally:
        reader.close_now()
        b.close()


@pytest.mark.parametrize("server_reads", [True, False], ids=["server", "client"])
def test_bad_text_fails_before_the_rest_of_its_frame_arrives(twin: str, server_reads: bool) -> None:
    """A text frame cut short is checked as it arrives (general path): the bad byte fails the read at once."""
    from gorillaws.exceptions import ProtocolError
    from helpers import encode_frame as hand_frame

    a, b = socket_pair("tcp")
    reader = Conn(a, is_server=server_reads, close_timeout=0.1)
    try:
        b.sendall(hand_frame(BINARY_MESSAGE, b"first", key=b"abcd" if server_reads else None))
        assert reader.read_message() == (BINARY_MESSAGE, b"first")
        frame = hand_frame(TEXT_MESSAGE, b"ok \xff" + b"a" * 1000, key=b"wxyz" if server_reads else None)
        b.sendall(frame[:20])  # the rest never comes
        reader.set_read_deadline(time.monotonic() + 5)
        with pytest.raises(ProtocolError) as e:
            reader.read_message()
        assert e.value.code == 1007
    finally:
        reader.close_now()
        b.close()


@pytest.mark.parametrize("server_writes", [True, False], ids=["server", "client"])
def test_small_write_is_one_send_of_one_buffer(twin: str, server_writes: bool) -> None:
    writer, reader, wsock = _pair(server_writes)
    try:
        before = wsock.sends
        writer.write_message(BINARY_MESSAGE, b"abc" * 100)
        writer.write_message(TEXT_MESSAGE, "text")
        assert wsock.sends - before == 2
        assert reader.read_message() == (BINARY_MESSAGE, b"abc" * 100)
        assert reader.read_message() == (TEXT_MESSAGE, b"text")
    finally:
        writer.close_now()
        reader.close_now()


@pytest.mark.parametrize("limit", [1 << 70, -(1 << 70)])
def test_fast_path_takes_any_read_limit(twin: str, limit: int) -> None:
    """A read limit beyond 64 bits (either sign) means no limit on the fast path too."""
    with tcp_conns() as (reader, writer):
        reader.set_read_limit(limit)
        for m in (b"first", b"second"):
            writer.write_message(BINARY_MESSAGE, m)
            assert reader.read_message() == (BINARY_MESSAGE, m)
