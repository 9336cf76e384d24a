"""The WebSocket opening handshake (RFC 6455 sections 4.1 and 4.2), pure.

Server side: :func:`check_client_request` validates an upgrade request and
returns its key, :func:`accept_key` computes the answer,
:func:`select_subprotocol` picks a subprotocol, :func:`check_same_origin`
and :func:`origin_allowed` decide about cross-origin requests, and
:func:`build_response` writes the 101 response.

Client side: :func:`generate_key`, :func:`build_request`, and
:func:`check_server_response`, which validates the server's answer.

Header values are parsed by :func:`header_tokens`, :func:`parse_subprotocols`
and :func:`parse_extensions` (the RFC 7692 extension grammar, including
quoted-string parameter values).  Nothing here touches a socket.
"""

from __future__ import annotations

import base64
import binascii
import email.message
import fnmatch
import hashlib
import os
import re
from typing import List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlsplit

from .exceptions import ErrBadHandshake, HandshakeError
from .http11 import Headers, HttpParseError, Request, Response, _check_value, parse_version

__all__ = [
    "GUID",
    "ExtensionParams",
    "Extension",
    "generate_key",
    "accept_key",
    "header_tokens",
    "valid_token",
    "token_list_contains",
    "check_client_request",
    "parse_subprotocols",
    "select_subprotocol",
    "parse_extensions",
    "format_extension",
    "check_same_origin",
    "origin_allowed",
    "build_response",
    "build_request",
    "check_server_response",
]

#: The GUID RFC 6455 appends to the key before hashing.
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

ExtensionParams = List[Tuple[str, Optional[str]]]
Extension = Tuple[str, ExtensionParams]

#: Anything that holds request/response headers: our :class:`Headers`,
#: the stdlib's :class:`email.message.Message` (``http.server``,
#: ``http.client``), or a plain mapping of name to value.
HeaderSource = Union[Headers, email.message.Message, Mapping[str, str]]

_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _get_all(headers: HeaderSource, name: str) -> List[str]:
    """Every value of header ``name`` in any supported header container."""
    if isinstance(headers, Headers):
        values: List[str] = headers.get_all(name)
        return values
    if isinstance(headers, email.message.Message):
        return [str(v) for v in (headers.get_all(name) or [])]
    key = name.lower()
    return [v for k, v in headers.items() if k.lower() == key]


def valid_token(s: str) -> bool:
    """Whether ``s`` is an HTTP token (RFC 9110): what a subprotocol name must be."""
    return bool(_TOKEN_RE.fullmatch(s))


