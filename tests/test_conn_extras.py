"""The extras from the other seed libraries and prepared messages.

net_conn (nhooyr's NetConn), ping() and close_read() (nhooyr), the built-in
keepalive, seehuhn's send_text/send_binary/receive_text/receive_binary/
get_status, and PreparedMessage in both roles.
"""

from __future__ import annotations

import io
import threading
import time
from typing import List, Tuple

import pytest

from gorillaws import (
    BINARY_MESSAGE,
    PING_MESSAGE,
    PONG_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    DeadlineExceeded,
    ErrCloseSent,
    ErrReadLimit,
    NetConn,
    PreparedMessage,
    ProtocolError,
)

from conftest import run_in_thread
from helpers import RawFactory, read_until_error

pytestmark = pytest.mark.usefixtures("no_leaks")


# ----------------------------------------------------------------------
# net_conn
# ----------------------------------------------------------------------


def test_net_conn_stream_round_trip(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    a = client.net_conn(BINARY_MESSAGE)
    b = server.net_conn()
    assert isinstance(a, NetConn) and isinstance(a, io.RawIOBase)
    assert a.readable() and a.writable()
    data = bytes(range(256)) * 400
    writer = run_in_thread(lambda: [a.write(data[i : i + 1000]) for i in range(0, len(data), 1000)])
    got = bytearray()
    while len(got) < len(data):
        chunk = b.read(777)
        assert chunk, "unexpected EOF"
        assert len(chunk) <= 777
        got += chunk
    writer.join()
    assert bytes(got) == data
    # Each write is one message on the wire.
    a.write(b"one")
    assert server.read_message() == (BINARY_MESSAGE, b"one")


def test_net_conn_with_buffered_io_and_text(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    a = client.net_conn(TEXT_MESSAGE)
    b = io.BufferedReader(server.net_conn(TEXT_MESSAGE))
    a.write(b"line one\nline ")
    a.write(b"")  # an empty message is no data, not EOF
    a.write(b"two\n")
    assert b.readline() == b"line one\n"
    assert b.readline() == b"line two\n"
    b.detach()  # otherwise collecting b closes it, and with it the Conn


def test_net_conn_normal_closure_reads_as_eof(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    a = client.net_conn()
    b = server.net_conn()
    a.write(b"payload")
    closer = run_in_thread(a.close)  # full close handshake: needs the server reading
    assert b.read(100) == b"payload"
    assert b.read(100) == b""
    assert b.read(100) == b""
    server.close_now()  # the server ends the TCP connection after the handshake
    closer.join()
    assert a.closed and client.closed
    b.close()


def test_net_conn_going_away_reads_as_eof(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    nc = conn.net_conn()
    peer.send_frame(BINARY_MESSAGE, b"x")
    peer.send_close(1001)
    assert nc.read(10) == b"x"
    assert nc.read(10) == b""


def test_net_conn_abnormal_closure_raises(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    nc = conn.net_conn()
    peer.send_close(4000, b"app error")
    with pytest.raises(CloseError) as ei:
        nc.read(10)
    assert ei.value.code == 4000
    conn2, peer2 = raw_peer(server=True)
    nc2 = conn2.net_conn()
    peer2.close()
    with pytest.raises(CloseError) as ei:
        nc2.read(10)
    assert ei.value.code == 1006


def test_net_conn_wrong_message_type_closes_1003(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    nc = conn.net_conn(BINARY_MESSAGE)
    peer.send_frame(TEXT_MESSAGE, b"not binary")
    watcher = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(ProtocolError) as ei:
        nc.read(10)
    assert ei.value.code == 1003
    assert watcher.join()[0] == 1003


def test_net_conn_wrong_type_between_conns(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    server.close_timeout = 0.2  # bounds the linger after failing
    nc = server.net_conn(TEXT_MESSAGE)
    client.write_message(BINARY_MESSAGE, b"bin")
    peer_err = run_in_thread(lambda: read_until_error(client, hang_up=True))
    with pytest.raises(ProtocolError):
        nc.read(10)
    err = peer_err.join()
    assert isinstance(err, CloseError) and err.code == 1003


# ----------------------------------------------------------------------
# ping() and close_read()
# ----------------------------------------------------------------------


def test_ping_round_trip(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    server_reader = run_in_thread(lambda: read_until_error(server, hang_up=True))
    client_reader = run_in_thread(lambda: read_until_error(client))
    rtt = client.ping(timeout=10.0)
    assert 0 <= rtt < 10.0
    assert server.ping(timeout=10.0, data=b"mine") >= 0
    # Several pings in flight from several threads, matched by payload.
    pings = [run_in_thread(lambda i=i: client.ping(10.0, b"p%d" % i)) for i in range(5)]
    for p in pings:
        assert p.join() >= 0
    client.close_timeout = 2.0
    client.close()
    assert isinstance(client_reader.join(), CloseError)
    assert isinstance(server_reader.join(), CloseError)


def test_ping_times_out_without_a_pong(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    reader = run_in_thread(lambda: read_until_error(conn))
    with pytest.raises(DeadlineExceeded) as ei:
        conn.ping(timeout=0.1, data=b"hello?")
    assert not ei.value.fatal
    f = peer.recv_frame()
    assert (f.opcode, f.payload, f.masked) == (PING_MESSAGE, b"hello?", True)
    # A pong with another payload does not count; the right one does.
    waiting = run_in_thread(lambda: conn.ping(timeout=10.0, data=b"second"))
    assert peer.recv_frame().payload == b"second"
    peer.send_frame(PONG_MESSAGE, b"other", masked=False)
    time.sleep(0.05)
    assert not waiting.done.is_set()
    peer.send_frame(PONG_MESSAGE, b"second", masked=False)
    assert waiting.join() >= 0
    peer.close()
    assert isinstance(reader.join(), CloseError)


def test_close_read_answers_control_frames_and_fails_on_data(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    done = conn.close_read()
    assert isinstance(done, threading.Event)
    peer.send_frame(PING_MESSAGE, b"are you there")
    f = peer.recv_frame()
    assert (f.opcode, f.payload) == (PONG_MESSAGE, b"are you there")
    # Writing still works while close_read's thread reads.
    conn.write_message(TEXT_MESSAGE, b"write-only")
    assert peer.recv_frame().payload == b"write-only"
    assert not done.is_set()
    peer.send_frame(BINARY_MESSAGE, b"unexpected data")
    assert peer.recv_close_and_hang_up() == (1008, b"unexpected data message")
    assert done.wait(2.0)
    assert conn.closed


def test_close_read_ends_on_peer_close(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    done = client.close_read()
    reader = run_in_thread(lambda: read_until_error(server))
    assert client.ping(timeout=2.0) >= 0  # close_read's thread sees the pong
    server.close_timeout = 2.0
    closer = run_in_thread(lambda: server.close(1001))
    assert done.wait(2.0)
    client.close_now()
    closer.join()
    assert isinstance(reader.join(), CloseError)
    assert client.get_status() == (1001, "")


# ----------------------------------------------------------------------
# Keepalive
# ----------------------------------------------------------------------


def test_keepalive_off_by_default(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    with pytest.raises(TimeoutError):
        peer.recv_frame(timeout=0.3)


def test_keepalive_pings_and_stays_open_with_responsive_peer(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    pings: List[bytes] = []

    def on_ping(data: bytes) -> None:
        pings.append(data)
        server.write_control(PONG_MESSAGE, data, time.monotonic() + 1)

    server.set_ping_handler(on_ping)
    server_reader = run_in_thread(lambda: read_until_error(server, hang_up=True))
    client_reader = run_in_thread(lambda: read_until_error(client))  # sees the pongs
    client.start_keepalive(0.05, 10.0)
    # Wait (bounded) for three pings rather than sleeping a fixed time: a
    # loaded machine may not fit three 50 ms ticks into any short sleep.
    deadline = time.monotonic() + 10.0
    while len(pings) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(pings) >= 3
    assert not client.closed
    client.write_message(TEXT_MESSAGE, b"still open")
    client.close_timeout = 2.0
    client.close()
    assert isinstance(client_reader.join(), CloseError)
    err = server_reader.join()
    assert isinstance(err, CloseError) and err.code == 1000


def test_keepalive_without_pong_closes_1011(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    reader = run_in_thread(lambda: read_until_error(conn))
    conn.start_keepalive(0.05, 0.15)
    f = peer.recv_frame()
    assert f.opcode == PING_MESSAGE and not f.masked
    code, reason = peer.recv_close()
    assert (code, reason) == (1011, b"keepalive ping timeout")
    peer.expect_eof()
    err = reader.join()
    assert isinstance(err, CloseError)
    assert (err.code, err.text) == (1006, "keepalive ping timeout")
    assert conn.closed


def test_keepalive_stopped_by_close_now(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    conn.start_keepalive(0.05)
    assert peer.recv_frame().opcode == PING_MESSAGE
    conn.close_now()  # no_leaks checks that the keepalive thread ended


# ----------------------------------------------------------------------
# seehuhn's names
# ----------------------------------------------------------------------


def test_send_and_receive_text_and_binary(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    client.send_text("héllo")
    client.send_binary(b"\x00\x01\x02")
    client.send_binary(bytearray(b"ba"))
    assert server.receive_text() == "héllo"
    buf = bytearray(10)
    assert server.receive_binary(buf) == 3 and buf[:3] == b"\x00\x01\x02"
    assert server.receive_binary(memoryview(buf)[5:]) == 2 and buf[5:7] == b"ba"
    client.send_text("x" * 10)
    assert server.receive_text(10) == "x" * 10
    assert server.get_status() == (0, "")
    client.send_text("")
    assert server.receive_text(0) == ""
    client.send_binary(b"")
    assert server.receive_binary(bytearray(0)) == 0


def test_receive_text_too_long(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"0123456789A")
    watcher = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(ErrReadLimit):
        conn.receive_text(10)
    assert watcher.join()[0] == 1009
    assert conn.read_limit() == 1 << 20  # the temporary limit was restored


def test_receive_text_limit_is_temporary(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(TEXT_MESSAGE, b"short")
    peer.send_frame(TEXT_MESSAGE, b"a much longer message")
    assert conn.receive_text(5) == "short"
    assert conn.read_message() == (TEXT_MESSAGE, b"a much longer message")


@pytest.mark.parametrize("payload, room", [(b"12345", 4), (b"1", 0)], ids=["too-small", "empty"])
def test_receive_binary_into_too_small_buffer(raw_peer: RawFactory, payload: bytes, room: int) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, payload)
    watcher = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(ErrReadLimit):
        conn.receive_binary(bytearray(room))
    assert watcher.join()[0] == 1009


@pytest.mark.parametrize("want", ["text", "binary"])
def test_receive_wrong_type_closes_1003(raw_peer: RawFactory, want: str) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE if want == "text" else TEXT_MESSAGE, b"data")
    watcher = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(ProtocolError) as ei:
        if want == "text":
            conn.receive_text()
        else:
            conn.receive_binary(bytearray(10))
    assert ei.value.code == 1003
    assert watcher.join()[0] == 1003
    with pytest.raises(ProtocolError):
        conn.read_message()


def test_get_status_after_close(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    assert conn.get_status() == (0, "")
    peer.send_close(4321, "fin".encode())
    with pytest.raises(CloseError):
        conn.receive_text()
    assert conn.get_status() == (4321, "fin")


# ----------------------------------------------------------------------
# PreparedMessage
# ----------------------------------------------------------------------


def test_prepared_message_server_role(raw_peer: RawFactory) -> None:
    pm = PreparedMessage(TEXT_MESSAGE, "préparé")
    assert pm.data == "préparé".encode()
    conns = [raw_peer(server=True) for _ in range(3)]
    for conn, peer in conns:
        conn.write_prepared_message(pm)
        conn.write_prepared_message(pm)
        for _ in range(2):
            f = peer.recv_frame()
            assert (f.fin, f.rsv, f.opcode, f.masked, f.payload) == (True, 0, TEXT_MESSAGE, False, pm.data)
    # The server frame was built once and shared.
    assert len(pm._frames) == 1
    assert "PreparedMessage" in repr(pm)


def test_prepared_message_client_role_is_masked(raw_peer: RawFactory) -> None:
    pm = PreparedMessage(BINARY_MESSAGE, bytes(range(200)))
    conn, peer = raw_peer(server=False)
    raw = []
    for _ in range(3):
        conn.write_prepared_message(pm)
        f = peer.recv_frame()
        assert (f.opcode, f.masked, f.payload) == (BINARY_MESSAGE, True, pm.data)
        raw.append(f)
    assert len(pm._frames) == 0  # client frames are masked per send, never shared


def test_prepared_message_between_conns(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    big = PreparedMessage(BINARY_MESSAGE, bytearray(70000))
    r = run_in_thread(server.read_message)
    client.write_prepared_message(big)
    assert r.join() == (BINARY_MESSAGE, bytes(70000))
    r = run_in_thread(client.read_message)
    server.write_prepared_message(big)
    assert r.join() == (BINARY_MESSAGE, bytes(70000))


def test_prepared_message_errors(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    with pytest.raises(ValueError):
        PreparedMessage(PING_MESSAGE, b"x")
    pm = PreparedMessage(BINARY_MESSAGE, memoryview(b"abc"))
    assert pm.data == b"abc"
    client.write_control(8, b"")
    with pytest.raises(ErrCloseSent):
        client.write_prepared_message(pm)


def test_close_now_with_keepalive_waiting_for_pong_is_prompt(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.start_keepalive(0.05, 30.0)  # the pong wait is long
    assert peer.recv_frame().opcode == PING_MESSAGE
    start = time.monotonic()
    conn.close_now()
    assert time.monotonic() - start < 10.0, "close_now waited for the keepalive's pong timeout"


def test_keepalive_restart_replaces_previous(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.start_keepalive(0.05, 5.0)
    assert peer.recv_frame().opcode == PING_MESSAGE
    conn.start_keepalive(10.0)  # replaces the first one: no more pings soon
    with pytest.raises(TimeoutError):
        while True:
            assert peer.recv_frame(timeout=0.3).opcode == PING_MESSAGE
    conn.close_now()
