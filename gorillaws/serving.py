"""A ready WebSocket server: :class:`Server` and :func:`serve`, safe by default.

The zero-dependency way to run a WebSocket service::

    def echo(conn):
        while True:
            mt, data = conn.read_message()   # CloseError ends the loop: normal
            conn.write_message(mt, data)

    gorillaws.serve(echo, "127.0.0.1", 8080)  # Ctrl-C / SIGTERM: graceful

How it is built, and what each choice protects against:

* One thread accepts (a ``poll`` on the listening socket and a wake-up
  pipe); every accepted socket gets its own thread, with a small stack,
  which does the TLS handshake (when ``ssl_context`` is given), reads the
  HTTP request and answers it (:meth:`Upgrader.upgrade` on the raw socket),
  then runs ``handler(conn)``.  Nothing a client does can stall the
  accepting thread or another client.
* The TLS handshake and the HTTP request head must both complete within
  ``handshake_timeout`` seconds (default 10): a client that connects and
  stays silent, or sends its request one byte a minute (slowloris), is cut
  off then, and its thread and descriptor are released.
* The listen backlog is large (1024), so a burst of connects queues in the
  kernel instead of being refused or retried for seconds.
* ``max_connections`` caps the connections held at once (handshaking or
  open); beyond it, new clients get ``503`` and are closed at once.  The
  default cap is derived from the open-files limit, so the process never
  runs out of descriptors.  If it does anyway (descriptors used elsewhere),
  ``accept`` failing with EMFILE/ENFILE is logged once and retried after a
  back-off, never in a busy loop.
* A request that is not a WebSocket upgrade (a browser opening the URL)
  gets ``426 Upgrade Required`` with a short text, or whatever the optional
  ``http_handler`` answers (an HTML page, a health check).
* :meth:`Server.shutdown` stops accepting, sends every open connection a
  close frame (1001 "going away" by default), waits for the close
  handshakes up to ``timeout`` seconds, then drops the rest.
  :meth:`Server.serve_forever` does that on Ctrl-C, and on SIGTERM once
  :meth:`Server.install_signal_handlers` was called (:func:`serve` does).

Logging goes to the ``gorillaws.serving`` logger: an exception escaping a
handler (ERROR, with traceback), a refused origin (WARNING, with the origin
and the option that allows it), descriptor exhaustion (WARNING, once per
episode); handshake failures and slow clients at DEBUG.
"""

from __future__ import annotations

import copy
import errno
import inspect
import logging
import os
import queue
import select
import signal
import socket
import ssl
import threading
import time
from types import TracebackType
from typing import (
    Any,
    Callable,
    Dict,
    Iterable,
    Mapping,
    Optional,
    Sequence,
    Set,
    Tuple,
    Type,
    Union,
)

from .conn import Conn
from .exceptions import CloseError, HandshakeError, WebSocketError, close_code_for
from .frames import CLOSE_GOING_AWAY, CLOSE_INTERNAL_SERVER_ERR, CLOSE_MESSAGE, format_close_message
from .http11 import Headers, Response, serialize_response
from .server import DEFAULT_HANDSHAKE_TIMEOUT, UpgradeRequest, Upgrader, is_websocket_upgrade, upgrade_accepted

__all__ = [
    "DEFAULT_THREAD_STACK_SIZE",
    "ConnectionSet",
    "HTTPAnswer",
    "Server",
    "default_max_connections",
    "live_connections",
    "raise_open_files_limit",
    "run_handler",
    "serve",
]

log = logging.getLogger("gorillaws.serving")

#: Stack size of each connection's thread.  Python frames live on the heap;
#: the C stack only holds the interpreter's own nesting, so 256 KiB leaves
#: room for deep handlers while 10,000 threads reserve 2.5 GB of address
#: space instead of 80 GB (the usual 8 MiB default).
DEFAULT_THREAD_STACK_SIZE = 256 * 1024

