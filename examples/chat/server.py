"""A chat room: the browser page at ``/``, the WebSocket at ``/ws``.

Run it with::

    python examples/chat/server.py            # http://127.0.0.1:8080/
    python examples/chat/server.py --addr 0.0.0.0:9000

and open the printed URL in two browser windows.  Several processes (on one
machine or many) share the room through Redis::

    redis-server --port 6379 &
    python examples/chat/server.py --addr 127.0.0.1:8080 --redis redis://127.0.0.1:6379/0
    python examples/chat/server.py --addr 127.0.0.1:8081 --redis redis://127.0.0.1:6379/0

How it is built (the shape of gorilla/websocket's chat example, on library parts):

* :class:`gorillaws.Server` accepts connections (one thread each), answers
  plain HTTP requests with the page (``http_handler``), and on Ctrl-C or
  SIGTERM closes every connection with 1001 "going away" before it exits.
* A :class:`gorillaws.hub.Hub` holds the room, topic ``"chat"``.  Each
  connection's thread reads chat lines and publishes them; the hub frames
  each line once and writes it to every member from a few shared writer
  threads, so a slow browser never holds up the others: one that falls
  ``send_queue_size`` messages behind is closed (1008).  With ``--redis``
  the hub also sends each line to the other processes and delivers theirs.
* **Keepalive with deadlines.**  The server pings every ``ping_period``
  seconds.  The reader keeps a read deadline ``pong_wait`` seconds ahead and
  pushes it forward whenever a pong arrives, so a peer that vanished without
  a close (a laptop lid shut, a cable pulled) is noticed within
  ``pong_wait``.  ``ping_period`` must be shorter than ``pong_wait``.
* Messages over ``max_message_size`` **bytes** close the connection with
  1009; the page counts bytes (UTF-8) too, and the server writes its limit
  into the page, so the two always agree.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import Any, List, Optional, Tuple

# Let "python examples/chat/server.py" work from a source checkout without
# installing the package first.
_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
if _ROOT not in sys.path:  # pragma: no cover - depends on how it is started
    sys.path.insert(0, _ROOT)

import gorillaws  # noqa: E402
import gorillaws.hub  # noqa: E402

log = logging.getLogger("chat")

HOME_PAGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "home.html")
TOPIC = "chat"
# The page's default limit; the server writes its own value in its place.
PAGE_LIMIT = b'data-max-bytes="512"'


@dataclass(frozen=True)
class Settings:
    """Timing and size limits; the defaults are those of gorilla's chat example."""

    #: Time allowed to write one message (or ping) to the peer.
    write_wait: float = 10.0
    #: Time allowed to read the next pong from the peer.
    pong_wait: float = 60.0
    #: How often to ping the peer; must be less than ``pong_wait``.
    ping_period: float = 54.0
    #: Largest message accepted from a peer, in bytes (UTF-8 bytes for text).
    max_message_size: int = 512
    #: Messages queued for one slow client before the hub closes it.
    send_queue_size: int = 256


def new_hub(settings: Settings, redis_url: Optional[str] = None) -> gorillaws.hub.Hub:
    """The room: in this process only, or shared through Redis."""
    return gorillaws.hub.Hub(redis_url=redis_url, queue_size=settings.send_queue_size, write_timeout=settings.write_wait)


class Client:
    """One browser connection: reads chat lines and publishes them to the room."""

    def __init__(self, hub: gorillaws.hub.Hub, conn: gorillaws.Conn, settings: Settings, name: str) -> None:
        self.hub = hub
        self.conn = conn
        self.settings = settings
        self.name = name

    def serve(self) -> None:
        """Join the room, read until the connection ends, leave the room."""
        conn, s = self.conn, self.settings
        conn.set_read_limit(s.max_message_size)
        conn.set_read_deadline(time.monotonic() + s.pong_wait)

        def on_pong(_data: bytes) -> None:
            # The peer is alive: give it another pong_wait to answer the next ping.
            conn.set_read_deadline(time.monotonic() + s.pong_wait)

        conn.set_pong_handler(on_pong)
        # Pings go out from the connection's keepalive thread (a ping is a
        # control frame, so it may be sent while the hub writes messages).
        conn.start_keepalive(s.ping_period, s.pong_wait)
        self.hub.subscribe(conn, TOPIC)
        try:
            while True:
                _, message = conn.read_message()
                # One chat line per message: fold newlines and trim.
                text = b" ".join(message.split())
                if text:
                    self.hub.publish(TOPIC, gorillaws.TEXT_MESSAGE, text)
        except gorillaws.CloseError as err:
            if err.code not in (gorillaws.CLOSE_GOING_AWAY, gorillaws.CLOSE_NORMAL_CLOSURE):
                log.info("%s: %s", self.name, err)
        except (gorillaws.WebSocketError, OSError) as err:
            log.info("%s: %s", self.name, err)
        finally:
            self.hub.unsubscribe(conn)


