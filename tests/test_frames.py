"""Tests for gorillaws.frames: the pure frame header and close payload code."""

from __future__ import annotations

import struct

import pytest

import gorillaws
from gorillaws import frames
from gorillaws.exceptions import ProtocolError
from gorillaws.frames import (
    encode_header,
    format_close_message,
    header_size,
    is_valid_close_code,
    parse_close_payload,
    parse_header,
)

from conftest import build_frame


def test_constants_have_gorillas_values() -> None:
    assert (gorillaws.TEXT_MESSAGE, gorillaws.BINARY_MESSAGE) == (1, 2)
    assert (gorillaws.CLOSE_MESSAGE, gorillaws.PING_MESSAGE, gorillaws.PONG_MESSAGE) == (8, 9, 10)
    expected = {
        "CLOSE_NORMAL_CLOSURE": 1000,
        "CLOSE_GOING_AWAY": 1001,
        "CLOSE_PROTOCOL_ERROR": 1002,
        "CLOSE_UNSUPPORTED_DATA": 1003,
        "CLOSE_NO_STATUS_RECEIVED": 1005,
        "CLOSE_ABNORMAL_CLOSURE": 1006,
        "CLOSE_INVALID_FRAME_PAYLOAD_DATA": 1007,
        "CLOSE_POLICY_VIOLATION": 1008,
        "CLOSE_MESSAGE_TOO_BIG": 1009,
        "CLOSE_MANDATORY_EXTENSION": 1010,
        "CLOSE_INTERNAL_SERVER_ERR": 1011,
        "CLOSE_SERVICE_RESTART": 1012,
        "CLOSE_TRY_AGAIN_LATER": 1013,
        "CLOSE_BAD_GATEWAY": 1014,
        "CLOSE_TLS_HANDSHAKE": 1015,
    }
    for name, value in expected.items():
        assert getattr(gorillaws, name) == value, name
        assert name in gorillaws.__all__


@pytest.mark.parametrize("length", [0, 1, 125, 126, 127, 65535, 65536, 1 << 20, (1 << 63) - 1])
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.parametrize("opcode", [0, 1, 2])
def test_header_round_trip(length: int, masked: bool, opcode: int) -> None:
    key = b"\x01\x02\x03\x04" if masked else None
    head = encode_header(opcode, length, fin=False, rsv=frames.RSV1, mask=key)
    expect_size = 2 + (0 if length < 126 else 2 if length <= 0xFFFF else 8) + (4 if masked else 0)
    assert len(head) == expect_size
    assert header_size(head[:2]) == expect_size
    hdr = parse_header(head + b"tail")
    assert hdr is not None
    assert (hdr.fin, hdr.rsv, hdr.opcode, hdr.mask, hdr.length, hdr.size) == (
        False,
        frames.RSV1,
        opcode,
        key,
        length,
        expect_size,
    )
    # Every proper prefix is "not yet complete".
    for i in range(len(head)):
        assert parse_header(head[:i]) is None
    # pos/end select a window inside a bigger buffer.
    buf = b"xyz" + head + b"rest"
    hdr2 = parse_header(buf, 3, 3 + len(head))
    assert hdr2 == hdr
    assert parse_header(buf, 3, 3 + len(head) - 1) is None


def test_header_matches_hand_built_frames() -> None:
    for n in (0, 5, 125, 126, 300, 65535, 65536, 70000):
        raw = build_frame(2, bytes(n))
        assert encode_header(2, n) == raw[: len(raw) - n]
        raw = build_frame(1, bytes(n), key=b"abcd", fin=False)
        assert encode_header(1, n, fin=False, mask=b"abcd") == raw[: len(raw) - n]


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
def test_unknown_opcodes_rejected(opcode: int) -> None:
    with pytest.raises(ProtocolError) as ei:
        parse_header(build_frame(opcode, b"x"))
    assert ei.value.code == 1002


@pytest.mark.parametrize("opcode", [8, 9, 10])
def test_control_frame_rules(opcode: int) -> None:
    assert parse_header(build_frame(opcode, bytes(125))) is not None
    with pytest.raises(ProtocolError):
        parse_header(build_frame(opcode, bytes(126)))
    with pytest.raises(ProtocolError):
        parse_header(build_frame(opcode, b"", fin=False))


def test_bad_lengths_rejected() -> None:
    with pytest.raises(ProtocolError):  # top bit of a 64-bit length
        parse_header(build_frame(2, b"", length=1 << 63, length_form=64))
    with pytest.raises(ProtocolError):  # 16-bit form for a 7-bit length
        parse_header(build_frame(2, b"", length=5, length_form=16))
    with pytest.raises(ProtocolError):  # 64-bit form for a 16-bit length
        parse_header(build_frame(2, b"", length=300, length_form=64))


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999])
def test_valid_close_codes(code: int) -> None:
    assert is_valid_close_code(code)
    assert parse_close_payload(struct.pack("!H", code) + "ok é".encode()) == (code, "ok é")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_codes(code: int) -> None:
    assert not is_valid_close_code(code)
    with pytest.raises(ProtocolError) as ei:
        parse_close_payload(struct.pack("!H", code))
    assert ei.value.code == 1002


def test_close_payload_rules() -> None:
    assert parse_close_payload(b"") == (1005, "")
    with pytest.raises(ProtocolError) as ei:
        parse_close_payload(b"\x03")
    assert ei.value.code == 1002
    with pytest.raises(ProtocolError) as ei:
        parse_close_payload(b"\x03\xe8\xff\xfe")
    assert ei.value.code == 1007


def test_format_close_message() -> None:
    assert format_close_message(1000, "bye") == b"\x03\xe8bye"
    assert format_close_message(4000) == b"\x0f\xa0"
    assert format_close_message(1005, "ignored") == b""
    assert gorillaws.format_close_message is format_close_message
    assert len(format_close_message(1000, "x" * 123)) == 125
    with pytest.raises(ValueError):
        format_close_message(1000, "x" * 124)
    with pytest.raises(ValueError):
        format_close_message(1000, "é" * 62)  # 124 bytes of UTF-8


def test_close_code_names() -> None:
    assert frames.close_code_name(1000) == "normal closure"
    assert frames.close_code_name(3001) == "registered"
    assert frames.close_code_name(4001) == "private"
    assert frames.close_code_name(2000) == "unknown"
    assert str(gorillaws.CloseError(1001, "bye")) == "websocket: close 1001 (going away): bye"


def test_exceptions_import_nothing_from_the_package() -> None:
    # frames imports exceptions; the reverse would be an import cycle.
    import ast

    import gorillaws.exceptions as exc_module

    with open(exc_module.__file__, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    relative = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert relative == []
    assert frames.close_code_name is exc_module.close_code_name
