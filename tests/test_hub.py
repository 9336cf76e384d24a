"""The in-process broadcast hub (gorillaws.hub.Hub): fan-out, order, overflow policy, shutdown.

Subscribers are real server/client Conn pairs over 127.0.0.1 TCP (or
socketpairs where many are needed).  Server sides that need an application
reader (to answer close frames) get one from :class:`App`.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from typing import Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import pytest

import gorillaws
from conftest import make_conn_pair, run_in_thread
from gorillaws.hub import Hub, HubClosed, LocalBackend, RedisBackend, RedisStreamBackend, core
from gorillaws.hub.redis_backend import decode, encode, redact, stream_id

TEXT = gorillaws.TEXT_MESSAGE
BINARY = gorillaws.BINARY_MESSAGE
WAIT = 10.0


class App:
    """Server-side connections with an application reader each, as a real server has."""

    def __init__(self, hub: Hub, transport: str = "tcp") -> None:
        self.hub = hub
        self.transport = transport
        self.pairs: List[Tuple[gorillaws.Conn, gorillaws.Conn]] = []
        self.readers: List[threading.Thread] = []

    def connect(self, topic: Optional[str] = "t", read: bool = True, **kwargs: object) -> Tuple[gorillaws.Conn, gorillaws.Conn]:
        server, client = make_conn_pair(self.transport, **kwargs)  # type: ignore[arg-type]
        self.pairs.append((server, client))
        if topic is not None:
            self.hub.subscribe(server, topic)
        if read:
            t = threading.Thread(target=self._read, args=(server,), daemon=True)
            t.start()
            self.readers.append(t)
        return server, client

    def _read(self, conn: gorillaws.Conn) -> None:
        try:
            while True:
                conn.read_message()
        except (gorillaws.WebSocketError, OSError):
            pass
        finally:
            self.hub.unsubscribe(conn)

    def close(self) -> None:
        for server, client in self.pairs:
            client.close_now()
            server.close_now()
        for t in self.readers:
            t.join(5)


@pytest.fixture
def hub() -> Iterator[Hub]:
    h = Hub()
    yield h
    h.close_timeout = 1.0
    h.close()


@pytest.fixture
def app(hub: Hub) -> Iterator[App]:
    a = App(hub)
    yield a
    a.close()


def read(conn: gorillaws.Conn, timeout: float = WAIT) -> Tuple[int, bytes]:
    conn.set_read_deadline(time.monotonic() + timeout)
    return conn.read_message()


def wait_until(cond, what: str, timeout: float = WAIT) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def test_publish_reaches_every_subscriber_of_the_topic_and_no_one_else(hub: Hub, app: App) -> None:
    clients = [app.connect("news")[1] for _ in range(3)]
    other = app.connect("sport")[1]
    assert hub.publish("news", TEXT, "héllo") == 3
    for c in clients:
        assert read(c) == (TEXT, "héllo".encode())
    hub.publish("sport", BINARY, b"\x00\x01")
    assert read(other) == (BINARY, b"\x00\x01")  # the first message it sees: no "news" leaked
    wait_until(lambda: hub.stats()["delivered"] == 4, "the counters")
    st = hub.stats()
    assert st["subscribers"] == 4 and st["published"] == 2 and st["dropped"] == 0
    assert st["topics"]["news"] == {"subscribers": 3, "published": 1, "delivered": 3, "dropped": 0}
    assert st["backend"] == {"backend": "local"}


def test_each_message_is_prepared_once(hub: Hub, app: App, monkeypatch: pytest.MonkeyPatch) -> None:
    made: List[object] = []

    class Counting(gorillaws.PreparedMessage):
        def __init__(self, *a: object) -> None:
            made.append(self)
            super().__init__(*a)  # type: ignore[arg-type]

    monkeypatch.setattr(core, "PreparedMessage", Counting)
    clients = [app.connect()[1] for _ in range(5)]
    hub.publish("t", TEXT, "once")
    for c in clients:
        assert read(c) == (TEXT, b"once")
    assert len(made) == 1


def assert_in_order_per_publisher(messages: Iterable[str]) -> None:
    """Messages named ``publisher-i``: each publisher's ``i`` count 0, 1, 2, ... with no gap or repeat."""
    seen: Dict[str, int] = {}
    for m in messages:
        name, i = m.split("-")
        assert int(i) == seen.get(name, -1) + 1, f"{m} after {name}-{seen.get(name)}"
        seen[name] = int(i)


