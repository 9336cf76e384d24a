"""The read path's memory stays bounded by what the peer actually sent.

* A header announcing 2**31 .. 2**62 bytes, under no read limit (``0``) or a
  huge one, reserves no memory for bytes that never come: the payload
  buffer grows as they arrive.  The peer sends a few KiB and hangs up; the
  read fails with a clean :class:`CloseError` (1006), having allocated
  about a megabyte at most.
* A payload that really is that large still arrives intact through the
  growing buffer, on every read path, without a copy at the end.
* A message that does not fit in memory raises :class:`ErrReadLimit` and
  the peer gets close 1009: ``MemoryError`` never escapes a read (run in a
  subprocess under ``RLIMIT_DATA``).
* The cap on frames per message (:meth:`Conn.set_max_fragments`) stops a
  peer sending empty continuation frames forever, with 1009.
"""

from __future__ import annotations

import gc
import os
import socket
import subprocess
import sys
import textwrap
import tracemalloc
from typing import Any, Callable, Iterator, List, Tuple

import pytest

from conftest import RawPeer, build_frame, run_in_thread

from gorillaws import BINARY_MESSAGE, TEXT_MESSAGE, CloseError, Conn, ErrReadLimit, ProtocolError
from gorillaws.conn import _UPFRONT_MAX, DEFAULT_MAX_FRAGMENTS

pytestmark = pytest.mark.timeout(60)

RawPeerFactory = Callable[..., Tuple[Conn, RawPeer]]

HERE = os.path.dirname(os.path.abspath(__file__))


