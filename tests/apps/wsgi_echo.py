"""A plain WSGI app using gorillaws, for werkzeug and gunicorn tests.

Routes:

* ``/ws``: upgrade and echo in the server's thread; the first message sent
  is the request's Cookie header (so tests see cookies reach the app).
* ``/ws-thread``: upgrade, hand the Conn to a thread of its own, return at
  once (what gunicorn's sync worker needs).
* ``/plain``: an ordinary HTTP response.

``GORILLAWS_SUBPROTOCOLS`` (comma-separated) configures the Upgrader.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Callable, Iterable

from gorillaws import Conn, HandshakeError, WebSocketError
from gorillaws.server import HIJACKED, Upgrader

upgrader = Upgrader(
    subprotocols=[p for p in os.environ.get("GORILLAWS_SUBPROTOCOLS", "chat,superchat").split(",") if p]
)


def echo(conn: Conn) -> None:
    """Echo messages until the peer closes."""
    with conn:
        while True:
            try:
                mt, data = conn.read_message()
            except (WebSocketError, OSError):
                return
            conn.write_message(mt, data)


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    """The WSGI entry point."""
    path = environ.get("PATH_INFO", "")
    if path not in ("/ws", "/ws-thread"):
        start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", "6")])
        return [b"plain\n"]
    try:
        conn = upgrader.upgrade(environ, {"Set-Cookie": "served=yes", "X-App": "wsgi_echo"})
    except HandshakeError as e:
        return e.response(environ, start_response)  # type: ignore[no-any-return]
    conn.send_text("cookie=" + environ.get("HTTP_COOKIE", ""))
    if path == "/ws-thread":
        threading.Thread(target=echo, args=(conn,), daemon=True).start()
    else:
        echo(conn)
    return HIJACKED(environ, start_response)
