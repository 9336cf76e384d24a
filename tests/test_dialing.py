"""Dialing that says why and can be cancelled (issues 11 and 14), over 127.0.0.1.

Errors name the address (Go style) and the proxy when the proxy failed; a
reply that is not HTTP fails at once; ws/wss mix-ups get a hint; a plain
Dialer never waits forever; ``cancel=`` aborts each phase of a dial;
``net_dial_context`` receives the deadline and the cancel event; the raw
socket server refuses non-HTTP bytes at once.  Every peer that would make a
dial hang is silent on purpose and the dial's own timeout is long (60 s), so
a dial that ends with the expected error (not DeadlineExceeded) proves it did
not wait for the timeout.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
import threading
import time
from typing import Any, Iterator, List, Optional, Tuple

import pytest

import gorillaws

sys.path.insert(0, os.path.dirname(__file__))

from certs import TestPKI, make_test_pki  # noqa: E402
from helpers import (  # noqa: E402
    TIMEOUT,
    AcceptLoop,
    echo,
    full_listener,
    read_until_close,
    silent_listener,
    upgrade_request,
)

import gorillaws  # noqa: E402
from gorillaws import DeadlineExceeded, Dialer, ErrBadHandshake, HandshakeError, Upgrader  # noqa: E402
from gorillaws.dialing import DialCancelled, DialError, dial_tcp, head_reader  # noqa: E402
from gorillaws.transport import SocketIO, read_http_head  # noqa: E402

pytestmark = pytest.mark.timeout(60)

LONG = 60.0  # a handshake timeout no test may reach


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


def dead_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def upgrade_server(upgrader: Optional[Upgrader] = None) -> AcceptLoop:
    """A raw-socket gorillaws server: upgrade, echo; HandshakeErrors land in ``errors``."""
    u = upgrader or Upgrader(handshake_timeout=LONG)
    return AcceptLoop(lambda sock: echo(u.upgrade(sock)))


def answering(data: bytes) -> AcceptLoop:
    """A server that reads the request, sends ``data`` and then stays silent until closed."""
    stop = threading.Event()

    def handler(sock: socket.socket) -> None:
        sock.recv(65536)
        sock.sendall(data)
        stop.wait(TIMEOUT * 4)

    loop = AcceptLoop(handler)
    close = loop.close

    def close_all() -> None:
        stop.set()
        close()

    loop.close = close_all  # type: ignore[method-assign]
    return loop


# ---------------------------------------------------------------------------
# Errors that say why
# ---------------------------------------------------------------------------


def test_refused_names_the_address() -> None:
    port = dead_port()
    with pytest.raises(ConnectionRefusedError) as ei:
        dial_tcp(f"127.0.0.1:{port}", time.monotonic() + TIMEOUT)
    assert str(ei.value) == f"dial tcp 127.0.0.1:{port}: connection refused"
    assert isinstance(ei.value, DialError) and ei.value.errno is not None
    with pytest.raises(ConnectionRefusedError) as ei:
        Dialer().dial(f"ws://127.0.0.1:{port}/")
    assert str(ei.value) == f"dial tcp 127.0.0.1:{port}: connection refused"
    # One family: a pump thread's ``except gorillaws.WebSocketError`` covers dialing too.
    assert isinstance(ei.value, gorillaws.WebSocketError)


def test_unknown_host_names_the_lookup() -> None:
    with pytest.raises(socket.gaierror) as ei:
        Dialer(handshake_timeout=TIMEOUT).dial("ws://no-such-host.invalid/")
    assert str(ei.value).startswith("dial tcp no-such-host.invalid:80: lookup no-such-host.invalid: ")


def test_dead_proxy_is_named() -> None:
    port = dead_port()
    proxy = f"http://user:secret@127.0.0.1:{port}"
    with upgrade_server() as srv:
        d = Dialer(proxy=lambda url: proxy, handshake_timeout=TIMEOUT)
        with pytest.raises(ConnectionRefusedError) as ei:
            d.dial(f"ws://127.0.0.1:{srv.port}/")
    msg = str(ei.value)
    assert msg == f"proxy http://127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connection refused"
    assert "secret" not in msg and str(srv.port) not in msg


def test_dead_http_proxy_from_the_environment_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    # The case: HTTP_PROXY points at nothing; the error must say the proxy, not the target.
    port = dead_port()
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"127.0.0.1:{port}")
    with pytest.raises(ConnectionRefusedError) as ei:
        gorillaws.dial("ws://target.invalid/chat")
    assert str(ei.value) == f"proxy http://127.0.0.1:{port}: dial tcp 127.0.0.1:{port}: connection refused"


@pytest.mark.parametrize(
    "reply, words",
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n", "an SSH banner"),
        (b"\x00\x01\x02\x03garbage", "binary data"),
        (b"+OK POP3 ready\r\n", "not HTTP"),
        (b"HTTP/1.1 101 Switching Protocols\nUpgrade: websocket\n\n", "bare LF"),
    ],
)
def test_reply_that_is_not_http_fails_at_once(reply: bytes, words: str) -> None:
    with answering(reply) as srv:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{srv.port}/")
    assert words in str(ei.value)


def test_ws_to_a_tls_alert_hints_wss() -> None:
    alert = b"\x15\x03\x01\x00\x02\x02\x46"  # a TLS alert record: what some TLS servers send
    with answering(alert) as srv:
        with pytest.raises(ErrBadHandshake, match=r"did you mean wss://\?"):
            Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{srv.port}/")


def test_ws_to_a_python_tls_server_hints_wss(pki: TestPKI) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki.server_cert, pki.server_key)
    listener = ctx.wrap_socket(socket.create_server(("127.0.0.1", 0)), server_side=True, do_handshake_on_connect=False)
    with AcceptLoop(lambda sock: sock.recv(1), listener) as srv:  # the TLS handshake fails and closes
        with pytest.raises(OSError, match=r"did you mean wss://\?"):
            Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{srv.port}/")


def test_wss_to_a_plain_gorillaws_server_hints_ws() -> None:
    with upgrade_server() as srv:
        with pytest.raises(ssl.SSLError) as ei:
            Dialer(handshake_timeout=LONG).dial(f"wss://127.0.0.1:{srv.port}/")
        assert str(ei.value).startswith(f"websocket: TLS handshake with wss://127.0.0.1:{srv.port}/ failed: ")
        assert "the server does not speak TLS" in str(ei.value) and str(ei.value).endswith("did you mean ws://?")
        # The server refused the ClientHello at once with 400 (not 408 after its timeout).
        deadline = time.monotonic() + TIMEOUT
        while not srv.errors and time.monotonic() < deadline:
            time.sleep(0.01)
    assert isinstance(srv.errors[0], HandshakeError) and srv.errors[0].status == 400


def test_wss_to_a_server_that_hangs_up_hints_ws() -> None:
    with AcceptLoop(lambda sock: sock.recv(1)) as srv:  # reads a byte of the ClientHello, closes
        with pytest.raises(OSError) as ei:  # a reset, or an EOF in the TLS handshake
            Dialer(handshake_timeout=LONG).dial(f"wss://127.0.0.1:{srv.port}/")
    assert str(ei.value).startswith(f"websocket: TLS handshake with wss://127.0.0.1:{srv.port}/: ")
    assert str(ei.value).endswith("(if the server does not speak TLS, did you mean ws://?)")


def test_plain_dialer_has_gorillas_default_timeout() -> None:
    assert Dialer().handshake_timeout == 45.0
    with silent_listener() as port:
        with pytest.raises(DeadlineExceeded):
            Dialer(handshake_timeout=0.3).dial(f"ws://127.0.0.1:{port}/")


# ---------------------------------------------------------------------------
# The cheap dial path keeps its promises
# ---------------------------------------------------------------------------


def test_dialed_sockets_are_blocking_without_timeout() -> None:
    # The connect runs with a timeout; the Dialer leaves clearing it to its
    # SocketIO, dial_tcp clears it itself.  Either way the caller gets a
    # blocking socket with no timeout (a dup of it would share O_NONBLOCK).
    with upgrade_server() as srv:
        conn, _ = Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{srv.port}/")
        try:
            sock = conn.underlying_conn()
            assert sock.gettimeout() is None and sock.getblocking()
        finally:
            conn.close_now()
        raw = dial_tcp(f"127.0.0.1:{srv.port}", time.monotonic() + LONG)
        try:
            assert raw.gettimeout() is None and raw.getblocking()
        finally:
            raw.close()


def test_dial_makes_one_socketio_and_the_conn_takes_it(monkeypatch: pytest.MonkeyPatch) -> None:
    made: List[SocketIO] = []
    init = SocketIO.__init__

    def counting(self: SocketIO, sock: socket.socket) -> None:
        made.append(self)
        init(self, sock)

    monkeypatch.setattr(SocketIO, "__init__", counting)
    with upgrade_server() as srv:
        conn, _ = Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{srv.port}/")
        try:
            mine = [io for io in made if io.sock is conn.underlying_conn()]  # (the server's are made here too)
            assert len(mine) == 1 and conn._io is mine[0]
            conn.write_message(gorillaws.TEXT_MESSAGE, "hi")
            assert conn.read_message() == (gorillaws.TEXT_MESSAGE, b"hi")
        finally:
            conn.close_now()


@pytest.mark.parametrize("size", [2048 - 40, 2048, 2049, 10000])
def test_head_reader_across_its_first_buffer(size: int) -> None:
    # The head is read straight into a buffer of 2 KiB first, grown while
    # the head is incomplete; heads of every size around that, sent in
    # pieces, come back whole with the bytes after them.
    head = b"HTTP/1.1 101 Switching Protocols\r\nX: " + b"a" * (size - 41) + b"\r\n\r\n"
    assert len(head) == size
    a, b = socket.socketpair()
    with a, b:
        def send() -> None:
            data = head + b"frames"
            for i in range(0, len(data), 1500):
                b.sendall(data[i : i + 1500])
                time.sleep(0.005)

        sender = threading.Thread(target=send)
        sender.start()
        try:
            got, rest = read_http_head(head_reader(SocketIO(a), time.monotonic() + TIMEOUT, None), response=True)
        finally:
            sender.join()
        while len(rest) < len(b"frames"):
            rest += a.recv(100)
    assert got == head and rest == b"frames"


# ---------------------------------------------------------------------------
# Cancellation (Go's DialContext) and net_dial_context (Go's NetDialContext)
# ---------------------------------------------------------------------------


def cancel_soon(delay: float = 0.2) -> threading.Event:
    cancel = threading.Event()
    t = threading.Timer(delay, cancel.set)
    t.daemon = True
    t.start()
    return cancel


@pytest.fixture
def silent() -> Iterator[int]:
    with silent_listener() as port:
        yield port


def test_cancel_during_connect() -> None:
    with full_listener() as port:
        with pytest.raises(DialCancelled, match="connecting"):
            Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{port}/", cancel=cancel_soon())


def test_cancel_during_tls(silent: int) -> None:
    with pytest.raises(DialCancelled, match="TLS handshake"):
        Dialer(handshake_timeout=LONG).dial(f"wss://127.0.0.1:{silent}/", cancel=cancel_soon())


def test_cancel_during_proxy(silent: int) -> None:
    d = Dialer(proxy=lambda url: f"http://127.0.0.1:{silent}", handshake_timeout=LONG)
    with pytest.raises(DialCancelled):
        d.dial("ws://example.invalid/", cancel=cancel_soon())


def test_cancel_during_socks_proxy(silent: int) -> None:
    pytest.importorskip("socks")
    d = Dialer(proxy=lambda url: f"socks5h://127.0.0.1:{silent}", handshake_timeout=LONG)
    with pytest.raises(DialCancelled, match="proxy socks5h://127.0.0.1"):
        d.dial("ws://example.invalid/", cancel=cancel_soon())


@pytest.fixture
def slow_resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """getaddrinfo for ``slow.test`` blocks until the yielded event is set (a resolver that hangs)."""
    release = threading.Event()
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "slow.test":
            release.wait(TIMEOUT * 4)
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield release
    release.set()


def test_cancel_during_name_lookup(slow_resolver: threading.Event) -> None:
    with pytest.raises(DialCancelled, match="looking up slow.test"):
        Dialer(handshake_timeout=LONG).dial("ws://slow.test/", cancel=cancel_soon())


def test_handshake_timeout_bounds_a_hanging_name_lookup(slow_resolver: threading.Event) -> None:
    with pytest.raises(DeadlineExceeded, match="looking up slow.test"):
        Dialer(handshake_timeout=0.3).dial("ws://slow.test/")


def test_cancel_during_handshake(silent: int) -> None:
    with pytest.raises(DialCancelled, match="handshake response"):
        Dialer(handshake_timeout=LONG).dial(f"ws://127.0.0.1:{silent}/", cancel=cancel_soon())


def test_module_dial_takes_cancel(silent: int) -> None:
    with pytest.raises(DialCancelled):
        gorillaws.dial(f"ws://127.0.0.1:{silent}/", cancel=cancel_soon())


def test_cancel_set_before_dial() -> None:
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DialCancelled):
        Dialer().dial(f"ws://127.0.0.1:{dead_port()}/", cancel=cancel)
    assert isinstance(DialCancelled("x"), ConnectionAbortedError)


def test_unset_cancel_does_not_disturb_a_dial() -> None:
    with upgrade_server() as srv:
        conn, resp = Dialer().dial(f"ws://127.0.0.1:{srv.port}/", cancel=threading.Event())
        with conn:
            conn.write_message(gorillaws.TEXT_MESSAGE, b"hi")
            assert conn.read_message() == (gorillaws.TEXT_MESSAGE, b"hi")
    assert resp.status == 101


def test_net_dial_context_gets_deadline_and_cancel() -> None:
    seen: List[Tuple[str, str, Optional[float], Any]] = []

    def net_dial_context(network: str, addr: str, deadline: Optional[float], cancel: Any) -> socket.socket:
        seen.append((network, addr, deadline, cancel))
        return socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)

    cancel = threading.Event()
    with upgrade_server() as srv:
        before = time.monotonic()
        d = Dialer(net_dial_context=net_dial_context, handshake_timeout=7.0)
        conn, _ = d.dial("ws://example.invalid:1234/", cancel=cancel)
        conn.close()
    (network, addr, deadline, got_cancel), = seen
    assert (network, addr, got_cancel) == ("tcp", "example.invalid:1234", cancel)
    assert deadline is not None and before + 7.0 <= deadline <= time.monotonic() + 7.0


# ---------------------------------------------------------------------------
# Server, raw-socket mode: bytes that cannot start HTTP are refused at once
# ---------------------------------------------------------------------------


def client_hello() -> bytes:
    """The first flight of a TLS client, made in memory."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    return outgoing.read()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="tls-client-hello"),
        pytest.param(b"\x00\xff\x13\x37binary", id="binary"),
        pytest.param(b"SSH-2.0-OpenSSH_9.6\r\n", id="ssh-banner"),
        pytest.param(b"GET /ws HTTP/1.1\nHost: x\nUpgrade: websocket\n", id="bare-lf"),
    ],
)
def test_raw_server_refuses_non_http_at_once(data: Optional[bytes]) -> None:
    with upgrade_server() as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
            s.sendall(client_hello() if data is None else data)
            answer = read_until_close(s)  # the peer stays open: only the server can end this
        assert answer.startswith(b"HTTP/1.1 400 ")
        deadline = time.monotonic() + TIMEOUT
        while not srv.errors and time.monotonic() < deadline:
            time.sleep(0.01)
    err = srv.errors[0]
    assert isinstance(err, HandshakeError) and err.status == 400


def test_raw_server_still_upgrades_a_head_sent_byte_by_byte() -> None:
    with upgrade_server() as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for b in upgrade_request(f"127.0.0.1:{srv.port}"):
                s.sendall(bytes((b,)))
            assert s.recv(12) == b"HTTP/1.1 101"
