"""The hub across processes over a real Redis (a private redis-server per test).

Server processes are this file run as a program (``python tests/test_hub_redis.py
--redis URL``): a WebSocket server on a free port whose every connection
subscribes to topic "t" and publishes each message it receives there.  Under
``CI=true`` a missing redis-server fails these tests; elsewhere they skip.
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import threading
import time
from typing import Iterator, List, Optional, Tuple

if __name__ == "__main__":  # started as a server process: make the source tree importable
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import gorillaws
from gorillaws.hub import Hub, RedisBackend

TEXT = gorillaws.TEXT_MESSAGE
WAIT = 30.0  # generous: the machine running the tests may be very busy


# ---------------------------------------------------------------------------
# The server process
# ---------------------------------------------------------------------------


def serve(redis_url: str) -> None:
    hub = Hub(redis_url=redis_url, queue_size=1000)
    upgrader = gorillaws.Upgrader()
    lsock = socket.create_server(("127.0.0.1", 0), backlog=512)

    def handle(sock: socket.socket) -> None:
        try:
            conn = upgrader.upgrade(sock)
        except (gorillaws.WebSocketError, OSError):
            sock.close()
            return
        hub.subscribe(conn, "t")
        try:
            while True:
                mt, data = conn.read_message()
                hub.publish("t", mt, data)
        except (gorillaws.WebSocketError, OSError):
            pass
        finally:
            hub.unsubscribe(conn)
            conn.close_now()

    def report() -> None:
        # Let the tests see the backend's state without a control channel.
        last = None
        while True:
            b = hub.stats()["backend"]
            now = (b["connected"], b["disconnects"], b["reconnects"])
            if now != last:
                print("redis connected=%s disconnects=%s reconnects=%s" % now, flush=True)
                last = now
            time.sleep(0.05)

    threading.Thread(target=report, daemon=True).start()
    print(f"listening ws://127.0.0.1:{lsock.getsockname()[1]}/", flush=True)
    while True:
        sock, _ = lsock.accept()
        threading.Thread(target=handle, args=(sock,), daemon=True).start()


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("--redis", required=True)
    serve(p.parse_args().redis)
    sys.exit(0)


# ---------------------------------------------------------------------------
# The tests
# ---------------------------------------------------------------------------

import pytest  # noqa: E402

from tests.examples_util import Program, python  # noqa: E402
from tests.test_hub import App, assert_in_order_per_publisher, run_slow_subscriber, wait_until  # noqa: E402
from tests.redis_server import RedisServer, redis_server  # noqa: E402,F401

# slow: a redis-server and server processes per test; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

CHANNEL = "gorillaws:hub:t"


def start_server(redis: RedisServer) -> Tuple[Program, str]:
    prog = Program(python(os.path.abspath(__file__), "--redis", redis.url))
    url = prog.wait_for(r"listening (ws://\S+)").group(1)
    return prog, url


def subscribers_in_redis(redis: RedisServer) -> int:
    return redis.numsub(CHANNEL)


def dial(url: str) -> gorillaws.Conn:
    conn, _ = gorillaws.Dialer(handshake_timeout=10).dial(url)
    return conn


def read_text(conn: gorillaws.Conn, timeout: float = WAIT) -> str:
    conn.set_read_deadline(time.monotonic() + timeout)
    return conn.read_message()[1].decode()


@pytest.fixture
def two_servers(redis_server: RedisServer) -> Iterator[Tuple[RedisServer, str, str, List[Program]]]:  # noqa: F811
    progs: List[Program] = []
    try:
        p1, url1 = start_server(redis_server)
        progs.append(p1)
        p2, url2 = start_server(redis_server)
        progs.append(p2)
        yield redis_server, url1, url2, progs
    finally:
        for p in progs:
            p.stop()


@pytest.fixture
def two_clients(two_servers) -> Iterator[Tuple[RedisServer, gorillaws.Conn, gorillaws.Conn, List[Program]]]:  # type: ignore[no-untyped-def]
    """A client on each server process, both subscribed in Redis."""
    redis, url1, url2, progs = two_servers
    a, b = dial(url1), dial(url2)
    try:
        wait_until(lambda: subscribers_in_redis(redis) == 2, "both processes to subscribe in Redis")
        yield redis, a, b, progs
    finally:
        a.close_now()
        b.close_now()


def test_a_client_on_each_process_sees_the_other_processes_messages(two_clients) -> None:  # type: ignore[no-untyped-def]
    _, a, b, _ = two_clients
    a.write_message(TEXT, "from a")
    assert read_text(b) == "from a"
    assert read_text(a) == "from a"  # its own process delivers it directly
    b.write_message(TEXT, "from b")
    assert read_text(a) == "from b"  # not a second "from a": each message once
    assert read_text(b) == "from b"


def test_200_subscribers_across_2_processes_get_a_burst_in_order_per_publisher(two_servers) -> None:  # type: ignore[no-untyped-def]
    redis, url1, url2, _ = two_servers
    n = 50
    clients: List[gorillaws.Conn] = []
    try:
        for i in range(200):
            clients.append(dial(url1 if i % 2 else url2))
        wait_until(lambda: subscribers_in_redis(redis) == 2, "both processes to subscribe in Redis")
        pub1, pub2 = clients[0], clients[1]  # one on each process
        for i in range(n):
            pub1.write_message(TEXT, f"x-{i}")
            pub2.write_message(TEXT, f"y-{i}")
        for c in clients:
            assert_in_order_per_publisher(read_text(c) for _ in range(2 * n))
    finally:
        for c in clients:
            c.close_now()


def test_delivery_resumes_after_redis_restarts(two_clients) -> None:  # type: ignore[no-untyped-def]
    redis, a, b, progs = two_clients
    a.write_message(TEXT, "before")
    assert read_text(b) == "before" and read_text(a) == "before"

    redis.stop()
    for p in progs:
        p.wait_for(r"redis connected=False disconnects=1", timeout=10)
    # Local delivery goes on without Redis.
    a.write_message(TEXT, "during")
    assert read_text(a) == "during"

    redis.start()
    for p in progs:
        # Within a few seconds: the backoff tops out at 5 s.
        p.wait_for(r"redis connected=True disconnects=1 reconnects=1", timeout=10)
    wait_until(lambda: subscribers_in_redis(redis) == 2, "both processes to resubscribe")
    # Resumed within a few seconds of Redis coming back (wait_for bounds it).
    a.write_message(TEXT, "after")
    assert read_text(b) == "after"  # "during" never reached b: pub/sub is at-most-once
    assert read_text(a) == "after"


# -- in-process hubs on one Redis: stats, and the slow-subscriber policy over Redis --


def test_stats_and_log_show_redis_loss_and_recovery(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    caplog.set_level("WARNING", logger="gorillaws.hub")
    backend = RedisBackend(redis_server.url, reconnect_max=0.5)
    hub = Hub(backend=backend)
    try:
        wait_until(lambda: hub.stats()["backend"]["connected"], "the first connection")
        st = hub.stats()["backend"]
        assert st["backend"] == "redis" and st["url"] == redis_server.url and st["disconnects"] == 0
        redis_server.stop()
        wait_until(lambda: not hub.stats()["backend"]["connected"], "the loss to be noticed")
        assert hub.stats()["backend"]["last_error"]
        hub.publish("t", TEXT, "lost")  # does not block or raise
        redis_server.start()
        wait_until(lambda: hub.stats()["backend"]["connected"], "the reconnection")
        st = hub.stats()["backend"]
        assert st["disconnects"] == 1 and st["reconnects"] == 1
        # One warning when Redis is lost (not one per failed attempt), one when it is back.
        logged = [r.getMessage() for r in caplog.records if r.name == "gorillaws.hub"]
        assert len([m for m in logged if "lost Redis" in m]) == 1, logged
        assert len([m for m in logged if "reconnected to Redis" in m]) == 1, logged
    finally:
        started = time.monotonic()
        hub.close()
        assert time.monotonic() - started < 10  # closing never hangs on Redis


def test_slow_subscriber_on_another_process_is_dropped_others_keep_receiving(redis_server: RedisServer) -> None:  # noqa: F811
    publisher = Hub(redis_url=redis_server.url)
    receiver = Hub(redis_url=redis_server.url, queue_size=16)
    app = App(receiver)
    try:
        wait_until(lambda: publisher.stats()["backend"]["connected"], "the publisher's connection")
        _, slow_server = run_slow_subscriber(
            publisher, app, ready=lambda: wait_until(lambda: subscribers_in_redis(redis_server) == 1, "the receiver to subscribe")
        )
        wait_until(lambda: slow_server.closed, "the slow subscriber's connection to be closed")
        assert receiver.stats()["closed_slow"] == 1
        assert receiver.stats()["backend"]["received"] >= 400
    finally:
        receiver.close_timeout = publisher.close_timeout = 0.5
        publisher.close()
        receiver.close()
        app.close()


def test_no_double_delivery_between_two_hubs(redis_server: RedisServer) -> None:  # noqa: F811
    h1, h2 = Hub(redis_url=redis_server.url), Hub(redis_url=redis_server.url)
    a1, a2 = App(h1), App(h2)
    try:
        c1 = a1.connect()[1]
        c2 = a2.connect()[1]
        wait_until(lambda: subscribers_in_redis(redis_server) == 2, "both hubs to subscribe")
        wait_until(lambda: h1.stats()["backend"]["connected"], "h1's connection")
        for i in range(20):
            h1.publish("t", TEXT, f"m{i}")
        h2.publish("t", TEXT, "end")
        for c in (c1, c2):
            got = [read_text(c) for _ in range(21)]
            # Each message once; h1's in order (h2's "end" may come first on h2's own subscriber).
            assert [m for m in got if m != "end"] == [f"m{i}" for i in range(20)] and got.count("end") == 1
        assert h1.stats()["backend"]["received"] == 1 and h2.stats()["backend"]["received"] == 20
    finally:
        for h in (h1, h2):
            h.close_timeout = 0.5
            h.close()
        a1.close()
        a2.close()
