"""permessage-deflate (RFC 7692): negotiation and the per-connection codec.

This module is pure: it knows no sockets and no threads.  It has two halves.

**Negotiation.**  The client puts :func:`client_offer` in its
``Sec-WebSocket-Extensions`` request header.  The server hands the parsed
request header to :func:`server_negotiate`, which picks the first acceptable
offer and returns the response header value and a codec.  The client hands
the parsed response header to :func:`client_accept`, which checks the answer
against what was offered and returns a codec (or raises :class:`ValueError`,
which the Dialer reports as ``ErrBadHandshake``).  Parsed headers have the
shape produced by ``gorillaws.handshake.parse_extensions``: a list of
``(extension_name, [(param_name, value_or_None), ...])``.

**Modes** (the names follow nhooyr/coder websocket):

* :data:`COMPRESSION_DISABLED`: nothing is offered or accepted (the default).
* :data:`COMPRESSION_NO_CONTEXT_TAKEOVER`: every message is compressed on its
  own; both directions are negotiated with ``*_no_context_takeover``.  This is
  what gorilla's ``EnableCompression`` does.  If the peer does not support it,
  compression is off for the connection.
* :data:`COMPRESSION_CONTEXT_TAKEOVER`: the LZ77 sliding window is kept across
  messages (within the negotiated window bits), which compresses repetitive
  protocols much better.  If the peer asks for no context takeover in a
  direction, that direction falls back to no context takeover; if the peer does
  not support permessage-deflate at all, compression is off.

**Codec.**  :class:`PerMessageDeflate` compresses outgoing messages (whole, or
streamed in fragments) and decompresses incoming ones, with the 00 00 ff ff
tail handling of RFC 7692 section 7.2.  Decompression is bounded: the caller
passes the number of bytes it still accepts, zlib is asked for one byte more
than that, and :class:`~gorillaws.exceptions.ErrReadLimit` (close 1009) is
raised if it delivers it, so a "zip bomb" is never inflated beyond the limit.
Corrupt compressed data raises :class:`~gorillaws.exceptions.ProtocolError`
with close code 1007.

**Window bits.**  A peer may limit our LZ77 window to 2**8..2**15 bytes.
zlib cannot compress raw deflate with an 8-bit window (``deflateInit2``
rejects it), so 8 is compressed with a 9-bit window.  That is still within
the limit: zlib never emits a match distance larger than the window size minus
262 (``MIN_LOOKAHEAD``), so a 9-bit compressor refers back at most 250 bytes,
less than the 256 bytes an 8-bit window holds.  Decompression uses exactly
the peer's negotiated window bits (less memory); a peer that reaches further
back than it agreed to, into an earlier message, is a protocol error (1007).
(zlib resolves distances inside the output of one call without checking the
window size, so an over-long reference within one message may go unnoticed;
that is harmless.)

**Memory and speed** per mode are measured in ``docs/compression.md``
(section "Memory and speed"): an idle connection holds no zlib state
except in context takeover mode after its first compressed message.

**Thread safety.**  A :class:`PerMessageDeflate` is not thread-safe.  The
writing half (``compress_*``, ``start_message``, ``finish_message``,
``set_level``, ``reset_compressor``) must be serialized by the caller (the
Conn's write lock) and the reading half (``*decompress*``) by the single
reader.  The two halves share no state and may run concurrently.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple, Union

from .exceptions import ErrReadLimit, ProtocolError

__all__ = [
    "EXTENSION_NAME",
    "COMPRESSION_DISABLED",
    "COMPRESSION_NO_CONTEXT_TAKEOVER",
    "COMPRESSION_CONTEXT_TAKEOVER",
    "DEFAULT_COMPRESSION_LEVEL",
    "MIN_COMPRESSION_LEVEL",
    "MAX_COMPRESSION_LEVEL",
    "NO_CONTEXT_TAKEOVER_THRESHOLD",
    "CONTEXT_TAKEOVER_THRESHOLD",
    "DeflateParams",
    "PerMessageDeflate",
    "client_offer",
    "client_accept",
    "server_negotiate",
    "compress_standalone",
]

EXTENSION_NAME = "permessage-deflate"

#: permessage-deflate is never offered nor accepted (the default).
COMPRESSION_DISABLED = 0
#: Each message is compressed independently (gorilla's ``EnableCompression``).
COMPRESSION_NO_CONTEXT_TAKEOVER = 1
#: The sliding window is kept across messages; falls back per direction.
COMPRESSION_CONTEXT_TAKEOVER = 2

_MODES = (COMPRESSION_DISABLED, COMPRESSION_NO_CONTEXT_TAKEOVER, COMPRESSION_CONTEXT_TAKEOVER)

#: gorilla's default level (``defaultCompressionLevel``), zlib's "best speed".
#: Measured against websockets' level 6 (``bench/deflate_defaults.py``, table
#: in ``bench/RESULTS.md``): level 6 sends websockets' bytes at websockets' CPU
#: for messages of a few KB, but with our 15-bit window it compresses 64 KiB
#: JSON 2.3x slower than websockets (12-bit window) does; level 1 sends up to
#: 29% more bytes and is faster from 12-bit windows up.
DEFAULT_COMPRESSION_LEVEL = 1
#: Huffman coding only, no string matching (Go's ``flate.HuffmanOnly``).
MIN_COMPRESSION_LEVEL = -2
#: Best compression.
MAX_COMPRESSION_LEVEL = 9

#: Default threshold (bytes) when our direction has no context takeover.
NO_CONTEXT_TAKEOVER_THRESHOLD = 512
#: Default threshold (bytes) when our direction keeps its context.
CONTEXT_TAKEOVER_THRESHOLD = 128

#: zlib's memLevel for our compressors: 5 gives 16 KiB of hash and buffer on
#: top of the window (zlib's default 8 gives 128 KiB per compressor kept with
#: context takeover) and, at level 6, the same bytes (``bench/deflate_defaults.py``).
DEFAULT_MEM_LEVEL = 5

_TAIL = b"\x00\x00\xff\xff"
# RFC 7692 section 7.1.2: 1*DIGIT without leading zeroes, 8..15.
_WINDOW_BITS_RE = re.compile(r"(?:8|9|1[0-5])\Z")

ParsedExtensions = Sequence[Tuple[str, Sequence[Tuple[str, Optional[str]]]]]


def check_mode(mode: int) -> None:
    """Raise :class:`ValueError` unless ``mode`` is one of the ``COMPRESSION_*`` modes."""
    if mode not in _MODES:
        raise ValueError(f"websocket: unknown compression mode {mode!r}")


def _check_window_bits(name: str, bits: Optional[int]) -> None:
    if bits is not None and (isinstance(bits, bool) or not isinstance(bits, int) or not 8 <= bits <= 15):
        raise ValueError(f"websocket: {name} must be an integer from 8 to 15, not {bits!r}")


def check_level(level: int) -> None:
    """Raise :class:`ValueError` unless ``level`` is an int from -2 to 9."""
    if isinstance(level, bool) or not isinstance(level, int):
        raise ValueError(f"websocket: compression level must be an int, not {level!r}")
    if not MIN_COMPRESSION_LEVEL <= level <= MAX_COMPRESSION_LEVEL:
        raise ValueError(
            f"websocket: invalid compression level {level}: must be from "
            f"{MIN_COMPRESSION_LEVEL} to {MAX_COMPRESSION_LEVEL}"
        )


@dataclass(frozen=True)
class DeflateParams:
    """The agreed permessage-deflate parameters of one connection.

    ``*_no_context_takeover`` say that side resets its compressor after every
    message; ``*_max_window_bits`` (8..15, ``None`` meaning not stated, i.e.
    15) bound the LZ77 window that side compresses with.  "server" and
    "client" name the side that compresses.  Raises :class:`ValueError` for
    window bits outside 8..15.
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: Optional[int] = None
    client_max_window_bits: Optional[int] = None

    def __post_init__(self) -> None:
        _check_window_bits("server_max_window_bits", self.server_max_window_bits)
        _check_window_bits("client_max_window_bits", self.client_max_window_bits)

    def header_value(self) -> str:
        """The ``Sec-WebSocket-Extensions`` element stating exactly these parameters."""
        parts = [EXTENSION_NAME]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits is not None:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits is not None:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)