#: What an ``http_handler`` returns: ``(status, headers, body)``.  ``headers``
#: is a mapping or a list of pairs; ``body`` is bytes or str (str is sent as
#: UTF-8).  None lets the server give its default answer (426).
HTTPAnswer = Tuple[int, Union[Mapping[str, str], Iterable[Tuple[str, str]], None], Union[bytes, str]]
HTTPHandler = Callable[[UpgradeRequest], Optional[HTTPAnswer]]

_NOT_WEBSOCKET_BODY = b"426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client.\n"
_BUSY_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"
    b"Content-Length: 35\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
    b"503 Service Unavailable: too busy.\n"
)
# accept() errors that mean "out of resources": retrying at once would spin.
EXHAUSTED_ERRNOS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
# accept() errors about one client that went away before we accepted it.
_TRANSIENT = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM, errno.EINTR, errno.EAGAIN}
#: Seconds the accept loop waits after accept() found no free descriptor.
ACCEPT_BACKOFF = 0.1
#: Finished connection threads kept waiting for the next connection (see Server's
#: ``spare_threads``), and how long each waits before it ends.
DEFAULT_SPARE_THREADS = 16
SPARE_THREAD_WAIT = 10.0
_CLOSE_FRAME_WAIT = 0.5  # longest wait to send one close frame during shutdown
_stack_lock = threading.Lock()


