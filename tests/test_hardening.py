"""Attacks on the hosts: slowloris, connect bursts, descriptor exhaustion, silent TLS clients.

Run against both documented zero-dependency hosts: :class:`gorillaws.serving.Server`
and the hardened :mod:`gorillaws.httpserver` classes.  Every wait is bounded;
counts are fixed; every socket and process is closed at the end.
"""

from __future__ import annotations

import os
import resource
import select
import socket
import ssl
import sys
import textwrap
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator, List, Tuple

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from certs import TestPKI, make_test_pki  # noqa: E402
from examples_util import Program, child_env, free_port, wait_port  # noqa: E402
from helpers import running_server  # noqa: E402

from gorillaws import Conn, Dialer, HandshakeError, Upgrader  # noqa: E402
from gorillaws.frames import TEXT_MESSAGE  # noqa: E402
from gorillaws.httpserver import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from gorillaws.serving import Server  # noqa: E402

# slow: hundreds of stalled connections, descriptor exhaustion; 1-3 s a test; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

TIMEOUT = 10.0
HEAD_TIMEOUT = 1.5  # the hosts' head/handshake timeout in these tests
STALLED = 300
HOSTS = ("serving", "httpserver")


@pytest.fixture(autouse=True, scope="module")
def _open_files() -> Iterator[None]:
    """Room for 300 stalled sockets on both ends plus everything else."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard == resource.RLIM_INFINITY else min(hard, 8192)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def echo(conn: Conn) -> None:
    while True:
        mt, data = conn.read_message()
        conn.write_message(mt, data)


def upgrade_and_echo(handler: Any, upgrader: Upgrader) -> None:
    """The do_GET of the http.server hosts here."""
    try:
        conn = upgrader.upgrade(handler)
    except HandshakeError:
        return
    with conn:
        try:
            echo(conn)
        except Exception:
            pass


def _http_server_app(upgrader: Upgrader) -> Any:
    class Handler(BaseHTTPRequestHandler):
        header_timeout = HEAD_TIMEOUT

        def do_GET(self) -> None:
            upgrade_and_echo(self, upgrader)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def host(kind: str, ssl_context: Any = None, **kwargs: Any) -> Iterator[Tuple[str, int]]:
    """Run an echo service on 127.0.0.1 with one of the hosts; yield its address."""
    if kind == "serving":
        srv = Server(echo, "127.0.0.1", 0, handshake_timeout=HEAD_TIMEOUT, ssl_context=ssl_context, **kwargs)
        t = threading.Thread(target=srv.serve_forever, daemon=True)
        t.start()
        try:
            yield srv.address
        finally:
            srv.shutdown(timeout=2.0)
            t.join(TIMEOUT)
    else:
        httpd = ThreadingHTTPServer(
            ("127.0.0.1", 0), _http_server_app(Upgrader(handshake_timeout=TIMEOUT)), ssl_context=ssl_context, **kwargs
        )
        with running_server(httpd) as address:
            yield address


def chat(url: str, rounds: int, dialer: Any = None) -> None:
    conn, _ = (dialer or Dialer(handshake_timeout=TIMEOUT)).dial(url)
    with conn:
        for i in range(rounds):
            conn.set_read_deadline(time.monotonic() + TIMEOUT)
            conn.write_message(TEXT_MESSAGE, f"m{i}")
            assert conn.read_message() == (TEXT_MESSAGE, f"m{i}".encode())


def chat_when_possible(url: str) -> None:
    """chat() once the server accepts again; retried (bounded) while it refuses."""
    end = time.monotonic() + TIMEOUT
    while True:
        try:
            chat(url, 2)
            return
        except (OSError, HandshakeError):
            if time.monotonic() > end:
                raise
            time.sleep(0.1)


def wait_all_closed(socks: List[socket.socket], deadline: float) -> int:
    """Wait until each socket reads EOF (or a reset); return how many did by ``deadline``."""
    open_socks = set(socks)
    closed = 0
    while open_socks and time.monotonic() < deadline:
        ready, _, _ = select.select(list(open_socks)[:500], [], [], 0.2)
        for s in ready:
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                open_socks.discard(s)
                closed += 1
    return closed


# ---------------------------------------------------------------------------
# Slowloris
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", HOSTS)
def test_slowloris_300_stalled_heads_are_cut_while_a_client_chats(kind: str) -> None:
    with host(kind) as addr:
        stalled: List[socket.socket] = []
        try:
            start = time.monotonic()
            for i in range(STALLED):
                s = socket.create_connection(addr, timeout=TIMEOUT)
                # Half a request head, or nothing at all: both hold a thread.
                if i % 2:
                    s.sendall(b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n")
                stalled.append(s)
            # A normal client is served while all of them are stalled.
            chat(f"ws://127.0.0.1:{addr[1]}/ws", 20)
            # ... and every stalled socket is cut after the head timeout.
            cut = wait_all_closed(stalled, start + HEAD_TIMEOUT + TIMEOUT)
            assert cut == STALLED
            assert time.monotonic() - start >= HEAD_TIMEOUT * 0.9
            chat(f"ws://127.0.0.1:{addr[1]}/ws", 3)
        finally:
            for s in stalled:
                s.close()


@pytest.mark.parametrize("kind", HOSTS)
def test_trickled_head_is_cut_by_the_total_deadline(kind: str) -> None:
    """One byte every 0.2 s never trips a per-read timeout; the head deadline cuts it."""
    with host(kind) as addr:
        with socket.create_connection(addr, timeout=TIMEOUT) as s:
            start = time.monotonic()
            head = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200
            cut = False
            for byte in head:
                try:
                    s.sendall(bytes([byte]))
                except OSError:
                    cut = True
                    break
                r, _, _ = select.select([s], [], [], 0.2)
                if r:
                    try:
                        cut = s.recv(100) == b"" or True
                    except OSError:
                        cut = True
                    break
                if time.monotonic() - start > HEAD_TIMEOUT + TIMEOUT:
                    break
            assert cut
            assert HEAD_TIMEOUT * 0.9 <= time.monotonic() - start < HEAD_TIMEOUT + TIMEOUT


def test_idle_keep_alive_connection_is_cut_by_the_head_deadline() -> None:
    """After a complete HTTP exchange, waiting for the next request is bounded too."""
    with host("httpserver") as addr:
        with socket.create_connection(addr, timeout=TIMEOUT) as s:
            s.sendall(b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")  # refused with 400, connection kept
            s.settimeout(HEAD_TIMEOUT + TIMEOUT)
            data = b""
            while not data.endswith(b"Bad Request\n"):  # the whole answer, not closed after it
                chunk = s.recv(65536)
                assert chunk, data
                data += chunk
            assert data.startswith(b"HTTP/1.1 400 ")
            start = time.monotonic()
            assert s.recv(65536) == b""  # then dropped while idle
            assert HEAD_TIMEOUT * 0.9 <= time.monotonic() - start


@pytest.mark.parametrize("kind", HOSTS)
def test_connect_burst_fits_the_listen_queue(kind: str) -> None:
    """300 connects while nobody accepts: all complete (a backlog of 5 drops SYNs)."""
    if kind == "serving":
        listener: Any = Server(echo, "127.0.0.1", 0)
        addr = listener.address
    else:
        listener = ThreadingHTTPServer(("127.0.0.1", 0), _http_server_app(Upgrader()))
        addr = listener.server_address[:2]
    socks: List[socket.socket] = []
    try:
        for _ in range(STALLED):
            # A dropped SYN is retried after 1 s: a shorter timeout fails it.
            socks.append(socket.create_connection(addr, timeout=0.8))
    finally:
        for s in socks:
            s.close()
        if kind == "serving":
            listener.shutdown(timeout=1.0)
        else:
            listener.server_close()


# ---------------------------------------------------------------------------
# Descriptor exhaustion (in a child process with a small open-files limit)
# ---------------------------------------------------------------------------

EXHAUST_SCRIPT = textwrap.dedent(
    """
    import logging, resource, sys, threading
    logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="LOG %(name)s %(message)s")
    resource.setrlimit(resource.RLIMIT_NOFILE, (int(sys.argv[3]), resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    cap = None if sys.argv[4] == "default" else int(sys.argv[4])
    port = int(sys.argv[2])

    def echo(conn):
        while True:
            mt, data = conn.read_message()
            conn.write_message(mt, data)

    if sys.argv[1] == "serving":
        from gorillaws.serving import Server
        srv = Server(echo, "127.0.0.1", port, max_connections=cap)
        print("READY", srv.max_connections, flush=True)
        srv.serve_forever()
    else:
        from gorillaws import Upgrader
        from gorillaws.httpserver import BaseHTTPRequestHandler, ThreadingHTTPServer
        up = Upgrader()
        class H(BaseHTTPRequestHandler):
            def do_GET(self):
                with up.upgrade(self) as conn:
                    try:
                        echo(conn)
                    except Exception:
                        pass
            def log_message(self, *a):
                pass
        httpd = ThreadingHTTPServer(("127.0.0.1", port), H, max_connections=cap)
        print("READY", httpd.max_connections, flush=True)
        httpd.serve_forever()
    """
)


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def child_server(kind: str, nofile: int, cap: str) -> Iterator[Tuple[Program, int]]:
    port = free_port()
    prog = Program([sys.executable, "-c", EXHAUST_SCRIPT, kind, str(port), str(nofile), cap], env=child_env())
    try:
        prog.wait_for("READY")
        wait_port(port)
        yield prog, port
    finally:
        prog.proc.kill()
        prog.proc.wait(TIMEOUT)


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc to read CPU time")
@pytest.mark.parametrize("kind", HOSTS)
def test_out_of_descriptors_does_not_spin_and_recovers(kind: str) -> None:
    with child_server(kind, 48, "0") as (prog, port):
        url = f"ws://127.0.0.1:{port}/"
        held: List[Conn] = []
        extra: List[socket.socket] = []
        try:
            for _ in range(60):  # more than the child has descriptors for
                try:
                    held.append(Dialer(handshake_timeout=0.5).dial(url)[0])
                except Exception:  # timed out or reset: the child is out of descriptors
                    break
            for _ in range(20):  # queued in the backlog, not acceptable
                extra.append(socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT))
            prog.wait_for("LOG gorillaws.* accept: Too many open files", timeout=TIMEOUT)
            before = _cpu_seconds(prog.proc.pid)
            time.sleep(2.0)
            used = _cpu_seconds(prog.proc.pid) - before
            assert used < 0.5, f"the accept loop used {used:.2f} s of CPU in 2 s: it spins"
            for s in extra:
                s.close()
            for c in held:
                c.close_now()
            held.clear()
            chat_when_possible(url)  # descriptors free again: new clients are served
            text = prog.output.decode("utf-8", "replace")
            assert text.count("Too many open files") == 1  # logged once, not per attempt
        finally:
            for s in extra:
                s.close()
            for c in held:
                c.close_now()


@pytest.mark.parametrize("kind", HOSTS)
def test_default_cap_refuses_with_503_before_descriptors_run_out(kind: str) -> None:
    with child_server(kind, 64, "default") as (prog, port):
        cap = int(prog.wait_for(r"READY (\d+)").group(1))
        assert 0 < cap <= 32
        if kind == "httpserver":
            assert cap <= 16  # two descriptors per upgraded connection
        url = f"ws://127.0.0.1:{port}/"
        held: List[Conn] = []
        try:
            for _ in range(cap):
                held.append(Dialer(handshake_timeout=TIMEOUT).dial(url)[0])
            with pytest.raises(HandshakeError) as info:
                Dialer(handshake_timeout=TIMEOUT).dial(url)
            assert info.value.status == 503
            held.pop().close()
            chat_when_possible(url)  # room again once the server saw the close
            assert "Too many open files" not in prog.output.decode("utf-8", "replace")
        finally:
            for c in held:
                c.close_now()


# ---------------------------------------------------------------------------
# TLS: a silent client must not stall the others, in each documented setup
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPKI:
    return make_test_pki(str(tmp_path_factory.mktemp("pki")))


@contextmanager
def stdlib_tls_host(ssl_context: ssl.SSLContext) -> Iterator[Tuple[str, int]]:
    """docs/proxies-and-tls.md's third setup: the standard library's server, both lines."""
    import http.server

    upgrader = Upgrader(handshake_timeout=TIMEOUT)

    class Handler(http.server.BaseHTTPRequestHandler):
        timeout = HEAD_TIMEOUT  # the second line the docs ask for

        def do_GET(self) -> None:
            upgrade_and_echo(self, upgrader)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # log_error too: silent clients time out by design

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True, do_handshake_on_connect=False)
    with running_server(httpd) as address:
        yield address


@pytest.mark.parametrize("kind", HOSTS + ("stdlib",))
def test_silent_tls_clients_do_not_stall_others(pki: TestPKI, kind: str) -> None:
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(pki.server_cert, pki.server_key)
    dialer = Dialer(handshake_timeout=TIMEOUT, tls_client_config=ssl.create_default_context(cafile=pki.ca_cert))
    served = stdlib_tls_host(server_ctx) if kind == "stdlib" else host(kind, ssl_context=server_ctx)
    with served as addr:
        silent = [socket.create_connection(addr, timeout=TIMEOUT) for _ in range(10)]
        try:
            start = time.monotonic()
            chat(f"wss://localhost:{addr[1]}/ws", 5, dialer)
            assert wait_all_closed(silent, start + HEAD_TIMEOUT + TIMEOUT) == len(silent)
        finally:
            for s in silent:
                s.close()
