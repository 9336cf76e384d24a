"""RFC 6455 framing: opcodes, close codes, frame headers and close payloads.

Pure functions on bytes: nothing here knows about sockets.  The I/O layer
(:mod:`gorillaws.conn`) reads a header with :func:`parse_header` and builds
one with :func:`encode_header`.  For the common case of a whole message in
one frame it first tries :func:`parse_frame` and :func:`encode_frame`, which
do a frame's work in one call: C versions from :mod:`gorillaws._speedups`
when it was built (and ``GORILLAWS_NO_SPEEDUPS`` is not set), else the pure
twins :func:`parse_frame_python` and :func:`encode_frame_python`, which give
the same results.
"""

from __future__ import annotations

import struct
from typing import NamedTuple, Optional, Tuple, Union

from .exceptions import ProtocolError
from .mask import apply_mask_python, speedups
from .utf8 import is_valid_utf8_python
# Re-exported beside the codes it names; it lives in exceptions, which
# CloseError's message needs and which must not import this module.
from .exceptions import close_code_name as close_code_name

# Message types (gorilla's values: they are the RFC 6455 opcodes).
CONTINUATION_FRAME = 0
TEXT_MESSAGE = 1
BINARY_MESSAGE = 2
CLOSE_MESSAGE = 8
PING_MESSAGE = 9
PONG_MESSAGE = 10


# Close codes (RFC 6455 section 7.4.1; gorilla's names in snake case).
CLOSE_NORMAL_CLOSURE = 1000
CLOSE_GOING_AWAY = 1001
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_UNSUPPORTED_DATA = 1003
CLOSE_NO_STATUS_RECEIVED = 1005
CLOSE_ABNORMAL_CLOSURE = 1006
CLOSE_INVALID_FRAME_PAYLOAD_DATA = 1007
CLOSE_POLICY_VIOLATION = 1008
CLOSE_MESSAGE_TOO_BIG = 1009
CLOSE_MANDATORY_EXTENSION = 1010
CLOSE_INTERNAL_SERVER_ERR = 1011
CLOSE_SERVICE_RESTART = 1012
CLOSE_TRY_AGAIN_LATER = 1013
CLOSE_BAD_GATEWAY = 1014
CLOSE_TLS_HANDSHAKE = 1015

# Codes that may never appear in a close frame on the wire (RFC 6455 7.4.1).
_RESERVED_ON_WIRE = frozenset((1004, 1005, 1006, 1015))

MAX_CONTROL_PAYLOAD = 125

FIN = 0x80
RSV1 = 0x40
RSV2 = 0x20
RSV3 = 0x10
MASK_BIT = 0x80

_pack_16 = struct.Struct("!BBH").pack
_pack_64 = struct.Struct("!BBQ").pack
_unpack_16 = struct.Struct("!H").unpack_from
_unpack_64 = struct.Struct("!Q").unpack_from


def is_valid_close_code(code: int) -> bool:
    """Whether ``code`` may be sent in a close frame (RFC 6455 section 7.4)."""
    if 1000 <= code <= 1014:
        return code not in _RESERVED_ON_WIRE
    return 3000 <= code <= 4999


class FrameHeader(NamedTuple):
    """A parsed frame header.

    ``length`` is the payload length; ``mask`` is the 4-byte masking key or
    None; ``size`` is how many bytes the header took.
    """

    fin: bool
    rsv: int  # the three RSV bits, as 0x40/0x20/0x10 flags
    opcode: int
    mask: Optional[bytes]
    length: int
    size: int


def header_size(first_two: bytes) -> int:
    """How many bytes the header starting with these two bytes occupies."""
    b1 = first_two[1]
    n = 2
    ln = b1 & 0x7F
    if ln == 126:
        n += 2
    elif ln == 127:
        n += 8
    if b1 & MASK_BIT:
        n += 4
    return n


def parse_header(buf: "bytes | bytearray | memoryview", pos: int = 0, end: int = -1) -> Optional[FrameHeader]:
    """Parse the frame header at ``buf[pos:end]`` (``end`` -1: the end of ``buf``).

    Returns None when those bytes do not yet hold the whole header.  Raises
    :class:`ProtocolError` (1002) for headers that are malformed on their own:
    an unknown opcode, a fragmented or oversize control frame, a 64-bit length
    with the top bit set.  Role checks (masking) and extension checks (RSV
    bits) are the caller's, who knows the role and the negotiated extensions.
    """
    avail = (len(buf) if end < 0 else end) - pos
    if avail < 2:
        return None
    b0 = buf[pos]
    b1 = buf[pos + 1]
    opcode = b0 & 0x0F
    fin = bool(b0 & FIN)
    ln = b1 & 0x7F
    size = 2
    if ln == 126:
        if avail < 4:
            return None
        (ln,) = _unpack_16(buf, pos + 2)
        size = 4
        if ln < 126:
            raise ProtocolError("websocket: non-minimal 16-bit frame length")
    elif ln == 127:
        if avail < 10:
            return None
        (ln,) = _unpack_64(buf, pos + 2)
        size = 10
        if ln >> 63:
            raise ProtocolError("websocket: frame length has the most significant bit set")
        if ln <= 0xFFFF:
            raise ProtocolError("websocket: non-minimal 64-bit frame length")
    mask: Optional[bytes] = None
    if b1 & MASK_BIT:
        if avail < size + 4:
            return None
        mask = bytes(buf[pos + size : pos + size + 4])
        size += 4
    if opcode >= 8:
        if opcode > PONG_MESSAGE:
            raise ProtocolError(f"websocket: unknown opcode {opcode}")
        if not fin:
            raise ProtocolError("websocket: fragmented control frame")
        if ln > MAX_CONTROL_PAYLOAD:
            raise ProtocolError("websocket: control frame payload longer than 125 bytes")
    elif opcode > BINARY_MESSAGE:
        raise ProtocolError(f"websocket: unknown opcode {opcode}")
    return FrameHeader(fin, b0 & 0x70, opcode, mask, ln, size)


