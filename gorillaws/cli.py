"""The ``gorillaws`` command-line tool: ``connect``, ``serve`` and ``ping``.

Run it as ``gorillaws ...`` (the console script) or ``python -m gorillaws ...``.

``gorillaws connect URL``
    A client in the spirit of wscat/websocat: every line read from standard
    input is sent as a text message (``-b`` binary, ``--send-hex`` hex-encoded
    bytes, ``--whole-input`` all of it as one message); every message
    received is written to standard output, one per line (binary messages
    raw, or ``--binary-output hex|base64``).  Status lines go to standard
    error, so standard output holds only the messages.

    At end of input it waits for replies before closing: it closes (1000)
    once it has received as many messages as it sent, or after ``--wait``
    seconds (default 2) without a message.  Servers answer a close frame at
    once and may drop replies they are still computing, so closing at end of
    input would lose them in a pipeline.  ``--no-close`` keeps listening
    after end of input, ``--listen-only`` does not read standard input at
    all, ``--max-messages N`` (``-1`` for one) exits after N messages.
    Ctrl-C closes with 1001 (going away).

``gorillaws serve``
    An echo server (each message is sent back to its sender) or, with
    ``--broadcast``, a broadcast server (each message goes to every connected
    client, through a :class:`gorillaws.hub.Hub`), on ``--host``/``--port``
    (default 127.0.0.1:8080), run by :class:`gorillaws.serving.Server`.
    Prints ``listening on ws://HOST:PORT/`` once it accepts connections.
    Ctrl-C (or SIGTERM) sends every client a close frame with 1001 and exits
    130 (143).  A browser refused by the origin check is logged with its
    origin and ``--any-origin``.

``gorillaws ping URL``
    Connects, sends ``-c`` pings one ``--interval`` apart and prints each
    round-trip time and a summary.

``gorillaws --version``
    The version, the Python running it, and whether the C speedup is active.

Exit codes (for scripts):

* **0**: success (``connect``: the connection ended with a normal or
  going-away close, or the tool closed it at end of input or after
  ``--max-messages``; ``ping``: every ping got its pong).
* **1**: a connection or handshake error: refused connection, DNS failure,
  TLS failure, a server that did not upgrade (its status and body are shown),
  a timeout, an abnormal close, lost pongs; ``serve``: cannot listen.
* **2**: usage error: unknown option, a malformed URL, header or number, a
  port outside 0-65535, an unreadable ``--cacert`` file, a proxy scheme
  whose module is not installed.  Retrying will not help.
* **130**: interrupted with Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import logging
import os
import platform
import signal
import socket
import ssl
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any, Callable, Iterator, List, NoReturn, Optional, Sequence, Tuple

from . import __version__
from .conn import Conn
from .exceptions import CloseError, DeadlineExceeded, ErrBadHandshake, WebSocketError
from .frames import (
    BINARY_MESSAGE,
    CLOSE_ABNORMAL_CLOSURE,
    CLOSE_GOING_AWAY,
    CLOSE_NO_STATUS_RECEIVED,
    CLOSE_NORMAL_CLOSURE,
    TEXT_MESSAGE,
)

if TYPE_CHECKING:  # pragma: no cover
    from .hub import Hub

__all__ = ["main", "EXIT_OK", "EXIT_ERROR", "EXIT_USAGE", "EXIT_INTERRUPTED"]

#: Exit code: success.
EXIT_OK = 0
#: Exit code: a connection, handshake or TLS error, an abnormal close, lost pongs.
EXIT_ERROR = 1
#: Exit code: a usage error (retrying will not help).
EXIT_USAGE = 2
#: Exit code: interrupted with Ctrl-C (128 + SIGINT); ``serve`` stopped by SIGTERM exits 143.
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
        raise _UsageError(_strip(str(exc))) from None


def _tls_context(args: argparse.Namespace) -> Optional[ssl.SSLContext]:
    """The client TLS context ``-k``/``--cacert`` ask for; a bad ``--cacert`` is a usage error."""
    if args.insecure:
        tls = ssl.create_default_context()
        tls.check_hostname = False
        tls.verify_mode = ssl.CERT_NONE
        return tls
    if not args.cacert:
        return None
    try:
        return ssl.create_default_context(cafile=args.cacert)
    except ssl.SSLError:  # (an OSError too: test it first)
        raise _UsageError(f"--cacert {args.cacert} holds no PEM certificate") from None
    except OSError as exc:
        raise _UsageError(f"cannot read --cacert {args.cacert}: {exc.strerror or exc}") from None


def _verify_hint(args: argparse.Namespace) -> str:
    """What to try when the server's certificate did not verify."""
    if args.cacert:
        return f"(the CA in --cacert {args.cacert} did not sign it; -k skips verification)"
    return "(--cacert FILE trusts a private CA; -k skips verification)"


