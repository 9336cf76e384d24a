"""The ``gorillaws`` command-line tool: ``connect``, ``serve`` and ``ping``.

Run it as ``gorillaws ...`` (the console script) or ``python -m gorillaws ...``.

``gorillaws connect URL``
    An interactive client in the spirit of wscat/websocat: every line read
    from standard input is sent as a text message; every message received is
    written to standard output, one per line (binary messages raw, or as hex
    with ``--binary-hex``).  End of input sends a normal close and waits for
    the server's answer.  Status lines go to standard error, so standard
    output holds only the messages.

``gorillaws serve``
    An echo server (each message is sent back to its sender) or, with
    ``--broadcast``, a broadcast server (each message goes to every connected
    client), on ``--host``/``--port`` (default 127.0.0.1:8080).  Prints
    ``listening on ws://HOST:PORT/`` once it accepts connections.

``gorillaws ping URL``
    Connects, sends ``-c`` pings one ``--interval`` apart and prints each
    round-trip time and a summary.

Exit codes (for scripts):

* **0**: success (``connect``: the connection ended with a normal or
  going-away close, or input ended and the close handshake finished;
  ``ping``: every ping got its pong; ``serve``: stopped with Ctrl-C).
* **1**: a connection or handshake error: refused connection, DNS failure,
  TLS failure, a server that did not upgrade (its status and body are shown),
  a timeout, an abnormal close, lost pongs; ``serve``: cannot listen.
* **2**: usage error: unknown option, malformed URL or header.
* **130**: interrupted with Ctrl-C (``connect`` and ``ping``).
"""

from __future__ import annotations

import argparse
import binascii
import os
import queue
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Callable, List, Optional, Sequence, Set, Tuple

from . import __version__
from .conn import Conn
from .exceptions import CloseError, DeadlineExceeded, ErrBadHandshake, HandshakeError, WebSocketError
from .frames import (
    BINARY_MESSAGE,
    CLOSE_ABNORMAL_CLOSURE,
    CLOSE_GOING_AWAY,
    CLOSE_NO_STATUS_RECEIVED,
    CLOSE_MESSAGE,
    CLOSE_NORMAL_CLOSURE,
    TEXT_MESSAGE,
    format_close_message,
)
from .prepared import PreparedMessage

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

_COMPRESSION_CHOICES = ("off", "no-context-takeover", "context-takeover")
_PROG = "gorillaws"


class _UsageError(Exception):
    """A bad argument found after parsing (a malformed URL or header)."""


def _err(msg: str) -> None:
    print(f"{_PROG}: {msg}", file=sys.stderr, flush=True)


def _compression_mode(name: str) -> int:
    from . import deflate

    return {
        "off": deflate.COMPRESSION_DISABLED,
        "no-context-takeover": deflate.COMPRESSION_NO_CONTEXT_TAKEOVER,
        "context-takeover": deflate.COMPRESSION_CONTEXT_TAKEOVER,
    }[name]


def _parse_header(value: str) -> Tuple[str, str]:
    name, sep, val = value.partition(":")
    name = name.strip()
    if not sep or not name or any(c in name for c in " \t\r\n"):
        raise argparse.ArgumentTypeError(f"expected 'Name: value', got {value!r}")
    return name, val.strip()


# ---------------------------------------------------------------------------
# Dialling with clear errors
# ---------------------------------------------------------------------------


def _check_url(url: str) -> None:
    """Reject URLs the dialler cannot use, as a usage error."""
    from .client import _parse_url

    try:
        _parse_url(url)
    except ValueError as exc:
        raise _UsageError(str(exc).replace("websocket: ", "")) from None


