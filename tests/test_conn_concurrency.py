"""Threads: serialized writers, write_control between fragments, concurrent readers."""

from __future__ import annotations

import json
import threading
import time
from typing import Dict, List, Tuple

import pytest

from gorillaws import (
    BINARY_MESSAGE,
    PING_MESSAGE,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    DeadlineExceeded,
    PreparedMessage,
)

from conftest import run_in_thread
from helpers import PairFactory, RawFactory

pytestmark = pytest.mark.usefixtures("no_leaks")


def test_write_control_between_fragments_on_the_wire(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=False, write_buffer_size=128)
    w = conn.next_writer(TEXT_MESSAGE)
    w.write(b"a" * 200)  # first fragment goes out, 72 bytes stay buffered
    t = run_in_thread(lambda: conn.write_control(PING_MESSAGE, b"mid", time.monotonic() + 2))
    t.join()
    w.write(b"b" * 200)
    w.close()
    seen = []
    while True:
        f = peer.recv_frame()
        seen.append(f)
        if f.opcode == 0 and f.fin:
            break
    assert seen[0].opcode == TEXT_MESSAGE and not seen[0].fin
    assert (seen[1].opcode, seen[1].payload) == (PING_MESSAGE, b"mid")
    assert all(f.masked for f in seen)
    data = b"".join(f.payload for f in seen if f.opcode != PING_MESSAGE)
    assert data == b"a" * 200 + b"b" * 200


def test_write_control_during_fragmented_message_is_handled_by_reader(conn_pair_factory: PairFactory) -> None:
    server, client = conn_pair_factory(write_buffer_size=128)
    pings: List[Tuple[bytes, int]] = []
    progress: List[int] = []
    server.set_ping_handler(lambda d: pings.append((d, len(progress))))

    def write() -> None:
        with client.next_writer(BINARY_MESSAGE) as w:
            for i in range(20):
                w.write(bytes([i]) * 100)
                if i == 10:
                    c = run_in_thread(lambda: client.write_control(PING_MESSAGE, b"from-other-thread"))
                    c.join()

    t = run_in_thread(write)
    _, r = server.next_reader()
    got = b""
    while True:
        chunk = r.read(50)
        if not chunk:
            break
        progress.append(len(chunk))
        got += chunk
    t.join()
    assert got == b"".join(bytes([i]) * 100 for i in range(20))
    assert [p for p, _ in pings] == [b"from-other-thread"]
    assert 0 < pings[0][1] < len(progress), "the ping arrived in the middle of the message"


@pytest.mark.parametrize("n_threads", [8])
def test_concurrent_writers_are_serialized(conn_pair_factory: PairFactory, n_threads: int) -> None:
    server, client = conn_pair_factory(write_buffer_size=512)
    per_thread = 25
    barrier = threading.Barrier(n_threads + 2)  # writers, pinger, this thread
    prepared = PreparedMessage(BINARY_MESSAGE, b"P" * 3000)

    def writer(tid: int) -> None:
        barrier.wait(5)
        for seq in range(per_thread):
            body = {"t": tid, "s": seq, "pad": "x" * ((tid * 97 + seq * 31) % 3000)}
            kind = seq % 4
            if kind == 0:
                client.write_json(body)
            elif kind == 1:
                client.write_message(TEXT_MESSAGE, json.dumps(body))
            elif kind == 2:
                # Several fragments: other writers must not slip in between.
                with client.next_writer(TEXT_MESSAGE) as w:
                    raw = json.dumps(body).encode()
                    for i in range(0, len(raw), 200):
                        w.write(raw[i : i + 200])
            else:
                client.write_prepared_message(prepared)
                client.write_json(body)

    def pinger() -> None:
        barrier.wait(5)
        for _ in range(50):
            client.write_control(PING_MESSAGE, b"keep", time.monotonic() + 5)

    pings: List[bytes] = []
    server.set_ping_handler(pings.append)
    threads = [run_in_thread(lambda tid=tid: writer(tid)) for tid in range(n_threads)]
    threads.append(run_in_thread(pinger))
    barrier.wait(5)
    n_prepared = n_threads * sum(1 for s in range(per_thread) if s % 4 == 3)
    expected = n_threads * per_thread + n_prepared
    last_seq: Dict[int, int] = {}
    prepared_count = 0
    server.set_read_deadline(time.monotonic() + 20)
    for _ in range(expected):
        mt, data = server.read_message()
        if mt == BINARY_MESSAGE:
            assert data == prepared.data
            prepared_count += 1
            continue
        body = json.loads(data)
        assert body["pad"] == "x" * ((body["t"] * 97 + body["s"] * 31) % 3000)
        assert body["s"] == last_seq.get(body["t"], -1) + 1, "per-thread order kept"
        last_seq[body["t"]] = body["s"]
    for t in threads:
        t.join(20)
    assert prepared_count == n_prepared
    assert all(v == per_thread - 1 for v in last_seq.values()) and len(last_seq) == n_threads
    # The pings (sent concurrently) arrive before the end or are still in flight.
    client.write_message(TEXT_MESSAGE, b"end")
    assert server.read_message() == (TEXT_MESSAGE, b"end")
    assert pings == [b"keep"] * 50


