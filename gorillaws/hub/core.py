"""The broadcast hub: topics, per-connection queues, a small pool of writers.

How a message travels (read with ``docs/hub.md``):

1. :meth:`Hub.publish` frames the message once (a :class:`PreparedMessage`)
   and appends it to the bounded queue of every subscriber of the topic.  The
   publisher never writes to a socket, so it never waits for a client.
2. A subscriber with queued messages is put, once, on the hub's *ready*
   queue.  A fixed pool of writer threads (``writers``, 4 by default, not
   one per connection) takes subscribers from it and writes their messages.
3. A writer only writes to a socket that has room (``poll()`` says
   writable).  A socket that is full is *parked*: one thread waits for all
   parked sockets at once (``selectors``) and hands a socket back to the
   writers when its peer has read enough.  So a client that stopped reading
   holds no thread, and the others keep receiving.
4. Meanwhile that client's queue fills up.  At ``queue_size`` messages the
   overflow policy applies: ``"close"`` (the default) closes the connection
   with ``overflow_code`` (1008); ``"drop"`` discards the new message for
   that subscriber only.  Both are counted in :meth:`Hub.stats`.  (A full
   queue whose socket still has room means the writers are behind, not the
   client: then the publisher waits for them instead.)
"""

from __future__ import annotations

import logging
import queue
import select
import selectors
import socket
import threading
import time
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Set, Tuple, Union, cast

from ..conn import Conn
from ..exceptions import ErrCloseSent, WebSocketError
from ..frames import CLOSE_GOING_AWAY, CLOSE_MESSAGE, CLOSE_POLICY_VIOLATION, format_close_message
from ..prepared import PreparedMessage
from .backend import Backend, HistoryBackend, LocalBackend

__all__ = ["Hub", "HubClosed", "OVERFLOW_CLOSE", "OVERFLOW_DROP"]

log = logging.getLogger("gorillaws.hub")

#: Overflow policy: close the slow subscriber's connection (with ``overflow_code``).
OVERFLOW_CLOSE = "close"
#: Overflow policy: discard the message that does not fit, for that subscriber only.
OVERFLOW_DROP = "drop"

# Messages one writer sends to one subscriber before it serves the next
# subscriber: keeps a subscriber with a long backlog from starving the others.
_BATCH = 32
_BATCH_BYTES = 16 * 1024
# Bound on sending a close frame to one subscriber: a writer never waits
# longer than this for a peer.
_CLOSE_WRITE_WAIT = 1.0


class HubClosed(RuntimeError):
    """Raised by :meth:`Hub.subscribe` and :meth:`Hub.publish` after :meth:`Hub.close`."""


class _Topic:
    """One topic's subscribers (an ordered set, plus a tuple snapshot for publishers) and counters."""

    __slots__ = ("name", "members", "snapshot", "joining", "published", "delivered", "dropped")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: Dict["_Subscriber", None] = {}
        self.snapshot: Tuple["_Subscriber", ...] = ()
        # Subscribers resuming from the history: in the topic, not yet live.
        self.joining: Set["_Subscriber"] = set()
        self.published = 0
        self.delivered = 0
        self.dropped = 0


class _Subscriber:
    """One connection's queue and scheduling state (guarded by ``lock``)."""

    __slots__ = ("conn", "lock", "pending", "scheduled", "topics", "close_with", "gone", "_poll")

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.lock = threading.Lock()
        self.pending: Deque[Tuple[_Topic, PreparedMessage]] = deque()
        # True while the subscriber is on the ready queue, being written by a
        # writer, or parked: exactly one of those places owns it then.
        self.scheduled = False
        self.topics: Dict[str, _Topic] = {}
        # (code, reason, hard): a close frame to send instead of the queue.
        self.close_with: Optional[Tuple[int, str, bool]] = None
        self.gone = False  # no longer subscribed to anything
        self._poll: Optional["select.poll"] = None

    def fileno(self) -> int:
        try:
            return self.conn.underlying_conn().fileno()
        except (OSError, ValueError):
            return -1

    def writable(self) -> bool:
        """True if the socket has room for a write now (or is broken, which a write will report)."""
        if self._poll is None:
            fd = self.fileno()
            if fd < 0:
                return True
            self._poll = select.poll()
            self._poll.register(fd, select.POLLOUT)
        try:
            return bool(self._poll.poll(0))
        except (OSError, ValueError):
            return True



