"""Interop with the ``websockets`` package (its sync server and client), both directions.

Text, binary, empty, large (256 KiB), fragmented (split inside UTF-8
characters), ping/pong and close codes, with permessage-deflate off, with
context takeover, and without context takeover.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest

from helpers import closing_factory

from .ourside import BINARY, KOSME, LARGE_TEXT, EchoServer, check_client_report, client_close, client_scenario

websockets = pytest.importorskip("websockets")
from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.extensions.permessage_deflate import (  # noqa: E402
    ClientPerMessageDeflateFactory,
    ServerPerMessageDeflateFactory,
)
from websockets.sync.client import connect  # noqa: E402
from websockets.sync.server import serve  # noqa: E402

pytestmark = pytest.mark.timeout(60)

# (our compression mode, websockets' configuration)
COMBOS = [("off", "off"), ("context", "deflate"), ("no-context", "deflate"), ("context", "deflate-nct")]


def _peer_kwargs(peer: str, factory: Any) -> Dict[str, Any]:
    """websockets' compression keywords for ``peer``; ``factory`` is its client or server deflate factory class."""
    if peer == "off":
        return {"compression": None}
    if peer == "deflate":
        return {"compression": "deflate"}
    return {
        "compression": None,
        "extensions": [factory(server_no_context_takeover=True, client_no_context_takeover=True)],
    }


# ----------------------------------------------------------------------
# gorillaws server, websockets client
# ----------------------------------------------------------------------


@pytest.mark.parametrize("ours,peer", COMBOS)
def test_websockets_client_our_server(ours: str, peer: str) -> None:
    with EchoServer(ours) as srv:
        with connect(srv.url, open_timeout=10, max_size=None, ping_interval=None, **_peer_kwargs(peer, ClientPerMessageDeflateFactory)) as ws:
            for msg in ["hello " + KOSME, "", BINARY, b"", LARGE_TEXT.decode(), LARGE_TEXT.decode()]:
                ws.send(msg)
                assert ws.recv(timeout=10) == msg
            # Fragmented: websockets sends an iterable as one message in several frames.
            parts = [KOSME * 50, "x" * 3000, KOSME]
            ws.send(parts)
            assert ws.recv(timeout=10) == "".join(parts)
            bparts = [b"\x00" * 1000, b"\x01" * 5000]
            ws.send(bparts)
            assert ws.recv(timeout=10) == b"".join(bparts)
            pong = ws.ping(b"ping!")
            assert pong.wait(10)
            ws.send("close:4001:server bye")
            with pytest.raises(ConnectionClosed) as info:
                ws.recv(timeout=10)
            assert info.value.rcvd is not None
            assert (info.value.rcvd.code, info.value.rcvd.reason) == (4001, "server bye")
        # The client closes with a code of its own.
        with connect(srv.url, open_timeout=10, **_peer_kwargs(peer, ClientPerMessageDeflateFactory)) as ws:
            ws.send("before close")
            assert ws.recv(timeout=10) == "before close"
            ws.close(4000, "client bye")
        assert srv.wait_closes(1) == [(4000, "client bye")]
        both = ours != "off" and peer != "off"
        assert all((e is not None) == both for e in srv.extensions), srv.extensions
        assert not srv.errors, srv.errors
        assert not srv.handshake_errors, srv.handshake_errors


# ----------------------------------------------------------------------
# websockets server, gorillaws client
# ----------------------------------------------------------------------


class PeerServer:
    """websockets' sync echo server with the close command; records client closes."""

    def __init__(self, peer: str) -> None:
        self.closes: List[Tuple[int, str]] = []
        self.extensions: List[Optional[str]] = []
        self.done = threading.Event()

        def handler(ws: Any) -> None:
            self.extensions.append(ws.response.headers.get("Sec-WebSocket-Extensions"))
            try:
                for msg in ws:
                    if isinstance(msg, str) and msg.startswith("close:"):
                        _, code, reason = msg.split(":", 2)
                        ws.close(int(code), reason)
                        return
                    ws.send(msg)
            except ConnectionClosed:
                pass
            rcvd = ws.protocol.close_rcvd
            if rcvd is not None:
                self.closes.append((rcvd.code, rcvd.reason))
                self.done.set()

        self.server = serve(handler, "127.0.0.1", 0, max_size=None, ping_interval=None, **_peer_kwargs(peer, ServerPerMessageDeflateFactory))
        self.port = self.server.socket.getsockname()[1]
        self.url = "ws://127.0.0.1:%d/" % self.port
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(10)


@pytest.fixture
def peer_server() -> Iterator[Any]:
    with closing_factory(PeerServer, close=PeerServer.stop) as factory:
        yield factory


@pytest.mark.parametrize("ours,peer", COMBOS)
def test_our_client_websockets_server(ours: str, peer: str, peer_server: Any) -> None:
    srv = peer_server(peer)
    rep = client_scenario(srv.url, ours)
    check_client_report(rep, "off" if peer == "off" else ours)
    client_close(srv.url, 4003, "client bye", ours)
    assert srv.done.wait(10)
    assert srv.closes == [(4003, "client bye")]
    if ours != "off" and peer == "deflate-nct":
        assert rep.params is not None and "server_no_context_takeover" in rep.params
