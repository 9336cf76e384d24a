"""The public API against the Go libraries we mirror: the porting table, checked.

``GORILLA`` maps every exported name of gorilla/websocket (v1.5: functions,
methods, the fields of ``Upgrader``/``Dialer``/``CloseError``, constants,
errors) to the gorillaws attribute path that stands for it; ``GORILLA_OMITTED``
lists the few names deliberately left out, each with the reason.  ``NHOOYR``
and ``SEEHUHN`` do the same for the other two seed libraries.  The tests
resolve every path, so a rename in the package breaks here before the porting
guide (``docs/porting.md``) silently goes stale; when that guide exists, every
gorilla name must appear in it.

Paths are dotted from the ``gorillaws`` package.  A segment not found on a
class is looked up on a default-constructed instance (options such as
``Upgrader.handshake_timeout`` are instance attributes).  A path ending in
``()`` names a parameter of the callable before it, e.g.
``gorillaws.Dialer.dial(request_header)``.

The rest of the file checks behaviour that the table alone cannot: constant
values, defaults, the same-origin rule and the error callback, through real
handshakes on 127.0.0.1.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import socket
import threading
import time
from typing import Any, Dict, List, Optional, Tuple

import pytest

import gorillaws
from gorillaws import (
    CloseError,
    Conn,
    Dialer,
    ErrBadHandshake,
    HandshakeError,
    Upgrader,
    WebSocketError,
)
from gorillaws.handshake import generate_key
from gorillaws.http11 import Headers, Request, find_head_end, parse_response_head

pytestmark = pytest.mark.timeout(30)

TIMEOUT = 5.0
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------
# The tables
# ---------------------------------------------------------------------------

GORILLA: Dict[str, str] = {
    "JoinMessages": "gorillaws.join_messages",
    # message types
    "TextMessage": "gorillaws.TEXT_MESSAGE",
    "BinaryMessage": "gorillaws.BINARY_MESSAGE",
    "CloseMessage": "gorillaws.CLOSE_MESSAGE",
    "PingMessage": "gorillaws.PING_MESSAGE",
    "PongMessage": "gorillaws.PONG_MESSAGE",
    # close codes
    "CloseNormalClosure": "gorillaws.CLOSE_NORMAL_CLOSURE",
    "CloseGoingAway": "gorillaws.CLOSE_GOING_AWAY",
    "CloseProtocolError": "gorillaws.CLOSE_PROTOCOL_ERROR",
    "CloseUnsupportedData": "gorillaws.CLOSE_UNSUPPORTED_DATA",
    "CloseNoStatusReceived": "gorillaws.CLOSE_NO_STATUS_RECEIVED",
    "CloseAbnormalClosure": "gorillaws.CLOSE_ABNORMAL_CLOSURE",
    "CloseInvalidFramePayloadData": "gorillaws.CLOSE_INVALID_FRAME_PAYLOAD_DATA",
    "ClosePolicyViolation": "gorillaws.CLOSE_POLICY_VIOLATION",
    "CloseMessageTooBig": "gorillaws.CLOSE_MESSAGE_TOO_BIG",
    "CloseMandatoryExtension": "gorillaws.CLOSE_MANDATORY_EXTENSION",
    "CloseInternalServerErr": "gorillaws.CLOSE_INTERNAL_SERVER_ERR",
    "CloseServiceRestart": "gorillaws.CLOSE_SERVICE_RESTART",
    "CloseTryAgainLater": "gorillaws.CLOSE_TRY_AGAIN_LATER",
    "CloseTLSHandshake": "gorillaws.CLOSE_TLS_HANDSHAKE",
    # errors and variables
    "ErrBadHandshake": "gorillaws.ErrBadHandshake",
    "ErrCloseSent": "gorillaws.ErrCloseSent",
    "ErrReadLimit": "gorillaws.ErrReadLimit",
    "DefaultDialer": "gorillaws.DEFAULT_DIALER",
    "CloseError": "gorillaws.CloseError",
    "CloseError.Code": "gorillaws.CloseError.code",
    "CloseError.Text": "gorillaws.CloseError.text",
    "CloseError.Error": "gorillaws.CloseError.__str__",
    "HandshakeError": "gorillaws.HandshakeError",
    "HandshakeError.Error": "gorillaws.HandshakeError.__str__",
    # package functions
    "FormatCloseMessage": "gorillaws.format_close_message",
    "IsCloseError": "gorillaws.is_close_error",
    "IsUnexpectedCloseError": "gorillaws.is_unexpected_close_error",
    "IsWebSocketUpgrade": "gorillaws.is_websocket_upgrade",
    "Subprotocols": "gorillaws.subprotocols",
    "ReadJSON": "gorillaws.Conn.read_json",  # deprecated in Go: a method here
    "WriteJSON": "gorillaws.Conn.write_json",  # deprecated in Go: a method here
    "NewPreparedMessage": "gorillaws.PreparedMessage",
    "PreparedMessage": "gorillaws.PreparedMessage",
    "BufferPool": "gorillaws.BufferPool",
    "BufferPool.Get": "gorillaws.BufferPool.get",
    "BufferPool.Put": "gorillaws.BufferPool.put",
    # Conn
    "Conn": "gorillaws.Conn",
    "Conn.Close": "gorillaws.Conn.close_now",  # Go's Close sends no close frame
    "Conn.CloseHandler": "gorillaws.Conn.close_handler",
    "Conn.EnableWriteCompression": "gorillaws.Conn.enable_write_compression",
    "Conn.LocalAddr": "gorillaws.Conn.local_addr",
    "Conn.NetConn": "gorillaws.Conn.underlying_conn",  # our net_conn() is nhooyr's NetConn
    "Conn.NextReader": "gorillaws.Conn.next_reader",
    "Conn.NextWriter": "gorillaws.Conn.next_writer",
    "Conn.PingHandler": "gorillaws.Conn.ping_handler",
    "Conn.PongHandler": "gorillaws.Conn.pong_handler",
    "Conn.ReadJSON": "gorillaws.Conn.read_json",
    "Conn.ReadMessage": "gorillaws.Conn.read_message",
    "Conn.RemoteAddr": "gorillaws.Conn.remote_addr",
    "Conn.SetCloseHandler": "gorillaws.Conn.set_close_handler",
    "Conn.SetCompressionLevel": "gorillaws.Conn.set_compression_level",
    "Conn.SetPingHandler": "gorillaws.Conn.set_ping_handler",
    "Conn.SetPongHandler": "gorillaws.Conn.set_pong_handler",
    "Conn.SetReadDeadline": "gorillaws.Conn.set_read_deadline",
    "Conn.SetReadLimit": "gorillaws.Conn.set_read_limit",
    "Conn.SetWriteDeadline": "gorillaws.Conn.set_write_deadline",
    "Conn.Subprotocol": "gorillaws.Conn.subprotocol",
    "Conn.UnderlyingConn": "gorillaws.Conn.underlying_conn",
    "Conn.WriteControl": "gorillaws.Conn.write_control",
    "Conn.WriteJSON": "gorillaws.Conn.write_json",
    "Conn.WriteMessage": "gorillaws.Conn.write_message",
    "Conn.WritePreparedMessage": "gorillaws.Conn.write_prepared_message",
    # Upgrader
    "Upgrader": "gorillaws.Upgrader",
    "Upgrader.Upgrade": "gorillaws.Upgrader.upgrade",
    "Upgrader.HandshakeTimeout": "gorillaws.Upgrader.handshake_timeout",
    "Upgrader.ReadBufferSize": "gorillaws.Upgrader.read_buffer_size",
    "Upgrader.WriteBufferSize": "gorillaws.Upgrader.write_buffer_size",
    "Upgrader.WriteBufferPool": "gorillaws.Upgrader.write_buffer_pool",
    "Upgrader.Subprotocols": "gorillaws.Upgrader.subprotocols",
    "Upgrader.Error": "gorillaws.Upgrader.error",
    "Upgrader.CheckOrigin": "gorillaws.Upgrader.check_origin",
    "Upgrader.EnableCompression": "gorillaws.Upgrader.enable_compression",
    # Dialer
    "Dialer": "gorillaws.Dialer",
    "Dialer.Dial": "gorillaws.Dialer.dial",
    "Dialer.DialContext": "gorillaws.Dialer.dial",  # no contexts: handshake_timeout bounds it
    "Dialer.NetDial": "gorillaws.Dialer.net_dial",
    "Dialer.NetDialContext": "gorillaws.Dialer.net_dial",
    "Dialer.NetDialTLSContext": "gorillaws.Dialer.net_dial_tls",
    "Dialer.Proxy": "gorillaws.Dialer.proxy",
    "Dialer.TLSClientConfig": "gorillaws.Dialer.tls_client_config",
    "Dialer.HandshakeTimeout": "gorillaws.Dialer.handshake_timeout",
    "Dialer.ReadBufferSize": "gorillaws.Dialer.read_buffer_size",
    "Dialer.WriteBufferSize": "gorillaws.Dialer.write_buffer_size",
    "Dialer.WriteBufferPool": "gorillaws.Dialer.write_buffer_pool",
    "Dialer.Subprotocols": "gorillaws.Dialer.subprotocols",
    "Dialer.EnableCompression": "gorillaws.Dialer.enable_compression",
    "Dialer.Jar": "gorillaws.Dialer.jar",
}

#: gorilla names with no counterpart, on purpose.
GORILLA_OMITTED: Dict[str, str] = {
    "Upgrade": "deprecated in Go (no origin check, errors not answered); use Upgrader(...).upgrade",
    "NewClient": "deprecated in Go; Dialer(net_dial=lambda network, addr: sock).dial(url) "
    "runs the client handshake over a socket you already have",
}

#: gorilla names we mean to provide but that are not in the package yet.
#: Each one is reported as an expected failure until it lands.

NHOOYR: Dict[str, str] = {
    "Accept": "gorillaws.Upgrader.upgrade",
    "AcceptOptions.Subprotocols": "gorillaws.Upgrader.subprotocols",
    "AcceptOptions.InsecureSkipVerify": "gorillaws.Upgrader.insecure_skip_verify",
    "AcceptOptions.OriginPatterns": "gorillaws.Upgrader.origin_patterns",
    "AcceptOptions.CompressionMode": "gorillaws.Upgrader.compression_mode",
    "AcceptOptions.CompressionThreshold": "gorillaws.Upgrader.compression_threshold",
    "Dial": "gorillaws.Dialer.dial",
    "DialOptions.HTTPHeader": "gorillaws.Dialer.dial(request_header)",
    "DialOptions.Host": "gorillaws.Dialer.host",
    "DialOptions.Subprotocols": "gorillaws.Dialer.subprotocols",
    "DialOptions.CompressionMode": "gorillaws.Dialer.compression_mode",
    "DialOptions.CompressionThreshold": "gorillaws.Dialer.compression_threshold",
    "CompressionDisabled": "gorillaws.COMPRESSION_DISABLED",
    "CompressionContextTakeover": "gorillaws.COMPRESSION_CONTEXT_TAKEOVER",
    "CompressionNoContextTakeover": "gorillaws.COMPRESSION_NO_CONTEXT_TAKEOVER",
    "Conn.Close": "gorillaws.Conn.close",
    "Conn.CloseNow": "gorillaws.Conn.close_now",
    "Conn.CloseRead": "gorillaws.Conn.close_read",
    "Conn.Ping": "gorillaws.Conn.ping",
    "Conn.Read": "gorillaws.Conn.read_message",
    "Conn.Reader": "gorillaws.Conn.next_reader",
    "Conn.SetReadLimit": "gorillaws.Conn.set_read_limit",
    "Conn.Subprotocol": "gorillaws.Conn.subprotocol",
    "Conn.Write": "gorillaws.Conn.write_message",
    "Conn.Writer": "gorillaws.Conn.next_writer",
    "NetConn": "gorillaws.Conn.net_conn",
    "CloseError.Code": "gorillaws.CloseError.code",
    "CloseError.Reason": "gorillaws.CloseError.text",
    "CloseStatus": "gorillaws.Conn.close_status",
    "MessageText": "gorillaws.TEXT_MESSAGE",
    "MessageBinary": "gorillaws.BINARY_MESSAGE",
    "StatusBadGateway": "gorillaws.CLOSE_BAD_GATEWAY",
}

SEEHUHN: Dict[str, str] = {
    "Handler": "gorillaws.Handler",
    "Handler.AccessOk": "gorillaws.Handler.access_ok",
    "Handler.Handle": "gorillaws.Handler.handle",
    "Handler.ServerName": "gorillaws.Handler.server_name",
    "Handler.ServeHTTP": "gorillaws.Handler.__call__",
    "Conn.ResourceName": "gorillaws.UpgradeRequest.target",
    "Conn.Origin": "gorillaws.UpgradeRequest.origin",
    "Conn.RemoteAddr": "gorillaws.UpgradeRequest.remote_addr",
    "Conn.Protocol": "gorillaws.UpgradeRequest.protocol",
    "Conn.Close": "gorillaws.Conn.close",
    "Conn.GetStatus": "gorillaws.Conn.get_status",
    "Conn.ReceiveBinary": "gorillaws.Conn.receive_binary",
    "Conn.ReceiveMessage": "gorillaws.Conn.next_reader",
    "Conn.ReceiveText": "gorillaws.Conn.receive_text",
    "Conn.SendBinary": "gorillaws.Conn.send_binary",
    "Conn.SendMessage": "gorillaws.Conn.next_writer",
    "Conn.SendText": "gorillaws.Conn.send_text",
    "Text": "gorillaws.TEXT_MESSAGE",
    "Binary": "gorillaws.BINARY_MESSAGE",
}

#: Every exported gorilla/websocket v1.5 name: the table must cover each one.
GORILLA_EXPORTED = """
TextMessage BinaryMessage CloseMessage PingMessage PongMessage
CloseNormalClosure CloseGoingAway CloseProtocolError CloseUnsupportedData
CloseNoStatusReceived CloseAbnormalClosure CloseInvalidFramePayloadData
ClosePolicyViolation CloseMessageTooBig CloseMandatoryExtension
CloseInternalServerErr CloseServiceRestart CloseTryAgainLater CloseTLSHandshake
DefaultDialer ErrBadHandshake ErrCloseSent ErrReadLimit
FormatCloseMessage IsCloseError IsUnexpectedCloseError IsWebSocketUpgrade
JoinMessages ReadJSON WriteJSON Subprotocols NewClient Upgrade NewPreparedMessage
BufferPool BufferPool.Get BufferPool.Put
CloseError CloseError.Code CloseError.Text CloseError.Error
HandshakeError HandshakeError.Error PreparedMessage
Conn Conn.Close Conn.CloseHandler Conn.EnableWriteCompression Conn.LocalAddr
Conn.NetConn Conn.NextReader Conn.NextWriter Conn.PingHandler Conn.PongHandler
Conn.ReadJSON Conn.ReadMessage Conn.RemoteAddr Conn.SetCloseHandler
Conn.SetCompressionLevel Conn.SetPingHandler Conn.SetPongHandler
Conn.SetReadDeadline Conn.SetReadLimit Conn.SetWriteDeadline Conn.Subprotocol
Conn.UnderlyingConn Conn.WriteControl Conn.WriteJSON Conn.WriteMessage
Conn.WritePreparedMessage
Upgrader Upgrader.Upgrade Upgrader.HandshakeTimeout Upgrader.ReadBufferSize
Upgrader.WriteBufferSize Upgrader.WriteBufferPool Upgrader.Subprotocols
Upgrader.Error Upgrader.CheckOrigin Upgrader.EnableCompression
Dialer Dialer.Dial Dialer.DialContext Dialer.NetDial Dialer.NetDialContext
Dialer.NetDialTLSContext Dialer.Proxy Dialer.TLSClientConfig
Dialer.HandshakeTimeout Dialer.ReadBufferSize Dialer.WriteBufferSize
Dialer.WriteBufferPool Dialer.Subprotocols Dialer.EnableCompression Dialer.Jar
""".split()

_INSTANCES: Dict[type, Any] = {}


def _instance(cls: type) -> Any:
    if cls not in _INSTANCES:
        if cls.__name__ == "Handler":
            _INSTANCES[cls] = cls(handle=lambda conn: None)
        elif cls.__name__ == "UpgradeRequest":
            _INSTANCES[cls] = cls(None, Request("GET", "/", "HTTP/1.1", Headers()))
        else:
            _INSTANCES[cls] = cls()
    return _INSTANCES[cls]


def resolve(path: str) -> Any:
    """The object at ``path`` (see the module docstring); raises LookupError."""
    param = None
    m = re.fullmatch(r"(.+)\((\w+)\)", path)
    if m:
        path, param = m.group(1), m.group(2)
    head, *rest = path.split(".")
    assert head == "gorillaws", path
    obj: Any = gorillaws
    for seg in rest:
        if hasattr(obj, seg):
            obj = getattr(obj, seg)
        elif inspect.isclass(obj) and not issubclass(obj, BaseException):
            inst = _instance(obj)
            if not hasattr(inst, seg):
                raise LookupError(f"{path}: no {seg!r} on {obj.__name__} or its instances")
            obj = getattr(inst, seg)
        elif inspect.isclass(obj) and issubclass(obj, BaseException):
            inst = obj(1000, "") if obj is CloseError else obj("x")
            if not hasattr(inst, seg):
                raise LookupError(f"{path}: no {seg!r} on {obj.__name__}")
            obj = getattr(inst, seg)
        else:
            raise LookupError(f"{path}: no {seg!r}")
    if param is not None:
        if param not in inspect.signature(obj).parameters:
            raise LookupError(f"{path}: no parameter {param!r}")
    return obj


@pytest.mark.parametrize("table", ["GORILLA", "NHOOYR", "SEEHUHN"])
def test_every_mapped_name_resolves(table: str) -> None:
    missing = []
    for go_name, path in globals()[table].items():
        try:
            resolve(path)
        except (LookupError, AttributeError) as e:
            missing.append(f"{go_name} -> {path}: {e}")
    assert not missing, "\n".join(missing)


def test_gorilla_table_is_complete() -> None:
    covered = set(GORILLA) | set(GORILLA_OMITTED)
    assert sorted(set(GORILLA_EXPORTED) - covered) == []
    assert sorted(covered - set(GORILLA_EXPORTED)) == []
    assert not (set(GORILLA) & set(GORILLA_OMITTED))


def test_reference_names_are_in_the_table() -> None:
    """Cross-check against the stored gorilla API text, when this checkout has it."""
    ref = os.path.join(REPO, "..", "shared", "reference", "gorilla-websocket-api.txt")
    if not os.path.exists(ref):
        pytest.skip("gorilla API reference text not present next to this checkout")
    text = open(ref, encoding="utf-8").read()
    names = set(re.findall(r"^func ([A-Z]\w*)\(", text, re.M))
    names |= {f"{t}.{m}" for t, m in re.findall(r"^func \(\w+ \*?(\w+)\) ([A-Z]\w*)\(", text, re.M)}
    names |= set(re.findall(r"^type ([A-Z]\w*)", text, re.M))
    names |= set(re.findall(r"^var ([A-Z]\w*)", text, re.M))
    names |= set(re.findall(r"^\s+(Close[A-Z]\w*|\w+Message)\s+= ", text, re.M))
    covered = set(GORILLA) | set(GORILLA_OMITTED)
    assert sorted(names - covered) == []


def test_porting_doc_mentions_every_gorilla_name() -> None:
    doc = os.path.join(REPO, "docs", "porting.md")
    assert os.path.exists(doc), "docs/porting.md (the porting table) is missing"
    text = open(doc, encoding="utf-8").read()
    absent = []
    for go_name in sorted(set(GORILLA) | set(GORILLA_OMITTED)):
        if go_name.split(".")[-1] not in text:
            absent.append(go_name)
    for go_name, path in GORILLA.items():
        ours = re.sub(r"\(.*\)$", "", path).split(".")[-1]
        if ours.startswith("__"):
            continue
        if ours not in text:
            absent.append(f"{go_name} -> {ours}")
    assert absent == [], "docs/porting.md does not mention: " + ", ".join(absent)


# ---------------------------------------------------------------------------
# Values and defaults
# ---------------------------------------------------------------------------


def test_constant_values_match_gorilla() -> None:
    values = {
        "TextMessage": 1, "BinaryMessage": 2, "CloseMessage": 8, "PingMessage": 9, "PongMessage": 10,
        "CloseNormalClosure": 1000, "CloseGoingAway": 1001, "CloseProtocolError": 1002,
        "CloseUnsupportedData": 1003, "CloseNoStatusReceived": 1005, "CloseAbnormalClosure": 1006,
        "CloseInvalidFramePayloadData": 1007, "ClosePolicyViolation": 1008,
        "CloseMessageTooBig": 1009, "CloseMandatoryExtension": 1010,
        "CloseInternalServerErr": 1011, "CloseServiceRestart": 1012,
        "CloseTryAgainLater": 1013, "CloseTLSHandshake": 1015,
    }
    for go_name, value in values.items():
        assert resolve(GORILLA[go_name]) == value, go_name
    assert gorillaws.CLOSE_BAD_GATEWAY == 1014  # nhooyr's StatusBadGateway


def test_error_hierarchy() -> None:
    for name in ("ErrBadHandshake", "ErrCloseSent", "ErrReadLimit", "CloseError", "HandshakeError"):
        assert issubclass(resolve(GORILLA[name]), WebSocketError), name
    assert issubclass(ErrBadHandshake, HandshakeError)
    assert issubclass(gorillaws.DeadlineExceeded, TimeoutError)
    e = CloseError(1001, "bye")
    assert (e.code, e.text) == (1001, "bye")
    assert "1001" in str(e) and "bye" in str(e)
    assert str(gorillaws.ErrCloseSent()) == "websocket: close sent"
    assert str(gorillaws.ErrReadLimit()) == "websocket: read limit exceeded"
    assert gorillaws.ErrReadLimit().code == 1009


def test_close_error_helpers() -> None:
    e = CloseError(1001, "")
    assert gorillaws.is_close_error(e, 1000, 1001)
    assert not gorillaws.is_close_error(e, 1000)
    assert not gorillaws.is_close_error(e)  # no codes: never a match, as in Go
    assert not gorillaws.is_close_error(ValueError("x"), 1001)
    assert not gorillaws.is_close_error(None, 1001)
    assert gorillaws.is_unexpected_close_error(e, 1000)
    assert not gorillaws.is_unexpected_close_error(e, 1000, 1001)
    assert gorillaws.is_unexpected_close_error(e)  # no expected codes: any close is unexpected
    assert not gorillaws.is_unexpected_close_error(OSError("x"), 1000)


def test_format_close_message() -> None:
    assert gorillaws.format_close_message(1000, "ok") == b"\x03\xe8ok"
    assert gorillaws.format_close_message(gorillaws.CLOSE_NO_STATUS_RECEIVED, "ignored") == b""
    assert gorillaws.format_close_message(4000) == b"\x0f\xa0"


def test_default_dialer_matches_gorilla() -> None:
    from gorillaws.proxy import proxy_from_environment

    d = gorillaws.DEFAULT_DIALER
    assert d.proxy is proxy_from_environment
    assert d.handshake_timeout == 45.0
    # A zero Dialer, as in Go: no proxy, no compression, no jar; but a
    # handshake timeout (gorilla's zero Dialer has none, so a silent server
    # would hang it forever): DefaultDialer's 45 s.
    z = Dialer()
    assert (z.proxy, z.handshake_timeout, z.enable_compression, z.jar) == (None, 45.0, False, None)
    assert (z.read_buffer_size, z.write_buffer_size, z.subprotocols) == (0, 0, [])


def test_upgrader_defaults() -> None:
    u = Upgrader()
    assert u.handshake_timeout == 10.0  # gorilla: none; we bound slow clients by default
    assert (u.read_buffer_size, u.write_buffer_size, u.subprotocols) == (0, 0, [])
    assert (u.error, u.check_origin, u.enable_compression) == (None, None, False)
    # Options are also plain, writable attributes.
    u.subprotocols = ["chat"]
    assert u.subprotocols == ["chat"]


def test_subprotocols_and_is_websocket_upgrade_helpers() -> None:
    h = Headers()
    h.add("Connection", "keep-alive, Upgrade")
    h.add("Upgrade", "WebSocket")
    h.add("Sec-WebSocket-Protocol", "chat, superchat")
    h.add("Sec-WebSocket-Protocol", " v2 ")
    req = Request("GET", "/", "HTTP/1.1", h)
    assert gorillaws.is_websocket_upgrade(req)
    assert gorillaws.subprotocols(req) == ["chat", "superchat", "v2"]
    env = {"REQUEST_METHOD": "GET", "HTTP_CONNECTION": "upgrade", "HTTP_UPGRADE": "websocket"}
    assert gorillaws.is_websocket_upgrade(env)
    assert gorillaws.subprotocols(env) == []
    assert not gorillaws.is_websocket_upgrade({"HTTP_CONNECTION": "close", "HTTP_UPGRADE": "websocket"})
    assert not gorillaws.is_websocket_upgrade({"HTTP_CONNECTION": "upgrade"})


# ---------------------------------------------------------------------------
# Behaviour through real handshakes: buffers, origins, the error callback
# ---------------------------------------------------------------------------


class RawServer:
    """Accept one connection on 127.0.0.1 and run ``upgrader.upgrade(sock)`` on it."""

    def __init__(self, upgrader: Upgrader) -> None:
        self.upgrader = upgrader
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(TIMEOUT)
        self.port = self.listener.getsockname()[1]
        self.result: Any = None
        self.thread = threading.Thread(target=self._run)
        self.thread.start()

    def _run(self) -> None:
        try:
            sock, _ = self.listener.accept()
        except OSError as e:
            self.result = e
            return
        try:
            self.result = self.upgrader.upgrade(sock)
        except BaseException as e:
            self.result = e

    def join(self) -> Any:
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        self.listener.close()
        if isinstance(self.result, Conn):
            self.result.close_now()
        return self.result


def handshake(port: int, extra: str = "", host: Optional[str] = None) -> Tuple[int, Headers, bytes]:
    host = host or f"127.0.0.1:{port}"
    req = (
        f"GET /ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {generate_key()}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as s:
        s.sendall(req)
        buf = b""
        while find_head_end(buf) < 0:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        end = find_head_end(buf)
        assert end > 0, buf
        resp = parse_response_head(buf[:end])
        body = buf[end:]
        if resp.status != 101:
            s.settimeout(1.0)
            try:
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    body += chunk
            except OSError:
                pass
        return resp.status, resp.headers, body


ORIGIN_CASES = [
    # (Origin header or None, Host header, accepted by gorilla's default CheckOrigin)
    (None, "example.com", True),
    ("http://example.com", "example.com", True),
    ("https://example.com", "example.com", True),  # the scheme is not compared
    ("HTTP://EXAMPLE.COM", "example.com", True),  # case-insensitive
    ("http://example.com:8080", "example.com:8080", True),
    ("http://example.com:8080", "example.com", False),  # ports are part of the host
    ("http://example.com", "example.com:80", False),  # no default-port folding, as in Go
    ("http://evil.com", "example.com", False),
    ("http://example.com.evil.com", "example.com", False),
    ("null", "example.com", False),
]


@pytest.mark.parametrize("origin,host,ok", ORIGIN_CASES)
def test_default_check_origin_is_gorillas_same_origin_rule(origin: Optional[str], host: str, ok: bool) -> None:
    srv = RawServer(Upgrader(handshake_timeout=TIMEOUT))
    extra = f"Origin: {origin}\r\n" if origin is not None else ""
    status, _, _ = handshake(srv.port, extra, host=host)
    result = srv.join()
    assert status == (101 if ok else 403)
    assert isinstance(result, Conn) if ok else (isinstance(result, HandshakeError) and result.status == 403)


def test_check_origin_callback_replaces_the_default() -> None:
    seen: List[Any] = []

    def allow_evil(req: Any) -> bool:
        seen.append((req.origin, req.host, req.path))
        return bool(req.origin == "http://evil.com")

    srv = RawServer(Upgrader(handshake_timeout=TIMEOUT, check_origin=allow_evil))
    status, _, _ = handshake(srv.port, "Origin: http://evil.com\r\n", host="example.com")
    srv.join()
    assert status == 101
    assert seen == [("http://evil.com", "example.com", "/ws")]
    srv = RawServer(Upgrader(handshake_timeout=TIMEOUT, check_origin=allow_evil))
    status, _, _ = handshake(srv.port, "", host="example.com")  # same-origin, but refused by the callback
    srv.join()
    assert status == 403


def test_error_callback_answers_refusals() -> None:
    calls: List[Tuple[int, str]] = []

    def error(req: Any, status: int, reason: str) -> None:
        calls.append((status, reason))
        body = f"custom {status}".encode()
        req.raw.sendall(
            f"HTTP/1.1 {status} Nope\r\nX-Custom: yes\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
        )

    srv = RawServer(Upgrader(handshake_timeout=TIMEOUT, error=error))
    status, headers, body = handshake(srv.port, "Origin: http://evil.com\r\n", host="example.com")
    result = srv.join()
    assert (status, headers.get("X-Custom"), body) == (403, "yes", b"custom 403")
    assert isinstance(result, HandshakeError) and result.status == 403
    assert calls and calls[0][0] == 403 and "origin" in calls[0][1]


def test_buffer_size_zero_means_a_useful_default() -> None:
    srv = RawServer(Upgrader(handshake_timeout=TIMEOUT))
    d = Dialer(handshake_timeout=TIMEOUT)
    conn, _ = d.dial(f"ws://127.0.0.1:{srv.port}/")
    server_conn = srv.join()
    try:
        assert isinstance(server_conn, Conn)
        assert server_conn.write_buffer_size >= 4096 and conn.write_buffer_size >= 4096
    finally:
        conn.close_now()


def test_response_header_subprotocol_when_upgrader_has_none() -> None:
    """gorilla: with no Subprotocols, Sec-WebSocket-Protocol from responseHeader is sent."""
    result: List[Any] = []
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]

    def run() -> None:
        sock, _ = listener.accept()
        try:
            result.append(Upgrader(handshake_timeout=TIMEOUT).upgrade(sock, {"Sec-WebSocket-Protocol": "v2"}))
        except BaseException as e:
            result.append(e)

    t = threading.Thread(target=run)
    t.start()
    try:
        conn, resp = Dialer(handshake_timeout=TIMEOUT).dial(
            f"ws://127.0.0.1:{port}/", {"Sec-WebSocket-Protocol": "v1, v2"}
        )
        assert conn.subprotocol() == "v2"
        conn.close_now()
    finally:
        t.join(TIMEOUT)
        listener.close()
    assert isinstance(result[0], Conn) and result[0].subprotocol() == "v2"
    result[0].close_now()


def test_bad_handshake_carries_the_response() -> None:
    """gorilla returns ErrBadHandshake with the *http.Response so callers can follow redirects."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(TIMEOUT)
    port = listener.getsockname()[1]

    def run() -> None:
        sock, _ = listener.accept()
        with sock:
            sock.settimeout(TIMEOUT)
            buf = b""
            while find_head_end(buf) < 0:
                chunk = sock.recv(4096)
                if not chunk:
                    return
                buf += chunk
            sock.sendall(b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 5\r\n\r\nmoved")

    t = threading.Thread(target=run)
    t.start()
    try:
        with pytest.raises(ErrBadHandshake) as ei:
            Dialer(handshake_timeout=TIMEOUT).dial(f"ws://127.0.0.1:{port}/")
    finally:
        t.join(TIMEOUT)
        listener.close()
    resp = ei.value.response
    assert resp is not None and resp.status == 302
    assert resp.headers.get("Location") == "/elsewhere" and resp.body == b"moved"


def test_lazy_names_are_importable_and_listed() -> None:
    for name in gorillaws.__all__:
        assert getattr(gorillaws, name) is not None, name
    mod = importlib.import_module("gorillaws.server")
    assert gorillaws.Upgrader is mod.Upgrader
