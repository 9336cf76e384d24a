"""Broadcast to many connections: topics in one process, or across processes over Redis.

::

    from gorillaws.hub import Hub

    hub = Hub()                                   # in-process
    hub = Hub(redis_url="redis://127.0.0.1:6379/0")  # shared by every process using that Redis

    hub.subscribe(conn, "room:42")
    hub.publish("room:42", gorillaws.TEXT_MESSAGE, "hello")
    hub.unsubscribe(conn)                         # when the connection ends
    hub.close()                                   # every subscriber gets 1001

    # Resumable: a history in Redis Streams; the client passes back the last id it saw
    hub = Hub(backend=RedisStreamBackend(url, maxlen=10000, envelope=lambda id, mt, data: (mt, id.encode() + b" " + data)))
    hub.subscribe(conn, "room:42", since="1732953600000-0")

Modules: :mod:`.core` (the :class:`Hub`: queues, writers, overflow policy),
:mod:`.backend` (the :class:`Backend` interface and the in-process
:class:`LocalBackend`), :mod:`.redis_backend` (:class:`RedisBackend` over
pub/sub, and :class:`RedisStreamBackend` over Redis Streams, with a history to
resume from; the ``redis`` package is imported only when one is created).  See
``docs/hub.md`` for the guarantees and the multi-process setup.
"""

from __future__ import annotations

from .backend import Backend, Deliver, HistoryBackend, HistoryGone, Join, LocalBackend
from .core import OVERFLOW_CLOSE, OVERFLOW_DROP, Hub, HubClosed
from .redis_backend import Envelope, RedisBackend, RedisStreamBackend

__all__ = [
    "Backend",
    "Deliver",
    "Envelope",
    "HistoryBackend",
    "HistoryGone",
    "Hub",
    "HubClosed",
    "Join",
    "LocalBackend",
    "OVERFLOW_CLOSE",
    "OVERFLOW_DROP",
    "RedisBackend",
    "RedisStreamBackend",
]
