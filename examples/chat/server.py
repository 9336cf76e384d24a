"""A multi-room-less chat server: the browser page at ``/``, the WebSocket at ``/ws``.

Run it with::

    python examples/chat/server.py            # http://127.0.0.1:8080/
    python examples/chat/server.py --addr 0.0.0.0:9000

and open the printed URL in two browser windows.

How it is built (the same shape as gorilla/websocket's chat example):

* One **hub** thread owns the set of clients.  Everything else talks to it
  through one queue of events: a client registers, unregisters, or asks for a
  message to be broadcast.  Because only the hub thread touches the set, it
  needs no lock.
* Each browser connection gets a **reader** (the HTTP handler thread, after
  the upgrade) and a **writer** thread.  The reader forwards each chat line to
  the hub; the hub hands each broadcast, as one shared
  :class:`gorillaws.PreparedMessage`, to every client's outgoing queue; the
  writer sends what arrives on its queue.  So each connection has exactly one
  reading thread and one writing thread, which is what a ``Conn`` supports.
* **Keepalive with deadlines.**  The writer pings every ``ping_period``
  seconds.  The reader keeps a read deadline ``pong_wait`` seconds ahead and
  pushes it forward whenever a pong arrives, so a peer that vanished without a
  close (a laptop lid shut, a cable pulled) is noticed within ``pong_wait``.
  Every write runs under a ``write_wait`` deadline, so a peer that stopped
  reading cannot block its writer forever.  ``ping_period`` must be shorter
  than ``pong_wait``.
* A client whose queue is full (it cannot keep up) is dropped by the hub
  rather than slowing everyone else down.
"""

from __future__ import annotations

import argparse
import logging
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Set, Tuple

# Let "python examples/chat/server.py" work from a source checkout without
# installing the package first.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - depends on how it is started
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402

log = logging.getLogger("chat")

HOME_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "home.html")


@dataclass(frozen=True)
class Settings:
    """Timing and size limits; the defaults are those of gorilla's chat example."""

    #: Time allowed to write one message (or ping) to the peer.
    write_wait: float = 10.0
    #: Time allowed to read the next pong from the peer.
    pong_wait: float = 60.0
    #: How often to ping the peer; must be less than ``pong_wait``.
    ping_period: float = 54.0
    #: Largest message accepted from a peer, in bytes.
    max_message_size: int = 512
    #: Messages queued for one slow client before the hub drops it.
    send_queue_size: int = 256


# ---------------------------------------------------------------------------
# The hub
# ---------------------------------------------------------------------------

_Event = Tuple[str, object]


