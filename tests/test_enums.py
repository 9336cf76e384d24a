"""MessageType, CloseCode and CompressionMode: IntEnums equal to the plain constants."""

from __future__ import annotations

import json
import pickle

import pytest
from conftest import run_in_thread

import gorillaws
from gorillaws import CloseCode, CompressionMode, MessageType, deflate

pytestmark = pytest.mark.timeout(30)


def test_message_types_equal_the_constants() -> None:
    assert MessageType.TEXT == gorillaws.TEXT_MESSAGE == 1
    assert MessageType.BINARY == gorillaws.BINARY_MESSAGE == 2
    assert MessageType.CLOSE == gorillaws.CLOSE_MESSAGE == 8
    assert MessageType.PING == gorillaws.PING_MESSAGE == 9
    assert MessageType.PONG == gorillaws.PONG_MESSAGE == 10
    assert [m.name for m in MessageType] == ["TEXT", "BINARY", "CLOSE", "PING", "PONG"]


def test_close_codes_are_named_like_the_constants() -> None:
    names = {n[len("CLOSE_"):] for n in gorillaws.__all__ if n.startswith("CLOSE_") and n != "CLOSE_MESSAGE"}
    assert {c.name for c in CloseCode} == names
    for code in CloseCode:
        assert getattr(gorillaws, "CLOSE_" + code.name) == code
    assert CloseCode.NORMAL_CLOSURE == gorillaws.CLOSE_NORMAL_CLOSURE == 1000
    assert CloseCode(1001) is CloseCode.GOING_AWAY
    with pytest.raises(ValueError):
        CloseCode(4000)  # application codes are plain ints


def test_compression_modes_equal_the_documented_constants() -> None:
    assert CompressionMode.DISABLED == gorillaws.COMPRESSION_DISABLED == deflate.COMPRESSION_DISABLED
    assert CompressionMode.NO_CONTEXT_TAKEOVER == gorillaws.COMPRESSION_NO_CONTEXT_TAKEOVER
    assert CompressionMode.CONTEXT_TAKEOVER == gorillaws.COMPRESSION_CONTEXT_TAKEOVER
    assert len(CompressionMode) == 3


@pytest.mark.parametrize("member", [MessageType.TEXT, CloseCode.GOING_AWAY, CompressionMode.CONTEXT_TAKEOVER])
def test_members_behave_as_their_ints(member: int) -> None:
    n = int(member)
    assert str(member) == str(n) and f"{member}" == f"{n}" and "%d" % member == str(n)
    assert hash(member) == hash(n) and {n: "x"}[member] == "x"
    assert json.dumps(member) == str(n)
    assert pickle.loads(pickle.dumps(member)) is member
    assert repr(member).startswith(f"<{type(member).__name__}.")


def test_plain_ints_are_accepted_where_members_are(conn_pair: "tuple[gorillaws.Conn, gorillaws.Conn]") -> None:
    server, client = conn_pair
    server.write_message(MessageType.BINARY, b"a")
    server.write_message(2, b"b")
    assert client.read_message() == (2, b"a")
    assert client.read_message() == (MessageType.BINARY, b"b")
    reader = run_in_thread(server.read_message)  # answers the close frame at once
    client.close(CloseCode.GOING_AWAY, "bye")
    with pytest.raises(gorillaws.CloseError) as ei:
        reader.join()
    assert ei.value.code == CloseCode.GOING_AWAY


def test_compression_mode_member_negotiates() -> None:
    from test_compat import OneShotServer

    def handle(sock: object) -> gorillaws.Conn:
        return gorillaws.Upgrader(compression_mode=CompressionMode.CONTEXT_TAKEOVER, handshake_timeout=5).upgrade(sock)

    srv = OneShotServer(handle)
    client, resp = gorillaws.Dialer(compression_mode=CompressionMode.CONTEXT_TAKEOVER, handshake_timeout=5).dial(
        f"ws://127.0.0.1:{srv.port}/"
    )
    server = srv.join()
    try:
        ext = resp.headers.get("Sec-WebSocket-Extensions") or ""
        assert "permessage-deflate" in ext and "no_context_takeover" not in ext
        client.write_message(MessageType.TEXT, b"x" * 1000)
        assert server.read_message() == (MessageType.TEXT, b"x" * 1000)
    finally:
        client.close_now()
        server.close_now()


def test_reads_return_message_type_members(conn_pair: "tuple[gorillaws.Conn, gorillaws.Conn]") -> None:
    server, client = conn_pair
    client.write_message(gorillaws.TEXT_MESSAGE, b"t")
    client.write_message(gorillaws.BINARY_MESSAGE, b"b" * 20000)  # past the one-frame fast path's buffer
    with client.next_writer(gorillaws.TEXT_MESSAGE) as w:  # fragmented: the slow path
        w.write(b"x" * (client.write_buffer_size + 10))
    mt, _ = server.read_message()
    assert mt is MessageType.TEXT
    mt, data = server.read_message()
    assert mt is MessageType.BINARY and len(data) == 20000
    mt, reader = server.next_reader()
    assert mt is MessageType.TEXT and reader.message_type is MessageType.TEXT
    assert len(reader.read()) == client.write_buffer_size + 10