class _Parker:
    """One thread that waits, for all parked subscribers at once, until their sockets have room."""

    def __init__(self, ready: "queue.SimpleQueue[Optional[_Subscriber]]") -> None:
        self._ready = ready
        self._lock = threading.Lock()
        self._parked: Dict[_Subscriber, None] = {}
        self._changes: List[Tuple[bool, _Subscriber]] = []  # (add?, subscriber)
        # The descriptor each subscriber was registered with (the parker
        # thread's own): a socket closed meanwhile reports -1.
        self._fds: Dict[_Subscriber, int] = {}
        self._stopped = False
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._thread = threading.Thread(target=self._run, name="gorillaws-hub-parker", daemon=True)
        self._thread.start()

    def __len__(self) -> int:
        return len(self._parked)

    def park(self, sub: _Subscriber) -> None:
        """Hold ``sub`` until its socket has room; a pending close request skips the wait."""
        with self._lock:
            if not (self._stopped or sub.close_with is not None or sub.gone):
                self._parked[sub] = None
                self._changes.append((True, sub))
                sub = None  # type: ignore[assignment]
        if sub is not None:
            self._ready.put(sub)
        else:
            self._wake()

    def holds(self, sub: _Subscriber) -> bool:
        """True while ``sub`` is parked (its socket is full)."""
        return sub in self._parked

    def kick(self, sub: _Subscriber) -> None:
        """Hand a parked ``sub`` back to the writers now (a close request arrived)."""
        with self._lock:
            if sub not in self._parked:
                return
            del self._parked[sub]
            self._changes.append((False, sub))
        self._ready.put(sub)
        self._wake()

    def stop(self) -> None:
        """Hand every parked subscriber back to the writers and end the thread."""
        with self._lock:
            self._stopped = True
            subs = list(self._parked)
            self._parked.clear()
        for sub in subs:
            self._ready.put(sub)
        self._wake()
        self._thread.join(timeout=2)

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"x")
        except OSError:  # full (a wake-up is pending anyway) or closed
            pass

    def _apply_changes(self) -> None:
        with self._lock:
            changes, self._changes = self._changes, []
        for add, sub in changes:
            if not add:
                self._forget_fd(sub)
                continue
            fd = sub.fileno()
            if fd < 0:
                self._unpark(sub)  # the socket is gone: the writer will find out
                continue
            try:
                self._sel.register(fd, selectors.EVENT_WRITE, sub)
            except KeyError:
                # A stale registration: a socket closed while parked, whose
                # number the kernel gave to this one.
                stale = self._sel.unregister(fd).data
                self._fds.pop(stale, None)
                self._sel.register(fd, selectors.EVENT_WRITE, sub)
            except (OSError, ValueError):
                self._unpark(sub)
                continue
            self._fds[sub] = fd

    def _forget_fd(self, sub: _Subscriber) -> None:
        fd = self._fds.pop(sub, None)
        if fd is not None:
            try:
                self._sel.unregister(fd)
            except (KeyError, ValueError):
                pass

    def _unpark(self, sub: _Subscriber) -> None:
        with self._lock:
            if sub not in self._parked:
                return
            del self._parked[sub]
        self._ready.put(sub)

    def _run(self) -> None:
        try:
            while not self._stopped:
                self._apply_changes()
                for key, _ in self._sel.select():
                    if key.data is None:
                        try:
                            while self._wake_r.recv(4096):
                                pass
                        except OSError:
                            pass
                        continue
                    self._forget_fd(key.data)
                    self._unpark(key.data)
        finally:
            self._sel.close()
            self._wake_r.close()
            self._wake_w.close()


