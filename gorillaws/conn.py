"""The WebSocket connection: :class:`Conn`.

A ``Conn`` wraps a connected socket after the opening handshake (see
:class:`gorillaws.Upgrader` and :class:`gorillaws.Dialer`) and speaks RFC 6455
frames over it, with gorilla/websocket's semantics:

* **Reading happens in the caller's thread.**  :meth:`Conn.read_message` and
  :meth:`Conn.next_reader` read the socket directly into a reusable buffer;
  there is no background reader thread and no per-message hand-off.
* **Control frames are handled inside read calls**: the ping, pong and close
  handlers run in the thread that reads.  An application must therefore keep
  reading (or call :meth:`Conn.close_read`) to see pings and closes.
* **One reader and one writer at a time.**  Concurrent readers, or concurrent
  writers, are serialized by locks (gorilla panics instead; a second writer
  here waits its turn).  :meth:`Conn.write_control`, :meth:`Conn.close` and
  :meth:`Conn.close_now` are safe from any thread at any time.
* **Deadlines are absolute points on the** :func:`time.monotonic` **clock**
  (``None``: no deadline).  A read deadline that passes before any byte of the
  next frame arrived raises :class:`DeadlineExceeded` with ``fatal=False`` and
  the connection stays usable; one that passes mid-frame, and any write
  deadline, are fatal for that direction, as in gorilla.
* **Errors are sticky**: after a read error, every later read raises the same
  error; the same for writes.  Every failure is a :class:`WebSocketError`
  (socket errors arrive as :class:`ConnectionClosedError`, also an
  ``OSError``).  An exception that interrupts a write mid-frame ends writing
  for good, so the peer never reads a corrupt stream.
* **One lifecycle**: :attr:`Conn.state` (:class:`ConnState`) goes OPEN ->
  CLOSING -> CLOSED, and :attr:`Conn.close_initiator` says who sent the first
  close frame.  ``docs/errors.md`` lists every exception.

The frame format itself (headers, masking, close payloads, UTF-8) lives in the
pure modules :mod:`gorillaws.frames`, :mod:`gorillaws.mask` and
:mod:`gorillaws.utf8`; this module only moves bytes.
"""

from __future__ import annotations

import enum
import io
import json
import os
import socket
import threading
import time
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Optional,
    Protocol,
    Sequence,
    Tuple,
    Union,
)

from . import frames
from .deadline import check as check_deadline
from .deadline import MAX_WAIT, expired, remaining
from .exceptions import (
    CloseError,
    ConnectionClosedError,
    DeadlineExceeded,
    ErrCloseSent,
    ErrReadLimit,
    ProtocolError,
    WebSocketError,
    close_code_for,
)
from .frames import (
    BINARY_MESSAGE,
    CLOSE_ABNORMAL_CLOSURE,
    CLOSE_MESSAGE,
    CLOSE_NO_STATUS_RECEIVED,
    CLOSE_NORMAL_CLOSURE,
    CONTINUATION_FRAME,
    PING_MESSAGE,
    PONG_MESSAGE,
    TEXT_MESSAGE,
    encode_header,
    encode_frame,
    format_close_message,
    parse_close_payload,
    parse_frame,
    parse_header,
)
from .enums import MessageType
from .mask import apply_mask, apply_mask_inplace
from .transport import SocketIO
from .utf8 import Utf8Validator

if TYPE_CHECKING:  # pragma: no cover
    from .deflate import PerMessageDeflate

__all__ = [
    "Conn",
    "ConnState",
    "MessageReader",
    "MessageWriter",
    "PingHandler",
    "PongHandler",
    "CloseHandler",
    "SockAddr",
    "NetConn",
    "join_messages",
    "BufferPool",
    "SimpleBufferPool",
    "DEFAULT_READ_LIMIT",
    "DEFAULT_MAX_FRAGMENTS",
    "DEFAULT_CLOSE_TIMEOUT",
]

Buffer = Union[bytes, bytearray, memoryview]

#: Default largest message accepted by :meth:`Conn.read_message` and friends,
#: like the ``websockets`` package.  gorilla has no default limit; pass ``0``
#: (or a negative number) to :meth:`Conn.set_read_limit` for gorilla's
#: unlimited behaviour.
DEFAULT_READ_LIMIT = 1 << 20

#: Default bound (seconds) of :meth:`Conn.close`'s wait for the peer's close frame.
DEFAULT_CLOSE_TIMEOUT = 5.0

DEFAULT_BUFFER_SIZE = 4096

# gorilla's writeWait for the replies the default handlers send.
_HANDLER_WRITE_WAIT = 1.0

# Payloads at least this big are read straight into the message's own buffer
# instead of going through the connection's read buffer.
_DIRECT_READ_MIN = 16384

# A connection that has received this many frames larger than its read
# buffer (but no larger than _LARGE_READ_BUFFER) gets a read buffer of that
# size: one receive then takes a whole 64 KiB frame, where a 4 KiB buffer
# needs two and leaves the peer's send waiting on the first (the 64 KiB echo
# ran at 0.5x raw TCP, 0.8x with the larger buffer; bench/RESULTS.md).  Only
# connections that carry such frames pay for it.
_LARGE_FRAMES_TO_GROW = 8
_LARGE_READ_BUFFER = 131072

# Above this size a frame's header and payload are handed to the kernel as
# two buffers (sendmsg) instead of being concatenated first.
_GATHER_SEND_MIN = 16384
# write_prepared_messages joins small frames into sends of at most this many bytes.
_JOINED_SEND_MAX = 65536

# Compressed payloads are read and inflated at most this much at a time.
_COMPRESSED_CHUNK = 65536


def _deadline_text(direction: str, past_when_set: bool, detail: str = "") -> str:
    """The message of a :class:`DeadlineExceeded` for a read or write deadline."""
    msg = f"websocket: {direction} deadline exceeded{detail}"
    if past_when_set:
        # Almost always a duration passed where a timestamp was meant.
        msg += (
            " (the deadline was already in the past when it was set: deadlines are"
            " time.monotonic() timestamps, not durations; use time.monotonic() + seconds)"
        )
    return msg


def _wait_event(ev: threading.Event, deadline: Optional[float]) -> bool:
    """``ev.wait()`` until a monotonic ``deadline`` (None: no limit); False when it passed.

    Waits in steps :func:`gorillaws.deadline.remaining` clamps, so no deadline
    is too far ahead for the lock underneath.
    """
    while not ev.wait(remaining(deadline)):
        if expired(deadline):
            return False
    return True


def socket_addresses(sock: socket.socket) -> Tuple[SockAddr, Optional[SockAddr]]:
    """``(sock.getsockname(), sock.getpeername())``, the peer None when it is gone already.

    Upgrader and Dialer read these before building the :class:`Conn` and pass
    them in: these calls release the GIL, and made inside the constructor (a
    C-level call, one interpreter frame deeper) they touch one more 4 KiB
    stack page in every connection's thread, which stays resident while it
    idles.  Raises OSError when the socket is closed.
    """
    try:
        peer = sock.getpeername()
    except OSError:  # the peer is gone already
        peer = None
    return sock.getsockname(), peer


def _byte_payload(data: Any) -> Buffer:
    """``data`` as bytes-like of single bytes, so ``len()`` counts what is sent.

    A str is encoded as UTF-8; a buffer of wider items (``array('i')``, a
    cast memoryview) is viewed as bytes, so the frame header never
    announces fewer bytes than go out.  Raises TypeError for anything else.
    """
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (bytes, bytearray)):
        return data
    return memoryview(data).cast("B")

# The largest payload allocated whole before its bytes arrive (the default
# read limit).  A larger frame's buffer grows as its bytes come in, so a
# 14-byte header announcing 2**62 bytes reserves no more than this.
_UPFRONT_MAX = 1 << 20

#: Default largest number of frames in one message (see
#: :meth:`Conn.set_max_fragments`): above the 65,536 of Autobahn's largest
#: case, far below what endless empty continuation frames would reach.
DEFAULT_MAX_FRAGMENTS = 100_000




class BufferPool(Protocol):
    """A pool of write buffers shared by connections (gorilla's ``BufferPool``).

    ``get`` returns a buffer or None (then the connection allocates one);
    ``put`` gives a buffer back.  Implementations must be thread-safe.
    """

    def get(self) -> Optional[bytearray]: ...

    def put(self, buf: bytearray) -> None: ...


class SimpleBufferPool:
    """A thread-safe, bounded :class:`BufferPool` (gorilla users reach for ``sync.Pool``)."""

    def __init__(self, max_buffers: int = 1024) -> None:
        self._free: List[bytearray] = []
        self._max = max_buffers
        self._lock = threading.Lock()

    def get(self) -> Optional[bytearray]:
        """Take a buffer from the pool, or None when it is empty."""
        with self._lock:
            return self._free.pop() if self._free else None

    def put(self, buf: bytearray) -> None:
        """Return a buffer to the pool (dropped if the pool is full)."""
        with self._lock:
            if len(self._free) < self._max:
                self._free.append(buf)


#: ``handler(payload)``, run in the reading thread for each ping (:meth:`Conn.set_ping_handler`).
PingHandler = Callable[[bytes], None]
#: ``handler(payload)``, run in the reading thread for each pong (:meth:`Conn.set_pong_handler`).
PongHandler = Callable[[bytes], None]
#: ``handler(code, text)``, run in the reading thread for the peer's close frame.
CloseHandler = Callable[[int, str], None]

#: A socket address as the socket module gives it: ``(host, port)`` for IPv4,
#: ``(host, port, flowinfo, scope_id)`` for IPv6, a path (str) for Unix sockets.
SockAddr = Union[Tuple[str, int], Tuple[str, int, int, int], str]

# Opcode -> MessageType for data messages (index opcode - 1): a tuple lookup
# on the read path instead of an enum constructor call per message.
_DATA_MESSAGE_TYPES = (MessageType.TEXT, MessageType.BINARY)
_WRITER_TYPES = frozenset(MessageType)


class ConnState(enum.Enum):
    """Where a connection is in its life (:attr:`Conn.state`).

    ============  ==========================================================
    ``OPEN``      No close frame sent or received: messages flow both ways.
    ``CLOSING``   A close frame was sent or received (:attr:`Conn.close_initiator`
                  says which came first).  After ours, writes raise
                  :class:`ErrCloseSent`; after the peer's, reads raise its
                  :class:`CloseError`; the other direction works until its
                  own close frame.
    ``CLOSED``    The socket is closed: reads and writes raise.
    ============  ==========================================================

    The states only move forward; a socket that fails goes to ``CLOSED``
    from either of the others.
    """

    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


# The states as module globals for the hot methods: on Python 3.11 every
# ``ConnState.X`` goes through ``EnumType.__getattr__`` and is never
# specialised (~700 instructions a use against ~10 for a global).
_OPEN = ConnState.OPEN
_CLOSING = ConnState.CLOSING
_CLOSED = ConnState.CLOSED

# The payload of close()'s default close frame (1000, no reason), made once.
_NORMAL_CLOSE_PAYLOAD = format_close_message(CLOSE_NORMAL_CLOSURE)


