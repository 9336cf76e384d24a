"""Drop-in hardened versions of :mod:`http.server`'s threading server and request handler.

:mod:`http.server` as shipped waits forever for a request head, queues only
5 connects, busy-loops when out of descriptors, and (with TLS) does the TLS
handshake in the accepting thread.  Change the import, nothing else::

    from gorillaws.httpserver import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            conn = upgrader.upgrade(self)
            ...

    ThreadingHTTPServer(("127.0.0.1", 8080), Handler).serve_forever()

What each timeout covers:

* ``BaseHTTPRequestHandler.header_timeout`` (10 s): the whole request line
  and headers, from the moment the server waits for them (for TLS, the TLS
  handshake too, which runs in the same first read) — also the wait for the
  next request on a keep-alive connection.  A client that sends nothing, or
  trickles its head a byte at a time, is disconnected then.
* ``BaseHTTPRequestHandler.timeout`` (60 s): each later read or write of a
  plain HTTP exchange (a request body, a response to a client that does not
  read).  After :meth:`~gorillaws.server.Upgrader.upgrade`, neither applies:
  the :class:`~gorillaws.conn.Conn` has its own deadlines.
* ``Upgrader.handshake_timeout``: writing the 101 response.

:class:`ThreadingHTTPServer` adds a listen queue of 1024, daemon threads,
``max_connections`` (beyond it, clients get 503; default: the open-files
limit minus a reserve), a pause instead of a busy loop when ``accept`` runs
out of descriptors, and an ``ssl_context`` argument that wraps the listening
socket with ``do_handshake_on_connect=False`` so that the TLS handshake runs
in the connection's thread, bounded by ``header_timeout``.
"""

from __future__ import annotations

import http.server
import io
import logging
import socket
import ssl
import sys
import threading
import time
from typing import Any, Optional, Tuple

from .serving import ACCEPT_BACKOFF, EXHAUSTED_ERRNOS, default_max_connections, log_exhausted, refuse_busy

__all__ = ["BaseHTTPRequestHandler", "ThreadingHTTPServer", "DEFAULT_HEADER_TIMEOUT"]

log = logging.getLogger("gorillaws.httpserver")

#: Seconds a client has to send a whole request head (and finish TLS).
DEFAULT_HEADER_TIMEOUT = 10.0


class _HeadDeadlineReader(io.RawIOBase):
    """Socket reads under one deadline for a whole request head.

    A per-read socket timeout alone lets a client that sends a byte every few
    seconds hold its thread forever; this bounds the sum.  With no deadline
    set, reads use the handler's per-read ``timeout``.
    """

    def __init__(self, sock: socket.socket, timeout: Optional[float]) -> None:
        super().__init__()
        self.sock = sock
        self.timeout = timeout
        self.deadline: Optional[float] = None

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self.deadline is not None:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("request head not received in time")
            self.sock.settimeout(left if self.timeout is None else min(left, self.timeout))
        return self.sock.recv_into(b)


class BaseHTTPRequestHandler(http.server.BaseHTTPRequestHandler):
    """:class:`http.server.BaseHTTPRequestHandler` with a deadline for the request head.

    ``header_timeout`` bounds the request line plus headers as a whole
    (see the module docs); ``timeout`` (60 s here, None in the standard
    library) bounds each later read and write.  Timed-out clients are
    disconnected ("Request timed out" in the log).  HTTP/1.1 by default.
    """

    protocol_version = "HTTP/1.1"
    header_timeout: Optional[float] = DEFAULT_HEADER_TIMEOUT
    timeout = 60.0

    _head: _HeadDeadlineReader

    def setup(self) -> None:
        super().setup()
        self.rfile.close()
        self._head = _HeadDeadlineReader(self.connection, self.timeout)
        self.rfile = io.BufferedReader(self._head, io.DEFAULT_BUFFER_SIZE)

    def handle_one_request(self) -> None:
        if self.header_timeout is not None:
            self._head.deadline = time.monotonic() + self.header_timeout
        super().handle_one_request()

    def parse_request(self) -> bool:
        ok = super().parse_request()
        # The head is in: later reads (a body) get the per-read timeout only.
        self._head.deadline = None
        try:
            self.connection.settimeout(self.timeout)
        except OSError:
            pass
        return ok


class ThreadingHTTPServer(http.server.ThreadingHTTPServer):
    """:class:`http.server.ThreadingHTTPServer`, safe to face the internet.

    A listen queue of 1024 (``request_queue_size``), daemon threads, no
    waiting for them on close, ``max_connections`` (503 beyond it; None:
    the open-files limit minus a reserve; 0: no cap), a back-off instead of
    a busy loop when ``accept`` fails for lack of descriptors, and
    ``ssl_context`` for HTTPS/wss with the TLS handshake in the connection's
    thread.  Use it with :class:`BaseHTTPRequestHandler` from this module
    (the head deadline is the handler's).
    """

    request_queue_size = 1024
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        server_address: Tuple[str, int],
        RequestHandlerClass: Any,
        bind_and_activate: bool = True,
        *,
        ssl_context: Optional[ssl.SSLContext] = None,
        max_connections: Optional[int] = None,
    ) -> None:
        super().__init__(server_address, RequestHandlerClass, bind_and_activate)
        if ssl_context is not None:
            # Lazy handshake: accept() returns at once and the handshake
            # happens in the first read, in the connection's thread.
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True, do_handshake_on_connect=False)
        if max_connections is None:
            # An upgraded connection holds two descriptors here: the
            # WebSocket's and the host's, repointed by the take-over.
            cap = default_max_connections()
            max_connections = None if cap is None else max(1, cap // 2)
        self.max_connections = max_connections
        self._active = 0
        self._count_lock = threading.Lock()
        self._exhausted_logged = False

    def get_request(self) -> Tuple[socket.socket, Any]:
        try:
            request = super().get_request()
        except OSError as e:
            if e.errno in EXHAUSTED_ERRNOS:
                # The listener stays readable: without a pause, serve_forever
                # would call accept() again at once, forever.
                if not self._exhausted_logged:
                    self._exhausted_logged = True
                    log_exhausted(e)
                time.sleep(ACCEPT_BACKOFF)
            raise
        self._exhausted_logged = False
        return request

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            full = bool(self.max_connections) and self._active >= int(self.max_connections or 0)
            if not full:
                self._active += 1
        if full:
            refuse_busy(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            with self._count_lock:
                self._active -= 1
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self._active -= 1

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that vanish or fail TLS are routine: DEBUG, not a traceback on stderr."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("connection from %s failed", client_address, exc_info=True)
            return
        super().handle_error(request, client_address)

    def connection_count(self) -> int:
        """Connections being served right now."""
        with self._count_lock:
            return self._active
