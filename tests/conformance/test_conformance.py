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

Cases we knowingly do not meet are listed in ``tests/conformance/KNOWN.md``
and marked ``xfail(strict=True)`` here, so fixing one shows up as XPASS.
A per-group summary is printed at the end of the run.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List

import pytest

from .cases import all_cases
from .harness import RESULTS, Case, run_case, summarize

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
    return out


@pytest.fixture
def pure_utf8(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make new Utf8Validators use the pure-Python path."""
    import gorillaws.utf8 as utf8

    monkeypatch.setattr(utf8, "_c_validate", None)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("case,direction,setup", _params())
def test_case(case: Case, direction: str, setup: str, request: pytest.FixtureRequest) -> None:
    if setup == "pure-utf8":
        request.getfixturevalue("pure_utf8")
    result = run_case(case, direction, "handshake" if setup == "handshake" else "raw")
    result.setup = setup
    RESULTS.append(result)
    assert result.ok, "%s %s (%s, %s): %s" % (case.id, case.desc, direction, setup, "; ".join(result.problems))


def test_every_group_present() -> None:
    """The table covers the Autobahn groups the issue asks for."""
    groups = {c.group for c in _CASES}
    for g in ("1", "2", "3", "4", "5", "6", "7", "9", "10", "12", "13"):
        assert g in groups, g