class Conn:
    """A WebSocket connection (gorilla's ``Conn``).

    Create one with :class:`gorillaws.Upgrader` (server) or
    :class:`gorillaws.Dialer` (client); the constructor is for those and for
    tests that run over an already connected socket (e.g. ``socket.socketpair()``).

    :param sock: the connected socket, after the handshake.
    :param is_server: True on the server side (clients mask their frames and
        servers must not; each side rejects the other's mistakes with 1002).
    :param subprotocol: the negotiated subprotocol ("" for none).
    :param read_buffer_size: size of the reusable receive buffer.
    :param write_buffer_size: largest frame :meth:`next_writer` sends before
        splitting a message into fragments.
    :param write_buffer_pool: optional :class:`BufferPool` for writer buffers.
    :param initial_data: bytes that arrived after the handshake's HTTP head.
    :param compression: the negotiated permessage-deflate codec
        (:class:`gorillaws.deflate.PerMessageDeflate`) or None.
    :param close_timeout: how long :meth:`close` waits for the peer's close frame.
    :param resource_name: the request target of the opening handshake (path
        and query), see :attr:`resource_name`.
    :param origin: the handshake's ``Origin`` header, or None; see :attr:`origin`.
    :param addrs: ``(local, peer)`` addresses already read with
        :func:`socket_addresses`; None reads them here.
    :param io: the :class:`gorillaws.transport.SocketIO` the handshake used
        on ``sock``, taken over instead of making a second one; None makes one.
    """

    # Our attributes live in slots: with 61 of them in the instance dict,
    # every Conn would build a full dict of its own (CPython shares the keys
    # of instance dicts only up to 30 attributes), ~15k instructions per
    # handshake on each side.  "__dict__" keeps attributes an application
    # sets on a Conn working; that dict is made only when one is set.  An
    # attribute of ours must be named here (tests/test_conn_close_path.py
    # checks every assignment in this module).
    __slots__ = (
        "__weakref__",
        "__dict__",
        # the socket, the handshake's results, settings
        "_sock", "_io", "_addrs", "is_server", "_subprotocol", "_resource_name", "_origin",
        "close_timeout", "_compression", "_write_compress",
        # reading
        "_rbuf_size", "_rbuf", "_rview", "_large_frames", "_rpos", "_rend", "_read_lock",
        "_read_deadline", "_read_deadline_past", "_read_limit", "_msg_limit", "_max_fragments",
        "_msg_frames", "_read_err", "_frame_remaining", "_frame_mask", "_frame_mask_pos",
        "_frame_fin", "_msg_type", "_msg_compressed", "_msg_size", "_msg_utf8", "_msg_partial",
        "_pending_out", "_reader", "_ping_handler", "_pong_handler", "_close_handler",
        "_read_done", "_read_done_ev", "_reading_thread", "_close_status", "_awaited_pongs",
        # writing
        "_msg_lock", "_send_lock", "_writer", "_writer_owner", "_write_deadline",
        "_write_deadline_past", "_write_err", "_close_sent", "_close_initiator",
        "write_buffer_size", "_pool", "_mask_pool", "_mask_pos",
        # the lifecycle
        "_state", "_state_lock", "_abort_reason", "_lingering", "_keepalive",
    )

    def __init__(
        self,
        sock: socket.socket,
        *,
        is_server: bool,
        subprotocol: str = "",
        read_buffer_size: int = DEFAULT_BUFFER_SIZE,
        write_buffer_size: int = DEFAULT_BUFFER_SIZE,
        write_buffer_pool: Optional[BufferPool] = None,
        initial_data: bytes = b"",
        compression: Optional[PerMessageDeflate] = None,
        close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
        resource_name: str = "",
        origin: Optional[str] = None,
        addrs: Optional[Tuple[SockAddr, Optional[SockAddr]]] = None,
        io: Optional[SocketIO] = None,
    ) -> None:
        self._sock = sock
        self._io = io if io is not None else SocketIO(sock)
        # Kept, as Go's net.Conn does: asking a closed socket would raise.
        self._addrs = addrs if addrs is not None else socket_addresses(sock)
        self.is_server = is_server
        self._subprotocol = subprotocol
        self._resource_name = resource_name
        self._origin = origin
        self.close_timeout = close_timeout
        # Any inside: the write paths check _write_compress, not None-ness.
        self._compression: Any = compression
        self._write_compress = compression is not None
        try:
            # TCP only; other sockets (AF_UNIX pairs) refuse with OSError.
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass

        # --- reading state (guarded by _read_lock) ---
        # The buffer itself is made by the first read that has to wait for
        # bytes, once they are there (see _fill): a connection that stays
        # idle from its handshake on holds none.
        self._rbuf_size = max(int(read_buffer_size or DEFAULT_BUFFER_SIZE), 256)
        self._rbuf = bytearray(max(self._rbuf_size, len(initial_data)) if initial_data else 0)
        self._rview = memoryview(self._rbuf)
        self._rbuf[: len(initial_data)] = initial_data
        self._large_frames = 0  # frames read around the buffer (see _LARGE_FRAMES_TO_GROW)
        self._rpos = 0
        self._rend = len(initial_data)
        self._read_lock = threading.Lock()
        self._read_deadline: Optional[float] = None
        self._read_deadline_past = False  # it was already past when set
        self._read_limit = DEFAULT_READ_LIMIT
        self._msg_limit = DEFAULT_READ_LIMIT  # the limit of the message being read
        self._max_fragments = DEFAULT_MAX_FRAGMENTS
        self._msg_frames = 0  # frames of the message being read
        self._read_err: Optional[BaseException] = None
        self._frame_remaining = 0
        self._frame_mask: Optional[bytes] = None
        self._frame_mask_pos = 0
        self._frame_fin = True
        self._msg_type = 0  # 0: between messages
        self._msg_compressed = False
        self._msg_size = 0
        self._msg_utf8: Optional[Utf8Validator] = None
        self._msg_partial: Optional[bytearray] = None  # read_message's resumable buffer
        self._pending_out = b""  # decompressed bytes not yet handed out
        self._reader: Optional[MessageReader] = None
        # None: the default handler.  (Storing the bound default methods
        # would make every Conn a reference cycle, freed only by the cyclic
        # garbage collector instead of when the last reference goes.)
        self._ping_handler: Optional[PingHandler] = None
        self._pong_handler: Optional[PongHandler] = None
        self._close_handler: Optional[CloseHandler] = None
        # No more frames will be read: a flag, and an Event made only when
        # close() has to wait for another thread's reader (_read_done_event).
        self._read_done = False
        self._read_done_ev: Optional[threading.Event] = None
        # The thread that last started a read: close() leaves the peer's
        # remaining messages to it instead of discarding them.
        self._reading_thread: Optional[threading.Thread] = None
        self._close_status: Tuple[int, str] = (0, "")
        self._awaited_pongs: Dict[bytes, threading.Event] = {}

        # --- writing state ---
        self._msg_lock = threading.Lock()  # one message writer at a time
        self._send_lock = threading.Lock()  # one frame on the wire at a time
        self._writer: Optional[MessageWriter] = None
        self._writer_owner = 0
        self._write_deadline: Optional[float] = None
        self._write_deadline_past = False  # it was already past when set
        self._write_err: Optional[BaseException] = None
        self._close_sent = False  # no data frame may follow ours
        # Who sent the first close frame: "local" (us), "peer", or None.
        self._close_initiator: Optional[str] = None
        self.write_buffer_size = max(int(write_buffer_size or DEFAULT_BUFFER_SIZE), 128)
        self._pool = write_buffer_pool
        self._mask_pool = b""
        self._mask_pos = 0

        # The lifecycle, forward only (see ConnState); moves under _state_lock.
        self._state = _OPEN
        self._state_lock = threading.Lock()
        self._abort_reason = ""
        self._lingering = False
        self._keepalive: Optional[_Keepalive] = None

    # ------------------------------------------------------------------
    # Properties and simple accessors
    # ------------------------------------------------------------------

    def subprotocol(self) -> str:
        """The negotiated subprotocol, or "" when none was agreed."""
        return self._subprotocol

    def underlying_conn(self) -> socket.socket:
        """The socket under the connection (gorilla's ``UnderlyingConn``/``NetConn``).

        Reading or writing it directly corrupts the WebSocket stream.
        """
        return self._sock

    def local_addr(self) -> SockAddr:
        """The local address of the socket (``socket.getsockname()``), also after it closed."""
        return self._addrs[0]

    def remote_addr(self) -> Optional[SockAddr]:
        """The peer's address (``socket.getpeername()``), also after the socket closed.

        None if the peer was already gone when the connection was made.
        """
        return self._addrs[1]

    @property
    def compression(self) -> Optional[PerMessageDeflate]:
        """The negotiated permessage-deflate codec, or None."""
        return self._compression  # type: ignore[no-any-return]

    @property
    def resource_name(self) -> str:
        """Path and query the opening handshake asked for, e.g. ``"/chat?room=1"`` (seehuhn's ``ResourceName``).

        The server's request target; on a client, the target it sent.  ""
        for a Conn built directly on a socket.
        """
        return self._resource_name

    @property
    def origin(self) -> Optional[str]:
        """The ``Origin`` header of the opening handshake, or None (seehuhn's ``Origin``).

        On a server, what the client sent (browsers always send one); on a
        client, what it sent in ``request_header``.
        """
        return self._origin

    @property
    def protocol(self) -> str:
        """The negotiated subprotocol, "" for none (seehuhn's ``Protocol``; :meth:`subprotocol`)."""
        return self._subprotocol

    @property
    def closed(self) -> bool:
        """True once the socket has been closed (:attr:`state` is ``CLOSED``)."""
        return self._state is _CLOSED

    @property
    def state(self) -> ConnState:
        """Where the connection is in its life: open, closing or closed (see :class:`ConnState`)."""
        return self._state

    @property
    def close_initiator(self) -> Optional[str]:
        """Who started the close handshake: ``"local"``, ``"peer"``, or None.

        None while no close frame was sent or received, including when the
        connection ended without one (:meth:`close_now`, a reset).
        """
        return self._close_initiator

    def _start_closing(self, initiator: str) -> None:
        """A close frame was sent (``"local"``) or received (``"peer"``): OPEN -> CLOSING."""
        if self._close_initiator is not None and self._state is not _OPEN:
            # Nothing left to move (the peer's close after ours, usually).
            # Both only ever move forward, so reading them unlocked is safe.
            return
        with self._state_lock:
            if self._close_initiator is None:
                self._close_initiator = initiator
            if self._state is _OPEN:
                self._state = _CLOSING

    def __enter__(self) -> "Conn":
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """Close the connection at the end of a ``with`` block.

        With 1000, or, when the block raised, with the code
        :func:`close_code_for` maps the exception to (1011 for a crash).
        """
        code = close_code_for(exc) if exc is not None else None
        self.close(CLOSE_NORMAL_CLOSURE if code is None else code)

    def __repr__(self) -> str:
        role = "server" if self.is_server else "client"
        state = "" if self._state is ConnState.OPEN else f" {self._state.value}"
        return f"<gorillaws.Conn {role} peer={self._addrs[1]!r}{state}>"

    # ------------------------------------------------------------------
    # Deadlines and limits
    # ------------------------------------------------------------------

    def set_read_deadline(self, t: Optional[float]) -> None:
        """Set the read deadline: a :func:`time.monotonic` time, or None for none.

        It applies to the read calls that follow and to a read in progress
        from its next wait.  See the module docs for which timeouts are fatal.
        A time in the past is legal: the next read fails at once (Go code sets
        one to stop reading; it does not wake a read blocked without a
        deadline: :meth:`close_now` does).  A deadline further ahead than
        ``poll()`` can wait is waited for in steps.  Raises :class:`ValueError` for a value that
        cannot be a monotonic time (``time.time() + 1`` is one) and
        :class:`TypeError` for one that is not a number.  Thread-safe.
        """
        t = check_deadline(t, "read deadline")
        self._read_deadline_past = t is not None and t <= time.monotonic()
        self._read_deadline = t

    def set_write_deadline(self, t: Optional[float]) -> None:
        """Set the write deadline: a :func:`time.monotonic` time, or None for none.

        A write that passes it raises :class:`DeadlineExceeded` and leaves
        writing unusable (later writes raise the same error), as in gorilla.
        Raises like :meth:`set_read_deadline`.  Thread-safe.
        """
        t = check_deadline(t, "write deadline")
        self._write_deadline_past = t is not None and t <= time.monotonic()
        self._write_deadline = t

    def set_read_limit(self, limit: int) -> None:
        """Set the largest message (after decompression) the reader accepts.

        The default is :data:`DEFAULT_READ_LIMIT` (1 MiB); ``0`` or a negative
        number means no limit (gorilla's default).  A larger message closes
        the connection with 1009 and raises :class:`ErrReadLimit`.
        """
        self._read_limit = int(limit)

    def read_limit(self) -> int:
        """The current read limit (<= 0: none)."""
        return self._read_limit

    def set_max_fragments(self, n: int) -> None:
        """Set the largest number of frames one incoming message may have.

        The default is :data:`DEFAULT_MAX_FRAGMENTS` (100,000); ``0`` or a
        negative number means no cap.  A message with more frames (e.g. a
        peer sending empty continuation frames forever) closes the connection
        with 1009 and raises :class:`ErrReadLimit`.  Call it from the reading
        thread or before reading starts.
        """
        self._max_fragments = int(n)

    def max_fragments(self) -> int:
        """The current cap on frames per message (<= 0: none)."""
        return self._max_fragments

    # ------------------------------------------------------------------
    # Handlers
    # ------------------------------------------------------------------

    def set_ping_handler(self, h: Optional[PingHandler]) -> None:
        """Set the function called with the payload of each ping received.

        None restores the default, which answers with a pong carrying the
        same payload.  Handlers run in the reading thread, inside read calls;
        an exception they raise is raised by that read.
        """
        self._ping_handler = h or None

    def ping_handler(self) -> PingHandler:
        """The current ping handler."""
        return self._ping_handler or self._default_ping_handler

    def set_pong_handler(self, h: Optional[PongHandler]) -> None:
        """Set the function called with the payload of each pong received (default: nothing)."""
        self._pong_handler = h or None

    def pong_handler(self) -> PongHandler:
        """The current pong handler."""
        return self._pong_handler or self._default_pong_handler

    def set_close_handler(self, h: Optional[CloseHandler]) -> None:
        """Set the function called with ``(code, text)`` when a close frame arrives.

        None restores the default, which sends a close frame back with the
        same code (the close handshake).  After the handler returns, the read
        raises :class:`CloseError`.
        """
        self._close_handler = h or None

    def close_handler(self) -> CloseHandler:
        """The current close handler."""
        return self._close_handler or self._default_close_handler

    def _default_ping_handler(self, data: bytes) -> None:
        try:
            self.write_control(PONG_MESSAGE, data, time.monotonic() + _HANDLER_WRITE_WAIT)
        except (ErrCloseSent, DeadlineExceeded, OSError):
            pass

    def _default_pong_handler(self, data: bytes) -> None:
        return None

    def _default_close_handler(self, code: int, text: str) -> None:
        payload = _NORMAL_CLOSE_PAYLOAD if code == CLOSE_NORMAL_CLOSURE else format_close_message(code)
        try:
            # (The payload is made here, so write_control's checks are skipped.)
            self._send_control(CLOSE_MESSAGE, payload, time.monotonic() + _HANDLER_WRITE_WAIT, False)
        except (ErrCloseSent, DeadlineExceeded, OSError):
            pass

    # ------------------------------------------------------------------
    # Reading: buffer management
    # ------------------------------------------------------------------

    def _fill(self, need: int, frame_started: bool) -> None:
        """Make at least ``need`` bytes available at ``_rpos``.

        ``frame_started`` says whether bytes of the current frame were already
        consumed, which decides whether a deadline here is fatal.
        """
        if self._rend - self._rpos >= need:
            return
        if self._rpos:
            n = self._rend - self._rpos
            if n:
                self._rbuf[:n] = self._rview[self._rpos : self._rend]
            self._rpos = 0
            self._rend = n
        if need > len(self._rbuf):
            if not self._rend and not self._io.nonblocking:
                # No buffer yet (the connection's first read): wait for its
                # bytes before making one.  Past the deadline, _recv says so.
                # (TLS skips this: OpenSSL may already hold the bytes.)
                try:
                    self._io._wait(False, self._read_deadline)
                except (OSError, ValueError):
                    pass  # a closed socket: the receive below reports it
            # A new buffer: the old one is exported to self._rview and
            # cannot be resized in place.
            grown = bytearray(max(need, self._rbuf_size))
            grown[: self._rend] = self._rview[: self._rend]
            self._rbuf = grown
            self._rview = memoryview(grown)
        while self._rend < need:
            n = self._recv(self._rview[self._rend :], frame_started or self._rend > 0)
            self._rend += n

    def _recv(self, view: memoryview, fatal: bool) -> int:
        """One receive; raises CloseError(1006) on EOF and DeadlineExceeded on time-out."""
        try:
            deadline = self._read_deadline
            if deadline is None and not self._io.nonblocking:
                n = self._io.sock.recv_into(view)  # SocketIO.recv_into's own first case, one call less
            else:
                n = self._io.recv_into(view, deadline)
        except socket.timeout:
            raise DeadlineExceeded(_deadline_text("read", self._read_deadline_past), fatal=fatal) from None
        except OSError as e:
            # The connection is gone (reset, closed locally, TLS failure):
            # report it the way an EOF is reported, as gorilla's 1006.
            raise self._connection_lost(e) from e
        if n == 0:
            raise self._connection_lost(None)
        return n

    def _connection_lost(self, e: Optional[OSError]) -> ConnectionClosedError:
        """The error for a socket that failed with ``e`` (None: reached EOF)."""
        if self._abort_reason:
            reason = self._abort_reason
        elif self._state is ConnState.CLOSED:
            reason = "connection closed"
        elif e is None:
            reason = "unexpected EOF"
        else:
            reason = str(e) or type(e).__name__
        return ConnectionClosedError(reason, None if e is None else e.errno)

    def _read_exact(self, n: int) -> bytes:
        """Read exactly ``n`` bytes of the current frame through the buffer."""
        self._fill(n, True)
        start = self._rpos
        self._rpos = start + n
        return bytes(self._rview[start : start + n])

    # ------------------------------------------------------------------
    # Reading: frames
    # ------------------------------------------------------------------

    def _check_readable(self) -> None:
        if self._read_err is not None:
            raise self._read_err

    def _set_read_done(self) -> None:
        # Flag first, then look for an Event: _read_done_event() creates the
        # Event and then checks the flag, so one of the two always sets it.
        self._read_done = True
        ev = self._read_done_ev
        if ev is not None:
            ev.set()

    def _read_done_event(self) -> threading.Event:
        """An Event set once no more frames will be read (made on first use)."""
        with self._state_lock:
            ev = self._read_done_ev
            if ev is None:
                ev = self._read_done_ev = threading.Event()
            if self._read_done:
                ev.set()
            return ev

    def _read_failed(self, exc: BaseException) -> None:
        """Record a read error; fail the connection if it was the peer's fault."""
        if isinstance(exc, DeadlineExceeded) and not exc.fatal:
            return
        if self._read_err is None:
            if isinstance(exc, Exception):
                self._read_err = exc  # ours, or a handler's (gorilla returns those as they are)
            else:
                # KeyboardInterrupt and the like propagate this once; later
                # reads raise an error of the family saying what broke the stream.
                err = ConnectionClosedError(f"websocket: a read was cut off by {type(exc).__name__}")
                err.__cause__ = exc
                self._read_err = err
        self._set_read_done()
        if isinstance(exc, ProtocolError):
            self._fail_with(exc)  # the peer's fault: tell it why

    def _out_of_memory(self, exc: MemoryError) -> ErrReadLimit:
        """The error a read raises when its message does not fit in memory.

        Recorded as the read error and answered with close 1009, as a
        message over the read limit is: a MemoryError never escapes a read.
        """
        err = ErrReadLimit("websocket: message too big for the available memory")
        err.__cause__ = exc
        self._read_failed(err)
        return err

    def _next_data_frame(self, limit: Optional[int] = None) -> int:
        """Read frames until the header of a data frame; return its opcode.

        Control frames met on the way are handled (handlers run here).  A
        new message takes ``limit`` as its size limit (None: the read limit).
        """
        while True:
            if self._rend - self._rpos < 2:
                # An empty buffer (every message of a ping-pong): receive
                # before parsing, rather than parse nothing first.
                self._fill(2, False)
            hdr = parse_header(self._rbuf, self._rpos, self._rend)
            while hdr is None:
                self._fill(self._rend - self._rpos + 1, False)
                hdr = parse_header(self._rbuf, self._rpos, self._rend)
            self._rpos += hdr.size
            opcode = hdr.opcode
            if (hdr.mask is None) == self.is_server:
                raise ProtocolError(
                    "websocket: client frame not masked" if self.is_server else "websocket: server frame masked"
                )
            if hdr.rsv:
                if not (hdr.rsv == frames.RSV1 and self._compression is not None and opcode in (1, 2)):
                    raise ProtocolError("websocket: reserved bits set without a negotiated extension")
            if opcode >= 8:
                payload = self._read_exact(hdr.length) if hdr.length else b""
                if hdr.mask is not None and payload:
                    payload = apply_mask(payload, hdr.mask)
                self._handle_control(opcode, payload)
                continue
            if opcode == CONTINUATION_FRAME:
                if not self._msg_type:
                    raise ProtocolError("websocket: continuation frame without a message to continue")
                self._msg_frames += 1
                cap = self._max_fragments
                if cap > 0 and self._msg_frames > cap:
                    raise ErrReadLimit(f"websocket: message in more than {cap} fragments")
            else:
                if self._msg_type:
                    raise ProtocolError("websocket: new data message before the previous one ended")
                self._msg_type = opcode
                self._msg_frames = 1
                self._msg_size = 0
                self._msg_limit = self._read_limit if limit is None else limit
                self._msg_compressed = bool(hdr.rsv)
                self._msg_utf8 = Utf8Validator() if opcode == TEXT_MESSAGE else None
                if self._msg_compressed:
                    self._compression.start_decompress()
            cap = self._msg_limit
            if cap > 0 and not self._msg_compressed and self._msg_size + hdr.length > cap:
                raise ErrReadLimit()
            self._frame_remaining = hdr.length
            self._frame_mask = hdr.mask
            self._frame_mask_pos = 0
            self._frame_fin = hdr.fin
            return opcode

    def _handle_control(self, opcode: int, payload: bytes) -> None:
        if opcode == PING_MESSAGE:
            (self._ping_handler or self._default_ping_handler)(payload)
        elif opcode == PONG_MESSAGE:
            ev = self._awaited_pongs.pop(payload, None)
            if ev is not None:
                ev.set()
            if self._keepalive is not None:
                self._keepalive.pong_seen()
            (self._pong_handler or self._default_pong_handler)(payload)
        else:
            code, text = parse_close_payload(payload)
            self._close_status = (code, text)
            self._start_closing("peer")
            if not self._close_sent:
                (self._close_handler or self._default_close_handler)(code, text)
            self._set_read_done()
            if self.is_server and self._close_sent:
                # The close handshake is complete; RFC 6455 7.1.1 has the
                # server end the TCP connection first, so the client is not
                # left waiting on an application that never calls close().
                # It shuts down its side and drains (bounded) until the
                # client's EOF: closing
                # with unread bytes (a frame sent after the client's close)
                # makes the kernel send a reset that can destroy our close
                # frame before the client reads it (conformance 7.1.6).
                self._linger_and_close(min(1.0, self.close_timeout))
            raise CloseError(code, text)

    def _read_frame_payload(self, limit: int) -> bytes:
        """Read up to ``limit`` bytes of the current frame's payload, unmasked.

        The text of an uncompressed message goes to its UTF-8 validator as
        the bytes arrive, in frames of any size, so a bad byte fails the read
        at once (Autobahn 6.4.x), not when the frame is complete.  For that
        a small text read returns what has arrived (at least one byte); any
        other read returns ``min(limit, bytes left in the frame)`` bytes.
        """
        n = min(limit, self._frame_remaining)
        avail = self._rend - self._rpos
        mask = self._frame_mask
        utf8 = None if self._msg_compressed else self._msg_utf8
        if n > avail and (n >= _DIRECT_READ_MIN or n > len(self._rbuf)):
            data = self._read_direct(n, utf8)
            if n <= _LARGE_READ_BUFFER and len(self._rbuf) < _LARGE_READ_BUFFER:
                self._large_frames += 1
                if self._large_frames >= _LARGE_FRAMES_TO_GROW and self._rpos == self._rend:
                    # Empty (the direct read took what it held): swap it.
                    self._rbuf = bytearray(_LARGE_READ_BUFFER)
                    self._rview = memoryview(self._rbuf)
                    self._rpos = self._rend = 0
        else:
            if n > avail:
                if utf8 is None:
                    self._fill(n, True)
                else:
                    if not avail:
                        self._fill(1, True)
                    n = min(n, self._rend - self._rpos)
            start = self._rpos
            self._rpos = start + n
            if mask is None:
                data = bytes(self._rview[start : start + n])
            else:
                data = apply_mask(self._rview[start : start + n], mask, self._frame_mask_pos)
            if utf8 is not None:
                utf8.feed(data, self._frame_fin and n == self._frame_remaining)
        # _frame_consumed(n), inline: this is every small message's path.
        self._frame_remaining -= n
        if mask is not None:
            self._frame_mask_pos = (self._frame_mask_pos + n) & 3
        return data

    def _read_compressed_piece(self) -> Union[bytes, bytearray]:
        """What has arrived of the current (compressed) frame's payload, unmasked.

        At most ``_COMPRESSED_CHUNK`` bytes, at least one: what the read
        buffer holds, else one receive.  Inflating what has arrived, rather
        than waiting for a full chunk, lets the checks on the inflated bytes
        (UTF-8, the read limit) act as soon as the peer sends them.
        """
        n = min(_COMPRESSED_CHUNK, self._frame_remaining)
        if self._rend == self._rpos:
            if n <= len(self._rbuf):
                self._fill(1, True)
            else:
                # One receive straight into the piece (no pass through the buffer).
                piece = bytearray(n)
                with memoryview(piece) as view:
                    k = self._recv(view, True)
                    if self._frame_mask is not None:
                        apply_mask_inplace(view[:k], self._frame_mask, self._frame_mask_pos)
                del piece[k:]
                self._frame_consumed(k)
                return piece
        return self._read_frame_payload(min(n, self._rend - self._rpos))

    def _frame_consumed(self, n: int) -> None:
        """Account for ``n`` payload bytes of the current frame handed out."""
        self._frame_remaining -= n
        if self._frame_mask is not None:
            self._frame_mask_pos = (self._frame_mask_pos + n) & 3

    def _read_direct(self, n: int, utf8: Optional[Utf8Validator]) -> bytes:
        """Receive ``n`` payload bytes straight into the bytes object returned.

        Used for payloads too large for the read buffer to be worth it.  Up
        to ``_UPFRONT_MAX`` bytes, ``io.BufferedReader.read(n)`` allocates
        the result and has :class:`_PayloadSource` receive (unmask, check)
        into it: one allocation, no copy.  Beyond, the header alone must not
        make us reserve the memory: the buffer grows as the bytes arrive.
        """
        src = _PayloadSource(self, n, self._frame_mask, self._frame_mask_pos, utf8)
        data = io.BufferedReader(src, 1).read(n) if n <= _UPFRONT_MAX else _receive_growing(src, n)
        if len(data) != n:  # pragma: no cover - _PayloadSource raises instead of EOF
            raise CloseError(CLOSE_ABNORMAL_CLOSURE, "unexpected EOF")
        if utf8 is not None and self._frame_fin and n == self._frame_remaining:
            utf8.feed(b"", True)
        return data

    def _read_chunk(self, size: int) -> bytes:
        """The next piece of the current message (b"" at its end), checked and decompressed.

        Called with the read lock held, while a message is being read.
        """
        while True:
            if self._pending_out:
                out = self._pending_out[:size] if size >= 0 else self._pending_out
                self._pending_out = self._pending_out[len(out) :]
                return out
            if not self._frame_remaining and not self._frame_fin:
                self._next_data_frame_in_message()
                continue
            utf8 = self._msg_utf8
            if self._msg_compressed:
                piece = self._read_compressed_piece() if self._frame_remaining else b""
                final = self._frame_fin and not self._frame_remaining
                data = self._decompress(piece, final)
                if utf8 is not None:
                    utf8.feed(data, final)
            elif self._frame_remaining:
                # Text is checked inside, as it arrives.
                data = self._read_frame_payload(size if size > 0 else self._frame_remaining)
                final = self._frame_fin and not self._frame_remaining
                self._msg_size += len(data)
            else:  # the end of the final frame
                data = b""
                final = True
                if utf8 is not None:
                    utf8.feed(data, True)  # the message may end inside a character
            if final:
                self._msg_type = 0
                self._msg_compressed = False
                self._msg_utf8 = None
            if not data and not final:
                continue
            if size >= 0 and len(data) > size:
                self._pending_out = data[size:]
                data = data[:size]
            return data

    def _next_data_frame_in_message(self) -> None:
        if self._next_data_frame() != CONTINUATION_FRAME:  # pragma: no cover - checked inside
            raise ProtocolError("websocket: expected a continuation frame")

    def _decompress(self, data: Union[bytes, bytearray], final: bool) -> bytes:
        limit = self._msg_limit
        left = limit - self._msg_size if limit > 0 else -1
        codec = self._compression
        out: bytes = codec.decompress(data, left) if data else b""
        if final:
            left2 = left - len(out) if left >= 0 else -1
            out += codec.finish_decompress(left2)
        self._msg_size += len(out)
        return out

    def _start_message(self, limit: Optional[int] = None) -> int:
        """Skip the rest of any unfinished message, then read up to the next one (``limit``: its size limit)."""
        if self._reader is not None:
            self._reader._conn = None
            self._reader = None
        if self._msg_partial is not None:
            # A read_message interrupted by a non-fatal deadline resumes.
            return self._msg_type
        while self._msg_type:
            self._read_chunk(-1)
        return self._next_data_frame(limit)

    # ------------------------------------------------------------------
    # Reading: public API
    # ------------------------------------------------------------------

    def next_reader(self) -> Tuple[MessageType, "MessageReader"]:
        """Wait for the next data message; return ``(message_type, reader)``.

        ``reader`` is a file-like object (``read``, ``readinto``) over that
        message's payload, across its fragments; it reads b"" at the end.
        Calling ``next_reader`` again discards what is left of the previous
        message.  Raises :class:`CloseError` when the peer closed,
        :class:`ProtocolError` (after sending the matching close frame) when
        it broke the protocol, :class:`DeadlineExceeded` at the read deadline.

        Thread-safety: one reader at a time; a concurrent call waits.
        """
        with self._read_lock:
            self._reading_thread = threading.current_thread()
            self._check_readable()
            try:
                if self._msg_partial is not None:
                    self._msg_partial = None
                    while self._msg_type:
                        self._read_chunk(-1)
                mt = self._start_message()
            except MemoryError as e:
                raise self._out_of_memory(e) from e
            except BaseException as e:
                self._read_failed(e)
                raise
            message_type = _DATA_MESSAGE_TYPES[mt - 1]
            reader = MessageReader(self, message_type)
            self._reader = reader
            return message_type, reader

    def read_message(self) -> Tuple[MessageType, bytes]:
        """Read one whole data message: ``(message_type, payload)``.

        ``message_type`` is :attr:`MessageType.TEXT` or
        :attr:`MessageType.BINARY` (equal to ``TEXT_MESSAGE``/``BINARY_MESSAGE``).

        The payload is bytes for text messages too (validated UTF-8), as in
        gorilla; see :meth:`receive_text` for str.  Raises like
        :meth:`next_reader`; a message over the read limit raises
        :class:`ErrReadLimit` after closing with 1009.

        Thread-safety: one reader at a time; a concurrent call waits.
        """
        return self._read_message(None)

    def _read_message(self, limit: Optional[int]) -> Tuple[MessageType, bytes]:
        """:meth:`read_message` with ``limit`` for the message (None: the read limit)."""
        with self._read_lock:
            self._reading_thread = threading.current_thread()
            if self._read_err is not None:  # _check_readable, inline
                raise self._read_err
            try:
                if self._reader is None and self._msg_partial is None and not self._msg_type:
                    # Between messages.  First the fast path: a whole message
                    # in one frame that the read buffer holds (after one
                    # receive into an empty buffer), parsed, checked, unmasked
                    # and, for text, validated by one parse_frame call.
                    # Anything else (a control frame, fragments, RSV bits, an
                    # error to report) is left where it is for the general
                    # path below, which reads it as it always has.
                    if self._rbuf:
                        taken = self._fast_message(self._read_limit if limit is None else limit)
                        if taken is not None:
                            return taken
                    mt = self._next_data_frame(limit)  # _start_message with nothing to skip
                else:
                    mt = self._start_message(limit)
                partial = self._msg_partial
                if (
                    partial is None
                    and self._frame_fin
                    and not self._msg_compressed
                    and (
                        self._msg_utf8 is None
                        or self._frame_remaining <= self._rend - self._rpos
                        or self._frame_remaining >= _DIRECT_READ_MIN
                    )
                ):
                    # Fast path: a message in one uncompressed frame.
                    # Text is checked as it arrives (_read_frame_payload).
                    data = self._read_frame_payload(self._frame_remaining) if self._frame_remaining else b""
                    self._msg_size = len(data)
                    self._msg_utf8 = None
                    self._msg_type = 0
                    return _DATA_MESSAGE_TYPES[mt - 1], data if type(data) is bytes else bytes(data)
                if partial is None:
                    partial = self._msg_partial = bytearray()
                while True:
                    chunk = self._read_chunk(-1)
                    if chunk:
                        partial += chunk
                    if not self._msg_type:
                        break
                self._msg_partial = None
                return _DATA_MESSAGE_TYPES[mt - 1], bytes(partial)
            except MemoryError as e:
                self._msg_partial = None
                raise self._out_of_memory(e) from e
            except BaseException as e:
                if not (isinstance(e, DeadlineExceeded) and not e.fatal):
                    self._msg_partial = None
                self._read_failed(e)
                raise

    def _fast_message(self, limit: int) -> Optional[Tuple[MessageType, bytes]]:
        """The next message if it is one frame that fits the read buffer, else None.

        Receives once when the buffer is empty (as ``_fill`` would: no byte
        of a frame consumed, so a read deadline there is not fatal), and
        waits for the rest of a binary frame whose header is there.  Returns
        None, having consumed nothing, for whatever :func:`frames.parse_frame`
        does not take; called with the read lock held, between messages.
        """
        pos = self._rpos
        if pos == self._rend:
            n = self._recv(self._rview, False)
            self._rpos = pos = 0
            self._rend = n
        r = parse_frame(self._rbuf, pos, self._rend, self.is_server, limit)
        if type(r) is int:
            if r > len(self._rbuf):
                return None  # the general path reads it around the buffer
            self._fill(r, True)
            r = parse_frame(self._rbuf, self._rpos, self._rend, self.is_server, limit)
        if type(r) is not tuple:
            return None
        opcode, data, size = r
        self._rpos += size
        return _DATA_MESSAGE_TYPES[opcode - 1], data

    def read_json(self) -> Any:
        """Read the next message and decode it as JSON (gorilla's ``ReadJSON``).

        Raises ``ValueError`` (``json.JSONDecodeError``) for a payload that is
        not JSON, and anything :meth:`read_message` raises.
        """
        _, data = self.read_message()
        return json.loads(data)

    def receive_text(self, max_length: int = -1) -> str:
        """Read a text message as str (seehuhn's ``ReceiveText``).

        A binary message raises :class:`ProtocolError` after closing with
        1003 (unsupported data); a message longer than ``max_length`` bytes
        (when >= 0) raises :class:`ErrReadLimit` after closing with 1009.
        """
        mt, data = self._receive_typed(TEXT_MESSAGE, max_length)
        return data.decode("utf-8")

    def receive_binary(self, buf: Union[bytearray, memoryview]) -> int:
        """Read a binary message into ``buf`` and return its length (seehuhn's ``ReceiveBinary``).

        A text message raises :class:`ProtocolError` after closing with 1003;
        a message longer than ``buf`` raises :class:`ErrReadLimit` after
        closing with 1009.
        """
        _, data = self._receive_typed(BINARY_MESSAGE, len(buf))
        memoryview(buf)[: len(data)] = data
        return len(data)

    def _receive_typed(self, want: int, max_length: int) -> Tuple[int, bytes]:
        limit = self._read_limit
        if max_length >= 0 and (limit <= 0 or max_length < limit):
            limit = max_length
        mt, data = self._read_message(limit)
        err: Optional[ProtocolError] = None
        if mt != want:
            kind = "text" if want == TEXT_MESSAGE else "binary"
            err = ProtocolError(f"websocket: expected a {kind} message", frames.CLOSE_UNSUPPORTED_DATA)
        elif max_length == 0 and data:
            # A read limit of 0 means "none", so an empty buffer is checked here.
            err = ErrReadLimit()
        if err is not None:
            with self._read_lock:
                self._read_failed(err)
            raise err
        return mt, data

    # ------------------------------------------------------------------
    # Writing
    # ------------------------------------------------------------------

    def _next_mask(self) -> bytes:
        # Masking keys come from the OS's strong random source (RFC 6455
        # 5.3), fetched in batches rather than one system call per frame.
        # The batch doubles from 64 bytes up to 4 KiB, so a short-lived
        # connection does not pay for generating 4 KiB it never uses.
        pos = self._mask_pos
        if pos + 4 > len(self._mask_pool):
            self._mask_pool = os.urandom(min(4096, max(64, 2 * len(self._mask_pool))))
            pos = 0
        self._mask_pos = pos + 4
        return self._mask_pool[pos : pos + 4]

    def _frame_bytes(self, opcode: int, payload: Buffer, fin: bool = True, rsv: int = 0) -> Tuple[bytes, Buffer]:
        """One frame as ``(header, payload)`` for :meth:`_send_frame`.

        A client's frame, and a server's small one, come whole in the first
        item (one :func:`frames.encode_frame` call: header and payload,
        masked for clients, in one buffer) with b"" after it; a server's
        large payload stays the caller's buffer, sent beside its header
        without a copy.
        """
        if not self.is_server:
            return encode_frame(opcode, payload, fin, rsv, self._next_mask()), b""
        if len(payload) < _GATHER_SEND_MIN:
            return encode_frame(opcode, payload, fin, rsv, None), b""
        return encode_header(opcode, len(payload), fin, rsv), payload

    def _send_frame(self, head: bytes, payload: Buffer, deadline: Optional[float], past: bool = False) -> None:
        """Put one frame on the wire (send lock held by caller).

        Whatever interrupts the send may have left part of the frame on the
        wire, after which any byte sent would be read as part of that frame:
        so every exception here fails writing for good.  Socket errors and
        the deadline become the sticky error itself; anything else
        (``KeyboardInterrupt``, ``MemoryError``, ...) propagates this once and
        leaves a :class:`ConnectionClosedError` for every later write.
        ``past``: the deadline was already past when it was set.
        """
        try:
            if not payload or len(payload) < _GATHER_SEND_MIN:  # (a whole frame in head: no len call)
                frame = head + payload if payload else head
                if deadline is None and not self._io.nonblocking:
                    self._io.sock.sendall(frame)  # SocketIO.sendall's own first case, one call less
                else:
                    self._io.sendall(frame, deadline)
            else:
                self._io.send_parts(head, payload, deadline)
        except socket.timeout:
            raise self._writes_failed(DeadlineExceeded(_deadline_text("write", past), fatal=True)) from None
        except OSError as e:
            raise self._writes_failed(self._connection_lost(e)) from e
        except BaseException as e:
            what = type(e).__name__
            self._writes_failed(ConnectionClosedError(f"websocket: a write was cut off mid-frame by {what}"), e)
            raise

    def _writes_failed(self, err: WebSocketError, cause: Optional[BaseException] = None) -> WebSocketError:
        """Make writing fail for good: ``err`` (cause ``cause``) becomes the sticky write error.

        The first failure wins; returns ``err`` for the caller to raise.
        """
        if cause is not None:
            err.__cause__ = cause
        if self._write_err is None:
            self._write_err = err
        return err

    def _acquire(self, lock: threading.Lock, deadline: Optional[float], past: bool = False) -> None:
        """Take a write lock by ``deadline``.

        At the deadline, raises the sticky write error when writing has
        failed (fatal), else a non-fatal :class:`DeadlineExceeded`: nothing
        was sent.
        """
        if deadline is None:
            lock.acquire()
            return
        # In clamped steps: a far deadline must not overflow the lock's wait.
        left = remaining(deadline)
        while left:
            if lock.acquire(timeout=left):
                return
            left = remaining(deadline)
        if self._write_err is not None:
            raise self._write_err
        raise DeadlineExceeded(_deadline_text("write", past, " waiting for the writer"), fatal=False)

    def _check_writable(self) -> None:
        if self._write_err is not None:
            raise self._write_err
        if self._close_sent:
            raise self._close_sent_error()
        if self._state is _CLOSED:
            raise self._writes_failed(self._connection_lost(None))

    def _close_sent_error(self) -> ErrCloseSent:
        """ErrCloseSent; when the peer started the close, naming its code and reason."""
        if self._close_initiator == "peer":
            code, text = self._close_status
            return ErrCloseSent(code=code, text=text)
        return ErrCloseSent()

    def write_message(self, message_type: int, data: Union[Buffer, str]) -> None:
        """Send one message (gorilla's ``WriteMessage``).

        ``data`` may be bytes-like, or str (encoded as UTF-8).  A control
        message type is sent with :meth:`write_control` under the write
        deadline.  Raises :class:`ErrCloseSent` after a close frame was sent,
        :class:`DeadlineExceeded` at the write deadline,
        :class:`~gorillaws.exceptions.ConnectionClosedError` (also an OSError)
        when the connection is lost.  Thread-safe: concurrent writers are serialized.
        """
        payload = data if type(data) is bytes else _byte_payload(data)  # type() narrows for every mypy
        if message_type >= 8:
            self.write_control(message_type, payload, self._write_deadline)
            return
        if message_type not in (TEXT_MESSAGE, BINARY_MESSAGE):
            raise ValueError(f"websocket: bad message type {message_type}")
        deadline = self._write_deadline
        if deadline is None and self._writer is None:
            # Fast path: no deadline, and no open writer this thread would
            # have to close first (the owner check only matters then).
            self._msg_lock.acquire()
        else:
            self._acquire_message_lock(deadline)
        try:
            if self._write_err is not None or self._close_sent:
                self._check_writable()
            rsv = 0
            codec = self._compression
            if codec is not None and self._write_compress and len(payload) >= codec.threshold:
                payload = self._compress_message(payload)
                rsv = frames.RSV1
            head, payload = self._frame_bytes(message_type, payload, True, rsv)
            send_lock = self._send_lock
            if deadline is None:
                send_lock.acquire()
            else:
                self._acquire(send_lock, deadline, self._write_deadline_past)
            try:
                self._send_frame(head, payload, deadline, self._write_deadline_past)
            finally:
                send_lock.release()
        finally:
            self._writer_owner = 0
            self._msg_lock.release()

    def _compress_message(self, payload: Buffer) -> bytes:
        """Compress a whole message; an interruption leaves no stale context behind."""
        codec = self._compression
        try:
            out: bytes = codec.compress_message(payload)
        except BaseException:
            # zlib may have taken the payload into its history although the
            # peer never sees it; later messages would refer to it.
            codec.reset_compressor()
            raise
        return out

    def _acquire_message_lock(self, deadline: Optional[float]) -> None:
        me = threading.get_ident()
        if self._writer_owner == me and self._writer is not None:
            # gorilla: a new writer closes the previous one of the same goroutine.
            self._writer.close()
        self._acquire(self._msg_lock, deadline, self._write_deadline_past)
        self._writer_owner = me

    def _release_message_lock(self) -> None:
        self._writer_owner = 0
        self._msg_lock.release()

    def write_json(self, v: Any) -> None:
        """Send ``v`` encoded as JSON in a text message (gorilla's ``WriteJSON``).

        Raises TypeError for values json cannot encode, and anything
        :meth:`write_message` raises.
        """
        self.write_message(TEXT_MESSAGE, json.dumps(v, separators=(",", ":")).encode("utf-8"))

    def send_text(self, msg: str) -> None:
        """Send a text message (seehuhn's ``SendText``)."""
        self.write_message(TEXT_MESSAGE, msg.encode("utf-8"))

    def send_binary(self, msg: Buffer) -> None:
        """Send a binary message (seehuhn's ``SendBinary``)."""
        self.write_message(BINARY_MESSAGE, msg)

    def next_writer(self, message_type: int) -> "MessageWriter":
        """Start a message; returns a writer whose ``close()`` sends its end.

        Writes are buffered up to ``write_buffer_size``; a message longer
        than that goes out as several fragments.  Only one message writer
        exists at a time: another thread calling ``next_writer`` or
        :meth:`write_message` waits until this writer is closed, and calling
        it again from the same thread closes this writer first (as gorilla).
        Any of the five message types is accepted, as in gorilla: a close,
        ping or pong message is sent by ``close()`` as one control frame
        (see :meth:`write_control`), so it must fit in 125 bytes.
        Raises :class:`ErrCloseSent` after a close frame was sent, ValueError
        for another message type.
        """
        if message_type not in _WRITER_TYPES:
            raise ValueError(f"websocket: bad message type {message_type} for next_writer")
        self._acquire_message_lock(self._write_deadline)
        try:
            self._check_writable()
        except BaseException:
            self._release_message_lock()
            raise
        w = MessageWriter(self, message_type)
        self._writer = w
        return w

    def write_control(self, message_type: int, data: Union[Buffer, str] = b"", deadline: Optional[float] = None) -> None:
        """Send a close, ping or pong frame (gorilla's ``WriteControl``).

        Safe to call from any thread at any time, even while another thread
        is in the middle of a fragmented message: the frame goes out between
        two fragments.  ``deadline`` (monotonic time, None: wait as long as
        needed) bounds both the wait for the connection and the send.
        After a close frame was sent, further frames raise :class:`ErrCloseSent`.
        Raises ValueError for payloads over 125 bytes.
        """
        data = _byte_payload(data)
        if message_type not in (CLOSE_MESSAGE, PING_MESSAGE, PONG_MESSAGE):
            raise ValueError(f"websocket: bad control message type {message_type}")
        if len(data) > frames.MAX_CONTROL_PAYLOAD:
            raise ValueError("websocket: control frame payload longer than 125 bytes")
        deadline = check_deadline(deadline)
        self._send_control(message_type, data, deadline, deadline is not None and deadline <= time.monotonic())

    def _send_control(self, opcode: int, data: Buffer, deadline: Optional[float], past: bool) -> None:
        """:meth:`write_control` once its arguments are checked (also :meth:`close`'s frame).

        ``past``: ``deadline`` was already past when given.
        """
        head, payload = self._frame_bytes(opcode, data)
        lock = self._send_lock
        # A free lock is taken at once, without the deadline arithmetic; a
        # past deadline still fails in _acquire without sending.
        if past or not lock.acquire(False):
            self._acquire(lock, deadline, past)
        try:
            self._check_writable()
            if opcode == CLOSE_MESSAGE:
                self._close_sent = True
                self._start_closing("local")
            self._send_frame(head, payload, deadline, past)
        finally:
            lock.release()

    def write_prepared_message(self, pm: "PreparedMessage") -> None:
        """Send a :class:`PreparedMessage` (gorilla's ``WritePreparedMessage``).

        The frame for this connection's options is computed once per message
        and reused for every connection with the same options.
        Raises like :meth:`write_message`.  Thread-safe.
        """
        codec = self._compression
        compress = codec is not None and self._write_compress and len(pm.data) >= codec.threshold
        if compress and codec.context_takeover_out:
            # Our compressor carries history across messages, so the frame
            # must go through it: a shared precompressed frame would
            # desynchronise the peer's window.
            self.write_message(pm.message_type, pm.data)
            return
        deadline = self._write_deadline
        self._acquire_message_lock(deadline)
        try:
            self._check_writable()
            head, data = self._prepared_frame(pm, compress)
            past = self._write_deadline_past
            self._acquire(self._send_lock, deadline, past)
            try:
                self._send_frame(head, data, deadline, past)
            finally:
                self._send_lock.release()
        finally:
            self._release_message_lock()

    def _prepared_frame(self, pm: "PreparedMessage", compress: bool) -> Tuple[bytes, Buffer]:
        """``pm``'s frame for this connection: (header, payload), or the whole server frame and b""."""
        codec = self._compression
        level = codec.level if compress else 0
        wbits = codec.out_window_bits if compress else 15
        if self.is_server:
            # The whole frame, shared by every server connection with these options.
            return pm._server_frame(compress, level, wbits), b""
        rsv, payload = pm._payload(compress, level, wbits)
        return self._frame_bytes(pm.message_type, payload, True, rsv)

    def write_prepared_messages(self, pms: "Sequence[PreparedMessage]") -> None:
        """Send several :class:`PreparedMessage` in order, small frames joined into one system call.

        For a hub or broadcaster with a backlog: the frames go out under one
        hold of the write locks, and frames smaller than 16 KiB are joined
        (up to 64 KiB at a time) and sent with one ``send`` instead of one
        per message.  Same errors as :meth:`write_prepared_message`; as with
        any write, a send that fails or times out part way (some of the
        messages may have reached the peer) fails writing for good.  With
        context-takeover compression each message goes through this
        connection's compressor, one after the other.  Thread-safe.
        """
        codec = self._compression
        if codec is not None and self._write_compress and codec.context_takeover_out:
            for pm in pms:
                self.write_prepared_message(pm)
            return
        threshold = codec.threshold if codec is not None and self._write_compress else -1
        deadline = self._write_deadline
        self._acquire_message_lock(deadline)
        try:
            self._check_writable()
            past = self._write_deadline_past
            self._acquire(self._send_lock, deadline, past)
            try:
                joined: List[Buffer] = []
                size = 0
                for pm in pms:
                    head, data = self._prepared_frame(pm, 0 <= threshold <= len(pm.data))
                    n = len(head) + len(data)
                    if n >= _GATHER_SEND_MIN or size + n > _JOINED_SEND_MAX:
                        if joined:
                            self._send_frame(b"".join(joined), b"", deadline, past)
                            joined, size = [], 0
                        if n >= _GATHER_SEND_MIN:
                            self._send_frame(head, data, deadline, past)
                            continue
                    joined.append(head)
                    if data:
                        joined.append(data)
                    size += n
                if joined:
                    self._send_frame(b"".join(joined), b"", deadline, past)
            finally:
                self._send_lock.release()
        finally:
            self._release_message_lock()

    def enable_write_compression(self, enable: bool) -> None:
        """Turn compression of the messages that follow on or off (when negotiated)."""
        self._write_compress = bool(enable)

    def set_compression_level(self, level: int) -> None:
        """Set the deflate level (-2..9) for the messages that follow.

        Raises ValueError outside that range.  Has no effect when compression
        was not negotiated.
        """
        from .deflate import MAX_COMPRESSION_LEVEL, MIN_COMPRESSION_LEVEL

        if not MIN_COMPRESSION_LEVEL <= level <= MAX_COMPRESSION_LEVEL:
            raise ValueError("websocket: invalid compression level")
        if self._compression is not None:
            self._compression.set_level(level)

    # ------------------------------------------------------------------
    # Closing
    # ------------------------------------------------------------------

    def _fail_with(self, exc: BaseException) -> None:
        """Fail the connection (RFC 6455 7.1.7) because of ``exc``: send a close frame, then drop the socket.

        The code is what :func:`close_code_for` maps ``exc`` to (the one
        place), the reason ``str(exc)`` cut to fit.  The socket's write side
        is shut down first and what the peer still sends is drained for a
        short while, so that our close frame is not destroyed by a TCP reset
        caused by unread data.
        """
        code = close_code_for(exc)
        if code is not None:
            reason = str(exc).encode("utf-8")[:100].decode("utf-8", "ignore")
            try:
                self.write_control(CLOSE_MESSAGE, format_close_message(code, reason), time.monotonic() + _HANDLER_WRITE_WAIT)
            except (WebSocketError, OSError, ValueError):
                pass
        self._linger_and_close(min(1.0, self.close_timeout))

    def _linger_and_close(self, linger: float, peer_closed: bool = False) -> None:
        with self._state_lock:
            # One thread lingers at a time (the reader that met the close
            # frame and a thread in close() may both get here); the other
            # returns, and the socket is closed within ``linger``.
            if self._state is _CLOSED or self._lingering:
                return
            self._lingering = True
        if peer_closed and not self._io.nonblocking:
            # The peer's close frame was read and the peer (a server, as
            # RFC 6455 7.1.1 asks) has probably ended TCP already.  If its
            # EOF is there, nothing is left unread, so closing at once sends
            # our FIN and cannot cause a reset: no shutdown and wait needed.
            try:
                at_eof = self._sock.recv(1, socket.MSG_DONTWAIT) == b""
            except (OSError, ValueError):
                at_eof = False
            if at_eof:
                self._close_socket(False)
                return
        eof = False
        try:
            self._sock.shutdown(socket.SHUT_WR)
            eof = self._io.drain(time.monotonic() + linger)
        except (OSError, ValueError):
            pass
        # After the peer's EOF and our own shutdown, a thread blocked on the
        # socket has been woken already: no need for shutdown(SHUT_RDWR).
        self._close_socket(not eof)

    def close(self, code: int = CLOSE_NORMAL_CLOSURE, reason: str = "") -> None:
        """Close the connection with the full close handshake.

        Sends a close frame with ``code`` and ``reason`` (unless one was sent
        already), waits up to :attr:`close_timeout` seconds for the peer's
        close frame, then closes the socket.  If another (live) thread has
        been reading the connection, that thread receives the remaining
        messages and then the peer's close frame (its read raises
        :class:`CloseError`), and this call waits for it; otherwise this
        call reads and discards incoming messages until the close frame
        arrives.
        Safe to call from any thread, and more than once.  gorilla's
        ``Close()`` (no close frame) is :meth:`close_now`.

        Raises ValueError for a ``code`` that may not be sent (RFC 6455
        7.4: 1004, 1006, 1015, unassigned 1016-2999, outside 1000-4999), as
        nhooyr's and seehuhn's ``Close`` do; ``CLOSE_NO_STATUS_RECEIVED``
        (1005) sends a close frame without a code.  A raw close frame with
        any payload can still be sent with :meth:`write_control`.
        """
        default = code == CLOSE_NORMAL_CLOSURE and reason == ""
        if not default and code != CLOSE_NO_STATUS_RECEIVED and not frames.is_valid_close_code(code):
            raise ValueError(f"websocket: close code {code} may not be sent (RFC 6455 section 7.4)")
        if self._state is _CLOSED:
            return
        if self._keepalive is not None:
            self._stop_keepalive()
        now = time.monotonic()
        end = now + min(self.close_timeout, MAX_WAIT)
        try:
            payload = _NORMAL_CLOSE_PAYLOAD if default else format_close_message(code, reason)
            self._send_control(CLOSE_MESSAGE, payload, end, end <= now)
        except (ErrCloseSent, DeadlineExceeded, OSError):
            pass
        if not self._read_done and self._write_err is None:
            # (After a failed write the peer was never asked to close: no wait.)
            reader = self._reading_thread
            if (
                reader is not None and reader is not threading.current_thread() and reader.is_alive()
            ) or not self._read_lock.acquire(blocking=False):
                # Another thread reads this connection: it must see every
                # message the peer sent before its close frame, so this call
                # only waits for that thread to meet the close frame.
                _wait_event(self._read_done_event(), end)
            else:
                try:
                    self._drain_until_close(end)
                finally:
                    self._read_lock.release()
        # After the handshake, shut our side down and wait (bounded) for the
        # peer's EOF: closing with unread bytes (e.g. a frame the peer sent
        # after its close) makes the kernel send a reset, which can destroy
        # our close frame before the peer reads it.
        if self._read_done:
            self._linger_and_close(min(1.0, self.close_timeout), self._close_status != (0, ""))
        else:
            self._linger_and_close(0.1)

    def _drain_until_close(self, end: float) -> None:
        saved = self._read_deadline
        self._read_deadline = end
        if self._rend == self._rpos and self._rbuf and not self._io.nonblocking and self._read_err is None:
            # The peer's close frame is rarely there yet: wait for it in poll
            # rather than have the first read fail with EAGAIN.  (Not for
            # TLS, whose library may hold decrypted bytes poll cannot see;
            # not before the first read, where _fill waits the same way.)
            try:
                self._io._wait(False, end)
            except (OSError, ValueError):
                pass  # the read below reports it
        try:
            while not self._read_done and self._read_err is None:
                self._msg_partial = None
                try:
                    self._start_message()
                except BaseException as e:
                    self._read_failed(e)
                    return
        finally:
            self._read_deadline = saved

    def close_now(self) -> None:
        """Close the socket at once, without a close handshake (gorilla's ``Close()``).

        A thread blocked reading or writing is woken with an error.  Safe
        from any thread, and more than once.
        """
        self._close_socket(True)

    def _close_socket(self, shutdown: bool) -> None:
        with self._state_lock:
            if self._state is _CLOSED:
                return
            self._state = _CLOSED
        if self._keepalive is not None:
            self._stop_keepalive()
        if shutdown:
            # Wakes threads blocked reading or writing (close() alone does not).
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            self._sock.close()
        except OSError:
            pass

    def close_status(self, err: Optional[BaseException]) -> int:
        """The close code carried by ``err`` if it is a :class:`CloseError`, else -1 (nhooyr's ``CloseStatus``)."""
        return err.code if isinstance(err, CloseError) else -1

    def get_status(self) -> Tuple[int, str]:
        """The peer's close ``(code, text)``, or ``(0, "")`` while none was received (seehuhn's ``GetStatus``)."""
        return self._close_status

    # ------------------------------------------------------------------
    # nhooyr extras: ping, close_read, keepalive
    # ------------------------------------------------------------------

    def ping(self, timeout: Optional[float] = None, data: Optional[bytes] = None) -> float:
        """Send a ping and wait for its pong; return the round-trip time in seconds.

        Pongs are seen by the reading thread, so another thread must be
        reading (or :meth:`close_read` running), as with nhooyr's ``Ping``.
        Raises :class:`DeadlineExceeded` if no pong arrives within ``timeout``.
        """
        payload = data if data is not None else os.urandom(8)
        ev = threading.Event()
        self._awaited_pongs[payload] = ev
        start = time.monotonic()
        deadline = None if timeout is None else start + timeout
        try:
            # (The send gets at most MAX_WAIT: a huge timeout is not a wall-clock time.)
            self.write_control(PING_MESSAGE, payload, None if timeout is None else start + min(timeout, MAX_WAIT))
            if not _wait_event(ev, deadline):
                raise DeadlineExceeded("websocket: no pong before the timeout", fatal=False)
        finally:
            self._awaited_pongs.pop(payload, None)
        return time.monotonic() - start

    def close_read(self) -> threading.Event:
        """Start a thread that reads and handles control frames for a write-only connection.

        If a data message arrives, the connection is closed with 1008
        (policy violation), as in nhooyr.  Returns an Event set when the
        reading thread stops (the peer closed, or the connection failed).
        """
        done = threading.Event()

        def run() -> None:
            try:
                while True:
                    self.next_reader()
                    self._fail_with(ProtocolError("unexpected data message", frames.CLOSE_POLICY_VIOLATION))
                    return
            except CloseError:
                # The peer closed: finish the handshake and end the connection, as nhooyr does.
                self.close()
            except (WebSocketError, OSError):
                pass
            finally:
                done.set()

        threading.Thread(target=run, name="gorillaws-close-read", daemon=True).start()
        return done

    def start_keepalive(self, interval: float, timeout: Optional[float] = None) -> None:
        """Ping every ``interval`` seconds; give up after ``timeout`` seconds without a pong.

        Off by default (gorilla has none).  Pongs are seen by the reading
        thread, so the application must keep reading.  On time-out the
        connection is closed with 1011 "keepalive ping timeout", and the
        reader's next read raises :class:`CloseError` (1006) with that text.
        ``timeout`` defaults to ``interval``.  Raises ValueError unless both
        are positive numbers of seconds.
        """
        timeout = interval if timeout is None else timeout
        for name, value in (("interval", interval), ("timeout", timeout)):
            if not 0 < value < float("inf"):
                raise ValueError(f"websocket: keepalive {name} must be a positive number of seconds, not {value!r}")
        self._stop_keepalive()
        self._keepalive = _Keepalive(self, interval, timeout)

    def _stop_keepalive(self) -> None:
        ka = self._keepalive
        if ka is not None:
            ka.stop()

    def net_conn(self, message_type: int = BINARY_MESSAGE) -> "NetConn":
        """A byte-stream (``io.RawIOBase``) view of the connection (nhooyr's ``NetConn``).

        Each write sends one message of ``message_type``; reads return the
        payloads of incoming messages as a continuous stream.  A message of
        the other type closes the connection with 1003; a normal closure from
        the peer reads as end of file.
        """
        return NetConn(self, message_type)