def test_messages_of_each_publisher_arrive_in_order(hub: Hub, app: App) -> None:
    hub.queue_size = 1000  # the whole burst may be queued before the writers start
    clients = [app.connect()[1] for _ in range(20)]
    n = 200

    def publisher(name: str) -> None:
        for i in range(n):
            hub.publish("t", TEXT, f"{name}-{i}")

    threads = [threading.Thread(target=publisher, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for c in clients:
        assert_in_order_per_publisher(read(c)[1].decode() for _ in range(2 * n))
    for t in threads:
        t.join(WAIT)


def test_unsubscribe_from_one_topic_or_all(hub: Hub, app: App) -> None:
    server, client = app.connect("a")
    hub.subscribe(server, "b")
    hub.subscribe(server, "b")  # twice is once
    assert sorted(hub.topics(server)) == ["a", "b"]
    hub.unsubscribe(server, "a")
    assert hub.topics(server) == ["b"] and hub.subscribers("a") == 0
    assert hub.publish("a", TEXT, "gone") == 0
    hub.publish("b", TEXT, "still")
    assert read(client) == (TEXT, b"still")
    hub.unsubscribe(server)
    assert hub.topics(server) == [] and hub.stats()["subscribers"] == 0
    assert "b" not in hub.stats()["topics"]
    hub.unsubscribe(server)  # not subscribed: no effect


def _tiny_buffers(server: gorillaws.Conn, client: gorillaws.Conn) -> None:
    server.underlying_conn().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    client.underlying_conn().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)


def run_slow_subscriber(
    publisher: Hub, app: App, n: int = 400, ready: Callable[[], None] = lambda: None
) -> Tuple[List[gorillaws.Conn], gorillaws.Conn]:
    """Publish ``n`` 4 KiB messages on ``publisher`` to ``app``'s hub: 3 readers and one client that never reads.

    ``ready`` runs after the subscriptions, before the first message.
    """
    slow_server, slow_client = app.connect()
    _tiny_buffers(slow_server, slow_client)
    fast = [app.connect()[1] for _ in range(3)]
    ready()
    got = [run_in_thread(lambda c=c: [read(c)[1] for _ in range(n)]) for c in fast]  # type: ignore[misc]
    for i in range(n):
        publisher.publish("t", BINARY, i.to_bytes(4, "big") * 1024)
    for result in got:
        msgs = result.join(WAIT * 3)
        assert [int.from_bytes(m[:4], "big") for m in msgs] == list(range(n))
    return fast, slow_server


def test_subscriber_that_never_reads_is_closed_and_the_others_keep_receiving(app: App) -> None:
    hub = app.hub
    hub.queue_size = 16
    _, slow_server = run_slow_subscriber(hub, app)
    wait_until(lambda: slow_server.closed, "the slow subscriber's connection to be closed")
    st = hub.stats()
    assert st["closed_slow"] == 1 and st["dropped"] >= 1
    assert st["subscribers"] == 3 and st["topics"]["t"]["subscribers"] == 3


@pytest.mark.slow  # about 2.5 s
def test_drop_policy_keeps_the_slow_subscriber_and_drops_messages() -> None:
    hub = Hub(overflow="drop", queue_size=16, close_timeout=0.2)
    app = App(hub)
    try:
        _, slow_server = run_slow_subscriber(hub, app)
        assert not slow_server.closed
        st = hub.stats()
        assert st["closed_slow"] == 0 and st["dropped"] >= 1 and st["subscribers"] == 4
        # What it does get is in order, with gaps where messages were dropped.
        slow_client = app.pairs[0][1]
        seen = []
        while len(seen) < 400 - st["dropped"]:
            seen.append(int.from_bytes(read(slow_client)[1][:4], "big"))
        assert seen == sorted(seen) and len(set(seen)) == len(seen)
    finally:
        hub.close()
        app.close()


def test_a_broken_connection_is_dropped(hub: Hub, app: App) -> None:
    server, client = app.connect(read=False)
    client.close_now()
    wait_until(lambda: (hub.publish("t", TEXT, "x" * 1000), hub.stats()["subscribers"] == 0)[1], "the dead subscriber to be dropped")
    assert hub.stats()["write_errors"] == 1 and server.closed


def test_a_subscriber_in_its_close_handshake_is_left_to_finish_it(hub: Hub, app: App) -> None:
    server, client = app.connect(read=False)
    server.write_control(gorillaws.CLOSE_MESSAGE, gorillaws.format_close_message(1000, "bye"))
    hub.publish("t", TEXT, "too late")
    wait_until(lambda: hub.stats()["subscribers"] == 0, "the closing subscriber to be forgotten")
    # Not an error, and the socket is left open for the handshake to complete.
    assert hub.stats()["write_errors"] == 0 and not server.closed
    with pytest.raises(gorillaws.CloseError) as err:
        read(client)
    assert err.value.code == 1000


def test_close_sends_1001_to_every_subscriber_and_stops(app: App) -> None:
    hub = app.hub
    clients = [app.connect(topic=f"t{i % 3}")[1] for i in range(12)]
    hub.publish("t0", TEXT, "before")
    wait_until(lambda: hub.stats()["delivered"] == 4, "the message to be written")

    def client(i: int, c: gorillaws.Conn) -> int:
        # A client reads all the time (a browser does), so it answers the close at once.
        if i % 3 == 0:
            assert read(c) == (TEXT, b"before")
        with pytest.raises(gorillaws.CloseError) as err:
            read(c)
        return err.value.code

    results = [run_in_thread(lambda i=i, c=c: client(i, c)) for i, c in enumerate(clients)]  # type: ignore[misc]
    hub.close()
    assert [r.join() for r in results] == [gorillaws.CLOSE_GOING_AWAY] * len(clients)
    assert all(server.closed for server, _ in app.pairs)
    with pytest.raises(HubClosed):
        hub.publish("t0", TEXT, "after")
    with pytest.raises(HubClosed):
        hub.subscribe(app.pairs[0][0], "t0")
    hub.close()  # twice is fine
    assert not [t for t in threading.enumerate() if t.name.startswith("gorillaws-hub")]


def test_close_does_not_wait_for_a_subscriber_that_never_reads() -> None:
    hub = Hub(close_timeout=0.5, queue_size=10_000)
    app = App(hub)
    try:
        server, client = app.connect()
        _tiny_buffers(server, client)
        for _ in range(200):
            hub.publish("t", BINARY, b"x" * 4096)
        wait_until(lambda: hub.stats()["parked"] == 1, "the full socket to be parked")
        result = run_in_thread(hub.close)
        result.join(5)  # bounded by close_timeout, not by the peer
        assert server.closed
    finally:
        app.close()


def test_many_subscribers_share_a_few_writer_threads() -> None:
    before = threading.active_count()
    hub = Hub(writers=3)
    app = App(hub, transport="socketpair")
    try:
        clients = [app.connect(read=False)[1] for _ in range(500)]
        assert threading.active_count() - before == 3 + 1  # writers + the parker
        hub.publish("t", TEXT, "all of you")
        for c in clients:
            assert read(c) == (TEXT, b"all of you")
    finally:
        hub.close_timeout = 0.5
        hub.close()
        app.close()


def test_concurrent_subscribe_unsubscribe_and_publish() -> None:
    import random

    hub = Hub(queue_size=10_000, close_timeout=0.5)
    app = App(hub, transport="socketpair")
    try:
        servers = [app.connect(topic=None, read=False)[0] for _ in range(40)]
        stop = threading.Event()
        errors: List[BaseException] = []

        def churn(seed: int) -> None:
            rnd = random.Random(seed)
            try:
                while not stop.is_set():
                    conn, topic = rnd.choice(servers), rnd.choice(("x", "y", "z"))
                    if rnd.random() < 0.5:
                        hub.subscribe(conn, topic)
                    else:
                        hub.unsubscribe(conn, rnd.choice((topic, None)))
            except BaseException as e:  # noqa: BLE001 - reported below
                errors.append(e)

        def publish() -> None:
            try:
                while not stop.is_set():
                    for topic in ("x", "y", "z"):
                        hub.publish(topic, TEXT, "m")
            except BaseException as e:  # noqa: BLE001
                errors.append(e)

        threads = [threading.Thread(target=churn, args=(i,)) for i in range(3)]
        threads += [threading.Thread(target=publish) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        stop.set()
        for t in threads:
            t.join(WAIT)
        assert not errors
        # The books balance: every subscriber the hub counts is in its topics, and back.
        st = hub.stats()
        in_topics = {id(c) for c in servers if hub.topics(c)}
        assert st["subscribers"] == len(in_topics)
        assert sum(t["subscribers"] for t in st["topics"].values()) == sum(len(hub.topics(c)) for c in servers)
    finally:
        hub.close()
        app.close()


def test_bad_arguments() -> None:
    for kwargs in ({"queue_size": 0}, {"overflow": "block"}, {"overflow_code": 99}, {"writers": 0},
                   {"write_timeout": 0}, {"redis_url": "redis://x", "backend": LocalBackend()}):
        with pytest.raises(ValueError):
            Hub(**kwargs)  # type: ignore[arg-type]
    with Hub() as hub:
        with pytest.raises(TypeError):
            hub.subscribe(None, b"bytes")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            hub.publish("t", gorillaws.PING_MESSAGE, b"")
    assert hub.closed


def test_missing_redis_package_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "redis", None)
    with pytest.raises(ImportError, match=r"gorillaws\[redis\]"):
        RedisBackend("redis://127.0.0.1:1/0")
    with pytest.raises(ImportError, match=r"gorillaws\[redis\]"):
        Hub(redis_url="redis://127.0.0.1:1/0")


def test_redis_envelope_round_trip_and_foreign_payloads() -> None:
    origin = bytes(range(16))
    assert decode(encode(origin, TEXT, b"hi")) == (origin, TEXT, b"hi")
    assert decode(encode(origin, BINARY, b"")) == (origin, BINARY, b"")
    for foreign in (b"", b"hello", b"gwh1" + origin + b"\x09x", b"xxxx" + origin + b"\x01"):
        assert decode(foreign) is None
    with pytest.raises(ValueError):
        encode(b"short", TEXT, b"")
    with pytest.raises(ValueError):
        encode(origin, 9, b"")
    assert redact("redis://u:secret@h:6379/0") == "redis://u:***@h:6379/0"
    assert redact("redis://h/0") == "redis://h/0"


def test_since_needs_a_backend_with_a_history(hub: Hub, app: App) -> None:
    server, _ = app.connect(None)
    with pytest.raises(ValueError, match="since= needs a backend that keeps a history"):
        hub.subscribe(server, "t", since="0")
    assert hub.topics(server) == [] and hub.subscribers("t") == 0
    pubsub = Hub(backend=RedisBackend("redis://127.0.0.1:1/0", reconnect_min=5))  # never reached
    try:
        with pytest.raises(ValueError, match="not RedisBackend"):
            pubsub.subscribe(server, "t", since="1-0")
    finally:
        pubsub.close()


def test_stream_ids_are_read_strictly() -> None:
    assert stream_id("0") == (0, 0)
    assert stream_id("1732953600000-7") == (1732953600000, 7)
    for bad in ("", "1-", "-1", "1-2-3", "12", "1.5-0", " 1-0", "1-0\n", "$", ">"):
        with pytest.raises(ValueError, match="not a stream id"):
            stream_id(bad)
    with pytest.raises(ValueError, match="maxlen"):
        RedisStreamBackend("redis://127.0.0.1:1/0", maxlen=0)
