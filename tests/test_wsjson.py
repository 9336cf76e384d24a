"""gorillaws.wsjson: nhooyr's JSON helpers, over real connections (socketpair and TCP)."""

from __future__ import annotations

import json
from typing import Any, Tuple

import pytest
from conftest import run_in_thread

from gorillaws import (
    BINARY_MESSAGE,
    CLOSE_INVALID_FRAME_PAYLOAD_DATA,
    CLOSE_UNSUPPORTED_DATA,
    TEXT_MESSAGE,
    CloseError,
    Conn,
    ProtocolError,
)
from gorillaws import wsjson

pytestmark = pytest.mark.timeout(30)

Pair = Tuple[Conn, Conn]


@pytest.mark.parametrize(
    "value", [{"a": 1, "b": [True, None, 2.5]}, [1, "two", {"3": 4}], "text é ✓", 42, None, {}]
)
def test_round_trip(conn_pair: Pair, value: Any) -> None:
    server, client = conn_pair
    wsjson.write(client, value)
    assert wsjson.read(server) == value


def test_write_sends_one_compact_text_message(conn_pair: Pair) -> None:
    server, client = conn_pair
    wsjson.write(server, {"a": [1, 2]})
    assert client.read_message() == (TEXT_MESSAGE, b'{"a":[1,2]}')


def test_write_of_a_value_json_cannot_encode_sends_nothing(conn_pair: Pair) -> None:
    server, client = conn_pair
    with pytest.raises(TypeError):
        wsjson.write(server, {"a": object()})
    wsjson.write(server, "next")
    assert client.read_message() == (TEXT_MESSAGE, b'"next"')


def _failing_read(pair: Pair, send: Any) -> Tuple[ProtocolError, BaseException]:
    """Send with ``send(client)``, read with wsjson on the server; both sides' errors."""
    server, client = pair
    send(client)
    peer = run_in_thread(client.read_message)  # answers the server's close frame
    with pytest.raises(ProtocolError) as ei:
        wsjson.read(server)
    with pytest.raises(CloseError) as peer_err:
        peer.join()
    return ei.value, peer_err.value


def test_binary_message_closes_with_unsupported_data(conn_pair: Pair) -> None:
    err, peer_err = _failing_read(conn_pair, lambda c: c.write_message(BINARY_MESSAGE, b"{}"))
    assert err.code == CLOSE_UNSUPPORTED_DATA == 1003
    assert "text" in str(err) and "binary" in str(err)
    assert isinstance(peer_err, CloseError) and peer_err.code == 1003
    assert conn_pair[0].closed


def test_invalid_json_closes_with_invalid_payload_data(conn_pair: Pair) -> None:
    err, peer_err = _failing_read(conn_pair, lambda c: c.write_message(TEXT_MESSAGE, b"{nope"))
    assert err.code == CLOSE_INVALID_FRAME_PAYLOAD_DATA == 1007
    assert isinstance(err.__cause__, json.JSONDecodeError)
    assert isinstance(peer_err, CloseError) and peer_err.code == 1007


def test_read_raises_the_close_error_when_the_peer_closes(conn_pair: Pair) -> None:
    server, client = conn_pair
    client.write_control(8, b"\x03\xe9bye")
    with pytest.raises(CloseError) as ei:
        wsjson.read(server)
    assert ei.value.code == 1001
