"""Sharing a hub's topics between processes (and machines) with Redis: pub/sub, or streams.

**Pub/sub** (:class:`RedisBackend`).

Each process publishes its messages to one Redis channel per topic
(``channel_prefix + topic``) and subscribes to the channels of the topics it
has local subscribers for.  A message carries the publishing hub's random id,
so a process ignores its own messages when Redis echoes them: it delivered
them to its local subscribers already, directly, which also means local
delivery goes on while Redis is unreachable.

Guarantee: Redis pub/sub is **at most once**.  A message published while a
process is disconnected from Redis, or while its subscription is being
(re)established, never reaches that process, and Redis itself drops the
messages of a subscriber that falls too far behind
(``client-output-buffer-limit pubsub``).  Within one publishing process,
messages reach every other process in the order they were published.

The wire format (:func:`encode` / :func:`decode`, pure functions; a stream
entry holds the same bytes in its field ``m``): the four bytes ``gwh1``, the
16-byte id of the publishing hub, one byte of message type (1 text, 2
binary), then the message itself.

**Streams** (:class:`RedisStreamBackend`): a replayable history, one Redis
stream per topic (``XADD`` / ``XREAD``).

Each process appends the messages it publishes to the topic's stream
(``XADD key MAXLEN ~ maxlen``) and reads every stream it has local
subscribers for with ``XREAD BLOCK``, its own messages included: the stream
is the one order of the topic, and each message's stream id (``"1732953600000-0"``)
is its place in it.  A subscriber that comes back with the id of the last
message it saw (``hub.subscribe(conn, topic, since=id)``) is first sent what
the stream holds after that id, then the live messages, with nothing twice
and nothing in between.

How a client learns the ids: the backend's ``envelope(id, message_type, data)``
shapes every message it delivers (live and replayed), for instance
``lambda id, mt, data: (mt, id.encode() + b" " + data)``.  ``stats()`` also
shows the last id read per topic (``last_ids``).

Guarantee: **at least once within the history**.  A message published while
Redis is unreachable waits in the publish queue (``publish_queue`` messages;
beyond that new ones are dropped and counted) and is appended when Redis is
back; a failed append is sent again, so a reply lost on the way can add a
message twice.  A process that was cut off reads on from the last id it
delivered, so its subscribers miss nothing the stream still holds.  What the
stream no longer holds (more than about ``maxlen`` messages later, or after
a Redis restart without persistence) is gone: ``since`` then raises
:class:`HistoryGone`.
"""

from __future__ import annotations

import logging
import queue
import random
import re
import threading
import uuid
from typing import Any, Callable, Dict, List, Optional, Tuple, Type
from urllib.parse import urlsplit, urlunsplit

from ..frames import BINARY_MESSAGE, TEXT_MESSAGE
from .backend import Deliver, HistoryGone, Join

__all__ = ["RedisBackend", "RedisStreamBackend", "Envelope", "encode", "decode", "stream_id", "MAGIC"]

log = logging.getLogger("gorillaws.hub")

MAGIC = b"gwh1"
_HEAD = len(MAGIC) + 16 + 1
# How often the listening thread looks at subscription changes while no
# message arrives: the delay before a new topic's subscription is sent.
_POLL = 0.02
# Messages sent to Redis in one round trip (a pipeline).
_PIPELINE = 512


def encode(origin: bytes, message_type: int, data: bytes) -> bytes:
    """The Redis payload for one message.  Raises ValueError for a bad origin or type."""
    if len(origin) != 16:
        raise ValueError("origin must be 16 bytes")
    if message_type not in (TEXT_MESSAGE, BINARY_MESSAGE):
        raise ValueError(f"bad message type {message_type}")
    return MAGIC + origin + bytes((message_type,)) + data


def decode(payload: bytes) -> Optional[Tuple[bytes, int, bytes]]:
    """``(origin, message_type, data)`` from a payload, or None if it is not one of ours."""
    if len(payload) < _HEAD or payload[:4] != MAGIC or payload[20] not in (TEXT_MESSAGE, BINARY_MESSAGE):
        return None
    return payload[4:20], payload[20], payload[_HEAD:]


