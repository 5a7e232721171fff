"""A token bucket for /start: a burst, then a steady rate (rate_limit_burst, rate_limit_per_minute).

Each accepted /start can mean a browser start, so a looping automation or a hostile sender must not
be able to thrash Chromium. Refusals are 429 with Retry-After, and change nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, burst: int, per_minute: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity, self.rate = float(burst), per_minute / 60.0
        self.tokens, self.clock = float(burst), clock
        self.updated = clock()

    def take(self) -> float:
        """Spend one token: 0.0 when allowed, else the seconds until one is available."""
        now = self.clock()
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate
