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
from gorillaws.hub import HistoryGone, Hub, RedisBackend, RedisStreamBackend

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
        last_subscribers = 0
        while True:
            b = hub.stats()["backend"]
            now = (b["connected"], b["disconnects"], b["reconnects"])
            if now != last:
                print("redis connected=%s disconnects=%s reconnects=%s" % now, flush=True)
                last = now
            # A dial returns at the 101, before the handler has subscribed its
            # connection: a test that publishes to many waits for this count.
            subscribers = hub.subscribers("t")
            if subscribers != last_subscribers:
                print("local subscribers=%d" % subscribers, flush=True)
                last_subscribers = subscribers
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
    redis, url1, url2, progs = two_servers
    n = 50
    clients: List[gorillaws.Conn] = []
    try:
        for i in range(200):
            clients.append(dial(url1 if i % 2 else url2))
        wait_until(lambda: subscribers_in_redis(redis) == 2, "both processes to subscribe in Redis")
        for p in progs:  # every handler has subscribed its connection, not only the first
            p.wait_for(r"^local subscribers=100$", timeout=WAIT)
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


# -- Redis Streams: a history to resume from (RedisStreamBackend, subscribe(..., since=id)) --


def with_id(entry_id: str, message_type: int, data: bytes) -> Tuple[int, bytes]:
    """The envelope the stream tests use: ``"<id> <message>"``."""
    return message_type, entry_id.encode() + b" " + data


def stream_hub(redis: RedisServer, **kwargs: object) -> Hub:
    return Hub(backend=RedisStreamBackend(redis.url, envelope=with_id, **kwargs))  # type: ignore[arg-type]


def xlen(redis: RedisServer) -> int:
    return int(redis.command("XLEN", "gorillaws:hub:t").strip()[1:])


def wait_reading_stream(hub: Hub) -> None:
    """Wait until ``hub`` reads topic "t"'s stream: from then on nothing published to it is missed."""
    wait_until(lambda: "t" in hub.stats()["backend"]["last_ids"], "the hub to read the stream")


def read_entry(conn: gorillaws.Conn, timeout: float = WAIT) -> Tuple[str, str]:
    """``(id, message)`` of the next enveloped message."""
    entry_id, _, text = read_text(conn, timeout).partition(" ")
    return entry_id, text


def close_hubs(*hubs: Hub) -> None:
    for h in hubs:
        h.close_timeout = 0.5
        h.close()


def test_stream_resume_after_reconnect_gets_exactly_the_missed_messages_in_order(redis_server: RedisServer) -> None:  # noqa: F811
    hub = stream_hub(redis_server)
    app = App(hub)
    total = 300
    stop = threading.Event()

    def publish() -> None:  # live traffic all along, also while the client is away and while it resumes
        for i in range(total):
            if stop.is_set():
                return
            hub.publish("t", TEXT, str(i))
            time.sleep(0.002)

    publisher = threading.Thread(target=publish, daemon=True)
    try:
        server, client = app.connect("t")
        wait_reading_stream(hub)
        publisher.start()
        seen = [read_entry(client) for _ in range(20)]
        assert [int(m) for _, m in seen] == list(range(20))
        hub.unsubscribe(server)  # the client goes away...
        server.close_now()
        client.close_now()
        time.sleep(0.1)  # ...and misses some messages
        server, client = app.connect(None)
        hub.subscribe(server, "t", since=seen[-1][0])  # ...and comes back with the last id it saw
        after = [read_entry(client) for _ in range(total - 20)]
        # Exactly the messages after the last one seen, replayed then live: none twice, none missing.
        assert [int(m) for _, m in after] == list(range(20, total))
        ids = [i for i, _ in seen + after]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-")))) and len(set(ids)) == total
        assert hub.stats()["backend"]["replayed"] >= 1
    finally:
        stop.set()
        publisher.join(10)
        close_hubs(hub)
        app.close()


