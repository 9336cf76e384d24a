"""Byte-level tests for gorillaws.http11 (HTTP/1.1 head parsing and serialising)."""

from __future__ import annotations

from typing import Callable, Iterable

import pytest

from gorillaws.http11 import (
    MAX_HEAD_SIZE,
    MAX_HEADERS,
    MAX_LINE,
    Headers,
    HttpParseError,
    Request,
    Response,
    find_head_end,
    not_http_reason,
    parse_request_head,
    parse_response_head,
    parse_version,
    serialize_request,
    serialize_response,
)
from gorillaws.transport import HeadEOF, read_http_head

GOOD_REQUEST = (
    b"GET /chat?x=1 HTTP/1.1\r\n"
    b"Host: example.com:8080\r\n"
    b"Upgrade: websocket\r\n"
    b"Connection: keep-alive, Upgrade\r\n"
    b"Cookie: a=1\r\n"
    b"cookie: b=2\r\n"
    b"X-Empty:\r\n"
    b"X-Spaces: \t padded value \t\r\n"
    b"\r\n"
)


# -- Headers ---------------------------------------------------------------


def test_headers_case_insensitive_and_multi_valued() -> None:
    h = Headers()
    h.add("Set-Cookie", "a=1")
    h.add("set-cookie", "b=2")
    h.add("X-One", "1")
    assert h["SET-COOKIE"] == "a=1"
    assert h.get_all("Set-Cookie") == ["a=1", "b=2"]
    assert "x-one" in h and "X-Two" not in h and 3 not in h
    assert h.items() == [("Set-Cookie", "a=1"), ("set-cookie", "b=2"), ("X-One", "1")]
    assert h.raw_items() == h.items()
    assert list(h) == ["Set-Cookie", "X-One"]
    assert len(h) == 2
    assert h.get("missing") is None and h.get("missing", "d") == "d"
    with pytest.raises(KeyError):
        h["missing"]


def test_headers_setitem_replaces_all_in_place() -> None:
    h = Headers([("A", "1"), ("B", "2"), ("a", "3")])
    h["A"] = "x"
    assert h.items() == [("A", "x"), ("B", "2")]
    h["C"] = "y"
    assert h.items() == [("A", "x"), ("B", "2"), ("C", "y")]
    del h["b"]
    assert h.items() == [("A", "x"), ("C", "y")]
    with pytest.raises(KeyError):
        del h["b"]
    assert h.pop("c") == "y" and h.pop("c", "gone") == "gone"
    assert h.setdefault("A", "z") == "x" and h.setdefault("D", "z") == "z"
    assert h.get_all("D") == ["z"]


def test_headers_construct_from_dict_pairs_and_copy() -> None:
    h1 = Headers({"Origin": "http://a", "Cookie": "c=1"})
    h2 = Headers([("origin", "http://a"), ("cookie", "c=1")])
    assert h1 == h2
    c = h1.copy()
    c.add("X", "1")
    assert "X" not in h1 and "X" in c
    assert Headers(h1) == h1
    h1.update({"X": "2"})
    h1.update(Headers([("X", "3")]))
    assert h1.get_all("x") == ["2", "3"]
    assert (h1 == 5) is False


@pytest.mark.parametrize("name", ["", "Bad Name", "Bad:Name", "Bad\r\nName", "é"])
def test_headers_reject_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        Headers().add(name, "v")
    with pytest.raises(ValueError):
        Headers()[name] = "v"


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\rb", "a\x00b", "a\x7fb"])
def test_headers_reject_injection_in_values(value: str) -> None:
    with pytest.raises(ValueError):
        Headers().add("X", value)
    with pytest.raises(ValueError):
        Headers({"X": value})


# -- find_head_end ----------------------------------------------------------


def test_find_head_end() -> None:
    assert find_head_end(b"GET / HTTP/1.1\r\n\r\nrest") == 18
    assert find_head_end(bytearray(b"GET / HTTP/1.1\r\nA: b\r\n")) == -1
    assert find_head_end(b"") == -1
    buf = b"GET / HTTP/1.1\r\nA: b\r\n\r\n"
    assert find_head_end(buf, start=len(buf) - 6) == len(buf)
    assert find_head_end(buf, start=-10) == len(buf)
    assert find_head_end(buf, start=len(buf)) == -1