def redact(url: str) -> str:
    """``url`` without its password, for logs and stats."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


class RedisBackend:
    """A :class:`gorillaws.hub.Hub` backend over Redis pub/sub (``pip install 'gorillaws[redis]'``).

    :param url: ``redis://[[user]:password@]host[:port][/db]`` (or
        ``rediss://`` for TLS, ``unix://`` for a socket), as the ``redis``
        package reads it.
    :param channel_prefix: prepended to each topic to name its Redis channel;
        hubs that should share topics must use the same prefix.
    :param reconnect_min, reconnect_max: the backoff between attempts to
        reach Redis, doubling from the first to the second (with jitter).
    :param publish_queue: messages waiting to be sent to Redis before new
        ones are dropped (counted in ``publish_dropped``).
    :param socket_timeout: seconds allowed to connect to Redis and for one
        round trip.

    Two threads per backend: one sends (so :meth:`publish` never waits for
    Redis; messages go out in order, many per round trip) and one listens,
    subscribes and resubscribes.  When Redis is lost, the failure is logged
    once (a warning on the ``gorillaws.hub`` logger), ``stats()`` shows
    ``connected: False``, local delivery continues, and the backend
    reconnects with backoff and subscribes again to every topic.

    Raises ImportError naming ``gorillaws[redis]`` when the ``redis`` package
    is missing, ValueError for a URL it cannot read.  Thread-safe.
    """

    # What the warning about a lost Redis says happens meanwhile.
    _while_lost = "local delivery continues"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        channel_prefix: str = "gorillaws:hub:",
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        publish_queue: int = 10000,
        socket_timeout: float = 5.0,
    ) -> None:
        try:
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry
        except ImportError as err:
            raise ImportError(
                "gorillaws.hub: the Redis backend needs the redis package: pip install 'gorillaws[redis]'"
            ) from err
        self._errors: Tuple[Type[BaseException], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
        # No retries inside the client: this backend decides when to retry,
        # so a lost Redis is seen (and reported) at once.
        self._client: Any = redis.Redis.from_url(
            url,
            socket_connect_timeout=socket_timeout,
            socket_timeout=socket_timeout,
            health_check_interval=max(1, int(socket_timeout)),
            retry=Retry(NoBackoff(), 0),
        )
        self.url = redact(url)
        self.channel_prefix = channel_prefix
        self.origin = uuid.uuid4().bytes
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.socket_timeout = socket_timeout
        self._prefix = channel_prefix.encode("utf-8")
        self._control = self._prefix + b"\x00control"  # always subscribed: keeps the connection observable
        self._lock = threading.Lock()
        self._topics: Dict[str, None] = {}
        self._changes: List[Tuple[bool, str]] = []
        self._outq: "queue.Queue[Optional[Tuple[bytes, bytes]]]" = queue.Queue(publish_queue)
        self._stop = threading.Event()
        self._deliver: Optional[Deliver] = None
        self._threads: List[threading.Thread] = []
        self._connected = False
        self._ever_connected = False
        self._counts = {"published": 0, "publish_errors": 0, "publish_dropped": 0, "received": 0, "foreign": 0,
                        "disconnects": 0, "reconnects": 0}
        self._last_error = ""
        self._session_up = False  # set by _up(): the current session reached Redis

    # -- Backend interface ------------------------------------------------

    def start(self, deliver: Deliver) -> None:
        """Start the sending and listening threads; ``deliver`` gets other processes' messages."""
        self._deliver = deliver
        for target, name in ((self._listen, "listen"), (self._send, "send")):
            t = threading.Thread(target=target, name=f"gorillaws-hub-redis-{name}", daemon=True)
            t.start()
            self._threads.append(t)

    def publish(self, topic: str, message_type: int, data: bytes) -> None:
        """Queue a message for Redis; never blocks.  A full queue drops it (``publish_dropped``)."""
        item = (self._channel(topic), encode(self.origin, message_type, data))
        try:
            self._outq.put_nowait(item)
        except queue.Full:
            self._count("publish_dropped")

    def topic_added(self, topic: str) -> None:
        """Subscribe to the topic's channel (from the listening thread, within milliseconds)."""
        with self._lock:
            self._topics[topic] = None
            self._changes.append((True, topic))

    def topic_removed(self, topic: str) -> None:
        """Unsubscribe from the topic's channel."""
        with self._lock:
            self._topics.pop(topic, None)
            self._changes.append((False, topic))

    def stats(self) -> Dict[str, Any]:
        """``backend``, ``url`` (no password), ``connected``, ``channels`` and the counters.

        ``published``/``publish_errors``/``publish_dropped``: messages sent to
        Redis / lost because Redis failed / lost because the send queue was
        full; ``received``: other processes' messages delivered here;
        ``disconnects``/``reconnects``: connection losses and recoveries;
        ``last_error``: the last failure's text.
        """
        with self._lock:
            out: Dict[str, Any] = dict(self._counts)
            out.update(backend="redis", url=self.url, connected=self._connected, channels=len(self._topics),
                       last_error=self._last_error)
        return out

    def close(self) -> None:
        """Stop both threads and close the connections.  Messages not yet sent are dropped."""
        self._stop.set()
        try:
            self._outq.put_nowait(None)
        except queue.Full:
            pass
        for t in self._threads:
            t.join(timeout=5)
        try:
            self._client.close()
        except Exception:  # noqa: BLE001 - closing is best effort
            pass

    # -- internals --------------------------------------------------------

    def _channel(self, topic: str) -> bytes:
        return self._prefix + topic.encode("utf-8")

    def _count(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._counts[name] += n

    def _lost(self, err: BaseException) -> None:
        """Record a failure; log it once per outage."""
        with self._lock:
            was_up = self._connected
            self._connected = False
            self._last_error = f"{type(err).__name__}: {err}"
            if was_up:
                self._counts["disconnects"] += 1
        if was_up:
            log.warning("gorillaws.hub: lost Redis at %s (%s); %s, reconnecting", self.url, err, self._while_lost)

    def _up(self) -> None:
        self._session_up = True
        with self._lock:
            if self._connected:
                return
            self._connected = True
            again = self._ever_connected
            self._ever_connected = True
            if again:
                self._counts["reconnects"] += 1
        if again:
            log.warning("gorillaws.hub: reconnected to Redis at %s and resubscribed", self.url)

    def _send(self) -> None:
        """The sending thread: everything queued goes out in order, in pipelines."""
        while True:
            item = self._outq.get()
            if item is None:
                return
            batch = [item]
            while len(batch) < _PIPELINE:
                try:
                    more = self._outq.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._outq.put(None)  # stop after this batch
                    break
                batch.append(more)
            self._send_batch(batch)

    def _send_batch(self, batch: List[Tuple[bytes, bytes]]) -> None:
        """One round trip for ``batch``; a failure loses it (pub/sub is at most once)."""
        try:
            self._execute(batch)
        except self._errors as err:
            self._count("publish_errors", len(batch))
            self._lost(err)
        else:
            self._count("published", len(batch))

    def _execute(self, batch: List[Tuple[bytes, bytes]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for channel, payload in batch:
            pipe.publish(channel, payload)
        pipe.execute()

    def _listen(self) -> None:
        """The listening thread: one session at a time; on failure reconnect with backoff."""
        delay = self.reconnect_min
        while not self._stop.is_set():
            self._session_up = False
            try:
                self._session()
            except self._errors as err:
                self._lost(err)
            except Exception as err:  # pragma: no cover - a bug must not end delivery for good
                log.exception("gorillaws.hub: error in the Redis listening thread; starting over")
                self._lost(err)
            if self._session_up:  # it worked for a while: start the backoff over
                delay = self.reconnect_min
            # Jitter, so that many processes do not reconnect in step.
            if self._stop.wait(delay * random.uniform(0.5, 1.0)):
                return
            delay = min(delay * 2, self.reconnect_max)

    def _session(self) -> None:
        """Subscribe to every topic and deliver what arrives, until stopped or Redis fails."""
        pubsub = self._client.pubsub()
        try:
            with self._lock:
                channels = [self._channel(t) for t in self._topics]
                self._changes.clear()
            pubsub.subscribe(self._control, *channels)
            self._up()
            while not self._stop.is_set():
                self._apply_changes(pubsub)
                msg = pubsub.get_message(timeout=_POLL)
                if msg is not None and msg["type"] == "message":
                    self._received(msg["channel"], msg["data"])
        finally:
            try:
                pubsub.close()
            except Exception:  # noqa: BLE001 - closing is best effort
                pass

    def _apply_changes(self, pubsub: Any) -> None:
        with self._lock:
            if not self._changes:
                return
            changes, self._changes = self._changes, []
        for add, topic in changes:
            if add:
                pubsub.subscribe(self._channel(topic))
            else:
                pubsub.unsubscribe(self._channel(topic))

    def _received(self, channel: bytes, payload: bytes) -> None:
        got = decode(payload)
        if got is None:
            self._count("foreign")
            return
        origin, message_type, data = got
        if origin == self.origin:
            return  # our own message: delivered locally when it was published
        self._count("received")
        deliver = self._deliver
        if deliver is not None:
            deliver(channel[len(self._prefix):].decode("utf-8", "replace"), message_type, data)


# ---------------------------------------------------------------------------
# Streams: a history to resume from
# ---------------------------------------------------------------------------

#: ``envelope(id, message_type, data) -> (message_type, data)``: what a
#: subscriber is sent for the stream entry ``id``.
Envelope = Callable[[str, int, bytes], Tuple[int, bytes]]

_ID = re.compile(r"\A(\d+)-(\d+)\Z")
# Entries read in one XREAD / XRANGE reply.
_READ_COUNT = 1000
# How long one XREAD waits for entries: also the delay before a new topic or
# a resuming subscriber is served.
_BLOCK_MS = 20
_ZERO = (0, 0)


def stream_id(text: str) -> Tuple[int, int]:
    """``(milliseconds, sequence)`` of a stream id ``"ms-seq"``; ``"0"`` is the start.

    Raises ValueError for anything else.
    """
    if text == "0":
        return _ZERO
    m = _ID.match(text) if isinstance(text, str) else None
    if m is None:
        raise ValueError(f"gorillaws.hub: {text!r} is not a stream id (\"<ms>-<seq>\", or \"0\" for the start)")
    return int(m.group(1)), int(m.group(2))


class _Replay:
    """A resuming subscriber's request, handed from :meth:`RedisStreamBackend.replay` to the listening thread."""

    def __init__(self, topic: str, since: str, join: Join) -> None:
        self.topic = topic
        self.since = since
        self.join = join
        self.lock = threading.Lock()
        self.state = "waiting"  # -> "taken" (the listening thread answers) or "cancelled" (timed out)
        self.done = threading.Event()
        self.error: Optional[BaseException] = None

    def take(self) -> bool:
        with self.lock:
            if self.state != "waiting":
                return False
            self.state = "taken"
            return True


class RedisStreamBackend(RedisBackend):
    """A :class:`gorillaws.hub.Hub` backend over Redis Streams, with a history to resume from.

    ``Hub(backend=RedisStreamBackend(url, maxlen=10000, envelope=...))``.
    Same connection handling as :class:`RedisBackend` (one sending thread,
    one listening thread, reconnection with backoff; the same parameters),
    plus:

    :param maxlen: the history kept per topic: at least this many messages
        (Redis trims in whole blocks, ``MAXLEN ~``, so a little more).
    :param envelope: ``envelope(id, message_type, data) -> (message_type, data)``
        applied to every message delivered, so that clients can see the ids;
        None sends messages unchanged.  It runs in the listening thread; a
        message it raises on is skipped (logged, ``envelope_errors``).
    :param key_prefix: prepended to each topic to name its stream; hubs
        that share topics must use the same prefix.
    :param reconnect_min, reconnect_max, publish_queue, socket_timeout: as
        for :class:`RedisBackend`; ``socket_timeout`` also bounds how long
        :meth:`replay` waits.

    Unlike :class:`RedisBackend`, a process's own messages also come back
    through Redis before its subscribers get them (one round trip later), so
    that every subscriber sees the topic's one order: while Redis is
    unreachable nothing is delivered, and the messages published meanwhile
    are delivered when it is back.

    Raises ImportError naming ``gorillaws[redis]`` when the ``redis`` package
    is missing, ValueError for a bad URL or ``maxlen``.  Thread-safe.
    """

    _while_lost = "delivery waits for it (messages published meanwhile are queued)"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        maxlen: int = 10000,
        envelope: Optional[Envelope] = None,
        key_prefix: str = "gorillaws:hub:",
        reconnect_min: float = 0.1,
        reconnect_max: float = 5.0,
        publish_queue: int = 10000,
        socket_timeout: float = 5.0,
    ) -> None:
        if maxlen < 1:
            raise ValueError("gorillaws.hub: maxlen must be at least 1")
        super().__init__(url, channel_prefix=key_prefix, reconnect_min=reconnect_min, reconnect_max=reconnect_max,
                         publish_queue=publish_queue, socket_timeout=socket_timeout)
        self.maxlen = maxlen
        self.envelope = envelope
        # The listening thread's own state: the last id delivered per topic.
        self._last: Dict[str, bytes] = {}
        self._requests: List[_Replay] = []
        self._counts["replayed"] = 0
        self._counts["envelope_errors"] = 0

    # -- Backend interface ------------------------------------------------

    def replay(self, topic: str, since: str, join: Join) -> None:
        """Call ``join`` with the messages of ``topic`` after ``since``; see :class:`gorillaws.hub.HistoryBackend`.

        ``since`` is a stream id (``"<ms>-<seq>"``, as the envelope showed
        it) or ``"0"`` for all the history holds.  Waits for the listening
        thread (one ``XRANGE``), at most ``socket_timeout`` seconds.
        Raises ValueError for a bad id, :class:`HistoryGone` when the stream
        no longer holds ``since``, TimeoutError when Redis is unreachable.
        """
        stream_id(since)
        req = _Replay(topic, since, join)
        with self._lock:
            self._requests.append(req)
        if not req.done.wait(self.socket_timeout):
            with req.lock:
                if req.state == "waiting":
                    req.state = "cancelled"
                    raise TimeoutError(f"gorillaws.hub: no answer from Redis at {self.url} for the history of {topic!r}")
            req.done.wait()  # taken: the answer is on its way
        if req.error is not None:
            raise req.error

    def stats(self) -> Dict[str, Any]:
        """:meth:`RedisBackend.stats` plus ``maxlen``, ``replayed`` (messages sent to resuming subscribers), ``last_ids``
        and ``envelope_errors`` (messages skipped because the envelope raised; each is logged)."""
        out = super().stats()
        with self._lock:
            last_ids = {t: i.decode() for t, i in self._last.items()}
        out.update(backend="redis-stream", maxlen=self.maxlen, last_ids=last_ids)
        return out

    # -- sending: XADD, and a failed batch is sent again -------------------

    def _execute(self, batch: List[Tuple[bytes, bytes]]) -> None:
        pipe = self._client.pipeline(transaction=False)
        for key, payload in batch:
            pipe.xadd(key, {b"m": payload}, maxlen=self.maxlen, approximate=True)
        pipe.execute()

    def _send_batch(self, batch: List[Tuple[bytes, bytes]]) -> None:
        delay = self.reconnect_min
        while True:
            try:
                self._execute(batch)
            except self._errors as err:
                self._lost(err)
                if self._stop.wait(delay):
                    self._count("publish_errors", len(batch))
                    return
                delay = min(delay * 2, self.reconnect_max)
            else:
                self._count("published", len(batch))
                return

    # -- listening: XREAD every topic from its last id ---------------------

    def _session(self) -> None:
        self._client.ping()
        self._up()
        while not self._stop.is_set():
            self._apply_stream_changes()
            self._serve_requests()
            if not self._last:
                self._stop.wait(_BLOCK_MS / 1000)
                continue
            self._read(self._last, _BLOCK_MS)

    def _apply_stream_changes(self) -> None:
        """Start reading new topics at the stream's end; forget removed ones.

        A change is taken off the list only once done, so a Redis failure
        leaves it for the next session.
        """
        while True:
            with self._lock:
                if not self._changes:
                    return
                add, topic = self._changes[0]
            if not add:
                with self._lock:
                    self._last.pop(topic, None)
            elif topic not in self._last:
                tail = self._client.xrevrange(self._channel(topic), count=1)
                with self._lock:
                    self._last[topic] = tail[0][0] if tail else b"0-0"
            with self._lock:
                self._changes.pop(0)

    def _read(self, streams: Dict[str, bytes], block: Optional[int]) -> int:
        """One XREAD of ``streams`` from their ids; deliver what it returns.  The number of entries."""
        keys = {self._channel(t): last for t, last in streams.items()}
        reply = self._client.xread(keys, count=_READ_COUNT, block=block) or []
        n = 0
        for key, entries in reply:
            topic = key[len(self._prefix):].decode("utf-8", "replace")
            if topic not in self._last:
                continue
            for entry_id, fields in entries:
                self._last[topic] = entry_id
                self._entry(topic, entry_id, fields)
            n += len(entries)
        return n

    def _entry(self, topic: str, entry_id: bytes, fields: Dict[bytes, bytes]) -> None:
        msg = self._message(entry_id, fields)
        if msg is None:
            return
        self._count("received")
        deliver = self._deliver
        if deliver is not None:
            deliver(topic, *msg)

    def _message(self, entry_id: bytes, fields: Dict[bytes, bytes]) -> Optional[Tuple[int, bytes]]:
        """The ``(message_type, data)`` to send for a stream entry (enveloped), or None if it is not ours."""
        got = decode(fields.get(b"m", b""))
        if got is None:
            self._count("foreign")
            return None
        _, message_type, data = got
        if self.envelope is None:
            return message_type, data
        try:
            return self.envelope(entry_id.decode(), message_type, data)
        except Exception:  # noqa: BLE001 - the application's code must not stop delivery
            self._count("envelope_errors")
            log.exception("gorillaws.hub: the envelope failed on stream entry %s; the message is skipped", entry_id.decode())
            return None

    def _serve_requests(self) -> None:
        """Answer the resuming subscribers' requests, in order; a Redis failure leaves the rest for the next session."""
        while True:
            with self._lock:
                if not self._requests:
                    return
                req = self._requests[0]
            if req.state == "waiting":
                self._answer(req)
            with self._lock:
                self._requests.pop(0)

    def _answer(self, req: _Replay) -> None:
        topic, since = req.topic, stream_id(req.since)
        error: Optional[BaseException] = None
        messages: List[Tuple[int, bytes]] = []
        if topic not in self._last:
            error = RuntimeError(f"gorillaws.hub: {topic!r} has no subscription")  # the hub never asks this
        else:
            # A client may have seen entries this process has not read yet
            # (from another process): read up to them first, live.
            while since > stream_id(self._last[topic].decode()) and self._read({topic: self._last[topic]}, None):
                pass
            last = self._last[topic]
            key = self._channel(topic)
            entries = [] if last == b"0-0" else self._range(key, req.since if since != _ZERO else "-", last)
            if since != _ZERO:
                if not entries or entries[0][0].decode() != req.since:
                    error = HistoryGone(
                        f"gorillaws.hub: {req.since!r} is not in the history of {topic!r} any more "
                        f"(it keeps about {self.maxlen} messages; a Redis restart without persistence loses it)"
                    )
                entries = entries[1:]
            for entry_id, fields in entries:
                msg = self._message(entry_id, fields)
                if msg is not None:
                    messages.append(msg)
        if not req.take():
            return  # the subscriber stopped waiting
        try:
            if error is None:
                req.join(messages)
                self._count("replayed", len(messages))
        except BaseException as err:  # noqa: BLE001 - handed to the waiting subscriber
            error = err
        finally:
            req.error = error
            req.done.set()

    def _range(self, key: bytes, start: str, end: bytes) -> List[Tuple[bytes, Dict[bytes, bytes]]]:
        """XRANGE ``start``..``end`` (both included), read ``_READ_COUNT`` entries per round trip."""
        out: List[Tuple[bytes, Dict[bytes, bytes]]] = []
        lo = start
        while True:
            part = self._client.xrange(key, lo, end, count=_READ_COUNT)
            out.extend(part)
            if len(part) < _READ_COUNT:
                return out
            lo = "(" + part[-1][0].decode()
