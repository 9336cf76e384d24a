"""gorillaws: a blocking, thread-based WebSocket library that mirrors Go's gorilla/websocket.

The model in one paragraph: an :class:`Upgrader` (server) or a :class:`Dialer`
(client) performs the opening handshake and hands back a :class:`Conn`.  The
``Conn`` reads in the caller's thread (``read_message``/``next_reader``), runs
ping/pong/close handlers inside those reads, and allows one reader and one
writer at a time (writers are serialized; ``write_control`` and ``close`` are
safe from any thread).  Deadlines are :func:`time.monotonic` times.  See
``docs/`` for the tutorial and the gorilla porting table.

Where things are: :class:`Server`/:func:`serve` run a ready server;
:class:`Hub` broadcasts to groups of connections; :mod:`gorillaws.wsjson` and
:mod:`gorillaws.wspb` read and write JSON and protobuf messages (nhooyr's and
bhojpur's packages); gorilla's deprecated package functions (``read_json``,
``write_json``, ``upgrade``, ``new_client``) come from :mod:`gorillaws.compat`.
The Flask extension, ``gorillaws.flask.Sock``, needs Flask and is imported
from its module.
"""

import importlib as _importlib
import typing as _typing

from .conn import (
    DEFAULT_CLOSE_TIMEOUT,
    DEFAULT_MAX_FRAGMENTS,
    DEFAULT_READ_LIMIT,
    BufferPool,
    CloseHandler,
    Conn,
    ConnState,
    MessageReader,
    MessageWriter,
    NetConn,
    PingHandler,
    PongHandler,
    SimpleBufferPool,
    join_messages,
)
from .enums import CloseCode, CompressionMode, MessageType
from .exceptions import (
    CloseError,
    ConnectionClosedError,
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

# Server, client, compression and the larger optional pieces load on first
# use, so that ``import gorillaws`` stays cheap for code that only needs one
# side.  name -> submodule that defines it.
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
    "DialError": "dialing",
    "DialCancelled": "dialing",
    "Response": "http11",
    "Headers": "http11",
    "proxy_from_environment": "proxy",
    "COMPRESSION_DISABLED": "deflate",
    "COMPRESSION_NO_CONTEXT_TAKEOVER": "deflate",
    "COMPRESSION_CONTEXT_TAKEOVER": "deflate",
    "Server": "serving",
    "serve": "serving",
    "Hub": "hub",
    "read_json": "compat",
    "write_json": "compat",
    "upgrade": "compat",
    "new_client": "compat",
}

if _typing.TYPE_CHECKING:  # pragma: no cover
    from .client import DEFAULT_DIALER as DEFAULT_DIALER
    from .client import Dialer as Dialer
    from .client import dial as dial
    from .compat import new_client as new_client
    from .dialing import DialCancelled as DialCancelled
    from .dialing import DialError as DialError
    from .compat import read_json as read_json
    from .compat import upgrade as upgrade
    from .compat import write_json as write_json
    from .deflate import COMPRESSION_CONTEXT_TAKEOVER as COMPRESSION_CONTEXT_TAKEOVER
    from .deflate import COMPRESSION_DISABLED as COMPRESSION_DISABLED
    from .deflate import COMPRESSION_NO_CONTEXT_TAKEOVER as COMPRESSION_NO_CONTEXT_TAKEOVER
    from .http11 import Headers as Headers
    from .http11 import Response as Response
    from .hub import Hub as Hub
    from .proxy import proxy_from_environment as proxy_from_environment
    from .server import HIJACKED as HIJACKED
    from .server import Handler as Handler
    from .server import Upgrader as Upgrader
    from .server import UpgradeRequest as UpgradeRequest
    from .server import is_websocket_upgrade as is_websocket_upgrade
    from .server import subprotocols as subprotocols
    from .serving import Server as Server
    from .serving import serve as serve
else:
    # Hidden from type checkers: with a module __getattr__ in view, mypy
    # would accept any misspelt ``gorillaws.X`` as valid.

    def __getattr__(name: str) -> object:
        mod = _LAZY.get(name)
        if mod is None:
            raise AttributeError(f"module 'gorillaws' has no attribute {name!r}")
        value = getattr(_importlib.import_module(f".{mod}", __name__), name)
        globals()[name] = value
        return value


def __dir__() -> _typing.List[str]:
    """The public names, loaded or not (for dir(), tab completion and help())."""
    return sorted(set(__all__) | {n for n in globals() if n.startswith("__") and n.endswith("__")})


__all__ = [
    "Conn",
    "MessageReader",
    "MessageWriter",
    "NetConn",
    "join_messages",
    "BufferPool",
    "SimpleBufferPool",
    "PreparedMessage",
    "PingHandler",
    "PongHandler",
    "CloseHandler",
    "DEFAULT_READ_LIMIT",
    "DEFAULT_CLOSE_TIMEOUT",
    "DEFAULT_MAX_FRAGMENTS",
    "ConnState",
    "MessageType",
    "CloseCode",
    "CompressionMode",
    "WebSocketError",
    "CloseError",
    "ConnectionClosedError",
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