def test_second_writer_waits_for_open_writer(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    w = client.next_writer(TEXT_MESSAGE)
    w.write(b"first ")
    started = threading.Event()

    def second() -> None:
        started.set()
        client.write_message(TEXT_MESSAGE, b"second")

    t = run_in_thread(second)
    started.wait(2)
    time.sleep(0.1)
    assert not t.done.is_set(), "the second writer must wait for the first to close"
    w.write(b"message")
    w.close()
    t.join()
    assert server.read_message() == (TEXT_MESSAGE, b"first message")
    assert server.read_message() == (TEXT_MESSAGE, b"second")


def test_waiting_writer_gives_up_at_its_deadline_without_breaking_writes(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    w = client.next_writer(TEXT_MESSAGE)
    w.write(b"holder")

    def second() -> None:
        client.set_write_deadline(time.monotonic() + 0.1)
        try:
            client.write_message(TEXT_MESSAGE, b"impatient")
        finally:
            client.set_write_deadline(None)

    t = run_in_thread(second)
    with pytest.raises(DeadlineExceeded) as ei:
        t.join()
    assert ei.value.fatal is False
    w.close()
    client.write_message(TEXT_MESSAGE, b"later")
    assert server.read_message() == (TEXT_MESSAGE, b"holder")
    assert server.read_message() == (TEXT_MESSAGE, b"later")


def test_concurrent_readers_each_message_once(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    n = 200
    got: List[bytes] = []
    lock = threading.Lock()

    def reader() -> None:
        while True:
            try:
                _, data = server.read_message()
            except CloseError:
                server.close_now()  # hang up, as an application would
                return
            with lock:
                got.append(data)

    readers = [run_in_thread(reader) for _ in range(4)]
    for i in range(n):
        client.write_message(BINARY_MESSAGE, b"%05d" % i * (1 + i % 50))
    client.close_timeout = 2.0
    client.close()
    for r in readers:
        r.join(5)
    assert sorted(got) == sorted(b"%05d" % i * (1 + i % 50) for i in range(n))


def test_full_duplex_echo(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    msgs = [bytes([i % 256]) * (i * 1000) for i in range(1, 40)]

    def echo() -> None:
        for _ in msgs:
            mt, data = server.read_message()
            server.write_message(mt, data)

    e = run_in_thread(echo)
    sender = run_in_thread(lambda: [client.write_message(BINARY_MESSAGE, m) for m in msgs])
    for m in msgs:
        client.set_read_deadline(time.monotonic() + 10)
        assert client.read_message() == (BINARY_MESSAGE, m)
    sender.join()
    e.join()


def test_close_from_another_thread_while_writer_blocked(raw_peer: RawFactory) -> None:
    conn, peer = raw_peer(server=True, close_timeout=0.3)
    blocked = run_in_thread(lambda: conn.write_message(BINARY_MESSAGE, bytes(32 << 20)))
    time.sleep(0.1)
    start = time.monotonic()
    conn.close()  # its close frame cannot go out; bounded anyway
    assert time.monotonic() - start < 3.0
    with pytest.raises(OSError):
        blocked.join()
    assert conn.closed


def test_close_from_another_thread_leaves_messages_to_the_reading_thread() -> None:
    """close() must not discard what the reading thread has yet to read.

    The reader pauses between reads (the read lock is free most of the time),
    so a close() that drained the connection itself would swallow messages.
    """
    import socket as _socket
    import threading as _threading
    import time as _time

    import gorillaws as _g

    a, b = _socket.socketpair()
    server = _g.Conn(a, is_server=True, close_timeout=10.0)
    client = _g.Conn(b, is_server=False, close_timeout=10.0)
    got = []
    errors = []

    def slow_reader() -> None:
        try:
            while True:
                got.append(server.read_message()[1])
                _time.sleep(0.005)
        except _g.CloseError as e:
            errors.append(e)

    def client_reader() -> None:
        try:
            while True:
                client.read_message()
        except _g.CloseError:
            pass

    t = _threading.Thread(target=slow_reader)
    u = _threading.Thread(target=client_reader)
    t.start()
    u.start()
    try:
        for i in range(50):
            client.write_message(_g.BINARY_MESSAGE, str(i).encode())
        while not got:
            _time.sleep(0.001)
        server.close()
        t.join(20)
        u.join(20)
        assert not t.is_alive() and not u.is_alive()
        assert got == [str(i).encode() for i in range(50)]
        assert errors and errors[0].code == _g.CLOSE_NORMAL_CLOSURE
    finally:
        server.close_now()
        client.close_now()