def encode_header(opcode: int, length: int, fin: bool = True, rsv: int = 0, mask: Optional[bytes] = None) -> bytes:
    """Build a frame header for a payload of ``length`` bytes.

    ``mask`` is the 4-byte masking key (clients must mask); the payload itself
    is masked by :func:`gorillaws.mask.apply_mask`.
    """
    b0 = (FIN if fin else 0) | rsv | opcode
    m = MASK_BIT if mask is not None else 0
    if length < 126:
        head = bytes((b0, m | length))
    elif length <= 0xFFFF:
        head = _pack_16(b0, m | 126, length)
    else:
        head = _pack_64(b0, m | 127, length)
    return head + mask if mask is not None else head


def format_close_message(close_code: int, text: str = "") -> bytes:
    """The payload of a close frame: the code in network order, then the UTF-8 text.

    ``CLOSE_NO_STATUS_RECEIVED`` (1005) gives an empty payload, as in gorilla.
    Raises ValueError when the result would not fit a control frame.
    """
    if close_code == CLOSE_NO_STATUS_RECEIVED:
        return b""
    payload = struct.pack("!H", close_code) + text.encode("utf-8")
    if len(payload) > MAX_CONTROL_PAYLOAD:
        raise ValueError("websocket: close reason longer than 123 bytes")
    return payload


def parse_close_payload(payload: bytes) -> Tuple[int, str]:
    """Decode a received close frame's payload into ``(code, text)``.

    An empty payload reads as ``(1005, "")``.  Raises :class:`ProtocolError`
    with 1002 for a one-byte payload or a code that may not be sent, and 1007
    for a reason that is not UTF-8.
    """
    if not payload:
        return CLOSE_NO_STATUS_RECEIVED, ""
    if len(payload) == 1:
        raise ProtocolError("websocket: close frame payload of one byte")
    (code,) = _unpack_16(payload, 0)
    if not is_valid_close_code(code):
        raise ProtocolError(f"websocket: invalid close code {code}")
    try:
        text = bytes(payload[2:]).decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("websocket: close reason is not valid UTF-8", 1007) from None
    return code, text


Buffer = Union[bytes, bytearray, memoryview]
#: What :func:`parse_frame` returns: None, a frame size, or ``(opcode, payload, size)``.
ParsedFrame = Union[None, int, Tuple[int, bytes, int]]


def parse_frame_python(buf: Buffer, pos: int, end: int, is_server: bool, limit: int) -> ParsedFrame:
    """The fast path's look at the frame at ``buf[pos:end]`` (pure Python).

    Returns ``(opcode, payload, size)`` when those bytes hold a complete,
    final, text or binary frame without RSV bits, masked as the role
    requires (``is_server``: the peer is a client, whose frames are masked),
    no longer than ``limit`` (``limit <= 0``: no limit) and, for text, valid
    UTF-8; ``payload`` is unmasked and ``size`` is the frame's length on the
    wire.  Returns the frame's size (an int) for such a binary frame whose
    header is complete but whose payload has not all arrived.  Returns None
    for anything else: the caller then reads the frame the general way,
    which raises for malformed ones (this function never decides an error).
    Raises ValueError when ``pos``/``end`` do not lie within ``buf``.
    """
    if not 0 <= pos <= end <= len(buf):
        raise ValueError("parse_frame: pos and end must lie within buf")
    try:
        hdr = parse_header(buf, pos, end)
    except ProtocolError:
        return None
    if hdr is None or not hdr.fin or hdr.rsv or hdr.opcode not in (TEXT_MESSAGE, BINARY_MESSAGE):
        return None
    if (hdr.mask is not None) != bool(is_server) or 0 < limit < hdr.length:
        return None
    total = hdr.size + hdr.length
    if end - pos < total:
        # Text is checked as it arrives on the general path: only binary waits here.
        return total if hdr.opcode == BINARY_MESSAGE else None
    body = memoryview(buf)[pos + hdr.size : pos + total]
    payload = bytes(body) if hdr.mask is None else apply_mask_python(body, hdr.mask)
    if hdr.opcode == TEXT_MESSAGE and not is_valid_utf8_python(payload):
        return None
    return hdr.opcode, payload, total


def encode_frame_python(opcode: int, payload: Buffer, fin: bool, rsv: int, mask: Optional[Buffer]) -> bytes:
    """One whole frame: :func:`encode_header`'s header, then the payload (pure Python).

    The payload is XORed with the 4-byte ``mask`` unless it is None (clients
    must mask).  Raises ValueError when ``mask`` is not 4 bytes long or the
    header's first byte (FIN | rsv | opcode) is not a byte.
    """
    body = payload if mask is None else apply_mask_python(payload, mask)  # checks the mask's length
    try:
        return encode_header(opcode, len(payload), fin, rsv, mask) + body  # type: ignore[arg-type]
    except (ValueError, struct.error):
        # A first byte outside 0..255 (bytes() or struct refused it).
        raise ValueError("frame header byte out of range") from None


_c = speedups("parse_frame", "encode_frame")
HAVE_SPEEDUPS = _c is not None
parse_frame, encode_frame = _c or (parse_frame_python, encode_frame_python)
