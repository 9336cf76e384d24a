"""Type stub for the optional C extension :mod:`gorillaws._speedups`."""

from typing import Union

_Buffer = Union[bytes, bytearray, memoryview]

UTF8_ACCEPT: int
UTF8_REJECT: int

def apply_mask(data: _Buffer, mask: _Buffer, offset: int = 0) -> bytes: ...
def apply_mask_into(buf: Union[bytearray, memoryview], mask: _Buffer, offset: int = 0) -> None: ...
def utf8_validate(data: _Buffer, state: int) -> int: ...
