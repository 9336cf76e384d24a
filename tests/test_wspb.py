"""gorillaws.wspb: bhojpur's protobuf helpers, with message types shipped in protobuf."""

from __future__ import annotations

import importlib
import os
import sys
from typing import Tuple

import pytest
from conftest import run_in_thread

from gorillaws import BINARY_MESSAGE, TEXT_MESSAGE, CloseError, Conn, ProtocolError

pytestmark = pytest.mark.timeout(30)

try:
    from google.protobuf import struct_pb2, timestamp_pb2
    from google.protobuf.message import DecodeError
except ImportError:
    if os.environ.get("CI") == "true":
        raise  # the test extra installs protobuf: missing under CI is a failure
    pytest.skip("needs the protobuf package (gorillaws[protobuf])", allow_module_level=True)

from gorillaws import wspb  # noqa: E402

Pair = Tuple[Conn, Conn]


def test_round_trip_into_the_given_message(conn_pair: Pair) -> None:
    server, client = conn_pair
    sent = struct_pb2.Struct()
    sent.update({"name": "gopher", "tags": ["a", "b"], "n": 3})
    wspb.write(client, sent)
    target = struct_pb2.Struct()
    got = wspb.read(server, target)
    assert got is target
    assert target == sent and target["name"] == "gopher"


def test_write_is_one_binary_message_with_the_serialized_bytes(conn_pair: Pair) -> None:
    server, client = conn_pair
    ts = timestamp_pb2.Timestamp(seconds=1_700_000_000, nanos=5)
    wspb.write(server, ts)
    assert client.read_message() == (BINARY_MESSAGE, ts.SerializeToString())


def test_read_replaces_what_the_target_held(conn_pair: Pair) -> None:
    """Like Go's proto.Unmarshal, the target is reset before parsing, not merged into."""
    server, client = conn_pair
    wspb.write(client, timestamp_pb2.Timestamp(seconds=7))
    target = timestamp_pb2.Timestamp(seconds=1, nanos=99)
    wspb.read(server, target)
    assert (target.seconds, target.nanos) == (7, 0)


def _failing_read(pair: Pair, opcode: int, payload: bytes) -> Tuple[ProtocolError, BaseException]:
    server, client = pair
    client.write_message(opcode, payload)
    peer = run_in_thread(client.read_message)
    with pytest.raises(ProtocolError) as ei:
        wspb.read(server, timestamp_pb2.Timestamp())
    with pytest.raises(CloseError) as peer_err:
        peer.join()
    return ei.value, peer_err.value


def test_text_message_closes_with_unsupported_data(conn_pair: Pair) -> None:
    err, peer_err = _failing_read(conn_pair, TEXT_MESSAGE, b"hello")
    assert err.code == 1003 and isinstance(peer_err, CloseError) and peer_err.code == 1003


def test_bytes_that_do_not_parse_close_with_invalid_payload_data(conn_pair: Pair) -> None:
    # Field 1 as a varint whose continuation bit promises bytes that never come.
    err, peer_err = _failing_read(conn_pair, BINARY_MESSAGE, b"\x08\xff")
    assert err.code == 1007 and isinstance(err.__cause__, DecodeError)
    assert isinstance(peer_err, CloseError) and peer_err.code == 1007


def test_import_without_protobuf_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "google.protobuf" or m.startswith("google.protobuf.")]:
        monkeypatch.setitem(sys.modules, name, None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "google.protobuf", None)  # type: ignore[arg-type]
    monkeypatch.delitem(sys.modules, "gorillaws.wspb")
    with pytest.raises(ImportError, match=r"gorillaws\[protobuf\]"):
        importlib.import_module("gorillaws.wspb")
