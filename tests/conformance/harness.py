"""Runs one conformance case: a gorillaws echo endpoint against the fuzzing peer.

Directions:

* ``server``: gorillaws is the server (a ``Conn(is_server=True)``, or an
  :class:`gorillaws.Upgrader` over the accepted socket) and the fuzzer is the
  client.
* ``client``: gorillaws is the client (``Conn(is_server=False)``, or a
  :class:`gorillaws.Dialer`) and the fuzzer is the server.

Setups: ``raw`` starts the WebSocket layer directly on a connected 127.0.0.1
TCP socket (no handshake; permessage-deflate is configured on both sides by
hand), ``handshake`` goes through a real opening handshake written by hand on
the fuzzer's side (permessage-deflate negotiated with headers).

The system under test echoes every data message with the same type.  Echo
modes: ``message`` (``read_message`` / ``write_message``) and ``stream``
(``next_reader`` / ``next_writer``, copied in 4 KiB pieces, as gorilla's
Autobahn example's streaming handler does).
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

from gorillaws import Conn
from gorillaws import deflate as gdeflate
from gorillaws.exceptions import CloseError, ProtocolError, WebSocketError

from .fuzzer import DeflateSetup, FuzzPeer, Observed

Events = List[Tuple[str, bytes]]

IO_TIMEOUT = 10.0

#: Results of the cases run in this process (for the end-of-run summary).
RESULTS: List["Result"] = []
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


@dataclass
class Case:
    """One conformance case.

    ``actions(fuzzer)`` does what the case sends.  ``expect`` is the exact
    list of events (echoed messages, pongs) the system under test must
    produce; ``alternatives`` lists other acceptable event lists (cases
    Autobahn grades "informational").  ``close`` is the close code the
    system under test must send: with ``fuzzer_closes`` the fuzzer sends a
    close 1000 after its actions and the code is the echo; without it, the
    case expects the system under test to fail the connection with that code.
    ``close=None`` expects no close frame at all (a dropped connection).
    """

    id: str
    desc: str
    actions: Callable[[FuzzPeer], None]
    expect: Events = field(default_factory=list)
    close: Optional[int] = 1000
    fuzzer_closes: bool = True
    alternatives: List[Events] = field(default_factory=list)
    deflate: Optional[DeflateSetup] = None
    read_limit: Optional[int] = None
    write_buffer_size: int = 0
    echo: str = "message"
    directions: Tuple[str, ...] = ("server", "client")
    timeout: float = 5.0
    extra_check: Optional[Callable[[Observed], List[str]]] = None
    # Offer / answer strings for handshake setups (permessage-deflate);
    # None: derived from ``deflate``.
    ext_offer: Optional[str] = None

    @property
    def group(self) -> str:
        """The Autobahn group number ("1".."13"), or "x" for gorillaws-only cases."""
        return self.id.split(".")[0]


@dataclass
class Result:
    """The outcome of one case in one direction/setup."""

    case: Case
    direction: str
    setup: str
    problems: List[str]
    observed: Observed
    sut_error: Optional[BaseException]
    seconds: float

    @property
    def ok(self) -> bool:
        """True when the system under test behaved exactly as expected."""
        return not self.problems


# ----------------------------------------------------------------------
# The system under test
# ----------------------------------------------------------------------


def _echo(conn: Conn, mode: str) -> None:
    if mode == "message":
        while True:
            mt, data = conn.read_message()
            conn.write_message(mt, data)
    else:
        while True:
            mt, reader = conn.next_reader()
            w = conn.next_writer(mt)
            for chunk in iter(lambda: reader.read(4096), b""):
                w.write(chunk)
            w.close()


class _Sut:
    """The gorillaws endpoint, running in its own thread."""

    def __init__(self, case: Case) -> None:
        self.case = case
        self.error: Optional[BaseException] = None
        self.conn: Optional[Conn] = None
        self.done = threading.Event()
        self.thread: Optional[threading.Thread] = None

    def start(self, make_conn: Callable[[], Conn]) -> None:
        def run() -> None:
            conn: Optional[Conn] = None
            try:
                conn = make_conn()
                self.conn = conn
                conn.close_timeout = 2.0
                if self.case.read_limit is not None:
                    conn.set_read_limit(self.case.read_limit)
                _echo(conn, self.case.echo)
            except (CloseError, ProtocolError) as e:
                self.error = e
            except BaseException as e:  # reported by the test
                self.error = e
            finally:
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:
                        conn.close_now()
                self.done.set()

        self.thread = threading.Thread(target=run, name="conformance-sut", daemon=True)
        self.thread.start()

    def join(self, timeout: float) -> bool:
        assert self.thread is not None
        self.thread.join(timeout)
        if self.thread.is_alive():
            if self.conn is not None:
                self.conn.close_now()
            self.thread.join(2.0)
            return False
        return True


def _codec_params(d: DeflateSetup, sut_is_server: bool) -> gdeflate.DeflateParams:
    def bits(b: int) -> Optional[int]:
        return None if b == 15 else b

    if sut_is_server:
        return gdeflate.DeflateParams(
            server_no_context_takeover=d.sut_no_context_takeover,
            client_no_context_takeover=d.fuzzer_no_context_takeover,
            server_max_window_bits=bits(d.sut_window_bits),
            client_max_window_bits=bits(d.fuzzer_window_bits),
        )
    return gdeflate.DeflateParams(
        server_no_context_takeover=d.fuzzer_no_context_takeover,
        client_no_context_takeover=d.sut_no_context_takeover,
        server_max_window_bits=bits(d.fuzzer_window_bits),
        client_max_window_bits=bits(d.sut_window_bits),
    )


# ----------------------------------------------------------------------
# Hand-written opening handshakes (the fuzzer's side)
# ----------------------------------------------------------------------


def _recv_head(sock: socket.socket, deadline: float) -> Tuple[bytes, bytes]:
    buf = b""
    while b"\r\n\r\n" not in buf:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("fuzzer: no HTTP head in time")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise EOFError("fuzzer: connection closed during the handshake: %r" % buf)
        buf += chunk
    head, rest = buf.split(b"\r\n\r\n", 1)
    sock.settimeout(None)
    return head, rest


def _headers(head: bytes) -> Tuple[str, Dict[str, str]]:
    lines = head.decode("latin-1").split("\r\n")
    hdrs: Dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        hdrs[key] = (hdrs[key] + ", " + value.strip()) if key in hdrs else value.strip()
    return lines[0], hdrs


def _accept(key: str) -> str:
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def _parse_pmd(value: str) -> Optional[Dict[str, Optional[str]]]:
    """The parameters of the first permessage-deflate element in a header value."""
    for element in value.split(","):
        parts = [p.strip() for p in element.split(";")]
        if parts[0].lower() != "permessage-deflate":
            continue
        params: Dict[str, Optional[str]] = {}
        for p in parts[1:]:
            if not p:
                continue
            k, eq, v = p.partition("=")
            params[k.strip().lower()] = v.strip().strip('"') if eq else None
        return params
    return None


def offer_for(d: DeflateSetup) -> str:
    """A client's permessage-deflate offer asking for exactly the setup ``d`` (fuzzer = client)."""
    parts = ["permessage-deflate"]
    if d.sut_no_context_takeover:
        parts.append("server_no_context_takeover")
    if d.fuzzer_no_context_takeover:
        parts.append("client_no_context_takeover")
    if d.sut_window_bits != 15:
        parts.append("server_max_window_bits=%d" % d.sut_window_bits)
    parts.append("client_max_window_bits" + ("" if d.fuzzer_window_bits == 15 else "=%d" % d.fuzzer_window_bits))
    return "; ".join(parts)


