"""join_messages: gorilla's JoinMessages over a real socket pair."""

from __future__ import annotations

import socket

import pytest

import gorillaws


def _pair() -> "tuple[gorillaws.Conn, gorillaws.Conn]":
    a, b = socket.socketpair()
    return gorillaws.Conn(a, is_server=True), gorillaws.Conn(b, is_server=False)


def test_join_messages_inserts_the_terminator_and_raises_on_close() -> None:
    server, client = _pair()
    try:
        client.write_message(gorillaws.TEXT_MESSAGE, "first")
        w = client.next_writer(gorillaws.BINARY_MESSAGE)
        w.write(b"sec")
        w.write(b"ond")
        w.close()
        client.write_message(gorillaws.TEXT_MESSAGE, "")
        client.write_control(gorillaws.CLOSE_MESSAGE, gorillaws.format_close_message(1000, "bye"))
        stream = gorillaws.join_messages(server, "\n")
        assert stream.readline() == b"first\n"
        assert stream.readline() == b"second\n"
        assert stream.readline() == b"\n"
        with pytest.raises(gorillaws.CloseError) as info:
            stream.read(1)
        assert info.value.code == 1000 and info.value.text == "bye"
    finally:
        server.close_now()
        client.close_now()


def test_join_messages_small_reads_cross_message_boundaries() -> None:
    server, client = _pair()
    try:
        for part in (b"ab", b"cde", b"f"):
            client.write_message(gorillaws.BINARY_MESSAGE, part)
        stream = gorillaws.join_messages(server, b"|")
        got = b"".join(stream.read(1) for _ in range(9))
        assert got == b"ab|cde|f|"
    finally:
        server.close_now()
        client.close_now()
