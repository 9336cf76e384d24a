"""Autobahn-style conformance: gorillaws (server and client) against our fuzzing peer.

Every case in :mod:`conformance.cases` runs with gorillaws as the server
(the fuzzer is the client) and as the client (the fuzzer is the server):

* ``raw``: the WebSocket layer directly on a connected 127.0.0.1 socket;
  every case, message echo (``read_message`` / ``write_message``).
* ``handshake``: through :class:`gorillaws.Upgrader` / :class:`gorillaws.Dialer`
  with a hand-written handshake on the fuzzer's side (permessage-deflate
  negotiated by headers); every case except the generated UTF-8 ones.
* ``stream``: raw, gorillaws echoing with ``next_reader`` / ``next_writer``;
  framing, fragmentation, UTF-8 fail-fast, large and compressed messages.
* ``pure-utf8``: group 6 with the pure-Python UTF-8 validator (the C speedup
  switched off), gorillaws as the server.
* ``path=<echo>``: the fail-fast cases 6.4.1-6.4.4 (and a few valid text
  cases) through every way an application reads, as server and as client:
  ``message``, ``stream`` (``reader.read(4096)``), ``example`` (the
  streaming echo of ``examples/autobahn/server.py``: ``reader.read(32768)``), ``receive_text``
  and ``net_conn`` (a sink, fail-fast cases only); each also with the pure validator (``+pure``) and beside
  a thread hogging the CPU (``+hog``).

Cases we knowingly do not meet are listed in ``tests/conformance/KNOWN.md``
and marked ``xfail(strict=True)`` here, so fixing one shows up as XPASS.
A per-group summary is printed at the end of the run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterator, List

import pytest

from cpu_hog import cpu_hog

from gorillaws import TEXT_MESSAGE, Conn

from . import harness
from .cases import all_cases
from .harness import RESULTS, Case, run_case, summarize
from .test_autobahn_example import _load

# Case ids we knowingly do not meet, with the reason (see KNOWN.md).
KNOWN: Dict[str, str] = {}

_CASES = all_cases()


def _params() -> List[Any]:
    out: List[Any] = []

    def add(case: Case, direction: str, setup: str) -> None:
        # The handshake setup repeats the raw cases through Upgrader/Dialer (about
        # 10 s): the quick loop (pytest -m "not slow") leaves it out.
        marks = [pytest.mark.slow] if setup == "handshake" else []
        if case.id in KNOWN:
            if setup != "raw":
                return  # a known miss is shown once per direction
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN[case.id]))
        out.append(pytest.param(case, direction, setup, id="%s-%s-%s" % (setup, direction, case.id), marks=marks))

    for setup in ("raw", "handshake", "stream", "pure-utf8"):
        for direction in ("server", "client"):
            for case in _CASES:
                if direction not in case.directions:
                    continue
                g = case.id.split(".")
                generated_utf8 = g[0] == "6" and g[1] in ("v", "i")
                if setup == "handshake" and generated_utf8:
                    continue
                if setup == "stream":
                    if direction != "server" or g[0] not in ("1", "2", "5", "6", "9", "12", "13"):
                        continue
                    if generated_utf8 and (g[3] == "a" or (g[1] == "v" and g[3] == "c")):
                        continue
                    if g[0] == "13" and case.id.endswith("stream"):
                        continue
                    case = dataclasses.replace(case, echo="stream")
                if setup == "pure-utf8" and (direction != "server" or g[0] != "6"):
                    continue
                add(case, direction, setup)
    for echo, ids in PATH_CASES.items():
        for variant in ("", "+pure", "+hog", "+hog+pure"):
            for direction in ("server", "client"):
                for case in _CASES:
                    if case.id in ids:
                        add(dataclasses.replace(case, echo=echo), direction, "path=" + echo + variant)
    return out


def _echo_receive_text(conn: Conn) -> None:
    while True:
        conn.write_message(TEXT_MESSAGE, conn.receive_text().encode())


def _echo_net_conn(conn: Conn) -> None:
    # A sink: a byte stream has no message boundaries to echo, and the
    # cases run this way expect no echo, only the failure.
    stream = conn.net_conn(TEXT_MESSAGE)
    buf = bytearray(65536)
    while stream.readinto(buf):
        pass


# Echo modes the harness does not have, by name.
EXTRA_ECHOES: Dict[str, Callable[[Conn], None]] = {
    "example": _load("server").echo_stream,
    "receive_text": _echo_receive_text,
    "net_conn": _echo_net_conn,
}

_FAIL_FAST = ("6.4.1", "6.4.2", "6.4.3", "6.4.4")
_VALID_TEXT = ("6.1.1", "6.1.2", "6.1.3", "9.1.1", "9.1.2", "9.1.3")
# Per read path, the cases run through it (net_conn cannot echo message
# boundaries, so it runs only the cases that expect no echo).
PATH_CASES = {
    "message": _FAIL_FAST,
    "stream": _FAIL_FAST + _VALID_TEXT,
    "example": _FAIL_FAST + _VALID_TEXT,
    "receive_text": _FAIL_FAST + _VALID_TEXT,
    "net_conn": _FAIL_FAST,
}


@pytest.fixture
def extra_echoes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teach the harness's echo loop the modes in EXTRA_ECHOES."""
    plain = harness._echo

    def echo(conn: Conn, mode: str) -> None:
        extra = EXTRA_ECHOES.get(mode)
        if extra is None:
            plain(conn, mode)
        else:
            extra(conn)

    monkeypatch.setattr(harness, "_echo", echo)


@pytest.fixture
def hog() -> Iterator[None]:
    """A thread spinning in Python beside the case (it holds the GIL whenever it can)."""
    with cpu_hog():
        yield


@pytest.fixture
def pure_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make new Utf8Validators use the pure-Python path."""
    import gorillaws.utf8 as utf8

    monkeypatch.setattr(utf8, "_c_validate", None)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case,direction,setup", _params())
def test_case(case: Case, direction: str, setup: str, request: pytest.FixtureRequest) -> None:
    if setup == "pure-utf8" or setup.endswith("+pure"):
        request.getfixturevalue("pure_utf8")
    if setup.startswith("path="):
        request.getfixturevalue("extra_echoes")
    if "+hog" in setup:
        request.getfixturevalue("hog")
    result = run_case(case, direction, "handshake" if setup == "handshake" else "raw")
    result.setup = setup
    RESULTS.append(result)
    assert result.ok, "%s %s (%s, %s): %s" % (case.id, case.desc, direction, setup, "; ".join(result.problems))


def test_every_group_present() -> None:
    """The table covers the Autobahn groups the issue asks for."""
    groups = {c.group for c in _CASES}
    for g in ("1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"):
        assert g in groups, g
