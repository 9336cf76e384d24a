"""Conn's attributes in ``__slots__`` and the short path of ``close()``.

A Conn keeps its own attributes in slots, so that building one fills no
instance dict (see the comment on ``Conn.__slots__``); ``close()`` with its defaults
sends a prepared payload and skips the argument checks of ``write_control``.
These tests pin both down and check that the short path behaves exactly like
the long one.
"""

from __future__ import annotations

import ast
import os
import socket
import sys
import time
import weakref
from types import FrameType
from typing import Any, Callable, List, Optional, Set, Tuple

import pytest

from gorillaws import CLOSE_MESSAGE, PING_MESSAGE, CloseError, Conn, ConnState, DeadlineExceeded
from gorillaws import conn as conn_module

from conftest import RawPeer, run_in_thread, socket_pair

pytestmark = pytest.mark.usefixtures("no_leaks")

RawPeerFactory = Callable[..., Tuple[Conn, RawPeer]]


# ----------------------------------------------------------------------
# __slots__
# ----------------------------------------------------------------------


def _assigned_attributes() -> Set[str]:
    """Every attribute conn.py assigns on a Conn: ``self.X`` inside the class, ``conn.X`` anywhere."""
    path = conn_module.__file__
    assert path is not None
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    names: Set[str] = set()

    def collect(node: ast.AST, owner: str) -> None:
        for n in ast.walk(node):
            if isinstance(n, ast.Assign):
                targets = n.targets
            elif isinstance(n, (ast.AnnAssign, ast.AugAssign)):
                targets = [n.target]
            else:
                continue
            for t in targets:
                for x in ast.walk(t):
                    if isinstance(x, ast.Attribute) and isinstance(x.value, ast.Name) and x.value.id == owner:
                        names.add(x.attr)

    (cls,) = [n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Conn"]
    collect(cls, "self")
    collect(tree, "conn")  # MessageWriter, _Keepalive, ... reach into their Conn by this name
    return names


def test_every_attribute_a_conn_gets_is_a_slot() -> None:
    # One left out would silently land in the instance dict (the cost slots
    # avoid); this finds it wherever it is assigned.
    missing = _assigned_attributes() - set(Conn.__slots__)
    assert not missing, f"add these to Conn.__slots__: {sorted(missing)}"


def test_a_conns_own_attributes_stay_out_of_its_instance_dict() -> None:
    a, b = socket.socketpair()
    conn = Conn(a, is_server=True)
    try:
        assert conn.__dict__ == {}
        conn.close_timeout = 0.5  # public settings are slots too
        conn.write_buffer_size = 128
        assert conn.__dict__ == {}
        # An application may still hang its own data on a Conn, and keep weak references.
        conn.user_id = 42  # type: ignore[attr-defined]
        assert conn.__dict__ == {"user_id": 42}
        assert weakref.ref(conn)() is conn
    finally:
        conn.close_now()
        b.close()


# ----------------------------------------------------------------------
# close(): the short path sends what the long one did
# ----------------------------------------------------------------------


def _close_with_peer(conn: Conn, peer: RawPeer, *args: Any) -> Tuple[int, bytes]:
    """``conn.close(*args)`` while the peer answers its close frame; the close frame the peer read."""

    def answer() -> Tuple[int, bytes]:
        got = peer.recv_close()
        peer.send_close(1000)
        peer.sock.shutdown(socket.SHUT_WR)
        return got

    t = run_in_thread(answer)
    conn.close(*args)
    return t.join()  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "args, expected",
    [
        ((), (1000, b"")),
        ((1000, ""), (1000, b"")),
        ((1000, "bye"), (1000, b"bye")),
        ((1001,), (1001, b"")),
        ((4000, "\u00e9"), (4000, "\u00e9".encode())),
        ((1005,), (1005, b"")),  # no code at all: an empty payload
    ],
)
@pytest.mark.parametrize("server", [True, False])
def test_close_sends_its_code_and_reason(
    raw_peer: RawPeerFactory, server: bool, args: Tuple[Any, ...], expected: Tuple[int, bytes]
) -> None:
    conn, peer = raw_peer(server=server, close_timeout=2.0)
    assert _close_with_peer(conn, peer, *args) == expected
    assert conn.state is ConnState.CLOSED
    assert conn.close_initiator == "local"  # the peer's answer does not change it
    assert conn.get_status() == (1000, "")


def test_close_refuses_a_bad_code_even_when_closed(raw_peer: RawPeerFactory) -> None:
    conn, _ = raw_peer()
    conn.close_now()
    with pytest.raises(ValueError, match="1006"):
        conn.close(1006)
    # The reason is only encoded for a frame that goes out: none does now.
    conn.close(1000, "x" * 200)