def raise_open_files_limit() -> int:
    """Raise this process's soft open-files limit (RLIMIT_NOFILE) to the hard limit.

    Returns the soft limit in force afterwards (unchanged when it cannot be
    raised, or on platforms without ``resource``).  Each connection holds one
    descriptor; the usual soft limit of 1024 caps a server near 1,000 clients.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return 0
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return int(soft)


def default_max_connections() -> Optional[int]:
    """A connection cap that leaves descriptors for everything else the process opens.

    The soft open-files limit minus a reserve (10%, at least 32); None when
    unlimited or unknown.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    return max(1, soft - max(32, soft // 10))


def log_exhausted(err: OSError) -> None:
    """Log (once per episode, the caller keeps track) that accept() ran out of descriptors."""
    log.warning(
        "accept: %s; pausing accepts for %.1f s at a time (raise the open-files limit, "
        "or lower max_connections)",
        os.strerror(err.errno or 0),
        ACCEPT_BACKOFF,
    )


def refuse_busy(sock: socket.socket) -> None:
    """Answer 503 on a just-accepted socket without blocking, and close it.

    For the accepting thread, which must never wait on one client.  What the
    client already sent is read first, so that closing sends FIN rather than
    a reset that could destroy the 503 before the client reads it.
    """
    try:
        sock.setblocking(False)
        try:
            sock.recv(65536)
        except OSError:
            pass
        sock.send(_BUSY_RESPONSE)
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    finally:
        sock.close()


def run_handler(
    conn: Conn,
    call: Callable[[], Any],
    logger: logging.Logger,
    what: str,
    subject: Any = "",
    stopping: Callable[[], bool] = lambda: False,
) -> None:
    """Run ``call()`` (an application's code for ``conn``), then close ``conn``.

    Returns normally in every case.  The connection is closed with 1000
    after a return; after an application error (any exception but the two
    kinds below), with 1011, and the error is logged at ERROR with its
    traceback as ``"<what> <subject> raised"`` (two parts, so that no string
    is built per connection unless something is logged).  Not application
    errors:

    * :class:`~gorillaws.CloseError`: the peer closed; DEBUG;
    * other WebSocket and socket errors (a protocol error or oversized
      message from the peer, a reset, a deadline that passed): one INFO
      line, no traceback, closed with the code the error carries
      (:func:`~gorillaws.exceptions.close_code_for`: 1002, 1009, ...); DEBUG
      only once the connection was closed or ``stopping()`` is true (a
      shutdown closed it under the handler's feet).
    """
    code, reason = 1000, ""
    try:
        call()
    except CloseError as e:
        logger.debug("%s %s: the peer closed: %s", what, subject, e)
    except (WebSocketError, OSError) as e:
        if conn.closed or stopping():
            logger.debug("%s %s: ended by shutdown: %s", what, subject, e)
        else:
            logger.info("%s %s: connection failed: %s", what, subject, e)
            code, reason = close_code_for(e) or CLOSE_INTERNAL_SERVER_ERR, ""
    except Exception:
        logger.exception("%s %s raised", what, subject)
        code, reason = CLOSE_INTERNAL_SERVER_ERR, "internal error"
    try:
        conn.close(code, reason)
    except (WebSocketError, OSError):
        conn.close_now()


def send_close_frames(conns: Iterable[Conn], code: int, reason: str, deadline: float) -> None:
    """Send each connection a close frame, giving none more than 0.5 s (nor past ``deadline``).

    A connection whose peer reads nothing (its send buffer full, or another
    thread stuck writing) must not use up the time of all the others.
    """
    payload = format_close_message(code, reason)
    for conn in conns:
        try:
            conn.write_control(CLOSE_MESSAGE, payload, min(deadline, time.monotonic() + _CLOSE_FRAME_WAIT))
        except (WebSocketError, OSError):
            pass


class ConnectionSet:
    """Open connections to close together when the process stops (thread-safe).

    For hosts that are not :class:`Server` (WSGI servers): the code that
    runs a connection passes it to :meth:`add`, and to :meth:`discard` when done;
    a shutdown hook calls :meth:`close_all`.  :class:`gorillaws.flask.Sock`
    and :mod:`gorillaws.gunicorn` share :data:`live_connections`.
    """

    def __init__(self) -> None:
        self._conns: Set[Conn] = set()
        self._cond = threading.Condition()
        self.closing = False

    def add(self, conn: Conn) -> None:
        """Track ``conn``; if :meth:`close_all` already ran, close it with 1001 at once."""
        with self._cond:
            self._conns.add(conn)
            closing = self.closing
        if closing:
            send_close_frames([conn], CLOSE_GOING_AWAY, "going away", time.monotonic() + _CLOSE_FRAME_WAIT)

    def discard(self, conn: Conn) -> None:
        """Stop tracking ``conn`` (its handler is done)."""
        with self._cond:
            self._conns.discard(conn)
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._conns)

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "going away", timeout: float = 5.0) -> int:
        """Send every connection a close frame, wait up to ``timeout`` s for them to end, drop the rest.

        "End" means :meth:`discard` was called (the handler returned, as a
        handler reading the connection does when the client answers the
        close).  Returns how many connections were dropped without a
        finished close handshake.  Connections added later get 1001 at once.
        """
        end = time.monotonic() + timeout
        with self._cond:
            self.closing = True
            conns = list(self._conns)
        send_close_frames(conns, code, reason, end)
        with self._cond:
            while self._conns and time.monotonic() < end:
                self._cond.wait(max(0.0, end - time.monotonic()))
            left = list(self._conns)
        for conn in left:
            conn.close_now()
        return len(left)


#: The process-wide set used by :mod:`gorillaws.flask` and :mod:`gorillaws.gunicorn`.
live_connections = ConnectionSet()


def _takes_request(handler: Callable[..., Any]) -> bool:
    """Whether ``handler`` accepts a second positional argument (the request)."""
    try:
        params = list(inspect.signature(handler).parameters.values())
    except (TypeError, ValueError):
        return False
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 2 or any(p.kind == p.VAR_POSITIONAL for p in params)


def _send_answer(sock: socket.socket, status: int, headers: Headers, body: bytes, head_only: bool) -> None:
    """Write one complete HTTP response on a raw socket (the caller closes it)."""
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    data = serialize_response(Response(status, headers=headers, body=b"" if head_only else body))
    try:
        sock.settimeout(5.0)
        sock.sendall(data)
    except OSError:
        pass