def test_limits_constants() -> None:
    assert MAX_HEAD_SIZE == 16 * 1024
    assert MAX_HEADERS == 128
    assert MAX_LINE == 8190


# -- requests ---------------------------------------------------------------


def test_parse_request_head() -> None:
    req = parse_request_head(GOOD_REQUEST + b"\x81\x00trailing frame")
    assert req.method == "GET"
    assert req.target == "/chat?x=1"
    assert req.version == "HTTP/1.1"
    assert req.headers["host"] == "example.com:8080"
    assert req.headers.get_all("Cookie") == ["a=1", "b=2"]
    assert req.headers["X-Empty"] == ""
    assert req.headers["X-Spaces"] == "padded value"
    assert parse_version(req.version) == (1, 1)


def test_parse_request_head_without_blank_line_and_latin1() -> None:
    req = parse_request_head(b"GET / HTTP/1.0\r\nX: caf\xe9\r\n")
    assert req.version == "HTTP/1.0"
    assert req.headers["X"] == "caf\xe9"
    req = parse_request_head(b"GET / HTTP/1.1")
    assert len(req.headers) == 0


MALFORMED_REQUESTS = [
        b"",
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"G(T / HTTP/1.1\r\n\r\n",
        b"GET / HTTX/1.1\r\n\r\n",
        b"GET / HTTP/11\r\n\r\n",
        b"GET /\x01 HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Name: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nName : v\r\n\r\n",
        b"GET / HTTP/1.1\r\n: v\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: v\x00x\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: v\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nA: v\r\n\tfolded\r\n\r\n",
]
MALFORMED_RESPONSES = [
        b"",
        b"HTTP/1.1\r\n\r\n",
        b"HTTP/1.1 20 OK\r\n\r\n",
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 abc OK\r\n\r\n",
        b"HTTP/x 200 OK\r\n\r\n",
        b"ICY 200 OK\r\n\r\n",
        b"HTTP/1.1 200 O\x01K\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nBad\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nA: 1\r\n  fold\r\n\r\n",
]


@pytest.mark.parametrize(
    "parse, head",
    [(parse_request_head, h) for h in MALFORMED_REQUESTS] + [(parse_response_head, h) for h in MALFORMED_RESPONSES],
)
def test_parse_head_rejects_malformed(parse: Callable[[bytes], object], head: bytes) -> None:
    with pytest.raises(HttpParseError) as ei:
        parse(head)
    assert ei.value.status == 400
    assert isinstance(ei.value, ValueError)


def test_parse_request_head_limits() -> None:
    too_many = b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1) + b"\r\n"
    with pytest.raises(HttpParseError) as ei:
        parse_request_head(too_many)
    assert ei.value.status == 431
    parse_request_head(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * MAX_HEADERS + b"\r\n")

    long_header = b"GET / HTTP/1.1\r\nX: " + b"a" * MAX_LINE + b"\r\n\r\n"
    with pytest.raises(HttpParseError) as ei:
        parse_request_head(long_header)
    assert ei.value.status == 431
    ok_header = b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_LINE - 3) + b"\r\n\r\n"
    assert len(parse_request_head(ok_header).headers["X"]) == MAX_LINE - 3

    long_target = b"GET /" + b"a" * MAX_LINE + b" HTTP/1.1\r\n\r\n"
    with pytest.raises(HttpParseError) as ei:
        parse_request_head(long_target)
    assert ei.value.status == 414


def test_serialize_request_roundtrip() -> None:
    req = Request("GET", "/p?q", headers=Headers([("Host", "h"), ("A", "1"), ("a", "2")]))
    data = serialize_request(req)
    assert data == b"GET /p?q HTTP/1.1\r\nHost: h\r\nA: 1\r\na: 2\r\n\r\n"
    back = parse_request_head(data)
    assert back == req


