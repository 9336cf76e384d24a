"""Opening the client's socket: TCP connect, TLS, cancellation, and errors that say why.

The I/O under :class:`gorillaws.client.Dialer` and the proxy tunnels
(:mod:`gorillaws.proxy`), in the spirit of Go's ``net.Dialer``:

* :func:`dial_tcp` resolves and connects, bounded by a deadline and
  abortable through a ``cancel`` event (Go's ``DialContext``).  Failures are
  :class:`DialError` naming the address, as Go's ``net.OpError`` does:
  ``dial tcp 127.0.0.1:9: connection refused``.
* :func:`tls_handshake` runs the client TLS handshake the same way and turns
  OpenSSL's failures into sentences: a certificate that does not verify, or
  a server that does not speak TLS ("did you mean ws://?").
* :func:`head_reader` gives :func:`gorillaws.transport.read_http_head` a
  receive function that honours the deadline and the cancel event.

Deadlines are absolute :func:`time.monotonic` times (None: none); all waits
go through :mod:`gorillaws.deadline`.  A ``cancel`` event is checked at least
every :data:`CANCEL_POLL` seconds while waiting.  Name resolution
(``getaddrinfo``) cannot be interrupted, so with a deadline or a cancel event
it runs in a helper thread that the dial stops waiting for (the thread ends
when the resolver answers).
"""

from __future__ import annotations

import errno
import os
import select
import socket
import ssl
import threading
import time
from typing import Any, Callable, Dict, List, NoReturn, Optional, Tuple, Type

from .deadline import expired, poll_ms, remaining
from .exceptions import DeadlineExceeded, WebSocketError
from .transport import SocketIO

__all__ = [
    "CANCEL_POLL",
    "abort_on_cancel",
    "DialCancelled",
    "DialError",
    "NetDialContext",
    "check_cancel",
    "dial_tcp",
    "dial_error",
    "connect_tcp",
    "fail_closed",
    "head_reader",
    "join_host_port",
    "split_host_port",
    "tls_handshake",
]

#: ``net_dial_context(network, addr, deadline, cancel) -> socket`` (Go's
#: ``NetDialContext``): ``deadline`` is a :func:`time.monotonic` time or
#: None, ``cancel`` a :class:`threading.Event` or None.
NetDialContext = Callable[[str, str, Optional[float], Optional[threading.Event]], socket.socket]

#: Longest wait (seconds) between two looks at a ``cancel`` event.
CANCEL_POLL = 0.05


class DialCancelled(WebSocketError, ConnectionAbortedError):
    """The dial was cancelled through its ``cancel`` event (Go's ``context.Canceled``).

    Also a :class:`ConnectionAbortedError` (an :class:`OSError`).
    """


class DialError(WebSocketError, OSError):
    """A connection could not be made; ``str()`` names what and where (Go's ``net.OpError``).

    A :class:`WebSocketError`, so one ``except gorillaws.WebSocketError``
    covers dialing too.  Raised as a subclass that also derives from the original error's class
    (``ConnectionRefusedError``, ``socket.gaierror``, ...), so existing
    ``except`` clauses keep working; ``errno`` and ``strerror`` are the
    original's, which is ``__cause__``.
    """

    def __init__(self, message: str, err: OSError) -> None:
        super().__init__(err.errno, err.strerror)
        self.message = message

    def __str__(self) -> str:
        return self.message


_ERROR_TYPES: Dict[Type[OSError], Type[DialError]] = {}


def dial_error(err: OSError, what: str, hint: str = "") -> DialError:
    """``err`` as a :class:`DialError` whose message is ``"<what>: <reason>"`` (then ``hint``).

    ``what`` says what was attempted, e.g. ``"dial tcp 127.0.0.1:9"``;
    ``hint``, when given, is appended in parentheses.
    """
    cls = type(err)
    sub: Optional[Type[DialError]]
    if isinstance(err, DialError):  # wrapping again (a proxy's dial): keep the class
        sub, reason = type(err), err.message
    else:
        sub = _ERROR_TYPES.get(cls)
        if sub is None:
            sub = DialError if cls is OSError else type(cls.__name__, (DialError, cls), {"__module__": __name__})
            _ERROR_TYPES[cls] = sub
        reason = err.strerror or str(err) or cls.__name__
        if reason[:1].isupper() and reason[1:2].islower():
            reason = reason[0].lower() + reason[1:]  # Go's lower-case style
    out = sub(f"{what}: {reason}" + (f" ({hint})" if hint else ""), err)
    out.__cause__ = err
    return out