def _plain_to_tls_hint(url: str) -> str:
    """A ws:// URL whose server hung up or sent garbage may be a TLS port."""
    if url.startswith(("ws://", "http://")):
        return f" (if the server expects TLS, use wss://{url.split('://', 1)[1]})"
    return ""


def _dial(args: argparse.Namespace) -> Conn:
    """Dial ``args.url`` with the connection flags; raise ``_DialFailed`` with a clear message."""
    from .client import Dialer
    from .proxy import proxy_from_environment

    _check_url(args.url)
    tls = _tls_context(args)
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
    url = args.url
    try:
        conn, resp = dialer.dial(url, headers)
    except ssl.SSLError as exc:
        # (An SSLCertVerificationError is also a ValueError: test it first.)
        # The dialer's message names the URL and says what the peer spoke.
        text = _strip(exc.args[0] if len(exc.args) == 1 and isinstance(exc.args[0], str) else str(exc))
        if url not in text:
            text = f"TLS failed for {url}: {text}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            text += " " + _verify_hint(args)
        raise _DialFailed(text) from None
    except ValueError as exc:
        raise _UsageError(_strip(str(exc))) from None
    except ImportError as exc:
        # A SOCKS proxy without PySocks: no retry will help, so a usage error.
        raise _UsageError(_strip(str(exc))) from None
    except ErrBadHandshake as exc:
        text = _describe_bad_handshake(url, exc)
        if exc.response is None:
            text += _plain_to_tls_hint(url)
        raise _DialFailed(text) from None
    except DeadlineExceeded:
        raise _DialFailed(f"timed out after {args.timeout:g}s connecting to {url}") from None
    except socket.gaierror as exc:
        raise _DialFailed(f"cannot resolve the host of {url}: {exc.strerror or exc}") from None
    except (OSError, WebSocketError) as exc:
        # The dialer's messages say what it was doing (and through which
        # proxy); only a plain refusal gets a shorter sentence.
        text = _strip(str(exc))
        if isinstance(exc, ConnectionRefusedError) and not text.startswith("proxy"):
            raise _DialFailed(f"connection refused: nothing is listening at {url}") from None
        if isinstance(exc, ConnectionResetError) and "wss://" not in text:
            text += _plain_to_tls_hint(url)
        raise _DialFailed(text if url in text else f"cannot connect to {url}: {text}") from None
    return conn


def _report_connected(args: argparse.Namespace, conn: Conn) -> None:
    """With ``-v``, say what the handshake agreed on."""
    if args.verbose:
        extra = []
        if conn.subprotocol():
            extra.append(f"subprotocol {conn.subprotocol()!r}")
        if conn.compression is not None:
            extra.append("compression on")
        _err(f"connected to {args.url}" + (f" ({', '.join(extra)})" if extra else ""))


def _strip(text: str) -> str:
    """A library message without its ``websocket: ``/``proxy: `` prefix."""
    for prefix in ("websocket: ", "proxy: "):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


class _DialFailed(Exception):
    pass


def _describe_bad_handshake(url: str, exc: ErrBadHandshake) -> str:
    resp = exc.response
    if resp is None:
        return f"handshake with {url} failed: {_strip(str(exc))}"
    lines = [f"handshake with {url} failed: the server answered {resp.status} {resp.reason}".rstrip()]
    if resp.status == 101:
        lines[0] += f" but {_strip(str(exc))}"
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
    p.add_argument("--timeout", type=_positive_seconds, default=10.0, metavar="SECONDS", help="handshake timeout (default: %(default)s)")
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


def _encode_output(message_type: int, data: bytes, binary_output: str) -> bytes:
    """One received message as the line ``connect`` prints (without the newline)."""
    if message_type == BINARY_MESSAGE:
        if binary_output == "hex":
            return binascii.hexlify(data)
        if binary_output == "base64":
            return base64.b64encode(data)
    return data


