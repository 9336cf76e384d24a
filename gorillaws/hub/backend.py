"""How a :class:`~gorillaws.hub.Hub` reaches the other processes: the backend interface.

A hub always delivers a message published in its own process to its own
subscribers directly.  The backend only carries messages *between* processes:
:meth:`Backend.publish` sends a message to the other processes, and a backend
hands every message another process published to the ``deliver`` callback the
hub gave it in :meth:`Backend.start`.  A backend never hands a process's own
messages back to it, so each message is delivered once per process.

:class:`LocalBackend` (the default) has no other processes to talk to;
:class:`gorillaws.hub.RedisBackend` uses Redis pub/sub.

A :class:`HistoryBackend` (:class:`gorillaws.hub.RedisStreamBackend`) also
keeps each topic's recent messages, with ids, so that a subscriber can resume
after the last one it saw (``hub.subscribe(conn, topic, since=id)``).  Such a
backend puts every message, its own process's too, in one order per topic and
hands all of them to ``deliver``: the hub then delivers nothing directly at
publish time, so every subscriber sees the same order and no message twice.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Protocol, Tuple

__all__ = ["Backend", "Deliver", "HistoryBackend", "HistoryGone", "Join", "LocalBackend"]

#: ``deliver(topic, message_type, data)``: called by a backend, from its own
#: thread, for each message another process published.
Deliver = Callable[[str, int, bytes], None]

#: ``join(messages)``: called once by a history backend, from the thread that
#: delivers the topic, with the ``(message_type, data)`` messages a resuming
#: subscriber missed, oldest first.  The hub queues them for the subscriber and
#: makes it a live subscriber in the same step, so nothing falls in between.
Join = Callable[[List[Tuple[int, bytes]]], None]


class HistoryGone(LookupError):
    """``since`` is not in the topic's history any more (trimmed, or the history was lost).

    Raised by :meth:`gorillaws.hub.Hub.subscribe`.  The subscriber cannot be
    told exactly what it missed: the application should send it a fresh
    state and subscribe it without ``since``.
    """


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


class HistoryBackend(Backend, Protocol):
    """A backend that keeps each topic's recent messages, with ids, and delivers every message (its own too)."""

    def replay(self, topic: str, since: str, join: Join) -> None:
        """Call ``join`` with the messages of ``topic`` after the id ``since``, then deliver the topic live.

        Returns once ``join`` has been called.  Raises ValueError for an id
        it cannot read, :class:`HistoryGone` when the history no longer
        holds ``since``, TimeoutError when the history cannot be read in
        time (the backend is disconnected); after an error ``join`` is never
        called.
        """


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
