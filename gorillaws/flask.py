"""WebSocket routes for Flask, in the style of flask-sock (needs ``pip install gorillaws[flask]``).

::

    from flask import Flask
    from gorillaws.flask import Sock

    app = Flask(__name__)
    sock = Sock(app)

    @sock.route("/ws")
    def ws(conn):                      # URL variables come as keyword arguments
        while True:
            mt, data = conn.read_message()
            conn.write_message(mt, data)

What :meth:`Sock.route` does for the view:

* registers it with ``websocket=True`` (werkzeug's router refuses an
  upgrade on an ordinary rule with 400 "The browser (or proxy) sent a
  request that this server could not understand"), plus a plain-HTTP rule
  on the same path that answers 426 "this is a WebSocket endpoint";
* upgrades the request with its :class:`~gorillaws.server.Upgrader`; a
  refused handshake is answered with its status (400, 403, 426, ...) and
  the reason is logged on ``app.logger`` (a refused origin names the origin
  and the option that allows it);
* calls the view with the :class:`~gorillaws.conn.Conn`, closes the Conn
  when the view returns (1000) or raises (1011, logged with its traceback);
  a client that closes (:class:`~gorillaws.CloseError` out of the view) is
  not an error: no traceback, no 500;
* returns what the WSGI host needs after a take-over (a 101 with no body);
* tracks the connection in :data:`gorillaws.serving.live_connections`, so
  that a worker's shutdown can close it with 1001 (see
  :mod:`gorillaws.gunicorn`).

Hosts: werkzeug's development server (``app.run(threaded=True)``, the
default) and gunicorn's ``gthread`` worker; each connection holds its
request thread until the view returns.
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, List, Optional, Tuple

from flask import Flask, current_app, request

from .conn import Conn
from .exceptions import HandshakeError
from .server import HIJACKED, Upgrader, WSGIErrorResponse
from .serving import ConnectionSet, live_connections, run_handler

__all__ = ["Sock"]

View = Callable[..., Any]


class Sock:
    """Adds WebSocket routes to a Flask app or blueprint.

    :param app: the Flask app (or call :meth:`init_app` later).
    :param upgrader: handshake options (origins, subprotocols,
        compression); default ``Upgrader()`` (same-origin pages only).
    :param connections: where open connections are tracked for a graceful
        shutdown (default: the process-wide
        :data:`~gorillaws.serving.live_connections`).

    One Sock may serve every thread; configure it before serving.
    """

    def __init__(
        self,
        app: Optional[Flask] = None,
        *,
        upgrader: Optional[Upgrader] = None,
        connections: Optional[ConnectionSet] = None,
    ) -> None:
        self.app: Optional[Flask] = None
        self.upgrader = upgrader if upgrader is not None else Upgrader()
        self.connections = connections if connections is not None else live_connections
        self._deferred: List[Tuple[str, str, View, Any]] = []
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Attach to ``app``, registering the routes declared before it existed."""
        self.app = app
        app.extensions["gorillaws"] = self
        for path, endpoint, view, options in self._deferred:
            self._register(app, path, endpoint, view, options)
        self._deferred.clear()

    def route(self, path: str, bp: Any = None, **options: Any) -> Callable[[View], View]:
        """Decorator: ``view(conn, **url_variables)`` serves WebSocket connections at ``path``.

        ``bp`` registers on a blueprint instead of the app; ``options`` go to
        ``add_url_rule`` (``endpoint``, ``defaults``, ...).  Returns the view
        unchanged.
        """

        def decorator(view: View) -> View:
            endpoint = options.pop("endpoint", None) or view.__name__
            wrapped = self._wrap(view)
            if bp is not None:
                self._register(bp, path, endpoint, wrapped, options)
            elif self.app is not None:
                self._register(self.app, path, endpoint, wrapped, options)
            else:
                self._deferred.append((path, endpoint, wrapped, options))
            return view

        return decorator

    @staticmethod
    def _register(target: Any, path: str, endpoint: str, view: View, options: Any) -> None:
        target.add_url_rule(path, endpoint, view, websocket=True, **options)
        target.add_url_rule(path, endpoint + "__not_websocket", _not_websocket, **options)

    def _wrap(self, view: View) -> View:
        @functools.wraps(view)
        def websocket_view(**kwargs: Any) -> Any:
            environ = request.environ
            logger = current_app.logger
            try:
                conn = self.upgrader.upgrade(environ)
            except HandshakeError as e:
                _log_refusal(logger, e)
                return e.response if e.response is not None else WSGIErrorResponse(e.status or 400)
            self._serve(conn, lambda: view(conn, **kwargs), logger, view.__name__)
            return HIJACKED

        return websocket_view

    def _serve(self, conn: Conn, call: Callable[[], Any], logger: logging.Logger, name: str) -> None:
        self.connections.add(conn)
        try:
            run_handler(conn, call, logger, "websocket view", name, lambda: self.connections.closing)
        finally:
            self.connections.discard(conn)


def _log_refusal(logger: logging.Logger, e: HandshakeError) -> None:
    """Say why a handshake was refused, where Flask users look (``app.logger``)."""
    origin = request.headers.get("Origin")
    if e.status == 403 and origin is not None:
        logger.warning(
            "WebSocket refused (403) at %s: origin %r is not the page's host %r; allow it with "
            "Sock(app, upgrader=Upgrader(origin_patterns=[...]))",
            request.path,
            origin,
            request.host,
        )
    else:
        logger.warning("WebSocket refused (%s) at %s: %s", e.status, request.path, e)


def _not_websocket(**kwargs: Any) -> Any:
    """A plain HTTP request on a WebSocket route: say so (426) instead of werkzeug's 400."""
    return (
        "426 Upgrade Required: this is a WebSocket endpoint; connect with a WebSocket client.\n",
        426,
        {"Content-Type": "text/plain; charset=utf-8", "Upgrade": "websocket", "Sec-WebSocket-Version": "13"},
    )
