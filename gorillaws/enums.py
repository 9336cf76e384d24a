"""Message types, close codes and compression modes as :class:`enum.IntEnum`.

The plain constants (``TEXT_MESSAGE``, ``CLOSE_NORMAL_CLOSURE``,
``COMPRESSION_CONTEXT_TAKEOVER``, ...) stay the documented names and keep
working everywhere; these enums are the same numbers with a name attached, for
annotations, ``repr()`` in logs and exhaustive ``match`` statements::

    >>> MessageType.TEXT == TEXT_MESSAGE == 1
    True
    >>> CloseCode(1001)
    <CloseCode.GOING_AWAY: 1001>

Members compare and hash as the ints they stand for, so a member can be passed
wherever an int is accepted and vice versa.  ``str()`` of a member is the bare
number on every Python version (as ``str()`` of the plain constant was), so
log lines and string formatting do not change when code moves to the enums.
"""

from __future__ import annotations

from enum import IntEnum

from . import deflate, frames

__all__ = ["MessageType", "CloseCode", "CompressionMode"]


class _Code(IntEnum):
    """A member-less base: ``str()`` is the bare number on 3.9/3.10 as on 3.11+."""

    # (3.11+ IntEnum does this already; 3.9/3.10 would print "CloseCode.GOING_AWAY".)
    __str__ = int.__repr__


class MessageType(_Code):
    """A WebSocket message type: gorilla's ``TextMessage`` ... ``PongMessage``.

    The values are the RFC 6455 opcodes.  :meth:`Conn.read_message` and
    :meth:`Conn.next_reader` return ``TEXT`` or ``BINARY``; every member is
    accepted by :meth:`Conn.next_writer`, :meth:`Conn.write_message` and
    :meth:`Conn.write_control` (the last three are control messages).
    """

    TEXT = frames.TEXT_MESSAGE
    BINARY = frames.BINARY_MESSAGE
    CLOSE = frames.CLOSE_MESSAGE
    PING = frames.PING_MESSAGE
    PONG = frames.PONG_MESSAGE


class CompressionMode(_Code):
    """permessage-deflate modes: nhooyr/coder's ``CompressionMode`` type.

    The documented names are the constants ``COMPRESSION_DISABLED``,
    ``COMPRESSION_NO_CONTEXT_TAKEOVER`` and ``COMPRESSION_CONTEXT_TAKEOVER``
    (see :mod:`gorillaws.deflate`); this enum carries the same values under
    nhooyr's names.  The numbers differ from nhooyr's Go ``iota`` (there
    ``CompressionContextTakeover`` is 1 and ``CompressionNoContextTakeover``
    is 2; here the other way round), so port by name, never by number.
    """

    DISABLED = deflate.COMPRESSION_DISABLED
    NO_CONTEXT_TAKEOVER = deflate.COMPRESSION_NO_CONTEXT_TAKEOVER
    CONTEXT_TAKEOVER = deflate.COMPRESSION_CONTEXT_TAKEOVER


class CloseCode(_Code):
    """The close codes RFC 6455 and IANA define, named like the ``CLOSE_*`` constants.

    ``CloseCode.NORMAL_CLOSURE == CLOSE_NORMAL_CLOSURE == 1000``.  Application
    codes (3000-4999) are valid on the wire but are not members: a received
    code stays a plain ``int`` in :attr:`CloseError.code`; use
    ``CloseCode(code)`` only where the code is known to be one of these.
    """

    NORMAL_CLOSURE = frames.CLOSE_NORMAL_CLOSURE
    GOING_AWAY = frames.CLOSE_GOING_AWAY
    PROTOCOL_ERROR = frames.CLOSE_PROTOCOL_ERROR
    UNSUPPORTED_DATA = frames.CLOSE_UNSUPPORTED_DATA
    NO_STATUS_RECEIVED = frames.CLOSE_NO_STATUS_RECEIVED
    ABNORMAL_CLOSURE = frames.CLOSE_ABNORMAL_CLOSURE
    INVALID_FRAME_PAYLOAD_DATA = frames.CLOSE_INVALID_FRAME_PAYLOAD_DATA
    POLICY_VIOLATION = frames.CLOSE_POLICY_VIOLATION
    MESSAGE_TOO_BIG = frames.CLOSE_MESSAGE_TOO_BIG
    MANDATORY_EXTENSION = frames.CLOSE_MANDATORY_EXTENSION
    INTERNAL_SERVER_ERR = frames.CLOSE_INTERNAL_SERVER_ERR
    SERVICE_RESTART = frames.CLOSE_SERVICE_RESTART
    TRY_AGAIN_LATER = frames.CLOSE_TRY_AGAIN_LATER
    BAD_GATEWAY = frames.CLOSE_BAD_GATEWAY
    TLS_HANDSHAKE = frames.CLOSE_TLS_HANDSHAKE
