"""Incremental UTF-8 validation for text messages.

A text message may be split across frames at any byte, even inside a
character; :class:`Utf8Validator` keeps the state between pieces and fails on
the first byte that can never be part of valid UTF-8, so a bad message is
refused (close 1007) as soon as the bad byte arrives, not at its end.

Two implementations give the same answers, piece by piece: a byte automaton in
the C speedup :mod:`gorillaws._speedups` (used when it was built and the
environment variable ``GORILLAWS_NO_SPEEDUPS`` is not set), and CPython's
incremental UTF-8 decoder plus one extra check (pure Python).
"""

from __future__ import annotations

import codecs
from typing import Callable, Optional, Union

from .exceptions import ProtocolError
from .mask import speedups

Buffer = Union[bytes, bytearray, memoryview]

__all__ = ["Utf8Validator", "is_valid_utf8", "is_valid_utf8_python", "HAVE_SPEEDUPS"]

_IncrementalDecoder = codecs.getincrementaldecoder("utf-8")

_c = speedups("utf8_validate")
_c_validate: Optional[Callable[[Buffer, int], int]] = _c[0] if _c else None
HAVE_SPEEDUPS = _c_validate is not None

# Automaton states shared by both paths: the C automaton returns 0 between
# characters, 1 once the input is invalid, and other values inside a
# character.  The pure path uses only 0 and 1.
_ACCEPT = 0
_REJECT = 1


def _invalid() -> ProtocolError:
    return ProtocolError("websocket: invalid UTF-8 in text message", 1007)


class Utf8Validator:
    """Validates a stream of UTF-8 bytes piece by piece (one message at a time).

    Call :meth:`feed` with each piece and ``final=True`` with the last one.
    Invalid input raises :class:`ProtocolError` (close code 1007) from the call
    that delivers the first byte that cannot be part of valid UTF-8 (overlong
    forms, UTF-16 surrogates and code points above U+10FFFF included), or from
    the final call when the message ends inside a character.  After an error
    every further :meth:`feed` raises until :meth:`reset`.

    ``speedups`` picks the implementation: None (default) uses the C speedup
    when it is available, True requires it (:class:`RuntimeError` when it is
    not built or disabled), False uses pure Python.  Not thread-safe: one
    validator belongs to one reader.
    """

    __slots__ = ("_state", "_decoder")

    def __init__(self, speedups: Optional[bool] = None) -> None:
        if speedups is None:
            speedups = _c_validate is not None
        elif speedups and _c_validate is None:
            raise RuntimeError("gorillaws._speedups is not available")
        self._state = _ACCEPT
        # The pure path keeps CPython's incremental decoder; None means C.
        self._decoder: Optional[codecs.IncrementalDecoder] = (
            None if speedups else _IncrementalDecoder("strict")
        )

    @property
    def uses_speedups(self) -> bool:
        """Whether this validator runs the C automaton."""
        return self._decoder is None

    def feed(self, data: Buffer, final: bool = False) -> None:
        """Check the next piece; ``final`` marks the end of the message.

        Raises :class:`ProtocolError` with close code 1007 on invalid UTF-8.
        After a successful final piece the validator is ready for the next
        message.
        """
        decoder = self._decoder
        if decoder is None:
            assert _c_validate is not None
            state = _c_validate(data, self._state)
            if state != _ACCEPT and (final or state == _REJECT):
                self._state = _REJECT
                raise _invalid()
            self._state = state
            return
        if self._state == _REJECT:
            raise _invalid()
        try:
            decoder.decode(data, final)
        except UnicodeDecodeError:
            self._state = _REJECT
            raise _invalid() from None
        if final:
            decoder.reset()
            return
        # CPython's decoder accepts ED A0..BF (the start of a UTF-16
        # surrogate) and refuses it only at the third byte; catch it here,
        # at the second byte, as the C automaton does.
        pending = decoder.getstate()[0]
        if len(pending) >= 2 and pending[0] == 0xED and pending[1] >= 0xA0:
            self._state = _REJECT
            raise _invalid()

    def reset(self) -> None:
        """Forget any partial sequence or error (start of a new message)."""
        self._state = _ACCEPT
        if self._decoder is not None:
            self._decoder.reset()


def is_valid_utf8_python(data: Buffer) -> bool:
    """Whether ``data`` is complete, valid UTF-8 (pure Python)."""
    try:
        str(data, "utf-8")
    except UnicodeDecodeError:
        return False
    return True


if _c_validate is not None:
    _c_validate_ = _c_validate

    def is_valid_utf8(data: Buffer) -> bool:
        """Whether ``data`` is complete, valid UTF-8 (C speedup)."""
        return _c_validate_(data, _ACCEPT) == _ACCEPT

else:
    is_valid_utf8 = is_valid_utf8_python
