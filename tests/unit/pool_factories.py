"""Snapshots for the pool's pure tests: a source, pool copies and clones, at a fixed ``NOW``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from itertools import chain

from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG, ClusterFacts, Snapshot
from aurora_clone.timespec import format_timestamp

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
SOURCE_ID = "prod-db"
ENGINE = "aurora-mysql"
TOOL = {MANAGED_BY_TAG: MANAGED_BY_VALUE}
MAX_AGE = timedelta(days=3)
NEWEST, FRESH, STALE = timedelta(hours=2), timedelta(days=1), timedelta(days=4)


def source(used: int = 0, status: str = "available", instance_count: int | None = 1) -> list[ClusterFacts]:
    """The source and ``used`` live clones of it."""
    root = ClusterFacts(SOURCE_ID, status, ENGINE, "g-prod", NOW - timedelta(days=400), {}, instance_count)
    return [root, *clones("g-prod", used, prefix="env")]


def copy(
    identifier: str,
    age: timedelta,
    used: int = 0,
    status: str = "available",
    maker: Mapping[str, str] = TOOL,
    of: str = SOURCE_ID,
    instance_count: int | None = 1,
    clone_status: str = "available",
    copy_took: timedelta = timedelta(minutes=10),
) -> list[ClusterFacts]:
    """A pool copy whose data is ``age`` old, made ``copy_took`` later, and ``used`` clones of it."""
    data_time = NOW - age
    tags = {**maker, COPY_OF_TAG: of, DATA_TIME_TAG: format_timestamp(data_time)}
    group = f"g-{identifier}" if used else None  # a family begins at the first clone
    root = ClusterFacts(identifier, status, ENGINE, group, data_time + copy_took, tags, instance_count)
    return [root, *clones(group or "", used, clone_status, prefix=identifier)]


def clones(group: str, count: int, status: str = "available", prefix: str = "clone") -> list[ClusterFacts]:
    created = NOW - timedelta(hours=1)
    return [ClusterFacts(f"{prefix}-c{n}", status, ENGINE, group, created) for n in range(1, count + 1)]


def snapshot(*groups: list[ClusterFacts]) -> Snapshot:
    return Snapshot(tuple(chain.from_iterable(groups)))