class _PayloadSource(io.RawIOBase):
    """``n`` bytes of the current frame's payload, as a raw stream.

    For ``io.BufferedReader(source, 1).read(n)``, which hands
    :meth:`readinto` views of the bytes object it will return, and for
    :func:`_receive_growing`, which hands it views of its growing buffer:
    the payload is received (first from the connection's read buffer) and
    unmasked in place there, so a large message costs no copy.  Text is
    checked piece by piece as it arrives (``utf8``).
    """

    def __init__(
        self, conn: Conn, n: int, mask: Optional[bytes], mask_pos: int, utf8: Optional[Utf8Validator] = None
    ) -> None:
        super().__init__()
        self._conn = conn
        self._left = n
        self._mask = mask
        self._mask_pos = mask_pos
        self._utf8 = utf8  # checks each piece as it arrives (text)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        """Receive up to ``len(b)`` payload bytes into ``b``; raises instead of returning 0."""
        conn = self._conn
        view = memoryview(b)[: self._left]
        got: Optional[memoryview] = None
        try:
            avail = conn._rend - conn._rpos
            if avail:
                k = min(avail, len(view))
                view[:k] = conn._rview[conn._rpos : conn._rpos + k]
                conn._rpos += k
            else:
                k = conn._recv(view, True)
            got = view[:k]
            if self._mask is not None:
                apply_mask_inplace(got, self._mask, self._mask_pos)
                self._mask_pos = (self._mask_pos + k) & 3
            if self._utf8 is not None:
                self._utf8.feed(got)
            self._left -= k
            return k
        except BaseException:
            # The caller frees this memory on error: leave no usable view of
            # it in the traceback's frames.
            if isinstance(b, memoryview):
                b.release()
            raise
        finally:
            # Every view made here is released, also the one a failing
            # callee's frame (the UTF-8 check's) keeps in the traceback: an
            # unreleased one pins _receive_growing's BytesIO, whose close at
            # collection then fails ("Exception ignored ... BufferError").
            if got is not None:
                got.release()
            view.release()