def generate_key() -> str:
    """A fresh random Sec-WebSocket-Key: 16 random bytes, base64-encoded."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept value answering ``key`` (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def header_tokens(headers: HeaderSource, name: str) -> List[str]:
    """The comma-separated elements of every ``name`` header.

    Elements are trimmed and lowercased; empty ones are dropped.  Used for
    Connection, Upgrade and Sec-WebSocket-Version, whose tokens compare
    case-insensitively.
    """
    out: List[str] = []
    for value in _get_all(headers, name):
        for part in value.split(","):
            part = part.strip(" \t").lower()
            if part:
                out.append(part)
    return out


def token_list_contains(headers: HeaderSource, name: str, token: str) -> bool:
    """Whether any ``name`` header lists ``token`` (case-insensitively)."""
    token = token.lower()
    for value in _get_all(headers, name):
        value = value.lower()
        # A value that is the token alone (the usual "Upgrade: websocket")
        # needs no splitting; one that does not contain it cannot list it.
        if value == token or (token in value and token in [p.strip(" \t") for p in value.split(",")]):
            return True
    return False


def _valid_key(key: str) -> bool:
    try:
        raw = base64.b64decode(key.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return False
    return len(raw) == 16


def check_client_request(req: Request) -> str:
    """Validate a client's opening handshake; return its Sec-WebSocket-Key.

    Raises :class:`HandshakeError` whose ``status`` (and ``headers``) say
    how to answer:

    * 405 with ``Allow: GET`` when the method is not GET;
    * 400 when the HTTP version is older than 1.1;
    * 400 when Upgrade lacks ``websocket`` or Connection lacks ``upgrade``;
    * 426 with ``Sec-WebSocket-Version: 13`` when the version is not 13;
    * 400 when Sec-WebSocket-Key is missing, repeated, or does not
      base64-decode to 16 bytes.

    Origins are not checked here (see :func:`check_same_origin`).
    """
    if req.method != "GET":
        raise HandshakeError(
            "websocket: the client is not using the GET method", 405, {"Allow": "GET"}
        )
    try:
        version = (1, 1) if req.version == "HTTP/1.1" else parse_version(req.version)
    except HttpParseError:
        version = (0, 0)
    if version < (1, 1):
        raise HandshakeError("websocket: HTTP/1.1 or later is required", 400)
    h = req.headers
    if not token_list_contains(h, "Connection", "upgrade"):
        raise HandshakeError(
            "websocket: the client is not using the websocket protocol: "
            "'upgrade' token not found in 'Connection' header",
            400,
        )
    if not token_list_contains(h, "Upgrade", "websocket"):
        raise HandshakeError(
            "websocket: the client is not using the websocket protocol: "
            "'websocket' token not found in 'Upgrade' header",
            400,
        )
    if header_tokens(h, "Sec-WebSocket-Version") != ["13"]:
        raise HandshakeError(
            "websocket: unsupported version: 13 not found in 'Sec-WebSocket-Version' header",
            426,
            {"Sec-WebSocket-Version": "13"},
        )
    keys = h.get_all("Sec-WebSocket-Key")
    if len(keys) != 1 or not _valid_key(keys[0].strip()):
        raise HandshakeError(
            "websocket: not a websocket handshake: 'Sec-WebSocket-Key' header "
            "is missing or invalid",
            400,
        )
    key: str = keys[0].strip()
    return key


def parse_subprotocols(headers: HeaderSource) -> List[str]:
    """The subprotocols a client offers in Sec-WebSocket-Protocol, in order.

    Every occurrence of the header is read; elements are trimmed and keep
    their case (subprotocol names are case-sensitive); empty ones are dropped.
    """
    out: List[str] = []
    for value in _get_all(headers, "Sec-WebSocket-Protocol"):
        for part in value.split(","):
            part = part.strip(" \t")
            if part:
                out.append(part)
    return out


def select_subprotocol(server_prefs: Sequence[str], client_offer: Sequence[str]) -> str:
    """The first of ``server_prefs`` that the client offered, or ``""``."""
    offered = set(client_offer)
    for proto in server_prefs:
        if proto in offered:
            return proto
    return ""


class _Scanner:
    """A cursor over one header value for the extension grammar."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t":
            self.pos += 1

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def token(self) -> str:
        m = _TOKEN_RE.match(self.text, self.pos)
        if m is None:
            raise ValueError(f"expected a token at {self.pos} in {self.text!r}")
        self.pos = m.end()
        return m.group(0)

    def quoted(self) -> str:
        # Opening quote already seen at self.pos.
        self.pos += 1
        out: List[str] = []
        while True:
            if self.pos >= len(self.text):
                raise ValueError(f"unterminated quoted string in {self.text!r}")
            c = self.text[self.pos]
            self.pos += 1
            if c == '"':
                return "".join(out)
            if c == "\\":
                if self.pos >= len(self.text):
                    raise ValueError(f"unterminated quoted string in {self.text!r}")
                c = self.text[self.pos]
                self.pos += 1
            out.append(c)


