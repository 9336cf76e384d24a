"""Deadlines: absolute :func:`time.monotonic` times, checked and turned into waits.

Pure arithmetic on the monotonic clock, no sockets.  Every deadline a user
hands us (``set_read_deadline``, ``set_write_deadline``, ``write_control``'s
``deadline=``) passes through :func:`check`, and every wait the I/O layers
make is computed by :func:`remaining` or :func:`poll_ms`, so the rules live
in one place:

* ``None`` means no deadline.
* A time in the past is legal: setting one is how Go code interrupts a
  blocked read, and we keep that idiom.
* A value that cannot be a monotonic time (``time.time() + 1`` is decades
  ahead of the monotonic clock, which counts from boot) raises
  :class:`ValueError` at once, naming :func:`time.monotonic`, instead of
  blocking "forever" with no hint why.
* A deadline further ahead than ``poll()`` can wait (about 24.8 days) is
  waited for in clamped steps, never :class:`OverflowError`.
"""

from __future__ import annotations

import math
import time
from typing import Optional

__all__ = ["MAX_WAIT", "check", "remaining", "poll_ms", "expired"]

#: The longest single wait, in seconds: ``poll()`` takes a C ``int`` of
#: milliseconds.  Longer deadlines are waited for in steps of this size.
MAX_WAIT = (2**31 - 1) / 1000.0

# No sane deadline is this far ahead of now on the monotonic clock; a wall
# clock time (seconds since 1970) always is, on any machine up for less
# than ~30 years.
_IMPLAUSIBLE_AHEAD = 30 * 365 * 86400.0


def check(t: Optional[float], what: str = "deadline") -> Optional[float]:
    """Validate a user-supplied deadline and return it as a float (or None).

    Raises :class:`TypeError` for a value that is not a real number and
    :class:`ValueError` for NaN or for a value so far ahead that it must be a
    wall-clock time (for example ``time.time() + 1``).  Past times are legal.
    """
    if t is None:
        return None
    if isinstance(t, bool) or not isinstance(t, (int, float)):
        raise TypeError(f"{what} must be a time.monotonic() time or None, not {type(t).__name__}")
    t = float(t)
    if math.isnan(t):
        raise ValueError(f"{what} is NaN; pass a time.monotonic() time or None")
    if t - time.monotonic() > _IMPLAUSIBLE_AHEAD:
        raise ValueError(
            f"{what} {t!r} is not a time.monotonic() time (it looks like time.time()); "
            f"deadlines are timestamps on the monotonic clock: use time.monotonic() + seconds"
        )
    return t


def remaining(deadline: Optional[float]) -> Optional[float]:
    """Seconds left until ``deadline`` (None: no deadline), clamped to [0, MAX_WAIT]."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0.0:
        return 0.0
    return left if left < MAX_WAIT else MAX_WAIT


def poll_ms(deadline: Optional[float]) -> Optional[int]:
    """A ``poll()`` timeout in milliseconds for ``deadline`` (None: wait forever).

    Rounded up, so a wait never ends before the deadline it serves, and
    clamped to what ``poll()`` accepts.  0 means the deadline has passed.
    """
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0.0:
        return 0
    return min(int(left * 1000.0) + 1, 2**31 - 1)


def expired(deadline: Optional[float]) -> bool:
    """True when ``deadline`` is set and has passed."""
    return deadline is not None and deadline <= time.monotonic()