def _receive_growing(src: _PayloadSource, n: int) -> bytes:
    """All ``n`` bytes of ``src`` in a buffer that grows as they arrive.

    The buffer doubles (from ``_UPFRONT_MAX``) each time it is full, so a
    peer that announces more than it sends holds at most twice what it
    sent.  Bytes are received straight into it, and ``BytesIO.getvalue()``
    hands it out without a copy (CPython shares the buffer when no view of
    it is left).
    """
    out = io.BytesIO()
    got = 0
    while got < n:
        size = min(n, max(_UPFRONT_MAX, 2 * got))
        out.seek(size - 1)
        out.write(b"\0")  # grows the buffer to ``size`` bytes
        with out.getbuffer() as view:
            while got < size:
                with view[got:size] as room:
                    got += src.readinto(room)
    return out.getvalue()


class MessageReader(io.RawIOBase):
    """One received message's payload, as a binary file: what :meth:`Conn.next_reader` returns.

    gorilla's message reader (the ``io.Reader`` of ``NextReader``).  ``read``,
    ``readinto`` and ``readall`` read the message across its fragments and
    give b"" (0) at its end; control frames that arrive meanwhile run their
    handlers in the reading thread.  ``message_type`` is the message's
    :class:`MessageType`.  Reads raise what :meth:`Conn.read_message`
    raises, and ValueError once :meth:`Conn.next_reader` or
    :meth:`Conn.read_message` has moved on to the next message (whatever
    was left of this one was skipped).

    Thread-safety: reads are serialized with the connection's other reads.
    Not picklable: it reads a live connection.
    """

    def __init__(self, conn: Conn, message_type: MessageType) -> None:
        super().__init__()
        self._conn: Optional[Conn] = conn
        self.message_type = message_type
        self._eof = False

    def __repr__(self) -> str:
        state = "done" if self._eof or self._conn is None else "reading"
        return f"<gorillaws.MessageReader {self.message_type.name} message, {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a MessageReader: it reads a live connection")

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        """Read up to ``size`` bytes (all that is left when negative); b"" at the end."""
        if self._eof:
            return b""
        conn = self._conn
        if conn is None:
            raise ValueError("websocket: reader used after the next message was started")
        if size == 0:
            return b""
        with conn._read_lock:
            if conn._reader is not self:
                raise ValueError("websocket: reader used after the next message was started")
            conn._check_readable()
            try:
                if size < 0:
                    parts = []
                    while conn._msg_type or conn._pending_out:
                        parts.append(conn._read_chunk(-1))
                    data = b"".join(parts)
                else:
                    data = conn._read_chunk(size)
                    while not data and (conn._msg_type or conn._pending_out):
                        data = conn._read_chunk(size)
            except MemoryError as e:
                raise conn._out_of_memory(e) from e
            except BaseException as e:
                conn._read_failed(e)
                raise
            if not data or (size < 0 and not conn._pending_out):
                self._eof = not conn._msg_type and not conn._pending_out
            return data

    def readall(self) -> bytes:
        """Read the rest of the message."""
        return self.read(-1)

    def readinto(self, b: Any) -> int:
        """Read into a writable buffer; returns the count (0 at the end)."""
        view = memoryview(b).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)