def setup_from_response(params: Dict[str, Optional[str]], level: int, fuzzer_is_client: bool) -> DeflateSetup:
    """The fuzzer's DeflateSetup from agreed permessage-deflate parameters."""
    snct = "server_no_context_takeover" in params
    cnct = "client_no_context_takeover" in params
    sbits = int(params.get("server_max_window_bits") or 15)
    cbits = int(params.get("client_max_window_bits") or 15)
    if fuzzer_is_client:
        return DeflateSetup(cnct, cbits, snct, sbits, level)
    return DeflateSetup(snct, sbits, cnct, cbits, level)


def fuzzer_client_handshake(
    sock: socket.socket, case: Case, path: str = "/echo"
) -> Tuple[Optional[DeflateSetup], bytes]:
    """Send an upgrade request for ``path`` as the fuzzing client; check the answer.

    Returns the agreed deflate setup (None when the server declined or none
    was offered) and bytes received after the response head.
    """
    key = base64.b64encode(os.urandom(16)).decode("ascii")
    lines = [
        "GET %s HTTP/1.1" % path,
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: " + key,
        "Sec-WebSocket-Version: 13",
    ]
    offer = case.ext_offer if case.ext_offer is not None else (offer_for(case.deflate) if case.deflate else None)
    if offer:
        lines.append("Sec-WebSocket-Extensions: " + offer)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    head, rest = _recv_head(sock, time.monotonic() + IO_TIMEOUT)
    status, hdrs = _headers(head)
    assert status.split(" ")[1] == "101", "handshake refused: %r" % head
    assert hdrs.get("sec-websocket-accept") == _accept(key), "bad Sec-WebSocket-Accept"
    agreed = _parse_pmd(hdrs.get("sec-websocket-extensions", ""))
    level = case.deflate.level if case.deflate else 6
    return (setup_from_response(agreed, level, True) if agreed is not None else None), rest