def parse_extensions(headers: HeaderSource) -> List[Extension]:
    """Parse every Sec-WebSocket-Extensions header (RFC 6455 9.1, RFC 7692).

    Returns ``[(name, [(param, value_or_None), ...]), ...]`` in order.
    A parameter value may be a token or a quoted-string; a quoted value
    must unescape to a token (RFC 6455 9.1).  Names keep their case.
    Raises :class:`ValueError` on malformed input (including empty list
    elements between commas, which are tolerated only as pure whitespace).
    """
    out: List[Extension] = []
    for value in _get_all(headers, "Sec-WebSocket-Extensions"):
        s = _Scanner(value)
        while True:
            s.skip_ws()
            if s.peek() == ",":  # tolerate empty list elements
                s.pos += 1
                continue
            if s.peek() == "":
                break
            name = s.token()
            params: ExtensionParams = []
            while True:
                s.skip_ws()
                if s.peek() != ";":
                    break
                s.pos += 1
                s.skip_ws()
                pname = s.token()
                s.skip_ws()
                pvalue: Optional[str] = None
                if s.peek() == "=":
                    s.pos += 1
                    s.skip_ws()
                    if s.peek() == '"':
                        pvalue = s.quoted()
                        if not _TOKEN_RE.fullmatch(pvalue):
                            raise ValueError(
                                f"quoted extension parameter is not a token: {pvalue!r}"
                            )
                    else:
                        pvalue = s.token()
                params.append((pname, pvalue))
            out.append((name, params))
            s.skip_ws()
            c = s.peek()
            if c == ",":
                s.pos += 1
            elif c != "":
                raise ValueError(f"unexpected {c!r} in extension header {value!r}")
    return out


def format_extension(name: str, params: Sequence[Tuple[str, Optional[str]]]) -> str:
    """One Sec-WebSocket-Extensions element: ``name; p=v; flag``.

    Values that are not tokens are written as quoted strings.  Raises
    :class:`ValueError` when the name or a parameter name is not a token.
    """
    if not _TOKEN_RE.fullmatch(name):
        raise ValueError(f"invalid extension name: {name!r}")
    parts = [name]
    for pname, pvalue in params:
        if not _TOKEN_RE.fullmatch(pname):
            raise ValueError(f"invalid extension parameter name: {pname!r}")
        if pvalue is None:
            parts.append(pname)
        elif _TOKEN_RE.fullmatch(pvalue):
            parts.append(f"{pname}={pvalue}")
        else:
            if any(c in pvalue for c in "\r\n\x00"):
                raise ValueError(f"invalid extension parameter value: {pvalue!r}")
            escaped = pvalue.replace("\\", "\\\\").replace('"', '\\"')
            parts.append(f'{pname}="{escaped}"')
    return "; ".join(parts)


def _origin_parts(origin: str) -> Optional[Tuple[str, str]]:
    """(scheme, host[:port]) of an Origin value, or None if unparsable."""
    try:
        u = urlsplit(origin)
    except ValueError:
        return None
    if not u.scheme or not u.netloc:
        return None
    return u.scheme.lower(), u.netloc.lower()


def check_same_origin(origin: Optional[str], host: str) -> bool:
    """gorilla's default CheckOrigin: same-origin requests only.

    True when there is no Origin header (``None``), or when the origin's
    host (with port, if any) equals ``host`` (the request's Host header),
    compared case-insensitively.  An unparsable origin (including
    ``"null"``) is refused.
    """
    if origin is None:
        return True
    parts = _origin_parts(origin)
    if parts is None:
        return False
    return parts[1] == host.strip().lower()


def origin_allowed(origin: Optional[str], host: str, patterns: Sequence[str]) -> bool:
    """nhooyr's OriginPatterns check.

    True when there is no Origin header, when the origin's host equals the
    request ``host`` (the request host is always allowed), or when one of
    ``patterns`` matches.  Patterns are shell-style globs (``*``, ``?``,
    ``[...]``) matched case-insensitively against the origin's host, e.g.
    ``"*.example.com"``; a pattern containing ``"://"`` is matched against
    ``scheme://host`` instead, e.g. ``"https://*.example.com"``.
    """
    if origin is None:
        return True
    parts = _origin_parts(origin)
    if parts is None:
        return False
    scheme, ohost = parts
    if ohost == host.strip().lower():
        return True
    for pattern in patterns:
        p = pattern.lower()
        target = f"{scheme}://{ohost}" if "://" in p else ohost
        if fnmatch.fnmatchcase(target, p):
            return True
    return False


