"""Echo server on Flask (werkzeug's dev server): the page at ``/``, the WebSocket at ``/ws``.

Needs Flask (``pip install gorillaws[flask]``).  Run it from a source checkout::

    python examples/echo/server_flask.py                 # http://127.0.0.1:8080/
    python examples/echo/server_flask.py --addr 0.0.0.0:9000

Under gunicorn use the ``gthread`` worker, and gorillaws's hooks so that a
stop (SIGTERM) closes the connections with 1001 at once::

    gunicorn -k gthread --threads 8 -c python:gorillaws.gunicorn --chdir examples/echo server_flask:app

:class:`gorillaws.flask.Sock` does the WebSocket plumbing: the route is
registered with ``websocket=True``, the request is upgraded (a refused
handshake is answered and logged), the view gets the ``Conn``, and the
connection is closed when the view returns.
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

from flask import Flask, send_from_directory  # noqa: E402

import gorillaws  # noqa: E402
from gorillaws.flask import Sock  # noqa: E402

DEFAULT_ADDR = "127.0.0.1:8080"
HERE = os.path.dirname(os.path.abspath(__file__))

app = Flask(__name__)
sock = Sock(app)  # the default Upgrader: same-origin pages only


@app.route("/")
def index() -> Any:
    return send_from_directory(HERE, "index.html")


@sock.route("/ws")
def ws(conn: gorillaws.Conn) -> None:
    # The client closing ends the loop with CloseError, which Sock treats as
    # the normal end of the connection.
    while True:
        message_type, data = conn.read_message()
        conn.write_message(message_type, data)


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=DEFAULT_ADDR, help=f"host:port to listen on (default {DEFAULT_ADDR})")
    args = parser.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    print(f"echo server (Flask) on http://{host or '127.0.0.1'}:{port}/  (Ctrl+C to stop)")
    app.run(host=host or "127.0.0.1", port=int(port), threaded=True)


if __name__ == "__main__":
    main()
