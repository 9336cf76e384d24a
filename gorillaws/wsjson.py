"""JSON messages, as nhooyr/coder's (and bhojpur's) ``wsjson`` package.

``wsjson.read(conn)`` reads one text message and decodes it;
``wsjson.write(conn, v)`` sends ``v`` as one text message.  Unlike gorilla's
``ReadJSON`` (:meth:`Conn.read_json`, which only raises), a message that
cannot be used is a protocol failure here, as in nhooyr's package: the
connection is closed with a close code that says why, and a
:class:`~gorillaws.ProtocolError` carrying that code is raised.

Both functions are as thread-safe as the :class:`~gorillaws.Conn` methods they
call: one reader at a time, writers serialized.
"""

from __future__ import annotations

import json
from typing import Any, Callable, TypeVar

from .conn import Conn
from .exceptions import ProtocolError
from .frames import BINARY_MESSAGE, CLOSE_INVALID_FRAME_PAYLOAD_DATA, CLOSE_UNSUPPORTED_DATA, TEXT_MESSAGE

__all__ = ["read", "write"]

_T = TypeVar("_T")


def read(conn: Conn) -> Any:
    """Read the next message and return its JSON value (nhooyr's ``wsjson.Read``).

    Go's ``Read(ctx, c, &v)`` fills ``v``; Python returns the value instead.

    :raises ProtocolError: the message was binary (code 1003, unsupported
        data) or not valid JSON (code 1007, invalid payload data; the
        :class:`json.JSONDecodeError` is its ``__cause__``).  The connection
        was closed with that code first.
    :raises CloseError, DeadlineExceeded, ...: whatever
        :meth:`Conn.read_message` raises.
    """
    return read_decoded(conn, TEXT_MESSAGE, "JSON", json.loads)


def write(conn: Conn, v: Any) -> None:
    """Send ``v`` as JSON in one text message (nhooyr's ``wsjson.Write``).

    :raises TypeError, ValueError: ``v`` cannot be encoded as JSON (nothing
        is sent then).
    :raises ErrCloseSent, DeadlineExceeded, ...: whatever
        :meth:`Conn.write_message` raises.
    """
    conn.write_message(TEXT_MESSAGE, json.dumps(v, separators=(",", ":")).encode("utf-8"))


def read_decoded(conn: Conn, want: int, what: str, decode: Callable[[bytes], _T]) -> _T:
    """Read one message of type ``want`` and ``decode`` it; fail the connection otherwise.

    The shared core of :func:`read` and :func:`gorillaws.wspb.read`: a
    message of the other type closes with 1003, a payload ``decode`` rejects
    (any ``Exception``) closes with 1007; both then raise :class:`ProtocolError`.
    """
    mt, data = conn.read_message()
    if mt != want:
        kind = "text" if want == TEXT_MESSAGE else "binary"
        got = "binary" if mt == BINARY_MESSAGE else "text"
        conn.close(CLOSE_UNSUPPORTED_DATA, f"expected a {kind} message")
        raise ProtocolError(f"websocket: expected a {kind} message for {what}, got {got}", CLOSE_UNSUPPORTED_DATA)
    try:
        return decode(data)
    except Exception as e:
        # The close handshake runs here, bounded by conn.close_timeout.
        conn.close(CLOSE_INVALID_FRAME_PAYLOAD_DATA, f"invalid {what}")
        raise ProtocolError(f"websocket: invalid {what} message: {e}", CLOSE_INVALID_FRAME_PAYLOAD_DATA) from e