def fail_closed(sock: socket.socket, exc: BaseException, timeout_message: str) -> NoReturn:
    """Close ``sock`` and raise ``exc``; a ``socket.timeout`` becomes :class:`DeadlineExceeded`.

    For ``except BaseException as exc:`` around the I/O of a socket nobody
    else owns yet.  The DeadlineExceeded gets ``timeout_message``; one that
    already is a DeadlineExceeded keeps its own.
    """
    sock.close()
    if isinstance(exc, socket.timeout) and not isinstance(exc, DeadlineExceeded):
        raise DeadlineExceeded(timeout_message) from exc
    raise exc


class abort_on_cancel:
    """``with abort_on_cancel(sock, cancel):`` shuts ``sock`` down if ``cancel`` is set meanwhile.

    For blocking code that cannot look at the event itself (PySocks): a
    watcher thread waits on ``cancel`` for the duration of the block and
    shuts the socket down, which makes the blocked call fail; the caller
    then checks the event (:func:`check_cancel`).  Does nothing when
    ``cancel`` is None.
    """

    __slots__ = ("sock", "cancel", "done", "watcher")

    def __init__(self, sock: socket.socket, cancel: Optional[threading.Event]) -> None:
        self.sock = sock
        self.cancel = cancel
        self.done = threading.Event()
        self.watcher: Optional[threading.Thread] = None

    def _watch(self) -> None:
        assert self.cancel is not None
        while not self.done.is_set():
            if self.cancel.wait(CANCEL_POLL) and not self.done.is_set():
                try:
                    self.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return

    def __enter__(self) -> None:
        if self.cancel is not None:
            self.watcher = threading.Thread(target=self._watch, name="gorillaws-dial-cancel", daemon=True)
            self.watcher.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.watcher is not None:
            self.watcher.join()


def check_cancel(cancel: Optional[threading.Event], what: str) -> None:
    """Raise :class:`DialCancelled` if ``cancel`` is set."""
    if cancel is not None and cancel.is_set():
        raise DialCancelled(f"websocket: dial cancelled while {what}")


def _wait(fd: int, events: int, deadline: Optional[float], cancel: Optional[threading.Event], what: str) -> None:
    """Wait for ``events`` on ``fd``; raises DeadlineExceeded or DialCancelled."""
    p = select.poll()
    p.register(fd, events)
    while True:
        check_cancel(cancel, what)
        ms = poll_ms(deadline)
        if ms == 0:
            raise DeadlineExceeded(f"websocket: handshake timeout {what}")
        if cancel is not None:
            step = int(CANCEL_POLL * 1000)
            ms = step if ms is None else min(ms, step)
        if p.poll(ms):
            return


def split_host_port(addr: str) -> Tuple[str, int]:
    """``"host:port"`` (``"[v6]:port"``) to (host, port); raises ValueError."""
    host, sep, port = addr.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"websocket: address {addr!r} is not host:port")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, int(port)


