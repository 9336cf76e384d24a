"""Deadline-bounded socket I/O shared by the connection and the handshakes.

:class:`SocketIO` moves bytes on one socket with per-call deadlines
(absolute :func:`time.monotonic` times, see :mod:`gorillaws.deadline`).  It
knows nothing of WebSocket frames or HTTP.
"""

from __future__ import annotations

import select
import socket
import ssl
from typing import Any, Optional, Union

from .deadline import expired, poll_ms

__all__ = ["SocketIO", "WANT_IO"]

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
    """

    __slots__ = ("sock", "fd", "nonblocking", "_rpoll", "_wpoll")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.nonblocking = isinstance(sock, ssl.SSLSocket) or not hasattr(socket, "MSG_DONTWAIT")
        sock.settimeout(None)
        if self.nonblocking:
            sock.setblocking(False)
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
                n = self.sock.recv_into(scratch, 0, flags) if flags else self.sock.recv_into(scratch)
            except WANT_IO:
                continue
            if n == 0:
                return True

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
                    return sock.recv_into(view)
                return sock.recv_into(view, 0, socket.MSG_DONTWAIT)
            except ssl.SSLWantWriteError:
                if not self._wait(True, deadline):
                    raise socket.timeout("read deadline") from None
            except WANT_IO:
                if not self._wait(False, deadline):
                    raise socket.timeout("read deadline") from None

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
                n = sock.send(view, flags) if flags else sock.send(view)
                view = view[n:]
            except ssl.SSLWantReadError:
                if not self._wait(False, deadline):
                    raise socket.timeout("write deadline") from None
            except WANT_IO:
                if not self._wait(True, deadline):
                    raise socket.timeout("write deadline") from None

    def send_parts(self, head: bytes, payload: Buffer, deadline: Optional[float]) -> None:
        """Send ``head`` then ``payload``, in one system call where the socket allows."""
        if self.nonblocking or deadline is not None:
            self.sendall(head + bytes(payload), deadline)
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
