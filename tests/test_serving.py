"""gorillaws.serving.Server / serve(): real clients against a real listening socket.

Every server binds 127.0.0.1 port 0 and is shut down at the end of its test;
every socket read is bounded by TIMEOUT.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import socket
import ssl
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from certs import TestPKI, make_test_pki  # noqa: E402
from examples_util import Program, child_env  # noqa: E402

from gorillaws import CloseError, Conn, Dialer, Upgrader  # noqa: E402
from gorillaws.frames import TEXT_MESSAGE  # noqa: E402
from gorillaws.serving import Server  # noqa: E402

TIMEOUT = 10.0


def echo(conn: Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


@contextmanager
def running(handler: Callable[..., Any], **kwargs: Any) -> Iterator[Server]:
    """A Server serving in a thread; shut down (and its thread joined) on exit."""
    srv = Server(handler, "127.0.0.1", 0, **kwargs)
    t = threading.Thread(target=srv.serve_forever, name="test-serve-forever", daemon=True)
    t.start()
    try:
        yield srv
    finally:
        srv.shutdown(timeout=3.0)
        t.join(TIMEOUT)
        assert not t.is_alive()


def dial(srv: Server, path: str = "/", dialer: Optional[Dialer] = None) -> Conn:
    d = dialer or Dialer(handshake_timeout=TIMEOUT)
    conn, _ = d.dial(srv.url + path)
    conn.set_read_deadline(time.monotonic() + TIMEOUT)
    return conn


def http_request(addr: Tuple[str, int], path: str = "/", method: str = "GET") -> Tuple[int, bytes, bytes]:
    """(status, head, body) of a plain HTTP request, read until the server closes."""
    with socket.create_connection(addr, timeout=TIMEOUT) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: {addr[0]}:{addr[1]}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), head, body


def http_get(srv: Server, path: str = "/", method: str = "GET") -> Tuple[int, bytes, bytes]:
    return http_request(srv.address, path, method)


def close_code(conn: Conn) -> int:
    """Read until the server's close frame; its code."""
    with pytest.raises(CloseError) as info:
        while True:
            conn.read_message()
    return info.value.code


# ---------------------------------------------------------------------------
# Basics
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leaks")
def test_echo_port_zero_and_context_manager() -> None:
    with running(echo) as srv:
        host, port = srv.address
        assert host == "127.0.0.1" and port > 0
        assert srv.url == f"ws://127.0.0.1:{port}"
        with dial(srv) as conn:
            conn.write_message(TEXT_MESSAGE, "hello")
            assert conn.read_message() == (TEXT_MESSAGE, b"hello")


def test_context_manager_shuts_down() -> None:
    with Server(echo, "127.0.0.1", 0) as srv:
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        port = srv.address[1]
        with dial(srv) as conn:
            conn.write_message(TEXT_MESSAGE, "x")
            assert conn.read_message() == (TEXT_MESSAGE, b"x")
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT).close()


def test_handler_return_closes_normally() -> None:
    def once(conn: Conn) -> None:
        conn.write_message(TEXT_MESSAGE, "bye")

    with running(once) as srv, dial(srv) as conn:
        assert conn.read_message() == (TEXT_MESSAGE, b"bye")
        assert close_code(conn) == 1000


def test_handler_exception_closes_1011_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    def broken(conn: Conn) -> None:
        raise RuntimeError("boom in handler")

    with caplog.at_level(logging.ERROR, logger="gorillaws.serving"):
        with running(broken) as srv, dial(srv) as conn:
            assert close_code(conn) == 1011
    records = [r for r in caplog.records if r.name == "gorillaws.serving"]
    assert any(r.exc_info and "boom in handler" in str(r.exc_info[1]) for r in records)