# ---------------------------------------------------------------------------
# Negotiation


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == '"' and value[-1] == '"':
        return value[1:-1]
    return value


def _parse_params(
    params: Sequence[Tuple[str, Optional[str]]], response: bool
) -> Dict[str, Optional[int]]:
    """Validate one permessage-deflate element's parameters.

    Returns ``{name: window_bits_or_None}``.  Raises :class:`ValueError`
    naming the problem: unknown or duplicate parameter, a value where none is
    allowed, a missing or invalid window-bits value.  ``client_max_window_bits``
    may lack a value only in an offer (``response`` false).
    """
    seen: Dict[str, Optional[int]] = {}
    for raw_name, raw_value in params:
        name = raw_name.strip().lower()
        if name in seen:
            raise ValueError(f"duplicate permessage-deflate parameter {name!r}")
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if raw_value is not None:
                raise ValueError(f"permessage-deflate parameter {name!r} takes no value, got {raw_value!r}")
            seen[name] = None
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if raw_value is None:
                if name == "server_max_window_bits" or response:
                    raise ValueError(f"permessage-deflate parameter {name!r} needs a value")
                seen[name] = None
                continue
            value = _unquote(raw_value.strip())
            if not _WINDOW_BITS_RE.match(value):
                raise ValueError(
                    f"invalid value {raw_value!r} for permessage-deflate parameter {name!r}: "
                    "must be 8..15 without leading zeroes"
                )
            seen[name] = int(value)
        else:
            raise ValueError(f"unknown permessage-deflate parameter {raw_name!r}")
    return seen


