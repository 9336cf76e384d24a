"""The documentation cannot rot: its Python snippets run, its links resolve, the porting table is complete.

Every fenced ```python block in ``docs/*.md`` and ``README.md`` is run as a
script in a subprocess, under a timeout, in a scratch directory.  Snippets
talk to ``ws://127.0.0.1:8080/``; the test starts an echo server
(``gorillaws serve``) on a free port and rewrites every ``8080`` to it.

Markers, on the line just before a block:

* ``<!-- no-test -->``: a fragment that cannot run alone (used sparingly);
* ``<!-- test: server -->``: a server that runs until stopped.  It is
  started on a free port (``8080`` rewritten), and the *next* block, a
  client, is run against it; then the server is ended by its PID.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from typing import Iterator, List, Optional

import pytest

from tests.examples_util import ROOT, Program, child_env, free_port, python, wait_port

# slow: every snippet runs in a subprocess, some beside a server; the quick loop (pytest -m "not slow") leaves it out.
pytestmark = pytest.mark.slow

DOCS_DIR = os.path.join(ROOT, "docs")
SNIPPET_TIMEOUT = 30.0


@dataclass
class Snippet:
    path: str
    line: int
    code: str
    mode: str  # "run", "server" or "skip"
    client: Optional["Snippet"] = None

    @property
    def id(self) -> str:
        return f"{os.path.relpath(self.path, ROOT)}:{self.line}"


def doc_files() -> List[str]:
    files = sorted(os.path.join(DOCS_DIR, f) for f in os.listdir(DOCS_DIR) if f.endswith(".md")) if os.path.isdir(DOCS_DIR) else []
    readme = os.path.join(ROOT, "README.md")
    if os.path.exists(readme):
        files.append(readme)
    return files


def parse_snippets(path: str) -> List[Snippet]:
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    out: List[Snippet] = []
    i = 0
    marker = ""
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if stripped.startswith("```"):
            lang = stripped[3:].strip()
            start = i + 1
            j = start
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            if lang == "python":
                mode = {"<!-- no-test -->": "skip", "<!-- test: server -->": "server"}.get(marker, "run")
                out.append(Snippet(path, start, "\n".join(lines[start:j]) + "\n", mode))
            i = j + 1
            marker = ""
            continue
        if stripped:
            marker = stripped
        i += 1
    # Pair each server with the client block that follows it.
    paired: List[Snippet] = []
    k = 0
    while k < len(out):
        s = out[k]
        if s.mode == "server":
            assert k + 1 < len(out) and out[k + 1].mode == "run", f"{s.id}: a server block must be followed by a client block"
            s.client = out[k + 1]
            k += 1
        paired.append(s)
        k += 1
    return paired


ALL = [s for p in doc_files() for s in parse_snippets(p)]
RUNNABLE = [s for s in ALL if s.mode != "skip"]


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    prog = Program(python("-m", "gorillaws", "serve", "--port", "0", "-q"))
    try:
        m = prog.wait_for(r"listening on ws://127\.0\.0\.1:(\d+)/")
        yield int(m.group(1))
    finally:
        prog.stop()


def _with_port(code: str, port: int) -> str:
    return re.sub(r"\b8080\b", str(port), code)


def _run(snippet: Snippet, port: int, tmp_path: str) -> None:
    script = os.path.join(tmp_path, "snippet.py")
    with open(script, "w", encoding="utf-8") as f:
        f.write(_with_port(snippet.code, port))
    try:
        r = subprocess.run(
            [sys.executable, script], cwd=tmp_path, env=child_env(), capture_output=True, timeout=SNIPPET_TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"{snippet.id}: timed out after {SNIPPET_TIMEOUT}s\n{exc.stdout!r}\n{exc.stderr!r}")
    assert r.returncode == 0, (
        f"{snippet.id} failed ({r.returncode}):\n--- code\n{snippet.code}--- stdout\n"
        f"{r.stdout.decode(errors='replace')}--- stderr\n{r.stderr.decode(errors='replace')}"
    )


def test_there_are_snippets() -> None:
    assert len(RUNNABLE) >= 10
    skipped = [s for s in ALL if s.mode == "skip"]
    # Fragments are the exception, not the rule.
    assert len(skipped) <= len(ALL) // 4, [s.id for s in skipped]


@pytest.mark.parametrize("snippet", RUNNABLE, ids=[s.id for s in RUNNABLE])
def test_snippet_runs(snippet: Snippet, echo_port: int, tmp_path) -> None:
    if snippet.mode == "run":
        _run(snippet, echo_port, str(tmp_path))
        return
    assert snippet.client is not None
    port = free_port()
    server_script = os.path.join(str(tmp_path), "server_snippet.py")
    with open(server_script, "w", encoding="utf-8") as f:
        f.write(_with_port(snippet.code, port))
    with Program(python(server_script), cwd=str(tmp_path)) as server:
        try:
            wait_port(port)
        except TimeoutError:
            server.drain()
            pytest.fail(f"{snippet.id}: the server never listened:\n{server.output.decode(errors='replace')}")
        client_dir = os.path.join(str(tmp_path), "client")
        os.mkdir(client_dir)
        _run(snippet.client, port, client_dir)


LINK_RE = re.compile(r"\]\(([^)#\s]+)(#[^)\s]*)?\)")


@pytest.mark.parametrize("path", doc_files(), ids=[os.path.relpath(p, ROOT) for p in doc_files()])
def test_relative_links_resolve(path: str) -> None:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for m in LINK_RE.finditer(text):
        target = m.group(1)
        if re.match(r"[a-z]+:", target):
            continue  # http:, https:, mailto:
        resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
        assert os.path.exists(resolved), f"{path}: broken link {target}"


EXPECTED_PAGES = [
    "index.md",
    "tutorial.md",
    "connections-and-concurrency.md",
    "deadlines-and-keepalive.md",
    "close.md",
    "compression.md",
    "proxies-and-tls.md",
    "wsgi-flask-gunicorn.md",
    "net-conn.md",
    "porting.md",
    "troubleshooting.md",
]


def test_every_page_exists_and_is_linked_from_the_index() -> None:
    with open(os.path.join(DOCS_DIR, "index.md"), encoding="utf-8") as f:
        index = f.read()
    for page in EXPECTED_PAGES:
        assert os.path.isfile(os.path.join(DOCS_DIR, page)), page
        if page != "index.md":
            assert f"({page})" in index, f"index.md does not link {page}"


# Every exported name of gorilla/websocket (constants, variables, functions,
# types, methods and struct fields).  The porting table must mention each.
GORILLA_NAMES = """
CloseNormalClosure CloseGoingAway CloseProtocolError CloseUnsupportedData CloseNoStatusReceived
CloseAbnormalClosure CloseInvalidFramePayloadData ClosePolicyViolation CloseMessageTooBig
CloseMandatoryExtension CloseInternalServerErr CloseServiceRestart CloseTryAgainLater CloseTLSHandshake
TextMessage BinaryMessage CloseMessage PingMessage PongMessage
DefaultDialer ErrBadHandshake ErrCloseSent ErrReadLimit
FormatCloseMessage IsCloseError IsUnexpectedCloseError IsWebSocketUpgrade ReadJSON Subprotocols WriteJSON
BufferPool CloseError Conn Dialer HandshakeError PreparedMessage Upgrader
NewClient Upgrade NewPreparedMessage
Close CloseHandler EnableWriteCompression LocalAddr NextReader NextWriter PingHandler PongHandler
ReadMessage RemoteAddr SetCloseHandler SetCompressionLevel SetPingHandler SetPongHandler
SetReadDeadline SetReadLimit SetWriteDeadline Subprotocol UnderlyingConn NetConn WriteControl
WriteMessage WritePreparedMessage Dial DialContext
NetDial NetDialContext NetDialTLSContext Proxy TLSClientConfig HandshakeTimeout ReadBufferSize
WriteBufferSize WriteBufferPool EnableCompression Jar Error CheckOrigin
""".split()


def test_porting_table_names_every_gorilla_name() -> None:
    with open(os.path.join(DOCS_DIR, "porting.md"), encoding="utf-8") as f:
        text = f.read()
    missing = [n for n in GORILLA_NAMES if not re.search(rf"`(?:[\w.&*]*\.)?{n}(?:`|\()", text)]
    assert not missing, f"porting.md does not mention: {missing}"


# ---------------------------------------------------------------------------
# The API reference (Sphinx autodoc over docs/api/*.rst; built by .ci/docs)
# ---------------------------------------------------------------------------


def _public_modules() -> List[str]:
    """Every module of the package a user may import (not ``_private`` ones, not ``__main__``)."""
    pkg = os.path.join(ROOT, "gorillaws")
    found = []
    for dirpath, dirnames, filenames in os.walk(pkg):
        dirnames[:] = [d for d in dirnames if not d.startswith(("_", "."))]
        for name in filenames:
            if name.endswith(".py") and (name == "__init__.py" or not name.startswith("_")):
                rel = os.path.relpath(os.path.join(dirpath, name), ROOT)[: -len(".py")]
                found.append(rel.replace(os.sep, ".").replace(".__init__", ""))
    return sorted(found)


def test_every_public_module_is_in_the_api_reference() -> None:
    api = os.path.join(DOCS_DIR, "api")
    text = ""
    for name in sorted(os.listdir(api)):
        if name.endswith(".rst"):
            with open(os.path.join(api, name), encoding="utf-8") as f:
                text += f.read()
    documented = set(re.findall(r"^\.\. automodule:: (\S+)", text, re.M))
    missing = [m for m in _public_modules() if m not in documented]
    assert not missing, f"add these modules to docs/api/*.rst: {missing}"
    with open(os.path.join(api, "index.rst"), encoding="utf-8") as f:
        index = f.read()
    pages = [n[:-4] for n in os.listdir(api) if n.endswith(".rst") and n != "index.rst"]
    assert all(re.search(rf"^\s+{p}$", index, re.M) for p in pages), "index.rst's toctree lists every page"


# ---------------------------------------------------------------------------
# Troubleshooting quotes the messages the library really produces
# ---------------------------------------------------------------------------


def _troubleshooting() -> str:
    with open(os.path.join(DOCS_DIR, "troubleshooting.md"), encoding="utf-8") as f:
        return f.read()


def test_troubleshooting_quotes_the_deadline_messages() -> None:
    import time

    import gorillaws
    from tests.conftest import make_conn_pair

    page = _troubleshooting()
    server, client = make_conn_pair()
    try:
        client.set_read_deadline(5)  # the mistake: a duration
        with pytest.raises(gorillaws.DeadlineExceeded) as info:
            client.read_message()
        assert f"DeadlineExceeded: {info.value}" in page
        with pytest.raises(ValueError) as bad:
            client.set_read_deadline(time.time() + 5)
        # The number differs from run to run; the sentence must not.
        quoted = re.search(r"ValueError: (read deadline [\d.]+ .*)", page)
        assert quoted, "the time.time() message is quoted"
        assert re.sub(r"[\d.]+", "N", str(bad.value), count=1) == re.sub(r"[\d.]+", "N", quoted.group(1), count=1)
    finally:
        server.close_now()
        client.close_now()


def test_troubleshooting_quotes_the_read_limit_and_426_messages() -> None:
    import gorillaws
    from gorillaws import serving

    page = _troubleshooting()
    assert f"ErrReadLimit: {gorillaws.ErrReadLimit()}" in page
    assert f"CloseError: {gorillaws.CloseError(1009, str(gorillaws.ErrReadLimit()))}" in page
    assert serving._NOT_WEBSOCKET_BODY.decode().strip() in page
    assert "read limit, 1 MiB" in page and gorillaws.DEFAULT_READ_LIMIT == 1 << 20