def _add_field(parts: List[str], name: str, value: str) -> None:
    """Append ``name: value`` CRLF to a head being built, when ``value`` is not empty."""
    if value:
        _check_value(value)
        parts += [name, ": ", value, "\r\n"]


_RESPONSE_RESERVED = (
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Accept",
    "Sec-WebSocket-Extensions",
)


def build_response(
    accept: str,
    subprotocol: str = "",
    extensions: str = "",
    extra: Optional[Headers] = None,
) -> bytes:
    """The bytes of a ``101 Switching Protocols`` handshake response.

    ``accept`` is :func:`accept_key` of the client's key; ``subprotocol``
    and ``extensions`` (a formatted Sec-WebSocket-Extensions value) are
    added when not empty; ``extra`` headers (cookies, ...) follow.

    Raises :class:`ValueError` when ``extra`` holds Upgrade, Connection,
    Sec-WebSocket-Accept or Sec-WebSocket-Extensions, or a
    Sec-WebSocket-Protocol while ``subprotocol`` is also given: those are
    the library's to write.
    """
    if extra is None or (isinstance(extra, Headers) and not extra._items):
        # No extra headers (the usual case): write the head directly; only
        # the values that come from outside need checking.
        _check_value(accept)
        parts = ["HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Accept: ", accept, "\r\n"]
        _add_field(parts, "Sec-WebSocket-Protocol", subprotocol)
        _add_field(parts, "Sec-WebSocket-Extensions", extensions)
        parts.append("\r\n")
        return "".join(parts).encode("latin-1")
    extra = extra or Headers()
    for name in _RESPONSE_RESERVED:
        if name in extra:
            raise ValueError(f"websocket: application specific '{name}' header is unsupported")
    if subprotocol and "Sec-WebSocket-Protocol" in extra:
        raise ValueError("websocket: duplicate header not allowed: Sec-WebSocket-Protocol")
    h = Headers()
    h.add("Upgrade", "websocket")
    h.add("Connection", "Upgrade")
    h.add("Sec-WebSocket-Accept", accept)
    if subprotocol:
        h.add("Sec-WebSocket-Protocol", subprotocol)
    if extensions:
        h.add("Sec-WebSocket-Extensions", extensions)
    h.update(extra)
    lines = ["HTTP/1.1 101 Switching Protocols\r\n"]
    lines.extend(f"{n}: {v}\r\n" for n, v in h.raw_items())
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


_BAD_TARGET_RE = re.compile("[ \t\r\n\x00]")

_REQUEST_RESERVED = (
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
)


