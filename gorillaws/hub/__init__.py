"""Broadcast to many connections: topics in one process, or across processes over Redis.

::

    from gorillaws.hub import Hub

    hub = Hub()                                   # in-process
    hub = Hub(redis_url="redis://127.0.0.1:6379/0")  # shared by every process using that Redis

    hub.subscribe(conn, "room:42")
    hub.publish("room:42", gorillaws.TEXT_MESSAGE, "hello")
    hub.unsubscribe(conn)                         # when the connection ends
    hub.close()                                   # every subscriber gets 1001

Modules: :mod:`.core` (the :class:`Hub`: queues, writers, overflow policy),
:mod:`.backend` (the :class:`Backend` interface and the in-process
:class:`LocalBackend`), :mod:`.redis_backend` (:class:`RedisBackend`; the
``redis`` package is imported only when one is created).  See
``docs/hub.md`` for the guarantees and the multi-process setup.
"""

from __future__ import annotations

from .backend import Backend, Deliver, LocalBackend
from .core import OVERFLOW_CLOSE, OVERFLOW_DROP, Hub, HubClosed
from .redis_backend import RedisBackend

__all__ = [
    "Backend",
    "Deliver",
    "Hub",
    "HubClosed",
    "LocalBackend",
    "OVERFLOW_CLOSE",
    "OVERFLOW_DROP",
    "RedisBackend",
]
