"""A private redis-server for the tests: started on a free port, ended by its PID.

Debian's ``redis-server`` (``apt-get install -y redis-server``).  Outside CI a
missing server skips the test; under ``CI=true`` it fails (see
:mod:`tests.peers`).  The server keeps nothing on disk (no RDB, no AOF) and
runs in a temporary directory.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from typing import Iterator, Optional

import pytest

from tests.examples_util import free_port
from tests.peers import require_peer

__all__ = ["RedisServer", "redis_server"]


class RedisServer:
    """One redis-server process on 127.0.0.1; :meth:`stop` and :meth:`start` again keep the port."""

    def __init__(self, path: str, port: Optional[int] = None) -> None:
        self.path = path
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="gorillaws-redis-")
        self.proc: Optional[subprocess.Popen[bytes]] = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> None:
        """Start the server and wait until it answers PING."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.proc = subprocess.Popen(
            [self.path, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        end = time.monotonic() + timeout
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self.proc.returncode}")
            if time.monotonic() > end:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on port {self.port} within {timeout} s")
            time.sleep(0.05)

    def ping(self) -> bool:
        """True if the server answers PING (plain RESP over a socket, no client package needed)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def command(self, *args: str) -> bytes:
        """Send one command (inline form) and return the raw reply."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5) as s:
            s.sendall(" ".join(args).encode() + b"\r\n")
            return s.recv(65536)

    def numsub(self, channel: str) -> int:
        """How many connections subscribe to ``channel`` (PUBSUB NUMSUB); 0 on a reply cut short."""
        reply = self.command("PUBSUB", "NUMSUB", channel).split(b"\r\n")
        return int(reply[3][1:]) if len(reply) > 3 and reply[3].startswith(b":") else 0

    def stop(self) -> None:
        """Kill the server (SIGKILL: the way a crash or a lost machine looks) and reap it."""
        proc = self.proc
        if proc is not None and proc.poll() is None:
            try:
                os.kill(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def find_redis_server() -> str:
    return require_peer("redis-server", "redis-server", "apt-get install -y redis-server")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A running private redis-server; killed by PID after the test."""
    server = RedisServer(find_redis_server())
    try:
        server.start()
        yield server
    finally:
        server.cleanup()
