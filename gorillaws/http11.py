"""HTTP/1.1 message heads: parsing and serialising, with size limits.

Pure functions on bytes: nothing here reads a socket.  The I/O layers
(:mod:`gorillaws.server`, :mod:`gorillaws.client`) read until
:func:`find_head_end` finds the blank line (never more than
:data:`MAX_HEAD_SIZE` bytes), then hand the head to
:func:`parse_request_head` or :func:`parse_response_head`.

Parsing is strict where leniency would be a risk: obsolete line folding,
whitespace before a header's colon, control characters and bare CR or LF
are rejected with :class:`HttpParseError`, which carries the HTTP status to
answer with (400, 414 or 431).
"""

from __future__ import annotations

import http
import re
from dataclasses import dataclass, field
from typing import (
    Dict,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

__all__ = [
    "MAX_HEAD_SIZE",
    "MAX_HEADERS",
    "MAX_LINE",
    "HttpParseError",
    "Headers",
    "Request",
    "Response",
    "find_head_end",
    "not_http_reason",
    "parse_request_head",
    "parse_response_head",
    "parse_version",
    "serialize_request",
    "serialize_response",
]

#: Largest request or response head (request/status line, headers and the
#: blank line) the I/O layers read before giving up.
MAX_HEAD_SIZE = 16 * 1024
#: Largest number of header lines accepted in one head.
MAX_HEADERS = 128
#: Longest request line, status line or header line accepted (without CRLF).
MAX_LINE = 8190

# RFC 7230 section 3.2.6: token = 1*tchar.
_TOKEN_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TOKEN_STR_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# field-value characters: VCHAR, obs-text, SP and HTAB.
_VALUE_RE = re.compile(rb"[\t\x20-\x7e\x80-\xff]*")
_VALUE_STR_RE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_VERSION_RE = re.compile(rb"HTTP/([0-9])\.([0-9])")
# request-target: any visible ASCII (the handshake only cares about the path).
_TARGET_RE = re.compile(rb"[\x21-\x7e]+")
# A whole valid header line: a token, a colon, then field-value characters
# (blanks around the value included).  Unambiguous, so matching is linear.
_HEADER_LINE_RE = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)")
# Every valid header line of a block (decoded as latin-1, each line ending in
# CRLF) as a (name, value without its surrounding blanks) pair, for findall.
# The value is words (visible or obs-text characters) separated by blanks,
# so no two ways to match exist and matching stays linear.
_HEADER_PAIRS_RE = re.compile(
    r"(?m)^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*"
    r"((?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?)[ \t]*\r\n"
)

#: What :class:`Headers` is built from: another Headers, a mapping of name to
#: a value or to a list of values (the shape of Go's ``http.Header``), or
#: (name, value) pairs.
HeadersInit = Union[
    "Headers", Mapping[str, str], Mapping[str, Sequence[str]], Iterable[Tuple[str, str]], None
]


class HttpParseError(ValueError):
    """A malformed HTTP head.  ``status`` is the HTTP status to answer with.

    400 (Bad Request) for syntax errors, 414 (URI Too Long) for an overlong
    request line, 431 (Request Header Fields Too Large) for an overlong
    header line or too many headers.  ``not_http`` is set (to what was seen,
    e.g. ``"a TLS record"``) when the bytes were not HTTP at all.
    """

    def __init__(self, msg: str, status: int = 400, not_http: Optional[str] = None) -> None:
        super().__init__(msg)
        self.status = status
        self.not_http = not_http


def _check_name(name: str) -> None:
    if not isinstance(name, str) or not _TOKEN_STR_RE.fullmatch(name):
        raise ValueError(f"invalid HTTP header name: {name!r}")


def _check_value(value: str) -> None:
    if not isinstance(value, str) or not _VALUE_STR_RE.fullmatch(value):
        raise ValueError(f"invalid HTTP header value: {value!r}")


