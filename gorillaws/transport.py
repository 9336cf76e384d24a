"""Deadline-bounded socket I/O shared by the connection and the handshakes.

:class:`SocketIO` moves bytes on one socket with per-call deadlines
(absolute :func:`time.monotonic` times, see :mod:`gorillaws.deadline`).  It
knows nothing of WebSocket frames or HTTP.

Beside it, the two pieces every handshake (server, client, proxy) shares:
:func:`read_http_head`, the one loop that reads an HTTP head (size limit,
fast failure on a peer that does not speak HTTP), and
:func:`default_tls_context`, the one default client TLS configuration.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading
from typing import Any, Callable, Optional, Tuple, Union

from .deadline import expired, poll_ms
from .http11 import MAX_HEAD_SIZE, HttpParseError, find_head_end, not_http_reason

__all__ = ["SocketIO", "WANT_IO", "HeadEOF", "default_tls_context", "read_http_head"]

Buffer = Union[bytes, bytearray, memoryview]

#: Exceptions that mean "not ready yet, wait and retry" on a non-blocking socket.
WANT_IO = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class SocketIO:
    """Deadline-aware reads and writes on one socket, usable from two threads.

    A Python socket's timeout is shared by every thread using it, so it cannot
    express a read deadline and a different write deadline at once.  Instead:
    plain sockets stay blocking and a deadline is honoured with ``poll`` plus
    ``MSG_DONTWAIT`` per call; TLS sockets (which take no flags) are switched
    to non-blocking and wait in ``poll`` when OpenSSL wants more I/O.

    An OpenSSL connection must not be used by two threads at once (reading
    can write: TLS 1.3 sends its session tickets on the first read or write),
    and CPython does not serialize SSL_read and SSL_write.  So on a TLS socket
    every SSL call holds ``_tls``; the calls never block (the socket is
    non-blocking), so the lock is held for microseconds, never across a wait.
    """

    __slots__ = ("sock", "fd", "nonblocking", "_tls", "_rpoll", "_wpoll")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        is_tls = isinstance(sock, ssl.SSLSocket)
        self._tls: Optional[threading.Lock] = threading.Lock() if is_tls else None
        self.nonblocking = is_tls or not hasattr(socket, "MSG_DONTWAIT")
        if self.nonblocking:
            sock.setblocking(False)
        else:
            # Always, even when Python says the socket has no timeout: a socket
            # made from a dup of one that had a timeout (http.server's, after a
            # header timeout) shares its O_NONBLOCK flag while its own timeout
            # reads None.  This call clears the flag in the kernel.
            sock.settimeout(None)
        self._rpoll: Optional[Any] = None
        self._wpoll: Optional[Any] = None

    def _wait(self, writing: bool, deadline: Optional[float]) -> bool:
        """Wait until the socket is ready; False when the deadline passed first."""
        if writing:
            if self._wpoll is None:
                self._wpoll = select.poll()
                self._wpoll.register(self.fd, select.POLLOUT)
            p = self._wpoll
        else:
            if self._rpoll is None:
                self._rpoll = select.poll()
                self._rpoll.register(self.fd, select.POLLIN)
            p = self._rpoll
        ms = poll_ms(deadline)
        if ms == 0:
            return False
        # A clamped wait that ends early (deadlines beyond poll's range) just
        # loops back to the caller, which retries the I/O and waits again.
        return bool(p.poll(ms)) or ms is None or not expired(deadline)

    def _wait_after(self, err: OSError, writing: bool, deadline: Optional[float]) -> None:
        """Wait until the read or write that raised ``err`` (one of :data:`WANT_IO`) can go on.

        A TLS socket may have to write while reading or read while writing
        (handshake records in the way): OpenSSL's error names the direction
        to wait for; otherwise it is the call's own.  Raises socket.timeout
        (naming the read or write deadline) when ``deadline`` passes first.
        """
        if isinstance(err, ssl.SSLWantReadError):
            want_write = False
        elif isinstance(err, ssl.SSLWantWriteError):
            want_write = True
        else:
            want_write = writing
        if not self._wait(want_write, deadline):
            raise socket.timeout("write deadline" if writing else "read deadline") from None

    def drain(self, deadline: float) -> bool:
        """Read and discard until EOF or ``deadline``; True when EOF was seen.

        Uses a poll object of its own, so it may run while another thread
        is waiting in :meth:`recv_into` (they may steal bytes from each
        other; this only runs when the connection is being torn down).
        """
        p = select.poll()
        p.register(self.fd, select.POLLIN)
        scratch = bytearray(4096)
        flags = 0 if self.nonblocking else socket.MSG_DONTWAIT
        while True:
            ms = poll_ms(deadline)
            if ms == 0 or not p.poll(ms):
                return False
            try:
                n = self.sock.recv_into(scratch, 0, flags) if flags else self._tls_recv_into(scratch)
            except WANT_IO:
                continue
            if n == 0:
                return True

    def recv_reply_into(self, view: memoryview, deadline: Optional[float]) -> int:
        """:meth:`recv_into` for an answer that is rarely there yet (a handshake reply).

        On a plain socket with a deadline it waits in ``poll`` first rather
        than have the first read fail with EAGAIN and then wait: one system
        call and one exception less per handshake.  (Not for TLS, whose
        library may hold decrypted bytes ``poll`` cannot see.)
        """
        if deadline is not None and not self.nonblocking and self._wait(False, deadline):
            try:
                return self.sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except WANT_IO:
                pass  # woken with nothing to read: recv_into waits again
        return self.recv_into(view, deadline)  # (past the deadline, it says so)

    def recv_into(self, view: memoryview, deadline: Optional[float]) -> int:
        """Receive into ``view``; 0 means EOF.  Raises socket.timeout at the deadline."""
        sock = self.sock
        if deadline is None and not self.nonblocking:
            return sock.recv_into(view)
        while True:
            if expired(deadline):
                raise socket.timeout("read deadline")
            try:
                if self.nonblocking:
                    return self._tls_recv_into(view)
                return sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except WANT_IO as err:
                self._wait_after(err, False, deadline)

    def sendall(self, data: Buffer, deadline: Optional[float]) -> None:
        """Send every byte of ``data``.  Raises socket.timeout at the deadline."""
        sock = self.sock
        if deadline is None and not self.nonblocking:
            sock.sendall(data)
            return
        flags = 0 if self.nonblocking else socket.MSG_DONTWAIT
        if flags and data.__class__ is bytes:
            # A small frame usually fits the socket buffer: try it whole first.
            try:
                sent = sock.send(data, flags)
            except WANT_IO:
                sent = 0
            if sent == len(data):
                return
            view = memoryview(data)[sent:]
        else:
            view = memoryview(data).cast("B")
        while view:
            try:
                n = sock.send(view, flags) if flags else self._tls_send(view)
                view = view[n:]
            except WANT_IO as err:
                self._wait_after(err, True, deadline)

    def _tls_recv_into(self, view: Buffer) -> int:
        """One receive on a non-blocking socket, under the TLS lock if there is one."""
        return self._one_call(self.sock.recv_into, view)

    def _tls_send(self, view: Buffer) -> int:
        """One send on a non-blocking socket, under the TLS lock if there is one."""
        return self._one_call(self.sock.send, view)

    def _one_call(self, op: Callable[[Buffer], int], view: Buffer) -> int:
        lock = self._tls
        if lock is None:
            return op(view)
        with lock:
            return op(view)

    def send_parts(self, head: bytes, payload: Buffer, deadline: Optional[float]) -> None:
        """Send ``head`` then ``payload``, in one system call where the socket allows.

        Never copies ``payload`` (a large frame must not double its memory):
        with a deadline, a plain socket gathers both buffers with
        ``sendmsg`` and ``MSG_DONTWAIT``; a TLS socket sends them one after
        the other.  Raises socket.timeout at the deadline.
        """
        if self.nonblocking:
            self.sendall(head, deadline)
            self.sendall(payload, deadline)
            return
        if deadline is not None:
            self._sendmsg_by(head, payload, deadline)
            return
        sock = self.sock
        sent = sock.sendmsg([head, payload])
        total = len(head) + len(payload)
        if sent < total:
            if sent < len(head):
                sock.sendall(head[sent:])
                sock.sendall(payload)
            else:
                sock.sendall(memoryview(payload)[sent - len(head) :])

    def _sendmsg_by(self, head: bytes, payload: Buffer, deadline: float) -> None:
        """Gather-send ``head`` and ``payload`` on a blocking socket by ``deadline``."""
        parts = [memoryview(head), memoryview(payload).cast("B")]
        while parts:
            try:
                n = self.sock.sendmsg(parts, (), socket.MSG_DONTWAIT)
            except WANT_IO as err:
                self._wait_after(err, True, deadline)
                continue
            while parts and n >= len(parts[0]):
                n -= len(parts.pop(0))
            if n:
                parts[0] = parts[0][n:]


def default_tls_context() -> ssl.SSLContext:
    """A client TLS context that verifies certificates and host names against certifi's CA bundle.

    Used for ``wss://`` and for ``https://`` proxies when no context is given.
    A new context each call (callers may adjust it).
    """
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover - certifi is a dependency
        return ssl.create_default_context()


class HeadEOF(EOFError):
    """The peer closed the connection before an HTTP head was complete.

    ``received`` is how many bytes of the head had arrived (0: no answer at all).
    """

    def __init__(self, received: int) -> None:
        super().__init__(
            "connection closed before the HTTP head was complete"
            if received
            else "connection closed without a byte of HTTP"
        )
        self.received = received


def read_http_head(recv: Callable[[memoryview], int], *, response: bool) -> Tuple[bytes, bytes]:
    """Read one HTTP head through ``recv``; return (head, the bytes after it).

    ``recv(view)`` fills ``view`` and returns the count, 0 at EOF (e.g.
    ``lambda v: io.recv_into(v, deadline)`` with a :class:`SocketIO`); its
    exceptions (``socket.timeout`` at a deadline, ...) propagate.
    ``response`` says whether a status line (client, proxy) or a request
    line (server) is expected.  The one head reader of the library:

    * Raises :class:`~gorillaws.http11.HttpParseError` with status 431 when
      the head grows past :data:`~gorillaws.http11.MAX_HEAD_SIZE`, and with
      400 as soon as the first bytes cannot start an HTTP head (a TLS
      record, an SSH banner, binary data, a bare LF line end: see
      :func:`~gorillaws.http11.not_http_reason`) instead of waiting for a
      blank line that never comes; its ``not_http`` says what was seen.
    * Raises :class:`HeadEOF` when the peer closes first.

    The head is not parsed: hand it to ``parse_request_head`` or
    ``parse_response_head``.
    """
    # Received straight into ``buf``: most heads fit its first size (one
    # receive, no copy); while the head is incomplete it grows so that each
    # later receive has _HEAD_READ bytes of room.  Bytes past ``have`` are
    # zeros, which can never complete a CRLFCRLF.
    buf = bytearray(_FIRST_HEAD_READ)
    have = 0
    checked = False  # the first line was seen and looks like HTTP
    while True:
        if have and len(buf) - have < _HEAD_READ:
            buf += bytes(_HEAD_READ)
        n = recv(memoryview(buf)[have:])
        if not n:
            raise HeadEOF(have)
        start = have - 3
        have += n
        end = find_head_end(buf, start)
        if end >= 0:
            if end > MAX_HEAD_SIZE:
                break
            # (A whole head is left to the parser, which is as strict.)
            return bytes(memoryview(buf)[:end]), bytes(memoryview(buf)[end:have])
        if have > MAX_HEAD_SIZE:
            break
        if not checked:
            why = not_http_reason(buf[:have], response)
            if why is not None:
                raise HttpParseError(f"the peer does not speak HTTP: it sent {why}", not_http=why)
            checked = buf.find(b"\r\n", 0, have) >= 0
        elif buf.count(b"\n", start, have) != buf.count(b"\r\n", max(0, start - 1), have):
            raise HttpParseError("bare LF line end in HTTP head (CRLF required)")
    raise HttpParseError(f"HTTP head larger than {MAX_HEAD_SIZE} bytes", 431)


# The room for the first receive of a head (heads are usually a few hundred
# bytes; zeroing a smaller buffer is cheaper), and for each later one.
_FIRST_HEAD_READ = 2048
_HEAD_READ = 4096
