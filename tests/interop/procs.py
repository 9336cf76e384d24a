"""Child processes for interop peers (node, Go programs, chromium).

A :class:`PeerProcess` keeps the child's stdin open as a pipe (the node and Go
peers exit when it closes, so nothing outlives a crashed test run), reads its
output under deadlines with ``select`` (nothing can hang), and is ended by its
own PID: stdin closed first, then SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import time
from typing import Dict, List, Optional, Sequence


class PeerProcess:
    """A running peer program; ``lines`` holds what it printed so far (stdout and stderr)."""

    def __init__(self, argv: Sequence[str], cwd: Optional[str] = None, env: Optional[Dict[str, str]] = None) -> None:
        self.argv = list(argv)
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
        )
        self._partial = b""
        self.lines: List[str] = []

    def _read(self, timeout: float) -> str:
        """Read what arrives within ``timeout``: "data", "idle" (nothing yet) or "eof"."""
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        r, _, _ = select.select([fd], [], [], max(0.0, timeout))
        if not r:
            return "idle"
        chunk = os.read(fd, 65536)
        if not chunk:
            if self._partial:
                self.lines.append(self._partial.decode("utf-8", "replace"))
                self._partial = b""
            return "eof"
        self._partial += chunk
        *done, self._partial = self._partial.split(b"\n")
        self.lines.extend(d.decode("utf-8", "replace") for d in done)
        return "data"

    def wait_line(self, pattern: str, timeout: float = 20.0, start: int = 0) -> "re.Match[str]":
        """Wait for an output line (from index ``start``) matching ``pattern``; AssertionError on time-out."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        seen = start
        eof = False
        while True:
            for i in range(seen, len(self.lines)):
                m = rx.search(self.lines[i])
                if m:
                    return m
            seen = len(self.lines)
            left = end - time.monotonic()
            if left <= 0 or eof:
                raise AssertionError(
                    "%s: no line matching %r (%s); output:\n%s"
                    % (self.argv[0], pattern, "it exited" if eof else "time-out", self.output())
                )
            eof = self._read(min(left, 0.5)) == "eof"

    def wait_exit(self, timeout: float) -> int:
        """Wait for the program to end by itself (collecting its output); return its exit status."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self._read(min(0.5, max(0.0, end - time.monotonic()))) == "eof":
                break
        try:
            return self.proc.wait(max(0.1, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.stop()
            raise AssertionError("%s did not exit within %.0f s; output:\n%s" % (self.argv[0], timeout, self.output()))

    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines + ([self._partial.decode("utf-8", "replace")] if self._partial else []))

    def stop(self) -> None:
        """End the program: close its stdin, then SIGTERM, then SIGKILL, by its PID."""
        p = self.proc
        if p.stdin is not None and not p.stdin.closed:
            try:
                p.stdin.close()
            except OSError:
                pass
        for sig, wait in ((None, 2.0), (signal.SIGTERM, 3.0), (signal.SIGKILL, 5.0)):
            if p.poll() is not None:
                break
            if sig is not None:
                try:
                    os.kill(p.pid, sig)
                except ProcessLookupError:
                    break
            try:
                p.wait(wait)
            except subprocess.TimeoutExpired:
                continue
        if p.stdout is not None:
            p.stdout.close()

    def __enter__(self) -> "PeerProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
