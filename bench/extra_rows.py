#!/usr/bin/env python3
"""Rows beside websockets that the shared harness does not have (issue 17).

* ``wss``: echo round trips over TLS (a throw-away self-signed certificate,
  TLS 1.3, loopback) at 16 B and 1 MiB, client and server pinned to one CPU
  as the harness pins echo;
* ``peak``: the server process's peak memory while it echoes one 16 MiB
  binary message (``VmHWM`` after the round trip minus ``VmRSS`` before it),
  in payload copies: what a large message costs at its peak.

Compression rows (permessage-deflate echo on JSON-like text, both context
modes) are ``bench/compression.py``'s.  Each server runs in its own process.

Usage::

    python3 bench/extra_rows.py                       # both, gorillaws and websockets
    python3 bench/extra_rows.py --rows wss --duration 2
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from typing import Any, Callable, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

LIBS = ("gorillaws", "websockets")
BIG = 1 << 30


def make_cert(directory: str) -> Tuple[str, str]:
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1", "-days", "1",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True,
    )
    return cert, key


def _status(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


# ------------------------------------------------------------------ servers
def serve_gorillaws(tls: Any, ready: Callable[[int], None]) -> None:
    import gorillaws as gw

    upgrader = gw.Upgrader()
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    ready(lsock.getsockname()[1])

    def handle(sock: socket.socket) -> None:
        try:
            if tls is not None:
                sock = tls.wrap_socket(sock, server_side=True)
            conn = upgrader.upgrade(sock)
        except Exception:  # noqa: BLE001 - a failed handshake ends this connection only
            sock.close()
            return
        conn.set_read_limit(BIG)
        try:
            while True:
                kind, data = conn.read_message()
                if kind == gw.TEXT_MESSAGE and data == b"hwm":
                    conn.write_message(gw.TEXT_MESSAGE, str(_status("VmHWM")))
                elif kind == gw.TEXT_MESSAGE and data == b"rss":
                    conn.write_message(gw.TEXT_MESSAGE, str(_status("VmRSS")))
                else:
                    conn.write_message(kind, data)
                    del data
        except (gw.WebSocketError, OSError):
            conn.close_now()

    while True:
        s, _ = lsock.accept()
        threading.Thread(target=handle, args=(s,), daemon=True).start()


def serve_websockets(tls: Any, ready: Callable[[int], None]) -> None:
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.server import serve

    def handle(ws: Any) -> None:
        try:
            for msg in ws:
                if msg == "hwm":
                    ws.send(str(_status("VmHWM")))
                elif msg == "rss":
                    ws.send(str(_status("VmRSS")))
                else:
                    ws.send(msg)
                    del msg
        except ConnectionClosed:
            pass

    with serve(handle, "127.0.0.1", 0, ssl=tls, max_size=None, compression=None) as server:
        ready(server.socket.getsockname()[1])
        server.serve_forever()


def server_main(lib: str, tls_files: str) -> None:
    tls = None
    if tls_files:
        cert, key = tls_files.split(",")
        tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        tls.load_cert_chain(cert, key)

    def ready(port: int) -> None:
        print(port, flush=True)

    (serve_gorillaws if lib == "gorillaws" else serve_websockets)(tls, ready)


# ------------------------------------------------------------------ clients
def connect(lib: str, url: str, tls: Any) -> Tuple[Callable[[Any], None], Callable[[], Any], Callable[[], None]]:
    if lib == "gorillaws":
        import gorillaws as gw

        conn, _ = gw.Dialer(tls_client_config=tls).dial(url)
        conn.set_read_limit(BIG)

        def send(m: Any) -> None:
            conn.write_message(gw.TEXT_MESSAGE if isinstance(m, str) else gw.BINARY_MESSAGE, m)

        def recv() -> Any:
            kind, data = conn.read_message()
            return data.decode() if kind == gw.TEXT_MESSAGE else data

        return send, recv, conn.close
    from websockets.sync.client import connect as ws_connect

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # newer websockets prefer a with block

    ws = ws_connect(url, ssl=tls, max_size=None, compression=None)
    return ws.send, ws.recv, ws.close


def start_server(lib: str, tls_files: str, pin: bool) -> Tuple[subprocess.Popen, int]:  # type: ignore[type-arg]
    cmd = [sys.executable, os.path.abspath(__file__), "_serve", lib, tls_files]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def echo_rate(lib: str, size: int, duration: float, cert_files: Tuple[str, str]) -> float:
    tls = ssl.create_default_context(cafile=cert_files[0])
    proc, port = start_server(lib, ",".join(cert_files), pin=True)
    os.sched_setaffinity(0, {0})
    try:
        send, recv, close = connect(lib, f"wss://127.0.0.1:{port}/", tls)
        payload = os.urandom(size)
        end = time.perf_counter() + 0.2
        while time.perf_counter() < end:
            send(payload)
            recv()
        n = 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < duration:
            send(payload)
            recv()
            n += 1
        rate = n / (time.perf_counter() - t0)
        close()
        return rate
    finally:
        os.sched_setaffinity(0, set(range(os.cpu_count() or 1)))
        proc.kill()
        proc.wait()


def peak_copies(lib: str, size: int) -> Tuple[float, float]:
    """(server peak over its RSS before, in payload copies; client peak likewise)."""
    proc, port = start_server(lib, "", pin=False)
    try:
        send, recv, close = connect(lib, f"ws://127.0.0.1:{port}/", None)
        send(os.urandom(1024))
        recv()
        send("rss")
        before = int(recv())
        payload = os.urandom(size)
        c_before = _status("VmRSS")
        c_hwm0 = _status("VmHWM")
        send(payload)
        got = recv()
        assert len(got) == size
        del got
        c_peak = _status("VmHWM")
        send("hwm")
        peak = int(recv())
        close()
        # The client's payload itself was already resident before the round trip.
        client = (max(c_peak, c_hwm0) - c_before) / size
        return (peak - before) / size, client
    finally:
        proc.kill()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", default="wss,peak")
    ap.add_argument("--libs", default=",".join(LIBS))
    ap.add_argument("--duration", type=float, default=2.0)
    ap.add_argument("--reps", type=int, default=3)
    a = ap.parse_args()
    libs = a.libs.split(",")
    rows = a.rows.split(",")
    if "wss" in rows:
        with tempfile.TemporaryDirectory() as d:
            files = make_cert(d)
            res: Dict[Tuple[str, int], List[float]] = {}
            for _ in range(a.reps):
                for size in (16, 1 << 20):
                    for lib in libs:
                        res.setdefault((lib, size), []).append(echo_rate(lib, size, a.duration, files))
        print("\nwss echo (TLS 1.3, loopback, pinned to one CPU; round trips/s, median of %d)\n" % a.reps)
        print("| library | 16 B | 1 MiB | 1 MiB MB/s |")
        print("|---|---:|---:|---:|")
        ref = {s: statistics.median(res[("websockets", s)]) for s in (16, 1 << 20)} if "websockets" in libs else {}
        for lib in libs:
            cells = []
            for s in (16, 1 << 20):
                m = statistics.median(res[(lib, s)])
                cells.append(f"{m:,.0f}" + (f" ({m / ref[s]:.2f}x)" if ref else ""))
            mb = statistics.median(res[(lib, 1 << 20)]) * (1 << 20) / 1e6
            print(f"| {lib} | {cells[0]} | {cells[1]} | {mb:,.0f} |")
    if "peak" in rows:
        print("\nPeak memory of one 16 MiB echo round trip (in copies of the payload; server: VmHWM - VmRSS before)\n")
        print("| library | server peak (copies) | client peak (copies) |")
        print("|---|---:|---:|")
        for lib in libs:
            s, c = peak_copies(lib, 16 << 20)
            print(f"| {lib} | {s:.2f} | {c:.2f} |")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_serve":
        server_main(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    else:
        main()