def test_stream_resume_on_another_process_with_the_id_one_process_showed(redis_server: RedisServer) -> None:  # noqa: F811
    h1, h2 = stream_hub(redis_server), stream_hub(redis_server)
    a1, a2 = App(h1), App(h2)
    try:
        c1 = a1.connect("t")[1]
        wait_reading_stream(h1)
        for i in range(10):
            h2.publish("t", TEXT, f"m{i}")  # h2 has no subscriber: it only appends
        got = [read_entry(c1) for _ in range(10)]
        assert [m for _, m in got] == [f"m{i}" for i in range(10)]
        server2, c2 = a2.connect(None)
        h2.subscribe(server2, "t", since=got[4][0])
        assert [read_entry(c2) for _ in range(5)] == got[5:]  # the same ids: one order for the topic
        h1.publish("t", TEXT, "live")
        assert read_entry(c2)[1] == "live" and read_entry(c1)[1] == "live"
        # "0": everything the history holds.
        server3, c3 = a2.connect(None)
        h2.subscribe(server3, "t", since="0")
        assert [m for _, m in (read_entry(c3) for _ in range(11))] == [f"m{i}" for i in range(10)] + ["live"]
    finally:
        close_hubs(h1, h2)
        a1.close()
        a2.close()


def test_stream_since_older_than_the_history_is_reported(redis_server: RedisServer) -> None:  # noqa: F811
    hub = stream_hub(redis_server, maxlen=10)
    app = App(hub)
    try:
        server, client = app.connect("t")
        wait_reading_stream(hub)
        hub.publish("t", TEXT, "first")
        first_id = read_entry(client)[0]
        for i in range(300):  # MAXLEN ~ 10 trims "first" away
            hub.publish("t", TEXT, str(i))
        wait_until(lambda: hub.stats()["backend"]["published"] == 301, "the messages to reach Redis")
        assert xlen(redis_server) < 300  # trimmed
        late, _ = app.connect(None)
        with pytest.raises(HistoryGone, match="not in the history of 't' any more"):
            hub.subscribe(late, "t", since=first_id)
        assert hub.topics(late) == []  # not subscribed after the error
        assert hub.subscribers("t") == 1
        with pytest.raises(ValueError, match="not a stream id"):
            hub.subscribe(late, "t", since="yesterday")
        hub.subscribe(late, "t")  # what the application does then: a fresh start
        assert hub.topics(late) == ["t"]
    finally:
        close_hubs(hub)
        app.close()


def test_stream_redis_restart_recovers(redis_server: RedisServer) -> None:  # noqa: F811
    hub = stream_hub(redis_server, reconnect_max=0.5, socket_timeout=1.0)
    app = App(hub)
    try:
        server, client = app.connect("t")
        wait_reading_stream(hub)
        hub.publish("t", TEXT, "before")
        before_id, text = read_entry(client)
        assert text == "before"
        # Confirmed by Redis before it dies (else it is sent again: at least once, not exactly once).
        wait_until(lambda: hub.stats()["backend"]["published"] == 1, "Redis to confirm the append")
        redis_server.stop()
        wait_until(lambda: not hub.stats()["backend"]["connected"], "the loss to be noticed")
        hub.publish("t", TEXT, "during")  # waits in the publish queue, does not block
        late, _ = app.connect(None)
        with pytest.raises(TimeoutError, match="no answer from Redis"):
            hub.subscribe(late, "t", since=before_id)  # bounded by socket_timeout
        assert hub.topics(late) == []
        redis_server.start()
        wait_until(lambda: hub.stats()["backend"]["connected"], "the reconnection")
        # Published while Redis was down: delivered once it is back (at least once).
        assert read_entry(client)[1] == "during"
        hub.publish("t", TEXT, "after")
        assert read_entry(client)[1] == "after"
        # The restarted Redis kept nothing (no persistence): the old id is reported gone.
        with pytest.raises(HistoryGone):
            hub.subscribe(late, "t", since=before_id)
        st = hub.stats()["backend"]
        assert st["disconnects"] >= 1 and st["reconnects"] >= 1
    finally:
        close_hubs(hub)
        app.close()


def test_stream_backend_reads_up_to_a_since_it_has_not_read_yet(redis_server: RedisServer) -> None:  # noqa: F811
    """A client may bring an id from a process that is ahead of this one: no message twice, none lost."""
    delivered: List[str] = []
    gate = threading.Event()

    def deliver(topic: str, message_type: int, data: bytes) -> None:
        delivered.append(data.decode())
        gate.wait(WAIT)  # holds this backend's listening thread on the first message

    reader = RedisStreamBackend(redis_server.url, envelope=with_id)
    writer = RedisStreamBackend(redis_server.url)
    reader.start(deliver)
    writer.start(lambda *a: None)
    joined: List[List[Tuple[int, bytes]]] = []
    try:
        reader.topic_added("t")
        wait_until(lambda: "t" in reader.stats()["last_ids"], "the reader to start on the topic")
        writer.publish("t", TEXT, b"m0")
        wait_until(lambda: len(delivered) == 1, "the reader to take m0")  # and wait at the gate
        for i in range(1, 5):
            writer.publish("t", TEXT, f"m{i}".encode())
        wait_until(lambda: xlen(redis_server) == 5, "m1..m4 in the stream")
        newest = redis_server.command("XREVRANGE", "gorillaws:hub:t", "+", "-", "COUNT", "1").split(b"\r\n")[3].decode()
        result: List[BaseException] = []
        t = threading.Thread(target=lambda: _catch(result, reader.replay, "t", newest, joined.append))
        t.start()
        time.sleep(0.1)
        gate.set()
        t.join(WAIT)
        assert result == [] and joined == [[]]  # nothing after the newest
        assert [d.split(" ")[1] for d in delivered] == ["m0", "m1", "m2", "m3", "m4"]  # live, each once
        assert delivered[-1].split(" ")[0] == newest
    finally:
        gate.set()
        reader.close()
        writer.close()