class MessageWriter(io.RawIOBase):
    """One message being sent, as a binary file: what :meth:`Conn.next_writer` returns.

    gorilla's message writer (the ``io.WriteCloser`` of ``NextWriter``).
    ``write`` buffers; a data message longer than ``write_buffer_size`` goes
    out as several fragments; ``close()`` (or the end of a ``with`` block)
    sends the final frame and lets the next message start.  A close, ping or
    pong message is held until ``close()`` and sent as one control frame:
    writing more than 125 bytes to one raises ValueError and drops it.
    ``message_type`` is the message's :class:`MessageType`.  Writes raise
    what :meth:`Conn.write_message` raises.

    Thread-safety: the connection has one message writer at a time (see
    :meth:`Conn.next_writer`); use this one from one thread.
    Not picklable: it writes to a live connection.
    """

    def __init__(self, conn: Conn, message_type: int) -> None:
        super().__init__()
        self._conn: Optional[Conn] = conn
        self.message_type = MessageType(message_type)
        self._opcode = message_type
        self._control = message_type >= CLOSE_MESSAGE
        self._first = True
        pool = conn._pool
        buf = pool.get() if pool is not None else None
        self._buf = buf if buf is not None else bytearray()
        del self._buf[:]
        codec = conn._compression
        # RFC 7692 compresses data messages only.
        self._compress = codec is not None and conn._write_compress and not self._control
        if self._compress:
            codec.start_message()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "open"
        return f"<gorillaws.MessageWriter {self.message_type.name} message, {state}>"

    def __reduce__(self) -> Any:
        raise TypeError("cannot pickle a MessageWriter: it writes to a live connection")

    def __del__(self) -> None:
        # io.IOBase closes on garbage collection; for a writer that would send
        # a frame from whichever thread the collector runs in, after the Conn
        # itself is gone (the Conn holds its open writer).  Only close() sends.
        pass

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        """Buffer ``b``; full buffers go out as fragments.  Returns its length in bytes.

        An exception other than a :class:`WebSocketError` (a ``TypeError``
        for a bad argument, ``KeyboardInterrupt``, ...) abandons the message
        (see :meth:`__exit__`).
        """
        conn = self._conn
        if conn is None:
            raise ValueError("websocket: write to a closed message writer")
        try:
            data = _byte_payload(b)
            n = len(data)
            if self._control and len(self._buf) + n > frames.MAX_CONTROL_PAYLOAD:
                # gorilla's errInvalidControlFrame; nothing has been sent.
                raise ValueError("websocket: invalid control frame: a control message is at most 125 bytes")
            if self._compress:
                data = conn._compression.compress_chunk(data)
            self._buf += data
            size = conn.write_buffer_size
            while len(self._buf) > size:
                self._flush_frame(bytes(self._buf[:size]), False)
                del self._buf[:size]
        except WebSocketError:
            raise  # writing failed (sticky) or a close was sent: close() reports it again
        except BaseException as e:
            self._abandon(e)
            raise
        return n

    def _flush_frame(self, payload: bytes, fin: bool) -> None:
        conn = self._conn
        assert conn is not None
        opcode = self._opcode if self._first else CONTINUATION_FRAME
        rsv = frames.RSV1 if (self._compress and self._first) else 0
        self._first = False
        conn._check_writable()
        head, data = conn._frame_bytes(opcode, payload, fin, rsv)
        deadline = conn._write_deadline
        past = conn._write_deadline_past
        conn._acquire(conn._send_lock, deadline, past)
        try:
            conn._check_writable()
            conn._send_frame(head, data, deadline, past)
        finally:
            conn._send_lock.release()

    def close(self) -> None:
        """Send the rest of the message as its final frame.  Idempotent.

        A writer abandoned by an exception (see :meth:`__exit__`) sends
        nothing more: closing it does nothing.
        """
        conn = self._conn
        if conn is None:
            return
        try:
            if self._control:
                # One frame, with write_control's close bookkeeping.
                conn.write_control(self._opcode, bytes(self._buf), conn._write_deadline)
            else:
                if self._compress:
                    self._buf += conn._compression.finish_message()
                self._flush_frame(bytes(self._buf), True)
        except WebSocketError:
            self._release(conn)
            raise
        except BaseException as e:
            self._abandon(e)  # the final frame did not go out
            raise
        self._release(conn)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        """End the ``with`` block: on success send the end of the message.

        When the block raised, the message is abandoned instead: a message
        cut short is never sent as if it were complete.  If fragments of it
        were already sent, the peer cannot be told where it ends, so writing
        fails for good (:class:`ConnectionClosedError`); otherwise the
        connection is untouched and simply does not send it.
        """
        if exc is None:
            self.close()
        else:
            self._abandon(exc)

    def _abandon(self, exc: BaseException) -> None:
        conn = self._conn
        if conn is None:
            return
        try:
            if isinstance(exc, WebSocketError):
                pass  # writing has failed already, or a close frame went out
            elif not self._first:
                what = type(exc).__name__
                conn._writes_failed(ConnectionClosedError(f"websocket: a message was abandoned mid-way by {what}"), exc)
            elif self._compress:
                conn._compression.reset_compressor()  # it holds the unsent start
        finally:
            self._release(conn)

    def _release(self, conn: Conn) -> None:
        """Detach from ``conn`` and let the next message writer start."""
        self._conn = None
        if conn._pool is not None:
            del self._buf[:]
            conn._pool.put(self._buf)
        conn._writer = None
        conn._release_message_lock()
        super().close()


