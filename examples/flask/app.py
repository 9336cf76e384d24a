"""Echo and chat WebSocket endpoints inside a Flask application, with :class:`gorillaws.flask.Sock`.

Run it with Flask's development server::

    python examples/flask/app.py                      # http://127.0.0.1:8080/

or with gunicorn (``gthread`` worker, one process, since the chat hub lives
in memory; ``-c python:gorillaws.gunicorn`` makes a stop close every
connection with 1001 at once)::

    gunicorn -k gthread --threads 32 -w 1 -b 127.0.0.1:8080 -c python:gorillaws.gunicorn --chdir examples/flask app:app

Routes:

* ``/``: the chat page of ``examples/chat`` (it connects to ``/ws``);
* ``/ws``: the chat endpoint, reusing that example's hub and client code;
* ``/echo``: an echo endpoint (every message is sent back).

``sock = Sock(app)`` then ``@sock.route(path)``: the view gets the
:class:`gorillaws.Conn`.  Sock registers the route with ``websocket=True``
(werkzeug's router refuses upgrade requests on ordinary routes), answers and
logs a refused handshake (a foreign origin: 403), closes the connection when
the view returns, and treats the client's close as a normal end.  The
view's thread belongs to the connection until it returns, which is why
gunicorn's ``gthread`` worker (a thread per connection) is the one to use;
its ``sync`` worker serves one request per process.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any, List, Optional

_HERE = os.path.dirname(os.path.abspath(__file__))
_ROOT = os.path.dirname(os.path.dirname(_HERE))
if _ROOT not in sys.path:  # pragma: no cover - lets it run from a source checkout
    sys.path.insert(0, _ROOT)

from flask import Flask, send_file  # noqa: E402

import gorillaws  # noqa: E402
from gorillaws.flask import Sock  # noqa: E402


def _load_chat() -> Any:
    """Import ``examples/chat/server.py`` (examples are scripts, not a package)."""
    path = os.path.join(_ROOT, "examples", "chat", "server.py")
    spec = importlib.util.spec_from_file_location("gorillaws_chat_example", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


chat = _load_chat()

app = Flask(__name__)
sock = Sock(app, upgrader=gorillaws.Upgrader(read_buffer_size=1024, write_buffer_size=1024))
settings = chat.Settings()
hub = chat.new_hub(settings)


@app.route("/")
def home() -> Any:
    return send_file(chat.HOME_PAGE, mimetype="text/html")


@sock.route("/ws")
def chat_ws(conn: gorillaws.Conn) -> None:
    chat.Client(hub, conn, settings, name=str(conn.remote_addr())).serve()


@sock.route("/echo")
def echo_ws(conn: gorillaws.Conn) -> None:
    while True:  # the client's close (CloseError) ends it: not an error
        mt, data = conn.read_message()
        conn.write_message(mt, data)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="gorillaws Flask example (echo and chat)")
    p.add_argument("--addr", default="127.0.0.1:8080", help="host:port (default %(default)s)")
    args = p.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    print(f"Flask example: chat at http://{host}:{port}/, echo at ws://{host}:{port}/echo", flush=True)
    # threaded=True: every connection holds its request thread.
    app.run(host=host, port=int(port), threaded=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
