"""Mistakes that ``mypy --strict`` must report: proof that the package's types are seen.

If gorillaws resolved to ``Any`` (an install mypy cannot see, run with
``ignore_missing_imports``, or a module ``__getattr__`` visible to mypy),
these lines would pass silently.  Each line marked ``# E`` must get an error,
and no other line may.
"""

from __future__ import annotations

import gorillaws
from gorillaws import CloseCode, Conn, Dialer, MessageType


def misuse(conn: Conn) -> None:
    conn.write_message("text", b"x")  # E: a str is not a message type
    mt: str = conn.read_message()[0]  # E: the type is a MessageType
    data: str = conn.read_message()[1]  # E: payloads are bytes
    conn.set_pong_handler(lambda: None)  # E: handlers take the payload
    conn.close("normal")  # E: close codes are ints
    Dialer(handshake_timout=5)  # E: misspelt option
    gorillaws.Dialerr  # E: misspelt name
    code: CloseCode = MessageType.TEXT  # E: an enum is not the other enum
    reader: gorillaws.MessageReader = conn.next_writer(1)  # E: a writer is not a reader
    port: int = conn.remote_addr()  # E: an address, not a number
    conn.compression.level = 3  # E: None when compression was not negotiated
    gorillaws.Upgrader().upgrade("/ws")  # E: upgrade takes a handler, an environ or a socket
    del mt, data, code, reader, port


def misuse_response(err: gorillaws.ErrBadHandshake) -> int:
    return err.response.status  # E: None when no response head was read