class _ConnectSession:
    """One run of ``connect``.

    Three threads share the connection: a reader thread prints every
    message, a writer thread sends standard input, and the main thread
    decides when to close (and is the one Ctrl-C interrupts).  ``_cond``
    guards the counters and flags below; both worker threads notify it.
    """

    def __init__(self, conn: Conn, args: argparse.Namespace, stdin_fd: int, stdout: IO[bytes]) -> None:
        self.conn = conn
        self.args = args
        self.stdin_fd = stdin_fd
        self.stdout = stdout
        self.max_messages: Optional[int] = 1 if args.one_message else args.max_messages
        self.max_sends: Optional[int] = 1 if args.one_message else None
        # After end of input the tool closes, unless told to keep listening
        # or to wait for a number of messages.
        self.close_at_eof = not (args.no_close or args.listen_only or self.max_messages is not None)
        self._cond = threading.Condition()
        self.sent = 0
        self.received = 0
        self.last_event = time.monotonic()
        self.input_done = False
        self.output_gone = False
        self.read_error: Optional[BaseException] = None
        self.closing = False

    # -- reader thread -------------------------------------------------------

    def _emit(self, message_type: int, data: bytes) -> None:
        line = _encode_output(message_type, data, self.args.binary_output)
        try:
            self.stdout.write(line + b"\n")
            self.stdout.flush()
        except (BrokenPipeError, ValueError):
            # The consumer went away (``| head -1``): stop printing, close
            # politely, and keep the exit quiet (no flush error at exit).
            self.output_gone = True
            _silence_stdout()

    def read_loop(self) -> None:
        try:
            while True:
                mt, data = self.conn.read_message()
                with self._cond:
                    # Past the limit (or after stdout closed) messages are
                    # read but not printed, until the close handshake ends.
                    wanted = not self.output_gone and (self.max_messages is None or self.received < self.max_messages)
                    if wanted:
                        self.received += 1
                if wanted:
                    self._emit(mt, data)
                with self._cond:
                    self.last_event = time.monotonic()
                    self._cond.notify_all()
        except (WebSocketError, OSError) as err:
            with self._cond:
                self.read_error = err
                self._cond.notify_all()

    # -- writer thread -------------------------------------------------------

    def _send(self, chunk: bytes) -> None:
        args = self.args
        if args.send_hex:
            try:
                payload = binascii.unhexlify(b"".join(chunk.split()))
            except (binascii.Error, ValueError):
                _err(f"not sent: input is not hex: {chunk[:40]!r}")
                return
            self.conn.write_message(BINARY_MESSAGE, payload)
        elif args.send_binary:
            self.conn.write_message(BINARY_MESSAGE, chunk)
        else:
            self.conn.write_message(TEXT_MESSAGE, chunk.decode("utf-8", "replace"))
        with self._cond:
            self.sent += 1
            self.last_event = time.monotonic()
            self._cond.notify_all()

    def _input_chunks(self) -> Iterator[bytes]:
        """The messages standard input holds: one per line, or all of it as one."""
        # os.read on the descriptor rather than the buffered file: this
        # thread may still be blocked in it when the program exits, and a
        # buffered stdin's lock held by a daemon thread can abort the exit.
        pending = b""
        while True:
            chunk = os.read(self.stdin_fd, 65536)
            if not chunk:
                break
            pending += chunk
            if self.args.whole_input:
                continue
            *lines, pending = pending.split(b"\n")
            for line in lines:
                yield line[:-1] if line.endswith(b"\r") else line
        if pending or self.args.whole_input:
            yield pending

    def write_loop(self) -> None:
        try:
            for n, chunk in enumerate(self._input_chunks(), 1):
                self._send(chunk)
                if self.max_sends is not None and n >= self.max_sends:
                    break
        except (WebSocketError, OSError):
            pass  # the connection ended; the reader reports how
        finally:
            with self._cond:
                self.input_done = True
                self.last_event = time.monotonic()
                self._cond.notify_all()

    # -- main thread ---------------------------------------------------------

    def _should_close(self, now: float) -> Tuple[bool, float]:
        """Whether to start the close now and, if not, how long to wait at most."""
        if self.output_gone:
            return True, 0.0
        if self.max_messages is not None and self.received >= self.max_messages:
            return True, 0.0
        if not (self.input_done and self.close_at_eof):
            return False, 0.5
        # End of input: every message sent has had an answer, or the server
        # has been quiet for --wait seconds.  Servers answer the close frame
        # at once and may drop replies still being computed, so closing at
        # end of input would lose them.
        if self.received >= self.sent:
            return True, 0.0
        left = self.last_event + self.args.wait - now
        return left <= 0, max(0.0, min(left, 0.5))

    def run(self) -> int:
        """Run until the connection ends; return the exit code."""
        try:
            _report_connected(self.args, self.conn)
            for target, name in ((self.read_loop, "reader"), (self.write_loop, "writer")):
                threading.Thread(target=target, name=f"gorillaws-cli-{name}", daemon=True).start()
            with self._cond:
                while self.read_error is None:
                    close, wait = self._should_close(time.monotonic())
                    if close:
                        self.closing = True
                        break
                    self._cond.wait(wait)
            if self.closing:
                # The reader thread receives whatever the server still sends
                # before its close frame; close() waits for it.
                self.conn.close(CLOSE_NORMAL_CLOSURE)
                return EXIT_OK
        except KeyboardInterrupt:
            _err("closed by you (Ctrl-C); sent close 1001 (going away)")
            try:
                self.conn.close(CLOSE_GOING_AWAY)
            except KeyboardInterrupt:
                pass
            return EXIT_INTERRUPTED
        finally:
            self.conn.close_now()
        err = self.read_error
        assert err is not None  # the wait loop above ends only on it
        _err(_describe_close(err))
        return _close_exit(err)


