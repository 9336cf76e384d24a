"""An echo server for the Autobahn TestSuite's ``fuzzingclient``.

Run it, then point the fuzzing client at it (see README.md)::

    python3 examples/autobahn/server.py            # listens on 127.0.0.1:9000

Endpoints (each echoes every message back with the same type):

* ``/``  streams: each message is copied from its reader to a writer in
  pieces as it arrives (``next_reader`` / ``next_writer``), so large
  messages are never held whole in memory;
* ``/m`` reads whole messages and writes them back (``read_message`` /
  ``write_message``);
* ``/p`` like ``/m``, sending each message as a ``PreparedMessage``.

Text messages are UTF-8 checked by the library; a message that is not valid
UTF-8 fails the connection with 1007 before anything of it is echoed when it
arrives whole.  The read limit is raised to 32 MiB (Autobahn's largest case is
16 MiB) and permessage-deflate is negotiated (context takeover unless
``--compression no-context``).
"""

from __future__ import annotations

import argparse
import http.server
import sys
import threading
from typing import Any, Callable, Dict, List, Optional

import gorillaws
from gorillaws import deflate

READ_LIMIT = 32 << 20


def echo_stream(conn: gorillaws.Conn) -> None:
    """Copy each message from its reader to a writer, piece by piece."""
    while True:
        message_type, reader = conn.next_reader()
        writer = conn.next_writer(message_type)
        while True:
            chunk = reader.read(32768)
            if not chunk:
                break
            writer.write(chunk)
        writer.close()


def echo_message(conn: gorillaws.Conn) -> None:
    """Read each message whole and write it back."""
    while True:
        message_type, data = conn.read_message()
        conn.write_message(message_type, data)


def echo_prepared(conn: gorillaws.Conn) -> None:
    """Read each message whole and send it back as a PreparedMessage."""
    while True:
        message_type, data = conn.read_message()
        conn.write_prepared_message(gorillaws.PreparedMessage(message_type, data))


HANDLERS: Dict[str, Callable[[gorillaws.Conn], None]] = {
    "/": echo_stream,
    "/m": echo_message,
    "/p": echo_prepared,
}


def make_server(addr: str, compression: str = "context", verbose: bool = False) -> http.server.ThreadingHTTPServer:
    """Build (not start) the echo server on ``addr`` ("host:port"; port 0 picks one)."""
    mode = {
        "off": deflate.COMPRESSION_DISABLED,
        "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
        "context": deflate.COMPRESSION_CONTEXT_TAKEOVER,
    }[compression]
    upgrader = gorillaws.Upgrader(
        compression_mode=mode,
        check_origin=lambda request: True,  # the fuzzing client sends its own Origin
        read_buffer_size=65536,
        write_buffer_size=65536,
    )

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            echo = HANDLERS.get(path)
            if echo is None:
                self.send_error(404)
                return
            try:
                conn = upgrader.upgrade(self)
            except gorillaws.HandshakeError as e:
                if verbose:
                    print("upgrade:", e, file=sys.stderr)
                return
            conn.set_read_limit(READ_LIMIT)
            try:
                echo(conn)
            except gorillaws.CloseError:
                pass  # the peer closed; our close frame was sent back
            except gorillaws.WebSocketError as e:
                if verbose:
                    print("%s: %s" % (path, e), file=sys.stderr)
            except OSError:
                pass
            finally:
                conn.close()

        def log_message(self, format: str, *args: Any) -> None:
            if verbose:
                super().log_message(format, *args)

    host, _, port = addr.rpartition(":")
    server = http.server.ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
    server.daemon_threads = True
    return server


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--addr", default="127.0.0.1:9000", help="host:port to listen on (default %(default)s)")
    parser.add_argument("--compression", choices=("off", "no-context", "context"), default="context")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    server = make_server(args.addr, args.compression, args.verbose)
    port = server.server_address[1]
    host = args.addr.rpartition(":")[0] or "127.0.0.1"
    print("autobahn echo server listening on ws://%s:%d/" % (host, port), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def serve_in_thread(addr: str = "127.0.0.1:0", compression: str = "context") -> http.server.ThreadingHTTPServer:
    """Start the server in a daemon thread (for tests); stop it with ``shutdown()``."""
    server = make_server(addr, compression)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


if __name__ == "__main__":
    main()
