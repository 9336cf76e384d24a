"""Tests for gorillaws.deflate: RFC 7692 negotiation and the codec (pure, no sockets)."""

from __future__ import annotations

import gc
import os
import random
import tracemalloc
import zlib
from typing import List, Optional, Sequence, Tuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gorillaws.deflate import (
    COMPRESSION_CONTEXT_TAKEOVER as CT,
    COMPRESSION_DISABLED as DISABLED,
    COMPRESSION_NO_CONTEXT_TAKEOVER as NCT,
    DEFAULT_COMPRESSION_LEVEL,
    DeflateParams,
    PerMessageDeflate,
    client_accept,
    client_offer,
    compress_standalone,
    server_negotiate,
)
from gorillaws.exceptions import ErrReadLimit, ProtocolError
from gorillaws.handshake import parse_extensions

TAIL = b"\x00\x00\xff\xff"
Params = List[Tuple[str, Optional[str]]]


def ext(header: str) -> list:  # type: ignore[type-arg]
    """Parse a Sec-WebSocket-Extensions value the way the handshake does."""
    return parse_extensions({"Sec-WebSocket-Extensions": header})


def pmd(*params: Tuple[str, Optional[str]]) -> Tuple[str, Params]:
    return ("permessage-deflate", list(params))


def negotiate(header: str, mode: int, **kw: object) -> Optional[str]:
    res = server_negotiate(ext(header), mode, **kw)  # type: ignore[arg-type]
    return None if res is None else res[0]


def raw_inflate(payload: bytes, bits: int = 15) -> bytes:
    d = zlib.decompressobj(-bits)
    return d.decompress(payload + TAIL)


def read_message(codec: PerMessageDeflate, frames: Sequence[bytes], limit: int = -1) -> bytes:
    codec.start_decompress()
    out = b""
    for f in frames:
        out += codec.decompress(f, limit - len(out) if limit >= 0 else -1)
    return out + codec.finish_decompress(limit - len(out) if limit >= 0 else -1)


# ---------------------------------------------------------------------------
# client_offer


def test_offer_strings() -> None:
    assert client_offer(CT) == "permessage-deflate; client_max_window_bits"
    assert client_offer(NCT) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits"
    )
    assert client_offer(CT, server_max_window_bits=10, client_max_window_bits=9) == (
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9"
    )
    assert client_offer(NCT, client_max_window_bits=8) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=8"
    )


@pytest.mark.parametrize("kw", [{"server_max_window_bits": 7}, {"client_max_window_bits": 16}, {"server_max_window_bits": True}])
def test_offer_rejects_bad_window_bits(kw: dict) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValueError):
        client_offer(CT, **kw)


@pytest.mark.parametrize("mode", [DISABLED, 3, -1])
def test_offer_rejects_disabled_or_unknown_mode(mode: int) -> None:
    with pytest.raises(ValueError):
        client_offer(mode)


def test_offers_parse_back_and_are_accepted_by_our_server() -> None:
    for mode in (CT, NCT):
        res = server_negotiate(ext(client_offer(mode)), mode)
        assert res is not None
        codec = client_accept(ext(res[0]), mode)
        assert codec is not None


# ---------------------------------------------------------------------------
# server_negotiate


def test_server_disabled_or_nothing_offered() -> None:
    assert server_negotiate(ext("permessage-deflate"), DISABLED) is None
    assert server_negotiate([], CT) is None
    assert server_negotiate(ext("x-webkit-deflate-frame, foo; bar=1"), NCT) is None


def test_server_unknown_mode() -> None:
    with pytest.raises(ValueError):
        server_negotiate([], 7)


def test_server_browser_offer_no_context_takeover() -> None:
    # What Chrome and Firefox send.
    res = server_negotiate(ext("permessage-deflate; client_max_window_bits"), NCT)
    assert res is not None
    header, codec = res
    assert header == "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    assert codec.is_server and codec.own_no_context_takeover and codec.peer_no_context_takeover
    assert codec.threshold == 512
    assert codec.params == DeflateParams(True, True, None, None)


def test_server_browser_offer_context_takeover() -> None:
    res = server_negotiate(ext("permessage-deflate; client_max_window_bits"), CT)
    assert res is not None
    header, codec = res
    # client_max_window_bits without a value: nothing to limit, nothing to say.
    assert header == "permessage-deflate"
    assert codec.context_takeover_out and codec.context_takeover_in
    assert codec.own_window_bits == 15 and codec.peer_window_bits == 15
    assert codec.threshold == 128