def client_offer(
    mode: int,
    *,
    server_max_window_bits: Optional[int] = None,
    client_max_window_bits: Optional[int] = None,
) -> str:
    """The ``Sec-WebSocket-Extensions`` request header value for ``mode``.

    Context takeover offers ``permessage-deflate; client_max_window_bits``;
    no context takeover offers ``permessage-deflate; server_no_context_takeover;
    client_no_context_takeover; client_max_window_bits``.  Both say
    ``client_max_window_bits`` (we can compress with any window the server
    asks for), as browsers do: servers configured to limit the client's
    window (npm ws with ``clientMaxWindowBits``, websockets with
    ``require_client_max_window_bits``) refuse offers without it.  ``server_max_window_bits`` asks the server
    to compress with at most that window; ``client_max_window_bits`` states
    the window we will compress with.  Pass the same keyword arguments to
    :func:`client_accept`.  Raises :class:`ValueError` for
    :data:`COMPRESSION_DISABLED` (send no header then), an unknown mode or
    window bits outside 8..15.
    """
    check_mode(mode)
    if mode == COMPRESSION_DISABLED:
        raise ValueError("websocket: nothing to offer when compression is disabled")
    _check_window_bits("server_max_window_bits", server_max_window_bits)
    _check_window_bits("client_max_window_bits", client_max_window_bits)
    parts = [EXTENSION_NAME]
    if mode == COMPRESSION_NO_CONTEXT_TAKEOVER:
        parts += ["server_no_context_takeover", "client_no_context_takeover"]
    if server_max_window_bits is not None:
        parts.append(f"server_max_window_bits={server_max_window_bits}")
    if client_max_window_bits is not None:
        parts.append(f"client_max_window_bits={client_max_window_bits}")
    else:
        parts.append("client_max_window_bits")
    return "; ".join(parts)


