"""Pacing request starts: a requests-per-minute cap, and backing off after 429s.

Every worker asks ``wait()`` before it sends. Starts are spaced ``interval`` seconds
apart; a 429 doubles the spacing (and, with a Retry-After, pauses everyone until then,
since rate limits are per account), and each success brings it back down a little
until it is at the configured pace again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SLOWEST = 60.0
RECOVERY = 0.7


class Throttle:
    """Shared by the workers of one run."""

    def __init__(
        self,
        rpm: float | None = None,
        *,
        first_backoff: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.base = 60.0 / rpm if rpm else 0.0
        self.first_backoff = first_backoff
        self.interval = self.base
        self._clock = clock
        self._next_start = 0.0
        self._paused_until = 0.0
        self._lock = threading.Lock()

    def reserve(self) -> float:
        """Claim the next start time; return how long to wait before sending."""
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start, self._paused_until)
            self._next_start = start + self.interval
        return start - now

    def limited(self, pause: float | None) -> None:
        """Record a 429: slow the pace; pause all starts for ``pause`` seconds."""
        with self._lock:
            self.interval = min(max(self.interval * 2, self.first_backoff), SLOWEST)
            if pause:
                self._paused_until = max(self._paused_until, self._clock() + pause)

    def succeeded(self) -> None:
        """Record a success: speed back up toward the configured pace."""
        with self._lock:
            if self.interval > self.base:
                faster = self.interval * RECOVERY
                # Below a twentieth of a second the spacing no longer matters.
                self.interval = self.base if faster < max(self.base, 0.05) else faster
