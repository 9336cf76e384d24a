"""gorilla's deprecated package-level helpers: read_json, write_json, upgrade, new_client."""

from __future__ import annotations

import dataclasses
import socket
from typing import Any, Callable, List, Tuple

import pytest
from conftest import ThreadResult, run_in_thread

import gorillaws
from gorillaws import TEXT_MESSAGE, Conn, Dialer, Upgrader

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 5.0
Pair = Tuple[Conn, Conn]


def test_read_json_returns_the_value_and_warns(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json({"a": 1})
    with pytest.deprecated_call(match="conn.read_json"):
        assert gorillaws.read_json(server) == {"a": 1}


def test_read_json_fills_a_dict_as_go_fills_a_map(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json({"a": 1, "b": 2})
    v = {"b": 0, "keep": True}
    with pytest.deprecated_call():
        gorillaws.read_json(server, v)
    assert v == {"a": 1, "b": 2, "keep": True}


def test_read_json_replaces_a_list_as_go_replaces_a_slice(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json([1, 2])
    v: List[Any] = ["old", "older", "oldest"]
    with pytest.deprecated_call():
        gorillaws.read_json(server, v)
    assert v == [1, 2]


@dataclasses.dataclass
class Message:
    user: str = ""
    text: str = ""
    seq: int = 0


def test_read_json_fills_dataclass_fields_as_go_fills_a_struct(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json({"user": "ann", "Text": "hi", "unknown": 1})
    m = Message(seq=7)
    with pytest.deprecated_call():
        gorillaws.read_json(server, m)
    assert m == Message(user="ann", text="hi", seq=7)  # Text matched case-insensitively


def test_read_json_refuses_an_unfillable_target_before_reading(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json("still there")
    with pytest.deprecated_call(), pytest.raises(TypeError, match="cannot fill a str"):
        gorillaws.read_json(server, "x")
    assert server.read_json() == "still there"


def test_read_json_of_a_mismatched_value_is_a_value_error(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_json([1])
    with pytest.deprecated_call(), pytest.raises(ValueError, match="expected a JSON object"):
        gorillaws.read_json(server, {})


def test_write_json(conn_pair: Pair) -> None:
    server, client = conn_pair
    with pytest.deprecated_call(match=r"conn\.write_json"):
        gorillaws.write_json(server, {"x": [1]})
    assert client.read_message() == (TEXT_MESSAGE, b'{"x":[1]}')


class OneShotServer:
    """Accept one connection on 127.0.0.1 and hand the socket to ``handle`` in a thread."""

    def __init__(self, handle: Callable[[socket.socket], Any]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.result: ThreadResult = run_in_thread(lambda: handle(self.listener.accept()[0]))

    def join(self) -> Any:
        try:
            return self.result.join(TIMEOUT)
        finally:
            self.listener.close()


def test_upgrade_skips_the_origin_check_and_takes_buffer_sizes() -> None:
    def handle(sock: socket.socket) -> Conn:
        with pytest.deprecated_call(match=r"Upgrader"):
            return gorillaws.upgrade(sock, {"X-Hello": "1"}, 1024, 2048)

    srv = OneShotServer(handle)
    # A cross-origin request: refused by a default Upgrader (403), accepted here.
    client, resp = Dialer(handshake_timeout=TIMEOUT).dial(
        f"ws://127.0.0.1:{srv.port}/", {"Origin": "http://evil.example"}
    )
    server = srv.join()
    try:
        assert resp.status == 101 and resp.headers.get("X-Hello") == "1"
        assert server.write_buffer_size == 2048
        client.write_message(TEXT_MESSAGE, b"hi")
        assert server.read_message() == (TEXT_MESSAGE, b"hi")
    finally:
        client.close_now()
        server.close_now()


def test_upgrade_answers_a_refusal_and_raises() -> None:
    def handle(sock: socket.socket) -> Any:
        with pytest.deprecated_call(), pytest.raises(gorillaws.HandshakeError) as ei:
            gorillaws.upgrade(sock)
        sock.close()
        return ei.value

    srv = OneShotServer(handle)
    with socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # not an upgrade
        answer = s.recv(4096)
    err = srv.join()
    assert answer.startswith(b"HTTP/1.1 4") and err.status >= 400


def test_new_client_runs_the_handshake_over_a_given_socket() -> None:
    def handle(sock: socket.socket) -> Conn:
        return Upgrader(handshake_timeout=TIMEOUT).upgrade(sock)

    srv = OneShotServer(handle)
    sock = socket.create_connection(("127.0.0.1", srv.port), timeout=TIMEOUT)
    with pytest.deprecated_call(match=r"Dialer"):
        client, resp = gorillaws.new_client(sock, f"ws://127.0.0.1:{srv.port}/chat", {"X-Id": "7"}, 512, 512)
    server = srv.join()
    try:
        assert resp.status == 101
        assert client.underlying_conn() is sock
        server.write_message(TEXT_MESSAGE, b"welcome")
        assert client.read_message() == (TEXT_MESSAGE, b"welcome")
    finally:
        client.close_now()
        server.close_now()