class Headers:
    """Case-insensitive, multi-valued, ordered HTTP headers.

    ``h["Name"]`` returns the first value (``KeyError`` when absent);
    assigning ``h["Name"] = v`` replaces every value of that name with one;
    :meth:`add` appends another value; :meth:`get_all` returns every value.
    :meth:`items` and :meth:`raw_items` give every (name, value) pair in
    insertion order with the names as they were given.  Iterating yields
    each distinct name once (the spelling of its first occurrence).

    Names must be HTTP tokens and values may not contain CR, LF or other
    control characters (except tab): setters raise :class:`ValueError`
    otherwise, so a header can never smuggle in another line.

    Construct from another :class:`Headers`, a mapping (each value a string
    or a list of strings, as in Go's ``http.Header``), or an iterable of
    pairs.  Not thread-safe.
    """

    __slots__ = ("_items", "_index")

    def __init__(self, init: HeadersInit = None) -> None:
        self._items: List[Tuple[str, str]] = []
        # Lowercased name -> values, built on the first lookup; every
        # method that changes _items resets it to None.
        self._index: Optional[Dict[str, List[str]]] = None
        if init is None:
            return
        if isinstance(init, Headers):
            self._items = list(init._items)
            return
        if not isinstance(init, Mapping):
            for name, value in init:
                self.add(name, value)
            return
        for name, values in init.items():
            if isinstance(values, str):
                self.add(name, values)
                continue
            for value in values:
                self.add(name, value)

    # -- reading --------------------------------------------------------

    def _lookup(self) -> Dict[str, List[str]]:
        index = self._index
        if index is None:
            index = {}
            for n, v in self._items:
                key = n.lower()
                values = index.get(key)
                if values is None:
                    index[key] = [v]
                else:
                    values.append(v)
            self._index = index
        return index

    def __getitem__(self, name: str) -> str:
        values = self._lookup().get(name.lower())
        if values is None:
            raise KeyError(name)
        return values[0]

    def get(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The first value of ``name``, or ``default`` when absent."""
        values = self._lookup().get(name.lower())
        return default if values is None else values[0]

    def get_all(self, name: str) -> List[str]:
        """Every value of ``name`` in order (an empty list when absent)."""
        values = self._lookup().get(name.lower())
        return [] if values is None else list(values)

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        return name.lower() in self._lookup()

    def __iter__(self) -> Iterator[str]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self.keys())

    def keys(self) -> List[str]:
        """Each distinct name once, in order of first occurrence."""
        seen: Dict[str, str] = {}
        for n, _ in self._items:
            seen.setdefault(n.lower(), n)
        return list(seen.values())

    def items(self) -> List[Tuple[str, str]]:
        """Every (name, value) pair, in order, repeated names included."""
        return list(self._items)

    def raw_items(self) -> List[Tuple[str, str]]:
        """Every (name, value) pair as stored, for serialising."""
        return list(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            a = [(n.lower(), v) for n, v in self._items]
            b = [(n.lower(), v) for n, v in other._items]
            return a == b
        return NotImplemented

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"

    def copy(self) -> "Headers":
        """A shallow copy."""
        return Headers(self)

    # copy.copy() must not share the item list and its lookup index.
    __copy__ = copy

    # -- writing --------------------------------------------------------

    def add(self, name: str, value: str) -> None:
        """Append a value for ``name``; raises ValueError on a bad name/value."""
        _check_name(name)
        _check_value(value)
        self._items.append((name, value))
        self._index = None

    def __setitem__(self, name: str, value: str) -> None:
        _check_name(name)
        _check_value(value)
        self._index = None
        key = name.lower()
        out: List[Tuple[str, str]] = []
        placed = False
        for n, v in self._items:
            if n.lower() == key:
                if not placed:
                    out.append((name, value))
                    placed = True
            else:
                out.append((n, v))
        if not placed:
            out.append((name, value))
        self._items = out

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        before = len(self._items)
        self._index = None
        self._items = [(n, v) for n, v in self._items if n.lower() != key]
        if len(self._items) == before:
            raise KeyError(name)

    def pop(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """Remove every value of ``name``; return the first, or ``default``."""
        value = self.get(name)
        if value is None:
            return default
        del self[name]
        return value

    def setdefault(self, name: str, value: str) -> str:
        """Set ``name`` to ``value`` unless present; return its first value."""
        current = self.get(name)
        if current is not None:
            return current
        self.add(name, value)
        return value

    def update(self, other: HeadersInit) -> None:
        """Append every pair of ``other`` (values are added, not replaced)."""
        for name, value in Headers(other).raw_items():
            self._items.append((name, value))
        self._index = None


@dataclass
class Request:
    """An HTTP request head: method, request-target, version and headers."""

    method: str
    target: str
    version: str = "HTTP/1.1"
    headers: Headers = field(default_factory=Headers)


@dataclass
class Response:
    """An HTTP response: status, reason phrase, version, headers and body.

    ``body`` is empty after :func:`parse_response_head`; a client that
    wants (part of) a refused handshake's body reads it itself.
    """

    status: int
    reason: str = ""
    version: str = "HTTP/1.1"
    headers: Headers = field(default_factory=Headers)
    body: bytes = b""


def find_head_end(buf: Union[bytes, bytearray], start: int = 0) -> int:
    """Index just past the first CRLFCRLF at or after ``start``, or -1.

    ``start`` lets a reader resume the search after appending data: pass
    the previous buffer length minus 3.
    """
    i = buf.find(b"\r\n\r\n", max(0, start))
    return -1 if i < 0 else i + 4


# Record types that open a TLS record (handshake, alert, change cipher spec,
# application data), followed by the major version byte 3.
_TLS_RECORD_TYPES = (0x14, 0x15, 0x16, 0x17)
_TOKEN_BYTES = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
_STATUS_LINE_RE = re.compile(rb"HTTP/[0-9]\.[0-9] [0-9]{3}(?: [\t\x20-\x7e\x80-\xff]*)?")
_REQUEST_LINE_RE = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+ [\x21-\x7e]+ HTTP/[0-9]\.[0-9]")


def not_http_reason(buf: Union[bytes, bytearray], response: bool) -> Optional[str]:
    """Why the first bytes of a head show it is not HTTP, or None if they may be.

    Lets a reader fail at once on a peer that speaks another protocol (a TLS
    record, an SSH banner, binary data) instead of waiting for a blank line
    that never comes.  Looks at the first bytes and, once it is complete, the
    first line (status line for ``response``, request line otherwise).  A
    bare LF anywhere is refused too: this parser wants CRLF, and a head with
    LF line ends would otherwise wait for a CRLFCRLF that never comes.
    """
    if not buf:
        return None
    first = buf[0]
    if first in _TLS_RECORD_TYPES and (len(buf) < 2 or buf[1] == 3):
        return "a TLS record"
    if buf[:4] == b"SSH-":
        return "an SSH banner"
    if response:
        n = min(len(buf), 5)
        if buf[:n] != b"HTTP/"[:n]:
            return "binary data" if first < 0x20 or first > 0x7E else f"text that is not HTTP ({bytes(buf[:16])!r})"
    elif first not in _TOKEN_BYTES:
        return "binary data" if first < 0x20 or first > 0x7E else f"text that is not HTTP ({bytes(buf[:16])!r})"
    if buf.count(b"\n") != buf.count(b"\r\n"):
        return "a bare LF line end (CRLF required)"
    eol = buf.find(b"\r\n")
    if eol >= 0:
        line_re = _STATUS_LINE_RE if response else _REQUEST_LINE_RE
        if not line_re.fullmatch(buf, 0, eol):
            return f"a first line that is not HTTP ({bytes(buf[: min(eol, 32)])!r})"
    return None


def parse_version(version: str) -> Tuple[int, int]:
    """``"HTTP/1.1"`` -> ``(1, 1)``; raises :class:`HttpParseError` otherwise."""
    m = _VERSION_RE.fullmatch(version.encode("latin-1", "replace"))
    if m is None:
        raise HttpParseError(f"invalid HTTP version: {version!r}")
    return int(m.group(1)), int(m.group(2))


def _split_lines(data: bytes) -> List[bytes]:
    end = find_head_end(data)
    if end >= 0:
        data = data[: end - 4]
    elif data.endswith(b"\r\n"):
        data = data[:-2]
    lines = data.split(b"\r\n")
    # Every CR and LF left must be part of a CRLF the split consumed.
    crlf = len(lines) - 1
    if data.count(b"\r") != crlf or data.count(b"\n") != crlf:
        raise HttpParseError("bare CR or LF in HTTP head")
    return lines


def _parse_headers(lines: List[bytes]) -> Headers:
    if len(lines) > MAX_HEADERS:
        raise HttpParseError("too many HTTP headers", 431)
    headers = Headers()
    if lines:
        # The usual head (every line valid, short): one regex pass over the
        # whole block, C all the way.  Each match is one line from its start,
        # so as many matches as lines means every line was valid.
        block = b"\r\n".join(lines) + b"\r\n"
        if len(block) <= MAX_LINE:
            pairs = _HEADER_PAIRS_RE.findall(block.decode("latin-1"))
            if len(pairs) == len(lines):
                headers._items = pairs
                return headers
    items = headers._items
    match = _HEADER_LINE_RE.fullmatch
    for line in lines:
        m = match(line) if len(line) <= MAX_LINE else None
        if m is not None:
            # The common case, in one regex: a token, a colon and a valid value.
            items.append((m.group(1).decode("ascii"), m.group(2).strip(b" \t").decode("latin-1")))
            continue
        # Otherwise find out what is wrong, and say so.
        if len(line) > MAX_LINE:
            raise HttpParseError("HTTP header line too long", 431)
        if line[:1] in (b" ", b"\t"):
            raise HttpParseError("obsolete line folding in HTTP head")
        name, sep, value = line.partition(b":")
        if not sep:
            raise HttpParseError(f"invalid HTTP header line: {line[:64]!r}")
        if not _TOKEN_RE.fullmatch(name):
            raise HttpParseError(f"invalid HTTP header name: {name[:64]!r}")
        value = value.strip(b" \t")
        if not _VALUE_RE.fullmatch(value):
            raise HttpParseError(f"invalid HTTP header value for {name.decode()}")
        headers._items.append((name.decode("ascii"), value.decode("latin-1")))
    return headers


def parse_request_head(data: bytes) -> Request:
    """Parse a request line and headers.

    ``data`` is the head, normally through the blank line (see
    :func:`find_head_end`); anything after the blank line is ignored.
    Raises :class:`HttpParseError` on a malformed head.
    """
    lines = _split_lines(bytes(data))
    first = lines[0]
    if len(first) > MAX_LINE:
        raise HttpParseError("HTTP request line too long", 414)
    parts = first.split(b" ")
    if len(parts) != 3:
        raise HttpParseError(f"invalid HTTP request line: {first[:64]!r}")
    method, target, version = parts
    if not _TOKEN_RE.fullmatch(method):
        raise HttpParseError(f"invalid HTTP method: {method[:64]!r}")
    if not _TARGET_RE.fullmatch(target):
        raise HttpParseError(f"invalid HTTP request target: {target[:64]!r}")
    if not _VERSION_RE.fullmatch(version):
        raise HttpParseError(f"invalid HTTP version: {version[:64]!r}")
    headers = _parse_headers(lines[1:])
    return Request(
        method.decode("ascii"), target.decode("ascii"), version.decode("ascii"), headers
    )


def parse_response_head(data: bytes) -> Response:
    """Parse a status line and headers.

    ``data`` is the head, normally through the blank line; anything after
    the blank line is ignored and ``body`` is left empty.  Raises
    :class:`HttpParseError` on a malformed head.
    """
    lines = _split_lines(bytes(data))
    first = lines[0]
    if len(first) > MAX_LINE:
        raise HttpParseError("HTTP status line too long", 431)
    version, sep, rest = first.partition(b" ")
    if not sep or not _VERSION_RE.fullmatch(version):
        raise HttpParseError(f"invalid HTTP status line: {first[:64]!r}")
    code, _, reason = rest.partition(b" ")
    if len(code) != 3 or not code.isdigit():
        raise HttpParseError(f"invalid HTTP status code: {code[:64]!r}")
    if not _VALUE_RE.fullmatch(reason):
        raise HttpParseError("invalid HTTP reason phrase")
    headers = _parse_headers(lines[1:])
    return Response(
        int(code), reason.decode("latin-1"), version.decode("ascii"), headers
    )


def _header_block(headers: Headers) -> List[bytes]:
    out = []
    for name, value in headers.raw_items():
        _check_name(name)
        _check_value(value)
        out.append(f"{name}: {value}\r\n".encode("latin-1"))
    return out


def serialize_request(req: Request) -> bytes:
    """The bytes of a request head (request line, headers, blank line).

    Raises :class:`ValueError` if the method, target or a header would
    break the message framing.
    """
    if not _TOKEN_STR_RE.fullmatch(req.method):
        raise ValueError(f"invalid HTTP method: {req.method!r}")
    if not _TARGET_RE.fullmatch(req.target.encode("latin-1", "replace")):
        raise ValueError(f"invalid HTTP request target: {req.target!r}")
    parse_version(req.version)
    parts = [f"{req.method} {req.target} {req.version}\r\n".encode("ascii")]
    parts.extend(_header_block(req.headers))
    parts.append(b"\r\n")
    return b"".join(parts)


def serialize_response(resp: Response) -> bytes:
    """The bytes of a response: status line, headers, blank line and body.

    An empty ``reason`` becomes the standard phrase for the status.  When
    ``body`` is not empty and the headers have neither Content-Length nor
    Transfer-Encoding, a Content-Length header is added.  Raises
    :class:`ValueError` if a field would break the message framing.
    """
    if not 100 <= resp.status <= 999:
        raise ValueError(f"invalid HTTP status: {resp.status!r}")
    reason = resp.reason
    if not reason:
        try:
            reason = http.HTTPStatus(resp.status).phrase
        except ValueError:
            reason = ""
    _check_value(reason)
    parse_version(resp.version)
    headers = resp.headers
    if (
        resp.body
        and "Content-Length" not in headers
        and "Transfer-Encoding" not in headers
    ):
        headers = headers.copy()
        headers.add("Content-Length", str(len(resp.body)))
    parts = [f"{resp.version} {resp.status} {reason}\r\n".encode("latin-1")]
    parts.extend(_header_block(headers))
    parts.append(b"\r\n")
    parts.append(bytes(resp.body))
    return b"".join(parts)
