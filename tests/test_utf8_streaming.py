"""UTF-8 fails fast in text frames of every size, on every read path.

A peer streams one text frame whose payload turns invalid early (``F4 90``:
above U+10FFFF), then stalls without sending the rest.  The reader must fail
with :class:`ProtocolError` 1007, and the peer get close 1007, while the
frame is still incomplete: the bytes are checked as they arrive, whatever
the frame's size (through the read buffer, straight into the result, or into
the buffer that grows past the first MiB) and however the application
reads (``read_message``, ``receive_text``, ``next_reader`` with small and
large reads, ``readinto``, ``net_conn``, ``join_messages``).

Each case runs with the C validator and with the pure-Python one, as server
(masked frames) and client, and a subset beside a thread that hogs the CPU
(and the GIL), which changes how the bytes are batched into reads.
"""

from __future__ import annotations

import os
import time
import zlib
from typing import Any, Callable, Dict, Iterator, List, Tuple

import pytest

from conftest import RawPeer, run_in_thread
from cpu_hog import cpu_hog

import gorillaws.utf8 as utf8_module
from gorillaws import TEXT_MESSAGE, Conn, ProtocolError, join_messages
from gorillaws.deflate import COMPRESSION_CONTEXT_TAKEOVER, DeflateParams, PerMessageDeflate

pytestmark = pytest.mark.timeout(60)

BAD = b"\xf4\x90"  # F4 90 .. can only start a code point above U+10FFFF
STALL_LIMIT = 5.0  # the read deadline: failing by it means the check waited for the frame


# Each read path reads one message and returns its payload.  The byte
# streams (net_conn, join_messages) do not mark where a message ends: they
# read until the peer's normal close, or until ``expected`` bytes arrived.
ReadPath = Callable[[Conn, int], bytes]


def _reads(n: int) -> ReadPath:
    """Read the next message with ``reader.read(n)`` calls."""

    def read(conn: Conn, expected: int) -> bytes:
        _, r = conn.next_reader()
        parts: List[bytes] = []
        while True:
            piece = r.read(n)
            if not piece:
                return b"".join(parts)
            parts.append(piece)

    return read


def _readinto(conn: Conn, expected: int) -> bytes:
    _, r = conn.next_reader()
    buf = bytearray(65536)
    parts: List[bytes] = []
    while True:
        k = r.readinto(buf)
        if not k:
            return b"".join(parts)
        parts.append(bytes(buf[:k]))


def _stream(open_stream: Callable[[Conn], Any]) -> ReadPath:
    """Read ``expected`` bytes (or up to the end) from a byte stream over the connection."""

    def read(conn: Conn, expected: int) -> bytes:
        stream = open_stream(conn)
        read_some = getattr(stream, "read1", stream.read)  # join_messages is buffered
        parts: List[bytes] = []
        while sum(map(len, parts)) < expected:
            piece = read_some(65536)
            if not piece:
                break
            parts.append(piece)
        return b"".join(parts)

    return read


READ_PATHS: Dict[str, ReadPath] = {
    "read_message": lambda c, _: c.read_message()[1],
    "receive_text": lambda c, _: c.receive_text().encode(),
    "reader.read(100)": _reads(100),
    "reader.read(16384)": _reads(16384),
    "reader.read(65536)": _reads(65536),
    "reader.read()": _reads(-1),
    "reader.readinto": _readinto,
    "net_conn": _stream(lambda c: c.net_conn(TEXT_MESSAGE)),
    "join_messages": _stream(join_messages),
}

# (frame payload size, offset of the bad byte): through the read buffer,
# a read straight into the result, and the buffer growing past 1 MiB.
SHAPES: List[Tuple[int, int]] = [
    (21, 10),
    (2000, 1500),
    (20_000, 10),
    (100_000, 10),
    (100_000, 70_000),
    (3 << 20, 10),
    (3 << 20, 1_500_000),
]