def _silence_stdout() -> None:
    """Point file descriptor 1 at /dev/null, so the exit flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    except OSError:
        pass


def cmd_connect(args: argparse.Namespace, stdin_fd: int, stdout: IO[bytes]) -> int:
    """Run ``connect``: send standard input, print received messages."""
    if args.listen_only:
        stdin_fd = os.open(os.devnull, os.O_RDONLY)
    return _ConnectSession(_dial(args), args, stdin_fd, stdout).run()


# ---------------------------------------------------------------------------
# ping
# ---------------------------------------------------------------------------


def cmd_ping(args: argparse.Namespace) -> int:
    """Run ``ping``: print round-trip times of ``-c`` pings."""
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

    rtts: List[float] = []
    sent = 0
    interrupted = False
    try:
        _report_connected(args, conn)
        threading.Thread(target=reader, name="gorillaws-ping-reader", daemon=True).start()
        for seq in range(1, args.count + 1):
            if seq > 1:
                time.sleep(args.interval)
            if failure:
                break
            try:
                rtt = conn.ping(timeout=args.wait)
            except DeadlineExceeded:
                sent = seq
                print(f"no pong from {args.url}: seq={seq} (waited {args.wait:g}s)", flush=True)
                continue
            except (WebSocketError, OSError) as err:
                failure.append(err)
                break
            # (Counted once answered: a ping cut short by Ctrl-C is not lost.)
            sent = seq
            rtts.append(rtt)
            print(f"pong from {args.url}: seq={seq} time={rtt * 1000:.3f} ms", flush=True)
    except KeyboardInterrupt:
        # Like ping(8): the summary of what was sent before Ctrl-C.
        interrupted = True
        _err("closed by you (Ctrl-C)")
    if failure:
        _err(_describe_close(failure[0]))
    try:
        conn.close(CLOSE_GOING_AWAY if interrupted else CLOSE_NORMAL_CLOSURE)
    except KeyboardInterrupt:
        interrupted = True
    finally:
        conn.close_now()
    # Pings never sent because the connection failed count as lost.
    total = sent if interrupted else args.count
    lost = total - len(rtts)
    summary = f"--- {args.url}: {total} pings, {len(rtts)} pongs, {100.0 * lost / max(total, 1):.0f}% lost"
    if rtts:
        summary += (
            f"; rtt min/avg/max = {min(rtts) * 1000:.3f}/{sum(rtts) / len(rtts) * 1000:.3f}/{max(rtts) * 1000:.3f} ms"
        )
    print(summary, flush=True)
    if interrupted:
        return EXIT_INTERRUPTED
    return EXIT_OK if lost == 0 else EXIT_ERROR


# ---------------------------------------------------------------------------
# serve
# ---------------------------------------------------------------------------


def _serve_echo(conn: Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


def _serve_broadcast(conn: Conn, hub: "Hub") -> None:
    """Publish every message of ``conn`` to every client (itself included)."""
    hub.subscribe(conn, _BROADCAST_TOPIC)
    try:
        while True:
            mt, data = conn.read_message()
            hub.publish(_BROADCAST_TOPIC, mt, data)
    finally:
        hub.unsubscribe(conn)


_BROADCAST_TOPIC = "all"


def _peer(addr: Any) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        return f"[{addr[0]}]:{addr[1]}" if ":" in str(addr[0]) else f"{addr[0]}:{addr[1]}"
    return str(addr)


class _QuietServingLog(logging.Filter):
    """Drops the Server's refused-origin warning: the CLI logs its own, naming ``--any-origin``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("refused a WebSocket from origin")


