"""The public API against the Go libraries we mirror: the porting table, checked.

``GORILLA`` maps every exported name of gorilla/websocket (v1.5: functions,
methods, the fields of ``Upgrader``/``Dialer``/``CloseError``, constants,
errors) to the gorillaws attribute path that stands for it; ``NHOOYR``,
``BHOJPUR`` and ``SEEHUHN`` do the same for nhooyr/coder's websocket (with
wsjson), bhojpur's fork (with wspb) and seehuhn's.  Each ``*_OMITTED`` lists
the names that cannot exist in Python, with the reason, and each
``*_EXPORTED`` every exported name of the Go package, so a table that forgets
one fails.  The tests resolve every path, so a rename in the package breaks
here before the porting guide (``docs/porting.md``) silently goes stale; the
guide must mention every name and explain every omission.

Paths are dotted from the ``gorillaws`` package (or ``builtins``); a
submodule (``gorillaws.wsjson``) is imported as Go code imports it.  A
segment not found on a class is looked up on a default-constructed instance
(options such as ``Upgrader.handshake_timeout`` are instance attributes).  A path ending in
``()`` names a parameter of the callable before it, e.g.
``gorillaws.Dialer.dial(request_header)``.

The rest of the file checks behaviour that the table alone cannot: discovery
(``dir()``, completion, ``help()``), constant values, defaults, the
same-origin rule and the error callback, through real handshakes on 127.0.0.1.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import os
import pickle
import pydoc
import re
import socket
import subprocess
import sys
import threading
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

from helpers import read_head

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
    "ReadJSON": "gorillaws.read_json",  # deprecated in Go; warns here too
    "WriteJSON": "gorillaws.write_json",
    "Upgrade": "gorillaws.upgrade",
    "NewClient": "gorillaws.new_client",
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

#: gorilla names with no counterpart, on purpose, each with the reason.
GORILLA_OMITTED: Dict[str, str] = {}

NHOOYR: Dict[str, str] = {
    "Accept": "gorillaws.Upgrader.upgrade",
    "AcceptOptions": "gorillaws.Upgrader",
    "AcceptOptions.Subprotocols": "gorillaws.Upgrader.subprotocols",
    "AcceptOptions.InsecureSkipVerify": "gorillaws.Upgrader.insecure_skip_verify",
    "AcceptOptions.OriginPatterns": "gorillaws.Upgrader.origin_patterns",
    "AcceptOptions.CompressionMode": "gorillaws.Upgrader.compression_mode",
    "AcceptOptions.CompressionThreshold": "gorillaws.Upgrader.compression_threshold",
    "Dial": "gorillaws.Dialer.dial",
    "DialOptions": "gorillaws.Dialer",
    "DialOptions.HTTPHeader": "gorillaws.Dialer.dial(request_header)",
    "DialOptions.Host": "gorillaws.Dialer.host",
    "DialOptions.Subprotocols": "gorillaws.Dialer.subprotocols",
    "DialOptions.CompressionMode": "gorillaws.Dialer.compression_mode",
    "DialOptions.CompressionThreshold": "gorillaws.Dialer.compression_threshold",
    "CompressionDisabled": "gorillaws.COMPRESSION_DISABLED",
    "CompressionContextTakeover": "gorillaws.COMPRESSION_CONTEXT_TAKEOVER",
    "CompressionNoContextTakeover": "gorillaws.COMPRESSION_NO_CONTEXT_TAKEOVER",
    "Conn": "gorillaws.Conn",
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
    "CloseError": "gorillaws.CloseError",
    "CloseError.Code": "gorillaws.CloseError.code",
    "CloseError.Reason": "gorillaws.CloseError.text",
    "CloseStatus": "gorillaws.Conn.close_status",
    "CloseError.Error": "gorillaws.CloseError.__str__",
    "CompressionMode": "gorillaws.CompressionMode",
    "MessageType": "gorillaws.MessageType",
    "MessageType.String": "gorillaws.MessageType.__repr__",
    "MessageText": "gorillaws.TEXT_MESSAGE",
    "MessageBinary": "gorillaws.BINARY_MESSAGE",
    "StatusCode": "gorillaws.CloseCode",
    "StatusCode.String": "gorillaws.CloseCode.__repr__",
    "StatusNormalClosure": "gorillaws.CLOSE_NORMAL_CLOSURE",
    "StatusGoingAway": "gorillaws.CLOSE_GOING_AWAY",
    "StatusProtocolError": "gorillaws.CLOSE_PROTOCOL_ERROR",
    "StatusUnsupportedData": "gorillaws.CLOSE_UNSUPPORTED_DATA",
    "StatusNoStatusRcvd": "gorillaws.CLOSE_NO_STATUS_RECEIVED",
    "StatusAbnormalClosure": "gorillaws.CLOSE_ABNORMAL_CLOSURE",
    "StatusInvalidFramePayloadData": "gorillaws.CLOSE_INVALID_FRAME_PAYLOAD_DATA",
    "StatusPolicyViolation": "gorillaws.CLOSE_POLICY_VIOLATION",
    "StatusMessageTooBig": "gorillaws.CLOSE_MESSAGE_TOO_BIG",
    "StatusMandatoryExtension": "gorillaws.CLOSE_MANDATORY_EXTENSION",
    "StatusInternalError": "gorillaws.CLOSE_INTERNAL_SERVER_ERR",
    "StatusServiceRestart": "gorillaws.CLOSE_SERVICE_RESTART",
    "StatusTryAgainLater": "gorillaws.CLOSE_TRY_AGAIN_LATER",
    "StatusBadGateway": "gorillaws.CLOSE_BAD_GATEWAY",
    "StatusTLSHandshake": "gorillaws.CLOSE_TLS_HANDSHAKE",
    "wsjson.Read": "gorillaws.wsjson.read",
    "wsjson.Write": "gorillaws.wsjson.write",
}

#: nhooyr names that cannot exist in Python, each with the reason.
NHOOYR_OMITTED: Dict[str, str] = {
    "DialOptions.HTTPClient": "Go's http.Client performs nhooyr's handshake; Python has no HTTP client "
    "that hands over its socket for an upgrade. What the client configures is a Dialer option: "
    "net_dial, proxy, tls_client_config, jar, handshake_timeout",
}

#: bhojpur/api's websocket is a fork of nhooyr's v1.8: the same names, plus wspb.
BHOJPUR: Dict[str, str] = {
    **NHOOYR,
    "wspb.Read": "gorillaws.wspb.read",
    "wspb.Write": "gorillaws.wspb.write",
}

SEEHUHN: Dict[str, str] = {
    "Handler": "gorillaws.Handler",
    "Handler.AccessOk": "gorillaws.Handler.access_ok",
    "Handler.Handle": "gorillaws.Handler.handle",
    "Handler.ServerName": "gorillaws.Handler.server_name",
    "Handler.ServeHTTP": "gorillaws.Handler.__call__",
    "Conn": "gorillaws.Conn",
    "Conn.ResourceName": "gorillaws.Conn.resource_name",  # in access_ok: UpgradeRequest.target
    "Conn.Origin": "gorillaws.Conn.origin",
    "Conn.RemoteAddr": "gorillaws.Conn.remote_addr",
    "Conn.Protocol": "gorillaws.Conn.protocol",  # in access_ok: UpgradeRequest.protocol
    "Conn.Close": "gorillaws.Conn.close",
    "Conn.GetStatus": "gorillaws.Conn.get_status",
    "Conn.ReceiveBinary": "gorillaws.Conn.receive_binary",
    "Conn.ReceiveMessage": "gorillaws.Conn.next_reader",
    "Conn.ReceiveText": "gorillaws.Conn.receive_text",
    "Conn.SendBinary": "gorillaws.Conn.send_binary",
    "Conn.SendMessage": "gorillaws.Conn.next_writer",
    "Conn.SendText": "gorillaws.Conn.send_text",
    "ErrConnClosed": "gorillaws.CloseError",
    "ErrMessageType": "gorillaws.ProtocolError",
    "ErrStatusCode": "builtins.ValueError",  # from Conn.close for a code that may not be sent
    "ErrTooLarge": "gorillaws.ErrReadLimit",
    "MessageType": "gorillaws.MessageType",
    "MessageType.String": "gorillaws.MessageType.__repr__",
    "Text": "gorillaws.TEXT_MESSAGE",
    "Binary": "gorillaws.BINARY_MESSAGE",
    "Status": "gorillaws.CloseCode",
    "StatusOK": "gorillaws.CLOSE_NORMAL_CLOSURE",
    "StatusGoingAway": "gorillaws.CLOSE_GOING_AWAY",
    "StatusProtocolError": "gorillaws.CLOSE_PROTOCOL_ERROR",
    "StatusUnsupportedType": "gorillaws.CLOSE_UNSUPPORTED_DATA",
    "StatusNotSent": "gorillaws.CLOSE_NO_STATUS_RECEIVED",
    "StatusDropped": "gorillaws.CLOSE_ABNORMAL_CLOSURE",
    "StatusInvalidData": "gorillaws.CLOSE_INVALID_FRAME_PAYLOAD_DATA",
    "StatusPolicyViolation": "gorillaws.CLOSE_POLICY_VIOLATION",
    "StatusTooLarge": "gorillaws.CLOSE_MESSAGE_TOO_BIG",
    "StatusInternalServerError": "gorillaws.CLOSE_INTERNAL_SERVER_ERR",
}

#: seehuhn names that cannot exist in Python, each with the reason.
SEEHUHN_OMITTED: Dict[str, str] = {}

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

#: Every exported nhooyr.io/websocket v1.8 name (and of its wsjson package).
NHOOYR_EXPORTED = """
Accept AcceptOptions AcceptOptions.Subprotocols AcceptOptions.InsecureSkipVerify
AcceptOptions.OriginPatterns AcceptOptions.CompressionMode AcceptOptions.CompressionThreshold
CloseError CloseError.Code CloseError.Reason CloseError.Error CloseStatus
CompressionMode CompressionDisabled CompressionContextTakeover CompressionNoContextTakeover
Conn Conn.Close Conn.CloseNow Conn.CloseRead Conn.Ping Conn.Read Conn.Reader Conn.SetReadLimit
Conn.Subprotocol Conn.Write Conn.Writer
Dial DialOptions DialOptions.HTTPClient DialOptions.HTTPHeader DialOptions.Host
DialOptions.Subprotocols DialOptions.CompressionMode DialOptions.CompressionThreshold
MessageType MessageType.String MessageText MessageBinary NetConn StatusCode StatusCode.String
StatusNormalClosure StatusGoingAway StatusProtocolError StatusUnsupportedData StatusNoStatusRcvd
StatusAbnormalClosure StatusInvalidFramePayloadData StatusPolicyViolation StatusMessageTooBig
StatusMandatoryExtension StatusInternalError StatusServiceRestart StatusTryAgainLater
StatusBadGateway StatusTLSHandshake
wsjson.Read wsjson.Write
""".split()

#: bhojpur/api's websocket package: nhooyr's names plus wspb.
BHOJPUR_EXPORTED = NHOOYR_EXPORTED + ["wspb.Read", "wspb.Write"]
BHOJPUR_OMITTED = NHOOYR_OMITTED

#: Every exported seehuhn.de/go/websocket v1.0 name.
SEEHUHN_EXPORTED = """
ErrConnClosed ErrMessageType ErrStatusCode ErrTooLarge
Conn Conn.ResourceName Conn.Origin Conn.RemoteAddr Conn.Protocol Conn.Close Conn.GetStatus
Conn.ReceiveBinary Conn.ReceiveMessage Conn.ReceiveText Conn.SendBinary Conn.SendMessage Conn.SendText
Handler Handler.AccessOk Handler.Handle Handler.ServerName Handler.ServeHTTP
MessageType MessageType.String Text Binary
Status StatusOK StatusGoingAway StatusProtocolError StatusUnsupportedType StatusNotSent
StatusDropped StatusInvalidData StatusPolicyViolation StatusTooLarge StatusInternalServerError
""".split()

TABLES = ["GORILLA", "NHOOYR", "BHOJPUR", "SEEHUHN"]

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
    assert head in ("gorillaws", "builtins"), path
    obj: Any = gorillaws if head == "gorillaws" else builtins
    for seg in rest:
        if inspect.ismodule(obj) and not hasattr(obj, seg):
            # A submodule imported explicitly, as Go imports wsjson/wspb.
            try:
                obj = importlib.import_module(f"{obj.__name__}.{seg}")
            except ModuleNotFoundError as e:
                if e.name != f"{obj.__name__}.{seg}":
                    raise  # a dependency is missing (protobuf for wspb): say so
                raise LookupError(f"{path}: no {seg!r}") from None
            continue
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


@pytest.mark.parametrize("table", TABLES)
def test_every_mapped_name_resolves(table: str) -> None:
    missing = []
    for go_name, path in globals()[table].items():
        try:
            resolve(path)
        except (LookupError, AttributeError) as e:
            missing.append(f"{go_name} -> {path}: {e}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("table", TABLES)
def test_table_is_complete(table: str) -> None:
    mapped, omitted, exported = (globals()[f"{table}{suffix}"] for suffix in ("", "_OMITTED", "_EXPORTED"))
    covered = set(mapped) | set(omitted)
    assert sorted(set(exported) - covered) == [], "not in the table"
    assert sorted(covered - set(exported)) == [], "not exported by the Go package"
    assert not (set(mapped) & set(omitted))


@pytest.mark.parametrize(
    "table,ref_name",
    [("GORILLA", "gorilla-websocket-api.txt"), ("NHOOYR", "nhooyr-websocket-api.txt"), ("SEEHUHN", "seehuhn-websocket-api.txt")],
)
def test_reference_names_are_in_the_table(table: str, ref_name: str) -> None:
    """Cross-check against the stored API texts of the Go packages, when this checkout has them."""
    ref = os.path.join(REPO, "..", "shared", "reference", ref_name)
    if not os.path.exists(ref):
        if os.environ.get("CI") == "true":  # CI lays shared/ beside the clone: missing is a failure
            pytest.fail(f"{ref_name} not present next to this checkout under CI")
        pytest.skip(f"{ref_name} not present next to this checkout")
    text = open(ref, encoding="utf-8").read()
    names = set(re.findall(r"^func ([A-Z]\w*)\(", text, re.M))
    names |= {f"{t}.{m}" for t, m in re.findall(r"^func \(\w+ \*?(\w+)\) ([A-Z]\w*)\(", text, re.M)}
    names |= set(re.findall(r"^type ([A-Z]\w*)", text, re.M))
    names |= set(re.findall(r"^var ([A-Z]\w*)", text, re.M))
    names |= set(re.findall(r"^\s+(Close[A-Z]\w*|\w+Message)\s+= ", text, re.M))
    if table != "GORILLA":  # constants in const blocks, typed or not
        names |= set(re.findall(r"\b((?:Status|Compression|Message|Err)[A-Z]\w*)\s+(?:\w+\s+)?= ", text))
    covered = set(globals()[table]) | set(globals()[f"{table}_OMITTED"])
    assert sorted(names - covered) == []


def _porting_doc() -> str:
    doc = os.path.join(REPO, "docs", "porting.md")
    assert os.path.exists(doc), "docs/porting.md (the porting table) is missing"
    return open(doc, encoding="utf-8").read()


@pytest.mark.parametrize("table", TABLES)
def test_porting_doc_mentions_every_name(table: str) -> None:
    text = _porting_doc()
    mapped, omitted = globals()[table], globals()[f"{table}_OMITTED"]
    absent = []
    for go_name in sorted(set(mapped) | set(omitted)):
        if go_name.split(".")[-1] not in text:
            absent.append(go_name)
    for go_name, path in mapped.items():
        ours = re.sub(r"\(.*\)$", "", path).split(".")[-1]
        if ours.startswith("__"):
            continue
        if ours not in text:
            absent.append(f"{go_name} -> {ours}")
    assert absent == [], "docs/porting.md does not mention: " + ", ".join(absent)


def test_porting_doc_has_no_missing_rows_and_explains_each_omission() -> None:
    """Nothing is "missing": a name is mapped, or listed as impossible in Python with the reason."""
    text = _porting_doc()
    rows = [line for line in text.splitlines() if line.startswith("|")]
    assert [r for r in rows if re.search(r"\b(missing|not yet|todo)\b", r, re.I)] == []
    m = re.search(r"^## Names that cannot exist in Python\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert m, "porting.md needs the section '## Names that cannot exist in Python'"
    section = m.group(1)
    for table in TABLES:
        for go_name in globals()[f"{table}_OMITTED"]:
            assert f"`{go_name}`" in section, f"{table} {go_name} is not explained in that section"


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
        head, body = read_head(s)
        assert find_head_end(head) > 0, head
        resp = parse_response_head(head)
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
            if find_head_end(read_head(sock)[0]) < 0:
                return  # no request
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


# ---------------------------------------------------------------------------
# Discovery: dir(), tab completion, help()
# ---------------------------------------------------------------------------

#: What a newcomer looks for first; all must show up before anything is used.
DISCOVERABLE = [
    "Upgrader", "Dialer", "dial", "Conn", "MessageReader", "MessageWriter", "Server", "serve", "Hub", "Response", "Headers",
    "MessageType", "CloseCode", "CompressionMode", "PingHandler", "PongHandler", "CloseHandler",
    "read_json", "write_json", "upgrade", "new_client", "COMPRESSION_CONTEXT_TAKEOVER",
]


def _in_fresh_interpreter(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_dir_lists_the_lazy_names_without_loading_them() -> None:
    out = _in_fresh_interpreter(
        "import sys, gorillaws; names = dir(gorillaws); "
        "print(' '.join(names)); print('gorillaws.server' in sys.modules, 'gorillaws.serving' in sys.modules)"
    )
    names, loaded = out.splitlines()
    listed = names.split()
    assert [n for n in DISCOVERABLE if n not in listed] == []
    assert loaded == "False False", "dir() must not import the lazily loaded modules"
    assert listed == sorted(listed)


def test_dir_hides_typing_helpers_and_internals() -> None:
    listed = dir(gorillaws)
    for leak in ("Any", "TYPE_CHECKING", "annotations", "_typing", "_importlib", "_LAZY", "conn", "frames"):
        assert leak not in listed, leak
    assert "Sock" not in listed  # needs Flask: it stays in gorillaws.flask
    assert "__version__" in listed and "__doc__" in listed


def test_tab_completion_offers_the_lazy_names() -> None:
    out = _in_fresh_interpreter(
        "import rlcompleter, gorillaws\n"
        "c = rlcompleter.Completer({'gorillaws': gorillaws})\n"
        "for prefix in ('gorillaws.Up', 'gorillaws.Ser', 'gorillaws.Hu', 'gorillaws.new_'):\n"
        "    i, found = 0, []\n"
        "    while (m := c.complete(prefix, i)) is not None:\n"
        "        found.append(m)\n"
        "        i += 1\n"
        "    print(' '.join(found))\n"
    )
    offered = out.split()
    for name in ("gorillaws.Upgrader(", "gorillaws.UpgradeRequest(", "gorillaws.Server(", "gorillaws.Hub(", "gorillaws.new_client("):
        assert name in offered, (name, offered)


def test_help_shows_the_lazy_classes_and_functions() -> None:
    text = pydoc.render_doc(gorillaws, renderer=pydoc.plaintext)
    for piece in ("class Upgrader", "class Dialer", "class Server", "class Hub", "class MessageType", "dial(", "serve("):
        assert piece in text, piece


def test_every_listed_name_resolves() -> None:
    for name in gorillaws.__all__:
        assert getattr(gorillaws, name) is not None, name
    assert "Sock" not in gorillaws.__all__
    with pytest.raises(AttributeError, match="Dialerr"):
        gorillaws.Dialerr  # type: ignore[attr-defined]  # noqa: B018


# ---------------------------------------------------------------------------
# Names users annotate with, and behaviour as gorilla's
# ---------------------------------------------------------------------------


def test_message_reader_and_writer_are_public_types(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    writer = client.next_writer(gorillaws.BINARY_MESSAGE)
    assert isinstance(writer, gorillaws.MessageWriter)
    assert writer.message_type is gorillaws.MessageType.BINARY
    assert repr(writer) == "<gorillaws.MessageWriter BINARY message, open>"
    with pytest.raises(TypeError, match="live connection"):
        pickle.dumps(writer)
    writer.write(b"abc")
    writer.close()
    assert repr(writer) == "<gorillaws.MessageWriter BINARY message, closed>"
    mt, reader = server.next_reader()
    assert isinstance(reader, gorillaws.MessageReader) and reader.message_type is mt
    assert repr(reader) == "<gorillaws.MessageReader BINARY message, reading>"
    with pytest.raises(TypeError, match="live connection"):
        pickle.dumps(reader)
    assert reader.read() == b"abc"
    assert repr(reader) == "<gorillaws.MessageReader BINARY message, done>"
    for cls in (gorillaws.MessageReader, gorillaws.MessageWriter):
        assert cls.__module__ == "gorillaws.conn" and not cls.__name__.startswith("_")
        assert pickle.loads(pickle.dumps(cls)) is cls  # the class itself pickles by name


@pytest.mark.parametrize("message_type", [gorillaws.PING_MESSAGE, gorillaws.PONG_MESSAGE])
def test_next_writer_sends_ping_and_pong_as_gorilla(conn_pair: Tuple[Conn, Conn], message_type: int) -> None:
    server, client = conn_pair
    got: List[bytes] = []
    if message_type == gorillaws.PING_MESSAGE:
        server.set_ping_handler(got.append)  # no pong back: the client is not reading
    else:
        server.set_pong_handler(got.append)
    with client.next_writer(message_type) as w:
        w.write(b"ab")
        w.write("c")
    client.write_message(gorillaws.TEXT_MESSAGE, b"after")
    assert server.read_message() == (gorillaws.TEXT_MESSAGE, b"after")
    assert got == [b"abc"]


def test_next_writer_sends_a_close_message_as_gorilla(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    w = client.next_writer(gorillaws.CLOSE_MESSAGE)
    w.write(gorillaws.format_close_message(gorillaws.CLOSE_GOING_AWAY, "bye"))
    w.close()
    with pytest.raises(CloseError) as ei:
        server.read_message()
    assert (ei.value.code, ei.value.text) == (1001, "bye")
    with pytest.raises(gorillaws.ErrCloseSent):
        client.write_message(gorillaws.TEXT_MESSAGE, b"too late")


def test_next_writer_control_message_over_125_bytes_is_refused(conn_pair: Tuple[Conn, Conn]) -> None:
    server, client = conn_pair
    w = client.next_writer(gorillaws.PING_MESSAGE)
    w.write(b"x" * 100)
    with pytest.raises(ValueError, match="invalid control frame"):
        w.write(b"x" * 26)
    # Nothing was sent, and the next message can start at once.
    client.write_message(gorillaws.TEXT_MESSAGE, b"next")
    assert server.read_message() == (gorillaws.TEXT_MESSAGE, b"next")
    for bad in (0, 3, 7, 11):
        with pytest.raises(ValueError, match="bad message type"):
            client.next_writer(bad)


@pytest.mark.parametrize(
    "code,text,expected",
    [
        (1000, "", "websocket: close 1000 (normal)"),
        (1001, "bye", "websocket: close 1001 (going away): bye"),
        (1002, "", "websocket: close 1002 (protocol error)"),
        (1003, "", "websocket: close 1003 (unsupported data)"),
        (1005, "", "websocket: close 1005 (no status)"),
        (1006, "unexpected EOF", "websocket: close 1006 (abnormal closure): unexpected EOF"),
        (1007, "", "websocket: close 1007 (invalid payload data)"),
        (1008, "", "websocket: close 1008 (policy violation)"),
        (1009, "", "websocket: close 1009 (message too big)"),
        (1010, "", "websocket: close 1010 (mandatory extension missing)"),
        (1011, "", "websocket: close 1011 (internal server error)"),
        (1012, "", "websocket: close 1012"),
        (1015, "", "websocket: close 1015 (TLS handshake error)"),
        (4000, "custom", "websocket: close 4000: custom"),
    ],
)
def test_close_error_is_worded_as_gorilla(code: int, text: str, expected: str) -> None:
    assert str(CloseError(code, text)) == expected


def test_close_refuses_a_code_that_may_not_be_sent(conn_pair: Tuple[Conn, Conn]) -> None:
    """seehuhn's ErrStatusCode, nhooyr's "status code cannot be set": a ValueError here."""
    server, client = conn_pair
    for code in (999, 1004, 1006, 1015, 1016, 2999, 5000):
        with pytest.raises(ValueError, match="may not be sent"):
            client.close(code)
    assert not client.closed  # nothing was sent
    client.write_message(gorillaws.TEXT_MESSAGE, b"still open")
    assert server.read_message() == (gorillaws.TEXT_MESSAGE, b"still open")


def test_seehuhn_fields_on_the_conn() -> None:
    a, b = socket.socketpair()
    conn = Conn(a, is_server=True, subprotocol="chat", resource_name="/ws?room=1", origin="https://example.com")
    try:
        assert (conn.resource_name, conn.origin, conn.protocol) == ("/ws?room=1", "https://example.com", "chat")
        assert conn.protocol == conn.subprotocol()
    finally:
        conn.close_now()
        b.close()
    a, b = socket.socketpair()
    bare = Conn(a, is_server=False)
    try:
        assert (bare.resource_name, bare.origin, bare.protocol) == ("", None, "")
    finally:
        bare.close_now()
        b.close()


def test_seehuhn_fields_are_set_by_a_real_handshake() -> None:
    """The upgrade and the dial fill resource_name and origin from the opening handshake."""
    from gorillaws.serving import Server

    seen: List[Tuple[str, Optional[str], str]] = []
    done = threading.Event()

    def handler(conn: Conn) -> None:
        seen.append((conn.resource_name, conn.origin, conn.protocol))
        done.set()

    upgrader = gorillaws.Upgrader(subprotocols=["chat"], origin_patterns=["example.com"])
    with Server(handler, "127.0.0.1", 0, upgrader=upgrader) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        conn, _ = gorillaws.Dialer(subprotocols=["chat"]).dial(
            server.url + "/room?id=7", {"Origin": "https://example.com"}
        )
        try:
            assert done.wait(10)
            assert seen == [("/room?id=7", "https://example.com", "chat")]
            assert (conn.resource_name, conn.origin, conn.protocol) == ("/room?id=7", "https://example.com", "chat")
        finally:
            conn.close_now()
            server.shutdown(timeout=2)