class NetConn(io.RawIOBase):
    """A byte stream tunnelled over WebSocket messages (see :meth:`Conn.net_conn`).

    Thread-safety: one reader and one writer thread may use it at once.
    """

    def __init__(self, conn: Conn, message_type: int) -> None:
        super().__init__()
        self.conn = conn
        self._type = message_type
        self._reader: Optional[MessageReader] = None
        self._eof = False

    def __del__(self) -> None:
        # io.IOBase closes on garbage collection; for this view that would
        # run a blocking close handshake on the Conn, so only close() does.
        pass

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        """Read stream bytes into ``b``; 0 at end of stream (peer closed with 1000 or 1001)."""
        view = memoryview(b).cast("B")
        while not self._eof:
            if self._reader is None:
                try:
                    mt, r = self.conn.next_reader()
                except CloseError as e:
                    if e.code in (CLOSE_NORMAL_CLOSURE, frames.CLOSE_GOING_AWAY):
                        self._eof = True
                        return 0
                    raise
                if mt != self._type:
                    err = ProtocolError("websocket: net_conn got a message of the wrong type", frames.CLOSE_UNSUPPORTED_DATA)
                    self.conn._fail_with(err)
                    raise err
                self._reader = r
            n = self._reader.readinto(view)
            if n:
                return n
            self._reader = None
        return 0

    def write(self, b: Any) -> int:
        """Send ``b`` as one message; returns its length."""
        self.conn.write_message(self._type, bytes(b))
        return len(b)

    def close(self) -> None:
        """Close the WebSocket connection with 1000."""
        if not self.closed:
            try:
                self.conn.close()
            finally:
                super().close()


