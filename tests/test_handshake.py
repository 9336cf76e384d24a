"""Byte-level tests for gorillaws.handshake (RFC 6455 opening handshake)."""

from __future__ import annotations

import base64
import email.message
from typing import Dict, List, Optional, Tuple

import pytest

from gorillaws.exceptions import ErrBadHandshake, HandshakeError
from gorillaws.handshake import (
    accept_key,
    build_request,
    build_response,
    check_client_request,
    check_same_origin,
    check_server_response,
    format_extension,
    generate_key,
    header_tokens,
    origin_allowed,
    parse_extensions,
    parse_subprotocols,
    select_subprotocol,
    token_list_contains,
)
from gorillaws.http11 import (
    Headers,
    Request,
    Response,
    parse_request_head,
    parse_response_head,
)

RFC_KEY = "dGhlIHNhbXBsZSBub25jZQ=="
RFC_ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_accept_key_rfc_example() -> None:
    assert accept_key(RFC_KEY) == RFC_ACCEPT


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for k in keys:
        assert len(base64.b64decode(k, validate=True)) == 16


# -- header tokens -------------------------------------------------------------


def test_header_tokens_over_all_occurrences() -> None:
    h = Headers([("Connection", "keep-alive, Upgrade"), ("connection", " ,close ,, ")])
    assert header_tokens(h, "CONNECTION") == ["keep-alive", "upgrade", "close"]
    assert token_list_contains(h, "connection", "UPGRADE")
    assert not token_list_contains(h, "connection", "websocket")
    assert header_tokens(h, "Missing") == []


def test_header_tokens_other_containers() -> None:
    msg = email.message.Message()
    msg["Connection"] = "Upgrade"
    msg["Connection"] = "x"
    assert header_tokens(msg, "connection") == ["upgrade", "x"]
    assert header_tokens(email.message.Message(), "connection") == []
    plain: Dict[str, str] = {"connection": "Keep-Alive, Upgrade"}
    assert header_tokens(plain, "Connection") == ["keep-alive", "upgrade"]


# -- check_client_request ------------------------------------------------------


def good_request(**changes: Optional[str]) -> Request:
    headers = {
        "Host": "server.example.com",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": RFC_KEY,
        "Sec-WebSocket-Version": "13",
    }
    method = changes.pop("method", None) or "GET"
    version = changes.pop("version", None) or "HTTP/1.1"
    for k, v in changes.items():
        name = k.replace("_", "-")
        if v is None:
            headers.pop(name, None)
        else:
            headers[name] = v
    return Request(method, "/chat", version, Headers(headers))


def test_check_client_request_ok() -> None:
    assert check_client_request(good_request()) == RFC_KEY
    # Tokens are case-insensitive and may sit in lists.
    req = good_request(Connection="keep-alive, UPGRADE", Upgrade="WebSocket")
    assert check_client_request(req) == RFC_KEY
    req = parse_request_head(
        b"GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n"
        b"Connection: upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key:  " + RFC_KEY.encode() + b" \r\n\r\n"
    )
    assert check_client_request(req) == RFC_KEY
    assert check_client_request(good_request(version="HTTP/2.0")) == RFC_KEY


def rejection(req: Request) -> HandshakeError:
    with pytest.raises(HandshakeError) as ei:
        check_client_request(req)
    assert not isinstance(ei.value, ErrBadHandshake)
    return ei.value


@pytest.mark.parametrize("method", ["POST", "HEAD", "get", "PUT"])
def test_non_get_is_405_with_allow(method: str) -> None:
    err = rejection(good_request(method=method))
    assert err.status == 405
    assert err.headers == {"Allow": "GET"}


@pytest.mark.parametrize("version", ["HTTP/1.0", "HTTP/0.9", "garbage"])
def test_old_http_version_is_400(version: str) -> None:
    assert rejection(good_request(version=version)).status == 400


@pytest.mark.parametrize(
    "changes",
    [
        {"Upgrade": None},
        {"Upgrade": "h2c"},
        {"Upgrade": "websocket2"},
        {"Connection": None},
        {"Connection": "keep-alive"},
        {"Connection": "upgraded"},
    ],
)
def test_missing_upgrade_tokens_are_400(changes: Dict[str, Optional[str]]) -> None:
    err = rejection(good_request(**changes))
    assert err.status == 400
    assert err.headers == {}


