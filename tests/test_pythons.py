"""What keeps the suite honest on every supported Python (3.9 to 3.13).

``.ci/pythons`` runs the quick suite (``pytest -m "not slow"``) on each CPython
the machine has, and on the main one without the C speedup; these tests pin
the pieces that differ between versions.
"""

from __future__ import annotations

import configparser
import os
import re
import socket
import sys
from typing import Tuple

import pytest

from conftest import RawPeer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _python_requires() -> Tuple[int, int]:
    cfg = configparser.ConfigParser()
    cfg.read(os.path.join(ROOT, "setup.cfg"))
    m = re.fullmatch(r">=\s*(\d+)\.(\d+)", cfg["options"]["python_requires"].strip())
    assert m, "python_requires should be a plain lower bound"
    return int(m.group(1)), int(m.group(2))


def test_raw_peer_reports_silence_as_timeout_error() -> None:
    # socket.timeout became an alias of TimeoutError only in 3.10; the tests
    # expect TimeoutError from the raw peer on 3.9 as well.
    a, b = socket.socketpair()
    peer = RawPeer(b, masks=False)
    try:
        with pytest.raises(TimeoutError):
            peer.recv_frame(timeout=0.05)
        with pytest.raises(TimeoutError):
            peer.expect_eof(timeout=0.05)
    finally:
        peer.close()
        a.close()


def test_running_python_is_supported() -> None:
    assert sys.version_info[:2] >= _python_requires()


def test_ci_covers_every_version_from_python_requires() -> None:
    with open(os.path.join(ROOT, ".ci", "pythons")) as f:
        script = f.read()
    m = re.search(r'VERSIONS="\$\{GORILLAWS_PYTHONS:-([0-9. ]+)\}"', script)
    assert m, ".ci/pythons should list its default versions"
    extra = [tuple(map(int, v.split("."))) for v in m.group(1).split()]
    main = (3, 11)  # the full suite runs there (.ci/run)
    lowest = _python_requires()
    every = [(3, minor) for minor in range(lowest[1], 14)]
    assert sorted(extra + [main]) == every


@pytest.mark.parametrize(
    "module", ["flask", "werkzeug", "gunicorn", "socks", "websockets", "hypothesis", "redis", "google.protobuf"]
)
def test_test_extra_is_installed_under_ci(module: str) -> None:
    """Tests skip with importorskip when one of these is missing; under CI that must be a failure."""
    import importlib

    if os.environ.get("CI") != "true":
        pytest.skip("checked under CI=true only")
    importlib.import_module(module)
