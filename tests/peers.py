"""Finding third-party test peers (node, Go, chromium, tinyproxy, ...).

Tests that need a program we do not ship call :func:`require_peer`.  Outside
CI a missing peer skips the test with a reason that says what to install; under
``CI=true`` (as ``.ci/run`` sets it) a missing peer fails the test, so a broken
install step cannot hide behind a green run.
"""

from __future__ import annotations

import os
import shutil
from typing import Callable, Optional, Union

import pytest

__all__ = ["in_ci", "require_peer", "peer_missing"]


def in_ci() -> bool:
    """True when running under CI (the environment variable ``CI`` is ``"true"``)."""
    return os.environ.get("CI", "").strip().lower() == "true"


def peer_missing(name: str, reason: str) -> None:
    """Skip (outside CI) or fail (under CI) the current test because peer ``name`` is unusable."""
    msg = "peer %s unavailable: %s" % (name, reason)
    if in_ci():
        pytest.fail(msg + " (CI=true: peers must be installed by .ci/run)", pytrace=False)
    pytest.skip(msg)


def require_peer(
    name: str,
    path_or_check: Union[str, Callable[[], Optional[str]]],
    hint: str = "",
) -> str:
    """Make sure a peer is usable, or skip/fail the test with a clear reason.

    ``path_or_check`` is either a program name or path (looked up with
    :func:`shutil.which`; its full path is returned), or a callable that
    returns None when the peer is usable and an error string otherwise (its
    result ``""`` is returned then).  ``hint`` is added to the reason, e.g.
    ``"apt-get install chromium"``.
    """
    suffix = (" (%s)" % hint) if hint else ""
    if callable(path_or_check):
        try:
            err = path_or_check()
        except Exception as exc:  # a check that crashes means "not usable"
            err = "%s: %s" % (type(exc).__name__, exc)
        if err:
            peer_missing(name, err + suffix)
        return ""
    found = shutil.which(path_or_check)
    if found is None:
        peer_missing(name, "%r not found on PATH%s" % (path_or_check, suffix))
        assert False, "unreachable"
    return found
