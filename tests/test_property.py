"""Property-based tests (hypothesis): random messages, random fragmentations.

The sender is a hand-written framer (conftest.build_frame), independent of
gorillaws's own writer: each message is cut into random fragments (empty ones
included), masked with random keys, with random pings and pongs interleaved.
The Conn must read every message back intact, through read_message and
through next_reader with random read sizes, and answer every ping.  Text
that turns invalid at a random byte, cut the same random ways, fails with
1007 on every read path, and no byte from the bad one on is handed out.
"""

from __future__ import annotations

import itertools
import os
import socket
from typing import List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gorillaws import BINARY_MESSAGE, PING_MESSAGE, PONG_MESSAGE, TEXT_MESSAGE, Conn, ProtocolError

from conftest import RawPeer, build_frame, make_conn_pair, run_in_thread
from helpers import read_in_pieces

# slow: hypothesis runs of 40-100 random cases over sockets; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

# (opcode, payload, cut points, control frames to insert after each fragment)
Message = Tuple[int, bytes, List[int], List[List[Tuple[int, bytes]]]]

control = st.tuples(st.sampled_from([PING_MESSAGE, PONG_MESSAGE]), st.binary(max_size=125))
# reader.read(n) sizes: small ones go through the read buffer, 16 KiB and up
# straight into the result.
read_size = st.one_of(st.integers(1, 5000), st.sampled_from([16384, 65536, 300_000]))


@st.composite
def messages(draw: st.DrawFn) -> Message:
    if draw(st.booleans()):
        opcode = TEXT_MESSAGE
        payload = draw(st.text(max_size=600)).encode("utf-8")
        # Sometimes large: read straight into the result, or through the
        # buffer that grows past the first MiB.
        payload *= draw(st.sampled_from([1, 1, 1, 40, 2000]))
    else:
        opcode = BINARY_MESSAGE
        size = draw(st.sampled_from([0, 1, 10, 125, 126, 300, 1000, 65535, 65536, 70000]))
        payload = os.urandom(size) if size > 2000 else draw(st.binary(min_size=size, max_size=size))
    cuts = sorted(draw(st.lists(st.integers(0, len(payload)), max_size=8)))
    controls = [draw(st.lists(control, max_size=2)) for _ in range(len(cuts) + 1)]
    return opcode, payload, cuts, controls


def _frames_for(msg: Message) -> bytes:
    opcode, payload, cuts, controls = msg
    bounds = [0, *cuts, len(payload)]
    out = []
    n = len(bounds) - 1
    for i in range(n):
        frag = payload[bounds[i] : bounds[i + 1]]
        out.append(build_frame(opcode if i == 0 else 0, frag, fin=i == n - 1, key=os.urandom(4)))
        # Controls may come between fragments (not after the last one here,
        # where they are simply between messages).
        for cop, cpayload in controls[i]:
            out.append(build_frame(cop, cpayload, key=os.urandom(4)))
    return b"".join(out)


def _expected_pongs(msgs: List[Message]) -> List[bytes]:
    return [p for m in msgs for ctl in m[3] for (op, p) in ctl if op == PING_MESSAGE]


