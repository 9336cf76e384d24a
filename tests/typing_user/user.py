"""A small program written the way users write gorillaws code, for ``mypy --strict``.

It is type-checked against the *installed* package by ``.ci/typecheck-user``
(so an editable install that mypy cannot see fails CI), and run for real by
tests/test_typing_user.py: an echo server on http.server, a client, JSON,
a streamed message, handlers and the enums.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Tuple

import gorillaws
from gorillaws import (
    CloseCode,
    CloseError,
    Conn,
    Dialer,
    HandshakeError,
    MessageReader,
    MessageType,
    MessageWriter,
    Upgrader,
    wsjson,
)

log = logging.getLogger("typing_user")
upgrader = Upgrader(subprotocols=["echo"], handshake_timeout=5.0)


def copy_message(reader: MessageReader, writer: MessageWriter) -> int:
    """Stream one message from a reader to a writer; returns the byte count."""
    n = 0
    while True:
        chunk: bytes = reader.read(4096)
        if not chunk:
            return n
        n += writer.write(chunk)


def echo(conn: Conn) -> None:
    """Send every message back, streamed through a reader and a writer."""
    log.info("serving %s for %s with %s", conn.resource_name or "/", conn.origin, conn.protocol or "no subprotocol")
    try:
        while True:
            mt, reader = conn.next_reader()
            with conn.next_writer(mt) as writer:
                copy_message(reader, writer)
    except CloseError as err:
        if gorillaws.is_unexpected_close_error(err, CloseCode.NORMAL_CLOSURE, CloseCode.GOING_AWAY):
            log.warning("unexpected close: %s", err)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        try:
            conn = upgrader.upgrade(self)
        except HandshakeError:
            return
        with conn:
            echo(conn)

    def log_message(self, format: str, *args: object) -> None:
        pass


def start_server() -> Tuple[ThreadingHTTPServer, str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host, port = server.server_address[:2]
    return server, f"ws://{host!s}:{port}/"


def client(url: str) -> List[object]:
    """Talk to the echo server; returns what came back, for the test to check."""
    seen: List[object] = []
    pongs: List[bytes] = []

    def on_pong(data: bytes) -> None:
        pongs.append(data)

    pong_handler: gorillaws.PongHandler = on_pong
    dialer = Dialer(handshake_timeout=5.0, subprotocols=["echo"])
    conn, response = dialer.dial(url, {"X-Client": "typing-user"})
    resp: gorillaws.Response = response
    seen.append(resp.status)
    seen.append(conn.subprotocol())
    conn.set_pong_handler(pong_handler)
    conn.set_read_deadline(time.monotonic() + 5.0)

    conn.write_message(MessageType.TEXT, "hello")
    mt, data = conn.read_message()
    kind: MessageType = mt
    seen.append((kind is MessageType.TEXT, data))

    wsjson.write(conn, {"n": 1})
    value = wsjson.read(conn)
    seen.append(value)

    conn.write_control(MessageType.PING, b"p", time.monotonic() + 1.0)
    conn.write_message(gorillaws.BINARY_MESSAGE, b"\x00\x01")
    seen.append(conn.read_message())
    seen.append(pongs[:])

    code: Optional[int] = None
    try:
        conn.close(CloseCode.NORMAL_CLOSURE, "done")
    except gorillaws.WebSocketError as err:
        code = conn.close_status(err)
    seen.append(code)
    return seen


def main() -> List[object]:
    server, url = start_server()
    try:
        return client(url)
    finally:
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    print(main())
