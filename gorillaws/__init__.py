"""gorillaws: a blocking, thread-based WebSocket library that mirrors Go's gorilla/websocket.

The model in one paragraph: an :class:`Upgrader` (server) or a :class:`Dialer`
(client) performs the opening handshake and hands back a :class:`Conn`.  The
``Conn`` reads in the caller's thread (``read_message``/``next_reader``), runs
ping/pong/close handlers inside those reads, and allows one reader and one
writer at a time (writers are serialized; ``write_control`` and ``close`` are
safe from any thread).  Deadlines are :func:`time.monotonic` times.  See
``docs/`` for the tutorial and the gorilla porting table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .conn import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_READ_LIMIT,
    BufferPool,
    Conn,
    NetConn,
    SimpleBufferPool,
    join_messages,
)
from .exceptions import (
    CloseError,
    DeadlineExceeded,
    ErrBadHandshake,
    ErrCloseSent,
    ErrReadLimit,
    HandshakeError,
    ProtocolError,
    ProxyError,
    WebSocketError,
    is_close_error,
    is_unexpected_close_error,
)
from .frames import (
    BINARY_MESSAGE,
    CLOSE_ABNORMAL_CLOSURE,
    CLOSE_BAD_GATEWAY,
    CLOSE_GOING_AWAY,
    CLOSE_INTERNAL_SERVER_ERR,
    CLOSE_INVALID_FRAME_PAYLOAD_DATA,
    CLOSE_MANDATORY_EXTENSION,
    CLOSE_MESSAGE,
    CLOSE_MESSAGE_TOO_BIG,
    CLOSE_NO_STATUS_RECEIVED,
    CLOSE_NORMAL_CLOSURE,
    CLOSE_POLICY_VIOLATION,
    CLOSE_PROTOCOL_ERROR,
    CLOSE_SERVICE_RESTART,
    CLOSE_TLS_HANDSHAKE,
    CLOSE_TRY_AGAIN_LATER,
    CLOSE_UNSUPPORTED_DATA,
    PING_MESSAGE,
    PONG_MESSAGE,
    TEXT_MESSAGE,
    format_close_message,
)
from .prepared import PreparedMessage

__version__ = "0.1.0"

# Server, client and compression names load on first use, so that
# ``import gorillaws`` stays cheap for code that only needs one side.
_LAZY = {
    "Upgrader": "server",
    "Handler": "server",
    "is_websocket_upgrade": "server",
    "subprotocols": "server",
    "HIJACKED": "server",
    "UpgradeRequest": "server",
    "Dialer": "client",
    "DEFAULT_DIALER": "client",
    "dial": "client",
    "proxy_from_environment": "proxy",
    "COMPRESSION_DISABLED": "deflate",
    "COMPRESSION_NO_CONTEXT_TAKEOVER": "deflate",
    "COMPRESSION_CONTEXT_TAKEOVER": "deflate",
}

if TYPE_CHECKING:  # pragma: no cover
    from .client import DEFAULT_DIALER as DEFAULT_DIALER
    from .client import Dialer as Dialer
    from .client import dial as dial
    from .deflate import COMPRESSION_CONTEXT_TAKEOVER as COMPRESSION_CONTEXT_TAKEOVER
    from .deflate import COMPRESSION_DISABLED as COMPRESSION_DISABLED
    from .deflate import COMPRESSION_NO_CONTEXT_TAKEOVER as COMPRESSION_NO_CONTEXT_TAKEOVER
    from .proxy import proxy_from_environment as proxy_from_environment
    from .server import HIJACKED as HIJACKED
    from .server import Handler as Handler
    from .server import Upgrader as Upgrader
    from .server import UpgradeRequest as UpgradeRequest
    from .server import is_websocket_upgrade as is_websocket_upgrade
    from .server import subprotocols as subprotocols


def __getattr__(name: str) -> Any:
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'gorillaws' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{mod}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "Conn",
    "NetConn",
    "join_messages",
    "BufferPool",
    "SimpleBufferPool",
    "PreparedMessage",
    "DEFAULT_READ_LIMIT",
    "DEFAULT_CLOSE_TIMEOUT",
    "WebSocketError",
    "CloseError",
    "DeadlineExceeded",
    "ErrBadHandshake",
    "ErrCloseSent",
    "ErrReadLimit",
    "HandshakeError",
    "ProtocolError",
    "ProxyError",
    "is_close_error",
    "is_unexpected_close_error",
    "format_close_message",
    "TEXT_MESSAGE",
    "BINARY_MESSAGE",
    "CLOSE_MESSAGE",
    "PING_MESSAGE",
    "PONG_MESSAGE",
    "CLOSE_NORMAL_CLOSURE",
    "CLOSE_GOING_AWAY",
    "CLOSE_PROTOCOL_ERROR",
    "CLOSE_UNSUPPORTED_DATA",
    "CLOSE_NO_STATUS_RECEIVED",
    "CLOSE_ABNORMAL_CLOSURE",
    "CLOSE_INVALID_FRAME_PAYLOAD_DATA",
    "CLOSE_POLICY_VIOLATION",
    "CLOSE_MESSAGE_TOO_BIG",
    "CLOSE_MANDATORY_EXTENSION",
    "CLOSE_INTERNAL_SERVER_ERR",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TRY_AGAIN_LATER",
    "CLOSE_BAD_GATEWAY",
    "CLOSE_TLS_HANDSHAKE",
    *sorted(_LAZY),
]
