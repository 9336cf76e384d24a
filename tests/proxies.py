"""Test helpers: real proxies (tinyproxy, microsocks) and tiny TCP servers on 127.0.0.1.

A missing proxy binary skips the test, except under ``CI=true`` where it fails.
Every process and thread started here is stopped by the context manager that
started it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import tempfile
import threading
import time
from typing import Any, Callable, Iterator, List, Optional, TypeVar

import helpers
from helpers import AcceptLoop

_W = TypeVar("_W", bound="WsServer")


def require_binary(name: str) -> str:
    """Path of ``name``; skip (fail under CI=true) when it is not installed."""
    from peers import require_peer

    return require_peer(name, name, f"Debian package {name!r}: apt-get install {name}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _listens_on(pid: int, port: int) -> Optional[bool]:
    """Whether process ``pid`` holds the socket listening on 127.0.0.1:``port``.

    None when /proc cannot tell (not Linux).
    """
    try:
        with open("/proc/net/tcp") as f:
            rows = [line.split() for line in f.readlines()[1:]]
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return None
    inodes = {r[9] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port}
    for fd in fds:
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:[") and link[8:-1] in inodes:
            return True
    return False


def wait_listening(port: int, proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"proxy exited early with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                pass
        except OSError:
            time.sleep(0.05)
            continue
        # Something listens there; make sure it is the proxy, not whoever took
        # the port first (then the proxy exits with "address in use").
        if _listens_on(proc.pid, port) is not False:
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout}s")


class _PortTaken(RuntimeError):
    """The port picked for a proxy was taken before the proxy could bind it."""


@contextlib.contextmanager
def _running(argv: List[str], port: int) -> Iterator[int]:
    with tempfile.TemporaryFile() as errf:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=errf)
        try:
            try:
                wait_listening(port, proc)
            except RuntimeError as exc:
                errf.seek(0)
                err = errf.read()[-2000:]
                taken = b"in use" in err or b"Could not create listening" in err
                kind = _PortTaken if taken else RuntimeError
                raise kind(f"{argv[0]}: {exc}: {err!r}") from None
            yield port
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


@contextlib.contextmanager
def _on_free_port(argv_for: Callable[[int], List[str]]) -> Iterator[int]:
    """Run the proxy ``argv_for(port)`` on a free port; yields the port.

    A port found free can be taken by another process (parallel test runs)
    before the proxy binds it: then try another one, a few times.
    """
    for attempt in range(5):
        port = free_port()
        try:
            with _running(argv_for(port), port) as p:
                yield p
                return
        except _PortTaken:
            if attempt == 4:
                raise


@contextlib.contextmanager
def tinyproxy(auth: Optional[str] = None, connect_ports: Optional[List[int]] = None) -> Iterator[int]:
    """Run tinyproxy in the foreground on 127.0.0.1; yields its port.

    ``auth`` is ``"user:password"`` for BasicAuth; ``connect_ports`` limits
    CONNECT to those ports (all ports when None).
    """
    binary = require_binary("tinyproxy")
    with tempfile.TemporaryDirectory() as d:
        conf = os.path.join(d, "tinyproxy.conf")

        def argv_for(port: int) -> List[str]:
            lines = [
                f"Port {port}",
                "Listen 127.0.0.1",
                "Timeout 20",
                "Allow 127.0.0.1",
                "MaxClients 50",
                "LogLevel Critical",
                "DisableViaHeader Yes",
            ]
            if auth:
                user, _, password = auth.partition(":")
                lines.append(f"BasicAuth {user} {password}")
            for p in connect_ports or []:
                lines.append(f"ConnectPort {p}")
            with open(conf, "w") as f:
                f.write("\n".join(lines) + "\n")
            return [binary, "-d", "-c", conf]

        with _on_free_port(argv_for) as p:
            yield p


@contextlib.contextmanager
def microsocks(auth: Optional[str] = None) -> Iterator[int]:
    """Run microsocks (SOCKS5) on 127.0.0.1; yields its port.  ``auth``: ``"user:password"``."""
    binary = require_binary("microsocks")

    def argv_for(port: int) -> List[str]:
        argv = [binary, "-i", "127.0.0.1", "-p", str(port)]
        if auth:
            user, _, password = auth.partition(":")
            argv += ["-u", user, "-P", password]
        return argv

    with _on_free_port(argv_for) as p:
        yield p


class TcpServer(AcceptLoop):
    """A thread accepting connections on 127.0.0.1 and running ``handler(conn)`` for each.

    :class:`helpers.AcceptLoop` under the name these tests know: handlers run
    in their own threads; ``close()`` stops accepting, shuts every accepted
    socket down and joins all threads.
    """


def echo_handler(conn: socket.socket) -> None:
    """Echo every byte back until the peer closes."""
    while True:
        data = conn.recv(65536)
        if not data:
            return
        conn.sendall(data)


def read_head(conn: socket.socket, limit: int = 65536) -> bytes:
    """Read from ``conn`` until a blank line (CRLFCRLF); returns what was read."""
    head, rest = helpers.read_head(conn, limit)
    return head + rest


class WsServer:
    """A real ``websockets`` (sync) echo server on 127.0.0.1 in a thread.

    ``requests`` collects each handshake request (``.path``, ``.headers``).
    Keyword arguments go to ``websockets.sync.server.serve`` (``ssl``,
    ``subprotocols``, ``process_response``, ``compression``...); pass
    ``unix_path`` to serve on a Unix socket instead.
    """

    def __init__(self, unix_path: Optional[str] = None, host: str = "127.0.0.1", **kwargs: Any) -> None:
        from websockets.sync.server import serve, unix_serve

        self.requests: List[object] = []

        def handler(ws: object) -> None:
            self.requests.append(ws.request)  # type: ignore[attr-defined]
            try:
                for msg in ws:  # type: ignore[attr-defined]
                    ws.send(msg)  # type: ignore[attr-defined]
            except Exception:
                pass

        kwargs.setdefault("ping_interval", None)
        kwargs.setdefault("close_timeout", 2)
        if unix_path is not None:
            self.server = unix_serve(handler, unix_path, **kwargs)
            self.port = 0
        else:
            family = socket.AF_INET6 if ":" in host else socket.AF_INET
            lsock = socket.create_server((host, 0), family=family)
            self.server = serve(handler, sock=lsock, **kwargs)
            self.port = int(self.server.socket.getsockname()[1])
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self._thread.join(10)

    def __enter__(self: _W) -> _W:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
