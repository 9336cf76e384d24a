"""Prepared messages: encode a message once, send it to many connections.

A :class:`PreparedMessage` caches the payload (compressed or not) and, for
servers, the whole frame, per distinct set of connection options
(compression, level, window bits, role), so broadcasting one message to a
thousand connections frames and compresses it once, not a thousand times.
"""

from __future__ import annotations

import threading
from typing import Dict, Tuple, Union

from .frames import BINARY_MESSAGE, RSV1, TEXT_MESSAGE, encode_header

__all__ = ["PreparedMessage"]


class PreparedMessage:
    """A message prepared for :meth:`gorillaws.Conn.write_prepared_message` (gorilla's ``PreparedMessage``).

    ``data`` may be bytes-like or str (UTF-8 encoded).  Raises ValueError for
    a message type other than text or binary.  Thread-safe: one prepared
    message may be sent from many threads at once.
    """

    def __init__(self, message_type: int, data: Union[bytes, bytearray, memoryview, str]) -> None:
        if message_type not in (TEXT_MESSAGE, BINARY_MESSAGE):
            raise ValueError(f"websocket: bad message type {message_type} for a prepared message")
        self.message_type = message_type
        self.data = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        self._lock = threading.Lock()
        self._payloads: Dict[Tuple[int, int], Tuple[int, bytes]] = {}
        self._frames: Dict[Tuple[bool, int, int], bytes] = {}

    def _payload(self, compress: bool, level: int, window_bits: int = 15) -> Tuple[int, bytes]:
        """``(rsv, payload)`` for these options, compressed once and cached."""
        if not compress:
            return 0, self.data
        key = (level, window_bits)
        got = self._payloads.get(key)
        if got is None:
            from .deflate import compress_standalone

            got = (RSV1, compress_standalone(self.data, level, window_bits))
            with self._lock:
                got = self._payloads.setdefault(key, got)
        return got

    def _server_frame(self, compress: bool, level: int, window_bits: int = 15) -> bytes:
        """The whole unmasked (server) frame for these options, cached."""
        key = (compress, level if compress else 0, window_bits if compress else 0)
        frame = self._frames.get(key)
        if frame is None:
            rsv, payload = self._payload(compress, level, window_bits)
            frame = encode_header(self.message_type, len(payload), True, rsv) + payload
            with self._lock:
                frame = self._frames.setdefault(key, frame)
        return frame

    def __repr__(self) -> str:
        return f"<PreparedMessage type={self.message_type} len={len(self.data)}>"