def _dial(args: argparse.Namespace) -> Conn:
    """Dial ``args.url`` with the connection flags; raise ``_DialFailed`` with a clear message."""
    from .client import Dialer
    from .proxy import proxy_from_environment

    _check_url(args.url)
    tls: Optional[ssl.SSLContext] = None
    if args.insecure:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
    elif args.cacert:
        tls = ssl.create_default_context(cafile=args.cacert)
    proxy: Callable[[str], Optional[str]]
    if args.proxy is not None:
        fixed = args.proxy or None
        proxy = lambda _url: fixed  # noqa: E731
    else:
        proxy = proxy_from_environment
    dialer = Dialer(
        proxy=proxy,
        tls_client_config=tls,
        handshake_timeout=args.timeout,
        subprotocols=args.subprotocol or (),
        compression_mode=_compression_mode(args.compression),
    )
    headers: List[Tuple[str, str]] = list(args.header or [])
    if args.origin:
        headers.append(("Origin", args.origin))
    try:
        conn, resp = dialer.dial(args.url, headers)
    except ssl.SSLCertVerificationError as exc:
        # (An SSLCertVerificationError is also a ValueError: test it first.)
        detail = exc.args[0] if len(exc.args) == 1 else str(exc)
        raise _DialFailed(f"{detail} (--insecure skips verification, --cacert adds a CA)") from None
    except ValueError as exc:
        raise _UsageError(str(exc).replace("websocket: ", "")) from None
    except ErrBadHandshake as exc:
        raise _DialFailed(_describe_bad_handshake(args.url, exc)) from None
    except DeadlineExceeded:
        raise _DialFailed(f"timed out after {args.timeout:g}s connecting to {args.url}") from None
    except ssl.SSLError as exc:
        raise _DialFailed(f"TLS failed for {args.url}: {exc} (--insecure skips verification)") from None
    except ConnectionRefusedError:
        raise _DialFailed(f"connection refused: nothing is listening at {args.url}") from None
    except socket.gaierror as exc:
        raise _DialFailed(f"cannot resolve the host of {args.url}: {exc.strerror or exc}") from None
    except (OSError, WebSocketError) as exc:
        raise _DialFailed(f"cannot connect to {args.url}: {exc}") from None
    if args.verbose:
        extra = []
        if conn.subprotocol():
            extra.append(f"subprotocol {conn.subprotocol()!r}")
        if conn.compression is not None:
            extra.append("compression on")
        _err(f"connected to {args.url}" + (f" ({', '.join(extra)})" if extra else ""))
    return conn


class _DialFailed(Exception):
    pass


def _describe_bad_handshake(url: str, exc: ErrBadHandshake) -> str:
    resp = exc.response
    if resp is None:
        return f"handshake with {url} failed: {exc}"
    lines = [f"handshake with {url} failed: the server answered {resp.status} {resp.reason}".rstrip()]
    if resp.status == 101:
        lines[0] += f" but {str(exc).replace('websocket: ', '')}"
    location = resp.headers.get("Location") if resp.headers is not None else None
    if location:
        lines.append(f"Location: {location}")
    body = getattr(resp, "body", b"") or b""
    if body:
        text = body.decode("utf-8", "replace").strip()
        if text:
            lines.append(text)
    return "\n".join(lines)


def _add_dial_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("url", help="ws://, wss://, http:// or https:// URL")
    p.add_argument("-s", "--subprotocol", action="append", metavar="NAME", help="offer this subprotocol (repeatable)")
    p.add_argument("-H", "--header", action="append", type=_parse_header, metavar="'NAME: VALUE'", help="add a request header (repeatable)")
    p.add_argument("-o", "--origin", help="send this Origin header")
    p.add_argument("--compression", choices=_COMPRESSION_CHOICES, default="off", help="offer permessage-deflate (default: off)")
    p.add_argument("--proxy", metavar="URL", help="use this proxy (http://, https://, socks5://...); '' for none (default: from the environment)")
    p.add_argument("-k", "--insecure", action="store_true", help="do not verify the server's TLS certificate")
    p.add_argument("--cacert", metavar="FILE", help="verify the server's certificate against this CA bundle")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="handshake timeout (default: %(default)s)")
    p.add_argument("-v", "--verbose", action="store_true", help="report connection details on standard error")


# ---------------------------------------------------------------------------
# connect
# ---------------------------------------------------------------------------


def _close_exit(err: BaseException) -> int:
    if isinstance(err, CloseError):
        if err.code in (CLOSE_NORMAL_CLOSURE, CLOSE_GOING_AWAY, CLOSE_NO_STATUS_RECEIVED):
            return EXIT_OK
        return EXIT_ERROR
    return EXIT_ERROR


def _describe_close(err: BaseException) -> str:
    if isinstance(err, CloseError):
        if err.code == CLOSE_ABNORMAL_CLOSURE:
            return "connection lost (no close frame)"
        text = f" {err.text!r}" if err.text else ""
        return f"connection closed by the server: {err.code}{text}"
    return f"connection failed: {err}"