def join_host_port(host: str, port: int) -> str:
    """``"host:port"``, with IPv6 literals in brackets (Go's ``net.JoinHostPort``)."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def _ip_family(host: str) -> Optional[int]:
    """AF_INET or AF_INET6 when ``host`` is an IP address literal, else None."""
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            socket.inet_pton(family, host)
        except (OSError, ValueError):
            continue
        return family
    return None


def dial_tcp(
    addr: str, deadline: Optional[float] = None, cancel: Optional[threading.Event] = None
) -> socket.socket:
    """Connect to ``addr`` (``"host:port"``), trying each resolved address in turn.

    Returns a connected, blocking socket.  Raises :class:`DialError` (for
    example a ``ConnectionRefusedError`` whose ``str()`` is ``dial tcp
    127.0.0.1:9: connection refused``), :class:`DeadlineExceeded` when
    ``deadline`` passes and :class:`DialCancelled` when ``cancel`` is set.
    Thread-safe.
    """
    host, port = split_host_port(addr)
    sock = connect_tcp(host, port, deadline, cancel)
    sock.settimeout(None)
    return sock


def connect_tcp(
    host: str, port: int, deadline: Optional[float], cancel: Optional[threading.Event]
) -> socket.socket:
    """:func:`dial_tcp` for a host and port already apart; the socket may still have a timeout.

    The Dialer's own path: it hands the socket to a :class:`SocketIO` at
    once, which clears the timeout (one system call fewer per dial).  Same
    errors as :func:`dial_tcp`.  Thread-safe.
    """
    if cancel is not None:
        check_cancel(cancel, f"connecting to {join_host_port(host, port)}")
    family = _ip_family(host)
    if family is not None:  # an IP literal: no resolver round trip
        infos = [(family, socket.SOCK_STREAM, 0, "", (host, port))]
    else:
        try:
            infos = _resolve(host, port, deadline, cancel)
        except socket.gaierror as exc:
            raise dial_error(exc, f"dial tcp {join_host_port(host, port)}: lookup {host}") from None
    last: Optional[OSError] = None
    for fam, kind, proto, _, sockaddr in infos:
        sock = socket.socket(fam, kind, proto)
        try:
            _connect(sock, sockaddr, deadline, cancel, host, port)
            return sock
        except OSError as exc:
            sock.close()
            if isinstance(exc, (DeadlineExceeded, DialCancelled)):
                raise
            last = exc
        except BaseException:
            sock.close()
            raise
    assert last is not None
    raise dial_error(last, f"dial tcp {join_host_port(host, port)}") from None


def _resolve(host: str, port: int, deadline: Optional[float], cancel: Optional[threading.Event]) -> List[Any]:
    """``getaddrinfo`` for a stream socket, bounded by ``deadline`` and ``cancel``."""
    if deadline is None and cancel is None:
        return socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)
    result: List[Any] = []
    done = threading.Event()

    def lookup() -> None:
        try:
            result.append(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
        except BaseException as exc:  # handed to the dialing thread
            result.append(exc)
        done.set()

    threading.Thread(target=lookup, name="gorillaws-resolve", daemon=True).start()
    while not done.wait(CANCEL_POLL if cancel is not None else remaining(deadline)):
        check_cancel(cancel, f"looking up {host}")
        if expired(deadline):
            raise DeadlineExceeded(f"websocket: handshake timeout looking up {host}")
    if isinstance(result[0], BaseException):
        raise result[0]
    return list(result[0])


def _connect(
    sock: socket.socket, sockaddr: Any, deadline: Optional[float], cancel: Optional[threading.Event], host: str, port: int
) -> None:
    """Connect ``sock`` (to ``host``:``port``, for messages); left blocking, with a timeout if there is a deadline."""
    if cancel is None:
        # The common case, in the fewest system calls: a connect with a
        # timeout (left set: the caller clears it).
        if deadline is not None:
            left = remaining(deadline)
            if not left:
                raise DeadlineExceeded(f"websocket: handshake timeout connecting to {join_host_port(host, port)}")
            sock.settimeout(left)
        elif socket.getdefaulttimeout() is not None:
            sock.settimeout(None)  # socket.setdefaulttimeout() is no handshake deadline
        try:
            sock.connect(sockaddr)
        except socket.timeout:
            raise DeadlineExceeded(f"websocket: handshake timeout connecting to {join_host_port(host, port)}") from None
        return
    what = f"connecting to {join_host_port(host, port)}"
    sock.setblocking(False)
    err = sock.connect_ex(sockaddr)
    if err not in (0, *_IN_PROGRESS):
        raise OSError(err, os.strerror(err))
    if err:
        _wait(sock.fileno(), select.POLLOUT, deadline, cancel, what)
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if err:
            raise OSError(err, os.strerror(err))
    sock.setblocking(True)


# connect_ex results meaning "under way" on a non-blocking socket.
_IN_PROGRESS = (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY)


def tls_handshake(
    sock: socket.socket,
    ctx: ssl.SSLContext,
    server_hostname: str,
    deadline: Optional[float],
    cancel: Optional[threading.Event],
    where: str,
) -> ssl.SSLSocket:
    """Wrap ``sock`` in client TLS and complete the handshake; closes it on failure.

    ``server_hostname`` is sent as SNI and verified; ``where`` (a URL) names
    the peer in error messages.  Raises :class:`ssl.SSLCertVerificationError`
    whose ``str()`` is a sentence naming ``where`` and OpenSSL's reason,
    :class:`ssl.SSLError` with a hint when the peer does not speak TLS,
    :class:`DeadlineExceeded` and :class:`DialCancelled`.  The returned
    socket is non-blocking (a :class:`SocketIO` expects that).
    """
    tls = ctx.wrap_socket(sock, server_hostname=server_hostname, do_handshake_on_connect=False)
    try:
        tls.setblocking(False)
        while True:
            try:
                tls.do_handshake()
                return tls
            except ssl.SSLWantReadError:
                _wait(tls.fileno(), select.POLLIN, deadline, cancel, f"during the TLS handshake with {where}")
            except ssl.SSLWantWriteError:
                _wait(tls.fileno(), select.POLLOUT, deadline, cancel, f"during the TLS handshake with {where}")
    except ssl.SSLCertVerificationError as exc:
        tls.close()
        raise _cert_error(exc, where) from exc
    except ssl.SSLError as exc:
        tls.close()
        if exc.reason in _NOT_TLS_REASONS:
            raise ssl.SSLError(
                exc.errno,
                f"websocket: TLS handshake with {where} failed: the server does not speak TLS "
                f"({exc.reason}); did you mean ws://?"
            ) from exc
        if isinstance(exc, ssl.SSLEOFError):
            raise dial_error(exc, f"websocket: TLS handshake with {where}", _HANG_UP_HINT) from None
        raise
    except ConnectionResetError as exc:
        tls.close()
        raise dial_error(exc, f"websocket: TLS handshake with {where}", _HANG_UP_HINT) from None
    except BaseException:
        tls.close()
        raise


# A plain server that drops a ClientHello it cannot read resets or closes.
_HANG_UP_HINT = "if the server does not speak TLS, did you mean ws://?"

# OpenSSL's reasons when the first bytes back are not a TLS record (typically
# an HTTP error page from a plain server).
_NOT_TLS_REASONS = ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "PACKET_LENGTH_TOO_LONG", "RECORD_LAYER_FAILURE")


def _cert_error(exc: ssl.SSLCertVerificationError, where: str) -> ssl.SSLCertVerificationError:
    """The same error with a message that is one sentence, keeping OpenSSL's details."""
    why = exc.verify_message or exc.reason or "unknown reason"
    # (errno, strerror): with a single argument, str() of an SSLError is the args tuple.
    err = ssl.SSLCertVerificationError(exc.errno, f"websocket: TLS certificate verification failed for {where}: {why}")
    err.verify_code = exc.verify_code
    err.verify_message = exc.verify_message
    err.reason = exc.reason
    err.library = exc.library
    return err


def head_reader(
    io: SocketIO, deadline: Optional[float], cancel: Optional[threading.Event]
) -> Callable[[memoryview], int]:
    """A ``recv(view)`` for :func:`gorillaws.transport.read_http_head` bounded by both.

    Raises ``socket.timeout`` at ``deadline`` and :class:`DialCancelled`
    when ``cancel`` is set (looked at every :data:`CANCEL_POLL` seconds).
    """
    if cancel is None:
        return lambda view: io.recv_reply_into(view, deadline)

    def recv(view: memoryview) -> int:
        while True:
            check_cancel(cancel, "waiting for the handshake response")
            step = time.monotonic() + CANCEL_POLL
            try:
                return io.recv_into(view, step if deadline is None or step < deadline else deadline)
            except socket.timeout:
                if expired(deadline):
                    raise

    return recv

