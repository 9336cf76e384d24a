"""The Autobahn example programs (``examples/autobahn/``) against stand-ins for the real suite.

* The echo server is played against by our fuzzing client (a selection of
  cases, on each of its three endpoints), and started once as a program.
* The client driver is run against a small fake ``fuzzingserver`` built on
  our fuzzing peer: it answers ``/getCaseCount``, plays cases on
  ``/runCase?case=N`` and records ``/updateReports``.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import threading
from types import ModuleType
from typing import Dict, Iterator, List, Optional, Tuple
from urllib.parse import parse_qs, urlsplit

import pytest

from .cases import all_cases
from .fuzzer import TEXT, FuzzPeer
from .harness import (
    IO_TIMEOUT,
    Case,
    fuzzer_server_handshake,
    play,
    read_upgrade_request,
    run_case_against_server,
)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_DIR = os.path.join(ROOT, "examples", "autobahn")

# A spread of cases: framing, pings, reserved bits, opcodes, fragmentation,
# UTF-8 (incl. fail-fast inside one frame, which the streaming endpoint
# reads 32 KiB at a time), close codes, a large message, compression.
SELECTED = [
    "1.1.2", "1.2.8", "2.4", "2.5", "3.2", "4.1.3", "5.6", "5.15", "5.19",
    "6.4.1", "6.4.2", "6.4.3", "6.4.4", "6.i.20.c",
    "7.1.6", "7.3.1", "7.5.1", "7.7.10", "7.9.3", "9.1.3", "9.4.5", "10.1.1",
    "12.1.x", "13.2.x.message", "13.3.x.message",
]


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location("autobahn_example_" + name, os.path.join(EXAMPLE_DIR, name + ".py"))
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _selected() -> List[Case]:
    by_id = {c.id: c for c in all_cases(full=False)}
    return [by_id[cid] for cid in SELECTED]


@pytest.fixture(scope="module")
def example_server() -> Iterator[Tuple[str, int]]:
    server_mod = _load("server")
    server = server_mod.serve_in_thread("127.0.0.1:0")
    host, port = server.server_address[:2]
    yield host, port
    server.shutdown()
    server.server_close()


@pytest.mark.timeout(60)
@pytest.mark.parametrize("path", ["/", "/m", "/p"])
@pytest.mark.parametrize("case", _selected(), ids=lambda c: c.id)
def test_example_server(example_server: Tuple[str, int], path: str, case: Case) -> None:
    host, port = example_server
    problems, _ = run_case_against_server(case, host, port, path)
    assert not problems, "%s on %s: %s" % (case.id, path, "; ".join(problems))


@pytest.mark.slow  # runs the example as a subprocess
def test_example_server_program() -> None:
    from examples_util import Program, python

    with Program(python(os.path.join(EXAMPLE_DIR, "server.py"), "--addr", "127.0.0.1:0")) as prog:
        m = prog.wait_for(r"listening on ws://127\.0\.0\.1:(\d+)/")
        port = int(m.group(1))
        case = next(c for c in all_cases(full=False) if c.id == "5.19")
        problems, _ = run_case_against_server(case, "127.0.0.1", port, "/")
        assert not problems


class FakeFuzzingServer:
    """Plays Autobahn's fuzzing-server protocol with our fuzzing peer, one connection at a time."""

    def __init__(self, cases: List[Case]) -> None:
        self.cases = cases
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(8)
        self.lsock.settimeout(IO_TIMEOUT)
        self.port = self.lsock.getsockname()[1]
        self.problems: Dict[str, List[str]] = {}
        self.requests: List[str] = []
        self.reports_updated = False
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            while not self.reports_updated:
                sock, _ = self.lsock.accept()
                self._serve(sock)
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            self.lsock.close()

    def _serve(self, sock: socket.socket) -> None:
        request = read_upgrade_request(sock)
        target = request[0]
        self.requests.append(target)
        url = urlsplit(target)
        query = parse_qs(url.query)
        if url.path == "/runCase":
            case = self.cases[int(query["case"][0]) - 1]
            assert query["agent"] == ["test-agent"]
            agreed, initial = fuzzer_server_handshake(sock, case, request)
            peer = FuzzPeer(sock, is_client=False, deflate=agreed, initial_data=initial)
            self.problems[case.id], _ = play(case, peer)
            return
        plain = Case("-", "-", lambda f: None)
        agreed, initial = fuzzer_server_handshake(sock, plain, request)
        peer = FuzzPeer(sock, is_client=False, deflate=None, initial_data=initial)
        if url.path == "/getCaseCount":
            peer.send_frame(TEXT, str(len(self.cases)).encode())
        elif url.path == "/updateReports":
            assert query["agent"] == ["test-agent"]
            self.reports_updated = True
        peer.send_close(1000)
        peer.finish(IO_TIMEOUT)


@pytest.mark.slow  # runs the example driver as a subprocess
@pytest.mark.timeout(120)
def test_example_client_driver() -> None:
    client_mod = _load("client")
    cases = _selected()
    fake = FakeFuzzingServer(cases)
    rc = client_mod.main(["--url", "ws://127.0.0.1:%d" % fake.port, "--agent", "test-agent", "--quiet"])
    fake.thread.join(30)
    assert rc == 0
    assert fake.error is None, repr(fake.error)
    assert fake.requests[0] == "/getCaseCount"
    assert fake.requests[-1] == "/updateReports?agent=test-agent"
    assert len(fake.problems) == len(cases)
    bad = {cid: p for cid, p in fake.problems.items() if p}
    assert not bad, bad


def test_parse_cases() -> None:
    client_mod = _load("client")
    assert client_mod.parse_cases("", 3) == [1, 2, 3]
    assert client_mod.parse_cases("1-3,7,9-10", 9) == [1, 2, 3, 7, 9]