def test_client_close_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    done = threading.Event()

    def handler(conn: Conn) -> None:
        try:
            echo(conn)
        finally:
            done.set()

    with caplog.at_level(logging.DEBUG, logger="gorillaws.serving"):
        with running(handler) as srv:
            with dial(srv) as conn:
                conn.write_message(TEXT_MESSAGE, "a")
                assert conn.read_message() == (TEXT_MESSAGE, b"a")
            assert done.wait(TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


@pytest.mark.parametrize("case", ["read limit", "read deadline"])
def test_peer_errors_are_one_line_not_a_traceback(caplog: pytest.LogCaptureFixture, case: str) -> None:
    """Too big a message, or a silent client past the handler's read deadline:
    the connection ends with the error's own code and an INFO line, no ERROR."""
    done = threading.Event()

    def handler(conn: Conn) -> None:
        conn.set_read_limit(16)
        conn.set_read_deadline(time.monotonic() + 0.3)
        try:
            echo(conn)
        finally:
            done.set()

    with caplog.at_level(logging.DEBUG, logger="gorillaws.serving"):
        with running(handler) as srv, dial(srv) as conn:
            if case == "read limit":
                conn.write_message(TEXT_MESSAGE, "x" * 100)
                assert close_code(conn) == 1009
            else:
                assert close_code(conn) in (1011, 1006)
            assert done.wait(TIMEOUT)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]


def test_handler_with_request() -> None:
    seen: List[str] = []

    def handler(conn: Conn, request: Any) -> None:
        seen.append(request.target)
        conn.write_message(TEXT_MESSAGE, request.path)

    with running(handler) as srv, dial(srv, "/room/7?x=1") as conn:
        assert conn.read_message() == (TEXT_MESSAGE, b"/room/7")
    assert seen == ["/room/7?x=1"]


def test_connection_addresses_come_from_accept() -> None:
    """The Server hands the Conn the addresses it knows (accept's peer, the
    listener's own) rather than asking the socket: they must be the real ones."""
    seen: List[Any] = []

    def handler(conn: Conn, request: Any) -> None:
        seen.append((conn.local_addr(), conn.remote_addr(), request.remote_addr))

    with running(handler) as srv, dial(srv) as conn:
        assert close_code(conn) == 1000
        assert seen == [(conn.remote_addr(), conn.local_addr(), conn.local_addr())]


def test_idle_connections_keep_no_parsed_request() -> None:
    """A one-argument handler's connections hold no request head (~2 KiB each)."""
    import gc

    from gorillaws.server import UpgradeRequest

    started = threading.Semaphore(0)

    def idle(conn: Conn) -> None:
        started.release()
        conn.read_message()

    # Requests that earlier tests left reachable (pytest keeps failures'
    # tracebacks) are not this server's: only new ones count.
    gc.collect()
    before = {id(o) for o in gc.get_objects() if isinstance(o, UpgradeRequest)}
    with running(idle) as srv:
        conns = [dial(srv) for _ in range(5)]
        try:
            for _ in conns:
                assert started.acquire(timeout=TIMEOUT)
            gc.collect()
            alive = [o for o in gc.get_objects() if isinstance(o, UpgradeRequest) and id(o) not in before]
            assert alive == []
            del alive
        finally:
            for c in conns:
                c.close()


# ---------------------------------------------------------------------------
# Plain HTTP on the same port
# ---------------------------------------------------------------------------


def test_plain_get_gets_426_with_text() -> None:
    with running(echo) as srv:
        status, head, body = http_get(srv)
    assert status == 426
    assert b"WebSocket endpoint" in body
    assert b"Upgrade: websocket" in head


def test_post_without_handler_gets_426() -> None:
    with running(echo) as srv:
        status, head, _ = http_get(srv, method="POST")
    assert status == 426
    assert b"Allow" not in head


def test_http_handler_serves_pages_beside_websocket() -> None:
    def pages(request: Any) -> Any:
        if request.path == "/":
            return 200, {"Content-Type": "text/html; charset=utf-8"}, b"<h1>home</h1>"
        if request.path == "/text":
            return 200, None, "plain text"
        if request.path == "/crash":
            raise ValueError("page bug")
        return None

    with running(echo, http_handler=pages) as srv:
        status, head, body = http_get(srv, "/")
        assert (status, body) == (200, b"<h1>home</h1>")
        assert b"Content-Type: text/html" in head and b"Content-Length: 13" in head
        status, head, body = http_get(srv, "/", "HEAD")
        assert (status, body) == (200, b"")
        status, head, body = http_get(srv, "/text")
        assert (status, body) == (200, b"plain text")
        assert b"text/plain" in head
        assert http_get(srv, "/elsewhere")[0] == 426
        assert http_get(srv, "/crash")[0] == 500
        with dial(srv, "/ws") as conn:  # the WebSocket still works on the same port
            conn.write_message(TEXT_MESSAGE, "ws")
            assert conn.read_message() == (TEXT_MESSAGE, b"ws")