def test_close_with_a_reason_too_long_raises_and_sends_nothing(raw_peer: RawPeerFactory) -> None:
    conn, peer = raw_peer()
    with pytest.raises(ValueError, match="123 bytes"):
        conn.close(1000, "x" * 124)
    assert conn.state is ConnState.OPEN
    conn.write_control(PING_MESSAGE, b"still open")
    assert peer.recv_frame().payload == b"still open"


def test_close_with_zero_timeout_sends_no_close_frame(raw_peer: RawPeerFactory) -> None:
    # Its deadline is now: past, as for write_control, so the frame is not sent.
    conn, peer = raw_peer(close_timeout=0.0)
    conn.close()
    assert conn.state is ConnState.CLOSED
    assert peer.expect_eof() == b""


def test_a_past_control_deadline_sends_nothing_though_the_lock_is_free(raw_peer: RawPeerFactory) -> None:
    conn, peer = raw_peer()
    with pytest.raises(DeadlineExceeded) as info:
        conn.write_control(CLOSE_MESSAGE, b"\x03\xe8", time.monotonic() - 1)
    assert not info.value.fatal
    assert conn.state is ConnState.OPEN and conn.close_initiator is None
    conn.write_control(PING_MESSAGE, b"after")
    assert peer.recv_frame().payload == b"after"  # nothing went out before it


def test_write_control_waits_for_a_busy_send_lock_until_its_deadline(raw_peer: RawPeerFactory) -> None:
    conn, peer = raw_peer()
    conn._send_lock.acquire()  # another frame is on its way out
    try:
        with pytest.raises(DeadlineExceeded) as info:
            conn.write_control(PING_MESSAGE, b"x", time.monotonic() + 0.05)
        assert not info.value.fatal
    finally:
        conn._send_lock.release()
    conn.write_control(PING_MESSAGE, b"y", time.monotonic() + 5.0)
    assert peer.recv_frame().payload == b"y"


def _python_calls_during(fn: Callable[[], Any]) -> List[Tuple[str, str]]:
    """``(file name, function)`` of every Python function ``fn()`` calls, in this thread."""
    calls: List[Tuple[str, str]] = []

    def profile(frame: FrameType, event: str, arg: Optional[Any]) -> None:
        if event == "call":
            calls.append((os.path.basename(frame.f_code.co_filename), frame.f_code.co_name))

    sys.setprofile(profile)
    try:
        fn()
    finally:
        sys.setprofile(None)
    return calls


def test_default_close_skips_the_argument_checks(raw_peer: RawPeerFactory) -> None:
    # The close frame's deadline and payload are made by close() itself:
    # nothing to validate, encode or convert on the way to the socket.
    conn, peer = raw_peer(close_timeout=2.0)
    t = run_in_thread(lambda: (peer.recv_close(), peer.send_close(1000), peer.sock.shutdown(socket.SHUT_WR)))
    calls = _python_calls_during(conn.close)
    t.join()
    assert conn.state is ConnState.CLOSED
    skipped = {
        ("deadline.py", "check"),
        ("deadline.py", "remaining"),
        ("conn.py", "_byte_payload"),
        ("conn.py", "write_control"),
        ("conn.py", "_acquire"),
        ("frames.py", "format_close_message"),
    }
    assert not skipped & set(calls)
    # The peer's close frame after ours moves nothing: no second trip through the state lock.
    assert calls.count(("conn.py", "_start_closing")) == 2


def test_a_fresh_tcp_conn_closes_cleanly_from_both_sides() -> None:
    a, b = socket_pair("tcp")
    server = Conn(a, is_server=True, close_timeout=2.0)
    client = Conn(b, is_server=False, close_timeout=2.0)
    try:
        t = run_in_thread(server.close)
        client.close()
        t.join()
        assert server.state is ConnState.CLOSED and client.state is ConnState.CLOSED
        assert {server.close_initiator, client.close_initiator} <= {"local", "peer"}
        assert server.get_status() == (1000, "") and client.get_status() == (1000, "")
    finally:
        server.close_now()
        client.close_now()


@pytest.mark.parametrize("code, expected", [(1000, (1000, b"")), (4001, (4001, b"")), (None, (1005, b""))])
def test_the_default_close_handler_answers_with_the_peers_code(
    raw_peer: RawPeerFactory, code: Optional[int], expected: Tuple[int, bytes]
) -> None:
    conn, peer = raw_peer(server=False)
    peer.send_close(code, b"why")
    calls = _python_calls_during(lambda: pytest.raises(CloseError, conn.read_message))
    assert peer.recv_close() == expected  # the code only, as gorilla answers
    assert conn.close_initiator == "peer"
    # The answer's payload is made by the handler: nothing for write_control to check.
    assert not {("conn.py", "write_control"), ("deadline.py", "check")} & set(calls)
