"""Shared pytest fixtures and helpers for the gorillaws test suite.

Generic on purpose: any test file may use these.

* ``transport`` (parametrized "socketpair" / "tcp") and :func:`socket_pair`:
  two connected sockets, over ``socket.socketpair()`` or a real 127.0.0.1
  TCP connection.
* ``conn_pair``: ``(server, client)`` :class:`gorillaws.Conn` objects over
  such a pair, run once per transport.  ``conn_pair_factory(**kwargs)`` builds
  more pairs with options (``server_kwargs=``/``client_kwargs=`` for one side).
  Everything built is closed at teardown.
* ``raw_peer``: a factory ``raw_peer(server=True, **conn_kwargs)`` returning
  ``(conn, peer)`` where ``conn`` is the Conn under test and ``peer`` a
  :class:`RawPeer` that writes hand-made frames and parses what the Conn sends.
* ``no_leaks``: fails the test if it leaves new threads running or file
  descriptors open (opt in with ``@pytest.mark.usefixtures("no_leaks")``).
* :func:`run_in_thread`: run a callable in a thread, get its result or
  exception back with a bound.
"""

from __future__ import annotations

import os
import platform
import signal
import socket
import struct
import threading
import time
from typing import Any, Callable, Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest

from gorillaws import Conn

# Frames built by hand, one copy for the unit tests and the conformance fuzzer.
from helpers import close_payload, encode_frame as build_frame, mask_bytes as xor_mask  # noqa: F401 (re-exported)

# A non-interactive shell starts background commands (`cmd &` in a script)
# with SIGINT ignored, and an ignored signal stays ignored across exec: the
# tests that press Ctrl-C on a CLI or example subprocess need the default
# disposition to hand down (a Python handler resets to the default at exec).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

TRANSPORTS = ("socketpair", "tcp")


def pytest_report_header(config: Any) -> str:
    """Name the Python and say whether the C speedup is in use (CI runs several of each)."""
    from gorillaws import mask

    if mask.HAVE_SPEEDUPS:
        speedup = "in use"
    elif os.environ.get("GORILLAWS_NO_SPEEDUPS"):
        speedup = "off (GORILLAWS_NO_SPEEDUPS is set)"
    else:
        speedup = "not built (pure Python)"
    return f"gorillaws: Python {platform.python_version()}, C speedup {speedup}"

# Every socket read in the helpers below is bounded by this (seconds).
IO_TIMEOUT = 5.0


def socket_pair(transport: str = "socketpair") -> Tuple[socket.socket, socket.socket]:
    """Two connected sockets ``(a, b)``: a Unix socketpair, or TCP over 127.0.0.1."""
    if transport == "socketpair":
        return socket.socketpair()
    if transport != "tcp":
        raise ValueError(f"unknown transport {transport!r}")
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        lsock.bind(("127.0.0.1", 0))
        lsock.listen(1)
        lsock.settimeout(IO_TIMEOUT)
        b = socket.create_connection(lsock.getsockname(), timeout=IO_TIMEOUT)
        a, _ = lsock.accept()
    finally:
        lsock.close()
    a.settimeout(None)
    b.settimeout(None)
    return a, b


def make_conn_pair(
    transport: str = "socketpair",
    server_kwargs: Optional[Dict[str, Any]] = None,
    client_kwargs: Optional[Dict[str, Any]] = None,
    **kwargs: Any,
) -> Tuple[Conn, Conn]:
    """A connected ``(server, client)`` pair of Conns; ``kwargs`` go to both."""
    a, b = socket_pair(transport)
    server = Conn(a, is_server=True, **{**kwargs, **(server_kwargs or {})})
    client = Conn(b, is_server=False, **{**kwargs, **(client_kwargs or {})})
    return server, client


@pytest.fixture(params=TRANSPORTS)
def transport(request: Any) -> str:
    """The transport under test: "socketpair" or "tcp"."""
    return str(request.param)


@pytest.fixture
def conn_pair_factory(transport: str) -> Iterator[Callable[..., Tuple[Conn, Conn]]]:
    """Builds ``(server, client)`` Conn pairs on the current transport; closes them at teardown."""
    made: List[Conn] = []

    def factory(**kwargs: Any) -> Tuple[Conn, Conn]:
        pair = make_conn_pair(transport, **kwargs)
        made.extend(pair)
        return pair

    yield factory
    for c in made:
        c.close_now()