def _run(msgs: List[Message], use_reader: bool, read_sizes: List[int], rbs: int) -> None:
    a, b = socket.socketpair()
    conn = Conn(a, is_server=True, read_buffer_size=rbs)
    peer = RawPeer(b, masks=True)
    try:
        conn.set_read_limit(0)
        # A last message, so that controls after the final fragment are read too.
        wire = b"".join(_frames_for(m) for m in msgs) + build_frame(TEXT_MESSAGE, b"end", key=os.urandom(4))
        sender = run_in_thread(lambda: peer.send_raw(wire))
        # Collect the pongs concurrently so the Conn never blocks writing them.
        n_pings = len(_expected_pongs(msgs))
        pong_reader = run_in_thread(lambda: [peer.recv_frame() for _ in range(n_pings)])
        sizes = itertools.cycle(read_sizes)  # (the cycle goes on from message to message)
        for opcode, payload, _, _ in msgs:
            if use_reader:
                mt, r = conn.next_reader()
                data = read_in_pieces(r, sizes)
            else:
                mt, data = conn.read_message()
            assert mt == opcode
            assert data == payload
        assert conn.read_message() == (TEXT_MESSAGE, b"end")
        sender.join()
        pongs = pong_reader.join()
        assert [(f.opcode, f.payload, f.masked) for f in pongs] == [
            (PONG_MESSAGE, p, False) for p in _expected_pongs(msgs)
        ]
    finally:
        conn.close_now()
        peer.close()


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    msgs=st.lists(messages(), min_size=1, max_size=4),
    rbs=st.sampled_from([256, 1000, 4096, 65536]),
)
def test_random_fragmentations_read_message(msgs: List[Message], rbs: int) -> None:
    _run(msgs, False, [1], rbs)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    msgs=st.lists(messages(), min_size=1, max_size=4),
    read_sizes=st.lists(read_size, min_size=1, max_size=5),
    rbs=st.sampled_from([256, 4096]),
)
def test_random_fragmentations_next_reader(msgs: List[Message], read_sizes: List[int], rbs: int) -> None:
    _run(msgs, True, read_sizes, rbs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payload=st.binary(max_size=3000),
    chunks=st.lists(st.integers(1, 1500), min_size=1, max_size=6),
    wbs=st.sampled_from([128, 200, 1000, 4096]),
    client_writes=st.booleans(),
)
def test_next_writer_round_trip(payload: bytes, chunks: List[int], wbs: int, client_writes: bool) -> None:
    server, client = make_conn_pair("socketpair", write_buffer_size=wbs)
    try:
        w_conn, r_conn = (client, server) if client_writes else (server, client)

        def write() -> None:
            with w_conn.next_writer(BINARY_MESSAGE) as w:
                i = k = 0
                while i < len(payload):
                    n = chunks[k % len(chunks)]
                    w.write(payload[i : i + n])
                    i += n
                    k += 1

        t = run_in_thread(write)
        assert r_conn.read_message() == (BINARY_MESSAGE, payload)
        t.join()
    finally:
        server.close_now()
        client.close_now()


def _first_bad(data: bytes) -> int:
    """Index of the byte at which ``data`` stops being a prefix of valid UTF-8."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return int(exc.end if exc.reason == "invalid continuation byte" else exc.start)
    raise AssertionError("valid UTF-8")


BAD_SEQUENCES = [b"\xff", b"\x80", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf4\x90\x80\x80", b"\xe4\x41"]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    text=st.text(min_size=1, max_size=300),
    repeat=st.sampled_from([1, 100, 4000]),
    bad=st.sampled_from(BAD_SEQUENCES),
    where=st.floats(0, 1),
    cut_at=st.lists(st.floats(0, 1), max_size=6),
    read_sizes=st.lists(read_size, min_size=1, max_size=4),
    server=st.booleans(),
)
def test_invalid_text_fails_on_every_read_path(
    text: str, repeat: int, bad: bytes, where: float, cut_at: List[float], read_sizes: List[int], server: bool
) -> None:
    good = text.encode("utf-8") * repeat
    at = int(where * len(good))
    payload = good[:at] + bad + good[at:]
    limit = _first_bad(payload)
    cuts = sorted(int(c * len(payload)) for c in cut_at)
    bounds = [0, *cuts, len(payload)]
    n = len(bounds) - 1
    key = os.urandom(4) if server else None
    wire = b"".join(
        build_frame(TEXT_MESSAGE if i == 0 else 0, payload[bounds[i] : bounds[i + 1]], fin=i == n - 1, key=key)
        for i in range(n)
    )
    for use_reader in (False, True):
        a, b = socket.socketpair()
        conn = Conn(a, is_server=server, close_timeout=0.5)
        conn.set_read_limit(0)
        peer = RawPeer(b, masks=server)
        got = bytearray()
        try:
            sender = run_in_thread(lambda: peer.send_raw(wire))
            closer = run_in_thread(peer.recv_close_and_hang_up)
            with pytest.raises(ProtocolError) as e:
                if use_reader:
                    _, r = conn.next_reader()
                    for k in range(len(payload) + 1):
                        chunk = r.read(read_sizes[k % len(read_sizes)])
                        if not chunk:
                            break
                        got += chunk
                else:
                    conn.read_message()
            assert e.value.code == 1007
            assert closer.join()[0] == 1007
            assert got == payload[: len(got)] and len(got) <= limit
            try:
                sender.join()
            except OSError:
                pass  # the Conn hung up before the whole message was sent
        finally:
            conn.close_now()
            peer.close()
