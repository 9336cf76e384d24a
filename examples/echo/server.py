"""Echo server on gorillaws's own :class:`~gorillaws.serving.Server`: the page at ``/``, the WebSocket at ``/ws``.

The zero-dependency, production-shaped variant.  Run it from a source checkout::

    python examples/echo/server.py                       # http://127.0.0.1:8080/
    python examples/echo/server.py --addr 0.0.0.0:9000

Each connection runs ``echo`` in a thread of its own; the page is served by
the same port through ``http_handler``.  Slow or silent clients are cut off
after 10 s of handshake, connections beyond the open-files limit get 503, and
Ctrl-C or SIGTERM closes every connection with 1001 before exiting.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

# Let "python examples/echo/server.py" work without installing the package.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - depends on how it is started
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402
from gorillaws.server import UpgradeRequest  # noqa: E402
from gorillaws.serving import HTTPAnswer, serve  # noqa: E402

DEFAULT_ADDR = "127.0.0.1:8080"
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")


def echo(conn: gorillaws.Conn) -> None:
    """Send every message back; the client's close ends the loop (CloseError: a normal end)."""
    while True:
        message_type, data = conn.read_message()
        conn.write_message(message_type, data)


def page(request: UpgradeRequest) -> Optional[HTTPAnswer]:
    """``/`` is the page; other plain requests get the default 426 answer."""
    if request.path != "/":
        return None
    with open(PAGE, "rb") as f:
        return 200, {"Content-Type": "text/html; charset=utf-8"}, f.read()


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=DEFAULT_ADDR, help=f"host:port to listen on (default {DEFAULT_ADDR})")
    args = parser.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    print(f"echo server (gorillaws.serve) on http://{host or '127.0.0.1'}:{port}/  (Ctrl+C to stop)", flush=True)
    serve(echo, host or "127.0.0.1", int(port), http_handler=page)


if __name__ == "__main__":
    main()