def cmd_connect(args: argparse.Namespace, stdin_fd: int, stdout: IO[bytes]) -> int:
    """Run ``connect``: send stdin lines, print received messages."""
    conn = _dial(args)
    done = threading.Event()
    result: List[int] = []
    out_lock = threading.Lock()

    def emit(data: bytes) -> None:
        with out_lock:
            stdout.write(data + b"\n")
            stdout.flush()

    def reader() -> None:
        try:
            while True:
                mt, data = conn.read_message()
                if mt == BINARY_MESSAGE and args.binary_hex:
                    emit(binascii.hexlify(data))
                else:
                    emit(data)
        except (WebSocketError, OSError) as err:
            if not result:
                result.append(_close_exit(err))
                if not (isinstance(err, CloseError) and err.code == CLOSE_NORMAL_CLOSURE and sent_close.is_set()):
                    _err(_describe_close(err))
        finally:
            done.set()

    sent_close = threading.Event()

    def send(line: bytes) -> None:
        line = line.rstrip(b"\r")
        if args.send_binary:
            conn.write_message(BINARY_MESSAGE, line)
        else:
            conn.write_message(TEXT_MESSAGE, line.decode("utf-8", "replace"))

    def writer() -> None:
        # os.read on the descriptor rather than the buffered file: this
        # thread may still be blocked in it when the program exits, and a
        # buffered stdin's lock held by a daemon thread can abort the exit.
        pending = b""
        try:
            while True:
                chunk = os.read(stdin_fd, 65536)
                if not chunk:
                    break
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    send(line)
            if pending:
                send(pending)
            # End of input: start the close handshake; the reader sees the answer.
            # Only the close frame is sent here: conn.close() would drain (and
            # drop) echoes still in flight whenever the reader thread is
            # between two reads, e.g. while it prints the previous message.
            sent_close.set()
            conn.write_control(
                CLOSE_MESSAGE,
                format_close_message(CLOSE_NORMAL_CLOSURE, ""),
                time.monotonic() + conn.close_timeout,
            )
        except (WebSocketError, OSError):
            pass
        finally:
            done.set()

    rt = threading.Thread(target=reader, name="gorillaws-cli-reader", daemon=True)
    wt = threading.Thread(target=writer, name="gorillaws-cli-writer", daemon=True)
    rt.start()
    wt.start()
    try:
        while not done.wait(0.2):
            pass
        rt.join(conn.close_timeout + 1)
    except KeyboardInterrupt:
        conn.close(CLOSE_GOING_AWAY)
        return EXIT_INTERRUPTED
    conn.close_now()
    return result[0] if result else EXIT_OK


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------


def cmd_ping(args: argparse.Namespace) -> int:
    """Run ``ping``: print round-trip times of ``-c`` pings."""
    if args.count < 1:
        raise _UsageError("--count must be at least 1")
    conn = _dial(args)
    failure: List[BaseException] = []

    def reader() -> None:
        # Pongs are handled inside reads, so someone must read; data
        # messages (if the server sends any) are discarded.
        try:
            while True:
                conn.read_message()
        except (WebSocketError, OSError) as err:
            failure.append(err)

    threading.Thread(target=reader, name="gorillaws-ping-reader", daemon=True).start()
    rtts: List[float] = []
    try:
        for seq in range(1, args.count + 1):
            if seq > 1:
                time.sleep(args.interval)
            if failure:
                break
            try:
                rtt = conn.ping(timeout=args.wait)
            except DeadlineExceeded:
                print(f"no pong from {args.url}: seq={seq} (waited {args.wait:g}s)", flush=True)
                continue
            except (WebSocketError, OSError) as err:
                failure.append(err)
                break
            rtts.append(rtt)
            print(f"pong from {args.url}: seq={seq} time={rtt * 1000:.3f} ms", flush=True)
    except KeyboardInterrupt:
        conn.close(CLOSE_GOING_AWAY)
        return EXIT_INTERRUPTED
    sent = args.count if not failure else len(rtts)
    if failure:
        _err(_describe_close(failure[0]))
    conn.close()
    lost = args.count - len(rtts)
    summary = f"--- {args.url}: {args.count} pings, {len(rtts)} pongs, {100.0 * lost / args.count:.0f}% lost"
    if rtts:
        summary += (
            f"; rtt min/avg/max = {min(rtts) * 1000:.3f}/{sum(rtts) / len(rtts) * 1000:.3f}/{max(rtts) * 1000:.3f} ms"
        )
    del sent
    print(summary, flush=True)
    return EXIT_OK if lost == 0 else EXIT_ERROR


# ---------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------


