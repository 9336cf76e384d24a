"""The options Upgrader and Dialer share are checked where they are written (issue 16)."""

from __future__ import annotations

from typing import Any, Dict, Type

import pytest

from gorillaws import COMPRESSION_CONTEXT_TAKEOVER, Dialer, Upgrader
from gorillaws.options import HandshakeOptions

BAD: Dict[str, Any] = {
    "compression_level": (42, ValueError),
    "compression_mode": (7, ValueError),
    "handshake_timeout": (-1, ValueError),
    "read_buffer_size": (-5, ValueError),
    "write_buffer_size": ("4096", TypeError),
    "compression_threshold": (-1, ValueError),
    "subprotocols": ("chat", TypeError),
}


@pytest.mark.parametrize("cls", [Upgrader, Dialer])
@pytest.mark.parametrize("name", sorted(BAD))
def test_bad_option_fails_in_the_constructor(cls: Type[HandshakeOptions], name: str) -> None:
    value, error = BAD[name]
    with pytest.raises(error, match=name.replace("_", "[_ ]").replace("compression[_ ]level", "compression level")):
        cls(**{name: value})


@pytest.mark.parametrize("cls", [Upgrader, Dialer])
def test_bad_option_fails_when_assigned(cls: Type[HandshakeOptions]) -> None:
    obj = cls()
    with pytest.raises(ValueError):
        obj.compression_level = 10
    with pytest.raises(ValueError, match="not a valid subprotocol"):
        obj.subprotocols = ["ok", "not a token"]
    obj.handshake_timeout = None  # no limit stays legal
    obj.subprotocols = ("a", "b")  # type: ignore[assignment]
    assert obj.subprotocols == ["a", "b"]


@pytest.mark.parametrize("cls", [Upgrader, Dialer])
def test_good_options_and_effective_mode(cls: Type[HandshakeOptions]) -> None:
    obj = cls(compression_level=-2, compression_threshold=0, handshake_timeout=1)  # type: ignore[call-arg]
    assert obj.handshake_timeout == 1.0 and obj.compression_threshold == 0
    assert obj.effective_compression_mode() == 0
    obj.enable_compression = True
    assert obj.effective_compression_mode() == 1
    obj.compression_mode = COMPRESSION_CONTEXT_TAKEOVER
    assert obj.effective_compression_mode() == COMPRESSION_CONTEXT_TAKEOVER
