"""Interop with Go's gorilla/websocket, both directions.

The Go programs are ``tests/peers/go/echo_server`` and ``tests/peers/go/client``,
built at test time, offline, against Debian's ``golang-github-gorilla-websocket-dev``
(``GO111MODULE=off GOPATH=/usr/share/gocode``, a temporary GOCACHE).  Text,
binary, empty, large, fragmented (gorilla's small write buffers split messages
inside UTF-8 characters), ping/pong and close codes; permessage-deflate off
and on (gorilla only does "no context takeover", so our context-takeover mode
falls back to it).
"""

from __future__ import annotations

import json
import os
import subprocess
from typing import Dict, Optional

import pytest

from peers import peer_missing, require_peer

from .ourside import EchoServer, check_client_report, client_close, client_scenario
from .procs import PeerProcess

GO_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "peers", "go")
GOPATH = "/usr/share/gocode"

pytestmark = [pytest.mark.timeout(120), pytest.mark.peer, pytest.mark.slow]  # slow: builds and runs Go programs

COMBOS = [("off", False), ("no-context", True), ("context", True)]


def _gorilla_installed() -> Optional[str]:
    if not os.path.isdir(os.path.join(GOPATH, "src", "github.com", "gorilla", "websocket")):
        return "%s/src/github.com/gorilla/websocket is missing" % GOPATH
    return None


@pytest.fixture(scope="module")
def go_programs(tmp_path_factory: pytest.TempPathFactory) -> Dict[str, str]:
    go = require_peer("go", "go", "apt-get install golang-go")
    require_peer("gorilla/websocket", _gorilla_installed, "apt-get install golang-github-gorilla-websocket-dev")
    out = tmp_path_factory.mktemp("gobuild")
    env = dict(os.environ)
    env.update(
        GO111MODULE="off",
        GOPATH=GOPATH,
        GOCACHE=str(out / "cache"),
        GOFLAGS="",
        GOPROXY="off",
        HOME=str(out),
    )
    built = {}
    for name in ("echo_server", "client"):
        exe = str(out / name)
        r = subprocess.run(
            [go, "build", "-o", exe, "."],
            cwd=os.path.join(GO_DIR, name),
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            timeout=240,
        )
        if r.returncode != 0:
            peer_missing("gorilla " + name, "go build failed:\n" + r.stdout.decode("utf-8", "replace"))
        built[name] = exe
    return built


@pytest.mark.parametrize("ours,compress", COMBOS)
def test_gorilla_client_our_server(go_programs: Dict[str, str], ours: str, compress: bool) -> None:
    with EchoServer(ours) as srv:
        argv = [go_programs["client"]] + (["-compress"] if compress else []) + [srv.url]
        with PeerProcess(argv) as p:
            out = json.loads(p.wait_line(r"^result (.*)$", 40).group(1))
        assert not out.get("error"), out
        bad = [k for k, ok in out["echoes"].items() if not ok]
        assert not bad, out
        assert out["pongs"] == ["ping!"], out
        assert out["server_close"] == [4001, "server bye"], out
        assert out["client_close_echo"][0] == 4000, out
        assert srv.wait_closes(1) == [(4000, "client bye")]
        both = ours != "off" and compress
        assert bool(out["extensions"]) == both, out
        if both:
            assert "no_context_takeover" in out["extensions"], out
        assert not srv.errors and not srv.handshake_errors, (srv.errors, srv.handshake_errors)


@pytest.mark.parametrize("ours,compress", COMBOS)
def test_our_client_gorilla_server(go_programs: Dict[str, str], ours: str, compress: bool) -> None:
    argv = [go_programs["echo_server"]] + (["-compress"] if compress else [])
    with PeerProcess(argv) as p:
        port = int(p.wait_line(r"^listening (\d+)$").group(1))
        url = "ws://127.0.0.1:%d/" % port
        rep = client_scenario(url, ours)
        # gorilla offers/accepts only "no context takeover".
        check_client_report(rep, ours if compress else "off")
        if rep.compressed:
            assert rep.params is not None and "server_no_context_takeover" in rep.params
        client_close(url, 4003, "client bye", ours)
        p.wait_line(r"^closed 4003 client bye$", 10)
        assert not [line for line in p.lines if line.startswith("error")], p.output()
