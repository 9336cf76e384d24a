"""Sharing a hub's topics between processes (and machines) with Redis pub/sub.

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

The wire format (:func:`encode` / :func:`decode`, pure functions): the four
bytes ``gwh1``, the 16-byte id of the publishing hub, one byte of message
type (1 text, 2 binary), then the message itself.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import uuid
from typing import Any, Dict, List, Optional, Tuple, Type
from urllib.parse import urlsplit, urlunsplit

from ..frames import BINARY_MESSAGE, TEXT_MESSAGE
from .backend import Deliver

__all__ = ["RedisBackend", "encode", "decode", "MAGIC"]

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
