"""Helpers shared by the example, docs and browser tests: run a program, learn its URL.

Every process is started in its own session and ended by its PID; output is
read with select() under a deadline, so nothing here can hang.
"""

from __future__ import annotations

import os
import re
import select
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def child_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """The environment for child processes: our source tree first, no proxies."""
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        env.pop(name, None)
    if extra:
        env.update(extra)
    return env


def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = int(s.getsockname()[1])
    s.close()
    return port


def wait_port(port: int, timeout: float = 15.0) -> None:
    """Wait until something accepts connections on 127.0.0.1:``port``."""
    end = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > end:
                raise TimeoutError(f"nothing listening on port {port} after {timeout}s")
            time.sleep(0.05)


class Program:
    """A child process whose stdout is scanned for a line matching a pattern."""

    def __init__(self, argv: Sequence[str], cwd: str = ROOT, env: Optional[Dict[str, str]] = None) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env or child_env(),
            start_new_session=True,
        )
        self.output = b""

    def wait_for(self, pattern: str, timeout: float = 20.0) -> "re.Match[str]":
        """Read output until ``pattern`` matches a line; return the match."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        end = time.monotonic() + timeout
        rx = re.compile(pattern)
        while True:
            for line in self.output.decode("utf-8", "replace").splitlines():
                m = rx.search(line)
                if m:
                    return m
            left = end - time.monotonic()
            if left <= 0:
                break
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                break
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.output += chunk
        self.stop()
        raise AssertionError(f"{self.argv!r} never printed {pattern!r}; output:\n{self.output.decode('utf-8', 'replace')}")

    def drain(self) -> bytes:
        """Collect what the program printed so far (non-blocking)."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while select.select([fd], [], [], 0)[0]:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            self.output += chunk
        return self.output

    def stop(self) -> None:
        """End the process (and its session's children) by PID."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
                self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()

    def __enter__(self) -> "Program":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def python(*args: str) -> List[str]:
    """argv running this interpreter."""
    return [sys.executable, *args]