def test_refused_origin_is_403_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="gorillaws.serving"):
        with running(echo) as srv:
            d = Dialer(handshake_timeout=TIMEOUT)
            with pytest.raises(Exception) as info:
                d.dial(srv.url, {"Origin": "http://evil.example"})
            assert getattr(info.value, "status", None) == 403
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "http://evil.example" in text and "origin_patterns" in text


def test_upgrader_options_carry_over_and_caller_object_untouched() -> None:
    up = Upgrader(subprotocols=["chat"], origin_patterns=["good.example"])
    with running(lambda c: c.write_message(TEXT_MESSAGE, c.subprotocol()), upgrader=up) as srv:
        d = Dialer(handshake_timeout=TIMEOUT, subprotocols=["chat"])
        conn, _ = d.dial(srv.url, {"Origin": "http://good.example"})
        with conn:
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            assert conn.read_message() == (TEXT_MESSAGE, b"chat")
    assert up.error is None and up.check_origin is None


# ---------------------------------------------------------------------------
# Limits
# ---------------------------------------------------------------------------


def test_max_connections_refuses_with_503() -> None:
    with running(echo, max_connections=2) as srv:
        a = dial(srv)
        b = dial(srv)
        try:
            status, _, body = http_get(srv)
            assert status == 503 and b"busy" in body
            with pytest.raises(Exception) as info:
                dial(srv)
            assert getattr(info.value, "status", None) == 503
        finally:
            a.close()
            b.close()
        end = time.monotonic() + TIMEOUT
        while srv.connection_count() and time.monotonic() < end:
            time.sleep(0.02)
        with dial(srv) as c:  # room again
            c.write_message(TEXT_MESSAGE, "again")
            assert c.read_message() == (TEXT_MESSAGE, b"again")


def test_default_cap_follows_open_files_limit() -> None:
    import resource

    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    srv = Server(echo, "127.0.0.1", 0)
    try:
        if soft == resource.RLIM_INFINITY:
            assert srv.max_connections is None
        else:
            assert srv.max_connections is not None and 0 < srv.max_connections <= soft - 32
    finally:
        srv.shutdown(timeout=1.0)