def _setup_serve_logging() -> None:
    """Library log records (a failing handler, descriptor exhaustion) as ``gorillaws: ...`` lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"{_PROG}: %(message)s"))
    handler.addFilter(_QuietServingLog())
    logger = logging.getLogger("gorillaws")
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    logger.propagate = False


def _origin_check(any_origin: bool) -> Callable[[Any], bool]:
    """The serve command's origin policy; a refusal is logged with the option that allows it."""
    from .handshake import check_same_origin

    def check(request: Any) -> bool:
        if any_origin or check_same_origin(request.origin, request.host):
            return True
        _err(
            f"{_peer(request.remote_addr)} refused: origin {request.origin!r} is not this server "
            f"({request.host!r}); --any-origin accepts every origin"
        )
        return False

    return check


def cmd_serve(args: argparse.Namespace) -> int:
    """Run ``serve`` until Ctrl-C or SIGTERM, then close every client with 1001."""
    from .hub import Hub
    from .server import Upgrader
    from .serving import Server

    upgrader = Upgrader(
        subprotocols=args.subprotocol or (),
        compression_mode=_compression_mode(args.compression),
        check_origin=_origin_check(args.any_origin),
    )
    # The hub's writers serve every client; a client that stops reading is
    # closed (1008) when its queue is full, instead of holding the others up.
    hub = Hub() if args.broadcast else None
    mode = "broadcast" if hub is not None else "echo"
    quiet = args.quiet

    def handle(conn: Conn, request: Any) -> None:
        peer = _peer(request.remote_addr)
        if not quiet:
            _err(f"{peer} connected")
        try:
            if hub is not None:
                _serve_broadcast(conn, hub)
            else:
                _serve_echo(conn)
        except (WebSocketError, OSError) as err:
            if not quiet:
                _err(f"{peer} {_describe_close(err).replace('by the server', 'by the client')}")

    _setup_serve_logging()
    try:
        server = Server(handle, args.host, args.port, upgrader=upgrader)
    except OSError as exc:
        # Without the "(while attempting to bind on address ...)" that
        # socket.create_server adds; a negative errno is getaddrinfo's.
        why = (exc.strerror or str(exc)).split(" (while attempting to bind")[0]
        if exc.errno is not None and exc.errno < 0:
            why = f"cannot resolve {args.host!r}: {why}"
        _err(f"cannot listen on {args.host}:{args.port}: {why}")
        return EXIT_ERROR
    # The Server's handlers stop it gracefully; ours also remember which
    # signal it was, for the exit code.
    server.install_signal_handlers()
    received: List[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        inner = signal.getsignal(sig)

        def on_signal(signum: int, frame: Any, inner: Any = inner) -> None:
            received.append(signum)
            inner(signum, frame)

        signal.signal(sig, on_signal)
    print(f"listening on {server.url}/ ({mode})", flush=True)
    try:
        server.serve_forever()
    finally:
        if hub is not None:
            hub.close()
    if not received:
        return EXIT_OK
    name = "Ctrl-C" if received[0] == signal.SIGINT else "SIGTERM"
    _err(f"stopped ({name}); every client was sent close 1001 (going away)")
    return 128 + received[0]


# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        _err(message)
        sys.exit(EXIT_USAGE)


def _number(kind: Callable[[str], Any], low: float, what: str, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind(text)`` that is at least (or, with ``above``, more than) ``low``."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if value < low or (above and value == low) or value != value:  # value != value: NaN
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    return parse


_seconds = _number(float, 0.0, "a number of seconds >= 0")
_positive_seconds = _number(float, 0.0, "a number of seconds > 0", above=True)
_count = _number(int, 1, "a whole number >= 1")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return value


def version_text() -> str:
    """What ``gorillaws --version`` prints: the version, the Python, and the C speedup's state."""
    from . import mask, utf8

    if os.environ.get("GORILLAWS_NO_SPEEDUPS"):
        speedup = "off (disabled by GORILLAWS_NO_SPEEDUPS)"
    elif mask.HAVE_SPEEDUPS and utf8.HAVE_SPEEDUPS:
        speedup = "active"
    else:
        speedup = "not built (pure Python)"
    py = f"{platform.python_version()} ({platform.python_implementation()}, {sys.executable})"
    return f"{_PROG} {__version__}\nPython {py}\nC speedup: {speedup}"


class _VersionAction(argparse.Action):
    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, **kw: Any) -> None:
        super().__init__(option_strings, dest=dest, nargs=0, help="print the version, the Python and the C speedup state, and exit")

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print(version_text())
        parser.exit()


_EXIT_CODES = (
    "exit codes: 0 ok (normal close, end of input, all pongs); 1 connection, handshake or TLS error, "
    "abnormal close; 2 usage error (bad option, URL, header, --cacert file, port; a proxy module "
    "that is not installed); 130 interrupted (Ctrl-C)"
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``gorillaws`` command."""
    p = _Parser(
        prog=_PROG,
        description="WebSocket client and server tool (gorillaws).",
        epilog=_EXIT_CODES,
    )
    p.add_argument("--version", action=_VersionAction)
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    c = sub.add_parser(
        "connect",
        help="interactive client: stdin lines are sent, messages are printed",
        description="Send each line of standard input as a message; print each message received, one per line. "
        "At end of input, wait for replies (--wait), then close.",
        epilog=_EXIT_CODES,
    )
    _add_dial_options(c)
    c.add_argument("-w", "--wait", type=_seconds, default=2.0, metavar="SECONDS",
                   help="at end of input, close once every message sent has had a reply or after SECONDS "
                   "without a message (default: %(default)s; 0 closes at once)")
    c.add_argument("-n", "--no-close", action="store_true",
                   help="keep listening after end of input, until the server closes or Ctrl-C")
    c.add_argument("-u", "--listen-only", action="store_true",
                   help="do not read standard input at all; only print what the server sends (implies --no-close)")
    c.add_argument("-1", "--one-message", action="store_true",
                   help="send at most one message and exit after receiving one")
    c.add_argument("--max-messages", type=_count, metavar="N",
                   help="exit (normal close) after receiving N messages; end of input does not close before")
    c.add_argument("-b", "--send-binary", action="store_true", help="send input lines as binary messages")
    c.add_argument("--send-hex", action="store_true", help="each input line is hex; send the bytes as a binary message")
    c.add_argument("--whole-input", action="store_true",
                   help="send all of standard input as one message at its end (binary with -b)")
    c.add_argument("--binary-output", choices=("raw", "hex", "base64"), default="raw",
                   help="how to print received binary messages (default: %(default)s)")
    c.add_argument("-x", "--binary-hex", dest="binary_output", action="store_const", const="hex",
                   help="same as --binary-output hex")

    s = sub.add_parser("serve", help="run an echo (or broadcast) server", epilog=_EXIT_CODES)
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    s.add_argument("-p", "--port", type=_port, default=8080, help="port (default: %(default)s; 0 picks a free one)")
    s.add_argument("--broadcast", action="store_true", help="send every message to every client instead of echoing")
    s.add_argument("-s", "--subprotocol", action="append", metavar="NAME", help="accept this subprotocol (repeatable, in order of preference)")
    s.add_argument("--compression", choices=_COMPRESSION_CHOICES, default="off", help="accept permessage-deflate (default: off)")
    s.add_argument("--any-origin", action="store_true", help="accept browsers from any origin (default: same origin only)")
    s.add_argument("-q", "--quiet", action="store_true", help="do not log connections")

    g = sub.add_parser("ping", help="measure round-trip time with ping/pong", epilog=_EXIT_CODES)
    _add_dial_options(g)
    g.add_argument("-c", "--count", type=_count, default=4, help="number of pings (default: %(default)s)")
    g.add_argument("-i", "--interval", type=_seconds, default=1.0, metavar="SECONDS", help="time between pings (default: %(default)s)")
    g.add_argument("-W", "--wait", type=_positive_seconds, default=5.0, metavar="SECONDS", help="time to wait for each pong (default: %(default)s)")
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
        _err("interrupted (Ctrl-C)")
        return EXIT_INTERRUPTED