def answer_for(offer: Dict[str, Optional[str]], want: DeflateSetup) -> Tuple[str, DeflateSetup]:
    """The fuzzing server's answer to a client offer, as close to ``want`` as the offer allows."""
    parts = ["permessage-deflate"]
    fuzzer_nct = want.fuzzer_no_context_takeover or "server_no_context_takeover" in offer
    if fuzzer_nct:
        parts.append("server_no_context_takeover")
    sut_nct = want.sut_no_context_takeover or "client_no_context_takeover" in offer
    if sut_nct:
        parts.append("client_no_context_takeover")
    fbits = want.fuzzer_window_bits
    if offer.get("server_max_window_bits"):
        fbits = min(fbits, int(offer["server_max_window_bits"] or 15))
    if fbits != 15:
        parts.append("server_max_window_bits=%d" % fbits)
    sbits = 15
    if "client_max_window_bits" in offer:
        sbits = want.sut_window_bits
        if offer["client_max_window_bits"]:
            sbits = min(sbits, int(offer["client_max_window_bits"] or 15))
        if sbits != 15:
            parts.append("client_max_window_bits=%d" % sbits)
    return "; ".join(parts), DeflateSetup(fuzzer_nct, fbits, sut_nct, sbits, want.level)


def read_upgrade_request(sock: socket.socket) -> Tuple[str, Dict[str, str], bytes]:
    """Read an upgrade request: ``(request target, lower-cased headers, bytes after the head)``."""
    head, rest = _recv_head(sock, time.monotonic() + IO_TIMEOUT)
    line, hdrs = _headers(head)
    return line.split(" ")[1], hdrs, rest


def fuzzer_server_handshake(
    sock: socket.socket, case: Case, request: Optional[Tuple[str, Dict[str, str], bytes]] = None
) -> Tuple[Optional[DeflateSetup], bytes]:
    """Accept the upgrade request (read here unless ``request`` was read already) as the fuzzing server."""
    _, hdrs, rest = request if request is not None else read_upgrade_request(sock)
    key = hdrs["sec-websocket-key"]
    lines = [
        "HTTP/1.1 101 Switching Protocols",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Accept: " + _accept(key),
    ]
    agreed: Optional[DeflateSetup] = None
    offer = _parse_pmd(hdrs.get("sec-websocket-extensions", ""))
    if case.deflate is not None:
        assert offer is not None, "the client offered no permessage-deflate: %r" % (hdrs,)
        answer, agreed = answer_for(offer, case.deflate)
        lines.append("Sec-WebSocket-Extensions: " + answer)
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    return agreed, rest


# ----------------------------------------------------------------------
# Running a case
# ----------------------------------------------------------------------


def play(case: Case, peer: FuzzPeer, sut_done: Optional[Callable[[float], bool]] = None) -> Tuple[List[str], Observed]:
    """Play ``case``'s actions on ``peer`` and judge what the other side did."""
    try:
        case.actions(peer)
        if case.fuzzer_closes and not peer.close_sent:
            # Let the echoes arrive before closing, as Autobahn does.
            peer.wait_events(len(case.expect), case.timeout)
            peer.send_close(1000)
    except BaseException:
        peer.finish(0.0)
        if sut_done is not None:
            sut_done(5.0)
        raise
    obs = peer.finish(case.timeout)
    problems = judge(case, obs, peer)
    if sut_done is not None and not sut_done(case.timeout):
        problems.append("the gorillaws endpoint did not finish")
    return problems, obs


def run_case_against_server(case: Case, host: str, port: int, path: str) -> Tuple[List[str], Observed]:
    """Play ``case`` as the fuzzing client against a running server (e.g. the Autobahn example)."""
    sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
    agreed, initial = fuzzer_client_handshake(sock, case, path)
    peer = FuzzPeer(sock, is_client=True, deflate=agreed, initial_data=initial)
    return play(case, peer)


def _listener() -> socket.socket:
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(1)
    lsock.settimeout(IO_TIMEOUT)
    return lsock


def _sut_mode(case: Case) -> int:
    if case.deflate is None:
        return gdeflate.COMPRESSION_DISABLED
    if case.deflate.sut_no_context_takeover and case.deflate.fuzzer_no_context_takeover:
        return gdeflate.COMPRESSION_NO_CONTEXT_TAKEOVER
    return gdeflate.COMPRESSION_CONTEXT_TAKEOVER