class Server:
    """A WebSocket server on its own listening socket; one thread per connection.

    :param handler: ``handler(conn)``, or ``handler(conn, request)`` when it
        takes two positional arguments (``request`` is the
        :class:`~gorillaws.server.UpgradeRequest`: ``path``, ``target``,
        ``headers``, ``remote_addr``).  It runs in the connection's own
        thread.  When it returns, the connection is closed normally (1000);
        when it raises, the exception is logged with its traceback and the
        connection closed with 1011, except :class:`~gorillaws.CloseError`
        (the client closed: not an error), errors caused by :meth:`shutdown`,
        and the peer's or the network's failures (one INFO line; closed with
        the error's own code): see :func:`run_handler`.
    :param host: address to bind ("" or "0.0.0.0" for every IPv4
        interface, "::" for IPv6).
    :param port: port to bind; 0 picks a free one (see :attr:`address`).
    :param upgrader: the :class:`~gorillaws.server.Upgrader` with the
        handshake options (origins, subprotocols, compression); a copy is
        used.  Its ``error`` callback still answers refused WebSocket
        handshakes.
    :param ssl_context: a server-side :class:`ssl.SSLContext` for ``wss://``;
        the TLS handshake runs in the connection's thread, within
        ``handshake_timeout``.
    :param max_connections: most connections held at once (handshaking or
        open); beyond it clients get 503.  None: the open-files limit minus
        a reserve (10%, at least 32).  0: no cap.
    :param backlog: the listen queue length (the kernel caps it at
        ``net.core.somaxconn``).
    :param handshake_timeout: seconds for the TLS handshake plus the HTTP
        request head plus our response.  None: the upgrader's value, or 10
        when that is None too (an unbounded handshake is never the default).
    :param http_handler: ``http_handler(request) -> (status, headers, body)``
        or None, for requests that are not WebSocket upgrades (any method);
        returning None, or leaving it unset, answers 426 with a short text.
        It runs in the connection's thread; the request body is not read
        and the connection is closed after the answer (no keep-alive), so it
        suits pages and health checks, not uploads.  An exception answers 500.
    :param sock: an already bound (listening or not) socket to use instead
        of binding ``host``/``port``.
    :param thread_stack_size: stack size of connection threads, in bytes.
    :param spare_threads: how many connection threads, once their handler
        has returned, wait (up to 10 s) to run a later connection instead of
        ending; starting a thread costs more than a whole handshake's parsing.
        A connection still has a thread to itself for as long as it lives,
        but ``threading.local`` data a handler leaves behind is seen by the
        next connection that thread runs.  0: a new thread every time.

    Raises :class:`OSError` when the address cannot be bound.  The methods
    are safe to call from any thread.  Use as a context manager to
    :meth:`shutdown` on exit.
    """

    def __init__(
        self,
        handler: Callable[..., Any],
        host: str = "127.0.0.1",
        port: int = 8080,
        *,
        upgrader: Optional[Upgrader] = None,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_connections: Optional[int] = None,
        backlog: int = 1024,
        handshake_timeout: Optional[float] = None,
        http_handler: Optional[HTTPHandler] = None,
        sock: Optional[socket.socket] = None,
        thread_stack_size: int = DEFAULT_THREAD_STACK_SIZE,
        spare_threads: int = DEFAULT_SPARE_THREADS,
    ) -> None:
        self.handler = handler
        self._pass_request = _takes_request(handler)
        self.ssl_context = ssl_context
        self.http_handler = http_handler
        self.thread_stack_size = thread_stack_size
        self.spare_threads = spare_threads
        self.max_connections = default_max_connections() if max_connections is None else max_connections
        base = upgrader if upgrader is not None else Upgrader()
        # A copy: the Server answers non-WebSocket requests through the
        # upgrader's error hook, and must not change the caller's object.
        self.upgrader = copy.copy(base)
        self._user_error = base.error
        self.upgrader.error = self._answer_refused
        timeout = handshake_timeout if handshake_timeout is not None else base.handshake_timeout
        self.upgrader.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT if timeout is None else timeout

        if sock is None:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            sock = socket.create_server((host, port), family=family, backlog=backlog)
        else:
            sock.listen(backlog)
        sock.setblocking(False)
        self.socket = sock
        # Every connection accepted on an IPv4 listener bound to one address
        # has that local address: known here, it is not asked per connection.
        name = sock.getsockname()
        self._local = name if sock.family == socket.AF_INET and name[0] != "0.0.0.0" else None
        # None: a listener whose class has its own accept() (an SSLSocket wraps
        # what it accepts): that one is called as it is.
        self._accepted_kind = (
            (int(sock.family), int(sock.type), sock.proto) if type(sock).accept is socket.socket.accept else None
        )
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)  # notified when a connection ends
        self._pending: Set[socket.socket] = set()  # accepted, handshake not done
        self._conns: Dict[Conn, threading.Thread] = {}  # open WebSocket connections
        self._threads: Set[threading.Thread] = set()  # connection threads, busy or spare
        # Accepted sockets for the spare threads, which wait in get(); None ends one.
        self._jobs: "queue.SimpleQueue[Optional[Tuple[socket.socket, Any]]]" = queue.SimpleQueue()
        self._spare = 0  # spare threads waiting that no job was promised to yet
        self._stopping = False  # no more accepting
        self._stop_requested = False  # a signal asked serve_forever to shut down
        self._loop_running = False
        self._loop_done = threading.Event()
        self._loop_done.set()
        self._shutdown_done = threading.Event()
        self._shutdown_started = False
        self._close_code = CLOSE_GOING_AWAY
        self._exhausted_logged = False

    # -- properties ---------------------------------------------------------

    @property
    def address(self) -> Tuple[str, int]:
        """The bound ``(host, port)`` (the real port when 0 was asked for)."""
        name = self.socket.getsockname()
        return str(name[0]), int(name[1])

    @property
    def url(self) -> str:
        """``ws://host:port`` (``wss://`` with TLS) for the bound address."""
        host, port = self.address
        if ":" in host:
            host = f"[{host}]"
        return f"{'wss' if self.ssl_context is not None else 'ws'}://{host}:{port}"

    def connection_count(self) -> int:
        """Connections held right now: handshaking plus open."""
        with self._lock:
            return len(self._pending) + len(self._conns)

    # -- the accept loop ------------------------------------------------------

    def serve_forever(self) -> None:
        """Accept connections until :meth:`shutdown` (or a handled signal, or Ctrl-C).

        On Ctrl-C (KeyboardInterrupt) and, after :meth:`install_signal_handlers`,
        on SIGINT/SIGTERM, it runs :meth:`shutdown` itself, then returns
        (KeyboardInterrupt is not re-raised).  Returns at once if the server
        was shut down already.  Raises :class:`OSError` only if ``accept``
        fails for a reason that is neither one client's (it went away) nor a
        lack of descriptors (which pauses accepting instead).
        """
        with self._lock:
            if self._stopping:
                return
            self._loop_running = True
            self._loop_done.clear()
        interrupted = False
        try:
            self._accept_loop()
        except KeyboardInterrupt:
            interrupted = True
        finally:
            with self._lock:
                self._loop_running = False
            self._loop_done.set()
        if interrupted or self._stop_requested:
            self.shutdown()

    def _accept_loop(self) -> None:
        poller = select.poll()
        poller.register(self.socket, select.POLLIN)
        poller.register(self._wake_r, select.POLLIN)
        listener, wake = self.socket.fileno(), self._wake_r.fileno()
        backoff = 0.0
        while not self._stopping:
            if backoff:
                # Out of descriptors: the listener stays readable, so only
                # the wake pipe is watched until the back-off ends.
                select.select([self._wake_r], [], [], backoff)
                backoff = 0.0
                continue
            readable = False
            for fd, _ in poller.poll():
                if fd == wake:
                    self._drain_wake()
                elif fd == listener:
                    readable = True
            if self._stopping:
                return
            if readable:
                backoff = self._accept_one()

    def _accept_one(self) -> float:
        """Accept one queued connection; return a back-off in seconds (0: none needed).

        One per ``poll``, which returns at once while more are queued: a
        batch would end every time with a failing ``accept`` (EAGAIN, an
        exception), one system call more than a ``poll`` that finds the
        next one.
        """
        try:
            if self._accepted_kind is not None:
                # socket.accept() without its per-call IntEnum conversions of
                # family and type (the listener is non-blocking, so its switch
                # back to blocking never applies).
                fd, addr = self.socket._accept()  # type: ignore[attr-defined]
                sock = socket.socket(*self._accepted_kind, fileno=fd)
            else:
                sock, addr = self.socket.accept()
        except OSError as e:
            if e.errno in EXHAUSTED_ERRNOS:
                if not self._exhausted_logged:
                    self._exhausted_logged = True
                    log_exhausted(e)
                return ACCEPT_BACKOFF
            if isinstance(e, BlockingIOError) or e.errno in _TRANSIENT or self._stopping:
                return 0.0
            raise
        self._exhausted_logged = False
        self._admit(sock, addr)
        return 0.0

    def _admit(self, sock: socket.socket, addr: Any) -> None:
        """Give an accepted socket its thread, or refuse it when at the cap."""
        with self._lock:
            held = len(self._pending) + len(self._conns)
            full = bool(self.max_connections) and held >= int(self.max_connections or 0)
            if not full:
                self._pending.add(sock)
            spare = not full and self._spare > 0
            if spare:
                self._spare -= 1  # that thread's job is on its way
        if full:
            refuse_busy(sock)
            return
        if spare:
            self._jobs.put((sock, addr))
            return
        thread = threading.Thread(target=self._work, args=(sock, addr), name="gorillaws-conn", daemon=True)
        with self._lock:
            self._threads.add(thread)
        try:
            with _stack_lock:
                old = threading.stack_size(self.thread_stack_size) if self.thread_stack_size else None
                try:
                    thread.start()
                finally:
                    if old is not None:
                        threading.stack_size(old)
        except RuntimeError:  # can't start a thread: out of memory or thread limit
            log.warning("cannot start a thread for %s; refusing it", addr)
            with self._lock:
                self._pending.discard(sock)
                self._threads.discard(thread)
            refuse_busy(sock)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(512):
                pass
        except OSError:
            pass

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # full (already woken) or closed

    # -- one connection -------------------------------------------------------

    def _work(self, sock: socket.socket, addr: Any) -> None:
        """A connection thread: run this connection, then later ones while it is spare."""
        try:
            while True:
                # A plain call, never self._run(*job): a call with * runs the
                # callee one C-level interpreter frame deeper, and the C stack
                # pages a connection's thread touches stay resident while it idles.
                self._run(sock, addr)
                job = self._next_job()
                if job is None:
                    return
                sock, addr = job
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())
                self._idle.notify_all()

    def _next_job(self) -> Optional[Tuple[socket.socket, Any]]:
        """Wait as a spare thread for the accept loop's next socket; None: end the thread.

        ``_spare`` counts the waiting threads no socket was promised to, so
        the queue always holds at most one job per waiting thread.  A
        thread whose wait ended may only leave if it can take itself off
        that count; otherwise a job is promised to it and is (about to be)
        in the queue.
        """
        with self._lock:
            if self._stopping or self._spare >= self.spare_threads:
                return None
            self._spare += 1
        try:
            return self._jobs.get(timeout=SPARE_THREAD_WAIT)
        except queue.Empty:
            with self._lock:
                if self._spare:
                    self._spare -= 1
                    return None
            return self._jobs.get()

    def _release_spares(self) -> None:
        """End every spare thread (shutdown): one None each."""
        with self._lock:
            n, self._spare = self._spare, 0
        for _ in range(n):
            self._jobs.put(None)

    def _run(self, sock: socket.socket, addr: Any) -> None:
        """A connection's thread: TLS, handshake, handler, close."""
        raw = sock
        conn: Optional[Conn] = None
        try:
            try:
                if self.ssl_context is not None:
                    # Lazy: the TLS handshake happens inside upgrade(), in
                    # this thread, within handshake_timeout.
                    sock = self.ssl_context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
                    with self._lock:
                        self._pending.discard(raw)
                        self._pending.add(sock)
                # (Closes the socket on HandshakeError.)
                conn, request = upgrade_accepted(self.upgrader, sock, addr, self._local)
            except (HandshakeError, OSError, ValueError) as e:
                log.debug("handshake with %s failed: %s", addr, e)
                if not isinstance(e, HandshakeError):
                    sock.close()
                return
            with self._lock:
                self._pending.discard(sock)
                stopping = self._stopping
                self._conns[conn] = threading.current_thread()
            if stopping:
                conn.close(self._close_code, "going away")
                return
            handler = self.handler
            if self._pass_request:
                run_handler(conn, lambda: handler(conn, request), log, "handler for", addr, self._is_stopping)
            else:
                # Not kept: a parsed head is ~2 KiB that an idle connection
                # would otherwise hold for its whole life.
                del request
                run_handler(conn, lambda: handler(conn), log, "handler for", addr, self._is_stopping)
        finally:
            with self._lock:
                self._pending.discard(sock)
                self._pending.discard(raw)
                if conn is not None:
                    self._conns.pop(conn, None)
                if self._stopping:  # only shutdown() waits for connections to end
                    self._idle.notify_all()

    def _is_stopping(self) -> bool:
        return self._stopping

    # -- answers that are not upgrades ------------------------------------------

    def _answer_refused(self, request: UpgradeRequest, status: int, reason: str) -> Any:
        """The upgrader's error hook: pages for plain requests, errors for bad upgrades."""
        if is_websocket_upgrade(request):
            if status == 403:
                log.warning(
                    "refused a WebSocket from origin %r (host %r): allow it with "
                    "Upgrader(origin_patterns=[...]) or Upgrader(check_origin=...)",
                    request.origin,
                    request.host,
                )
            else:
                log.debug("refused a WebSocket handshake from %s: %d %s", request.remote_addr, status, reason)
            if self._user_error is not None:
                return self._user_error(request, status, reason)
            self._send_error(request, status)
            return None
        self._answer_http(request)
        return None

    def _send_error(self, request: UpgradeRequest, status: int, body: Optional[bytes] = None) -> None:
        headers = request.response_headers.copy()
        headers["Content-Type"] = "text/plain; charset=utf-8"
        headers["X-Content-Type-Options"] = "nosniff"
        if body is None:
            from http import HTTPStatus

            try:
                phrase = HTTPStatus(status).phrase
            except ValueError:
                phrase = "Error"
            body = f"{status} {phrase}\n".encode()
        _send_answer(request.raw, status, headers, body, request.method == "HEAD")

    def _answer_http(self, request: UpgradeRequest) -> None:
        answer: Optional[HTTPAnswer] = None
        if self.http_handler is not None:
            try:
                answer = self.http_handler(request)
            except Exception:
                log.exception("http_handler raised for %s %s", request.method, request.target)
                self._send_error(Server._fresh(request), 500)
                return
        if answer is None:
            request = Server._fresh(request)
            request.response_headers["Upgrade"] = "websocket"
            request.response_headers["Sec-WebSocket-Version"] = "13"
            self._send_error(request, 426, _NOT_WEBSOCKET_BODY)
            return
        status, header_input, body = answer
        headers = Headers(header_input)
        if isinstance(body, str):
            body = body.encode("utf-8")
            headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        try:
            _send_answer(request.raw, int(status), headers, bytes(body), request.method == "HEAD")
        except ValueError:
            log.exception("http_handler answered an invalid response for %s", request.target)
            self._send_error(Server._fresh(request), 500)

    @staticmethod
    def _fresh(request: UpgradeRequest) -> UpgradeRequest:
        """Drop the handshake's error headers (Allow: GET) from a non-WebSocket answer."""
        request.response_headers = Headers()
        return request

    # -- shutdown -----------------------------------------------------------------

    def install_signal_handlers(self, signals: Sequence[int] = (signal.SIGINT, signal.SIGTERM)) -> None:
        """Make SIGINT and SIGTERM shut the server down gracefully.

        The signal only wakes :meth:`serve_forever`, which then runs
        :meth:`shutdown` in its own thread and returns.  Call from the main
        thread (a rule of :mod:`signal`; raises :class:`ValueError`
        otherwise).
        """

        def on_signal(signum: int, frame: Any) -> None:
            self._stop_requested = True
            self._stopping = True
            self._wake()

        for sig in signals:
            signal.signal(sig, on_signal)

    def shutdown(self, code: int = CLOSE_GOING_AWAY, reason: str = "going away", timeout: float = 5.0) -> None:
        """Stop accepting, close every connection with ``code``, and release the port.

        Sends each open connection a close frame with ``code`` and
        ``reason`` (at most 0.5 s per connection whose peer reads nothing),
        waits up to ``timeout`` seconds for the handlers to finish (a
        handler reading the connection sees the client's close as
        :class:`~gorillaws.CloseError` and returns), then drops the
        connections still open.  Handshakes in progress are cut.  Safe from
        any thread, including a handler's; a second call waits for the
        first to finish.
        """
        with self._lock:
            first = not self._shutdown_started
            self._shutdown_started = True
            self._stopping = True
            self._close_code = code
        if not first:
            self._shutdown_done.wait(timeout + 2.0)
            return
        try:
            self._stop_accepting()
            self._release_spares()
            end = time.monotonic() + timeout
            with self._lock:
                pending = list(self._pending)
                conns = list(self._conns)
            for s in pending:
                _shutdown_socket(s)  # the handshake read fails now
            send_close_frames(conns, code, reason, end)
            me = threading.current_thread()
            with self._lock:
                while any(t is not me for t in self._threads) and time.monotonic() < end:
                    self._idle.wait(max(0.0, end - time.monotonic()))
                left = [c for c, t in self._conns.items() if t is not me]
                stuck = list(self._pending)
            for conn in left:
                log.debug("dropping a connection that did not finish its close handshake")
                conn.close_now()
            for s in stuck:
                _shutdown_socket(s)
        finally:
            self._shutdown_done.set()

    def _stop_accepting(self) -> None:
        self._wake()
        with self._lock:
            running = self._loop_running
        if running:
            # The accept loop exits at its next wake-up.  (Called from
            # serve_forever itself, the loop has ended already.)
            self._loop_done.wait(5.0)
        for s in (self.socket, self._wake_r, self._wake_w):
            try:
                s.close()
            except OSError:
                pass

    def server_close(self) -> None:
        """Close the listening socket only (connections stay open); prefer :meth:`shutdown`."""
        with self._lock:
            self._stopping = True
        self._wake()
        self.socket.close()

    def __enter__(self) -> "Server":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> None:
        self.shutdown()


def _shutdown_socket(sock: socket.socket) -> None:
    """Wake a thread blocked on ``sock`` (its next read sees EOF)."""
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def serve(handler: Callable[..., Any], host: str = "127.0.0.1", port: int = 8080, **kwargs: Any) -> None:
    """Run a :class:`Server` until Ctrl-C or SIGTERM, then shut it down gracefully.

    ``kwargs`` are :class:`Server`'s keyword options.  Signal handlers are
    installed when called from the main thread.  Blocks; raises
    :class:`OSError` when the address cannot be bound.
    """
    server = Server(handler, host, port, **kwargs)
    if threading.current_thread() is threading.main_thread():
        server.install_signal_handlers()
    server.serve_forever()