class Hub:
    """Topics that connections subscribe to; a message published to a topic goes to all its subscribers.

    ``Hub()`` works within one process.  ``Hub(redis_url="redis://host:6379/0")``
    (needs ``pip install 'gorillaws[redis]'``) or ``Hub(backend=...)`` shares
    topics between processes: see :class:`gorillaws.hub.RedisBackend`.

    :param queue_size: messages queued per subscriber before the overflow
        policy applies (a subscriber whose socket is full falls behind).
    :param overflow: ``"close"`` (:data:`OVERFLOW_CLOSE`): close a subscriber
        that falls ``queue_size`` messages behind, with ``overflow_code``;
        ``"drop"`` (:data:`OVERFLOW_DROP`): discard, for that subscriber,
        each message that does not fit.
    :param overflow_code: the close code for ``"close"``: 1008 (policy
        violation, the default) or 1013 (try again later).
    :param writers: writer threads shared by all subscribers.
    :param write_timeout: seconds one write may take once started; the hub
        sets the connection's write deadline before each write.  A write that
        times out breaks the connection (RFC 6455 has no way to resume a
        half-sent frame), so the subscriber is dropped.
    :param close_timeout: how long :meth:`close` waits, in total, for the
        subscribers' close handshakes before closing their sockets.

    Raises ValueError for a bad parameter, ImportError (naming
    ``gorillaws[redis]``) when ``redis_url`` is given and the ``redis``
    package is missing.

    Thread-safety: every method may be called from any thread.  While a
    connection is subscribed, the hub's writers write to it; the application
    may still write to it too (writes are serialized by the connection), but
    the write deadline is the hub's.  The application keeps *reading* each
    connection (that is how it learns the peer left, and how close and ping
    frames are answered) and calls :meth:`unsubscribe` when it ends.
    """

    def __init__(
        self,
        *,
        redis_url: Optional[str] = None,
        backend: Optional[Backend] = None,
        queue_size: int = 256,
        overflow: str = OVERFLOW_CLOSE,
        overflow_code: int = CLOSE_POLICY_VIOLATION,
        writers: int = 4,
        write_timeout: float = 10.0,
        close_timeout: float = 5.0,
    ) -> None:
        if redis_url is not None and backend is not None:
            raise ValueError("gorillaws.hub: pass redis_url or backend, not both")
        if queue_size < 1:
            raise ValueError("gorillaws.hub: queue_size must be at least 1")
        if overflow not in (OVERFLOW_CLOSE, OVERFLOW_DROP):
            raise ValueError(f"gorillaws.hub: overflow must be {OVERFLOW_CLOSE!r} or {OVERFLOW_DROP!r}, not {overflow!r}")
        if not 1000 <= overflow_code <= 4999:
            raise ValueError(f"gorillaws.hub: {overflow_code} is not a close code")
        if writers < 1:
            raise ValueError("gorillaws.hub: writers must be at least 1")
        if write_timeout <= 0 or close_timeout < 0:
            raise ValueError("gorillaws.hub: write_timeout must be positive and close_timeout not negative")
        if redis_url is not None:
            from .redis_backend import RedisBackend

            backend = RedisBackend(redis_url)
        self.queue_size = queue_size
        self.overflow = overflow
        self.overflow_code = overflow_code
        self.write_timeout = write_timeout
        self.close_timeout = close_timeout
        self._backend: Backend = backend if backend is not None else LocalBackend()
        # A history backend delivers this process's own messages too (in the
        # topic's one order, with ids): then publish() queues nothing itself.
        self._history: Optional[HistoryBackend] = (
            cast(HistoryBackend, self._backend) if callable(getattr(self._backend, "replay", None)) else None
        )
        self._lock = threading.Lock()  # _subs, _topics, _closed
        self._subs: Dict[Conn, _Subscriber] = {}
        self._topics: Dict[str, _Topic] = {}
        self._closed = False
        self._count_lock = threading.Lock()
        self._published = 0
        self._delivered = 0
        self._dropped = 0
        self._closed_slow = 0
        self._write_errors = 0
        self._ready: "queue.SimpleQueue[Optional[_Subscriber]]" = queue.SimpleQueue()
        self._parker = _Parker(self._ready)
        self._writers = [
            threading.Thread(target=self._write_loop, name=f"gorillaws-hub-writer-{i}", daemon=True) for i in range(writers)
        ]
        for t in self._writers:
            t.start()
        self._backend.start(self._deliver_remote)

    # ------------------------------------------------------------------
    # Subscriptions
    # ------------------------------------------------------------------

    def subscribe(self, conn: Conn, topic: str, since: Optional[str] = None) -> None:
        """Subscribe ``conn`` to ``topic`` (no effect if it already is).

        ``since``: resume after the message with this id (a stream id such as
        ``"1732953600000-0"``, as the backend's envelope showed it to the
        client; ``"0"`` for all the history holds).  The subscriber is first
        sent the messages after ``since``, oldest first, then the live ones,
        with none twice and none in between.  Needs a backend with a history
        (:class:`gorillaws.hub.RedisStreamBackend`); this call then waits for
        the history to be read (one Redis round trip, at most the backend's
        ``socket_timeout``).

        Raises TypeError for a topic that is not a str, :class:`HubClosed`
        after :meth:`close`; with ``since``: ValueError when the backend keeps
        no history or the id is malformed, :class:`HistoryGone` when the
        history no longer holds ``since`` (the application should send the
        client a fresh state and subscribe it without ``since``),
        TimeoutError when the history cannot be read now.  After an error
        ``conn`` is not subscribed to ``topic``.  With a Redis backend,
        messages from other processes arrive once Redis confirms the
        subscription (the first subscriber of a topic in this process starts
        it; milliseconds).
        """
        if not isinstance(topic, str):
            raise TypeError(f"gorillaws.hub: topic must be a str, not {type(topic).__name__}")
        if since is not None and self._history is None:
            raise ValueError(
                f"gorillaws.hub: since= needs a backend that keeps a history (RedisStreamBackend), "
                f"not {type(self._backend).__name__}"
            )
        with self._lock:
            if self._closed:
                raise HubClosed("gorillaws.hub: the hub is closed")
            sub = self._subs.get(conn)
            if sub is None:
                sub = self._subs[conn] = _Subscriber(conn)
            if topic in sub.topics:
                return
            t = self._topics.get(topic)
            if t is None:
                t = self._topics[topic] = _Topic(topic)
                # Under the lock, so the backend sees adds and removes in order.
                self._backend.topic_added(topic)
            sub.topics[topic] = t
            if since is None:
                t.members[sub] = None
                t.snapshot = tuple(t.members)
                return
            t.joining.add(sub)
        assert self._history is not None
        try:
            self._history.replay(topic, since, lambda missed: self._join(sub, t, missed))
        except BaseException:
            with self._lock:
                if sub in t.joining and sub.topics.get(topic) is t:
                    self._leave(sub, topic)
                    if not sub.topics:
                        self._forget(sub)
            raise

    def _join(self, sub: _Subscriber, t: _Topic, missed: List[Tuple[int, bytes]]) -> None:
        """The history backend's answer: queue what ``sub`` missed and make it a live subscriber of ``t``.

        Called from the thread that delivers ``t``, so no live message of
        ``t`` is fanned out between the two steps.
        """
        with self._lock:
            if sub not in t.joining:
                return  # it left meanwhile
            t.joining.discard(sub)
            t.members[sub] = None
            t.snapshot = tuple(t.members)
            with sub.lock:
                for message_type, data in missed:
                    # Beyond queue_size if need be: the history is bounded (maxlen).
                    sub.pending.append((t, PreparedMessage(message_type, data)))
                put = bool(sub.pending) and not sub.scheduled
                if put:
                    sub.scheduled = True
        if put:
            self._ready.put(sub)

    def unsubscribe(self, conn: Conn, topic: Optional[str] = None) -> None:
        """Unsubscribe ``conn`` from ``topic``, or from every topic when ``topic`` is None.

        Messages already queued for a topic it leaves may still be sent.
        Once it is in no topic the hub forgets the connection (and discards
        what is still queued for it).  Does not close the connection; no
        effect if it was not subscribed.
        """
        with self._lock:
            sub = self._subs.get(conn)
            if sub is None:
                return
            names = list(sub.topics) if topic is None else [topic] if topic in sub.topics else []
            for name in names:
                self._leave(sub, name)
            if not sub.topics:
                self._forget(sub)

    def _leave(self, sub: _Subscriber, name: str) -> None:
        """Remove ``sub`` from one topic (hub lock held)."""
        t = sub.topics.pop(name)
        t.members.pop(sub, None)
        t.joining.discard(sub)
        t.snapshot = tuple(t.members)
        if not t.members and not t.joining and self._topics.get(name) is t:
            del self._topics[name]
            self._backend.topic_removed(name)

    def _forget(self, sub: _Subscriber) -> None:
        """Drop ``sub`` from the hub (hub lock held); its queue is discarded."""
        for name in list(sub.topics):
            self._leave(sub, name)
        self._subs.pop(sub.conn, None)
        with sub.lock:
            sub.gone = True
            sub.pending.clear()
        self._parker.kick(sub)  # a writer then releases it

    def topics(self, conn: Conn) -> List[str]:
        """The topics ``conn`` is subscribed to (a new list)."""
        with self._lock:
            sub = self._subs.get(conn)
            return list(sub.topics) if sub is not None else []

    def subscribers(self, topic: str) -> int:
        """How many connections of this process are subscribed to ``topic``."""
        t = self._topics.get(topic)
        return len(t.snapshot) if t is not None else 0

    # ------------------------------------------------------------------
    # Publishing
    # ------------------------------------------------------------------

    def publish(self, topic: str, message_type: int, data: Union[bytes, bytearray, memoryview, str]) -> int:
        """Send a message to every subscriber of ``topic``, in this process and (with a backend) in the others.

        The message is framed once and queued for each local subscriber;
        this call never waits for a slow client or for Redis.  It does wait,
        up to ``write_timeout``, when the writers are behind (a subscriber's
        queue is full while its socket has room: a burst larger than
        ``queue_size``, a busy CPU).  Messages from one
        publishing thread reach each subscriber in the order published.
        Returns the number of local subscribers it was queued for.  With a
        history backend (:class:`gorillaws.hub.RedisStreamBackend`) the
        message reaches this process's subscribers too through the backend,
        one round trip later, with its id: then it returns the number of
        local subscribers the topic has now.
        Raises ValueError for a message type other than text or binary,
        :class:`HubClosed` after :meth:`close`.
        """
        if self._closed:
            raise HubClosed("gorillaws.hub: the hub is closed")
        pm = PreparedMessage(message_type, data)  # checks the type, encodes a str
        if self._history is not None:
            # It comes back from the backend, with its id, in the topic's one order.
            self._backend.publish(topic, message_type, pm.data)
            return self.subscribers(topic)
        queued = self._fan_out(topic, pm)
        self._backend.publish(topic, message_type, pm.data)
        return queued

    def _deliver_remote(self, topic: str, message_type: int, data: bytes) -> None:
        """The backend's callback: a message another process published."""
        if not self._closed:
            self._fan_out(topic, PreparedMessage(message_type, data))

    def _fan_out(self, topic: str, pm: PreparedMessage) -> int:
        """Queue ``pm`` for every local subscriber of ``topic``; apply the overflow policy."""
        t = self._topics.get(topic)
        if t is None:
            with self._count_lock:
                self._published += 1
            return 0
        ready = self._ready
        limit = self.queue_size
        full: List[_Subscriber] = []
        queued = 0
        for sub in t.snapshot:
            with sub.lock:
                if sub.gone or sub.close_with is not None:
                    continue
                if len(sub.pending) >= limit:
                    full.append(sub)
                    continue
                sub.pending.append((t, pm))
                queued += 1
                if sub.scheduled:
                    continue
                sub.scheduled = True
            ready.put(sub)
        slow = [sub for sub in full if not self._wait_for_room(sub, t, pm)]
        queued += len(full) - len(slow)
        with self._count_lock:
            self._published += 1
            t.published += 1
            if slow:
                t.dropped += len(slow)
                self._dropped += len(slow)
        for sub in slow:
            self._overflowed(sub)
        return queued

    def _wait_for_room(self, sub: _Subscriber, t: _Topic, pm: PreparedMessage) -> bool:
        """Queue ``pm`` for a subscriber whose queue is full, if it is not slow; False if it is.

        A full queue whose socket still has room means the writers are
        behind (a burst, a busy CPU), not the client: the publisher waits for
        them, up to ``write_timeout``.  A full queue whose socket is full too
        (the subscriber is parked) is a slow client: the policy applies.
        """
        end = time.monotonic() + self.write_timeout
        while True:
            with sub.lock:
                if sub.gone or sub.close_with is not None:
                    return True  # leaving anyway: nothing to drop or close
                if len(sub.pending) < self.queue_size:
                    sub.pending.append((t, pm))
                    if sub.scheduled:
                        return True
                    sub.scheduled = True
                    put = True
                else:
                    put = False
            if put:
                self._ready.put(sub)
                return True
            if self._parker.holds(sub) or time.monotonic() > end:
                return False
            time.sleep(0.001)

    def _overflowed(self, sub: _Subscriber) -> None:
        if self.overflow == OVERFLOW_DROP:
            return
        with self._lock:
            if sub.gone:
                return
            self._forget_keep_close(sub)
        log.info("gorillaws.hub: closing a subscriber %d messages behind: %r", self.queue_size, sub.conn)
        with self._count_lock:
            self._closed_slow += 1
        self._request_close(sub, self.overflow_code, "too slow", hard=True)

    def _forget_keep_close(self, sub: _Subscriber) -> None:
        """Like :meth:`_forget`, but the subscriber stays alive long enough to be sent a close frame."""
        for name in list(sub.topics):
            self._leave(sub, name)
        self._subs.pop(sub.conn, None)

    def _request_close(self, sub: _Subscriber, code: int, reason: str, hard: bool) -> None:
        """Have a writer send ``sub`` a close frame in place of whatever is still queued.

        ``hard``: close the socket right after (a peer that stopped reading
        would never answer); otherwise the application's reading thread
        completes the close handshake.
        """
        dropped: Dict[_Topic, int] = {}
        with sub.lock:
            if sub.close_with is not None:
                return
            sub.close_with = (code, reason, hard)
            for t, _ in sub.pending:
                dropped[t] = dropped.get(t, 0) + 1
            sub.pending.clear()
            put = not sub.scheduled
            sub.scheduled = True
        if dropped:
            with self._count_lock:
                for t, n in dropped.items():
                    t.dropped += n
                    self._dropped += n
        if put:
            self._ready.put(sub)
        else:
            self._parker.kick(sub)

    # ------------------------------------------------------------------
    # Writers
    # ------------------------------------------------------------------

    def _write_loop(self) -> None:
        ready = self._ready
        while True:
            sub = ready.get()
            if sub is None:
                return
            try:
                self._serve(sub)
            except Exception:  # pragma: no cover - a bug must not kill the writer
                log.exception("gorillaws.hub: writer error")

    def _serve(self, sub: _Subscriber) -> None:
        """Write some of ``sub``'s queue, then requeue, park or release it."""
        with sub.lock:
            close_with = sub.close_with
            if close_with is None and sub.gone:
                sub.scheduled = False
                return
        if close_with is not None:
            self._send_close(sub, *close_with)
            return
        if not sub.writable():
            self._parker.park(sub)
            return
        # A batch: at most _BATCH messages and _BATCH_BYTES bytes, so that a
        # socket that had room when polled is unlikely to fill up (and block
        # this writer) before the batch is out.
        batch: List[Tuple[_Topic, PreparedMessage]] = []
        size = 0
        with sub.lock:
            pending = sub.pending
            while pending and len(batch) < _BATCH and size < _BATCH_BYTES:
                item = pending.popleft()
                batch.append(item)
                size += len(item[1].data)
        delivered: Dict[_Topic, int] = {}
        conn = sub.conn
        try:
            conn.set_write_deadline(time.monotonic() + self.write_timeout)
            # One system call for the batch (the send was a third of a
            # writer's time when each message had its own).
            conn.write_prepared_messages([pm for _, pm in batch])
            for t, _ in batch:
                delivered[t] = delivered.get(t, 0) + 1
        except ErrCloseSent:
            # The connection is in its close handshake (the application or
            # the peer began it): leave it to the reading thread to finish.
            with self._lock:
                self._forget(sub)
            with sub.lock:
                sub.scheduled = False
            return
        except (WebSocketError, OSError) as err:
            self._write_failed(sub, err)
            return
        finally:
            if delivered:
                with self._count_lock:
                    for t, n in delivered.items():
                        t.delivered += n
                        self._delivered += n
        with sub.lock:
            again = bool(sub.pending) and not sub.gone or sub.close_with is not None
            if not again:
                sub.scheduled = False
        if again:
            self._ready.put(sub)

    def _write_failed(self, sub: _Subscriber, err: BaseException) -> None:
        log.debug("gorillaws.hub: dropping %r: %s", sub.conn, err)
        with self._count_lock:
            self._write_errors += 1
        with self._lock:
            self._forget(sub)
        with sub.lock:
            sub.scheduled = False
        # Wake the application's reader: the connection cannot be written any more.
        sub.conn.close_now()

    def _send_close(self, sub: _Subscriber, code: int, reason: str, hard: bool) -> None:
        """Send the close frame if the socket has room for it, bounded; end the socket if ``hard``."""
        conn = sub.conn
        if sub.writable():
            try:
                conn.write_control(CLOSE_MESSAGE, format_close_message(code, reason), time.monotonic() + _CLOSE_WRITE_WAIT)
            except (WebSocketError, OSError, ValueError):
                pass
        if hard:
            conn.close_now()
        with sub.lock:
            sub.gone = True
            sub.scheduled = False

    # ------------------------------------------------------------------
    # Stats and shutdown
    # ------------------------------------------------------------------

    def stats(self) -> Dict[str, Any]:
        """A snapshot of the hub's counters (a new dict each call).

        ``subscribers``: connections subscribed to at least one topic;
        ``published``: messages fanned out in this process (its own and,
        with a backend, the other processes'); ``delivered``: messages
        written to a subscriber; ``dropped``: messages a subscriber did not
        get because of the overflow policy; ``closed_slow``: connections
        closed by the ``"close"`` policy; ``write_errors``: connections
        dropped because a write failed; ``parked``: subscribers waiting for
        room in their socket now; ``topics``: per topic with subscribers,
        ``{"subscribers", "published", "delivered", "dropped"}``;
        ``backend``: the backend's own counters (for Redis: ``connected``,
        ``disconnects``, ``last_error``, ...).
        """
        with self._lock:
            topics = list(self._topics.values())
            nsubs = len(self._subs)
        with self._count_lock:
            out: Dict[str, Any] = {
                "subscribers": nsubs,
                "published": self._published,
                "delivered": self._delivered,
                "dropped": self._dropped,
                "closed_slow": self._closed_slow,
                "write_errors": self._write_errors,
                "parked": len(self._parker),
                "topics": {
                    t.name: {
                        "subscribers": len(t.snapshot),
                        "published": t.published,
                        "delivered": t.delivered,
                        "dropped": t.dropped,
                    }
                    for t in topics
                },
            }
        out["backend"] = self._backend.stats()
        return out

    @property
    def closed(self) -> bool:
        """True once :meth:`close` was called."""
        return self._closed

    def close(self, code: int = CLOSE_GOING_AWAY, reason: str = "going away") -> None:
        """Close every subscriber with a close frame (``code``, 1001 by default) and stop the hub.

        Messages still queued are discarded.  Each subscriber is sent a close
        frame (when its socket has room); the applications' reading threads
        then complete the close handshakes.  After ``close_timeout`` seconds
        the sockets still open are closed.  The backend is stopped too.
        Later :meth:`publish` and :meth:`subscribe` calls raise
        :class:`HubClosed`.  Safe to call more than once, from any thread.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            subs = list(self._subs.values())
            for sub in subs:
                self._forget_keep_close(sub)
        self._backend.close()
        for sub in subs:
            self._request_close(sub, code, reason, hard=False)
        end = time.monotonic() + self.close_timeout
        while time.monotonic() < end and not all(sub.conn.closed for sub in subs):
            time.sleep(0.02)
        for sub in subs:
            sub.conn.close_now()
        self._parker.stop()
        for _ in self._writers:
            self._ready.put(None)
        for t in self._writers:
            t.join(timeout=_CLOSE_WRITE_WAIT + 1)

    def __enter__(self) -> "Hub":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
