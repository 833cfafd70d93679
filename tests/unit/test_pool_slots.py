"""Clone slots and the facts behind them: families by CloneGroupId, live members, pool copies and their data time."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta

import pytest

from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE, SOURCE_TAG
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG, ClusterFacts, Snapshot
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT, free_slots, has_live_clones, slots_used

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
CREATED = NOW - timedelta(days=30)
TOOL = {MANAGED_BY_TAG: MANAGED_BY_VALUE}


def cluster(
    identifier: str,
    group: str | None = None,
    status: str = "available",
    tags: Mapping[str, str] | None = None,
    created: datetime = CREATED,
    instance_count: int | None = None,
) -> ClusterFacts:
    return ClusterFacts(identifier, status, "aurora-postgresql", group, created, tags or {}, instance_count)


def clones(group: str, count: int, status: str = "available", prefix: str = "clone") -> list[ClusterFacts]:
    return [cluster(f"{prefix}-{group}-{n}", group, status) for n in range(1, count + 1)]


SOURCE = cluster("prod-db", "g-prod")


# --- slots -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("others", "used"),
    [
        pytest.param([], 0, id="alone"),
        pytest.param(clones("g-prod", 3), 3, id="three-clones"),
        pytest.param(clones("g-prod", 15), 15, id="fifteen-clones"),
        pytest.param(clones("g-prod", 2, "creating"), 2, id="creating-clones-hold-slots"),
        pytest.param(clones("g-prod", 2, "backing-up"), 2, id="backing-up-clones-hold-slots"),
        pytest.param(clones("g-prod", 2, "failed"), 2, id="failed-clones-still-exist"),
        pytest.param(clones("g-prod", 2, "deleting"), 2, id="deleting-clones-hold-slots-until-gone"),
        pytest.param(clones("g-prod", 2, "deleted"), 0, id="deleted-clones-free-slots"),
        pytest.param(clones("g-other", 4), 0, id="other-family"),
        pytest.param([cluster("stray", None)], 0, id="never-cloned-neighbour"),
        pytest.param(
            [*clones("g-prod", 3), *clones("g-prod", 1, "deleting", "old"), *clones("g-other", 5)],
            4,
            id="mixed",
        ),
    ],
)
def test_source_slots_counted_from_the_family_rds_lists(others: list[ClusterFacts], used: int) -> None:
    snapshot = Snapshot((SOURCE, *others))

    assert slots_used(SOURCE, snapshot) == used
    assert free_slots(SOURCE, snapshot) == CLONE_SLOT_LIMIT - used


@pytest.mark.parametrize(
    "group",
    [pytest.param(None, id="no-group-id"), pytest.param("", id="empty-group-id")],
)
def test_never_cloned_cluster_uses_no_slots(group: str | None) -> None:
    loner = cluster("prod-db", group)
    # Others without a group id are not a family of their own.
    snapshot = Snapshot((loner, cluster("other-1", group), cluster("other-2", group)))

    assert slots_used(loner, snapshot) == 0
    assert free_slots(loner, snapshot) == CLONE_SLOT_LIMIT


def test_clone_counts_original_and_siblings() -> None:
    family = clones("g-prod", 3)
    snapshot = Snapshot((SOURCE, *family))

    # Every member of a family sees the same family: the original and the other clones.
    assert slots_used(family[0], snapshot) == 3


def test_cluster_outside_snapshot_counted_against_snapshot() -> None:
    snapshot = Snapshot(tuple(clones("g-prod", 2)))

    assert slots_used(SOURCE, snapshot) == 2


@pytest.mark.parametrize(
    ("used", "limit", "free"),
    [
        pytest.param(0, 15, 15, id="empty"),
        pytest.param(14, 15, 1, id="last-slot"),
        pytest.param(15, 15, 0, id="full"),
        pytest.param(17, 15, 0, id="over-limit-never-negative"),
        pytest.param(3, 5, 2, id="lower-limit"),
        pytest.param(6, 5, 0, id="over-lower-limit"),
    ],
)
def test_free_slots_limit_minus_used(used: int, limit: int, free: int) -> None:
    snapshot = Snapshot((SOURCE, *clones("g-prod", used)))

    assert free_slots(SOURCE, snapshot, limit) == free


# --- cluster facts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "live"),
    [
        pytest.param("available", True, id="available"),
        pytest.param("creating", True, id="creating"),
        pytest.param("backing-up", True, id="backing-up"),
        pytest.param("stopped", True, id="stopped"),
        pytest.param("failed", True, id="failed"),
        pytest.param("deleting", False, id="deleting"),
        pytest.param("deleted", False, id="deleted"),
    ],
)
def test_is_live_unless_being_deleted(status: str, live: bool) -> None:
    assert cluster("c", status=status).is_live is live


@pytest.mark.parametrize(
    ("status", "instance_count", "accepts"),
    [
        pytest.param("available", None, True, id="available-instances-unknown"),
        pytest.param("available", 1, True, id="available-with-instance"),
        pytest.param("available", 0, False, id="available-without-instance"),
        pytest.param("creating", None, False, id="creating"),
        pytest.param("backing-up", 1, False, id="backing-up"),
        pytest.param("stopped", 1, False, id="stopped"),
    ],
)
def test_accepts_clones_only_available_with_instance(status: str, instance_count: int | None, accepts: bool) -> None:
    assert cluster("c", status=status, instance_count=instance_count).accepts_clones is accepts


@pytest.mark.parametrize(
    ("tags", "copy_of", "made_by_tool"),
    [
        pytest.param({**TOOL, COPY_OF_TAG: "prod-db"}, "prod-db", True, id="pool-copy"),
        pytest.param({COPY_OF_TAG: "prod-db"}, "prod-db", False, id="copy-tag-from-someone-else"),
        pytest.param({**TOOL, SOURCE_TAG: "prod-db"}, None, True, id="clone-made-by-tool"),
        pytest.param({**TOOL, COPY_OF_TAG: ""}, None, True, id="empty-copy-tag"),
        pytest.param({MANAGED_BY_TAG: "terraform"}, None, False, id="other-tool"),
        pytest.param({}, None, False, id="untagged"),
    ],
)
def test_tags_read_as_copy_of_and_maker(tags: dict[str, str], copy_of: str | None, made_by_tool: bool) -> None:
    facts = cluster("c", tags=tags)

    assert facts.copy_of == copy_of
    assert facts.made_by_tool is made_by_tool


@pytest.mark.parametrize(
    ("tags", "data_time"),
    [
        pytest.param({DATA_TIME_TAG: "2026-11-20T08:00:00Z"}, datetime(2026, 11, 20, 8, tzinfo=UTC), id="tag"),
        pytest.param(
            {DATA_TIME_TAG: "2026-11-20T09:00:00+01:00"}, datetime(2026, 11, 20, 8, tzinfo=UTC), id="tag-offset"
        ),
        pytest.param({}, CREATED, id="no-tag-created"),
        pytest.param({DATA_TIME_TAG: ""}, CREATED, id="empty-tag-created"),
        pytest.param({DATA_TIME_TAG: "last tuesday"}, CREATED, id="garbled-tag-created"),
        pytest.param({DATA_TIME_TAG: "2026-11-20T08:00:00"}, CREATED, id="naive-tag-created"),
    ],
)
def test_data_time_from_tag_else_created(tags: dict[str, str], data_time: datetime) -> None:
    assert cluster("c", tags=tags).data_time == data_time


def test_naive_created_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        cluster("c", created=datetime(2026, 11, 1))


# --- snapshot --------------------------------------------------------------------------------------------------------


def test_snapshot_repeated_cluster_refused() -> None:
    with pytest.raises(ValueError, match="prod-db"):
        Snapshot((SOURCE, cluster("PROD-DB")))


@pytest.mark.parametrize(
    ("identifier", "found"),
    [
        pytest.param("prod-db", "prod-db", id="exact"),
        pytest.param("Prod-DB", "prod-db", id="other-case"),
        pytest.param("staging-db", None, id="missing"),
    ],
)
def test_snapshot_get_by_identifier(identifier: str, found: str | None) -> None:
    snapshot = Snapshot((SOURCE, cluster("other-db")))

    facts = snapshot.get(identifier)

    assert (facts.identifier if facts else None) == found


def test_snapshot_family_members_rds_still_lists() -> None:
    members = [*clones("g-prod", 2), *clones("g-prod", 1, "deleting", "old")]
    snapshot = Snapshot((SOURCE, *members, *clones("g-prod", 1, "deleted", "gone"), *clones("g-other", 2)))

    assert {facts.identifier for facts in snapshot.family("g-prod")} == {"prod-db", *(m.identifier for m in members)}
    assert snapshot.family(None) == ()
    assert snapshot.family("") == ()
    assert len(snapshot) == 7
    assert tuple(snapshot) == snapshot.clusters


def test_snapshot_copies_of_made_by_tool_newest_first() -> None:
    def copy(identifier: str, data_time: str, source: str = "prod-db", maker: Mapping[str, str] = TOOL) -> ClusterFacts:
        return cluster(identifier, tags={**maker, COPY_OF_TAG: source, DATA_TIME_TAG: data_time})

    snapshot = Snapshot(
        (
            SOURCE,
            copy("copy-old", "2026-11-19T10:00:00Z"),
            copy("copy-new", "2026-11-21T10:00:00Z"),
            copy("copy-mid", "2026-11-20T10:00:00Z"),
            copy("copy-foreign", "2026-11-22T09:00:00Z", maker={}),
            copy("copy-other-source", "2026-11-22T09:00:00Z", source="other-db"),
            cluster("prod-db-self-tagged", tags={**TOOL, COPY_OF_TAG: "prod-db-self-tagged"}),
        )
    )

    copies = snapshot.copies_of("PROD-DB")

    assert [facts.identifier for facts in copies] == ["copy-new", "copy-mid", "copy-old"]
    assert snapshot.copies_of("prod-db-self-tagged") == ()  # a cluster is never a copy of itself


def test_a_family_being_deleted_holds_its_slots_but_no_longer_needs_its_source() -> None:
    snapshot = Snapshot((SOURCE, *clones("g-prod", 15, "deleting")))

    assert free_slots(SOURCE, snapshot) == 0  # RDS still lists them: a clone now would be a full copy
    assert not has_live_clones(SOURCE, snapshot)