def _min_bits(a: Optional[int], b: Optional[int]) -> Optional[int]:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def server_negotiate(
    offers: ParsedExtensions,
    mode: int,
    *,
    level: int = DEFAULT_COMPRESSION_LEVEL,
    threshold: Optional[int] = None,
    server_max_window_bits: Optional[int] = None,
    client_max_window_bits: Optional[int] = None,
) -> Optional[Tuple[str, "PerMessageDeflate"]]:
    """Answer a client's permessage-deflate offers (server side).

    ``offers`` is the parsed ``Sec-WebSocket-Extensions`` request header.
    Offers are tried in the client's order of preference; other extensions
    are skipped, and an offer with unknown, duplicate or malformed parameters
    is declined (RFC 7692 section 5) and the next one tried.  Returns
    ``(response_header_value, codec)`` for the first acceptable offer, or
    ``None`` when compression is disabled or nothing is acceptable.

    The answer states exactly what is agreed: ``server_no_context_takeover``
    and ``client_no_context_takeover`` when the client asked for them, and
    always both in :data:`COMPRESSION_NO_CONTEXT_TAKEOVER` mode;
    ``server_max_window_bits`` when the client asked for it (or when
    ``server_max_window_bits`` is given here, the smaller wins);
    ``client_max_window_bits`` when the client offered it and either gave a
    value or ``client_max_window_bits`` is given here (the smaller wins).
    Raises :class:`ValueError` for an unknown mode, level or window bits.
    """
    check_mode(mode)
    check_level(level)
    _check_window_bits("server_max_window_bits", server_max_window_bits)
    _check_window_bits("client_max_window_bits", client_max_window_bits)
    if mode == COMPRESSION_DISABLED:
        return None
    for name, params in offers:
        if name.strip().lower() != EXTENSION_NAME:
            continue
        try:
            offer = _parse_params(params, response=False)
        except ValueError:
            continue  # decline this offer, try the next one
        no_context = mode == COMPRESSION_NO_CONTEXT_TAKEOVER
        if "client_max_window_bits" in offer:
            client_bits = _min_bits(offer["client_max_window_bits"], client_max_window_bits)
        else:
            client_bits = None  # the client can't take the parameter
        agreed = DeflateParams(
            server_no_context_takeover=no_context or "server_no_context_takeover" in offer,
            client_no_context_takeover=no_context or "client_no_context_takeover" in offer,
            server_max_window_bits=_min_bits(offer.get("server_max_window_bits"), server_max_window_bits),
            client_max_window_bits=client_bits,
        )
        codec = PerMessageDeflate(agreed, is_server=True, mode=mode, level=level, threshold=threshold)
        return agreed.header_value(), codec
    return None


def client_accept(
    response_offers: ParsedExtensions,
    mode: int,
    *,
    level: int = DEFAULT_COMPRESSION_LEVEL,
    threshold: Optional[int] = None,
    server_max_window_bits: Optional[int] = None,
    client_max_window_bits: Optional[int] = None,
) -> Optional["PerMessageDeflate"]:
    """Check the server's ``Sec-WebSocket-Extensions`` answer (client side).

    ``response_offers`` is the parsed response header; ``mode`` and the
    keyword arguments must be those given to :func:`client_offer`.  Call it
    even when compression is disabled: gorillaws offers no other extension,
    so any extension in the answer is an error then.  Returns the codec, or
    ``None`` when the server declined compression (the connection proceeds
    uncompressed).

    Raises :class:`ValueError` with a message saying what is wrong when the
    answer names an extension we did not offer, names permessage-deflate more
    than once or when we offered nothing, has unknown, duplicate or malformed
    parameters, omits ``server_no_context_takeover`` or
    ``server_max_window_bits`` we asked for, or gives a window larger than
    we asked for.  The server may add ``server_no_context_takeover``,
    ``client_no_context_takeover``, ``server_max_window_bits`` and (as we
    always offer it) ``client_max_window_bits`` on its own (RFC 7692 section
    7.1); in context takeover mode a ``*_no_context_takeover`` is the
    fallback to no context takeover for that direction.
    """
    check_mode(mode)
    check_level(level)
    _check_window_bits("server_max_window_bits", server_max_window_bits)
    _check_window_bits("client_max_window_bits", client_max_window_bits)
    answers: List[Sequence[Tuple[str, Optional[str]]]] = []
    for name, params in response_offers:
        if name.strip().lower() != EXTENSION_NAME:
            raise ValueError(f"server selected extension {name!r}, which was not offered")
        answers.append(params)
    if not answers:
        return None
    if mode == COMPRESSION_DISABLED:
        raise ValueError("server selected permessage-deflate, which was not offered")
    if len(answers) > 1:
        raise ValueError("server selected permessage-deflate more than once")
    answer = _parse_params(answers[0], response=True)

    if mode == COMPRESSION_NO_CONTEXT_TAKEOVER and "server_no_context_takeover" not in answer:
        raise ValueError("server did not accept the offered server_no_context_takeover")
    server_bits = answer.get("server_max_window_bits")
    if server_max_window_bits is not None:
        if server_bits is None:
            raise ValueError("server did not accept the offered server_max_window_bits")
        if server_bits > server_max_window_bits:
            raise ValueError(
                f"server_max_window_bits={server_bits} is larger than the offered {server_max_window_bits}"
            )
    # client_offer always offers client_max_window_bits, so any valid value
    # is acceptable unless we offered a smaller one.
    client_bits = answer.get("client_max_window_bits")
    if client_bits is not None and client_max_window_bits is not None and client_bits > client_max_window_bits:
        raise ValueError(
            f"client_max_window_bits={client_bits} is larger than the offered {client_max_window_bits}"
        )
    agreed = DeflateParams(
        server_no_context_takeover="server_no_context_takeover" in answer,
        client_no_context_takeover="client_no_context_takeover" in answer
        or mode == COMPRESSION_NO_CONTEXT_TAKEOVER,
        server_max_window_bits=server_bits,
        # our own limit applies even if the server did not repeat it
        client_max_window_bits=_min_bits(client_bits, client_max_window_bits),
    )
    return PerMessageDeflate(agreed, is_server=False, mode=mode, level=level, threshold=threshold)


