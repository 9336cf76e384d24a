"""Protocol Buffers messages, as bhojpur's (and old nhooyr's) ``wspb`` package.

``wspb.write(conn, message)`` sends a protobuf message in one binary message;
``wspb.read(conn, message)`` reads one binary message and parses it *into*
``message`` (cleared first, as Go's ``proto.Unmarshal`` resets its target)::

    from google.protobuf import struct_pb2
    from gorillaws import wspb

    wspb.write(conn, struct_pb2.Value(string_value="hi"))
    reply = wspb.read(conn, struct_pb2.Value())

A text message, or bytes that do not parse, close the connection with 1003 or
1007 and raise :class:`~gorillaws.ProtocolError` (see :mod:`gorillaws.wsjson`).

Needs the ``protobuf`` package: ``pip install 'gorillaws[protobuf]'``.
Importing this module without it raises :class:`ImportError` saying so.
Thread-safety: as the :class:`~gorillaws.Conn` methods it calls.
"""

from __future__ import annotations

import importlib
from typing import Protocol, TypeVar

from .conn import Conn
from .frames import BINARY_MESSAGE
from .wsjson import read_decoded

try:
    importlib.import_module("google.protobuf.message")
except ImportError as e:  # pragma: no cover - exercised by hiding the module
    raise ImportError(
        "gorillaws.wspb needs the protobuf package: pip install 'gorillaws[protobuf]'"
    ) from e

__all__ = ["read", "write", "ProtoMessage"]


class ProtoMessage(Protocol):
    """What ``wspb`` uses of a protobuf message (``google.protobuf.message.Message``)."""

    def SerializeToString(self) -> bytes: ...  # noqa: N802 (protobuf's name)

    def ParseFromString(self, serialized: bytes) -> object: ...  # noqa: N802


_M = TypeVar("_M", bound=ProtoMessage)


def read(conn: Conn, message: _M) -> _M:
    """Read the next message into ``message`` and return it (bhojpur's ``wspb.Read``).

    :raises ProtocolError: the message was text (code 1003) or did not parse
        (code 1007; the protobuf ``DecodeError`` is its ``__cause__``); the
        connection was closed with that code first.
    :raises CloseError, DeadlineExceeded, ...: whatever
        :meth:`Conn.read_message` raises.
    """

    def parse(data: bytes) -> _M:
        message.ParseFromString(data)
        return message

    return read_decoded(conn, BINARY_MESSAGE, "protobuf", parse)


def write(conn: Conn, message: ProtoMessage) -> None:
    """Send ``message`` serialized, in one binary message (bhojpur's ``wspb.Write``).

    :raises google.protobuf.message.EncodeError: a proto2 message misses a
        required field (nothing is sent then).
    :raises ErrCloseSent, DeadlineExceeded, ...: whatever
        :meth:`Conn.write_message` raises.
    """
    conn.write_message(BINARY_MESSAGE, message.SerializeToString())
