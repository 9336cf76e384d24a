"""Echo server on Flask (werkzeug's dev server): the page at ``/``, the WebSocket at ``/ws``.

Needs Flask (``pip install flask``).  Run it from a source checkout::

    python examples/echo/server_flask.py                 # http://127.0.0.1:8080/
    python examples/echo/server_flask.py --addr 0.0.0.0:9000

Under gunicorn use the ``gthread`` worker (``gunicorn -k gthread --threads 8
--chdir examples/echo server_flask:app``): its threads can hold a connection
each.  With the ``sync`` worker, hand the Conn to a thread and return.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

# Let "python examples/echo/server_flask.py" work without installing the package.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - depends on how it is started
    sys.path.insert(0, _ROOT)

from flask import Flask, request, send_from_directory  # noqa: E402

import gorillaws  # noqa: E402
from gorillaws.server import HIJACKED  # noqa: E402

DEFAULT_ADDR = "127.0.0.1:8080"
HERE = os.path.dirname(os.path.abspath(__file__))

app = Flask(__name__)
upgrader = gorillaws.Upgrader()


@app.route("/")
def index() -> Any:
    return send_from_directory(HERE, "index.html")


# websocket=True: werkzeug's router refuses (400) an upgrade request that hits
# an HTTP-only rule.
@app.route("/ws", websocket=True)
def ws() -> Any:
    try:
        conn = upgrader.upgrade(request.environ)
    except gorillaws.HandshakeError as e:
        return e.response  # a WSGI app answering the error
    with conn:
        while True:
            try:
                message_type, data = conn.read_message()
            except (gorillaws.WebSocketError, OSError):
                break
            conn.write_message(message_type, data)
    # The socket belongs to the Conn now: tell the server to write nothing more.
    return HIJACKED


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=DEFAULT_ADDR, help=f"host:port to listen on (default {DEFAULT_ADDR})")
    args = parser.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    print(f"echo server (Flask) on http://{host or '127.0.0.1'}:{port}/  (Ctrl+C to stop)")
    app.run(host=host or "127.0.0.1", port=int(port), threaded=True)


if __name__ == "__main__":
    main()
