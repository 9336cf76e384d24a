"""gorilla's deprecated package-level helpers, for code ported as it stands.

gorilla/websocket keeps four functions only for old code: ``ReadJSON(c, v)``,
``WriteJSON(c, v)`` (use the ``Conn`` methods), ``Upgrade(w, r, h, rbuf,
wbuf)`` (use an ``Upgrader``) and ``NewClient(netConn, u, h, rbuf, wbuf)``
(use a ``Dialer``).  They are here under their Python names, as thin wrappers
over the API they name, so a line-by-line port runs first and is tidied later.

Each call emits a :class:`DeprecationWarning` pointing at the replacement, as
Go's ``Deprecated:`` doc comments (and ``staticcheck``) do: Python hides these
warnings by default except in ``__main__`` and under test runners, so ported
code runs quietly in production and the tests show what to modernize.

Thread-safety: as the :class:`~gorillaws.Conn`, :class:`~gorillaws.Upgrader`
and :class:`~gorillaws.Dialer` methods they call.
"""

from __future__ import annotations

import dataclasses
import socket
import warnings
from typing import TYPE_CHECKING, Any, Optional, Tuple

from .conn import Conn

if TYPE_CHECKING:  # pragma: no cover
    from .client import RequestHeader
    from .http11 import Response
    from .server import HeaderInput

__all__ = ["read_json", "write_json", "upgrade", "new_client"]


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"gorillaws.{old} is deprecated (as in gorilla); use {new}", DeprecationWarning, stacklevel=3)


def read_json(conn: Conn, v: object = None) -> Any:
    """Read the next message as JSON: gorilla's deprecated ``ReadJSON(c, &v)``.

    Returns the decoded value.  Go decodes *into* ``v``; here ``v`` is
    optional and, when given, is filled the way Go fills the matching type:

    * a ``dict`` receives the object's keys (existing other keys stay, as
      with a Go map);
    * a ``list`` has its contents replaced by the array (as a Go slice);
    * a dataclass instance gets each field whose name matches a key (exactly,
      else ignoring case, as Go matches struct fields); other keys are ignored.

    :raises TypeError: ``v`` is none of these (checked before reading, so no
        message is lost).
    :raises ValueError: the payload is not JSON (:class:`json.JSONDecodeError`),
        or its value does not fit ``v`` (an array for a dict, ...); the
        message has been consumed.
    :raises CloseError, DeadlineExceeded, ...: whatever
        :meth:`Conn.read_message` raises.

    Prefer ``value = conn.read_json()``.
    """
    _deprecated("read_json(conn, v)", "conn.read_json()")
    fill = _filler(v)
    value = conn.read_json()
    if fill is not None:
        fill(value)
    return value


def _filler(v: object) -> Any:
    """A function that stores a decoded JSON value into ``v``, or None when ``v`` is None."""
    if v is None:
        return None
    if isinstance(v, dict):
        target = v

        def fill_dict(value: Any) -> None:
            target.update(_expect(value, dict, "a JSON object", "dict"))

        return fill_dict
    if isinstance(v, list):
        items = v

        def fill_list(value: Any) -> None:
            items[:] = _expect(value, list, "a JSON array", "list")

        return fill_list
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        obj = v
        names = [f.name for f in dataclasses.fields(obj)]

        def fill_fields(value: Any) -> None:
            for key, item in _expect(value, dict, "a JSON object", type(obj).__name__).items():
                name = key if key in names else next((n for n in names if n.lower() == key.lower()), None)
                if name is not None:
                    setattr(obj, name, item)

        return fill_fields
    raise TypeError(f"read_json: cannot fill a {type(v).__name__}; pass a dict, a list, a dataclass instance or None")


def _expect(value: Any, kind: type, json_kind: str, target: str) -> Any:
    if not isinstance(value, kind):
        raise ValueError(f"read_json: expected {json_kind} for a {target}, got {type(value).__name__}")
    return value


def write_json(conn: Conn, v: Any) -> None:
    """Send ``v`` as JSON in a text message: gorilla's deprecated ``WriteJSON(c, v)``.

    Raises what :meth:`Conn.write_json` raises.  Prefer ``conn.write_json(v)``.
    """
    _deprecated("write_json(conn, v)", "conn.write_json(v)")
    conn.write_json(v)


def upgrade(
    request: Any,
    response_header: HeaderInput = None,
    read_buffer_size: int = 0,
    write_buffer_size: int = 0,
) -> Conn:
    """Upgrade a request without an origin check: gorilla's deprecated ``Upgrade``.

    The same as ``Upgrader(read_buffer_size=..., write_buffer_size=...,
    insecure_skip_verify=True).upgrade(request, response_header)``.  One
    deliberate difference: gorilla's function writes no HTTP answer when the
    handshake fails (its callers had to); here the refusal is answered as an
    ``Upgrader`` answers it, and :class:`HandshakeError` is raised as usual.

    Accepting every origin lets any web page open connections with the
    user's cookies: prefer an ``Upgrader`` with ``check_origin`` or
    ``origin_patterns``.
    """
    _deprecated("upgrade(...)", "gorillaws.Upgrader(...).upgrade(request, response_header)")
    from .server import Upgrader

    u = Upgrader(read_buffer_size=read_buffer_size, write_buffer_size=write_buffer_size, insecure_skip_verify=True)
    return u.upgrade(request, response_header)


def new_client(
    net_conn: socket.socket,
    url: str,
    request_header: Optional[RequestHeader] = None,
    read_buffer_size: int = 0,
    write_buffer_size: int = 0,
) -> Tuple[Conn, Response]:
    """Run the client handshake over a connected socket: gorilla's deprecated ``NewClient``.

    The same as ``Dialer(net_dial=lambda network, addr: net_conn, ...).dial(url,
    request_header)``: the socket is used as it is (for a ``wss://`` URL the
    TLS handshake is done on it).  Returns ``(conn, response)`` and raises what
    :meth:`Dialer.dial` raises.  Prefer a :class:`Dialer`.
    """
    _deprecated("new_client(...)", "gorillaws.Dialer(net_dial=...).dial(url, request_header)")
    from .client import Dialer

    d = Dialer(
        net_dial=lambda network, addr: net_conn,
        read_buffer_size=read_buffer_size,
        write_buffer_size=write_buffer_size,
    )
    return d.dial(url, request_header)