class _JoinedReader(io.RawIOBase):
    """The raw stream behind :func:`join_messages`."""

    def __init__(self, conn: Conn, term: bytes) -> None:
        super().__init__()
        self._conn = conn
        self._term = term
        self._reader: Optional[MessageReader] = None
        self._pending = b""  # what is left of ``term`` to hand out

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        view = memoryview(b).cast("B")
        if not len(view):
            return 0
        while True:
            if self._pending:
                n = min(len(view), len(self._pending))
                view[:n] = self._pending[:n]
                self._pending = self._pending[n:]
                return n
            if self._reader is None:
                self._reader = self._conn.next_reader()[1]
            n = self._reader.readinto(view)
            if n:
                return n
            self._reader = None
            self._pending = self._term


def join_messages(conn: Conn, term: Union[bytes, str] = b"") -> io.BufferedReader:
    """The connection's incoming data messages as one byte stream (gorilla's ``JoinMessages``).

    ``term`` (e.g. ``b"\\n"``) follows each message in the stream.  Reading
    the stream reads the connection, so use it from the one reading thread.
    The stream never ends by itself: a close from the peer, or any read
    error, is raised from its read methods as :meth:`Conn.next_reader` raises it.
    """
    t = term.encode("utf-8") if isinstance(term, str) else bytes(term)
    return io.BufferedReader(_JoinedReader(conn, t))


