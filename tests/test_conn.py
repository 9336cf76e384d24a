"""Tests for gorillaws.Conn: framing, reading, writing, handlers, closing.

Run over both a Unix socketpair and a real 127.0.0.1 TCP connection (the
``transport`` fixture in conftest).  Hostile frames live in
test_conn_hostile.py, deadlines in test_conn_deadlines.py, threads in
test_conn_concurrency.py.
"""

from __future__ import annotations

import io
import itertools
import json
import socket
import struct
import time
from typing import Any, List, Tuple

import pytest

import gorillaws
from gorillaws import (
    BINARY_MESSAGE,
    CLOSE_MESSAGE,
    PING_MESSAGE,
    PONG_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    ErrCloseSent,
    ErrReadLimit,
    SimpleBufferPool,
    is_close_error,
    is_unexpected_close_error,
)

from conftest import RawPeer, close_payload, run_in_thread
from helpers import PairFactory, RawFactory, read_in_pieces, read_until_error

pytestmark = pytest.mark.usefixtures("no_leaks")


SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


def _payload(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


# ----------------------------------------------------------------------
# Round trips and the wire format
# ----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_both_directions(conn_pair: Tuple[Conn, Conn], size: int) -> None:
    server, client = conn_pair
    data = _payload(size)
    text = ("aé€😀" * (size // 10 + 1))[: max(0, size // 4)]
    # Large messages must not deadlock on socket buffers: the reader runs in a thread.
    r = run_in_thread(server.read_message)
    client.write_message(BINARY_MESSAGE, data)
    assert r.join() == (BINARY_MESSAGE, data)
    r = run_in_thread(client.read_message)
    server.write_message(TEXT_MESSAGE, text)
    mt, got = r.join()
    assert (mt, got.decode("utf-8")) == (TEXT_MESSAGE, text)
    assert isinstance(got, bytes)


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("server", [True, False])
def test_wire_format_lengths_and_masking(raw_peer: RawFactory, size: int, server: bool) -> None:
    conn, peer = raw_peer(server=server)
    data = _payload(size)
    r = run_in_thread(lambda: peer.recv_frame())
    conn.write_message(BINARY_MESSAGE, data)
    f = r.join()
    assert (f.fin, f.rsv, f.opcode, f.payload) == (True, 0, BINARY_MESSAGE, data)
    assert f.masked is (not server), "clients mask every frame, servers never do"
    # And the other way: the Conn reads hand-framed messages of every length form.
    r2 = run_in_thread(conn.read_message)
    peer.send_frame(TEXT_MESSAGE, b"x" * size)
    assert r2.join() == (TEXT_MESSAGE, b"x" * size)


def test_client_masking_keys_differ(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    keys = set()
    for _ in range(20):
        conn.write_message(BINARY_MESSAGE, b"abcd")
        head = peer.sock.recv(6, socket.MSG_WAITALL)
        body = peer.sock.recv(4, socket.MSG_WAITALL)
        assert head[1] == 0x80 | 4
        keys.add(head[2:6])
        assert bytes(b ^ head[2 + (i & 3)] for i, b in enumerate(body)) == b"abcd"
    assert len(keys) > 15


def test_all_message_types_via_write_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.write_message(TEXT_MESSAGE, "héllo")
    conn.write_message(BINARY_MESSAGE, bytearray(b"\x00\x01"))
    conn.write_message(BINARY_MESSAGE, memoryview(b"mv"))
    conn.write_message(PING_MESSAGE, b"p")
    conn.write_message(PONG_MESSAGE, b"q")
    got = [(f.opcode, f.payload) for f in (peer.recv_frame() for _ in range(5))]
    assert got == [(1, "héllo".encode()), (2, b"\x00\x01"), (2, b"mv"), (9, b"p"), (10, b"q")]
    conn.write_message(CLOSE_MESSAGE, close_payload(1000, b"done"))
    assert peer.recv_close() == (1000, b"done")
    with pytest.raises(ValueError):
        conn.write_message(3, b"bad type")


def test_empty_fragments_and_empty_messages(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"")
    assert conn.read_message() == (TEXT_MESSAGE, b"")
    peer.send_frame(BINARY_MESSAGE, b"", fin=False)
    peer.send_frame(0, b"", fin=False)
    peer.send_frame(0, b"ab", fin=False)
    peer.send_frame(0, b"", fin=True)
    assert conn.read_message() == (BINARY_MESSAGE, b"ab")


def test_fragmented_message_with_interleaved_controls(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    pongs: List[bytes] = []
    conn.set_pong_handler(pongs.append)
    text = "fragmented ünïcödé message".encode()
    peer.send_frame(TEXT_MESSAGE, text[:5], fin=False)
    peer.send_frame(PING_MESSAGE, b"ping-1")
    peer.send_frame(0, text[5:9], fin=False)  # splits "ü" in two
    peer.send_frame(PONG_MESSAGE, b"pong-1")
    peer.send_frame(PING_MESSAGE, b"")
    peer.send_frame(0, text[9:], fin=True)
    assert conn.read_message() == (TEXT_MESSAGE, text)
    assert pongs == [b"pong-1"]
    replies = [peer.recv_frame(), peer.recv_frame()]
    assert [(f.opcode, f.payload) for f in replies] == [(PONG_MESSAGE, b"ping-1"), (PONG_MESSAGE, b"")]


def test_initial_data_is_read_first(transport: str) -> None:
    from conftest import build_frame, socket_pair

    a, b = socket_pair(transport)
    first = build_frame(TEXT_MESSAGE, b"early", key=b"\x01\x02\x03\x04")
    conn = Conn(a, is_server=True, initial_data=first[:4])
    try:
        b.sendall(first[4:] + build_frame(BINARY_MESSAGE, b"later", key=b"abcd"))
        assert conn.read_message() == (TEXT_MESSAGE, b"early")
        assert conn.read_message() == (BINARY_MESSAGE, b"later")
    finally:
        conn.close_now()
        b.close()


# ----------------------------------------------------------------------
# next_reader
# ----------------------------------------------------------------------


def test_next_reader_streams_across_fragments(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    parts = [b"abc", b"", b"defgh", b"ijklmnopqrstuvwxyz"]
    for i, p in enumerate(parts):
        peer.send_frame(BINARY_MESSAGE if i == 0 else 0, p, fin=i == len(parts) - 1)
    mt, r = conn.next_reader()
    assert mt == BINARY_MESSAGE
    assert isinstance(r, io.RawIOBase) and r.readable()
    got = b""
    while True:
        chunk = r.read(4)
        assert len(chunk) <= 4
        if not chunk:
            break
        got += chunk
    assert got == b"".join(parts)
    assert r.read() == b""
    assert r.read(10) == b""


def test_next_reader_readinto_and_readall(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"0123456789", fin=False)
    peer.send_frame(0, b"abcdef", fin=True)
    mt, r = conn.next_reader()
    buf = bytearray(7)
    assert r.readinto(buf) == 7 and buf == b"0123456"
    assert r.readall() == b"789abcdef"
    assert r.readinto(buf) == 0


def test_next_reader_discards_rest_of_previous_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"first-part-", fin=False)
    peer.send_frame(0, b"second-part", fin=True)
    peer.send_frame(TEXT_MESSAGE, b"next message")
    mt, r = conn.next_reader()
    assert r.read(3) == b"fir"
    mt2, r2 = conn.next_reader()
    assert (mt2, r2.read()) == (TEXT_MESSAGE, b"next message")
    with pytest.raises(ValueError):
        r.read(1)  # the old reader is stale


def test_read_message_after_partial_next_reader(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"x" * 1000, fin=False)
    peer.send_frame(0, b"y" * 1000)
    peer.send_frame(BINARY_MESSAGE, b"z")
    _, r = conn.next_reader()
    r.read(10)
    assert conn.read_message() == (BINARY_MESSAGE, b"z")


def test_next_reader_large_message_small_buffer(conn_pair_factory: PairFactory) -> None:
    server, client = conn_pair_factory(read_buffer_size=256, write_buffer_size=300)
    data = _payload(200_000)

    def send() -> None:
        with client.next_writer(BINARY_MESSAGE) as w:
            for i in range(0, len(data), 7777):
                w.write(data[i : i + 7777])

    t = run_in_thread(send)
    _, r = server.next_reader()
    got = read_in_pieces(r, itertools.cycle([1, 100, 5000, 17, 65536]))
    t.join()
    assert got == data


# ----------------------------------------------------------------------
# JSON, seehuhn names, getters
# ----------------------------------------------------------------------


def test_json_round_trip(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    value = {"a": [1, 2.5, None, True], "é": "ü"}
    client.write_json(value)
    assert server.read_json() == value
    server.write_json([1, "two"])
    mt, raw = client.read_message()
    assert mt == TEXT_MESSAGE and json.loads(raw) == [1, "two"]
    client.write_message(TEXT_MESSAGE, b"{not json")
    with pytest.raises(ValueError):
        server.read_json()
    with pytest.raises(TypeError):
        client.write_json(object())
    # A failed encode sends nothing: the stream is still in sync.
    client.write_json({"ok": 1})
    assert server.read_json() == {"ok": 1}


def test_accessors(transport: str) -> None:
    from conftest import socket_pair

    a, b = socket_pair(transport)
    server = Conn(a, is_server=True, subprotocol="chat")
    client = Conn(b, is_server=False)
    try:
        assert server.subprotocol() == "chat"
        assert client.subprotocol() == ""
        assert server.underlying_conn() is a
        assert server.local_addr() == a.getsockname()
        assert server.remote_addr() == a.getpeername()
        if transport == "tcp":
            assert server.local_addr() == client.remote_addr()
            assert server.remote_addr() == client.local_addr()
        assert "server" in repr(server) and "client" in repr(client)
        assert server.read_limit() == gorillaws.DEFAULT_READ_LIMIT == 1 << 20
        assert not server.closed
    finally:
        server.close_now()
        client.close_now()
    assert server.closed
    assert "closed" in repr(server)


# ----------------------------------------------------------------------
# Read limit
# ----------------------------------------------------------------------


def test_default_read_limit_is_one_mib(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    limit = 1 << 20
    r = run_in_thread(conn.read_message)
    peer.send_frame(BINARY_MESSAGE, bytes(limit))
    assert r.join() == (BINARY_MESSAGE, bytes(limit))
    # One byte more: refused from the header alone, before the payload is sent.
    peer.send_frame(BINARY_MESSAGE, b"", length=limit + 1)
    with pytest.raises(ErrReadLimit) as ei:
        conn.read_message()
    assert ei.value.code == 1009
    assert peer.recv_close()[0] == 1009
    peer.expect_eof()


def test_read_limit_across_fragments(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_read_limit(10)
    assert conn.read_limit() == 10
    peer.send_frame(TEXT_MESSAGE, b"0123456789")
    assert conn.read_message() == (TEXT_MESSAGE, b"0123456789")
    peer.send_frame(TEXT_MESSAGE, b"012345", fin=False)
    peer.send_frame(0, b"6789", fin=False)
    peer.send_frame(0, b"X", fin=True)
    with pytest.raises(ErrReadLimit):
        conn.read_message()
    assert peer.recv_close()[0] == 1009
    with pytest.raises(ErrReadLimit):  # sticky
        conn.read_message()


def test_read_limit_with_next_reader(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_read_limit(8)
    peer.send_frame(BINARY_MESSAGE, b"1234", fin=False)
    peer.send_frame(0, b"56789", fin=True)
    _, r = conn.next_reader()
    assert r.read(4) == b"1234"
    with pytest.raises(ErrReadLimit):
        r.read(4)
    assert peer.recv_close()[0] == 1009


def test_read_limit_zero_means_unlimited(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    server.set_read_limit(0)
    data = bytes((1 << 20) + 5)
    r = run_in_thread(server.read_message)
    client.write_message(BINARY_MESSAGE, data)
    assert r.join() == (BINARY_MESSAGE, data)


# ----------------------------------------------------------------------
# Writers and buffers
# ----------------------------------------------------------------------


def test_next_writer_fragments_by_write_buffer_size(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, write_buffer_size=128)
    data = _payload(1000)
    w = conn.next_writer(BINARY_MESSAGE)
    assert w.writable()
    w.write(data[:300])
    w.write(data[300:])
    w.close()
    w.close()  # idempotent
    frames_seen = []
    while True:
        f = peer.recv_frame()
        frames_seen.append(f)
        if f.fin:
            break
    assert frames_seen[0].opcode == BINARY_MESSAGE
    assert all(f.opcode == 0 for f in frames_seen[1:])
    assert all(len(f.payload) == 128 for f in frames_seen[:-1])
    assert 0 < len(frames_seen[-1].payload) <= 128
    assert b"".join(f.payload for f in frames_seen) == data
    with pytest.raises(ValueError):
        w.write(b"after close")


def test_next_writer_text_and_context_manager(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    with client.next_writer(TEXT_MESSAGE) as w:
        w.write("héllo ")
        w.write(b"world")
    assert server.read_message() == (TEXT_MESSAGE, "héllo world".encode())
    with pytest.raises(ValueError):
        client.next_writer(3)  # a reserved opcode; all five message types are allowed, as in gorilla


def test_next_writer_same_thread_closes_previous_writer(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    w1 = client.next_writer(TEXT_MESSAGE)
    w1.write(b"one")
    w2 = client.next_writer(BINARY_MESSAGE)  # gorilla: closes w1 first
    w2.write(b"two")
    w2.close()
    client.write_message(TEXT_MESSAGE, b"three")
    assert server.read_message() == (TEXT_MESSAGE, b"one")
    assert server.read_message() == (BINARY_MESSAGE, b"two")
    assert server.read_message() == (TEXT_MESSAGE, b"three")


class CountingPool(SimpleBufferPool):
    def __init__(self) -> None:
        super().__init__()
        self.gets = 0
        self.puts = 0

    def get(self) -> Any:
        self.gets += 1
        return super().get()

    def put(self, buf: bytearray) -> None:
        self.puts += 1
        super().put(buf)


def test_write_buffer_pool(conn_pair_factory: PairFactory) -> None:
    pool = CountingPool()
    server, client = conn_pair_factory(client_kwargs={"write_buffer_pool": pool})
    for i in range(3):
        with client.next_writer(BINARY_MESSAGE) as w:
            w.write(b"msg%d" % i)
        assert server.read_message() == (BINARY_MESSAGE, b"msg%d" % i)
    assert pool.gets == 3 and pool.puts == 3
    # The buffer is recycled: the pool holds one buffer, not three.
    assert len(pool._free) == 1
    buf = pool.get()
    assert isinstance(buf, bytearray) and len(buf) == 0


def test_simple_buffer_pool_bounds() -> None:
    pool = SimpleBufferPool(max_buffers=2)
    assert pool.get() is None
    for _ in range(3):
        pool.put(bytearray(b"x"))
    assert pool.get() is not None and pool.get() is not None and pool.get() is None


@pytest.mark.parametrize("rbs,wbs", [(1, 1), (256, 128), (100_000, 100_000)])
def test_buffer_sizes(conn_pair_factory: PairFactory, rbs: int, wbs: int) -> None:
    server, client = conn_pair_factory(read_buffer_size=rbs, write_buffer_size=wbs)
    assert client.write_buffer_size >= 128
    data = _payload(5000)
    with client.next_writer(BINARY_MESSAGE) as w:
        w.write(data)
    assert server.read_message() == (BINARY_MESSAGE, data)


# ----------------------------------------------------------------------
# Handlers
# ----------------------------------------------------------------------


def test_default_handlers(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    peer.send_frame(PING_MESSAGE, b"hello")
    peer.send_frame(PONG_MESSAGE, b"ignored")
    peer.send_frame(TEXT_MESSAGE, b"msg")
    assert conn.read_message() == (TEXT_MESSAGE, b"msg")
    f = peer.recv_frame()
    assert (f.opcode, f.payload, f.masked) == (PONG_MESSAGE, b"hello", True)
    # Default close handler: echo the code (not the text).
    peer.send_close(1001, b"going")
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert (ei.value.code, ei.value.text) == (1001, "going")
    assert peer.recv_close() == (1001, b"")
    assert conn.get_status() == (1001, "going")


def test_default_close_handler_echoes_empty_close(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_close(None)
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 1005
    assert peer.recv_close() == (1005, b"")


def test_custom_handlers_and_getters(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    default_ping, default_pong, default_close = conn.ping_handler(), conn.pong_handler(), conn.close_handler()
    seen: List[Any] = []

    def on_ping(d: bytes) -> None:
        seen.append(("ping", d))

    def on_pong(d: bytes) -> None:
        seen.append(("pong", d))

    def on_close(code: int, text: str) -> None:
        seen.append(("close", code, text))

    conn.set_ping_handler(on_ping)
    conn.set_pong_handler(on_pong)
    conn.set_close_handler(on_close)
    assert conn.ping_handler() is on_ping
    assert conn.pong_handler() is on_pong
    assert conn.close_handler() is on_close
    peer.send_frame(PING_MESSAGE, b"1")
    peer.send_frame(PONG_MESSAGE, b"2")
    peer.send_frame(BINARY_MESSAGE, b"data")
    assert conn.read_message() == (BINARY_MESSAGE, b"data")
    peer.send_close(4001, "señal".encode())
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 4001 and ei.value.text == "señal"
    assert seen == [("ping", b"1"), ("pong", b"2"), ("close", 4001, "señal")]
    # The custom ping handler sent no pong and the close handler no close frame.
    conn.close_now()
    assert peer.expect_eof() == b""
    # None restores the defaults.
    conn.set_ping_handler(None)
    conn.set_pong_handler(None)
    conn.set_close_handler(None)
    assert conn.ping_handler() == default_ping
    assert conn.pong_handler() == default_pong
    assert conn.close_handler() == default_close


def test_handler_exception_is_raised_by_read_and_sticky(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)

    class Boom(Exception):
        pass

    def on_ping(d: bytes) -> None:
        raise Boom(d)

    conn.set_ping_handler(on_ping)
    peer.send_frame(PING_MESSAGE, b"x")
    peer.send_frame(TEXT_MESSAGE, b"never read")
    with pytest.raises(Boom) as e1:
        conn.read_message()
    with pytest.raises(Boom) as e2:
        conn.next_reader()
    assert e1.value is e2.value


def test_handler_can_write_from_reading_thread(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    server.set_ping_handler(lambda d: server.write_message(TEXT_MESSAGE, b"got ping " + d))
    client.write_control(PING_MESSAGE, b"42")
    client.write_message(BINARY_MESSAGE, b"after")
    assert server.read_message() == (BINARY_MESSAGE, b"after")
    assert client.read_message() == (TEXT_MESSAGE, b"got ping 42")


# ----------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------


def test_close_error_is_sticky(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_close(1000, b"bye")
    with pytest.raises(CloseError) as e1:
        conn.read_message()
    with pytest.raises(CloseError) as e2:
        conn.next_reader()
    with pytest.raises(CloseError) as e3:
        conn.read_json()
    assert e1.value is e2.value is e3.value
    assert str(e1.value) == "websocket: close 1000 (normal): bye"


def test_eof_reads_as_abnormal_closure(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"last")
    peer.close()
    assert conn.read_message() == (TEXT_MESSAGE, b"last")
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 1006
    assert conn.close_status(ei.value) == 1006


def test_error_helpers() -> None:
    e = CloseError(1001, "away")
    assert is_close_error(e, 1000, 1001)
    assert not is_close_error(e, 1000)
    assert not is_close_error(ValueError(), 1001)
    assert not is_close_error(None, 1001)
    assert is_unexpected_close_error(e, 1000)
    assert not is_unexpected_close_error(e, 1000, 1001)
    assert not is_unexpected_close_error(ValueError(), 1000)
    assert not is_unexpected_close_error(None)
    assert isinstance(ErrReadLimit(), gorillaws.ProtocolError)
    assert ErrReadLimit().code == 1009
    assert isinstance(gorillaws.DeadlineExceeded(), TimeoutError)
    assert issubclass(gorillaws.ErrBadHandshake, gorillaws.HandshakeError)
    for exc in (CloseError, ErrCloseSent, ErrReadLimit, gorillaws.HandshakeError, gorillaws.DeadlineExceeded):
        assert issubclass(exc, gorillaws.WebSocketError)


def test_close_status(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    assert server.close_status(CloseError(4000, "")) == 4000
    assert server.close_status(ValueError()) == -1
    assert server.close_status(None) == -1
    assert server.get_status() == (0, "")


# ----------------------------------------------------------------------
# Closing
# ----------------------------------------------------------------------


def test_close_handshake_with_responsive_peer(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    reader = run_in_thread(lambda: read_until_error(server, hang_up=True))
    client.write_message(TEXT_MESSAGE, b"before close")
    start = time.monotonic()
    client.close(1000, "bye")
    elapsed = time.monotonic() - start
    err = reader.join()
    assert isinstance(err, CloseError) and (err.code, err.text) == (1000, "bye")
    assert elapsed < gorillaws.DEFAULT_CLOSE_TIMEOUT - 1, "close() waited for the timeout despite the reply"
    assert client.closed
    assert client.get_status() == (1000, "")  # the server's echo
    assert server.get_status() == (1000, "bye")
    server.close()
    assert server.closed
    client.close()  # again: no error


def test_close_while_this_conn_is_reading_in_another_thread(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    peer_reader = run_in_thread(lambda: read_until_error(server, hang_up=True))
    my_reader = run_in_thread(lambda: read_until_error(client))
    time.sleep(0.05)
    client.close(4001, "done")
    err = my_reader.join()
    assert isinstance(err, CloseError) and err.code == 4001  # the server echoed our code
    perr = peer_reader.join()
    assert isinstance(perr, CloseError) and perr.code == 4001
    assert client.closed


def _answer_close(peer: RawPeer) -> Tuple[int, bytes]:
    """Echo the Conn's close frame's code, wait for it to end the TCP connection, end ours; return what it sent."""
    got = peer.recv_close()
    peer.send_close(got[0])
    peer.expect_eof()  # the Conn ends the TCP connection...
    peer.close()  # ...and so do we
    return got


def test_close_with_raw_peer_answering(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, close_timeout=30.0)
    r = run_in_thread(lambda: _answer_close(peer))
    start = time.monotonic()
    conn.close(1001, "going away")
    assert time.monotonic() - start < 10.0
    assert r.join() == (1001, b"going away")
    assert conn.get_status() == (1001, "")


def test_close_skips_unread_messages(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, close_timeout=30.0)

    def answer() -> Tuple[int, bytes]:
        # Sent from this thread: 70 kB may not fit the socket buffers.
        peer.send_frame(TEXT_MESSAGE, b"unread 1")
        peer.send_frame(BINARY_MESSAGE, b"x" * 70000, fin=False)
        peer.send_frame(0, b"y", fin=True)
        return _answer_close(peer)

    r = run_in_thread(answer)
    start = time.monotonic()
    conn.close()
    assert time.monotonic() - start < 10.0
    assert r.join() == (1000, b"")


def test_close_bounded_when_peer_never_answers(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False, close_timeout=0.3)
    start = time.monotonic()
    conn.close(1000, "")
    elapsed = time.monotonic() - start
    assert 0.25 <= elapsed < 3.0
    assert peer.recv_close() == (1000, b"")
    assert peer.expect_eof() == b""
    assert conn.closed


def test_close_bounded_while_other_thread_reads_and_peer_is_silent(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, close_timeout=0.3)
    reader = run_in_thread(lambda: read_until_error(conn))
    time.sleep(0.05)
    start = time.monotonic()
    conn.close()
    assert time.monotonic() - start < 3.0
    err = reader.join()
    assert isinstance(err, CloseError) and err.code == 1006
    assert peer.recv_close() == (1000, b"")


def test_close_now(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    blocked = run_in_thread(lambda: read_until_error(client))
    time.sleep(0.05)
    client.close_now()
    err = blocked.join()
    assert isinstance(err, CloseError) and err.code == 1006
    assert client.closed
    client.close_now()  # idempotent
    client.close()  # no-op after close_now
    # The peer sees the connection end without a close frame.
    perr = read_until_error(server)
    assert isinstance(perr, CloseError) and perr.code == 1006
    with pytest.raises(OSError):
        client.write_message(TEXT_MESSAGE, b"after close_now")


def test_err_close_sent(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.write_control(CLOSE_MESSAGE, gorillaws.format_close_message(1000, "bye"))
    with pytest.raises(ErrCloseSent):
        client.write_message(TEXT_MESSAGE, b"late")
    with pytest.raises(ErrCloseSent):
        client.next_writer(TEXT_MESSAGE)
    with pytest.raises(ErrCloseSent):
        client.write_control(PING_MESSAGE, b"")
    with pytest.raises(ErrCloseSent):
        client.write_control(CLOSE_MESSAGE, b"")
    with pytest.raises(ErrCloseSent):
        client.write_json({})
    err = read_until_error(server)
    assert isinstance(err, CloseError) and (err.code, err.text) == (1000, "bye")
    # The client still reads: it sees the server's echo.
    with pytest.raises(CloseError) as ei:
        client.read_message()
    assert ei.value.code == 1000


def test_close_from_writer_mid_message_raises_err_close_sent(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.write_buffer_size = 128
    w = client.next_writer(BINARY_MESSAGE)
    w.write(b"x" * 200)  # one fragment out
    client.write_control(CLOSE_MESSAGE, gorillaws.format_close_message(1000))
    with pytest.raises(ErrCloseSent):
        w.write(b"y" * 200)
    w2 = run_in_thread(w.close)  # releases the writer even though it fails
    with pytest.raises(ErrCloseSent):
        w2.join()
    with pytest.raises(ErrCloseSent):
        client.write_message(TEXT_MESSAGE, b"x")  # would hang if the writer lock leaked


def test_context_manager_closes(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.close_timeout = 0.5
    reader = run_in_thread(lambda: read_until_error(server, hang_up=True))
    with client:
        client.write_message(TEXT_MESSAGE, b"hi")
    assert client.closed
    err = reader.join()
    assert isinstance(err, CloseError) and err.code == 1000


def test_write_control_validation(conn_pair: Tuple[Conn, Conn]) -> None:
    _, client = conn_pair
    with pytest.raises(ValueError):
        client.write_control(PING_MESSAGE, b"x" * 126)
    with pytest.raises(ValueError):
        client.write_control(TEXT_MESSAGE, b"x")
    client.write_control(PING_MESSAGE, b"x" * 125)
    client.write_control(PONG_MESSAGE, "str payload")


def test_close_payload_on_the_wire(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.write_control(CLOSE_MESSAGE, gorillaws.format_close_message(4999, "é"))
    f = peer.recv_frame()
    assert (f.opcode, f.payload) == (CLOSE_MESSAGE, struct.pack("!H", 4999) + "é".encode())


def test_close_frame_inside_fragmented_message(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"half a mess", fin=False)
    peer.send_close(1001, b"leaving")
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert (ei.value.code, ei.value.text) == (1001, "leaving")
    assert peer.recv_close() == (1001, b"")


def test_handlers_run_in_the_reading_thread(conn_pair: Tuple[Conn, Conn]) -> None:
    import threading

    server, client = conn_pair
    where: List[Any] = []
    server.set_ping_handler(lambda d: where.append(("ping", threading.get_ident())))
    server.set_pong_handler(lambda d: where.append(("pong", threading.get_ident())))
    server.set_close_handler(lambda c, t: where.append(("close", threading.get_ident())))
    client.write_control(PING_MESSAGE, b"")
    client.write_control(PONG_MESSAGE, b"")
    client.write_message(TEXT_MESSAGE, b"m")
    client.write_control(CLOSE_MESSAGE, gorillaws.format_close_message(1000))

    def read_all() -> int:
        assert server.read_message() == (TEXT_MESSAGE, b"m")
        with pytest.raises(CloseError):
            server.read_message()
        return threading.get_ident()

    reader_id = run_in_thread(read_all).join()
    assert where == [("ping", reader_id), ("pong", reader_id), ("close", reader_id)]


def test_addresses_given_by_the_caller_or_read_from_the_socket() -> None:
    """``Conn(addrs=...)`` takes the caller's addresses; without it the socket's are read."""
    a, b = socket.socketpair()
    given = Conn(a, is_server=True, addrs=(("1.2.3.4", 1), ("5.6.7.8", 2)))
    assert (given.local_addr(), given.remote_addr()) == (("1.2.3.4", 1), ("5.6.7.8", 2))
    given.close_now()
    b.close()
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        read = Conn(accepted, is_server=True)
        try:
            assert read.local_addr() == client.getpeername()
            assert read.remote_addr() == client.getsockname()
        finally:
            read.close_now()
            client.close()