@pytest.mark.parametrize("version", [None, "8", "12", "14", "13, 8", "", "thirteen"])
def test_bad_websocket_version_is_426(version: Optional[str]) -> None:
    err = rejection(good_request(Sec_WebSocket_Version=version))
    assert err.status == 426
    assert err.headers == {"Sec-WebSocket-Version": "13"}


@pytest.mark.parametrize(
    "key",
    [
        None,
        "",
        "not base64!",
        base64.b64encode(b"x" * 15).decode(),
        base64.b64encode(b"x" * 17).decode(),
        "dGhlIHNhbXBsZSBub25jZQ",  # missing padding
        "dGhlIHNhbXBsZSBub25jZQ==\u00e9",
    ],
)
def test_bad_key_is_400(key: Optional[str]) -> None:
    assert rejection(good_request(Sec_WebSocket_Key=key)).status == 400


def test_repeated_key_is_400() -> None:
    req = good_request()
    req.headers.add("Sec-WebSocket-Key", RFC_KEY)
    assert rejection(req).status == 400


# -- subprotocols ----------------------------------------------------------------


def test_parse_subprotocols() -> None:
    h = Headers([("Sec-WebSocket-Protocol", "chat, Superchat"), ("sec-websocket-protocol", " v2 ,,")])
    assert parse_subprotocols(h) == ["chat", "Superchat", "v2"]
    assert parse_subprotocols(Headers()) == []


def test_select_subprotocol_uses_server_order() -> None:
    assert select_subprotocol(["b", "a"], ["a", "b"]) == "b"
    assert select_subprotocol(["c", "a"], ["a", "b"]) == "a"
    assert select_subprotocol(["c"], ["a", "b"]) == ""
    assert select_subprotocol([], ["a"]) == ""
    assert select_subprotocol(["Chat"], ["chat"]) == ""  # case-sensitive


# -- extensions ------------------------------------------------------------------


def ext_headers(*values: str) -> Headers:
    return Headers([("Sec-WebSocket-Extensions", v) for v in values])


def test_parse_extensions_grammar() -> None:
    h = ext_headers(
        "permessage-deflate; client_max_window_bits, permessage-deflate;"
        ' server_max_window_bits="10" ; client_no_context_takeover',
        "x-foo;a=1;b",
        " , ",
    )
    assert parse_extensions(h) == [
        ("permessage-deflate", [("client_max_window_bits", None)]),
        (
            "permessage-deflate",
            [("server_max_window_bits", "10"), ("client_no_context_takeover", None)],
        ),
        ("x-foo", [("a", "1"), ("b", None)]),
    ]
    assert parse_extensions(Headers()) == []
    assert parse_extensions(ext_headers('x; p = "a\\b"')) == [("x", [("p", "ab")])]


@pytest.mark.parametrize(
    "value",
    [
        "permessage-deflate;",
        "permessage-deflate; =1",
        "permessage-deflate; a=",
        'permessage-deflate; a="10',
        'permessage-deflate; a="1 0"',
        'permessage-deflate; a=""',
        'permessage-deflate; a="\\',
        "permessage-deflate a",
        "permessage-deflate; a=1 b",
        "per message",
        ";a",
        "x; a=@",
    ],
)
def test_parse_extensions_rejects_malformed(value: str) -> None:
    with pytest.raises(ValueError):
        parse_extensions(ext_headers(value))


def test_format_extension() -> None:
    assert format_extension("permessage-deflate", []) == "permessage-deflate"
    s = format_extension(
        "permessage-deflate", [("server_no_context_takeover", None), ("client_max_window_bits", "10")]
    )
    assert s == "permessage-deflate; server_no_context_takeover; client_max_window_bits=10"
    assert parse_extensions(ext_headers(s)) == [
        ("permessage-deflate", [("server_no_context_takeover", None), ("client_max_window_bits", "10")])
    ]
    assert format_extension("x", [("p", 'a "b"')]) == 'x; p="a \\"b\\""'
    for bad in [("bad name", []), ("x", [("bad name", None)]), ("x", [("p", "a\r\nb")])]:
        with pytest.raises(ValueError):
            format_extension(bad[0], bad[1])  # type: ignore[arg-type]