def run_case(case: Case, direction: str, setup: str = "raw") -> Result:
    """Run ``case`` with gorillaws in ``direction`` ("server"/"client") over ``setup`` ("raw"/"handshake")."""
    start = time.monotonic()
    sut = _Sut(case)
    sut_is_server = direction == "server"
    lsock = _listener()
    fsock: Optional[socket.socket] = None
    try:
        port = lsock.getsockname()[1]
        agreed = case.deflate
        initial = b""
        if setup == "raw":
            csock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            asock, _ = lsock.accept()
            csock.settimeout(None)
            asock.settimeout(None)
            sut_sock, fsock = (asock, csock) if sut_is_server else (csock, asock)
            codec = None
            if case.deflate is not None:
                codec = gdeflate.PerMessageDeflate(
                    _codec_params(case.deflate, sut_is_server),
                    is_server=sut_is_server,
                    mode=gdeflate.COMPRESSION_CONTEXT_TAKEOVER,
                )
            wbs = case.write_buffer_size

            def make_raw() -> Conn:
                return Conn(sut_sock, is_server=sut_is_server, compression=codec, write_buffer_size=wbs)

            sut.start(make_raw)
        elif sut_is_server:
            from gorillaws import Upgrader

            up = Upgrader(
                compression_mode=_sut_mode(case),
                write_buffer_size=case.write_buffer_size,
                check_origin=lambda r: True,
                handshake_timeout=IO_TIMEOUT,
            )
            fsock = socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT)
            asock, _ = lsock.accept()
            asock.settimeout(None)
            sut.start(lambda: up.upgrade(asock))
            agreed, initial = fuzzer_client_handshake(fsock, case)
        else:
            from gorillaws import Dialer

            dialer = Dialer(
                compression_mode=_sut_mode(case),
                write_buffer_size=case.write_buffer_size,
                handshake_timeout=IO_TIMEOUT,
            )
            sut.start(lambda: dialer.dial("ws://127.0.0.1:%d/echo" % port)[0])
            fsock, _ = lsock.accept()
            agreed, initial = fuzzer_server_handshake(fsock, case)
    finally:
        lsock.close()
    assert fsock is not None
    peer = FuzzPeer(fsock, is_client=sut_is_server, deflate=agreed, initial_data=initial)
    problems, obs = play(case, peer, sut.join)
    err = sut.error
    if err is not None and not isinstance(err, (WebSocketError, OSError)):
        problems.append("the gorillaws endpoint raised %r" % (err,))
    return Result(case, direction, setup, problems, obs, err, time.monotonic() - start)


def _short(events: Events) -> str:
    def one(e: Tuple[str, bytes]) -> str:
        kind, data = e
        body = data if len(data) <= 24 else data[:20] + b"...(%d)" % len(data)
        return "%s:%r" % (kind, body)

    return "[" + ", ".join(one(e) for e in events) + "]"


def judge(case: Case, obs: Observed, peer: FuzzPeer) -> List[str]:
    """The differences between what happened and what ``case`` expects (empty: pass)."""
    problems: List[str] = []
    events = obs.events
    if events != case.expect and events not in case.alternatives:
        problems.append("events %s, expected %s" % (_short(events), _short(case.expect)))
    if case.close is None:
        if obs.close is not None:
            problems.append("expected a dropped connection, got close %r" % (obs.close,))
    elif obs.close is None:
        problems.append("no close frame (expected %d)" % case.close)
    elif obs.close[0] != case.close:
        problems.append("close code %d (reason %r), expected %d" % (obs.close[0], obs.close[1], case.close))
    if not obs.eof:
        problems.append("the TCP connection was not closed")
    problems.extend(obs.violations)
    for desc, ok in peer.checks:
        if not ok:
            problems.append(desc)
    if case.extra_check is not None:
        problems.extend(case.extra_check(obs))
    return problems


def run_all(cases: List[Case], direction: str, setup: str = "raw") -> List[Result]:
    """Run several cases one after the other (for the summary script)."""
    return [run_case(c, direction, setup) for c in cases if direction in c.directions]


def summarize(results: List[Result]) -> str:
    """Autobahn-report style lines: per group, how many cases passed."""
    groups: Dict[Tuple[str, str, str], List[Result]] = {}
    for r in results:
        groups.setdefault((r.direction, r.setup, r.case.group), []).append(r)
    lines = []
    for (direction, setup, group), rs in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1], _gkey(kv[0][2]))):
        ok = sum(r.ok for r in rs)
        lines.append("%-6s %-9s group %-3s %4d/%-4d OK" % (direction, setup, group, ok, len(rs)))
    return "\n".join(lines)


def _gkey(g: str) -> Tuple[int, str]:
    return (int(g), "") if g.isdigit() else (999, g)

