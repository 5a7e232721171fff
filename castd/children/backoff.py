"""Paced restarts: 0.5 s doubling to a cap, forgiven after a healthy stretch (Frigate/gunicorn style)."""

from __future__ import annotations


class Backoff:
    def __init__(self, first: float = 0.5, cap: float = 30.0, healthy_after: float = 60.0) -> None:
        self.first, self.cap, self.healthy_after = first, cap, healthy_after
        self.failures = 0  # consecutive failures not yet forgiven

    def next_delay(self) -> float:
        """Record a failure and return how long to wait before the next try."""
        delay = min(self.cap, self.first * (2 ** self.failures))
        self.failures += 1
        return delay

    def healthy_since(self, seconds: float) -> None:
        """Call while running well; after `healthy_after` seconds the failure count resets."""
        if seconds >= self.healthy_after:
            self.failures = 0

    def reset(self) -> None:
        self.failures = 0