@pytest.mark.parametrize(
    "req",
    [
        Request("G T", "/"),
        Request("GET", "/a b"),
        Request("GET", ""),
        Request("GET", "/", version="HTTP/x"),
    ],
)
def test_serialize_request_rejects(req: Request) -> None:
    with pytest.raises(ValueError):
        serialize_request(req)


def test_serialize_request_rechecks_headers() -> None:
    h = Headers()
    h._items.append(("X", "a\r\nEvil: 1"))  # bypass the setter on purpose
    with pytest.raises(ValueError):
        serialize_request(Request("GET", "/", headers=h))


# -- responses --------------------------------------------------------------


def test_parse_response_head() -> None:
    resp = parse_response_head(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"
    )
    assert resp.status == 101
    assert resp.reason == "Switching Protocols"
    assert resp.version == "HTTP/1.1"
    assert resp.headers["upgrade"] == "websocket"
    assert resp.body == b""


def test_parse_response_head_empty_reason() -> None:
    assert parse_response_head(b"HTTP/1.1 404 \r\n\r\n").reason == ""
    r = parse_response_head(b"HTTP/1.0 200\r\n\r\n")
    assert (r.status, r.reason, r.version) == (200, "", "HTTP/1.0")


def test_parse_response_head_limits() -> None:
    with pytest.raises(HttpParseError) as ei:
        parse_response_head(b"HTTP/1.1 200 " + b"a" * MAX_LINE + b"\r\n\r\n")
    assert ei.value.status == 431
    with pytest.raises(HttpParseError) as ei:
        parse_response_head(b"HTTP/1.1 200 OK\r\n" + b"X: y\r\n" * (MAX_HEADERS + 1))
    assert ei.value.status == 431


def test_serialize_response() -> None:
    resp = Response(403, headers=Headers({"Content-Type": "text/plain"}), body=b"Forbidden\n")
    data = serialize_response(resp)
    assert data == (
        b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\n"
        b"Content-Length: 10\r\n\r\nForbidden\n"
    )
    assert "Content-Length" not in resp.headers  # caller's headers untouched
    back = parse_response_head(data)
    assert back.status == 403 and back.headers["content-length"] == "10"


def test_serialize_response_keeps_explicit_length_and_reason() -> None:
    resp = Response(200, "Fine", headers=Headers({"Content-Length": "2"}), body=b"ok")
    assert serialize_response(resp) == b"HTTP/1.1 200 Fine\r\nContent-Length: 2\r\n\r\nok"
    assert serialize_response(Response(101)) == b"HTTP/1.1 101 Switching Protocols\r\n\r\n"
    assert serialize_response(Response(599)) == b"HTTP/1.1 599 \r\n\r\n"


@pytest.mark.parametrize(
    "resp",
    [Response(99), Response(1000), Response(200, "a\r\nb"), Response(200, version="HTTP/one")],
)
def test_serialize_response_rejects(resp: Response) -> None:
    with pytest.raises(ValueError):
        serialize_response(resp)


def test_parse_version() -> None:
    assert parse_version("HTTP/1.0") == (1, 0)
    assert parse_version("HTTP/2.0") == (2, 0)
    for bad in ("HTTP/1", "http/1.1", "HTTP/1.1 ", "HTTP/\u00e9.1"):
        with pytest.raises(HttpParseError):
            parse_version(bad)


def test_copy_copy_does_not_share_state() -> None:
    import copy

    from gorillaws.http11 import Headers

    original = Headers([("A", "1")])
    assert original.get("a") == "1"  # builds the lookup index
    clone = copy.copy(original)
    clone["A"] = "2"
    clone.add("B", "3")
    assert original.get("a") == "1" and "B" not in original
    assert clone.get_all("a") == ["2"] and clone["b"] == "3"


# ---------------------------------------------------------------------------
# The one head reader and its "this is not HTTP" fast failure
# ---------------------------------------------------------------------------
def chunks_recv(chunks: Iterable[bytes]) -> Callable[[memoryview], int]:
    """A recv(view) that hands out ``chunks`` one per call, then EOF."""
    it = iter(chunks)

    def recv(view: memoryview) -> int:
        data = next(it, b"")
        view[: len(data)] = data
        return len(data)

    return recv