@pytest.fixture
def conn_pair(conn_pair_factory: Callable[..., Tuple[Conn, Conn]]) -> Tuple[Conn, Conn]:
    """A ``(server, client)`` Conn pair with default options, once per transport."""
    return conn_pair_factory()


# ----------------------------------------------------------------------
# Raw peer: hand-made frames
# ----------------------------------------------------------------------


class Frame(NamedTuple):
    """A frame as received by :class:`RawPeer` (payload already unmasked)."""

    fin: bool
    rsv: int
    opcode: int
    masked: bool
    payload: bytes


class RawPeer:
    """The other end of a Conn, speaking hand-made frames over a plain socket.

    ``masks`` says whether this peer masks its frames by default (True when
    it plays the client).  Every read is bounded by ``timeout`` seconds.
    """

    def __init__(self, sock: socket.socket, masks: bool, timeout: float = IO_TIMEOUT) -> None:
        self.sock = sock
        self.masks = masks
        self.timeout = timeout
        self._buf = bytearray()
        sock.settimeout(timeout)

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are."""
        self.sock.sendall(data)

    def send_frame(
        self,
        opcode: int,
        payload: bytes = b"",
        *,
        fin: bool = True,
        rsv: int = 0,
        masked: Optional[bool] = None,
        key: Optional[bytes] = None,
        length: Optional[int] = None,
        length_form: Optional[int] = None,
    ) -> bytes:
        """Build a frame (see :func:`build_frame`), send it and return its bytes.

        ``masked`` defaults to the peer's role; a random key is used unless
        ``key`` is given.
        """
        if masked is None:
            masked = self.masks
        if masked and key is None:
            key = os.urandom(4)
        if not masked:
            key = None
        data = build_frame(opcode, payload, fin=fin, rsv=rsv, key=key, length=length, length_form=length_form)
        self.send_raw(data)
        return data

    def send_close(self, code: Optional[int] = 1000, reason: bytes = b"") -> None:
        """Send a close frame (``code`` None: empty payload)."""
        self.send_frame(8, b"" if code is None else close_payload(code, reason))

    def _recv_some(self, deadline: float, what: str) -> bytes:
        """One ``recv`` bounded by ``deadline``; :class:`TimeoutError` (saying ``what``) when it passes.

        ``socket.timeout`` is converted because it is a ``TimeoutError`` only
        from Python 3.10 on, and the tests expect ``TimeoutError`` on 3.9 too.
        """
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(what)
        self.sock.settimeout(left)
        try:
            return self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError(what) from None

    def _recv_exact(self, n: int, deadline: float) -> bytes:
        while len(self._buf) < n:
            chunk = self._recv_some(deadline, "raw peer: timed out waiting for bytes")
            if not chunk:
                raise EOFError("raw peer: connection closed")
            self._buf += chunk
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out

    def recv_frame(self, timeout: Optional[float] = None) -> Frame:
        """Read and parse one frame sent by the Conn (unmasking it)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        b0, b1 = self._recv_exact(2, deadline)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._recv_exact(2, deadline))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._recv_exact(8, deadline))
        key = self._recv_exact(4, deadline) if b1 & 0x80 else None
        payload = self._recv_exact(n, deadline)
        if key is not None:
            payload = xor_mask(payload, key)
        return Frame(bool(b0 & 0x80), b0 & 0x70, b0 & 0x0F, key is not None, payload)

    def recv_message(self, timeout: Optional[float] = None) -> Tuple[int, bytes, List[Frame]]:
        """Read frames up to the end of one data message; control frames are collected.

        Returns ``(opcode, payload, control_frames_seen)``.
        """
        controls: List[Frame] = []
        opcode = 0
        parts: List[bytes] = []
        while True:
            f = self.recv_frame(timeout)
            if f.opcode >= 8:
                controls.append(f)
                continue
            if f.opcode:
                opcode = f.opcode
            parts.append(f.payload)
            if f.fin:
                return opcode, b"".join(parts), controls

    def recv_close(self, timeout: Optional[float] = None) -> Tuple[int, bytes]:
        """Read frames until a close frame; return ``(code, reason)`` (1005 for an empty payload)."""
        while True:
            f = self.recv_frame(timeout)
            if f.opcode == 8:
                if not f.payload:
                    return 1005, b""
                return struct.unpack("!H", f.payload[:2])[0], f.payload[2:]

    def recv_close_and_hang_up(self, timeout: Optional[float] = None) -> Tuple[int, bytes]:
        """Wait for the Conn's close frame, end our side, wait for the Conn to close its side.

        Returns the close ``(code, reason)``.  Handy in a thread while the
        Conn fails the connection, so its linger ends at once.
        """
        got = self.recv_close(timeout)
        try:
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.expect_eof(timeout)
        return got

    def expect_eof(self, timeout: Optional[float] = None) -> bytes:
        """Read until the Conn closes the connection; return what came before the end.

        A connection reset counts as the end too.
        """
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        got = bytes(self._buf)
        self._buf.clear()
        while True:
            try:
                chunk = self._recv_some(deadline, "raw peer: the connection was not closed")
            except ConnectionResetError:
                return got
            if not chunk:
                return got
            got += chunk

    def close(self) -> None:
        """Close the peer's socket."""
        try:
            self.sock.close()
        except OSError:
            pass


