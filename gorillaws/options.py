"""The options :class:`~gorillaws.server.Upgrader` and :class:`~gorillaws.client.Dialer` share.

Both ends take the same handshake, buffer, subprotocol and compression
settings (gorilla's ``HandshakeTimeout``, ``ReadBufferSize``,
``WriteBufferSize``, ``WriteBufferPool``, ``Subprotocols``,
``EnableCompression``, plus nhooyr's ``CompressionMode`` and
``CompressionThreshold``).  :class:`HandshakeOptions` holds them and checks
every value when it is set, in the constructor or later as an attribute, so
a bad value (``compression_level=42``) raises :class:`ValueError` (or
:class:`TypeError` for a value of the wrong type) where it is written, not at
the first handshake that would use it.  Pure: no I/O.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from . import deflate
from .handshake import valid_token

if TYPE_CHECKING:
    from .conn import BufferPool

__all__ = ["HandshakeOptions"]


def _timeout(name: str, value: Any) -> Optional[float]:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"websocket: {name} must be a number of seconds or None, not {value!r}")
    if math.isnan(value) or value <= 0:
        raise ValueError(f"websocket: {name} must be more than 0 seconds, or None for no limit; got {value!r}")
    return float(value)


def _size(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"websocket: {name} must be an int, not {value!r}")
    if value < 0:
        raise ValueError(f"websocket: {name} must be 0 (the default) or more, not {value}")
    return int(value)


def _optional_size(name: str, value: Any) -> Optional[int]:
    return None if value is None else _size(name, value)


def _subprotocols(name: str, value: Any) -> List[str]:
    if isinstance(value, (str, bytes)):
        raise TypeError(f"websocket: {name} must be a list of strings, not the single string {value!r}")
    protocols = list(value)
    for p in protocols:
        if not isinstance(p, str) or not valid_token(p):
            raise ValueError(f"websocket: {name}: {p!r} is not a valid subprotocol name (an HTTP token)")
    return protocols


def _mode(name: str, value: Any) -> Optional[int]:
    if value is None:
        return None
    deflate.check_mode(value)
    return int(value)


def _level(name: str, value: Any) -> int:
    deflate.check_level(value)
    return int(value)


# Attribute name -> checker(name, value) returning the value to store.
_CHECKS: Dict[str, Callable[[str, Any], Any]] = {
    "handshake_timeout": _timeout,
    "read_buffer_size": _size,
    "write_buffer_size": _size,
    "subprotocols": _subprotocols,
    "enable_compression": lambda name, value: bool(value),
    "compression_mode": _mode,
    "compression_level": _level,
    "compression_threshold": _optional_size,
}


class HandshakeOptions:
    """Validated options shared by Upgrader and Dialer; a base class, not used alone.

    Each option is a plain attribute; assigning one (in ``__init__`` or
    later) runs its check: ``handshake_timeout`` is None or seconds > 0,
    buffer sizes and ``compression_threshold`` are ints >= 0 (the threshold
    may be None), ``subprotocols`` is a list of HTTP tokens,
    ``compression_mode`` one of the ``COMPRESSION_*`` modes or None and
    ``compression_level`` in -2..9.  Raises :class:`TypeError` or
    :class:`ValueError` naming the option.  Setting options is not
    synchronised: configure before sharing the object between threads.
    """

    handshake_timeout: Optional[float]
    read_buffer_size: int
    write_buffer_size: int
    subprotocols: List[str]
    enable_compression: bool
    compression_mode: Optional[int]
    compression_level: int
    compression_threshold: Optional[int]

    write_buffer_pool: Optional["BufferPool"]

    def __init__(
        self,
        handshake_timeout: Optional[float],
        read_buffer_size: int,
        write_buffer_size: int,
        write_buffer_pool: Optional["BufferPool"],
        subprotocols: Sequence[str],
        enable_compression: bool,
        compression_mode: Optional[int],
        compression_level: int,
        compression_threshold: Optional[int],
    ) -> None:
        self.handshake_timeout = handshake_timeout
        self.read_buffer_size = read_buffer_size
        self.write_buffer_size = write_buffer_size
        self.write_buffer_pool = write_buffer_pool
        self.subprotocols = subprotocols  # type: ignore[assignment]  # checked and listed on assignment
        self.enable_compression = enable_compression
        self.compression_mode = compression_mode
        self.compression_level = compression_level
        self.compression_threshold = compression_threshold

    def __setattr__(self, name: str, value: Any) -> None:
        check = _CHECKS.get(name)
        object.__setattr__(self, name, value if check is None else check(name, value))

    def effective_compression_mode(self) -> int:
        """``compression_mode``, or the mode ``enable_compression`` stands for when it is None."""
        if self.compression_mode is not None:
            return self.compression_mode
        if self.enable_compression:
            return deflate.COMPRESSION_NO_CONTEXT_TAKEOVER
        return deflate.COMPRESSION_DISABLED