class _Broadcaster:
    """Fans messages out to every connection; one writer thread per connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queues: Set["queue.Queue[Optional[PreparedMessage]]"] = set()

    def add(self, q: "queue.Queue[Optional[PreparedMessage]]") -> None:
        with self._lock:
            self._queues.add(q)

    def remove(self, q: "queue.Queue[Optional[PreparedMessage]]") -> None:
        with self._lock:
            self._queues.discard(q)

    def send(self, pm: PreparedMessage) -> None:
        with self._lock:
            targets = list(self._queues)
        for q in targets:
            try:
                q.put_nowait(pm)
            except queue.Full:
                # A client that cannot keep up is disconnected.
                self.remove(q)
                try:
                    q.get_nowait()
                except queue.Empty:
                    pass
                q.put_nowait(None)


def _serve_echo(conn: Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


def _serve_broadcast(conn: Conn, hub: _Broadcaster, write_wait: float) -> None:
    q: "queue.Queue[Optional[PreparedMessage]]" = queue.Queue(256)

    def writer() -> None:
        try:
            while True:
                pm = q.get()
                if pm is None:
                    break
                conn.set_write_deadline(time.monotonic() + write_wait)
                conn.write_prepared_message(pm)
        except (WebSocketError, OSError):
            pass
        finally:
            conn.close_now()

    hub.add(q)
    t = threading.Thread(target=writer, name="gorillaws-serve-writer", daemon=True)
    t.start()
    try:
        while True:
            mt, data = conn.read_message()
            hub.send(PreparedMessage(mt, data))
    finally:
        hub.remove(q)
        try:
            q.put_nowait(None)
        except queue.Full:
            pass
        t.join(write_wait + 1)


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``serve`` until interrupted."""
    from .server import Upgrader

    compression = _compression_mode(args.compression)
    upgrader = Upgrader(
        subprotocols=args.subprotocol or (),
        compression_mode=compression,
        insecure_skip_verify=args.any_origin,
    )
    hub = _Broadcaster()
    mode = "broadcast" if args.broadcast else "echo"
    quiet = args.quiet

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *a: Any) -> None:  # noqa: A002
            if not quiet:
                _err(f"{self.address_string()} {format % a}")

        def do_GET(self) -> None:  # noqa: N802
            try:
                conn = upgrader.upgrade(self)
            except HandshakeError:
                return  # the upgrader answered with the HTTP error
            peer = self.address_string()
            if not quiet:
                _err(f"{peer} connected")
            try:
                if args.broadcast:
                    _serve_broadcast(conn, hub, 10.0)
                else:
                    _serve_echo(conn)
            except (WebSocketError, OSError) as err:
                if not quiet:
                    _err(f"{peer} {_describe_close(err).replace('by the server', 'by the client')}")
            finally:
                conn.close_now()

    class Server(ThreadingHTTPServer):
        daemon_threads = True
        allow_reuse_address = True

    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    Server.address_family = family
    try:
        server = Server((args.host, args.port), Handler)
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}")
        return EXIT_ERROR
    port = server.server_address[1]
    host = f"[{args.host}]" if ":" in args.host else args.host
    print(f"listening on ws://{host}:{port}/ ({mode})", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> "NoReturn":  # type: ignore[name-defined]  # noqa: F821
        self.print_usage(sys.stderr)
        _err(message)
        sys.exit(EXIT_USAGE)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gorillaws`` command."""
    p = _Parser(
        prog=_PROG,
        description="WebSocket client and server tool (gorillaws).",
        epilog="exit codes: 0 ok, 1 connection/handshake error, 2 usage error, 130 interrupted",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser("connect", help="interactive client: stdin lines are sent, messages are printed")
    _add_dial_options(c)
    c.add_argument("-x", "--binary-hex", action="store_true", help="print received binary messages as hex")
    c.add_argument("-b", "--send-binary", action="store_true", help="send input lines as binary messages")

    s = sub.add_parser("serve", help="run an echo (or broadcast) server")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("-p", "--port", type=int, default=8080, help="port (default: %(default)s; 0 picks a free one)")
    s.add_argument("--broadcast", action="store_true", help="send every message to every client instead of echoing")
    s.add_argument("-s", "--subprotocol", action="append", metavar="NAME", help="accept this subprotocol (repeatable, in order of preference)")
    s.add_argument("--compression", choices=_COMPRESSION_CHOICES, default="off", help="accept permessage-deflate (default: off)")
    s.add_argument("--any-origin", action="store_true", help="accept browsers from any origin (default: same origin only)")
    s.add_argument("-q", "--quiet", action="store_true", help="do not log connections")

    g = sub.add_parser("ping", help="measure round-trip time with ping/pong")
    _add_dial_options(g)
    g.add_argument("-c", "--count", type=int, default=4, help="number of pings (default: %(default)s)")
    g.add_argument("-i", "--interval", type=float, default=1.0, metavar="SECONDS", help="time between pings (default: %(default)s)")
    g.add_argument("-W", "--wait", type=float, default=5.0, metavar="SECONDS", help="time to wait for each pong (default: %(default)s)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of ``gorillaws`` and ``python -m gorillaws``; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "connect":
            return cmd_connect(args, sys.stdin.fileno(), sys.stdout.buffer)
        if args.command == "ping":
            return cmd_ping(args)
        return cmd_serve(args)
    except _UsageError as exc:
        _err(str(exc))
        return EXIT_USAGE
    except _DialFailed as exc:
        _err(str(exc))
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
