"""gorillaws's own adapter for the side-by-side harness (``../shared/bench/run.py``).

The harness's built-in ``GorillawsAdapter`` was written before gorillaws
existed (its API lines are marked GUESS); this file replaces it by name with
one written against the real API.  Load it with::

    BENCH_ADAPTER_FILE=bench/gorillaws_adapter.py python3 ../shared/bench/run.py \\
        --libs gorillaws,websockets,raw-tcp

The harness runs this file (``runpy``) in the orchestrator and in every
client and server process, giving it ``Adapter``, ``Client`` and
``run_server_loop`` as globals.

Rows:

* ``gorillaws``: server ``Upgrader().upgrade(handler)`` from ``do_GET`` of a
  stdlib ``http.server.ThreadingHTTPServer`` (the zero-dependency server
  integration), client ``Dialer().dial(url)`` (one Dialer, kept).
* ``gorillaws-sock``: the same client; the server accepts sockets itself and
  passes each accepted socket to ``Upgrader().upgrade(sock)`` (the library
  reads the HTTP request), one thread per connection.  It shows what the
  http.server integration costs (handshakes, memory).
* ``gorillaws-serve``: the same client; the server is ``gorillaws.Server``,
  the ready server that ``gorillaws.serve()`` runs.

Both: compression off, read limit raised (as for every row of the harness),
everything else at gorillaws's defaults.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
from typing import TYPE_CHECKING, Any, Callable, Tuple

# The harness runs from its own directory: make this checkout importable.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)

if TYPE_CHECKING:  # the harness injects these names when it runs this file
    from run import Adapter, Client, run_server_loop  # type: ignore[import-not-found]

BIG = 1 << 30
_dialer: Any = None  # one Dialer for every connect, as an application keeps one
_names: Any = None  # (BINARY_MESSAGE, TEXT_MESSAGE, closed errors), imported once


def _gw_names() -> Tuple[int, int, Tuple[type, ...]]:
    """gorillaws's names the loops need, imported on first use (an import
    statement per connection is a Python call into importlib each time)."""
    global _names
    if _names is None:
        import gorillaws as gw

        _names = (gw.BINARY_MESSAGE, gw.TEXT_MESSAGE, (gw.CloseError, gw.WebSocketError, ConnectionError, OSError))
    return _names  # type: ignore[no-any-return]


def _io(conn: Any) -> Tuple[Callable[[], Any], Callable[[Any], None]]:
    """recv() -> bytes | str and send(bytes | str) over one Conn (one call each)."""
    BINARY_MESSAGE, TEXT_MESSAGE, _ = _gw_names()
    read_message, write_message = conn.read_message, conn.write_message

    def recv() -> Any:
        kind, data = read_message()
        return data.decode() if kind == TEXT_MESSAGE else data

    def send(msg: Any) -> None:
        write_message(TEXT_MESSAGE if msg.__class__ is str else BINARY_MESSAGE, msg)

    return recv, send


def _run(conn: Any, mode: str) -> None:
    conn.set_read_limit(BIG)
    recv, send = _io(conn)
    try:
        run_server_loop(mode, recv, send, _gw_names()[2])
    finally:
        conn.close_now()  # the default close handler already answered the peer's close


class GorillawsAdapter(Adapter):  # type: ignore[misc]
    """gorillaws: Upgrader in http.server's ThreadingHTTPServer / Dialer."""

    name = "gorillaws"
    dists = ("gorillaws",)
    modules = ("gorillaws", "gorillaws.server", "gorillaws.client")
    note = ("OUR library: Upgrader().upgrade(handler) in http.server's ThreadingHTTPServer, "
            "one Dialer().dial() for every connection; compression off")

    def versions(self) -> dict:  # type: ignore[type-arg]
        import gorillaws
        from gorillaws import mask

        speed = "C speedups" if mask.HAVE_SPEEDUPS else "pure Python"
        return {"gorillaws": f"{getattr(gorillaws, '__version__', '?')} ({speed})"}

    def serve(self, mode: str, ready: Callable[[int], None]) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        import gorillaws as gw

        upgrader = gw.Upgrader()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    conn = upgrader.upgrade(self)
                except gw.HandshakeError:
                    return
                _run(conn, mode)

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 1024

        server = Server(("127.0.0.1", 0), Handler)
        ready(server.server_port)
        server.serve_forever()

    def connect(self, url: str) -> Client:
        global _dialer
        import gorillaws as gw

        if _dialer is None:
            _dialer = gw.Dialer()
        conn, _response = _dialer.dial(url)
        conn.set_read_limit(BIG)
        recv, send = _io(conn)
        send_bin = functools.partial(conn.write_message, gw.BINARY_MESSAGE)
        return Client(send_bin, send, recv, conn.close)


class GorillawsSockAdapter(GorillawsAdapter):
    """gorillaws: Upgrader().upgrade(sock) on sockets accepted by a plain loop."""

    name = "gorillaws-sock"
    note = ("OUR library: Upgrader().upgrade(accepted socket), one thread per "
            "connection, no http.server; same client as gorillaws")

    def serve(self, mode: str, ready: Callable[[int], None]) -> None:
        import gorillaws as gw

        upgrader = gw.Upgrader()
        lsock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        ready(lsock.getsockname()[1])

        def handle(sock: socket.socket) -> None:
            try:
                conn = upgrader.upgrade(sock)
            except (gw.HandshakeError, OSError):
                return
            _run(conn, mode)

        while True:
            sock, _ = lsock.accept()
            threading.Thread(target=handle, args=(sock,), daemon=True).start()


class GorillawsServeAdapter(GorillawsAdapter):
    """gorillaws: the ready server, gorillaws.Server (what serve() runs)."""

    name = "gorillaws-serve"
    note = ("OUR library: gorillaws.Server (serve()): bounded handshakes, connection cap, "
            "a thread per connection; same client as gorillaws")

    def serve(self, mode: str, ready: Callable[[int], None]) -> None:
        import gorillaws as gw

        server = gw.Server(lambda conn: _run(conn, mode), "127.0.0.1", 0)
        ready(server.address[1])
        server.serve_forever()