# ---------------------------------------------------------------------------
# Codec


def _compressor(level: int, window_bits: int, mem_level: int = DEFAULT_MEM_LEVEL) -> "zlib._Compress":
    # See the module docstring: 8 bits is compressed with 9 and stays in bounds.
    wbits = -max(9, window_bits)
    if level == -2:
        return zlib.compressobj(1, zlib.DEFLATED, wbits, mem_level, zlib.Z_HUFFMAN_ONLY)
    return zlib.compressobj(level, zlib.DEFLATED, wbits, mem_level)


def _strip_tail(flushed: bytes) -> bytes:
    # A Z_SYNC_FLUSH ends with the empty stored block 00 00 ff ff, except
    # that zlib emits nothing at all for a second sync flush with no input in
    # between (an empty message after another one, context takeover).  An
    # empty payload would be wrong then: the receiver appends 00 00 ff ff,
    # whose first byte it would take for a block header and then wait for a
    # length it never gets.  So send that header byte: 00 + tail is a whole
    # empty stored block.
    if not flushed:
        return b"\x00"
    if flushed.endswith(_TAIL):
        return flushed[:-4]
    raise AssertionError("zlib sync flush did not end with 00 00 ff ff")  # pragma: no cover


def _window_for(size: int, max_bits: int) -> int:
    # Smallest window that lets every match distance in a `size`-byte message
    # through (zlib's largest distance is the window size minus 262).
    return max(9, min(max_bits, (size + 262).bit_length()))


def _mem_level_for(size: int, max_mem_level: int) -> int:
    # zlib's memLevel m gives 2**(m+6) symbols per block and a 2**(m+7)-entry
    # hash table.  A message that fits in one block gains nothing from more.
    return max(1, min(max_mem_level, (size + 1).bit_length() - 6))


def compress_standalone(
    data: Union[bytes, bytearray, memoryview],
    level: int = DEFAULT_COMPRESSION_LEVEL,
    window_bits: int = 15,
) -> bytes:
    """Compress one message without any context, for ``PreparedMessage``.

    The result (tail removed) is a valid payload for any connection whose
    own window limit is at least ``window_bits`` and whose compression level
    is ``level``.  On a connection that keeps its compression context, call
    :meth:`PerMessageDeflate.reset_compressor` after sending it, because the
    connection's compressor did not see this message.  Raises
    :class:`ValueError` for a bad level or window bits.
    """
    check_level(level)
    _check_window_bits("window_bits", window_bits)
    n = len(data)
    c = _compressor(level, _window_for(n, window_bits), _mem_level_for(n, DEFAULT_MEM_LEVEL))
    return c.compress(data) + _strip_tail(c.flush(zlib.Z_SYNC_FLUSH))


