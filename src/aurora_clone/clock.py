"""The one clock every part of the tool reads: ``now()`` (Unix seconds) and ``utcnow()`` (an aware datetime).

On AWS it is the system clock. In the local world it is the world's clock (``WorldClock``), which runs
``1 / scale`` times faster than real time from the moment the world started: the world installs it in its
own process, its Lambda workers install it from ``WORLD_CLOCK_VARIABLE``, and the CLI installs it when it
talks to a local world. So ages, data times, deadlines and ``BacktrackTo`` agree with the dates the
emulated RDS gives, wherever they are read.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

WORLD_CLOCK_VARIABLE = "AURORA_CLONE_WORLD_CLOCK"  # "<epoch>/<scale>", set for the local world's workers

_source: Callable[[], float] = time.time


def now() -> float:
    """Seconds since the Unix epoch, on the clock in use."""
    return _source()


def utcnow() -> datetime:
    """The date on the clock in use, in UTC."""
    return datetime.fromtimestamp(_source(), UTC)


def use(source: Callable[[], float]) -> None:
    """Read ``source`` from now on (a ``WorldClock``'s ``now``; ``time.time`` is the system clock)."""
    global _source
    _source = source


@contextlib.contextmanager
def using(source: Callable[[], float]) -> Iterator[None]:
    """Read ``source`` inside the block, the clock in use before it after."""
    before = _source
    use(source)
    try:
        yield
    finally:
        use(before)


@dataclass(frozen=True)
class WorldClock:
    """A world's time: equal to real time at ``epoch`` (Unix seconds), then ``1 / scale`` times as fast.

    Every process computes it from the shared system clock, so they all read the same time."""

    epoch: float
    scale: float

    def __post_init__(self) -> None:
        if self.scale <= 0:
            raise ValueError("a world clock's scale must be positive")

    def now(self) -> float:
        return self.epoch + (time.time() - self.epoch) / self.scale

    def elapsed(self) -> float:
        """World seconds since the world started."""
        return (time.time() - self.epoch) / self.scale

    def at(self, world_seconds: float) -> datetime:
        """The date ``world_seconds`` after the world started."""
        return datetime.fromtimestamp(self.epoch + world_seconds, UTC)

    def encode(self) -> str:
        return f"{self.epoch!r}/{self.scale!r}"

    @classmethod
    def decode(cls, text: str) -> WorldClock:
        epoch, _, scale = text.partition("/")
        return cls(float(epoch), float(scale))