class _Keepalive:
    """Pings a connection on a timer thread and fails it when a pong does not come."""

    def __init__(self, conn: Conn, interval: float, timeout: float) -> None:
        self._conn = conn
        self._interval = interval
        self._timeout = timeout
        self._pong = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gorillaws-keepalive", daemon=True)
        self._thread.start()

    def pong_seen(self) -> None:
        self._pong.set()

    def stop(self) -> None:
        self._stop.set()
        self._pong.set()  # wakes a thread waiting for a pong
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)

    def _run(self) -> None:
        conn = self._conn
        while not _wait_event(self._stop, time.monotonic() + self._interval):
            self._pong.clear()
            if self._stop.is_set():  # stop() ran between the wait and the clear
                return
            try:
                conn.write_control(PING_MESSAGE, b"", time.monotonic() + min(self._timeout, MAX_WAIT))
            except (WebSocketError, OSError):
                return
            if _wait_event(self._pong, time.monotonic() + self._timeout) or self._stop.is_set():
                continue
            conn._abort_reason = "keepalive ping timeout"
            try:
                conn.write_control(
                    CLOSE_MESSAGE,
                    format_close_message(frames.CLOSE_INTERNAL_SERVER_ERR, "keepalive ping timeout"),
                    time.monotonic() + _HANDLER_WRITE_WAIT,
                )
            except (WebSocketError, OSError):
                pass
            conn.close_now()
            return


from .prepared import PreparedMessage  # noqa: E402  (prepared imports frames only)
