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