# -- origins ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "origin,host,ok",
    [
        (None, "example.com", True),
        ("http://example.com", "example.com", True),
        ("https://EXAMPLE.com:8443", "example.COM:8443", True),
        ("http://example.com:8080", "example.com", False),
        ("http://evil.com", "example.com", False),
        ("null", "example.com", False),
        ("", "example.com", False),
        ("example.com", "example.com", False),
        ("http://[::1", "example.com", False),
    ],
)
def test_check_same_origin(origin: Optional[str], host: str, ok: bool) -> None:
    assert check_same_origin(origin, host) is ok


@pytest.mark.parametrize(
    "origin,patterns,ok",
    [
        (None, [], True),
        ("http://api.example.com", [], True),  # request host always allowed
        ("http://other.com", [], False),
        ("http://other.com", ["other.com"], True),
        ("http://OTHER.com", ["Other.COM"], True),
        ("http://a.other.com", ["*.other.com"], True),
        ("http://other.com", ["*.other.com"], False),
        ("http://other.com:3000", ["other.com"], False),
        ("http://other.com:3000", ["other.com:*"], True),
        ("https://a.other.com", ["https://*.other.com"], True),
        ("http://a.other.com", ["https://*.other.com"], False),
        ("http://x.org", ["a.com", "x.org"], True),
        ("null", ["*"], False),
        ("http://[::1", ["*"], False),
    ],
)
def test_origin_allowed(origin: Optional[str], patterns: List[str], ok: bool) -> None:
    assert origin_allowed(origin, "api.example.com", patterns) is ok


# -- build_response --------------------------------------------------------------


def test_build_response_minimal() -> None:
    data = build_response(accept_key(RFC_KEY))
    assert data == (
        b"HTTP/1.1 101 Switching Protocols\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
        b"\r\n"
    )


def test_build_response_full() -> None:
    extra = Headers([("Set-Cookie", "a=1"), ("Set-Cookie", "b=2")])
    data = build_response(RFC_ACCEPT, "chat", "permessage-deflate", extra)
    resp = parse_response_head(data)
    assert resp.status == 101
    assert resp.headers["Sec-WebSocket-Protocol"] == "chat"
    assert resp.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    assert resp.headers.get_all("set-cookie") == ["a=1", "b=2"]
    # The protocol may come from the extra headers alone (gorilla's responseHeader).
    data = build_response(RFC_ACCEPT, extra=Headers({"Sec-WebSocket-Protocol": "v1"}))
    assert parse_response_head(data).headers.get_all("Sec-WebSocket-Protocol") == ["v1"]


@pytest.mark.parametrize(
    "name",
    ["Upgrade", "connection", "Sec-WebSocket-Accept", "sec-websocket-extensions"],
)
def test_build_response_refuses_conflicting_headers(name: str) -> None:
    with pytest.raises(ValueError):
        build_response(RFC_ACCEPT, extra=Headers({name: "x"}))


def test_build_response_refuses_two_subprotocols() -> None:
    with pytest.raises(ValueError):
        build_response(RFC_ACCEPT, "chat", extra=Headers({"Sec-WebSocket-Protocol": "x"}))


# -- build_request ---------------------------------------------------------------


def test_build_request() -> None:
    data = build_request("example.com:8080", "/chat?x=1", RFC_KEY)
    assert data == (
        b"GET /chat?x=1 HTTP/1.1\r\n"
        b"Host: example.com:8080\r\n"
        b"Upgrade: websocket\r\n"
        b"Connection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"Sec-WebSocket-Version: 13\r\n"
        b"\r\n"
    )
    req = parse_request_head(data)
    assert check_client_request(req) == RFC_KEY