class ChatServer:
    """The chat's :class:`gorillaws.Server`, its hub and its page."""

    def __init__(self, addr: Tuple[str, int], settings: Settings = Settings(), redis_url: Optional[str] = None) -> None:
        self.settings = settings
        self.hub = new_hub(settings, redis_url)
        with open(HOME_PAGE, "rb") as f:
            self.page = f.read().replace(PAGE_LIMIT, b'data-max-bytes="%d"' % settings.max_message_size)
        self._ids = itertools.count(1)
        try:
            self.server = gorillaws.Server(
                self.handle,
                addr[0],
                addr[1],
                upgrader=gorillaws.Upgrader(read_buffer_size=1024, write_buffer_size=1024),
                http_handler=self.http,
            )
        except OSError:
            self.hub.close()
            raise

    def url(self) -> str:
        host, port = self.server.address
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{port}/"

    def http(self, request: Any) -> Tuple[int, List[Tuple[str, str]], bytes]:
        """Plain HTTP: the page at ``/``, 404 elsewhere."""
        if request.path != "/":
            return 404, [("Content-Type", "text/plain; charset=utf-8")], b"404 Not Found\n"
        return 200, [("Content-Type", "text/html; charset=utf-8"), ("Cache-Control", "no-store")], self.page

    def handle(self, conn: gorillaws.Conn, request: Any) -> None:
        """A WebSocket connection (the server closes it when this returns)."""
        if request.path != "/ws":
            conn.close(gorillaws.CLOSE_POLICY_VIOLATION, "the chat is at /ws")
            return
        Client(self.hub, conn, self.settings, f"client-{next(self._ids)}").serve()

    def serve_forever(self) -> None:
        """Serve until Ctrl-C or SIGTERM; then every client gets 1001 and the hub stops."""
        self.server.install_signal_handlers()
        try:
            self.server.serve_forever()
        finally:
            self.server.shutdown()
            self.hub.close()


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
    p.add_argument("--redis", metavar="URL", default=None, help="share the room with other processes through Redis, e.g. redis://127.0.0.1:6379/0 (needs: pip install 'gorillaws[redis]')")
    p.add_argument("-v", "--verbose", action="store_true", help="log every connection")
    tuning = p.add_argument_group("keepalive tuning (defaults as in gorilla's chat example)")
    tuning.add_argument("--pong-wait", type=float, default=Settings.pong_wait, help="seconds to wait for a pong (default %(default)s)")
    tuning.add_argument("--ping-period", type=float, default=None, help="seconds between pings (default 9/10 of --pong-wait)")
    tuning.add_argument("--write-wait", type=float, default=Settings.write_wait, help="seconds allowed per write (default %(default)s)")
    tuning.add_argument("--max-message-size", type=int, default=Settings.max_message_size, help="largest message accepted, in bytes (default %(default)s)")
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
        chat = ChatServer(args.addr, settings, args.redis)
    except OSError as err:
        print(f"chat: cannot listen on {args.addr[0]}:{args.addr[1]}: {err}", file=sys.stderr)
        return 1
    except ImportError as err:
        print(f"chat: {err}", file=sys.stderr)
        return 1
    shared = f", sharing the room through {args.redis}" if args.redis else ""
    print(f"Chat server running{shared}: open {chat.url()} in two browser windows (Ctrl-C to stop)", flush=True)
    chat.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