@pytest.mark.parametrize(
    "data, response, why",
    [
        (b"\x16\x03\x01\x02\x00", False, "a TLS record"),
        (b"\x15\x03\x03\x00\x02", True, "a TLS record"),
        (b"SSH-2.0-OpenSSH\r\n", True, "an SSH banner"),
        (b"\x00\x01", False, "binary data"),
        (b"<html>", True, "text that is not HTTP"),
        (b"GET / HTTP/1.1\nHost: x\n", False, "a bare LF line end (CRLF required)"),
        (b"hello world\r\n", False, "a first line that is not HTTP"),
        (b"HTTP/1.1 OK\r\n", True, "a first line that is not HTTP"),
    ],
)
def test_not_http_reason(data: bytes, response: bool, why: str) -> None:
    reason = not_http_reason(data, response)
    assert reason is not None and reason.startswith(why)


@pytest.mark.parametrize(
    "data, response",
    [
        (b"", True),
        (b"H", True),
        (b"HTTP/1.", True),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n", True),
        (b"HTTP/1.1 200\r\n", True),
        (b"G", False),
        (b"GET /chat?x=1 HTTP/1.1\r\nHost: x\r\n", False),
    ],
)
def test_http_prefixes_pass(data: bytes, response: bool) -> None:
    assert not_http_reason(data, response) is None


def test_read_http_head_across_chunks() -> None:
    head, rest = read_http_head(chunks_recv([b"HTTP/1.1 101 OK\r", b"\nA: b\r\n", b"\r", b"\nframes"]), response=True)
    assert head == b"HTTP/1.1 101 OK\r\nA: b\r\n\r\n" and rest == b"frames"


def test_read_http_head_fails_on_a_later_bare_lf() -> None:
    recv = chunks_recv([b"GET / HTTP/1.1\r\n", b"Host: x\n", b"\n"])
    with pytest.raises(HttpParseError, match="bare LF"):
        read_http_head(recv, response=False)


def test_read_http_head_not_http_and_limits() -> None:
    with pytest.raises(HttpParseError) as ei:
        read_http_head(chunks_recv([b"\x16\x03\x01\x00\xa5"]), response=False)
    assert ei.value.status == 400 and ei.value.not_http == "a TLS record"
    big = [b"GET / HTTP/1.1\r\n"] + [b"X: " + b"a" * 4000 + b"\r\n"] * 5
    with pytest.raises(HttpParseError) as ei:
        read_http_head(chunks_recv(big), response=False)
    assert ei.value.status == 431
    with pytest.raises(HeadEOF) as eof:
        read_http_head(chunks_recv([]), response=True)
    assert eof.value.received == 0
    with pytest.raises(HeadEOF) as eof:
        read_http_head(chunks_recv([b"HTTP/1.1 101 OK\r\n"]), response=True)
    assert eof.value.received == 17


def test_headers_from_go_shaped_mapping() -> None:
    h = Headers({"Set-Cookie": ["a=1", "b=2"], "X": "y"})
    assert h.get_all("set-cookie") == ["a=1", "b=2"] and h["X"] == "y"
    with pytest.raises(ValueError):
        Headers({"X": ["ok", "bad\r\nInjected: 1"]})


def test_header_block_regex_agrees_with_the_line_parser() -> None:
    """The one-pass header regex (the usual head) accepts exactly the lines the
    per-line parser accepts, with the same name and trimmed value."""
    import random

    from gorillaws.http11 import _HEADER_LINE_RE, _HEADER_PAIRS_RE

    rng = random.Random(1234)
    alphabet = ["a", "Z", "-", "_", ":", " ", "\t", "x", "\x7f", "\x00", "\x80", "\xff", "é", "(", "\x1f", "~"]
    for _ in range(5000):
        line = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        pairs = _HEADER_PAIRS_RE.findall(line + "\r\n")
        m = _HEADER_LINE_RE.fullmatch(line.encode("latin-1"))
        if m is None:
            assert pairs == [], line
        else:
            want = (m.group(1).decode("ascii"), m.group(2).strip(b" \t").decode("latin-1"))
            assert pairs == [want], line
