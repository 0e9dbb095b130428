"""Request-rate limits for partner traffic: per client system and per person behind it.

Fixed windows counted in this process (`window_s` long, from the first request of a key):
with several hub workers each keeps its own counters, so the effective limit is the
configured one times the number of workers. A refused request is told when its window ends
(HTTP 429 with `Retry-After`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

#: Past this many keys, windows that have ended are dropped so memory stays bounded.
PRUNE_AT = 10_000


class RateLimiter:
    """Counts requests per key in fixed windows."""

    def __init__(self, window_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.window_s = window_s
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}

    def hit(self, key: str, limit: int) -> int | None:
        """Count one request for `key`; None if within `limit`, else the whole seconds until
        its window ends (at least 1), for `Retry-After`. A refused request is not counted."""
        now = self._clock()
        started, count = self._windows.get(key, (now, 0))
        if now - started >= self.window_s:
            started, count = now, 0
        if count >= limit:
            return max(1, math.ceil(started + self.window_s - now))
        if len(self._windows) >= PRUNE_AT and key not in self._windows:
            self._prune(now)
        self._windows[key] = (started, count + 1)
        return None

    def _prune(self, now: float) -> None:
        ended = [k for k, (s, _) in self._windows.items() if now - s >= self.window_s]
        for k in ended:
            del self._windows[k]
