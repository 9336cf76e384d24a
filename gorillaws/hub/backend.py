"""How a :class:`~gorillaws.hub.Hub` reaches the other processes: the backend interface.

A hub always delivers a message published in its own process to its own
subscribers directly.  The backend only carries messages *between* processes:
:meth:`Backend.publish` sends a message to the other processes, and a backend
hands every message another process published to the ``deliver`` callback the
hub gave it in :meth:`Backend.start`.  A backend never hands a process's own
messages back to it, so each message is delivered once per process.

:class:`LocalBackend` (the default) has no other processes to talk to;
:class:`gorillaws.hub.RedisBackend` uses Redis pub/sub.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Protocol

__all__ = ["Backend", "Deliver", "LocalBackend"]

#: ``deliver(topic, message_type, data)``: called by a backend, from its own
#: thread, for each message another process published.
Deliver = Callable[[str, int, bytes], None]


class Backend(Protocol):
    """What a hub needs from a backend.  Every method must be thread-safe and must not block for long."""

    def start(self, deliver: Deliver) -> None:
        """Begin carrying messages; call ``deliver`` for each one another process publishes."""

    def publish(self, topic: str, message_type: int, data: bytes) -> None:
        """Send a message to the other processes (at most once; must not block on the network)."""

    def topic_added(self, topic: str) -> None:
        """This process now has a subscriber to ``topic``: start receiving it."""

    def topic_removed(self, topic: str) -> None:
        """This process has no subscriber to ``topic`` any more: stop receiving it."""

    def stats(self) -> Dict[str, Any]:
        """Counters and state for :meth:`gorillaws.hub.Hub.stats` (a new dict each call)."""

    def close(self) -> None:
        """Stop, releasing threads and connections.  Safe to call more than once."""


class LocalBackend:
    """The in-process backend: there is no other process, so nothing to carry.

    Needs no dependency.  Thread-safe (it has no state).
    """

    def start(self, deliver: Deliver) -> None:
        """Nothing to start."""

    def publish(self, topic: str, message_type: int, data: bytes) -> None:
        """Nothing to send: the hub delivered the message locally already."""

    def topic_added(self, topic: str) -> None:
        """Nothing to subscribe to."""

    def topic_removed(self, topic: str) -> None:
        """Nothing to unsubscribe from."""

    def stats(self) -> Dict[str, Any]:
        """``{"backend": "local"}``."""
        return {"backend": "local"}

    def close(self) -> None:
        """Nothing to release."""
