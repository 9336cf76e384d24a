"""A thread that hogs the CPU (and the GIL) while a test runs.

Some failures show only when the reading thread is starved: bytes then pile
up in the socket and arrive in other batches than on an idle machine.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Iterator


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """Spin in Python in a daemon thread for the length of the ``with`` block."""
    stop = threading.Event()

    def spin() -> None:
        n = 0
        while not stop.is_set():
            for _ in range(10_000):
                n += 1

    t = threading.Thread(target=spin, name="cpu-hog", daemon=True)
    t.start()
    try:
        yield
    finally:
        stop.set()
        t.join(5.0)