class Hub:
    """Keeps the set of clients and fans broadcasts out to them, in one thread."""

    def __init__(self) -> None:
        self._events: "queue.Queue[_Event]" = queue.Queue()
        self._clients: Set[Client] = set()
        self._thread = threading.Thread(target=self._run, name="chat-hub", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Ask the hub to finish; every client's writer then closes its connection."""
        self._events.put(("stop", None))
        self._thread.join(timeout=5)

    def register(self, client: "Client") -> None:
        self._events.put(("register", client))

    def unregister(self, client: "Client") -> None:
        self._events.put(("unregister", client))

    def broadcast(self, message: bytes) -> None:
        self._events.put(("broadcast", message))

    def _drop(self, client: "Client") -> None:
        if client in self._clients:
            self._clients.discard(client)
            client.finish()

    def _run(self) -> None:
        while True:
            kind, value = self._events.get()
            if kind == "register":
                assert isinstance(value, Client)
                self._clients.add(value)
            elif kind == "unregister":
                assert isinstance(value, Client)
                self._drop(value)
            elif kind == "broadcast":
                assert isinstance(value, bytes)
                # Frame the message once; every connection reuses the bytes.
                prepared = gorillaws.PreparedMessage(gorillaws.TEXT_MESSAGE, value)
                for client in list(self._clients):
                    try:
                        client.send.put_nowait(prepared)
                    except queue.Full:
                        log.info("dropping %s: it is not keeping up", client.name)
                        self._drop(client)
            elif kind == "stop":
                for client in list(self._clients):
                    self._drop(client)
                return


# ---------------------------------------------------------------------------
# One client: a reader (the caller's thread) and a writer thread
# ---------------------------------------------------------------------------


class Client:
    """One browser connection: the hub's go-between for a :class:`gorillaws.Conn`."""

    def __init__(self, hub: Hub, conn: gorillaws.Conn, settings: Settings, name: str) -> None:
        self.hub = hub
        self.conn = conn
        self.settings = settings
        self.name = name
        # Outgoing messages; None means "the hub is done with you: close".
        self.send: "queue.Queue[Optional[gorillaws.PreparedMessage]]" = queue.Queue(settings.send_queue_size)

    def finish(self) -> None:
        """Called by the hub when it forgets this client: tell the writer to stop."""
        # The queue may be full (that is why the hub drops slow clients), so
        # make room for the sentinel rather than blocking the hub.
        while True:
            try:
                self.send.put_nowait(None)
                return
            except queue.Full:
                try:
                    self.send.get_nowait()
                except queue.Empty:
                    pass

    def serve(self) -> None:
        """Run the connection: start the writer thread, then read until the end."""
        writer = threading.Thread(target=self.write_pump, name=f"chat-writer-{self.name}", daemon=True)
        self.hub.register(self)
        writer.start()
        try:
            self.read_pump()
        finally:
            writer.join(timeout=self.settings.write_wait + 1)

    def read_pump(self) -> None:
        """Forward messages from the peer to the hub until the connection ends."""
        conn, s = self.conn, self.settings
        conn.set_read_limit(s.max_message_size)
        conn.set_read_deadline(time.monotonic() + s.pong_wait)

        def on_pong(_data: bytes) -> None:
            # The peer is alive: give it another pong_wait to answer the next ping.
            conn.set_read_deadline(time.monotonic() + s.pong_wait)

        conn.set_pong_handler(on_pong)
        try:
            while True:
                try:
                    _, message = conn.read_message()
                except gorillaws.WebSocketError as err:
                    if gorillaws.is_unexpected_close_error(
                        err, gorillaws.CLOSE_GOING_AWAY, gorillaws.CLOSE_NORMAL_CLOSURE
                    ):
                        log.info("%s: %s", self.name, err)
                    break
                except OSError as err:
                    log.info("%s: %s", self.name, err)
                    break
                # One chat line per message: fold newlines and trim.
                text = b" ".join(message.split()).strip()
                if text:
                    self.hub.broadcast(text)
        finally:
            self.hub.unregister(self)
            conn.close_now()

    def write_pump(self) -> None:
        """Send the hub's messages and the keepalive pings until told to stop."""
        conn, s = self.conn, self.settings
        next_ping = time.monotonic() + s.ping_period
        try:
            while True:
                try:
                    item = self.send.get(timeout=max(0.0, next_ping - time.monotonic()))
                except queue.Empty:
                    conn.set_write_deadline(time.monotonic() + s.write_wait)
                    conn.write_message(gorillaws.PING_MESSAGE, b"")
                    next_ping = time.monotonic() + s.ping_period
                    continue
                conn.set_write_deadline(time.monotonic() + s.write_wait)
                if item is None:
                    # The hub closed our queue: say goodbye properly.
                    try:
                        conn.write_message(gorillaws.CLOSE_MESSAGE, gorillaws.format_close_message(gorillaws.CLOSE_NORMAL_CLOSURE, ""))
                    except gorillaws.ErrCloseSent:
                        pass
                    return
                conn.write_prepared_message(item)
        except (gorillaws.WebSocketError, OSError) as err:
            log.debug("%s: writer stopped: %s", self.name, err)
        finally:
            # Wakes the reader if it is still blocked in a read.
            conn.close_now()


# ---------------------------------------------------------------------------
# HTTP
# ---------------------------------------------------------------------------


class ChatServer(ThreadingHTTPServer):
    """An HTTP server that carries the hub, the upgrader and the settings."""

    daemon_threads = True

    def __init__(self, addr: Tuple[str, int], settings: Settings = Settings()) -> None:
        super().__init__(addr, ChatHandler)
        self.settings = settings
        self.hub = Hub()
        self.upgrader = gorillaws.Upgrader(read_buffer_size=1024, write_buffer_size=1024)
        self._count = 0
        self._count_lock = threading.Lock()

    def next_name(self) -> str:
        with self._count_lock:
            self._count += 1
            return f"client-{self._count}"

    def url(self) -> str:
        host, port = self.server_address[:2]
        if isinstance(host, bytes):  # pragma: no cover - never for AF_INET
            host = host.decode()
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"


class ChatHandler(BaseHTTPRequestHandler):
    server: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        log.debug("%s %s", self.address_string(), format % args)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        path = self.path.split("?", 1)[0]
        if path == "/":
            self.serve_home()
        elif path == "/ws":
            self.serve_ws()
        else:
            self.send_error(404, "Not found")

    def serve_home(self) -> None:
        with open(HOME_PAGE, "rb") as f:
            body = f.read()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def serve_ws(self) -> None:
        try:
            conn = self.server.upgrader.upgrade(self)
        except gorillaws.HandshakeError as err:
            # The upgrader has already answered with an HTTP error.
            log.info("upgrade refused: %s", err)
            return
        client = Client(self.server.hub, conn, self.server.settings, self.server.next_name())
        client.serve()


def parse_addr(value: str) -> Tuple[str, int]:
    """Parse ``host:port`` (``[v6]:port`` for IPv6; ``:port`` means 127.0.0.1)."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected host:port, got {value!r}")
    host = host.strip("[]") or "127.0.0.1"
    return host, int(port)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description="gorillaws chat example")
    p.add_argument("--addr", type=parse_addr, default=("127.0.0.1", 8080), help="address to listen on (default 127.0.0.1:8080; port 0 picks a free one)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request and connection")
    tuning = p.add_argument_group("keepalive tuning (defaults as in gorilla's chat example)")
    tuning.add_argument("--pong-wait", type=float, default=Settings.pong_wait, help="seconds to wait for a pong (default %(default)s)")
    tuning.add_argument("--ping-period", type=float, default=None, help="seconds between pings (default 9/10 of --pong-wait)")
    tuning.add_argument("--write-wait", type=float, default=Settings.write_wait, help="seconds allowed per write (default %(default)s)")
    tuning.add_argument("--max-message-size", type=int, default=Settings.max_message_size, help="largest message accepted (default %(default)s)")
    args = p.parse_args(argv)

    ping_period = args.ping_period if args.ping_period is not None else args.pong_wait * 9 / 10
    if not 0 < ping_period < args.pong_wait:
        p.error("--ping-period must be positive and less than --pong-wait")
    settings = Settings(
        write_wait=args.write_wait,
        pong_wait=args.pong_wait,
        ping_period=ping_period,
        max_message_size=args.max_message_size,
    )
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s")

    try:
        server = ChatServer(args.addr, settings)
    except OSError as err:
        print(f"chat: cannot listen on {args.addr[0]}:{args.addr[1]}: {err}", file=sys.stderr)
        return 1
    server.hub.start()
    print(f"Chat server running: open {server.url()} in two browser windows (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        server.hub.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