def _catch(out: List[BaseException], fn, *args) -> None:  # type: ignore[no-untyped-def]
    try:
        fn(*args)
    except BaseException as err:  # noqa: BLE001
        out.append(err)


def test_stream_a_live_message_during_the_resume_comes_after_the_replayed_ones(redis_server: RedisServer) -> None:  # noqa: F811
    class Racing(RedisStreamBackend):
        """Publishes, and lets it be read live, between subscribe() and the replay: the worst moment."""

        def replay(self, topic, since, join):  # type: ignore[no-untyped-def]
            before = self.stats()["last_ids"][topic]
            hub.publish(topic, TEXT, "raced")
            wait_until(lambda: self.stats()["last_ids"][topic] != before, "the raced message to be read live")
            super().replay(topic, since, join)

    hub = Hub(backend=Racing(redis_server.url, envelope=with_id))
    app = App(hub)
    try:
        server, client = app.connect("t")
        wait_reading_stream(hub)
        for i in range(3):
            hub.publish("t", TEXT, f"m{i}")
        got = [read_entry(client) for _ in range(3)]
        late, late_client = app.connect(None)
        hub.subscribe(late, "t", since=got[0][0])
        assert [m for _, m in (read_entry(late_client) for _ in range(3))] == ["m1", "m2", "raced"]
        assert read_entry(client)[1] == "raced"
    finally:
        close_hubs(hub)
        app.close()


def test_stream_a_process_cut_off_from_redis_reads_on_from_its_last_id(redis_server: RedisServer) -> None:  # noqa: F811
    reader = stream_hub(redis_server, reconnect_min=5.0)  # stays away (2.5-5 s) long enough for the others to publish
    writer = stream_hub(redis_server, reconnect_min=0.05)
    app = App(reader)
    try:
        _, client = app.connect("t")
        wait_reading_stream(reader)
        writer.publish("t", TEXT, "m0")
        assert read_entry(client)[1] == "m0"
        assert redis_server.command("CLIENT", "KILL", "TYPE", "normal").startswith(b":")  # every connection but this one
        wait_until(lambda: reader.stats()["backend"]["disconnects"] == 1, "the reader to notice")
        for i in range(1, 6):
            writer.publish("t", TEXT, f"m{i}")
        wait_until(lambda: xlen(redis_server) == 6, "m1..m5 in the stream")
        assert not reader.stats()["backend"]["connected"]  # published while the reader was away
        # Back: it reads on from m0, so its subscriber misses nothing.
        assert [read_entry(client)[1] for _ in range(5)] == [f"m{i}" for i in range(1, 6)]
        assert reader.stats()["backend"]["reconnects"] == 1
    finally:
        close_hubs(reader, writer)
        app.close()


def test_stream_an_envelope_that_raises_skips_that_message_only(redis_server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:  # noqa: F811
    def picky(entry_id: str, message_type: int, data: bytes) -> Tuple[int, bytes]:
        if data == b"bad":
            raise ValueError("no")
        return with_id(entry_id, message_type, data)

    hub = Hub(backend=RedisStreamBackend(redis_server.url, envelope=picky))
    app = App(hub)
    try:
        _, client = app.connect("t")
        wait_reading_stream(hub)
        for text in ("a", "bad", "b"):
            hub.publish("t", TEXT, text)
        assert [read_entry(client)[1] for _ in range(2)] == ["a", "b"]  # delivery goes on
        assert hub.stats()["backend"]["envelope_errors"] == 1
        assert any("the envelope failed" in r.getMessage() for r in caplog.records)
    finally:
        close_hubs(hub)
        app.close()
