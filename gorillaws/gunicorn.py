"""gunicorn hooks: a worker that is told to stop closes its WebSockets with 1001 at once.

Without them, a ``gthread`` worker that gets SIGTERM (a deploy, a restart,
``kill``) stops accepting and waits up to ``--graceful-timeout`` (30 s) for
its requests to end; a WebSocket view never ends by itself, so the clients
wait those 30 s and are then cut off with 1006.  With them, every open
connection tracked in :data:`gorillaws.serving.live_connections` (all the
routes of :class:`gorillaws.flask.Sock`) gets a close frame (1001 "going
away") as soon as the signal arrives; views reading their connection see the
client's answer as :class:`~gorillaws.CloseError` and return, and the worker
exits within a second or two.

Use this module as the gunicorn config::

    gunicorn -k gthread --threads 32 -c python:gorillaws.gunicorn app:app

or, with a config file of your own, import the hook there::

    from gorillaws.gunicorn import post_worker_init  # noqa: F401

Plain WSGI views (not ``Sock``) opt in by tracking their connections::

    from gorillaws.serving import live_connections
    live_connections.add(conn)
    try: ... finally: live_connections.discard(conn)
"""

from __future__ import annotations

import signal
import threading
from typing import Any, Callable, Optional

from .serving import ConnectionSet, live_connections

__all__ = ["post_worker_init", "install"]

#: Seconds the close handshakes get at most, within gunicorn's graceful timeout.
CLOSE_TIMEOUT = 5.0


def install(worker: Any, connections: Optional[ConnectionSet] = None) -> None:
    """Chain a close-everything step onto ``worker``'s SIGTERM, SIGINT and SIGQUIT handlers.

    SIGTERM (graceful stop) sends the close frames and gives the close
    handshakes up to :data:`CLOSE_TIMEOUT` seconds (less when the worker's
    ``graceful_timeout`` is shorter) in a thread of their own, while
    gunicorn's own handler stops the worker from accepting.  SIGINT and
    SIGQUIT (quick stop: gunicorn exits at once) first send the close
    frames, so clients at least learn why.  Call from the worker's process
    (``post_worker_init`` does); the signal module requires the main thread.
    """
    conns = connections if connections is not None else live_connections
    graceful = float(getattr(getattr(worker, "cfg", None), "graceful_timeout", 30) or 30)
    timeout = max(0.5, min(CLOSE_TIMEOUT, graceful - 1.0))

    def graceful_stop(original: Callable[..., Any]) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            threading.Thread(target=conns.close_all, kwargs={"timeout": timeout}, daemon=True).start()
            original(signum, frame)

        return handler

    def quick_stop(original: Callable[..., Any]) -> Callable[[int, Any], None]:
        def handler(signum: int, frame: Any) -> None:
            conns.close_all(timeout=0.5)
            original(signum, frame)

        return handler

    for sig, wrap in ((signal.SIGTERM, graceful_stop), (signal.SIGINT, quick_stop), (signal.SIGQUIT, quick_stop)):
        current = signal.getsignal(sig)
        if callable(current):
            signal.signal(sig, wrap(current))


def post_worker_init(worker: Any) -> None:
    """gunicorn's ``post_worker_init`` hook: :func:`install` in each worker."""
    install(worker)