def test_connection_threads_get_a_small_stack(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: List[int] = []
    real = threading.stack_size

    def spy(size: int = 0) -> int:
        calls.append(size)
        return real(size)

    monkeypatch.setattr(threading, "stack_size", spy)
    before = real()
    with running(lambda conn: None, thread_stack_size=512 * 1024) as srv, dial(srv) as conn:
        assert close_code(conn) == 1000
    # Set for the connection's thread only, then put back (it is process-wide).
    assert calls[:2] == [512 * 1024, before]
    assert real() == before


def _idle_stack_rss_kib(tid: int) -> int:
    """Resident KiB of the C stack of thread ``tid`` of this process, blocked in a system call."""
    end = time.monotonic() + TIMEOUT
    while True:  # its stack pointer, once it waits in the kernel
        with open(f"/proc/self/task/{tid}/syscall") as f:
            fields = f.read().split()
        if fields[0] != "running" or time.monotonic() > end:
            break
        time.sleep(0.01)
    sp = int(fields[-2], 16)
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            first = line.split()[0]
            if "-" in first and not first.endswith(":"):
                lo, hi = (int(x, 16) for x in first.split("-"))
                inside = lo <= sp < hi
            elif first == "Rss:" and inside:
                return int(line.split()[1])
    raise AssertionError(f"no mapping holds the stack pointer {sp:#x}")


@pytest.mark.skipif(not os.path.exists("/proc/self/smaps"), reason="needs Linux /proc")
def test_connection_thread_touches_no_more_stack_than_a_plain_upgrade() -> None:
    """An idle connection keeps every C stack page its thread ever touched.
    The Server's own layers (spare-thread loop, handler wrapper) must not
    reach deeper than a plain thread that upgrades an accepted socket and
    reads: one more page is 4 KiB per idle connection.

    Compared as the least over 4 connections held at once (each its own
    fresh thread): a thread that happened to run the cyclic collector or
    to wait for the GIL deep in a call touched a page more, by chance.
    """
    n = 4
    tids: "queue.Queue[int]" = queue.Queue()

    def idle(conn: Conn) -> None:
        conn.write_message(TEXT_MESSAGE, "x")  # a round trip, then idle in a read
        conn.read_message()
        tids.put(threading.get_native_id())
        with pytest.raises(CloseError):
            conn.read_message()

    def least(url: str) -> int:
        conns = [Dialer(handshake_timeout=TIMEOUT).dial(url)[0] for _ in range(n)]
        try:
            for conn in conns:
                assert conn.read_message() == (TEXT_MESSAGE, b"x")
                conn.write_message(TEXT_MESSAGE, "x")
            return min(_idle_stack_rss_kib(tids.get(timeout=TIMEOUT)) for _ in conns)
        finally:
            for conn in conns:
                conn.close()

    # Stack sizes no other test uses: glibc gives a new thread the cached
    # stack of an exited one (up to 4x the size asked for) with the pages
    # that one touched still resident.  The Server's threads go first and
    # have the smaller stacks, which cannot serve the plain threads later.
    with running(idle, thread_stack_size=1088 * 1024) as srv:
        server_kib = least(srv.url)
    lsock = socket.create_server(("127.0.0.1", 0))

    def plain() -> None:
        idle(Upgrader().upgrade(lsock.accept()[0]))

    old = threading.stack_size(1600 * 1024)
    try:
        threads = [threading.Thread(target=plain) for _ in range(n)]
        for t in threads:
            t.start()
    finally:
        threading.stack_size(old)
    try:
        plain_kib = least(f"ws://127.0.0.1:{lsock.getsockname()[1]}/")
        for t in threads:
            t.join(TIMEOUT)
    finally:
        lsock.close()
    assert server_kib <= plain_kib, (server_kib, plain_kib)


def _handler_threads(srv: Server, n: int) -> List[threading.Thread]:
    """The thread that ran each of ``n`` connections, one after the other."""
    seen: List[threading.Thread] = []
    ran = threading.Semaphore(0)

    def record(conn: Conn) -> None:
        seen.append(threading.current_thread())
        ran.release()

    srv.handler = record
    for _ in range(n):
        with dial(srv) as conn:
            assert close_code(conn) == 1000
        assert ran.acquire(timeout=TIMEOUT)
        end = time.monotonic() + TIMEOUT  # the thread is spare again once the handshake count drops
        while srv.connection_count() and time.monotonic() < end:
            time.sleep(0.005)
    return seen


@pytest.mark.usefixtures("no_leaks")
def test_a_finished_connection_thread_runs_the_next_connection() -> None:
    with running(echo) as srv:
        seen = _handler_threads(srv, 3)
        assert seen[0] is seen[1] is seen[2] and seen[0].name == "gorillaws-conn"
    # shutdown ended the spare thread (no_leaks checks that none is left)
    assert not seen[0].is_alive()


def test_spare_threads_zero_starts_a_thread_per_connection() -> None:
    with running(echo, spare_threads=0) as srv:
        seen = _handler_threads(srv, 3)
    assert len({id(t) for t in seen}) == 3


def test_spare_thread_ends_after_waiting(monkeypatch: pytest.MonkeyPatch) -> None:
    from gorillaws import serving

    monkeypatch.setattr(serving, "SPARE_THREAD_WAIT", 0.2)
    with running(echo) as srv:
        (thread,) = _handler_threads(srv, 1)
        thread.join(TIMEOUT)
        assert not thread.is_alive() and srv._spare == 0
        assert len(_handler_threads(srv, 1)) == 1  # a new thread serves the next one


def test_spare_threads_are_capped() -> None:
    release = threading.Event()

    def hold(conn: Conn) -> None:
        release.wait(TIMEOUT)

    with running(hold, spare_threads=2) as srv:
        conns = [dial(srv) for _ in range(4)]
        try:
            end = time.monotonic() + TIMEOUT
            while len(srv._threads) < 4 and time.monotonic() < end:
                time.sleep(0.01)
            release.set()
            for c in conns:
                assert close_code(c) == 1000
            end = time.monotonic() + TIMEOUT
            while (len(srv._threads) > 2 or srv._spare < 2) and time.monotonic() < end:
                time.sleep(0.01)
            assert len(srv._threads) == 2 and srv._spare == 2
        finally:
            for c in conns:
                c.close_now()


def test_accept_is_not_retried_until_it_fails() -> None:
    """One accept() per connection: the loop polls again instead of calling
    accept() until EAGAIN (a failing system call and an exception each time)."""
    calls: List[int] = []

    class CountingSocket(socket.socket):
        def _accept(self) -> Tuple[int, Any]:
            calls.append(1)
            return super()._accept()  # type: ignore[misc, no-any-return]

    lsock = CountingSocket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    with running(echo, sock=lsock) as srv:
        for _ in range(5):
            with dial(srv) as conn:
                conn.write_message(TEXT_MESSAGE, "x")
                assert conn.read_message() == (TEXT_MESSAGE, b"x")
    assert len(calls) == 5


# ---------------------------------------------------------------------------
# Graceful shutdown
# ---------------------------------------------------------------------------


@pytest.mark.usefixtures("no_leaks")
def test_shutdown_sends_1001_to_20_live_clients() -> None:
    srv = Server(echo, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    clients = [dial(srv) for _ in range(20)]
    try:
        for i, c in enumerate(clients):  # each is live: an echo round trip
            c.write_message(TEXT_MESSAGE, str(i))
            assert c.read_message() == (TEXT_MESSAGE, str(i).encode())
        codes: List[int] = []
        lock = threading.Lock()

        def wait_close(c: Conn) -> None:
            try:
                while True:
                    c.read_message()
            except CloseError as e:
                with lock:
                    codes.append(e.code)

        readers = [threading.Thread(target=wait_close, args=(c,)) for c in clients]
        for r in readers:
            r.start()
        srv.shutdown(timeout=5.0)
        t.join(TIMEOUT)
        for r in readers:
            r.join(TIMEOUT)
        assert codes == [1001] * 20
        assert srv.connection_count() == 0
    finally:
        for c in clients:
            c.close_now()


def test_shutdown_drops_a_client_that_never_answers_the_close() -> None:
    srv = Server(echo, "127.0.0.1", 0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    conn = dial(srv)  # never reads: the close handshake cannot finish
    try:
        start = time.monotonic()
        srv.shutdown(timeout=0.5)
        assert time.monotonic() - start < TIMEOUT
        t.join(TIMEOUT)
        end = time.monotonic() + TIMEOUT
        while srv.connection_count() and time.monotonic() < end:
            time.sleep(0.02)
        assert srv.connection_count() == 0
    finally:
        conn.close_now()


def test_shutdown_cuts_handshakes_in_progress() -> None:
    srv = Server(echo, "127.0.0.1", 0, handshake_timeout=60.0)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    with socket.create_connection(srv.address, timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\n")  # never finishes its head
        end = time.monotonic() + TIMEOUT
        while srv.connection_count() == 0 and time.monotonic() < end:
            time.sleep(0.01)
        srv.shutdown(timeout=2.0)
        t.join(TIMEOUT)
        assert s.recv(100) == b""
    assert srv.connection_count() == 0


def test_shutdown_from_a_handler_does_not_deadlock() -> None:
    box: List[Server] = []

    def handler(conn: Conn) -> None:
        conn.read_message()
        box[0].shutdown(timeout=1.0)

    srv = Server(handler, "127.0.0.1", 0)
    box.append(srv)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    with dial(srv) as conn:
        conn.write_message(TEXT_MESSAGE, "stop")
        assert close_code(conn) == 1001
    t.join(TIMEOUT)
    assert not t.is_alive()


SERVE_SCRIPT = textwrap.dedent(
    """
    import sys
    from gorillaws.serving import serve

    def echo(conn):
        while True:
            mt, data = conn.read_message()
            conn.write_message(mt, data)

    print("READY", flush=True)
    serve(echo, "127.0.0.1", int(sys.argv[1]))
    print("STOPPED", flush=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_serve_signal_closes_clients_with_1001(sig: int) -> None:
    from examples_util import free_port, wait_port

    port = free_port()
    prog = Program([sys.executable, "-c", SERVE_SCRIPT, str(port)], env=child_env())
    try:
        prog.wait_for("READY")
        wait_port(port)
        conns = [Dialer(handshake_timeout=TIMEOUT).dial(f"ws://127.0.0.1:{port}/")[0] for _ in range(3)]
        for c in conns:
            c.set_read_deadline(time.monotonic() + TIMEOUT)
            c.write_message(TEXT_MESSAGE, "hi")
            assert c.read_message() == (TEXT_MESSAGE, b"hi")
        os.kill(prog.proc.pid, sig)
        for c in conns:
            assert close_code(c) == 1001
            c.close()
        prog.wait_for("STOPPED")
        assert prog.proc.wait(TIMEOUT) == 0
    finally:
        if prog.proc.poll() is None:
            prog.proc.kill()
            prog.proc.wait(TIMEOUT)


# ---------------------------------------------------------------------------
# TLS
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


def _contexts(pki: TestPKI) -> Tuple[ssl.SSLContext, ssl.SSLContext]:
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(pki.server_cert, pki.server_key)
    return server, ssl.create_default_context(cafile=pki.ca_cert)


def test_wss_echo_and_silent_tls_client_does_not_stall_others(pki: TestPKI) -> None:
    server_ctx, client_ctx = _contexts(pki)
    with running(echo, ssl_context=server_ctx, handshake_timeout=1.0) as srv:
        assert srv.url.startswith("wss://")
        silent = [socket.create_connection(srv.address, timeout=TIMEOUT) for _ in range(5)]
        try:
            d = Dialer(handshake_timeout=TIMEOUT, tls_client_config=client_ctx)
            start = time.monotonic()
            conn, _ = d.dial(f"wss://localhost:{srv.address[1]}/")
            with conn:
                conn.set_read_deadline(time.monotonic() + TIMEOUT)
                conn.write_message(TEXT_MESSAGE, "through")
                assert conn.read_message() == (TEXT_MESSAGE, b"through")
                # Served while the silent clients still hold their sockets.
                assert all(s.fileno() >= 0 for s in silent)
            for s in silent:  # ... and they are cut by handshake_timeout
                s.settimeout(TIMEOUT)
                assert s.recv(100) == b""
            assert time.monotonic() - start < TIMEOUT
        finally:
            for s in silent:
                s.close()


def test_a_tls_wrapped_listener_passed_as_sock_still_serves_wss(pki: TestPKI) -> None:
    """sock= may be a listener wrapped by an SSLContext itself (handshake not on
    accept): its accept() wraps each connection, so the server must call it."""
    server_ctx, client_ctx = _contexts(pki)
    raw = socket.create_server(("127.0.0.1", 0))
    lsock = server_ctx.wrap_socket(raw, server_side=True, do_handshake_on_connect=False)
    with running(echo, sock=lsock, handshake_timeout=TIMEOUT) as srv:
        conn, _ = Dialer(handshake_timeout=TIMEOUT, tls_client_config=client_ctx).dial(
            f"wss://localhost:{srv.address[1]}/"
        )
        with conn:
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.write_message(TEXT_MESSAGE, "wrapped")
            assert conn.read_message() == (TEXT_MESSAGE, b"wrapped")
