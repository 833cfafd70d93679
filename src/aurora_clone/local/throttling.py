"""Request limits as AWS applies them: ``Throttling`` (a burst and a refill rate) and ``TokenBuckets``.

The RDS rules use one bucket per account and region over every RDS request (``RdsRules``' throttling, off
unless given); the SDKs retry what a bucket refuses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Throttling:
    """RDS's request limit per account and region: a bucket of ``burst`` tokens refilled at ``rate``/s."""

    burst: int = 300
    rate: float = 12.0


class TokenBuckets:
    """One token bucket per key, in real (monotonic) time; thread-safe."""

    def __init__(self, limits: Throttling, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str]) -> bool:
        """Take one token for ``key``; ``False`` when the bucket is empty."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self._limits.burst), now))
            tokens = min(float(self._limits.burst), tokens + (now - last) * self._limits.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True
            self._buckets[key] = (tokens, now)
            return False