def big_frame(opcode: int, payload: bytes, masked: bool) -> bytes:
    """One frame; masked by XOR of big integers (conftest's byte loop is slow for MiBs)."""
    n = len(payload)
    head = bytes((0x80 | opcode, (0x80 if masked else 0) | 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")
    return head + key + body


def read_whole(conn: Conn) -> bytes:
    return conn.read_message()[1]


def read_all(conn: Conn) -> bytes:
    return conn.next_reader()[1].read()


def read_pieces(conn: Conn) -> bytes:
    _, r = conn.next_reader()
    parts: List[bytes] = []
    while True:
        piece = r.read(300_000)
        if not piece:
            return b"".join(parts)
        parts.append(piece)


READ_PATHS = {"read_message": read_whole, "reader.read()": read_all, "reader.read(300000)": read_pieces}


@pytest.fixture
def traced() -> Iterator[None]:
    tracemalloc.start()
    try:
        yield
    finally:
        tracemalloc.stop()


class Peak:
    """Memory traced at its peak since creation, above what was traced then."""

    def __init__(self) -> None:
        tracemalloc.reset_peak()
        self.base = tracemalloc.get_traced_memory()[0]

    def growth(self) -> int:
        return tracemalloc.get_traced_memory()[1] - self.base


@pytest.mark.parametrize("path", sorted(READ_PATHS))
@pytest.mark.parametrize("limit", [0, 1 << 62])
@pytest.mark.parametrize("announced", [1 << 31, 1 << 34, 1 << 62])
def test_announced_length_reserves_nothing(
    raw_peer: RawPeerFactory, traced: None, announced: int, limit: int, path: str
) -> None:
    """14 header bytes claiming up to 4 EiB cost at most the first MiB of buffer."""
    conn, peer = raw_peer(server=True)
    conn.set_read_limit(limit)
    head = peer.send_frame(BINARY_MESSAGE, b"", length=announced)
    assert len(head) == 14
    peer.send_raw(b"p" * 4096)  # a few KiB of the promised payload, then the end
    peer.sock.shutdown(socket.SHUT_WR)
    peak = Peak()
    with pytest.raises(CloseError) as e:
        READ_PATHS[path](conn)
    assert e.value.code == 1006
    assert peak.growth() < _UPFRONT_MAX + (256 << 10)


@pytest.mark.parametrize("path", sorted(READ_PATHS))
@pytest.mark.parametrize("announced", [1 << 34, 1 << 62])
def test_growth_follows_the_bytes_that_arrive(
    raw_peer: RawPeerFactory, traced: None, announced: int, path: str
) -> None:
    """3 MiB sent under a 2**62 header: the buffer is a few MiB, not the announced size."""
    conn, peer = raw_peer(server=False)
    conn.set_read_limit(0)
    sent = 3 << 20
    peer.send_raw(b"\x82\x7f" + announced.to_bytes(8, "big"))

    def send() -> None:
        chunk = b"z" * 65536
        for _ in range(sent // len(chunk)):
            peer.send_raw(chunk)
        peer.sock.shutdown(socket.SHUT_WR)

    peak = Peak()
    sender = run_in_thread(send)
    with pytest.raises(CloseError) as e:
        READ_PATHS[path](conn)
    sender.join()
    assert e.value.code == 1006
    # Doubling from 1 MiB: 4 MiB hold the 3 MiB received.
    assert peak.growth() < 4 * sent


@pytest.mark.parametrize("path", sorted(READ_PATHS))
@pytest.mark.parametrize("opcode", [BINARY_MESSAGE, TEXT_MESSAGE])
@pytest.mark.parametrize("server", [True, False], ids=["masked", "unmasked"])
@pytest.mark.parametrize("size", [_UPFRONT_MAX + 1, 3 * _UPFRONT_MAX + 3])
def test_large_payload_through_the_growing_buffer(
    raw_peer: RawPeerFactory, size: int, server: bool, opcode: int, path: str
) -> None:
    """Payloads beyond the up-front size arrive intact (masking, UTF-8) on every read path."""
    conn, peer = raw_peer(server=server)
    conn.set_read_limit(0)
    if opcode == TEXT_MESSAGE:
        unit = "ascii \u00e9\u4e2d\U0001f600 ".encode()
        payload = (unit * (size // len(unit) + 1))[:size]
        payload = payload[: len(payload.decode("utf-8", "ignore").encode())]
        payload += b"a" * (size - len(payload))
    else:
        payload = os.urandom(size)
    frame = big_frame(opcode, payload, masked=server)
    sender = run_in_thread(lambda: peer.send_raw(frame))
    got = READ_PATHS[path](conn)
    sender.join()
    assert got == payload


def _unreleased_views(tb: Any) -> List[str]:
    """Live memoryviews held by the frames of a traceback, as ``function:name``."""
    found = []
    while tb is not None:
        frame = tb.tb_frame
        for name, value in frame.f_locals.items():
            if isinstance(value, memoryview):
                try:
                    value.nbytes
                except ValueError:  # released
                    continue
                found.append(f"{frame.f_code.co_name}:{name}")
        tb = tb.tb_next
    return found


@pytest.mark.parametrize("path", sorted(READ_PATHS))
@pytest.mark.parametrize("server", [True, False], ids=["masked", "unmasked"])
def test_bad_text_in_the_growing_buffer_leaves_no_view_behind(
    raw_peer: RawPeerFactory, monkeypatch: pytest.MonkeyPatch, server: bool, path: str
) -> None:
    """Invalid UTF-8 past the first MiB: no unreleased view in the traceback, no unraisable error.

    The UTF-8 check's frame kept a view of the growing buffer alive in the
    sticky error's traceback; when the connection was freed, the BytesIO
    under it could not close ("Exception ignored ... BufferError: Existing
    exports of data", reported by Python 3.13).
    """
    unraisable: List[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    conn, peer = raw_peer(server=server)
    conn.set_read_limit(0)
    payload = b"a" * (_UPFRONT_MAX + 1000) + b"\xff" + b"b" * 1000
    frame = big_frame(TEXT_MESSAGE, payload, masked=server)
    sender = run_in_thread(lambda: peer.send_raw(frame))
    with pytest.raises(ProtocolError) as e:
        READ_PATHS[path](conn)
    sender.join()
    assert e.value.code == 1007
    assert _unreleased_views(e.value.__traceback__) == []
    err = e.value
    del e
    conn.close_now()
    del conn, err
    gc.collect()
    assert unraisable == []


def test_large_payload_is_not_copied(raw_peer: RawPeerFactory, traced: None) -> None:
    """read_message of a 6 MiB frame peaks near 6 MiB: received in place, handed out without a copy.

    Unmasked (the Conn is a client): the pure-Python unmasking, used
    without the C speedup, makes temporaries of its own.
    """
    conn, peer = raw_peer(server=False)
    conn.set_read_limit(0)
    size = 6 << 20
    payload = os.urandom(size)
    frame = big_frame(BINARY_MESSAGE, payload, masked=False)
    peak = Peak()
    sender = run_in_thread(lambda: peer.send_raw(frame))
    _, got = conn.read_message()
    grown = peak.growth()
    sender.join()
    assert got == payload
    assert grown < 1.3 * size


OOM_SCRIPT = textwrap.dedent(
    """
    import resource, socket, sys, threading
    sys.path.insert(0, sys.argv[1])
    from conftest import RawPeer
    from gorillaws import Conn, ErrReadLimit

    a, b = socket.socketpair()
    conn = Conn(a, is_server=False, close_timeout=0.5)
    conn.set_read_limit(0)
    chunk = b"\\0" * (1 << 20)

    def send():
        try:
            b.sendall(b"\\x82\\x7f" + (1 << 40).to_bytes(8, "big"))
            for _ in range(512):
                b.sendall(chunk)
        except OSError:
            pass

    def vm_data():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmData:"):
                    return int(line.split()[1]) * 1024

    threading.Thread(target=send, daemon=True).start()
    resource.setrlimit(resource.RLIMIT_DATA, (vm_data() + (48 << 20), resource.RLIM_INFINITY))
    try:
        conn.read_message()
    except ErrReadLimit as e:
        outcome = "ErrReadLimit %s" % type(e.__cause__).__name__
    except BaseException as e:
        outcome = "escaped %r" % (e,)
    else:
        outcome = "no error"
    resource.setrlimit(resource.RLIMIT_DATA, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    code, _ = RawPeer(b, masks=False, timeout=5).recv_close()
    print(outcome, code)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_DATA and /proc/self/status are Linux's")
def test_memory_error_becomes_read_limit_and_1009() -> None:
    """A message that outgrows the memory there is fails like one over the read limit."""
    proc = subprocess.run(
        [sys.executable, "-c", OOM_SCRIPT, HERE], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["ErrReadLimit", "MemoryError", "1009"], proc.stdout + proc.stderr


# ---------------------------------------------------------------------------
# Frames per message
# ---------------------------------------------------------------------------


def test_default_fragment_cap() -> None:
    assert 65_536 < DEFAULT_MAX_FRAGMENTS < 1_000_000


def empty_continuations(peer: RawPeer, count: int, fin_last: bool) -> None:
    """A text message of one empty frame and ``count`` empty continuation frames."""
    key = b"\x01\x02\x03\x04" if peer.masks else None
    one = build_frame(0, b"", fin=False, key=key)
    peer.send_raw(build_frame(TEXT_MESSAGE, b"", fin=False, key=key))
    batch = one * 1000
    for _ in range(count // 1000):
        peer.send_raw(batch)
    peer.send_raw(one * (count % 1000))
    if fin_last:
        peer.send_raw(build_frame(0, b"end", key=key))


@pytest.mark.parametrize("path", sorted(READ_PATHS))
def test_endless_empty_continuations_are_cut_with_1009(raw_peer: RawPeerFactory, path: str) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_max_fragments(500)
    sender = run_in_thread(lambda: empty_continuations(peer, 5000, False))
    with pytest.raises(ErrReadLimit, match="500 fragments"):
        READ_PATHS[path](conn)
    assert peer.recv_close()[0] == 1009
    sender.join()


@pytest.mark.parametrize("server", [True, False])
def test_fragment_cap_is_exact(raw_peer: RawPeerFactory, server: bool) -> None:
    """A message of exactly ``cap`` frames passes; ``cap + 1`` fails."""
    conn, peer = raw_peer(server=server)
    conn.set_max_fragments(100)
    assert conn.max_fragments() == 100
    empty_continuations(peer, 98, True)  # 1 + 98 + 1 frames
    assert conn.read_message() == (TEXT_MESSAGE, b"end")
    empty_continuations(peer, 99, True)
    with pytest.raises(ErrReadLimit):
        conn.read_message()
    assert peer.recv_close()[0] == 1009


def test_fragment_cap_zero_means_none(raw_peer: RawPeerFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_max_fragments(0)
    sender = run_in_thread(lambda: empty_continuations(peer, 3000, True))
    assert conn.read_message() == (TEXT_MESSAGE, b"end")
    sender.join()


def test_default_cap_passes_65536_fragments_and_stops_past_it(raw_peer: RawPeerFactory) -> None:
    """Autobahn's largest case (65,536 fragments) passes under the default; the default stops 100,001."""
    conn, peer = raw_peer(server=True)
    assert conn.max_fragments() == DEFAULT_MAX_FRAGMENTS
    sender = run_in_thread(lambda: empty_continuations(peer, 65_534, True))
    assert conn.read_message() == (TEXT_MESSAGE, b"end")
    sender.join()
    sender = run_in_thread(lambda: empty_continuations(peer, DEFAULT_MAX_FRAGMENTS + 10, False))
    with pytest.raises(ErrReadLimit):
        conn.read_message()
    assert peer.recv_close()[0] == 1009
    sender.join(timeout=20)


def test_control_frames_between_fragments_do_not_count(raw_peer: RawPeerFactory) -> None:
    conn, peer = raw_peer(server=True)
    conn.set_max_fragments(3)
    conn.set_pong_handler(lambda data: None)
    peer.send_frame(TEXT_MESSAGE, b"a", fin=False)
    for _ in range(10):
        peer.send_frame(0xA, b"pong")
    peer.send_frame(0, b"b", fin=False)
    peer.send_frame(0, b"c")
    assert conn.read_message() == (TEXT_MESSAGE, b"abc")

