"""Payload masking (RFC 6455 section 5.3).

:func:`apply_mask` XORs data with a 4-byte key and returns new bytes;
:func:`apply_mask_inplace` does the same inside a writable buffer (the
reader's receive buffer).  Both use the C speedup :mod:`gorillaws._speedups`
when it was built at install time, and pure Python otherwise (or when the
environment variable ``GORILLAWS_NO_SPEEDUPS`` is set to a non-empty value);
the two give the same bytes.  The pure versions stay importable as
:func:`apply_mask_python` and :func:`apply_mask_inplace_python`.
:func:`speedups` makes that choice for this module, :mod:`gorillaws.utf8`
and :mod:`gorillaws.frames` alike.

``offset`` is the position in the key of the first byte (only ``offset % 4``
matters), so a payload can be masked piece by piece: mask the piece starting
at payload byte ``i`` with ``offset=i``.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Optional, Tuple, Union

Buffer = Union[bytes, bytearray, memoryview]
WritableBuffer = Union[bytearray, memoryview]

__all__ = [
    "apply_mask",
    "apply_mask_inplace",
    "apply_mask_python",
    "apply_mask_inplace_python",
    "HAVE_SPEEDUPS",
]


# The pure versions work on pieces of this many bytes (a multiple of 4, so
# every piece starts at the same key position): the big integers they build
# are a few pieces' worth, not a few payloads' worth.
_CHUNK = 1 << 20


def _xor(data: Buffer, key: bytes, n: int) -> bytes:
    """``n`` bytes of ``data`` XOR the key repeated (``key`` already rotated to the start)."""
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, sys.byteorder) ^ int.from_bytes(k, sys.byteorder)).to_bytes(n, sys.byteorder)


def _rotated_key(mask: Buffer, offset: int) -> bytes:
    if len(mask) != 4:
        raise ValueError("mask must be exactly 4 bytes")
    key = bytes(mask)
    shift = offset & 3
    return key[shift:] + key[:shift] if shift else key


def apply_mask_python(data: Buffer, mask: Buffer, offset: int = 0) -> bytes:
    """Mask (or unmask) ``data`` with ``mask``, starting at key position ``offset``.

    Pure Python: XORs the data as big integers, which runs at several
    hundred MB/s in CPython, 1 MiB at a time: at its peak it holds the
    result twice (it is built in a bytearray, then copied out as bytes)
    plus about 5 MiB, instead of four times the payload.  Raises
    :class:`ValueError` when ``mask`` is not 4 bytes long.
    """
    key = _rotated_key(mask, offset)
    n = len(data)
    if n <= _CHUNK:
        return _xor(data, key, n) if n else b""
    view = memoryview(data).cast("B")
    out = bytearray(n)
    for i in range(0, n, _CHUNK):
        piece = view[i : i + _CHUNK]
        out[i : i + len(piece)] = _xor(piece, key, len(piece))
    return bytes(out)


def apply_mask_inplace_python(buf: WritableBuffer, mask: Buffer, offset: int = 0) -> None:
    """Mask (or unmask) the writable buffer ``buf`` in place; pure Python.

    Same result as ``buf[:] = apply_mask_python(buf, mask, offset)``, done
    1 MiB at a time (bounded extra memory).  ``mask`` may point into ``buf``
    itself.  Raises :class:`ValueError` when ``mask`` is not 4 bytes long,
    :class:`TypeError` when ``buf`` is read-only.
    """
    key = _rotated_key(mask, offset)
    view = memoryview(buf).cast("B")
    if view.readonly:
        raise TypeError("apply_mask_inplace needs a writable buffer")
    n = len(view)
    for i in range(0, n, _CHUNK):
        piece = view[i : i + _CHUNK]
        piece[:] = _xor(piece, key, len(piece))


def speedups(*names: str) -> Optional[Tuple[Any, ...]]:
    """The named functions of the C speedup :mod:`gorillaws._speedups`, or None.

    None when the extension was not built, was built from an older source
    without one of ``names``, or is disabled by a non-empty
    ``GORILLAWS_NO_SPEEDUPS``: the caller then uses its pure twins.  The one
    place that decides, for :mod:`gorillaws.mask`, :mod:`gorillaws.utf8`
    and :mod:`gorillaws.frames`.
    """
    if os.environ.get("GORILLAWS_NO_SPEEDUPS"):
        return None
    try:
        from . import _speedups
    except ImportError:
        return None
    found = tuple(getattr(_speedups, name, None) for name in names)
    return None if None in found else found


# The C functions are used directly (no wrapper call per frame); they behave
# as the pure versions above, release the GIL on large inputs, and
# apply_mask_inplace accepts a mask that points into ``buf`` itself.
_c = speedups("apply_mask", "apply_mask_into")
HAVE_SPEEDUPS = _c is not None
apply_mask, apply_mask_inplace = _c or (apply_mask_python, apply_mask_inplace_python)
