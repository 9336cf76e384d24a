"""Our side of the interop tests: a gorillaws echo server and a client scenario.

The same small protocol is spoken with every peer (the ``websockets``
package, npm ``ws``, Go's gorilla, Chromium):

* an echo server sends every message back with the same type;
* the text message ``close:CODE:REASON`` makes the server close the
  connection with that code and reason;
* a peer server prints/records ``closed CODE REASON`` when a client closes;
* (gorillaws server only) ``ping-me`` makes it send a ping ("from-server")
  and answer "pinged"; ``pong?`` answers ``pong-seen:`` and the pong payloads
  received so far (for browsers, which cannot send pings).

:class:`EchoServer` is gorillaws's server; :func:`client_scenario` runs
gorillaws's client against a peer's server and returns what happened, for the
test to assert.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import gorillaws
from gorillaws import deflate
from helpers import AcceptLoop

MODES = {
    "off": deflate.COMPRESSION_DISABLED,
    "no-context": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
    "context": deflate.COMPRESSION_CONTEXT_TAKEOVER,
}

LARGE_TEXT = ("interop " * 32768).encode("ascii")  # 256 KiB, compresses well
BINARY = bytes(range(256)) * 4
KOSME = "\u03ba\u1f79\u03c3\u03bc\u03b5"
IO_TIMEOUT = 10.0


class EchoServer:
    """gorillaws echo server on 127.0.0.1 (raw sockets + Upgrader), in background threads.

    ``closes`` collects ``(code, reason)`` of every close frame received from
    a client; ``extensions`` the negotiated ``Sec-WebSocket-Extensions``
    (codec parameters) per connection; ``errors`` unexpected exceptions.
    """

    def __init__(self, compression: str = "off") -> None:
        self.upgrader = gorillaws.Upgrader(
            compression_mode=MODES[compression],
            check_origin=lambda r: True,
            handshake_timeout=IO_TIMEOUT,
            write_buffer_size=1024,
        )
        self.closes: List[Tuple[int, str]] = []
        self.extensions: List[Optional[str]] = []
        self.errors: List[BaseException] = []
        self.handshake_errors: List[BaseException] = []
        self._conns: List[gorillaws.Conn] = []
        self._cond = threading.Condition()
        self._loop = AcceptLoop(self._serve)
        self.port = self._loop.port
        self.url = "ws://127.0.0.1:%d/" % self.port

    def _serve(self, sock: socket.socket) -> None:
        sock.settimeout(None)
        try:
            conn = self.upgrader.upgrade(sock)
        except Exception as e:
            self.handshake_errors.append(e)
            return
        self._conns.append(conn)
        codec = conn.compression
        self.extensions.append(codec.params.header_value() if codec is not None else None)
        conn.set_read_limit(16 << 20)
        pongs: List[bytes] = []
        conn.set_pong_handler(pongs.append)
        try:
            while True:
                mt, data = conn.read_message()
                if mt == gorillaws.TEXT_MESSAGE and data == b"ping-me":
                    # For peers that cannot ping (browsers): we ping, they pong.
                    conn.write_control(gorillaws.PING_MESSAGE, b"from-server", time.monotonic() + 5)
                    conn.write_message(mt, b"pinged")
                    continue
                if mt == gorillaws.TEXT_MESSAGE and data == b"pong?":
                    conn.write_message(mt, b"pong-seen:" + b",".join(pongs))
                    continue
                if mt == gorillaws.TEXT_MESSAGE and data.startswith(b"close:"):
                    _, code, reason = data.decode("utf-8").split(":", 2)
                    conn.close(int(code), reason)
                    return
                if len(data) > 1000:
                    # Long messages go back in fragments (the writer's buffer
                    # is 1 KiB), split at arbitrary bytes, also compressed.
                    w = conn.next_writer(mt)
                    for i in range(0, len(data), 700):
                        w.write(data[i : i + 700])
                    w.close()
                else:
                    conn.write_message(mt, data)
        except gorillaws.CloseError as e:
            with self._cond:
                self.closes.append((e.code, e.text))
                self._cond.notify_all()
        except gorillaws.WebSocketError as e:
            self.errors.append(e)
        except OSError as e:
            self.errors.append(e)
        finally:
            conn.close()

    def wait_closes(self, n: int, timeout: float = IO_TIMEOUT) -> List[Tuple[int, str]]:
        """Wait until ``n`` client close frames were received; return them all."""
        end = time.monotonic() + timeout
        with self._cond:
            while len(self.closes) < n and time.monotonic() < end:
                self._cond.wait(0.05)
            return list(self.closes)

    def stop(self) -> None:
        """Stop accepting, close every connection, join the threads."""
        for c in self._conns:
            c.close_now()
        self._loop.close()

    def __enter__(self) -> "EchoServer":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class ClientReport:
    """What :func:`client_scenario` saw."""

    compressed: bool = False
    params: Optional[str] = None
    echoes: Dict[str, bool] = field(default_factory=dict)
    pong: Optional[bytes] = None
    server_close: Optional[Tuple[int, str]] = None
    fragments_sent: int = 0


def _echo_ok(conn: gorillaws.Conn, mt: int, payload: bytes) -> bool:
    conn.write_message(mt, payload)
    got_type, got = conn.read_message()
    return got_type == mt and got == payload


def client_scenario(url: str, compression: str = "off", close_reason: str = "server bye") -> ClientReport:
    """Run gorillaws's client against a peer echo server speaking the protocol above."""
    rep = ClientReport()
    dialer = gorillaws.Dialer(
        compression_mode=MODES[compression],
        handshake_timeout=IO_TIMEOUT,
        write_buffer_size=1024,
    )
    conn, _ = dialer.dial(url)
    try:
        conn.set_read_deadline(time.monotonic() + 30)
        conn.set_read_limit(16 << 20)
        codec = conn.compression
        rep.compressed = codec is not None
        rep.params = codec.params.header_value() if codec is not None else None
        rep.echoes["text"] = _echo_ok(conn, gorillaws.TEXT_MESSAGE, ("hello " + KOSME).encode("utf-8"))
        rep.echoes["empty"] = _echo_ok(conn, gorillaws.BINARY_MESSAGE, b"")
        rep.echoes["binary"] = _echo_ok(conn, gorillaws.BINARY_MESSAGE, BINARY)
        rep.echoes["large"] = _echo_ok(conn, gorillaws.TEXT_MESSAGE, LARGE_TEXT)
        rep.echoes["large-again"] = _echo_ok(conn, gorillaws.TEXT_MESSAGE, LARGE_TEXT)
        # A fragmented text message, split inside characters (write buffer 1 KiB).
        text = (KOSME * 700).encode("utf-8")
        w = conn.next_writer(gorillaws.TEXT_MESSAGE)
        for i in range(0, len(text), 333):
            w.write(text[i : i + 333])
        w.close()
        mt, got = conn.read_message()
        rep.echoes["fragmented"] = mt == gorillaws.TEXT_MESSAGE and got == text
        # Ping: the pong is handled while reading the next echo.
        pongs: List[bytes] = []
        conn.set_pong_handler(pongs.append)
        conn.write_control(gorillaws.PING_MESSAGE, b"ping!", time.monotonic() + 5)
        rep.echoes["after-ping"] = _echo_ok(conn, gorillaws.TEXT_MESSAGE, b"after ping")
        rep.pong = pongs[0] if pongs else None
        conn.write_message(gorillaws.TEXT_MESSAGE, "close:4002:" + close_reason)
        try:
            conn.read_message()
        except gorillaws.CloseError as e:
            rep.server_close = (e.code, e.text)
    finally:
        conn.close()
    return rep


def client_close(url: str, code: int, reason: str, compression: str = "off") -> None:
    """Connect, exchange one message, and close with ``code``/``reason``."""
    dialer = gorillaws.Dialer(compression_mode=MODES[compression], handshake_timeout=IO_TIMEOUT)
    conn, _ = dialer.dial(url)
    conn.close_timeout = 5.0
    try:
        conn.set_read_deadline(time.monotonic() + 10)
        assert _echo_ok(conn, gorillaws.TEXT_MESSAGE, b"before close")
    finally:
        conn.close(code, reason)


def check_client_report(rep: ClientReport, compression: str, close_reason: str = "server bye") -> None:
    """Assert a :func:`client_scenario` report is all good."""
    assert rep.compressed == (compression != "off"), rep
    bad = [k for k, ok in rep.echoes.items() if not ok]
    assert not bad, "echo mismatch: %s" % bad
    assert rep.pong == b"ping!", rep.pong
    assert rep.server_close == (4002, close_reason), rep.server_close