class PerMessageDeflate:
    """The permessage-deflate codec of one connection.

    ``params`` are the agreed parameters, ``is_server`` says which side we
    are, ``mode`` is our configured mode (not disabled).  ``level`` is the
    compression level (-2..9, see :meth:`set_level`).  ``threshold`` is the
    size below which the Conn sends messages uncompressed; ``None`` picks 512
    when our direction has no context takeover and 128 when it keeps it (the
    defaults nhooyr documents).  The Conn reads and may assign
    :attr:`threshold`.

    Writing: :meth:`compress_message` for a whole message, or
    :meth:`start_message`, :meth:`compress_chunk`..., :meth:`finish_message`
    to stream one in fragments; the concatenated output is the payload, sent
    with RSV1 set on the first frame.  Reading: :meth:`start_decompress`,
    :meth:`decompress` per frame payload, :meth:`finish_decompress` after the
    final frame.  See the module docstring for memory use and threading.
    Raises :class:`ValueError` for a disabled or unknown mode or a bad level.
    """

    def __init__(
        self,
        params: DeflateParams,
        is_server: bool,
        mode: int,
        level: int = DEFAULT_COMPRESSION_LEVEL,
        threshold: Optional[int] = None,
        mem_level: int = DEFAULT_MEM_LEVEL,
    ) -> None:
        check_mode(mode)
        if mode == COMPRESSION_DISABLED:
            raise ValueError("websocket: a PerMessageDeflate codec needs compression enabled")
        if not 1 <= mem_level <= 9:
            raise ValueError(f"websocket: mem_level must be from 1 to 9, not {mem_level!r}")
        self.params = params
        self.is_server = is_server
        self.mode = mode
        if is_server:
            own_nct, peer_nct = params.server_no_context_takeover, params.client_no_context_takeover
            own_bits, peer_bits = params.server_max_window_bits, params.client_max_window_bits
        else:
            own_nct, peer_nct = params.client_no_context_takeover, params.server_no_context_takeover
            own_bits, peer_bits = params.client_max_window_bits, params.server_max_window_bits
        #: We reset our compressor after every message.
        self.own_no_context_takeover: bool = own_nct or mode == COMPRESSION_NO_CONTEXT_TAKEOVER
        #: The peer resets its compressor after every message (we may drop ours).
        self.peer_no_context_takeover: bool = peer_nct
        #: Largest window (bits) we may compress with.
        self.own_window_bits: int = own_bits if own_bits is not None else 15
        #: Window (bits) the peer compresses with; our decompressor's window.
        self.peer_window_bits: int = peer_bits if peer_bits is not None else 15
        self.mem_level = mem_level
        check_level(level)
        self.level: int = level
        if threshold is None:
            threshold = NO_CONTEXT_TAKEOVER_THRESHOLD if self.own_no_context_takeover else CONTEXT_TAKEOVER_THRESHOLD
        self.threshold: int = threshold
        self._compressor: Optional["zlib._Compress"] = None
        self._compressor_level = level
        self._writing = False
        self._decompressor: Optional["zlib._Decompress"] = None
        self._reading = False
        self._fed = False  # compressed bytes seen in the message being read

    @property
    def context_takeover_out(self) -> bool:
        """Our compressor keeps its window across messages (a precompressed
        frame must then go through :meth:`compress_message`, or be followed
        by :meth:`reset_compressor`)."""
        return not self.own_no_context_takeover

    @property
    def context_takeover_in(self) -> bool:
        """The peer keeps its window across messages, so our decompressor is kept."""
        return not self.peer_no_context_takeover

    @property
    def out_window_bits(self) -> int:
        """Same as :attr:`own_window_bits`: the window we compress within."""
        return self.own_window_bits

    def __repr__(self) -> str:
        side = "server" if self.is_server else "client"
        return f"<PerMessageDeflate {side} {self.params.header_value()!r} level={self.level}>"

    # -- writing -----------------------------------------------------------

    def set_level(self, level: int) -> None:
        """Set the compression level for the next messages (gorilla's ``SetCompressionLevel``).

        -2 is Huffman coding only, -1 zlib's default (6), 0 no compression
        (stored blocks), 1 best speed .. 9 best compression.  A message being
        streamed keeps its level.  With context takeover, changing the level
        starts a fresh compressor (the peer copes; the window restarts).
        Raises :class:`ValueError` outside -2..9.
        """
        check_level(level)
        self.level = level

    def reset_compressor(self) -> None:
        """Forget our compression context; the next message starts afresh.

        Needed after sending a payload made by :func:`compress_standalone`
        on a connection that keeps its context.  Harmless otherwise.
        """
        self._compressor = None
        self._writing = False

    def start_message(self) -> None:
        """Begin streaming one compressed message.

        A previous message that was started and never finished is abandoned
        and the compression context reset (the peer never saw its end).
        """
        if self._writing:
            self._compressor = None
        if self._compressor is not None and self._compressor_level != self.level:
            self._compressor = None
        if self._compressor is None:
            self._compressor = _compressor(self.level, self.own_window_bits, self.mem_level)
            self._compressor_level = self.level
        self._writing = True

    def compress_chunk(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        """Compress the next part of the message being streamed.

        Returns what zlib produced so far, possibly ``b""``.  Raises
        :class:`RuntimeError` if no message was started.
        """
        if not self._writing or self._compressor is None:
            raise RuntimeError("websocket: compress_chunk without start_message")
        return self._compressor.compress(data)

    def finish_message(self) -> bytes:
        """End the message being streamed; returns its last compressed bytes.

        Flushes with Z_SYNC_FLUSH and removes the trailing 00 00 ff ff (RFC
        7692 section 7.2.1).  Never empty (at least the 00 byte that
        starts an empty block).  Raises :class:`RuntimeError` if
        no message was started.
        """
        if not self._writing or self._compressor is None:
            raise RuntimeError("websocket: finish_message without start_message")
        out = _strip_tail(self._compressor.flush(zlib.Z_SYNC_FLUSH))
        self._writing = False
        if self.own_no_context_takeover:
            self._compressor = None
        return out

    def compress_message(self, data: Union[bytes, bytearray, memoryview]) -> bytes:
        """Compress one whole message; returns the payload to send with RSV1.

        Without context takeover on our side the compressor is made for this
        message only, with a window and memLevel no larger than the message
        needs (a 2 KB message costs ~20 KiB of zlib state, not ~260 KiB).
        """
        if self.own_no_context_takeover:
            self._writing = False
            n = len(data)
            c = _compressor(self.level, _window_for(n, self.own_window_bits), _mem_level_for(n, self.mem_level))
            return c.compress(data) + _strip_tail(c.flush(zlib.Z_SYNC_FLUSH))
        self.start_message()
        out = self.compress_chunk(data)
        return out + self.finish_message()

    # -- reading -----------------------------------------------------------

    def start_decompress(self) -> None:
        """Begin reading one compressed message (first frame had RSV1)."""
        if self._reading or self._decompressor is None or self._decompressor.eof:
            # fresh state: first use, peer resets per message, an abandoned
            # message, or the peer ended its deflate stream (BFINAL)
            self._decompressor = zlib.decompressobj(-self.peer_window_bits)
        self._reading = True
        self._fed = False

    def decompress(self, data: Union[bytes, bytearray, memoryview], max_length: int) -> bytes:
        """Decompress the next frame payload of the message being read.

        ``max_length`` is how many more bytes the caller accepts (the read
        limit minus what the message already produced); negative means no
        limit.  Raises :class:`~gorillaws.exceptions.ErrReadLimit` (1009) if
        this call would produce more than that (nothing beyond
        ``max_length + 1`` bytes is ever produced), and
        :class:`~gorillaws.exceptions.ProtocolError` (1007) for corrupt data.
        Raises :class:`RuntimeError` if no message was started.
        """
        d = self._decompressor
        if not self._reading or d is None:
            raise RuntimeError("websocket: decompress without start_decompress")
        if d.eof:
            if data:
                raise ProtocolError("websocket: data after the final deflate block", 1007)
            return b""
        if data:
            self._fed = True
        try:
            if max_length < 0:
                out = d.decompress(data)
            else:
                out = d.decompress(data, max_length + 1)
        except zlib.error as exc:
            self._decompressor = None
            raise ProtocolError(f"websocket: invalid compressed data: {exc}", 1007) from None
        if max_length >= 0 and len(out) > max_length:
            self._decompressor = None
            raise ErrReadLimit()
        if d.eof and d.unused_data:
            raise ProtocolError("websocket: data after the final deflate block", 1007)
        return out

    def finish_decompress(self, max_length: int) -> bytes:
        """End the message being read (after its final frame).

        Feeds the 00 00 ff ff tail the sender removed and returns any last
        output (normally ``b""``).  Drops the decompressor when the peer has
        no context takeover.  ``max_length`` and the exceptions are as for
        :meth:`decompress`.
        """
        d = self._decompressor
        if not self._reading or d is None:
            raise RuntimeError("websocket: finish_decompress without start_decompress")
        # A message whose compressed payload is empty (some senders do that
        # for an empty message) is empty: feeding the tail alone would leave
        # the inflater inside a half-read block header.
        out = b"" if d.eof or not self._fed else self.decompress(_TAIL, max_length)
        self._reading = False
        if self.peer_no_context_takeover or d.eof:
            self._decompressor = None
        return out
