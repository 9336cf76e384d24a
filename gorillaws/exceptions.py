"""Every exception gorillaws raises, in one place.

The names mirror gorilla/websocket's errors so ported code reads the same:

=====================  ==============================================
gorilla (Go)           gorillaws (Python)
=====================  ==============================================
``*CloseError``        :class:`CloseError` (``code``, ``text``)
``net.Error``, EOF     :class:`ConnectionClosedError` (a ``CloseError``
                       with code 1006, also a :class:`ConnectionError`)
``ErrCloseSent``       :class:`ErrCloseSent`
``ErrReadLimit``       :class:`ErrReadLimit`
``HandshakeError``     :class:`HandshakeError` (server side)
``ErrBadHandshake``    :class:`ErrBadHandshake` (client side)
``os.ErrDeadline...``  :class:`DeadlineExceeded` (a :class:`TimeoutError`)
=====================  ==============================================

All of them derive from :class:`WebSocketError`: after the handshake, every
failure a :class:`gorillaws.Conn` method raises is one of them (a socket
error arrives as :class:`ConnectionClosedError` with the ``OSError`` as its
``__cause__``), so ``except gorillaws.WebSocketError`` is enough in a pump
thread.  Misuse (a bad argument) still raises ``TypeError``/``ValueError``.
``fatal`` on every one says whether that direction of the connection is
unusable afterwards.  Errors caused by the peer breaking the protocol are
:class:`ProtocolError` and carry the close code sent to the peer;
:func:`close_code_for` is the one place where exceptions map to close codes.
``docs/errors.md`` has the whole table.

This module imports nothing from the rest of the package (the close code
names live here, and :mod:`gorillaws.frames` imports them), so there is no
import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional

if TYPE_CHECKING:  # pragma: no cover
    # For type checkers only: nothing is imported at run time, so the rule
    # above (no import of the package, no cycle) holds.
    from gorillaws.http11 import Response

__all__ = [
    "WebSocketError",
    "CloseError",
    "ConnectionClosedError",
    "ErrCloseSent",
    "ErrReadLimit",
    "ProtocolError",
    "DeadlineExceeded",
    "HandshakeError",
    "ErrBadHandshake",
    "ProxyError",
    "close_code_for",
    "close_code_name",
    "is_close_error",
    "is_unexpected_close_error",
]


_CLOSE_CODE_NAMES = {
    1000: "normal closure",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status received",
    1006: "abnormal closure",
    1007: "invalid frame payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension",
    1011: "internal server error",
    1012: "service restart",
    1013: "try again later",
    1014: "bad gateway",
    1015: "TLS handshake",
}


def close_code_name(code: int) -> str:
    """A human-readable name for a close code ("normal closure", "private", ...)."""
    name = _CLOSE_CODE_NAMES.get(code)
    if name:
        return name
    if 3000 <= code < 4000:
        return "registered"
    if 4000 <= code < 5000:
        return "private"
    return "unknown"


class WebSocketError(Exception):
    """Base class of every error raised by gorillaws.

    ``fatal`` is True when the direction (reading or writing) that raised it
    is unusable afterwards: every later call in that direction raises again.
    Only a :class:`DeadlineExceeded` can be non-fatal.
    """

    fatal: bool = True


class CloseError(WebSocketError):
    """The connection is closed: the peer sent a close frame, or it went away.

    ``code`` is the close code the peer sent (``CLOSE_NO_STATUS_RECEIVED``,
    1005, when its close frame had no payload), or ``CLOSE_ABNORMAL_CLOSURE``
    (1006) when the connection ended without a close frame.  ``text`` is the
    reason the peer gave.  Mirrors gorilla's ``*CloseError``.
    """

    def __init__(self, code: int, text: str = "") -> None:
        super().__init__(code, text)
        self.code = code
        self.text = text

    def __str__(self) -> str:
        # Worded exactly as gorilla's CloseError.Error(), so code that
        # matches log lines ports unchanged.
        word = _GORILLA_CLOSE_WORDS.get(self.code)
        s = f"websocket: close {self.code} ({word})" if word else f"websocket: close {self.code}"
        return f"{s}: {self.text}" if self.text else s


# The codes gorilla's CloseError.Error() names, in its words; other codes
# (1012-1014, application codes) are printed as the bare number, as there.
_GORILLA_CLOSE_WORDS = {
    1000: "normal",
    1001: "going away",
    1002: "protocol error",
    1003: "unsupported data",
    1005: "no status",
    1006: "abnormal closure",
    1007: "invalid payload data",
    1008: "policy violation",
    1009: "message too big",
    1010: "mandatory extension missing",
    1011: "internal server error",
    1015: "TLS handshake error",
}


class ConnectionClosedError(CloseError, ConnectionError):
    """The connection ended without a close handshake (code 1006, abnormal closure).

    Raised by reads and writes after the handshake when the socket fails:
    the peer reset the connection or went away (EOF, broken pipe), TLS
    failed, the socket was closed under the call (:meth:`gorillaws.Conn.close_now`
    from another thread), or an exception (``KeyboardInterrupt``,
    ``MemoryError``, ...) cut a write off mid-frame so the stream cannot be
    continued.  The original exception is the ``__cause__``.  A
    :class:`CloseError` (``code`` 1006, ``text`` says why) and, so that
    ``except OSError`` keeps working, a :class:`ConnectionError` (``errno``
    is the original's, or None).  Always fatal for its direction.
    """

    def __init__(self, text: str, errno: Optional[int] = None) -> None:
        super().__init__(1006, text)
        self.errno = errno
        self.strerror = text


class ErrCloseSent(WebSocketError):
    """A write was attempted after a close frame was sent (gorilla's ``ErrCloseSent``).

    When the close frame was our answer to the peer's, ``code`` and ``text``
    are what the peer's close frame said and the message says so (the
    application never sent a close itself); otherwise they are None.
    """

    def __init__(self, msg: str = "websocket: close sent", code: Optional[int] = None, text: Optional[str] = None) -> None:
        if code is not None:
            said = f"{code} ({close_code_name(code)})" + (f": {text}" if text else "")
            msg = f"{msg}: the peer closed the connection ({said}) and the close was answered"
        super().__init__(msg)
        self.code = code
        self.text = text


class ProtocolError(WebSocketError):
    """The peer broke RFC 6455 / RFC 7692.

    ``code`` is the close code sent to the peer: 1002 (protocol error), 1007
    (invalid payload data, e.g. bad UTF-8), 1009 (message too big).
    """

    def __init__(self, msg: str, code: int = 1002) -> None:
        super().__init__(msg)
        self.code = code


class ErrReadLimit(ProtocolError):
    """A message was larger than the read limit; close 1009 was sent (gorilla's ``ErrReadLimit``)."""

    def __init__(self, msg: str = "websocket: read limit exceeded") -> None:
        super().__init__(msg, 1009)


class DeadlineExceeded(WebSocketError, TimeoutError):
    """A read or write deadline passed (also a builtin :class:`TimeoutError`).

    ``fatal`` says whether the connection is still usable in that direction:
    a read deadline that passes before any byte of the next frame arrived is
    not fatal; one that passes mid-frame, and any write deadline, are.
    """

    def __init__(self, msg: str = "websocket: i/o deadline reached", fatal: bool = True) -> None:
        super().__init__(msg)
        self.fatal = fatal


class ProxyError(WebSocketError, ConnectionError):
    """Reaching the target through a proxy failed.

    ``status`` is the HTTP status a CONNECT proxy answered (407 when it wants
    credentials, 403 when it refuses the port, ...) or ``None`` when the
    failure was not an HTTP answer (a SOCKS error, a malformed reply, the
    proxy closing the connection).  ``headers`` holds the proxy's response
    headers (a :class:`gorillaws.http11.Headers`) when there was one.
    Also a :class:`ConnectionError`.
    """

    def __init__(self, msg: str, status: Optional[int] = None, headers: object = None) -> None:
        super().__init__(msg)
        self.status = status
        self.headers = headers


class HandshakeError(WebSocketError):
    """The opening handshake failed.

    On the server, ``status`` is the HTTP status that was answered (400, 403,
    405, 426, ...).  On the client, ``response`` (see :class:`ErrBadHandshake`)
    holds what the server answered.
    """

    def __init__(
        self,
        msg: str,
        status: int = 400,
        headers: Optional[Mapping[str, str]] = None,
        response: Any = None,
    ) -> None:
        super().__init__(msg)
        self.status = status
        self.headers = dict(headers or {})
        self.response = response


class ErrBadHandshake(HandshakeError):
    """The server's handshake response was not a valid upgrade (gorilla's ``ErrBadHandshake``).

    ``response`` carries the server's response (``.status``, ``.headers`` and
    up to 1024 bytes of ``.body``) so callers can follow redirects or handle
    authentication, as with gorilla; None when no response head was read.
    """

    response: Optional[Response]

    def __init__(self, msg: str = "websocket: bad handshake", response: Optional[Response] = None) -> None:
        status = getattr(response, "status", 0) if response is not None else 0
        super().__init__(msg, status=status, response=response)


def close_code_for(exc: BaseException) -> Optional[int]:
    """The close code to send to the peer when ``exc`` ends a connection, or None.

    The one place where exceptions map to close codes; :class:`gorillaws.Conn`
    uses it when it fails a connection and when ``with conn:`` exits on an
    exception.  Protocol errors carry their own code (1002, 1003, 1007, 1008,
    1009); a :class:`CloseError` (the peer closed, or the connection is gone)
    needs no close frame of ours beyond the handshake's answer: None; any
    other exception is an internal error (1011).
    """
    if isinstance(exc, ProtocolError):
        return exc.code
    if isinstance(exc, CloseError):
        return None
    return 1011


def is_close_error(err: Optional[BaseException], *codes: int) -> bool:
    """Whether ``err`` is a :class:`CloseError` with one of ``codes`` (gorilla's ``IsCloseError``)."""
    return isinstance(err, CloseError) and err.code in codes


def is_unexpected_close_error(err: Optional[BaseException], *expected_codes: int) -> bool:
    """Whether ``err`` is a :class:`CloseError` whose code is *not* in ``expected_codes``.

    gorilla's ``IsUnexpectedCloseError``: the usual reader loop logs only
    closes it did not expect.
    """
    return isinstance(err, CloseError) and err.code not in expected_codes
