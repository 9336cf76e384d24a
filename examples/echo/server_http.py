"""Echo server on the standard library's http.server: the page at ``/``, the WebSocket at ``/ws``.

Run it from a source checkout (no installation, no configuration)::

    python examples/echo/server_http.py                  # http://127.0.0.1:8080/
    python examples/echo/server_http.py --addr 0.0.0.0:9000

Each WebSocket runs in the thread ThreadingHTTPServer gave its request; the
thread is released when the client goes away.

The two classes come from :mod:`gorillaws.httpserver`, drop-in replacements
for the standard library's that bound the time a client has to send its
request head (10 s), queue 1024 connects instead of 5, cap the connections
below the open-files limit and do a TLS handshake (if any) in the
connection's thread.  Everything else is plain ``http.server``.
"""

from __future__ import annotations

import argparse
import os
import sys

# Let "python examples/echo/server_http.py" work without installing the package.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - depends on how it is started
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402
from gorillaws.httpserver import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402

DEFAULT_ADDR = "127.0.0.1:8080"
PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "index.html")

# The default origin check accepts the page served here (same host) and
# refuses pages from other sites.
upgrader = gorillaws.Upgrader()


def echo(conn: gorillaws.Conn) -> None:
    """Send every message back until the client closes."""
    with conn:
        while True:
            try:
                message_type, data = conn.read_message()
            except gorillaws.CloseError:
                return  # the client closed normally
            except (gorillaws.WebSocketError, OSError) as e:
                print(f"read: {e}", file=sys.stderr)
                return
            conn.write_message(message_type, data)


class EchoHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/ws":
            try:
                conn = upgrader.upgrade(self)
            except gorillaws.HandshakeError as e:
                print(f"upgrade: {e}", file=sys.stderr)
                return  # the error response has been sent
            echo(conn)
        elif self.path == "/":
            with open(PAGE, "rb") as f:
                body = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_error(404)


def main(argv: "list[str] | None" = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addr", default=DEFAULT_ADDR, help=f"host:port to listen on (default {DEFAULT_ADDR})")
    args = parser.parse_args(argv)
    host, _, port = args.addr.rpartition(":")
    server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), EchoHandler)
    print(f"echo server (http.server) on http://{host or '127.0.0.1'}:{port}/  (Ctrl+C to stop)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