def test_build_request_full_and_host_override() -> None:
    extra = Headers([("Host", "virtual.example"), ("Origin", "http://o"), ("Cookie", "c=1")])
    data = build_request("1.2.3.4", "/", RFC_KEY, ["chat", "v2"], "permessage-deflate", extra)
    req = parse_request_head(data)
    assert req.headers.get_all("Host") == ["virtual.example"]
    assert req.headers["Sec-WebSocket-Protocol"] == "chat, v2"
    assert parse_subprotocols(req.headers) == ["chat", "v2"]
    assert req.headers["Sec-WebSocket-Extensions"] == "permessage-deflate"
    assert req.headers["Origin"] == "http://o" and req.headers["Cookie"] == "c=1"
    assert "Host" in extra  # caller's headers untouched
    data = build_request("h", "/", RFC_KEY, extra=Headers({"Sec-WebSocket-Protocol": "p"}))
    assert parse_subprotocols(parse_request_head(data).headers) == ["p"]


@pytest.mark.parametrize(
    "name",
    [
        "Upgrade",
        "Connection",
        "Sec-WebSocket-Key",
        "sec-websocket-version",
        "Sec-WebSocket-Extensions",
    ],
)
def test_build_request_rejects_duplicate_headers(name: str) -> None:
    with pytest.raises(ValueError, match="duplicate header"):
        build_request("h", "/", RFC_KEY, extra=Headers({name: "x"}))


def test_build_request_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        build_request("h", "/", RFC_KEY, ["a"], extra=Headers({"Sec-WebSocket-Protocol": "b"}))
    with pytest.raises(ValueError):
        build_request("h", "/a b", RFC_KEY)
    with pytest.raises(ValueError):
        build_request("h", "", RFC_KEY)


# -- check_server_response -------------------------------------------------------


def server_response(status: int = 101, **headers: Optional[str]) -> Response:
    base: Dict[str, Optional[str]] = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": RFC_ACCEPT,
    }
    base.update({k.replace("_", "-"): v for k, v in headers.items()})
    pairs: List[Tuple[str, str]] = [(k, v) for k, v in base.items() if v is not None]
    return Response(status, headers=Headers(pairs))


def test_check_server_response_ok() -> None:
    assert check_server_response(server_response(), RFC_KEY, [], []) == ("", [])
    resp = parse_response_head(build_response(RFC_ACCEPT, "chat", "permessage-deflate; server_no_context_takeover"))
    proto, exts = check_server_response(resp, RFC_KEY, ["x", "chat"], ["permessage-deflate; client_max_window_bits"])
    assert proto == "chat"
    assert exts == [("permessage-deflate", [("server_no_context_takeover", None)])]
    resp = server_response(Upgrade="WebSocket", Connection="keep-alive, upgrade")
    assert check_server_response(resp, RFC_KEY, [], []) == ("", [])


@pytest.mark.parametrize(
    "resp,protos,exts",
    [
        (server_response(200), [], []),
        (server_response(302, Location="/elsewhere"), [], []),
        (server_response(Upgrade=None), [], []),
        (server_response(Upgrade="h2c"), [], []),
        (server_response(Connection=None), [], []),
        (server_response(Connection="close"), [], []),
        (server_response(Sec_WebSocket_Accept=None), [], []),
        (server_response(Sec_WebSocket_Accept=accept_key(generate_key())), [], []),
        (server_response(Sec_WebSocket_Protocol="chat"), [], []),
        (server_response(Sec_WebSocket_Protocol="chat"), ["Chat"], []),
        (server_response(Sec_WebSocket_Protocol="a, b"), ["a", "b"], []),
        (server_response(Sec_WebSocket_Extensions="permessage-deflate"), [], []),
        (server_response(Sec_WebSocket_Extensions="x-other"), [], ["permessage-deflate"]),
        (server_response(Sec_WebSocket_Extensions="permessage-deflate;"), [], ["permessage-deflate"]),
        (
            server_response(Sec_WebSocket_Extensions="permessage-deflate, permessage-deflate"),
            [],
            ["permessage-deflate"],
        ),
    ],
)
def test_check_server_response_rejects(resp: Response, protos: List[str], exts: List[str]) -> None:
    with pytest.raises(ErrBadHandshake) as ei:
        check_server_response(resp, RFC_KEY, protos, exts)
    assert ei.value.response is resp
    assert ei.value.status == resp.status


def test_check_server_response_two_accept_headers() -> None:
    resp = server_response()
    resp.headers.add("Sec-WebSocket-Accept", RFC_ACCEPT)
    with pytest.raises(ErrBadHandshake):
        check_server_response(resp, RFC_KEY, [], [])