def valid_text(n: int) -> bytes:
    """``n`` bytes of valid UTF-8 mixing 1, 2, 3 and 4-byte characters."""
    unit = "ab\u00e9\u4e2d\U0001f600".encode()
    text = (unit * (n // len(unit) + 1))[:n]
    text = text[: len(text.decode("utf-8", "ignore").encode())]  # no cut character at the end
    return text + b"c" * (n - len(text))


def text_frame(size: int, bad_at: int, masked: bool) -> Tuple[bytes, int]:
    """A text frame of ``size`` payload bytes, invalid at ``bad_at``; and where its payload starts."""
    return encode_text(valid_text(bad_at) + BAD + b"d" * (size - bad_at - len(BAD)), masked)


def encode_text(payload: bytes, masked: bool, rsv1: bool = False) -> Tuple[bytes, int]:
    """One text frame carrying ``payload``; and where the payload starts.

    Masked by XOR of big integers (conftest's byte loop is slow for MiBs).
    """
    n = len(payload)
    b0 = 0xC1 if rsv1 else 0x81
    if n < 126:
        head = bytes((b0, n))
    elif n < 65536:
        head = bytes((b0, 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((b0, 127)) + n.to_bytes(8, "big")
    if not masked:
        return head + payload, len(head)
    key = os.urandom(4)
    stream = (key * (n // 4 + 1))[:n]
    body = (int.from_bytes(payload, "little") ^ int.from_bytes(stream, "little")).to_bytes(n, "little")
    head = bytes((head[0], head[1] | 0x80)) + head[2:] + key
    return head + body, len(head)


@pytest.fixture(params=["c", "pure"])
def validator(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which UTF-8 validator new connections use: the C speedup or pure Python."""
    if request.param == "c":
        if not utf8_module.HAVE_SPEEDUPS:
            if os.environ.get("CI") == "true" and not os.environ.get("GORILLAWS_NO_SPEEDUPS"):
                pytest.fail("the C speedup is not built")
            pytest.skip("the C speedup is not built")
    else:
        monkeypatch.setattr(utf8_module, "_c_validate", None)
    assert utf8_module.Utf8Validator().uses_speedups == (request.param == "c")
    return str(request.param)


@pytest.fixture
def transport() -> str:
    """Real TCP only (conftest's ``raw_peer`` would also run a socketpair)."""
    return "tcp"


@pytest.fixture
def pairs(raw_peer: Callable[..., Tuple[Conn, RawPeer]]) -> Callable[..., Tuple[Conn, RawPeer]]:
    """Factory: ``(conn, peer)``, ``conn`` in the given role with no read limit.

    ``compression=True`` gives ``conn`` a negotiated permessage-deflate codec.
    """

    def make(server: bool, compression: bool = False) -> Tuple[Conn, RawPeer]:
        codec = None
        if compression:
            codec = PerMessageDeflate(DeflateParams(), is_server=server, mode=COMPRESSION_CONTEXT_TAKEOVER)
        conn, peer = raw_peer(server=server, compression=codec, close_timeout=1.0)
        conn.set_read_limit(0)
        return conn, peer

    return make


@pytest.fixture
def hog() -> Iterator[None]:
    with cpu_hog():
        yield


def expect_fail_fast(conn: Conn, peer: RawPeer, sent: bytes, path: str) -> None:
    """The peer sends ``sent`` (a frame cut after its bad bytes) and stalls: ``path`` fails with 1007."""
    sender = run_in_thread(lambda: peer.send_raw(sent))
    closer = run_in_thread(peer.recv_close_and_hang_up)
    conn.set_read_deadline(time.monotonic() + STALL_LIMIT)
    with pytest.raises(ProtocolError) as e:
        READ_PATHS[path](conn, 1 << 62)
    assert e.value.code == 1007, e.value
    assert closer.join(STALL_LIMIT)[0] == 1007
    sender.join()


def fails_fast(make: Callable[[bool], Tuple[Conn, RawPeer]], server: bool, size: int, bad_at: int, path: str) -> None:
    conn, peer = make(server)
    frame, start = text_frame(size, bad_at, masked=server)
    expect_fail_fast(conn, peer, frame[: start + bad_at + len(BAD)], path)


@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize("size,bad_at", SHAPES, ids=[f"{s}@{b}" for s, b in SHAPES])
def test_server_fails_fast(pairs: Any, validator: str, size: int, bad_at: int, path: str) -> None:
    fails_fast(pairs, True, size, bad_at, path)


@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize("size,bad_at", SHAPES[::2], ids=[f"{s}@{b}" for s, b in SHAPES[::2]])
def test_client_fails_fast(pairs: Any, validator: str, size: int, bad_at: int, path: str) -> None:
    fails_fast(pairs, False, size, bad_at, path)


@pytest.mark.parametrize("server", [True, False], ids=["server", "client"])
@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize("size,bad_at", [(21, 10), (100_000, 70_000)], ids=["21@10", "100000@70000"])
def test_fails_fast_beside_a_cpu_hog(
    pairs: Any, validator: str, hog: None, size: int, bad_at: int, path: str, server: bool
) -> None:
    fails_fast(pairs, server, size, bad_at, path)


@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize("size", [21, 20_000, 100_000, 3 << 20])
def test_valid_text_passes_every_path(pairs: Any, validator: str, size: int, path: str) -> None:
    """The same sizes, valid, characters cut across reads and TCP segments: the whole text arrives."""
    conn, peer = pairs(True)
    payload = valid_text(size)
    expect_whole(conn, peer, encode_text(payload, masked=True)[0], payload, path)


def expect_whole(conn: Conn, peer: RawPeer, frame: bytes, payload: bytes, path: str) -> None:
    """The peer sends ``frame``: ``path`` reads ``payload``."""
    conn.set_read_deadline(time.monotonic() + STALL_LIMIT)
    sender = run_in_thread(lambda: peer.send_raw(frame))
    assert READ_PATHS[path](conn, len(payload)) == payload
    sender.join(STALL_LIMIT)


# ---------------------------------------------------------------------------
# Compressed text: checked as it inflates, piece by piece as it arrives
# ---------------------------------------------------------------------------


def deflated_parts(*pieces: bytes) -> List[bytes]:
    """Each piece deflated and sync-flushed (so it inflates alone), as permessage-deflate sends them."""
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = [comp.compress(p) + comp.flush(zlib.Z_SYNC_FLUSH) for p in pieces]
    assert out[-1].endswith(b"\x00\x00\xff\xff")
    out[-1] = out[-1][:-4]  # the sender drops the tail of the message (RFC 7692 7.2.1)
    return out


@pytest.mark.parametrize("path", list(READ_PATHS))
@pytest.mark.parametrize("server", [True, False], ids=["server", "client"])
def test_compressed_text_fails_fast(pairs: Any, validator: str, server: bool, path: str) -> None:
    """A 100 KiB compressed frame whose first KiB inflates to bad UTF-8 fails before the rest comes."""
    conn, peer = pairs(server, compression=True)
    rest = os.urandom(150_000).hex().encode()  # compresses about 2:1
    head, tail = deflated_parts(valid_text(1000) + BAD, rest)
    frame, start = encode_text(head + tail, masked=server, rsv1=True)
    expect_fail_fast(conn, peer, frame[: start + len(head)], path)


@pytest.mark.parametrize("path", list(READ_PATHS))
def test_compressed_text_arrives_whole(pairs: Any, validator: str, path: str) -> None:
    conn, peer = pairs(True, compression=True)
    text = valid_text(300_000)
    frame, _ = encode_text(b"".join(deflated_parts(text[:1000], text[1000:])), masked=True, rsv1=True)
    expect_whole(conn, peer, frame, text, path)
