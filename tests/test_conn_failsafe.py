"""The Conn fails safe: stream integrity, guarded deadlines, one error family, bounded write memory.

* Whatever cuts a write off mid-frame (a signal's exception, MemoryError,
  a bad argument) fails writing for good: the peer never sees a byte after
  the broken frame, and every later write raises a sticky, fatal error.
* Deadlines are checked when set (a wall-clock time is refused), far ones
  are clamped, and a deadline that was past when set says what went wrong.
* After the handshake every failure is a WebSocketError, with the socket
  error as ``__cause__`` and ``except OSError`` still working.
* A write with a deadline does not copy its payload.
"""

from __future__ import annotations

import array
import contextlib
import signal
import socket
import struct
import sys
import threading
import time
import tracemalloc
from typing import Any, Iterator, List, Tuple, Type

import pytest

from gorillaws import (
    BINARY_MESSAGE,
    CLOSE_MESSAGE,
    PING_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    DeadlineExceeded,
    ErrCloseSent,
    WebSocketError,
)
from gorillaws.conn import ConnState
from gorillaws.exceptions import ConnectionClosedError, ErrReadLimit, ProtocolError, close_code_for

from conftest import RawPeer, close_payload, run_in_thread, socket_pair
from helpers import RawFactory

pytestmark = pytest.mark.usefixtures("no_leaks")


# Big enough to fill any loopback socket buffer (TCP autotuning included).
BIG = 32 << 20
SHORT = 0.1


class Interrupt(BaseException):
    """Stands in for KeyboardInterrupt (which pytest would take as the user's)."""


@contextlib.contextmanager
def _alarm_interrupts(seconds: float) -> Iterator[None]:
    """Raise :class:`Interrupt` from a SIGALRM handler ``seconds`` from now (a stand-in for Ctrl-C)."""

    def on_alarm(signum: int, frame: Any) -> None:
        raise Interrupt()

    old = signal.signal(signal.SIGALRM, on_alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, seconds)
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _first_frame_length(data: bytes) -> int:
    """Total size (header + payload) of the unmasked frame at the start of ``data``.

    More than ``len(data)`` when even the header is cut short.
    """
    if len(data) < 10:
        return len(data) + 1
    n = data[1] & 0x7F
    if n == 126:
        return 4 + struct.unpack("!H", data[2:4])[0]
    if n == 127:
        return 10 + struct.unpack("!Q", data[2:10])[0]
    return 2 + n


def _assert_writes_broken(conn: Conn, cause_type: Type[BaseException]) -> ConnectionClosedError:
    """Every kind of write now raises the same sticky, fatal ConnectionClosedError."""
    with pytest.raises(ConnectionClosedError) as ei:
        conn.write_message(TEXT_MESSAGE, b"after")
    err = ei.value
    assert isinstance(err.__cause__, cause_type)
    assert err.fatal and err.code == 1006
    assert isinstance(err, WebSocketError) and isinstance(err, OSError)
    for write in (
        lambda: conn.write_message(BINARY_MESSAGE, b"again"),
        lambda: conn.next_writer(TEXT_MESSAGE),
        lambda: conn.write_control(PING_MESSAGE, b"", time.monotonic() + 1),
        lambda: conn.write_control(CLOSE_MESSAGE, b"", time.monotonic() - 1),
    ):
        with pytest.raises(ConnectionClosedError) as ei2:
            write()
        assert ei2.value is err
    return err


def _peer_sees_nothing_after_frame(conn: Conn, peer: RawPeer) -> bytes:
    """Close the Conn (it must send nothing more) and return all the peer got."""
    conn.close()  # tries a close frame: must not send it after a broken frame
    got = peer.expect_eof(timeout=5.0)
    assert len(got) < _first_frame_length(got), "bytes after the broken frame reached the peer"
    return got


