"""Interop with npm ``ws`` (node), both directions.

The peers are ``tests/peers/node/interop_echo_server.js`` and
``interop_client.js`` (``ws`` pinned in ``tests/peers/node/package.json``;
install with ``cd tests/peers/node && npm install``).  Text, binary, empty,
large, fragmented (split inside UTF-8 characters, also compressed), ping/pong
and close codes, with permessage-deflate off, with context takeover and
without.
"""

from __future__ import annotations

import json
import os
from typing import Iterator, Optional

import pytest

from helpers import closing_factory
from peers import require_peer

from .ourside import EchoServer, check_client_report, client_close, client_scenario
from .procs import PeerProcess

NODE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers", "node")

pytestmark = [pytest.mark.timeout(60), pytest.mark.peer, pytest.mark.slow]  # slow: starts node processes

COMBOS = [("off", "off"), ("context", "deflate"), ("no-context", "deflate"), ("context", "deflate-nct")]


def _ws_installed() -> Optional[str]:
    if not os.path.exists(os.path.join(NODE_DIR, "node_modules", "ws", "package.json")):
        return "tests/peers/node/node_modules/ws is missing"
    return None


@pytest.fixture
def node() -> str:
    exe = require_peer("node", "node", "apt-get install nodejs npm")
    require_peer("npm ws", _ws_installed, "cd tests/peers/node && npm install")
    return exe


@pytest.fixture
def node_server(node: str) -> Iterator[object]:
    def start(deflate: str) -> PeerProcess:
        return PeerProcess([node, "interop_echo_server.js", json.dumps({"deflate": deflate})], cwd=NODE_DIR)

    with closing_factory(start, close=PeerProcess.stop) as factory:
        yield factory


@pytest.mark.parametrize("ours,peer", COMBOS)
def test_node_client_our_server(node: str, ours: str, peer: str) -> None:
    with EchoServer(ours) as srv:
        with PeerProcess([node, "interop_client.js", srv.url, json.dumps({"deflate": peer})], cwd=NODE_DIR) as p:
            m = p.wait_line(r"^result (.*)$", 30)
            out = json.loads(m.group(1))
        assert "error" not in out and "timeout" not in out, out
        bad = [k for k, ok in out["echoes"].items() if not ok]
        assert not bad, out
        assert out["pongs"] == ["ping!"], out
        assert out["server_close"] == {"code": 4001, "reason": "server bye"}, out
        assert out["client_close_echo"]["code"] == 4000, out
        assert srv.wait_closes(1) == [(4000, "client bye")]
        both = ours != "off" and peer != "off"
        assert bool(out["extensions"]) == both, out
        assert all((e is not None) == both for e in srv.extensions), srv.extensions
        assert not srv.errors and not srv.handshake_errors, (srv.errors, srv.handshake_errors)


@pytest.mark.parametrize("ours,peer", COMBOS)
def test_our_client_node_server(node_server, ours: str, peer: str) -> None:  # type: ignore[no-untyped-def]
    p = node_server(peer)
    port = int(p.wait_line(r"^listening (\d+)$").group(1))
    url = "ws://127.0.0.1:%d/" % port
    rep = client_scenario(url, ours)
    check_client_report(rep, "off" if peer == "off" else ours)
    client_close(url, 4003, "client bye", ours)
    p.wait_line(r"^closed 4003 client bye$", 10)
    assert not [line for line in p.lines if line.startswith("error")], p.output()