@pytest.fixture
def raw_peer(transport: str) -> Iterator[Callable[..., Tuple[Conn, RawPeer]]]:
    """Factory: ``raw_peer(server=True, **conn_kwargs) -> (conn, peer)``.

    ``server`` is the role of the Conn under test (the peer plays the other
    role and masks accordingly).  ``close_timeout`` defaults to 0.25 s so
    failing the connection does not linger long.  All are closed at teardown.
    """
    made: List[Tuple[Conn, RawPeer]] = []

    def factory(server: bool = True, **conn_kwargs: Any) -> Tuple[Conn, RawPeer]:
        a, b = socket_pair(transport)
        conn_kwargs.setdefault("close_timeout", 0.25)
        conn = Conn(a, is_server=server, **conn_kwargs)
        peer = RawPeer(b, masks=server)
        made.append((conn, peer))
        return conn, peer

    yield factory
    for conn, peer in made:
        conn.close_now()
        peer.close()


# ----------------------------------------------------------------------
# Threads
# ----------------------------------------------------------------------


class ThreadResult:
    """The outcome of :func:`run_in_thread`: ``value`` or ``error`` after :meth:`join`."""

    def __init__(self, fn: Callable[[], Any]) -> None:
        self.value: Any = None
        self.error: Optional[BaseException] = None
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(fn,), daemon=True)

    def _run(self, fn: Callable[[], Any]) -> None:
        try:
            self.value = fn()
        except BaseException as e:  # noqa: BLE001 - handed to the test
            self.error = e
        finally:
            self.done.set()

    def join(self, timeout: float = IO_TIMEOUT) -> Any:
        """Wait for the thread; return its value or raise its exception (AssertionError if it hangs)."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "thread did not finish in time"
        if self.error is not None:
            raise self.error
        return self.value


def run_in_thread(fn: Callable[[], Any]) -> ThreadResult:
    """Start ``fn`` in a daemon thread; ``.join()`` gives its result or raises its error."""
    r = ThreadResult(fn)
    r.thread.start()
    return r


# ----------------------------------------------------------------------
# Leak check
# ----------------------------------------------------------------------


def _open_fds() -> Optional[int]:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:  # not Linux
        return None


@pytest.fixture
def no_leaks() -> Iterator[None]:
    """Fail the test if it leaves new threads alive or more file descriptors open.

    Threads get up to 10 s to finish after the test (and its other fixtures'
    teardown, when this fixture is requested first): generous, because a
    close may linger up to 1 s and CI machines are loaded; a real leak
    still fails, only later.
    """
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    yield
    deadline = time.monotonic() + 10.0
    while True:
        extra = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        fds = _open_fds()
        fd_leak = fds is not None and fds_before is not None and fds > fds_before
        if not extra and not fd_leak:
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert not extra, f"threads left running: {[t.name for t in extra]}"
    assert not fd_leak, f"file descriptors leaked: {fds_before} before, {fds} after"
