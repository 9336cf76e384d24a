"""Every exception gorillaws raises, in one place.

The names mirror gorilla/websocket's errors so ported code reads the same:

=====================  ==============================================
gorilla (Go)           gorillaws (Python)
=====================  ==============================================
``*CloseError``        :class:`CloseError` (``code``, ``text``)
``ErrCloseSent``       :class:`ErrCloseSent`
``ErrReadLimit``       :class:`ErrReadLimit`
``HandshakeError``     :class:`HandshakeError` (server side)
``ErrBadHandshake``    :class:`ErrBadHandshake` (client side)
``os.ErrDeadline...``  :class:`DeadlineExceeded` (a :class:`TimeoutError`)
=====================  ==============================================

All of them derive from :class:`WebSocketError`.  Errors caused by the peer
breaking the protocol are :class:`ProtocolError` and carry the close code that
was (or would be) sent to the peer, which is the one place where exceptions
map to close codes (see :func:`close_code_for`).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

__all__ = [
    "WebSocketError",
    "CloseError",
    "ErrCloseSent",
    "ErrReadLimit",
    "ProtocolError",
    "DeadlineExceeded",
    "HandshakeError",
    "ErrBadHandshake",
    "ProxyError",
    "close_code_for",
    "is_close_error",
    "is_unexpected_close_error",
]


class WebSocketError(Exception):
    """Base class of every error raised by gorillaws."""


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
        from .frames import close_code_name  # local: frames imports us

        s = f"websocket: close {self.code} ({close_code_name(self.code)})"
        return f"{s}: {self.text}" if self.text else s


class ErrCloseSent(WebSocketError):
    """A write was attempted after a close frame was sent (gorilla's ``ErrCloseSent``)."""

    def __init__(self, msg: str = "websocket: close sent") -> None:
        super().__init__(msg)


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
    authentication, as with gorilla.
    """

    def __init__(self, msg: str = "websocket: bad handshake", response: Any = None) -> None:
        status = getattr(response, "status", 0) if response is not None else 0
        super().__init__(msg, status=status, response=response)


def close_code_for(exc: BaseException) -> int:
    """The close code to send to the peer when ``exc`` ends a connection.

    Protocol errors carry their own code (1002, 1007, 1009); anything else is
    an internal error (1011).
    """
    if isinstance(exc, ProtocolError):
        return exc.code
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
