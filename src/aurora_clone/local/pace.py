"""When things move in the local world: RDS's ``Stage``s, how long each lasts (``Durations``) and the ``Pace``.

Each status that RDS leaves by itself (a *stage*: ``creating``, ``backing-up``, ``modifying``, ``deleting``,
``backtracking``, ...) gets a due time when it is entered; the pace says when that is:

- ``ManualPace`` (the in-process tests): every due time is "the next step"; nothing moves until
  ``pace.advance()`` and ``RdsRules.tick()``, and then everything moves exactly one stage.
- ``WorldPace`` (``LocalAws``): the due time is the stage's duration from ``Durations`` (world seconds,
  real seconds divided by the time scale); a ticker calls ``tick()`` and every stage whose due time has
  passed ends, one after another if several have.
"""

from __future__ import annotations

import datetime
import random
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from aurora_clone.clock import WorldClock


class Stage(StrEnum):
    """A status RDS leaves by itself; the value names its field in ``Durations``."""

    CLUSTER_CREATING = "cluster_creating"
    FULL_COPY_CREATING = "full_copy_creating"
    CLUSTER_BACKING_UP = "cluster_backing_up"
    CLUSTER_MODIFYING = "cluster_modifying"
    CLUSTER_DELETING = "cluster_deleting"
    BACKTRACKING = "backtracking"
    CLUSTER_OTHER = "cluster_other"
    INSTANCE_CREATING = "instance_creating"
    INSTANCE_BACKING_UP = "instance_backing_up"
    INSTANCE_MODIFYING = "instance_modifying"
    INSTANCE_DELETING = "instance_deleting"
    INSTANCE_OTHER = "instance_other"


@dataclass(frozen=True)
class Durations:
    """How long each stage lasts, in world seconds.

    No published figure exists for most of these; they keep the proportions reported for Aurora: a
    copy-on-write clone's cluster takes minutes, its first instance longer, a full copy far longer.
    ``spread`` is the sigma of the lognormal factor ``draw`` applies around the base value (its median).

        >>> Durations().draw(Stage.INSTANCE_CREATING)
        420.0
        >>> 200 < Durations().draw("instance_creating", random.Random(7)) < 900
        True
    """

    cluster_creating: float = 240.0
    full_copy_creating: float = 1800.0
    cluster_backing_up: float = 60.0
    cluster_modifying: float = 150.0
    cluster_deleting: float = 60.0
    backtracking: float = 120.0
    cluster_other: float = 180.0
    instance_creating: float = 420.0
    instance_backing_up: float = 60.0
    instance_modifying: float = 300.0
    instance_deleting: float = 180.0
    instance_other: float = 120.0
    spread: float = 0.3

    def base(self, kind: Stage | str) -> float:
        """The stage's base duration."""
        return float(getattr(self, Stage(kind).value))

    def draw(self, kind: Stage | str, rng: random.Random | None = None) -> float:
        """A duration for one pass through the stage: the base, or with ``rng`` a lognormal draw around it."""
        base = self.base(kind)
        if rng is None or base <= 0:
            return base
        return base * rng.lognormvariate(0.0, self.spread)


MANUAL_DURATIONS = Durations(cluster_backing_up=0.0)
"""Durations for manual stepping: clusters go ``creating`` -> ``available`` in one step."""


class Pace(Protocol):
    """When stages end. Times are in the pace's own unit (steps or world seconds)."""

    def now(self) -> float: ...

    def ends(self, start: float, seconds: float) -> float:
        """When a stage that began at ``start`` and lasts ``seconds`` world seconds ends."""
        ...

    def unknown_start(self) -> float:
        """The start assumed for a stage entered behind the rules' back (moto itself, before installing)."""
        ...

    def wall_at(self, moment: float) -> datetime.datetime:
        """The world's UTC date and time at ``moment``."""
        ...


class ManualPace:
    """Every stage ends at the next ``advance()``; time counts the steps, dates are real time."""

    def __init__(self) -> None:
        self.step = 0

    def advance(self) -> None:
        self.step += 1

    def now(self) -> float:
        return float(self.step)

    def ends(self, start: float, seconds: float) -> float:
        return start + 1.0

    def unknown_start(self) -> float:
        return self.now() - 1.0

    def wall_at(self, moment: float) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)


class WorldPace:
    """World time: the world clock's seconds since the start; dates are the world clock's (``aurora_clone.clock``)."""

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self.clock = WorldClock(epoch=time.time(), scale=time_scale)

    def now(self) -> float:
        return self.clock.elapsed()

    def ends(self, start: float, seconds: float) -> float:
        return start + seconds

    def unknown_start(self) -> float:
        return self.now()

    def wall_at(self, moment: float) -> datetime.datetime:
        return self.clock.at(moment)
