"""The typing user program (tests/typing_user/): it runs, and mypy --strict accepts it.

``.ci/typecheck-user`` checks it against the *installed* package (CI installs
with ``editable_mode=compat`` so mypy can see it); here it is checked against
this checkout (``--checkout``), which works whatever the install mode, and
run for real against a local server.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = [pytest.mark.timeout(120), pytest.mark.slow]  # slow: runs mypy --strict in a subprocess

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
USER = os.path.join(ROOT, "tests", "typing_user", "user.py")
SCRIPT = os.path.join(ROOT, ".ci", "typecheck-user")


def test_the_user_program_runs() -> None:
    spec = importlib.util.spec_from_file_location("typing_user_program", USER)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    status, proto, echoed, value, binary, pongs, close_code = mod.main()
    assert (status, proto) == (101, "echo")
    assert echoed == (True, b"hello") and value == {"n": 1}
    assert binary == (2, b"\x00\x01") and pongs == [b"p"] and close_code is None


def test_mypy_strict_accepts_it_and_rejects_the_mistakes() -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    r = subprocess.run(
        ["bash", SCRIPT, "--checkout"], capture_output=True, text=True, timeout=110, env=env, cwd="/"
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "user.py clean, bad.py rejected on every marked line" in r.stdout