def test_server_plain_offer() -> None:
    assert negotiate("permessage-deflate", CT) == "permessage-deflate"
    assert negotiate("permessage-deflate", NCT) == (
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover"
    )


def test_server_honours_client_no_context_takeover_requests_in_ct_mode() -> None:
    # nhooyr's fallback: a direction the peer wants without context takeover
    # goes without it; the other keeps it.
    res = server_negotiate(ext("permessage-deflate; server_no_context_takeover"), CT)
    assert res is not None
    assert res[0] == "permessage-deflate; server_no_context_takeover"
    assert not res[1].context_takeover_out and res[1].context_takeover_in
    assert res[1].threshold == 512  # our direction fell back

    res = server_negotiate(ext("permessage-deflate; client_no_context_takeover"), CT)
    assert res is not None
    assert res[0] == "permessage-deflate; client_no_context_takeover"
    assert res[1].context_takeover_out and not res[1].context_takeover_in
    assert res[1].threshold == 128


@pytest.mark.parametrize("bits", range(8, 16))
def test_server_window_bits(bits: int) -> None:
    res = server_negotiate(ext(f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"), CT)
    assert res is not None
    header, codec = res
    assert header == f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
    assert codec.own_window_bits == bits and codec.peer_window_bits == bits


def test_server_own_window_preferences() -> None:
    # The server may limit its own window even when not asked to, and limit
    # the client's window only when the client said it can take that.
    assert negotiate("permessage-deflate", CT, server_max_window_bits=10) == (
        "permessage-deflate; server_max_window_bits=10"
    )
    assert negotiate("permessage-deflate", CT, client_max_window_bits=10) == "permessage-deflate"
    assert negotiate("permessage-deflate; client_max_window_bits", CT, client_max_window_bits=10) == (
        "permessage-deflate; client_max_window_bits=10"
    )
    # The smaller of the two wishes wins, both ways.
    assert negotiate("permessage-deflate; client_max_window_bits=12", CT, client_max_window_bits=10) == (
        "permessage-deflate; client_max_window_bits=10"
    )
    assert negotiate("permessage-deflate; client_max_window_bits=9", CT, client_max_window_bits=10) == (
        "permessage-deflate; client_max_window_bits=9"
    )
    assert negotiate("permessage-deflate; server_max_window_bits=12", CT, server_max_window_bits=11) == (
        "permessage-deflate; server_max_window_bits=11"
    )
    with pytest.raises(ValueError):
        server_negotiate([], CT, server_max_window_bits=16)
    with pytest.raises(ValueError):
        server_negotiate([], CT, level=10)


@pytest.mark.parametrize(
    "bad",
    [
        "server_max_window_bits",  # needs a value
        "server_max_window_bits=7",
        "server_max_window_bits=16",
        "server_max_window_bits=08",  # leading zero
        "server_max_window_bits=abc",
        "client_max_window_bits=7",
        "client_max_window_bits=16",
        "client_max_window_bits=010",
        "server_no_context_takeover=1",  # takes no value
        "client_no_context_takeover=yes",
        "mystery_param",
        "server_no_context_takeover; server_no_context_takeover",  # duplicate
        "client_max_window_bits; client_max_window_bits=10",
        "server_max_window_bits=10; server_max_window_bits=10",
    ],
)
def test_server_declines_bad_offer(bad: str) -> None:
    for mode in (CT, NCT):
        assert server_negotiate(ext(f"permessage-deflate; {bad}"), mode) is None
        # ... and falls through to the next offer.
        res = server_negotiate(ext(f"permessage-deflate; {bad}, permessage-deflate; client_max_window_bits=11"), mode)
        assert res is not None and res[0].endswith("client_max_window_bits=11")


def test_server_offers_in_preference_order() -> None:
    header = "foo, permessage-deflate; server_max_window_bits=10, permessage-deflate"
    assert negotiate(header, CT) == "permessage-deflate; server_max_window_bits=10"
    header = "permessage-deflate; client_no_context_takeover, permessage-deflate; server_max_window_bits=10"
    assert negotiate(header, CT) == "permessage-deflate; client_no_context_takeover"


def test_server_case_insensitive_and_quoted_values() -> None:
    offers = [("PerMessage-Deflate", [("Server_Max_Window_Bits", '"10"'), ("CLIENT_NO_CONTEXT_TAKEOVER", None)])]
    res = server_negotiate(offers, CT)
    assert res is not None
    assert res[0] == "permessage-deflate; client_no_context_takeover; server_max_window_bits=10"
    # The handshake parser unquotes quoted-strings itself.
    assert negotiate('permessage-deflate; client_max_window_bits="9"', CT) == (
        "permessage-deflate; client_max_window_bits=9"
    )


def test_server_codec_settings() -> None:
    res = server_negotiate(ext("permessage-deflate"), CT, level=5, threshold=0)
    assert res is not None
    assert res[1].level == 5 and res[1].threshold == 0


# ---------------------------------------------------------------------------
# client_accept


def test_client_declined_is_none() -> None:
    assert client_accept([], CT) is None
    assert client_accept([], NCT) is None
    assert client_accept([], DISABLED) is None


@pytest.mark.parametrize(
    "mode, answer, message",
    [
        (DISABLED, "permessage-deflate", "not offered"),
        (CT, "x-webkit-deflate-frame", "not offered"),
        (CT, "permessage-deflate, foo", "not offered"),
        (CT, "permessage-deflate, permessage-deflate", "more than once"),
        (CT, "permessage-deflate; bogus", "unknown"),
        (CT, "permessage-deflate; server_no_context_takeover; server_no_context_takeover", "duplicate"),
        (CT, "permessage-deflate; server_no_context_takeover=1", "takes no value"),
        (CT, "permessage-deflate; server_max_window_bits", "needs a value"),
        (CT, "permessage-deflate; client_max_window_bits", "needs a value"),
        (CT, "permessage-deflate; server_max_window_bits=16", "invalid value"),
        (CT, "permessage-deflate; client_max_window_bits=7", "invalid value"),
        (NCT, "permessage-deflate", "server_no_context_takeover"),
        (NCT, "permessage-deflate; client_no_context_takeover", "server_no_context_takeover"),
    ],
)
def test_client_rejects(mode: int, answer: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        client_accept(ext(answer), mode)


def test_client_no_context_takeover_answers() -> None:
    codec = client_accept(ext("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), NCT)
    assert codec is not None and not codec.is_server
    assert codec.own_no_context_takeover and codec.peer_no_context_takeover and codec.threshold == 512
    # client_no_context_takeover may be left out: we reset anyway.
    codec = client_accept(ext("permessage-deflate; server_no_context_takeover"), NCT)
    assert codec is not None and codec.own_no_context_takeover and codec.params.client_no_context_takeover
    codec = client_accept(ext("permessage-deflate; server_no_context_takeover; client_max_window_bits=9"), NCT)
    assert codec is not None and codec.own_window_bits == 9


def test_client_context_takeover_answers() -> None:
    codec = client_accept(ext("permessage-deflate"), CT)
    assert codec is not None and codec.context_takeover_out and codec.context_takeover_in
    assert codec.threshold == 128
    # The server may turn context takeover off in either direction (fallback).
    codec = client_accept(ext("permessage-deflate; client_no_context_takeover"), CT)
    assert codec is not None and not codec.context_takeover_out and codec.context_takeover_in
    assert codec.threshold == 512
    codec = client_accept(ext("permessage-deflate; server_no_context_takeover"), CT)
    assert codec is not None and codec.context_takeover_out and not codec.context_takeover_in
    # A gorilla server answers this to any offer.
    codec = client_accept(ext("permessage-deflate; server_no_context_takeover; client_no_context_takeover"), CT)
    assert codec is not None and not codec.context_takeover_out and not codec.context_takeover_in


@pytest.mark.parametrize("bits", range(8, 16))
def test_client_window_bits(bits: int) -> None:
    answer = f"permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
    codec = client_accept(ext(answer), CT)
    assert codec is not None
    assert codec.own_window_bits == bits and codec.peer_window_bits == bits
    # The server may state server_max_window_bits unasked, in either mode.
    codec = client_accept(ext(f"permessage-deflate; server_no_context_takeover; server_max_window_bits={bits}"), NCT)
    assert codec is not None and codec.peer_window_bits == bits and codec.own_window_bits == 15


def test_client_window_bits_against_offer() -> None:
    kw = {"server_max_window_bits": 10, "client_max_window_bits": 10}
    with pytest.raises(ValueError, match="did not accept the offered server_max_window_bits"):
        client_accept(ext("permessage-deflate"), CT, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="larger than the offered"):
        client_accept(ext("permessage-deflate; server_max_window_bits=11"), CT, **kw)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="larger than the offered"):
        client_accept(
            ext("permessage-deflate; server_max_window_bits=10; client_max_window_bits=12"), CT, **kw  # type: ignore[arg-type]
        )
    codec = client_accept(ext("permessage-deflate; server_max_window_bits=9"), CT, **kw)  # type: ignore[arg-type]
    assert codec is not None
    # Our own limit holds although the server did not repeat it.
    assert codec.peer_window_bits == 9 and codec.own_window_bits == 10
    codec = client_accept(
        ext("permessage-deflate; server_no_context_takeover; client_max_window_bits=8"), NCT, client_max_window_bits=10
    )
    assert codec is not None and codec.own_window_bits == 8


def test_client_codec_settings() -> None:
    codec = client_accept(ext("permessage-deflate"), CT, level=-2, threshold=7)
    assert codec is not None and codec.level == -2 and codec.threshold == 7


# ---------------------------------------------------------------------------
# Codec basics


def make_pair(
    mode: int, params: DeflateParams = DeflateParams(), level: int = DEFAULT_COMPRESSION_LEVEL
) -> Tuple[PerMessageDeflate, PerMessageDeflate]:
    if mode == NCT:
        params = DeflateParams(True, True, params.server_max_window_bits, params.client_max_window_bits)
    return (
        PerMessageDeflate(params, is_server=True, mode=mode, level=level),
        PerMessageDeflate(params, is_server=False, mode=mode, level=level),
    )


def test_codec_rejects_bad_settings() -> None:
    with pytest.raises(ValueError):
        PerMessageDeflate(DeflateParams(), True, DISABLED)
    with pytest.raises(ValueError):
        PerMessageDeflate(DeflateParams(), True, CT, level=10)
    with pytest.raises(ValueError):
        PerMessageDeflate(DeflateParams(), True, CT, mem_level=0)
    with pytest.raises(ValueError):
        DeflateParams(server_max_window_bits=16)
    with pytest.raises(ValueError):
        DeflateParams(client_max_window_bits=7)


@pytest.mark.parametrize("level", [-3, 10, 1.0, True])
def test_set_level_range(level: object) -> None:
    codec = make_pair(CT)[0]
    with pytest.raises(ValueError):
        codec.set_level(level)  # type: ignore[arg-type]
    for ok in range(-2, 10):
        codec.set_level(ok)
        assert codec.level == ok


def test_rfc7692_hello_example() -> None:
    # RFC 7692 section 7.2.3.1 and 7.2.3.2.
    for mode in (CT, NCT):
        server, _ = make_pair(mode)
        assert server.compress_message(b"Hello") == bytes.fromhex("f248cdc9c90700")
    server, client = make_pair(CT)
    assert server.compress_message(b"Hello") == bytes.fromhex("f248cdc9c90700")
    assert server.compress_message(b"Hello") == bytes.fromhex("f200110000")
    assert read_message(client, [bytes.fromhex("f248cdc9c90700")]) == b"Hello"
    assert read_message(client, [bytes.fromhex("f200110000")]) == b"Hello"


def test_rfc7692_receive_examples() -> None:
    _, client = make_pair(CT)
    # 7.2.3.1 split over two frames
    assert read_message(client, [bytes.fromhex("f248cd"), bytes.fromhex("c9c90700")]) == b"Hello"
    # 7.2.3.3 stored (no compression) block
    assert read_message(client, [bytes.fromhex("0005 00faff 48656c6c6f 00")]) == b"Hello"
    # 7.2.3.5 two deflate blocks in one message
    assert read_message(client, [bytes.fromhex("f24805000000ffffcac9c90700")]) == b"Hello"
    # 7.2.3.4 a block with BFINAL set; the next message starts a new stream
    assert read_message(client, [bytes.fromhex("f348cdc9c90700")]) == b"Hello"
    assert read_message(client, [bytes.fromhex("f248cdc9c90700")]) == b"Hello"
    # empty message: a single 00 byte (7.2.3.6)
    assert read_message(client, [b"\x00"]) == b""
    assert read_message(client, []) == b""  # an empty payload is tolerated


def test_empty_message() -> None:
    for mode in (CT, NCT):
        server, client = make_pair(mode)
        payload = server.compress_message(b"")
        assert payload == b"\x00"
        assert read_message(client, [payload]) == b""
        # zlib emits nothing for a second sync flush without input between;
        # the payload must still be the 00 header byte, or the receiver's
        # inflater is left inside a block and the next message breaks.
        server.start_message()
        assert server.finish_message() == b"\x00"
        assert read_message(client, [b"\x00"]) == b""
        for msg in (b"Hello", b"", b"", b"Hello", b""):
            assert read_message(client, [server.compress_message(msg)]) == msg


def test_empty_compressed_payload_is_empty_message() -> None:
    # Some senders send an empty payload with RSV1 for an empty message.
    server, client = make_pair(CT)
    for msg in (b"Hello", b"Hello"):
        assert read_message(client, [server.compress_message(msg)]) == msg
        assert read_message(client, [b""]) == b""
        assert read_message(client, []) == b""


def test_tail_is_stripped_and_restored() -> None:
    data = os.urandom(100) * 20
    for mode in (CT, NCT):
        server, client = make_pair(mode)
        payload = server.compress_message(data)
        # What zlib produces with a sync flush is our payload plus 00 00 ff ff.
        c = zlib.compressobj(DEFAULT_COMPRESSION_LEVEL, zlib.DEFLATED, -15)
        assert c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH) == payload + TAIL
        assert raw_inflate(payload) == data
        # The receiver needs the tail to get the last bytes out.
        client.start_decompress()
        got = client.decompress(payload, -1)
        got += client.finish_decompress(-1)
        assert got == data


def test_data_after_final_block_is_1007() -> None:
    _, client = make_pair(CT)
    client.start_decompress()
    with pytest.raises(ProtocolError) as ei:
        client.decompress(bytes.fromhex("f348cdc9c90700") + b"\x01", -1)
    assert ei.value.code == 1007
    client.start_decompress()
    assert client.decompress(bytes.fromhex("f348cdc9c90700"), -1) == b"Hello"
    with pytest.raises(ProtocolError) as ei:
        client.decompress(b"\x00", -1)
    assert ei.value.code == 1007


@pytest.mark.parametrize("garbage", [b"\xff\xff\xff\xff", b"\x07" * 10, bytes.fromhex("f200ffff00")])
def test_corrupt_stream_is_1007(garbage: bytes) -> None:
    _, client = make_pair(CT)
    with pytest.raises(ProtocolError) as ei:
        read_message(client, [garbage])
    assert ei.value.code == 1007
    assert not isinstance(ei.value, ErrReadLimit)


def test_peer_reaching_beyond_agreed_window_is_1007() -> None:
    # The peer agreed to a 9-bit window but its second message refers 1000
    # bytes back, into the first one: our 512-byte window does not have it.
    chunk = os.urandom(1000)
    c = zlib.compressobj(1, zlib.DEFLATED, -15)
    first = c.compress(chunk) + c.flush(zlib.Z_SYNC_FLUSH)[:-4]
    second = c.compress(chunk) + c.flush(zlib.Z_SYNC_FLUSH)[:-4]
    _, client = make_pair(CT, DeflateParams(server_max_window_bits=9))
    assert client.peer_window_bits == 9
    assert read_message(client, [first]) == chunk
    with pytest.raises(ProtocolError) as ei:
        read_message(client, [second])
    assert ei.value.code == 1007
    # With the full window, the same stream is fine.
    _, client = make_pair(CT)
    assert read_message(client, [first]) == chunk and read_message(client, [second]) == chunk


@pytest.mark.parametrize("bits", range(8, 16))
def test_compression_stays_within_window_bits(bits: int) -> None:
    # Repeats at many distances, over several messages (context takeover):
    # a decompressor with exactly `bits` must decode everything.
    rnd = random.Random(bits)
    server, _ = make_pair(CT, DeflateParams(server_max_window_bits=bits))
    assert server.own_window_bits == bits
    d = zlib.decompressobj(-bits)
    for i in range(6):
        base = rnd.randbytes(300)
        data = base + rnd.randbytes(rnd.randrange(0, 40000)) + base + base[:50]
        payload = server.compress_message(data)
        assert d.decompress(payload + TAIL) == data
        # our own reader agrees
    client = PerMessageDeflate(DeflateParams(server_max_window_bits=bits), False, CT)
    server2 = PerMessageDeflate(DeflateParams(server_max_window_bits=bits), True, CT)
    for _ in range(3):
        data = rnd.randbytes(500) * 3
        assert read_message(client, [server2.compress_message(data)]) == data


def test_context_takeover_shrinks_repeated_message() -> None:
    msg = os.urandom(2000)
    server, client = make_pair(CT)
    first = server.compress_message(msg)
    second = server.compress_message(msg)
    assert len(first) > 2000  # random data does not compress on its own
    assert len(second) < 50  # ... but the second copy is one back-reference
    assert read_message(client, [first]) == msg
    assert read_message(client, [second]) == msg

    server, client = make_pair(NCT)
    first = server.compress_message(msg)
    second = server.compress_message(msg)
    assert first == second and len(second) > 2000
    assert read_message(client, [first]) == msg and read_message(client, [second]) == msg


def test_decompressor_is_dropped_only_when_peer_resets() -> None:
    server, client = make_pair(CT)
    read_message(client, [server.compress_message(b"abc" * 100)])
    assert client._decompressor is not None
    server, client = make_pair(NCT)
    read_message(client, [server.compress_message(b"abc" * 100)])
    assert client._decompressor is None
    assert server._compressor is None


def test_levels() -> None:
    data = b"the quick brown fox jumps over the lazy dog " * 200
    sizes = {}
    for level in range(-2, 10):
        server, client = make_pair(CT, level=level)
        payload = server.compress_message(data)
        sizes[level] = len(payload)
        assert read_message(client, [payload]) == data
    assert sizes[0] > len(data)  # stored blocks
    assert sizes[-2] > 3 * sizes[1]  # Huffman only: no string matching
    assert sizes[9] <= sizes[1]


def test_set_level_with_context_takeover() -> None:
    server, client = make_pair(CT)
    data = b"abcdefgh" * 100
    for level in (1, 9, 0, -2, 6, 6):
        server.set_level(level)
        assert read_message(client, [server.compress_message(data)]) == data


def test_streaming_matches_and_fragments() -> None:
    rnd = random.Random(5)
    for mode in (CT, NCT):
        server, client = make_pair(mode)
        for _ in range(5):
            data = rnd.randbytes(3000) * 3
            server.start_message()
            parts = [server.compress_chunk(data[i : i + 700]) for i in range(0, len(data), 700)]
            parts.append(server.finish_message())
            assert parts[-1]  # never empty
            assert read_message(client, parts) == data


def test_streaming_misuse() -> None:
    server, client = make_pair(CT)
    with pytest.raises(RuntimeError):
        server.compress_chunk(b"x")
    with pytest.raises(RuntimeError):
        server.finish_message()
    with pytest.raises(RuntimeError):
        client.decompress(b"x", -1)
    with pytest.raises(RuntimeError):
        client.finish_decompress(-1)


def test_abandoned_message_resets_context() -> None:
    server, client = make_pair(CT)
    read_message(client, [server.compress_message(b"hello world " * 20)])
    server.start_message()
    server.compress_chunk(b"never sent")
    # The next message must not depend on the abandoned one.  Decode it with a
    # fresh decompressor that saw only the first message.
    payload = server.compress_message(b"hello world " * 20)
    assert read_message(client, [payload]) == b"hello world " * 20


def test_compress_standalone_and_reset() -> None:
    data = b"prepared message " * 100
    payload = compress_standalone(data, level=1, window_bits=15)
    server, client = make_pair(CT)
    read_message(client, [server.compress_message(b"something else " * 50)])
    assert read_message(client, [payload]) == data
    server.reset_compressor()
    assert read_message(client, [server.compress_message(data)]) == data
    with pytest.raises(ValueError):
        compress_standalone(b"", window_bits=16)
    assert raw_inflate(compress_standalone(data, level=-2, window_bits=8), 8) == data


# ---------------------------------------------------------------------------
# Read limit and decompression bombs


def test_max_length_exact_boundaries() -> None:
    data = b"z" * 1000
    for limit, ok in ((1000, True), (999, False), (0, False), (-1, True)):
        server, client = make_pair(CT)
        payload = server.compress_message(data)
        if ok:
            assert read_message(client, [payload], limit) == data
        else:
            with pytest.raises(ErrReadLimit) as ei:
                read_message(client, [payload], limit)
            assert ei.value.code == 1009
    server, client = make_pair(CT)
    assert read_message(client, [server.compress_message(b"")], 0) == b""


@pytest.fixture(scope="module")
def bomb() -> List[bytes]:
    """100 MiB of zeros, compressed (about 100 KB), as frames of 16 KiB."""
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = bytes(1 << 20)
    payload = b"".join(c.compress(zeros) for _ in range(100)) + c.flush(zlib.Z_SYNC_FLUSH)[:-4]
    assert len(payload) < 200_000
    return [payload[i : i + 16384] for i in range(0, len(payload), 16384)]


def test_decompression_bomb_refused_without_allocating(bomb: List[bytes]) -> None:
    limit = 1 << 20
    _, client = make_pair(CT)
    gc.collect()
    tracemalloc.start()
    try:
        with pytest.raises(ErrReadLimit):
            read_message(client, bomb, limit)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The limit (1 MiB) plus one frame and zlib's state; never 100 MiB.
    assert peak < 4 * limit, peak


def test_decompression_bomb_single_frame(bomb: List[bytes]) -> None:
    # One frame carrying the whole bomb, refused by a small limit.
    _, client = make_pair(NCT)
    client.start_decompress()
    tracemalloc.start()
    try:
        with pytest.raises(ErrReadLimit):
            client.decompress(b"".join(bomb), 64 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


# ---------------------------------------------------------------------------
# Random round trips


messages = st.lists(st.binary(max_size=3000) | st.text(max_size=500).map(str.encode), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(
    msgs=messages,
    mode=st.sampled_from([CT, NCT]),
    bits=st.sampled_from([None, 8, 9, 10, 12, 15]),
    level=st.integers(-2, 9),
    data=st.data(),
)
def test_round_trips(msgs: List[bytes], mode: int, bits: Optional[int], level: int, data: st.DataObject) -> None:
    params = DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits)
    server, client = make_pair(mode, params, level)
    for msg in msgs:
        # both directions, whole or streamed, read in random frames
        for sender, receiver in ((server, client), (client, server)):
            if data.draw(st.booleans()):
                payload = sender.compress_message(msg)
                frames = []
                pos = 0
                while pos < len(payload):
                    n = data.draw(st.integers(1, max(1, len(payload))))
                    frames.append(payload[pos : pos + n])
                    pos += n
            else:
                sender.start_message()
                frames = []
                pos = 0
                while pos < len(msg):
                    n = data.draw(st.integers(1, len(msg)))
                    frames.append(sender.compress_chunk(msg[pos : pos + n]))
                    pos += n
                frames.append(sender.finish_message())
            assert read_message(receiver, frames, len(msg)) == msg


# ---------------------------------------------------------------------------
# Memory per connection (the numbers quoted in the module docstring)


def _traced(fn):  # type: ignore[no-untyped-def]
    gc.collect()
    tracemalloc.start()
    try:
        result = fn()
        gc.collect()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, current, peak


@pytest.mark.slow  # measures memory over many messages, seconds
def test_memory_per_mode(capsys: pytest.CaptureFixture[str]) -> None:
    msgs = [os.urandom(200) * 10 for _ in range(5)]

    def run(mode: int, bits: Optional[int]) -> Tuple[PerMessageDeflate, PerMessageDeflate]:
        server, client = make_pair(mode, DeflateParams(server_max_window_bits=bits, client_max_window_bits=bits))
        for m in msgs:
            read_message(client, [server.compress_message(m)])
        return server, client

    report = {}
    for name, mode, bits in (("nct", NCT, None), ("ct15", CT, None), ("ct9", CT, 9)):
        # both codecs, one direction of traffic: server compressor + client decompressor
        pair, kept, peak = _traced(lambda: run(mode, bits))
        report[name] = (kept, peak)
        del pair
    idle = _traced(lambda: make_pair(CT))[1]
    with capsys.disabled():
        print(f"\n[deflate memory] idle pair {idle} B; " + "; ".join(
            f"{k}: kept {v[0] // 1024} KiB, peak {v[1] // 1024} KiB" for k, v in report.items()))
    assert idle < 8 * 1024  # no zlib state until first use
    assert report["nct"][0] < 16 * 1024  # nothing kept between messages
    assert report["nct"][1] < 400 * 1024
    # A 32 KiB window in each direction plus memLevel 5's 16 KiB of hash and buffers.
    assert 150 * 1024 < report["ct15"][0] < 260 * 1024
    assert report["ct9"][0] < 64 * 1024
