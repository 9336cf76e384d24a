"""A Flask app using gorillaws.flask.Sock, for the werkzeug and gunicorn tests.

Routes: ``/`` (a page), ``/echo`` (echo until the client closes),
``/room/<name>`` (sends the URL variable, then ends), ``/boom`` (the view
raises), ``/bp/hello`` (a blueprint route), ``/count`` (open connections).
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from flask import Blueprint, Flask  # noqa: E402

from gorillaws import Conn  # noqa: E402
from gorillaws.flask import Sock  # noqa: E402
from gorillaws.frames import TEXT_MESSAGE  # noqa: E402
from gorillaws.serving import live_connections  # noqa: E402

app = Flask(__name__)
sock = Sock(app)
bp = Blueprint("bp", __name__, url_prefix="/bp")


@app.route("/")
def index() -> Any:
    return "home page"


@app.route("/count")
def count() -> Any:
    return str(len(live_connections))


@sock.route("/echo")
def echo(conn: Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


@sock.route("/room/<name>")
def room(conn: Conn, name: str) -> None:
    conn.write_message(TEXT_MESSAGE, f"room {name}")


@sock.route("/boom")
def boom(conn: Conn) -> None:
    raise RuntimeError("boom from the view")


@sock.route("/hello", bp=bp)
def hello(conn: Conn) -> None:
    conn.write_message(TEXT_MESSAGE, "hello from a blueprint")


app.register_blueprint(bp)