# ----------------------------------------------------------------------
# Stream integrity
# ----------------------------------------------------------------------


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)")
def test_signal_interrupting_a_large_write_breaks_writing_for_good(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    with _alarm_interrupts(0.2), pytest.raises(Interrupt):
        conn.write_message(BINARY_MESSAGE, bytes(BIG))  # the peer does not read: blocks
    _assert_writes_broken(conn, Interrupt)
    got = _peer_sees_nothing_after_frame(conn, peer)
    assert got[0] == 0x82 and _first_frame_length(got) == 10 + BIG


class _HalfThenRaise:
    """A socket stand-in whose sends put a few bytes on the wire, then raise."""

    def __init__(self, sock: socket.socket, exc: BaseException) -> None:
        self._sock = sock
        self._exc = exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def _half(self, data: Any) -> int:
        self._sock.sendall(bytes(memoryview(data).cast("B")[:3]))
        raise self._exc

    def send(self, data: Any, *flags: int) -> int:
        return self._half(data)

    def sendall(self, data: Any, *flags: int) -> None:
        self._half(data)

    def sendmsg(self, parts: Any, *rest: Any) -> int:
        return self._half(parts[0])


@pytest.mark.parametrize("exc_type", [KeyboardInterrupt, MemoryError, TypeError])
@pytest.mark.parametrize("size", [10, 100_000])
@pytest.mark.parametrize("with_deadline", [False, True])
def test_exception_mid_frame_breaks_writing_for_good(
    raw_peer: RawFactory, exc_type: Type[BaseException], size: int, with_deadline: bool
) -> None:
    conn, peer = raw_peer(server=True)
    if with_deadline:
        conn.set_write_deadline(time.monotonic() + 30)
    conn._io.sock = _HalfThenRaise(conn._sock, exc_type("boom"))  # type: ignore[assignment]
    with pytest.raises(exc_type):
        conn.write_message(BINARY_MESSAGE, b"x" * size)
    conn._io.sock = conn._sock
    err = _assert_writes_broken(conn, exc_type)
    assert exc_type.__name__ in str(err)
    assert len(_peer_sees_nothing_after_frame(conn, peer)) == 3


def test_bad_argument_mid_message_breaks_writing(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, write_buffer_size=128)
    w = conn.next_writer(BINARY_MESSAGE)
    w.write(b"x" * 300)  # two fragments are out
    with pytest.raises(TypeError):
        w.write(12345)
    w.close()  # the writer was abandoned: nothing more is sent
    _assert_writes_broken(conn, TypeError)
    for _ in range(2):
        f = peer.recv_frame()
        assert not f.fin and f.payload == b"x" * 128
    conn.close()
    assert peer.expect_eof() == b""


def test_exception_in_a_with_block_mid_message_breaks_writing(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, write_buffer_size=128)
    with pytest.raises(ZeroDivisionError):
        with conn.next_writer(TEXT_MESSAGE) as w:
            w.write(b"y" * 200)  # one fragment out
            1 / 0
    _assert_writes_broken(conn, ZeroDivisionError)
    f = peer.recv_frame()
    assert (f.fin, f.opcode) == (False, TEXT_MESSAGE)


def test_abandoned_message_with_nothing_sent_leaves_the_connection_usable(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    w = conn.next_writer(TEXT_MESSAGE)
    w.write(b"half a mess")
    with pytest.raises(TypeError):
        w.write(None)
    with pytest.raises(ValueError):
        with conn.next_writer(TEXT_MESSAGE) as w2:
            w2.write(b"never")
            raise ValueError("changed my mind")
    conn.write_message(TEXT_MESSAGE, b"whole")
    assert peer.recv_message() == (TEXT_MESSAGE, b"whole", [])


def test_wide_item_buffers_are_sent_as_their_bytes(raw_peer: RawFactory) -> None:
    # len(array('i', ...)) counts items: the header must count bytes.
    conn, peer = raw_peer(server=False)
    a = array.array("i", [1, 2, 3])
    conn.write_message(BINARY_MESSAGE, a)
    conn.write_message(BINARY_MESSAGE, memoryview(a))
    w = conn.next_writer(BINARY_MESSAGE)
    assert w.write(a) == a.itemsize * 3
    w.close()
    conn.write_control(PING_MESSAGE, array.array("h", [7]))
    for _ in range(3):
        assert peer.recv_frame().payload == a.tobytes()
    assert peer.recv_frame().payload == array.array("h", [7]).tobytes()


def test_after_a_fatal_write_deadline_every_write_is_fatal(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_write_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.write_message(BINARY_MESSAGE, bytes(BIG))
    first = ei.value
    assert first.fatal
    time.sleep(SHORT)  # the same deadline has passed: no lock can be had in time
    for write in (
        lambda: conn.write_message(BINARY_MESSAGE, b"x"),
        lambda: conn.next_writer(BINARY_MESSAGE),
        lambda: conn.write_control(PING_MESSAGE, b"", time.monotonic() - 1),
        lambda: conn.write_json({}),
    ):
        with pytest.raises(DeadlineExceeded) as ei2:
            write()
        assert ei2.value is first and ei2.value.fatal


# ----------------------------------------------------------------------
# Deadlines
# ----------------------------------------------------------------------


def test_wall_clock_deadlines_are_refused(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    for call in (
        lambda: server.set_read_deadline(time.time() + 1),
        lambda: server.set_write_deadline(time.time() + 1),
        lambda: server.write_control(PING_MESSAGE, b"", time.time() + 1),
    ):
        with pytest.raises(ValueError, match=r"time\.monotonic\(\)"):
            call()
    with pytest.raises(TypeError):
        server.set_read_deadline("soon")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        server.set_write_deadline(float("nan"))
    # Nothing was changed or sent: the connection works.
    server.write_control(PING_MESSAGE, b"ok", time.monotonic() + 5)


def test_deadlines_beyond_polls_range_are_clamped(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    far = time.monotonic() + 40 * 86400.0  # poll() takes at most ~24.8 days
    server.set_read_deadline(far)
    server.set_write_deadline(far)
    reader = run_in_thread(server.read_message)
    time.sleep(SHORT)  # the read is waiting with the far deadline
    client.write_message(TEXT_MESSAGE, b"hello")
    assert reader.join() == (TEXT_MESSAGE, b"hello")
    # A write that must wait for room, then for the lock, with the far deadline.
    client.set_read_limit(0)
    got = run_in_thread(lambda: [client.read_message() for _ in range(2)])
    server.write_message(BINARY_MESSAGE, bytes(4 << 20))
    server.write_control(PING_MESSAGE, b"p", far)
    server.write_message(TEXT_MESSAGE, b"end")
    assert [m[1][:3] for m in got.join()] == [bytes(3), b"end"]


def test_write_lock_wait_with_a_far_deadline(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    far = time.monotonic() + 40 * 86400.0
    w = conn.next_writer(TEXT_MESSAGE)  # holds the writer lock
    conn.set_write_deadline(far)
    other = run_in_thread(lambda: conn.write_message(TEXT_MESSAGE, b"second"))
    time.sleep(SHORT)
    w.write(b"first")
    w.close()
    other.join()
    assert peer.recv_message()[1] == b"first"
    assert peer.recv_message()[1] == b"second"


def test_past_read_deadline_says_deadlines_are_timestamps(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_read_deadline(0.5)  # "half a second", mistaken for a duration
    with pytest.raises(DeadlineExceeded) as ei:
        conn.read_message()
    assert not ei.value.fatal
    msg = str(ei.value)
    assert "already in the past when it was set" in msg and "not durations" in msg
    assert "time.monotonic()" in msg
    # A deadline that was ahead when set says nothing of the sort.
    conn.set_read_deadline(time.monotonic() + SHORT)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.read_message()
    assert str(ei.value) == "websocket: read deadline exceeded"
    # Past deadlines stay legal: clearing it, the connection reads on.
    conn.set_read_deadline(None)
    peer.send_frame(TEXT_MESSAGE, b"fine")
    assert conn.read_message() == (TEXT_MESSAGE, b"fine")


def test_past_write_deadline_says_deadlines_are_timestamps(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_write_deadline(2.0)
    with pytest.raises(DeadlineExceeded) as ei:
        conn.write_message(TEXT_MESSAGE, b"x")
    assert "not durations" in str(ei.value) and not ei.value.fatal
    with pytest.raises(DeadlineExceeded) as ei:
        conn.write_control(PING_MESSAGE, b"", 1.0)
    assert "not durations" in str(ei.value)
    conn.set_write_deadline(None)
    conn.write_message(TEXT_MESSAGE, b"y")
    assert peer.recv_frame().payload == b"y"


# ----------------------------------------------------------------------
# One error family
# ----------------------------------------------------------------------


def _write_until_error(conn: Conn) -> BaseException:
    for _ in range(10_000):
        try:
            conn.write_message(BINARY_MESSAGE, bytes(65536))
        except BaseException as e:  # noqa: BLE001 - returned to the test
            return e
        time.sleep(0.001)
    raise AssertionError("writes never failed")


def test_write_to_a_vanished_peer_is_a_websocket_error_and_an_oserror(raw_peer: RawFactory, transport: str) -> None:
    conn, peer = raw_peer(server=True)
    if transport == "tcp":
        # Abortive close: the peer's kernel answers with a reset.
        peer.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    err = _write_until_error(conn)
    assert isinstance(err, ConnectionClosedError)
    assert isinstance(err, WebSocketError) and isinstance(err, OSError) and isinstance(err, CloseError)
    assert isinstance(err.__cause__, OSError) and not isinstance(err.__cause__, WebSocketError)
    assert err.errno == err.__cause__.errno and err.errno is not None
    assert err.code == 1006 and err.fatal
    with pytest.raises(ConnectionClosedError) as again:
        conn.write_message(TEXT_MESSAGE, b"x")
    assert again.value is err
    # Reading says the same family.
    with pytest.raises(ConnectionClosedError) as rd:
        conn.read_message()
    assert rd.value.code == 1006


def test_read_at_eof_is_connection_closed_error(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.sock.shutdown(socket.SHUT_WR)
    with pytest.raises(ConnectionClosedError) as ei:
        conn.read_message()
    assert ei.value.code == 1006 and "EOF" in str(ei.value)
    assert isinstance(ei.value, OSError)


def test_close_now_from_another_thread_wakes_a_writer_with_the_family(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    writer = run_in_thread(lambda: conn.write_message(BINARY_MESSAGE, bytes(BIG)))
    time.sleep(SHORT)
    conn.close_now()
    with pytest.raises(ConnectionClosedError) as ei:
        writer.join()
    assert isinstance(ei.value.__cause__, OSError)


def test_err_close_sent_after_the_peer_closed_says_so(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    peer.send_frame(CLOSE_MESSAGE, close_payload(1001, b"server restart"))
    with pytest.raises(CloseError):
        conn.read_message()
    with pytest.raises(ErrCloseSent) as ei:
        conn.write_message(TEXT_MESSAGE, b"late")
    e = ei.value
    assert (e.code, e.text) == (1001, "server restart")
    assert "peer closed" in str(e) and "1001" in str(e) and "server restart" in str(e)
    assert conn.close_initiator == "peer"


def test_err_close_sent_after_our_close_is_plain(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    server.write_control(CLOSE_MESSAGE, b"\x03\xe8")
    with pytest.raises(ErrCloseSent) as ei:
        server.write_message(TEXT_MESSAGE, b"late")
    assert str(ei.value) == "websocket: close sent" and ei.value.code is None
    assert server.close_initiator == "local"


def test_close_code_for_is_the_one_mapping() -> None:
    assert close_code_for(ProtocolError("x")) == 1002
    assert close_code_for(ProtocolError("x", 1007)) == 1007
    assert close_code_for(ErrReadLimit()) == 1009
    assert close_code_for(CloseError(1000)) is None
    assert close_code_for(ConnectionClosedError("reset")) is None
    assert close_code_for(RuntimeError("bug")) == 1011
    assert close_code_for(DeadlineExceeded()) == 1011


# ----------------------------------------------------------------------
# Bounded write memory
# ----------------------------------------------------------------------


def _peak_of_one_write(server: bool, size: int, deadline: bool) -> int:
    """Peak Python memory (tracemalloc) of one ``size``-byte write_message."""
    a, b = socket_pair("socketpair")
    conn = Conn(a, is_server=server)
    sink = bytearray(1 << 16)

    def drain() -> None:
        while b.recv_into(sink):
            pass

    t = threading.Thread(target=drain, daemon=True)
    payload = bytes(size)
    try:
        t.start()
        if deadline:
            conn.set_write_deadline(time.monotonic() + 60)
        tracemalloc.start()
        try:
            conn.write_message(BINARY_MESSAGE, payload)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        conn.close_now()
        t.join(5)
        b.close()
    return peak


@pytest.mark.parametrize("server", [True, False])
def test_write_with_a_deadline_does_not_copy_the_payload(server: bool) -> None:
    size = 20 << 20
    with_deadline = _peak_of_one_write(server, size, deadline=True)
    if server:
        # Nothing payload-sized may be allocated at all.
        assert with_deadline < 0.5 * size, f"peak {with_deadline / size:.2f}x the payload"
    else:
        # A client masks into new memory (how much depends on the C speedup
        # being there); the deadline must add no copy on top of that.
        without = _peak_of_one_write(server, size, deadline=False)
        assert with_deadline < without + 0.25 * size, f"{with_deadline / size:.2f}x vs {without / size:.2f}x"


# ----------------------------------------------------------------------
# Lifecycle state
# ----------------------------------------------------------------------


def test_state_when_we_start_the_close(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    assert conn.state is ConnState.OPEN and conn.close_initiator is None and not conn.closed
    conn.write_control(CLOSE_MESSAGE, close_payload(1000), time.monotonic() + 1)
    assert conn.state is ConnState.CLOSING and conn.close_initiator == "local"
    peer.send_frame(PING_MESSAGE, b"reads go on")
    peer.send_close(1000)
    with pytest.raises(CloseError):
        conn.read_message()
    assert peer.recv_close() == (1000, b"")
    peer.sock.shutdown(socket.SHUT_WR)
    conn.close()
    assert conn.state is ConnState.CLOSED and conn.closed and conn.close_initiator == "local"


def test_state_when_the_peer_starts_the_close(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False)
    peer.send_close(1001, b"bye")
    with pytest.raises(CloseError):
        conn.read_message()
    assert conn.state is ConnState.CLOSING and conn.close_initiator == "peer"
    conn.close_now()
    assert conn.state is ConnState.CLOSED and conn.close_initiator == "peer"


def test_state_after_close_now_has_no_initiator(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    server.close_now()
    assert server.state is ConnState.CLOSED and server.close_initiator is None
    with pytest.raises(ConnectionClosedError):
        server.write_message(TEXT_MESSAGE, b"x")


def test_with_block_crash_closes_with_1011(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    got = run_in_thread(peer.recv_close_and_hang_up)
    with pytest.raises(RuntimeError):
        with conn:
            raise RuntimeError("handler bug")
    assert got.join()[0] == 1011


def test_close_after_a_broken_write_does_not_wait_for_the_peer(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, close_timeout=5.0)
    conn._io.sock = _HalfThenRaise(conn._sock, MemoryError())  # type: ignore[assignment]
    with pytest.raises(MemoryError):
        conn.write_message(TEXT_MESSAGE, b"x")
    conn._io.sock = conn._sock
    start = time.monotonic()
    conn.close()
    assert time.monotonic() - start < 2.0  # not close_timeout: no close frame could go out
    assert conn.closed


def test_receive_text_limit_does_not_touch_the_read_limit(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_read_limit(1000)
    seen = []
    conn.set_ping_handler(lambda d: seen.append(conn.read_limit()))
    peer.send_frame(PING_MESSAGE, b"p")
    peer.send_frame(TEXT_MESSAGE, b"short")
    assert conn.receive_text(max_length=5) == "short"
    assert seen == [1000] and conn.read_limit() == 1000
    peer.send_frame(TEXT_MESSAGE, b"x" * 900)
    assert conn.read_message() == (TEXT_MESSAGE, b"x" * 900)
    peer.send_frame(TEXT_MESSAGE, b"too long")
    with pytest.raises(ErrReadLimit):
        conn.receive_text(max_length=5)


def test_addresses_survive_the_socket(conn_pair: Tuple[Conn, Conn], transport: str) -> None:
    server, client = conn_pair
    before = (server.local_addr(), server.remote_addr())
    server.close_now()
    assert (server.local_addr(), server.remote_addr()) == before
    if transport == "tcp":
        assert before[1] == client.local_addr()
    assert "closed" in repr(server)


def test_huge_durations_do_not_overflow_waits(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    reader = run_in_thread(lambda: [client.read_message() for _ in range(1)])
    pinger = run_in_thread(lambda: server.ping(timeout=1e12))  # far beyond any lock wait's range
    time.sleep(SHORT)
    server.write_message(TEXT_MESSAGE, b"wake")
    reader.join()
    # The client's read answered the ping; another read sees the pong.
    got = run_in_thread(server.read_message)
    assert pinger.join() >= 0
    server.close_timeout = 1e12
    client.close_timeout = 0.5
    closer = run_in_thread(server.close)
    with pytest.raises(CloseError):
        client.read_message()
    client.close_now()
    closer.join()
    with pytest.raises(CloseError):
        got.join()


def test_keepalive_rejects_non_positive_durations(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    for bad in ((0.0, None), (-1.0, None), (1.0, 0.0), (float("nan"), None), (float("inf"), None)):
        with pytest.raises(ValueError):
            server.start_keepalive(*bad)


def test_tls_failure_is_connection_closed_error(tmp_path: Any) -> None:
    import os
    import ssl

    from tests.certs import make_test_pki

    pki = make_test_pki(str(tmp_path))
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    client_ctx = ssl.create_default_context(cafile=pki.ca_cert)
    a, b = socket_pair("tcp")
    a.settimeout(5)
    b.settimeout(5)
    srv = run_in_thread(lambda: server_ctx.wrap_socket(b, server_side=True))
    tls_client = client_ctx.wrap_socket(a, server_hostname="localhost")
    tls_server = srv.join()
    raw = socket.socket(fileno=os.dup(tls_server.fileno()))
    conn = Conn(tls_client, is_server=False)
    try:
        # A TLS record whose authentication cannot check out.
        raw.sendall(b"\x17\x03\x03\x00\x20" + bytes(32))
        with pytest.raises(ConnectionClosedError) as ei:
            conn.read_message()
        assert isinstance(ei.value.__cause__, ssl.SSLError)
        assert isinstance(ei.value, WebSocketError) and ei.value.code == 1006
    finally:
        conn.close_now()
        raw.close()
        tls_server.close()


def test_state_peer_closed_but_not_yet_answered_still_writes(raw_peer: RawFactory) -> None:
    # gorilla's pattern: a close handler that does not answer at once, so the
    # application can send its last messages before it closes.
    conn, peer = raw_peer(server=True)
    conn.set_close_handler(lambda code, text: None)
    peer.send_close(1001, b"leaving")
    with pytest.raises(CloseError) as ei:
        conn.read_message()
    assert ei.value.code == 1001
    assert (conn.state, conn.close_initiator) == (ConnState.CLOSING, "peer")
    with pytest.raises(CloseError) as again:
        conn.read_message()  # reading is over, and says the same
    assert again.value is ei.value
    conn.write_message(TEXT_MESSAGE, b"last words")  # writing is not
    assert peer.recv_frame().payload == b"last words"
    conn.write_control(CLOSE_MESSAGE, close_payload(1000), time.monotonic() + 1)
    assert conn.close_initiator == "peer"  # it stays who started
    with pytest.raises(ErrCloseSent) as sent:
        conn.write_message(TEXT_MESSAGE, b"too late")
    assert sent.value.code == 1001 and sent.value.text == "leaving"
    assert peer.recv_close() == (1000, b"")


def test_state_closed_every_call_fails_in_the_family(conn_pair: Tuple[Conn, Conn]) -> None:
    server, _ = conn_pair
    server.close_now()
    for call in (
        lambda: server.read_message(),
        lambda: server.next_reader(),
        lambda: server.write_message(BINARY_MESSAGE, b"x"),
        lambda: server.write_control(PING_MESSAGE, b"", time.monotonic() + 1),
        lambda: server.ping(timeout=1),
        lambda: server.next_writer(TEXT_MESSAGE),
    ):
        with pytest.raises(WebSocketError) as ei:
            call()
        assert isinstance(ei.value, ConnectionClosedError), call
    server.close()  # a no-op, not an error
    server.close_now()


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs signal.setitimer (POSIX)")
def test_signal_interrupting_a_read_mid_frame_leaves_a_family_error(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True)
    peer.send_frame(BINARY_MESSAGE, b"half", length=4096)  # 4096 bytes announced, 4 sent
    with _alarm_interrupts(0.2), pytest.raises(Interrupt):
        conn.read_message()
    with pytest.raises(ConnectionClosedError) as ei:
        conn.read_message()
    assert isinstance(ei.value.__cause__, Interrupt) and ei.value.fatal


def test_interrupt_while_ending_a_fragmented_message_breaks_writing(raw_peer: RawFactory) -> None:
    # Fragments are out and the final frame is not: a new message must not follow.
    conn, peer = raw_peer(server=True, write_buffer_size=128)
    w = conn.next_writer(BINARY_MESSAGE)
    w.write(b"z" * 200)  # one fragment out, 72 bytes buffered
    conn._io.sock = _HalfThenRaise(conn._sock, KeyboardInterrupt())  # type: ignore[assignment]
    with pytest.raises(KeyboardInterrupt):
        w.close()
    conn._io.sock = conn._sock
    _assert_writes_broken(conn, KeyboardInterrupt)
    f = peer.recv_frame()
    assert not f.fin and f.payload == b"z" * 128
    conn.close()
    assert len(peer.expect_eof()) == 3  # the start of the cut-off final frame, nothing after


def _deflate_pair() -> Tuple[Conn, Conn]:
    from gorillaws.deflate import COMPRESSION_CONTEXT_TAKEOVER, DeflateParams, PerMessageDeflate

    a, b = socket_pair("socketpair")
    params = DeflateParams()
    server = Conn(a, is_server=True, compression=PerMessageDeflate(params, True, COMPRESSION_CONTEXT_TAKEOVER))
    client = Conn(b, is_server=False, compression=PerMessageDeflate(params, False, COMPRESSION_CONTEXT_TAKEOVER))
    return server, client


def test_interrupted_compression_leaves_no_stale_context() -> None:
    server, client = _deflate_pair()
    try:
        codec = server.compression
        real = codec.compress_message

        def compress_then_interrupt(data: Any) -> bytes:
            real(data)  # zlib now holds this message in its history
            raise KeyboardInterrupt

        codec.compress_message = compress_then_interrupt
        text = b"the same words again and again " * 20
        with pytest.raises(KeyboardInterrupt):
            server.write_message(TEXT_MESSAGE, text)
        del codec.compress_message
        server.write_message(TEXT_MESSAGE, text)  # would refer to the unsent copy
        assert client.read_message() == (TEXT_MESSAGE, text)
    finally:
        server.close_now()
        client.close_now()


def test_interrupt_before_the_final_compressed_frame_breaks_writing() -> None:
    import os

    server, client = _deflate_pair()
    sink = bytearray(65536)

    def drain() -> None:  # the raw bytes only: the client Conn is not read
        while client._sock.recv_into(sink):
            pass

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        server.write_buffer_size = 128
        codec = server.compression

        def interrupt() -> bytes:
            raise KeyboardInterrupt

        w = server.next_writer(BINARY_MESSAGE)
        w.write(os.urandom(100_000))  # incompressible: fragments go out
        codec.finish_message = interrupt
        with pytest.raises(KeyboardInterrupt):
            w.close()
        del codec.finish_message
        _assert_writes_broken(server, KeyboardInterrupt)
    finally:
        server.close_now()
        drainer.join(5)
        client.close_now()


def test_a_collected_writer_sends_nothing_and_raises_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Garbage collection never flushes a writer: no frame from the collector, no unraisable error (3.13 showed one)."""
    import gc

    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    a, b = socket.socketpair()
    conn = Conn(a, is_server=True, close_timeout=0.1)
    w = conn.next_writer(TEXT_MESSAGE)
    w.write(b"half")
    b.close()
    conn.close_now()
    del w, conn
    gc.collect()
    assert unraisable == []