def build_request(
    host: str,
    target: str,
    key: str,
    subprotocols: Sequence[str] = (),
    extensions: str = "",
    extra: Optional[Headers] = None,
) -> bytes:
    """The bytes of a client's opening handshake request.

    ``host`` is the Host header (``extra`` may override it with its own
    Host), ``target`` the request-target (path and query), ``key`` from
    :func:`generate_key`.  ``subprotocols`` are offered in one
    Sec-WebSocket-Protocol header; ``extensions`` is a formatted
    Sec-WebSocket-Extensions value.  ``extra`` headers (Origin, Cookie,
    Authorization, ...) follow.

    Raises :class:`ValueError` when ``extra`` holds Upgrade, Connection,
    Sec-WebSocket-Key, Sec-WebSocket-Version or Sec-WebSocket-Extensions
    ("duplicate header not allowed"), when it holds Sec-WebSocket-Protocol
    while ``subprotocols`` is also given, or when a value would break the
    message framing.
    """
    if extra is None or (isinstance(extra, Headers) and not extra._items):
        # No extra headers (the usual case): write the head directly; only
        # the values that come from outside need checking.
        if not target or _BAD_TARGET_RE.search(target):
            raise ValueError(f"invalid request target: {target!r}")
        _check_value(host)
        _check_value(key)
        parts = ["GET ", target, " HTTP/1.1\r\nHost: ", host,
                 "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ", key,
                 "\r\nSec-WebSocket-Version: 13\r\n"]
        _add_field(parts, "Sec-WebSocket-Protocol", ", ".join(subprotocols))
        _add_field(parts, "Sec-WebSocket-Extensions", extensions)
        parts.append("\r\n")
        return "".join(parts).encode("latin-1")
    extra = (extra or Headers()).copy()
    for name in _REQUEST_RESERVED:
        if name in extra:
            raise ValueError(f"websocket: duplicate header not allowed: {name}")
    if subprotocols and "Sec-WebSocket-Protocol" in extra:
        raise ValueError("websocket: duplicate header not allowed: Sec-WebSocket-Protocol")
    if not target or any(c in target for c in " \t\r\n\x00"):
        raise ValueError(f"invalid request target: {target!r}")
    host = extra.pop("Host") or host
    h = Headers()
    h.add("Host", host)
    h.add("Upgrade", "websocket")
    h.add("Connection", "Upgrade")
    h.add("Sec-WebSocket-Key", key)
    h.add("Sec-WebSocket-Version", "13")
    if subprotocols:
        h.add("Sec-WebSocket-Protocol", ", ".join(subprotocols))
    if extensions:
        h.add("Sec-WebSocket-Extensions", extensions)
    h.update(extra)
    lines = [f"GET {target} HTTP/1.1\r\n"]
    lines.extend(f"{n}: {v}\r\n" for n, v in h.raw_items())
    lines.append("\r\n")
    return "".join(lines).encode("latin-1")


def check_server_response(
    resp: Response,
    key: str,
    offered_subprotocols: Sequence[str],
    offered_extensions: Sequence[str],
) -> Tuple[str, List[Extension]]:
    """Validate the server's handshake response; return (subprotocol, extensions).

    ``offered_extensions`` are the extension names the client offered
    (an element may also be a whole offer such as
    ``"permessage-deflate; client_max_window_bits"``: only its name counts).
    The returned extensions are :func:`parse_extensions` of the response.

    Raises :class:`ErrBadHandshake` (with ``response=resp``) when the status
    is not 101, Upgrade lacks ``websocket``, Connection lacks ``upgrade``,
    Sec-WebSocket-Accept is missing or wrong, the server chose a subprotocol
    the client did not offer (or several), or accepted an extension the
    client did not offer, malformed, or twice.
    """

    def bad(msg: str) -> ErrBadHandshake:
        return ErrBadHandshake(f"websocket: bad handshake: {msg}", response=resp)

    h = resp.headers
    if resp.status != 101:
        raise bad(f"unexpected status {resp.status}")
    if not token_list_contains(h, "Upgrade", "websocket"):
        raise bad("'websocket' token not found in 'Upgrade' header")
    if not token_list_contains(h, "Connection", "upgrade"):
        raise bad("'upgrade' token not found in 'Connection' header")
    accepts = [v.strip() for v in h.get_all("Sec-WebSocket-Accept")]
    if accepts != [accept_key(key)]:
        raise bad("missing or wrong 'Sec-WebSocket-Accept' header")
    protos = parse_subprotocols(h)
    if len(protos) > 1:
        raise bad("server selected more than one subprotocol")
    subprotocol = protos[0] if protos else ""
    if subprotocol and subprotocol not in offered_subprotocols:
        raise bad(f"server selected subprotocol {subprotocol!r} that was not offered")
    try:
        extensions = parse_extensions(h)
    except ValueError as exc:
        raise bad(f"malformed 'Sec-WebSocket-Extensions' header: {exc}") from None
    offered = {o.split(";", 1)[0].strip().lower() for o in offered_extensions}
    seen = set()
    for name, _ in extensions:
        lname = name.lower()
        if lname not in offered:
            raise bad(f"server accepted extension {name!r} that was not offered")
        if lname in seen:
            raise bad(f"server accepted extension {name!r} twice")
        seen.add(lname)
    return subprotocol, extensions
