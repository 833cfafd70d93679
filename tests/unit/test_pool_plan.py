"""plan_pool and parse_pool_config: enough fresh copies for the target, stale ones deleted, the same plan twice."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest

from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG, ClusterFacts, Snapshot
from aurora_clone.pool.plan import PoolConfigError, PoolPlan, PoolPolicy, parse_pool_config, plan_pool
from aurora_clone.timespec import format_timestamp
from tests.unit.pool_factories import (
    ENGINE,
    FRESH,
    NEWEST,
    NOW,
    SOURCE_ID,
    STALE,
    TOOL,
    copy,
    snapshot,
    source,
)


def carried_out(plan: PoolPlan, state: Snapshot, at: datetime) -> Snapshot:
    """``state`` after the plan's copies were requested at ``at`` and its deletions begun, as RDS would list it."""
    tags = {**TOOL, COPY_OF_TAG: plan.source_id, DATA_TIME_TAG: format_timestamp(at)}
    created = tuple(
        ClusterFacts(f"{plan.source_id}-copy-{at:%H%M}-{n}", "creating", ENGINE, None, at, tags, 0)
        for n in range(1, plan.copies_to_create + 1)
    )
    kept = tuple(
        ClusterFacts(c.identifier, "deleting", c.engine, c.clone_group_id, c.created, c.tags, c.instance_count)
        if c.identifier in plan.copies_to_delete
        else c
        for c in state
    )
    return Snapshot(kept + created)


def plan(state: Snapshot, spare: int, **policy: Any) -> PoolPlan:
    return plan_pool(PoolPolicy(SOURCE_ID, spare, **policy), state, NOW)


# --- how many copies -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "spare", "free", "future", "create"),
    [
        pytest.param(snapshot(source()), 10, 15, 15, 0, id="source-alone-meets-target"),
        pytest.param(snapshot(source()), 15, 15, 15, 0, id="source-exactly-target"),
        pytest.param(snapshot(source(used=1)), 15, 14, 14, 1, id="one-slot-short"),
        pytest.param(snapshot(source(used=15)), 1, 0, 0, 1, id="source-full"),
        pytest.param(snapshot(source(used=15)), 30, 0, 0, 2, id="two-copies-for-30"),
        pytest.param(snapshot(source(used=15)), 31, 0, 0, 3, id="rounded-up"),
        pytest.param(snapshot(source(used=15)), 0, 0, 0, 0, id="no-target-no-copy"),
        pytest.param(snapshot(source(used=10), copy("copy-1", FRESH)), 20, 20, 20, 0, id="source-and-copy-add-up"),
        pytest.param(snapshot(source(used=10), copy("copy-1", FRESH, used=6)), 20, 14, 14, 1, id="copy-partly-used"),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", NEWEST, status="creating", instance_count=0)),
            15,
            0,
            15,
            0,
            id="creating-copy-future-slots",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", NEWEST, status="backing-up")),
            15,
            0,
            15,
            0,
            id="backing-up-copy-future-slots",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", NEWEST, status="creating")),
            30,
            0,
            15,
            1,
            id="creating-copy-covers-part",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", NEWEST, instance_count=0)),
            15,
            0,
            15,
            0,
            id="copy-without-instance-future-slots",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, status="failed")),
            15,
            0,
            0,
            1,
            id="failed-copy-no-slots",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, status="deleting")),
            15,
            0,
            0,
            1,
            id="deleting-copy-no-slots",
        ),
        pytest.param(snapshot(source(used=15), copy("copy-1", STALE)), 15, 0, 0, 1, id="stale-copy-not-counted"),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, maker={})), 15, 0, 0, 1, id="foreign-copy-not-counted"
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, of="other-db")),
            15,
            0,
            0,
            1,
            id="other-sources-copy-not-counted",
        ),
        pytest.param(
            snapshot(source(used=3, instance_count=0), copy("copy-1", FRESH)),
            20,
            15,
            15,
            1,
            id="source-without-instance-no-free-slots",
        ),
    ],
)
def test_copies_created_for_deficit(state: Snapshot, spare: int, free: int, future: int, create: int) -> None:
    result = plan(state, spare)

    assert (result.free_slots, result.future_slots, result.copies_to_create) == (free, future, create)
    assert result.source_id == SOURCE_ID


def test_slot_limit_from_policy_applied() -> None:
    result = plan(snapshot(source(used=5)), 12, slot_limit=5)

    assert result.free_slots == 0
    assert result.copies_to_create == 3
    assert "each copy brings 5" in result.actions[0]


def test_max_copy_age_from_policy_applied() -> None:
    state = snapshot(source(used=15), copy("copy-1", timedelta(days=2)))

    assert plan(state, 15, max_copy_age=timedelta(days=3)).copies_to_create == 0
    stricter = plan(state, 15, max_copy_age=timedelta(days=1))
    assert stricter.copies_to_create == 1
    assert stricter.copies_to_delete == ("copy-1",)


# --- which copies to delete ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "delete"),
    [
        pytest.param(snapshot(source(), copy("copy-1", STALE)), ("copy-1",), id="stale-unused"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, used=2)), (), id="stale-with-clones-kept"),
        pytest.param(snapshot(source(), copy("copy-1", FRESH)), (), id="fresh-kept"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, maker={})), (), id="foreign-never-deleted"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, of="other-db")), (), id="other-sources-copy"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, status="deleting")), (), id="already-deleting"),
        pytest.param(
            snapshot(source(), copy("copy-b", STALE), copy("copy-a", timedelta(days=6)), copy("copy-c", FRESH)),
            ("copy-a", "copy-b"),
            id="several-oldest-first",
        ),
    ],
)
def test_obsolete_copies_deleted(state: Snapshot, delete: tuple[str, ...]) -> None:
    result = plan(state, 0)

    assert result.copies_to_delete == delete
    assert SOURCE_ID not in result.copies_to_delete
    assert sum(action.startswith("Delete ") for action in result.actions) == len(delete)


def test_stale_copy_replaced_and_deleted_together() -> None:
    result = plan(snapshot(source(used=15), copy("copy-old", STALE)), 15)

    assert result.copies_to_create == 1
    assert result.copies_to_delete == ("copy-old",)


# --- the same deficit is filled once ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "spare"),
    [
        pytest.param(snapshot(source(used=15)), 30, id="source-full"),
        pytest.param(snapshot(source(used=4)), 50, id="source-partly-used"),
        pytest.param(snapshot(source(used=15), copy("copy-old", STALE)), 15, id="stale-copy-replaced"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, used=15)), 45, id="copy-full"),
    ],
)
def test_second_run_from_resulting_state_creates_nothing(state: Snapshot, spare: int) -> None:
    first = plan(state, spare)
    after = carried_out(first, state, NOW)

    second = plan_pool(PoolPolicy(SOURCE_ID, spare), after, NOW + timedelta(minutes=1))
    next_day = plan_pool(PoolPolicy(SOURCE_ID, spare), after, NOW + timedelta(hours=20))

    assert first.copies_to_create > 0
    assert second.copies_to_create == 0
    assert second.copies_to_delete == ()
    assert second.future_slots >= spare
    assert next_day.copies_to_create == 0  # copies that take all day to finish are still counted


def test_two_runs_from_same_state_plan_the_same() -> None:
    state = snapshot(source(used=15), copy("copy-old", STALE), copy("copy-1", FRESH, used=15))

    assert plan(state, 30) == plan(state, 30)
    assert plan(state, 30).copies_to_create == 2


def test_raised_target_creates_only_the_difference() -> None:
    state = snapshot(source(used=15))
    after = carried_out(plan(state, 15), state, NOW)

    assert plan(after, 45).copies_to_create == 2


def test_copies_ready_without_clones_keep_target() -> None:
    ready = snapshot(source(used=15), copy("copy-1", NEWEST), copy("copy-2", NEWEST))

    result = plan(ready, 30)

    assert (result.free_slots, result.copies_to_create) == (30, 0)


# --- a source that cannot be planned for -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "says"),
    [
        pytest.param(snapshot(copy("copy-1", STALE)), "the source 'prod-db' was not found", id="source-missing"),
        pytest.param(
            snapshot(source(used=15, status="modifying"), copy("copy-1", STALE)),
            "the source 'prod-db' is 'modifying', not 'available'",
            id="source-modifying",
        ),
        pytest.param(
            snapshot(source(used=15, status="stopped")),
            "the source 'prod-db' is 'stopped', not 'available'",
            id="source-stopped",
        ),
    ],
)
def test_unavailable_source_nothing_planned(state: Snapshot, says: str) -> None:
    result = plan(state, 30)

    assert result.copies_to_create == 0
    assert result.copies_to_delete == ()
    assert any(says in finding for finding in result.findings)
    assert result.actions == (f"Do nothing: {says}.",)


# --- what the plan says ----------------------------------------------------------------------------------------------


def test_findings_describe_every_cluster() -> None:
    state = snapshot(
        source(used=15),
        copy("copy-fresh", FRESH, used=3),
        copy("copy-stale", STALE),
        copy("copy-kept", STALE, used=1),
        copy("copy-foreign", FRESH, maker={}),
    )

    findings = plan(state, 20).findings

    assert findings[0] == (
        "Source 'prod-db': available, 1 instance(s), age P400D, data live, 15 of 15 clone slots used, 0 free."
    )
    assert (
        "Copy 'copy-fresh': available, 1 instance(s), age PT23H50M, data from 2026-11-21T10:00:00Z, "
        "3 of 15 clone slots used, 12 free." in findings
    )
    assert any(
        line.startswith("Copy 'copy-stale'") and line.endswith("older than MaxCopyAge P3D: obsolete.")
        for line in findings
    )
    assert any(
        line.startswith("Copy 'copy-kept'") and line.endswith("kept while it has live clones.") for line in findings
    )
    assert "Ignored 'copy-foreign': tagged as a copy of 'prod-db' but not made by this tool." in findings
    assert findings[-1] == "Free clone slots: 12 now, 12 counting copies on the way; target 20."


def test_actions_say_what_and_why() -> None:
    result = plan(snapshot(source(used=15), copy("copy-old", STALE)), 20)

    assert result.actions == (
        "Create 2 full copies of 'prod-db': 0 free slots counting copies on the way, 20 below the target of 20; "
        "each copy brings 15.",
        "Delete 'copy-old': a copy with data from 2026-11-18T10:00:00Z, older than MaxCopyAge P3D, "
        "with no live clones.",
    )


def test_target_met_action_says_no_copy() -> None:
    result = plan(snapshot(source(used=2)), 10)

    assert result.actions == ("Create no copy: 13 free slots counting copies on the way meet the target of 10.",)


def test_copy_without_instance_to_finish() -> None:
    result = plan(snapshot(source(used=15), copy("copy-1", NEWEST, instance_count=0)), 15)

    assert result.copies_to_finish == ("copy-1",)
    assert any(action.startswith("Add a writer instance to 'copy-1'") for action in result.actions)
    assert plan(snapshot(source(used=15), copy("copy-1", NEWEST)), 15).copies_to_finish == ()


def test_copies_listed_live_only() -> None:
    state = snapshot(
        source(), copy("copy-1", FRESH), copy("copy-2", STALE, status="deleting"), copy("copy-3", FRESH, maker={})
    )

    assert plan(state, 0).copies == ("copy-1",)


def test_dry_run_planned_but_marked() -> None:
    state = snapshot(source(used=15), copy("copy-old", STALE))

    result = plan(state, 15, dry_run=True)

    assert result.dry_run is True
    assert result.copies_to_create == 1
    assert result.copies_to_delete == ("copy-old",)
    assert len(result.actions) == 2
    assert all(action.startswith("[dry run] ") for action in result.actions)
    assert plan(state, 15).dry_run is False


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"spare_slots": -1}, "spare_slots", id="negative-target"),
        pytest.param({"max_copy_age": timedelta(0)}, "max_copy_age", id="zero-age"),
        pytest.param({"slot_limit": 0}, "slot_limit", id="zero-limit"),
    ],
)
def test_pool_policy_invalid_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        PoolPolicy(**{"source_id": SOURCE_ID, "spare_slots": 10, **changes})


# --- the configuration document --------------------------------------------------------------------------------------


def test_config_document_parsed() -> None:
    document = json.dumps(
        {
            "pools": [
                {"source": "prod-db", "spareSlots": 30, "maxCopyAge": "P2D", "dryRun": True},
                {"source": "Billing-DB", "spareSlots": 0},
            ]
        }
    )

    pools = parse_pool_config(document)

    assert pools == (
        PoolPolicy("prod-db", 30, timedelta(days=2), dry_run=True),
        PoolPolicy("billing-db", 0, timedelta(days=3), dry_run=False),
    )


@pytest.mark.parametrize(
    "document",
    [
        pytest.param('{"pools": []}', id="json-no-pools"),
        pytest.param({"pools": []}, id="mapping-no-pools"),
    ],
)
def test_config_without_pools_empty(document: str | dict[str, Any]) -> None:
    assert parse_pool_config(document) == ()


def test_config_slot_limit_carried() -> None:
    pools = parse_pool_config({"pools": [{"source": "prod-db", "spareSlots": 5}]}, slot_limit=10)

    assert pools[0].slot_limit == 10
    assert pools[0].max_copy_age == timedelta(days=3)


def pool(**fields: Any) -> dict[str, Any]:
    return {"pools": [{"source": "prod-db", "spareSlots": 30, **fields}]}


def without(field: str) -> dict[str, Any]:
    document = pool()
    del document["pools"][0][field]
    return document


@pytest.mark.parametrize(
    ("document", "says"),
    [
        pytest.param("{not json", "not valid JSON", id="broken-json"),
        pytest.param("[]", 'a "pools" list', id="top-level-list"),
        pytest.param("{}", 'a "pools" list', id="pools-missing"),
        pytest.param({"pools": {"source": "prod-db"}}, 'a "pools" list', id="pools-not-list"),
        pytest.param({"pools": [], "pool": []}, 'Unknown top-level field "pool"', id="unknown-top-level"),
        pytest.param({"pools": ["prod-db"]}, "Pool 1 must be an object", id="pool-not-object"),
        pytest.param(without("source"), "Pool 1: source is required", id="source-missing"),
        pytest.param(pool(source="1-db"), 'Pool 1: source "1-db" is not a DB cluster identifier', id="source-bad"),
        pytest.param(pool(source=42), "Pool 1: source 42 is not a DB cluster identifier", id="source-number"),
        pytest.param(pool(source=""), 'Pool 1: source "" is not', id="source-empty"),
        pytest.param(without("spareSlots"), "Pool 1 (prod-db): spareSlots is required", id="spare-missing"),
        pytest.param(pool(spareSlots=-1), "spareSlots must be a whole number of 0 or more, got -1", id="negative"),
        pytest.param(pool(spareSlots=2.5), "spareSlots must be a whole number of 0 or more, got 2.5", id="fraction"),
        pytest.param(pool(spareSlots="30"), 'spareSlots must be a whole number of 0 or more, got "30"', id="string"),
        pytest.param(pool(spareSlots=True), "spareSlots must be a whole number of 0 or more, got true", id="bool"),
        pytest.param(pool(maxCopyAge="P1M"), "Pool 1 (prod-db): maxCopyAge 'P1M' counts in years", id="months"),
        pytest.param(pool(maxCopyAge="3 days"), "maxCopyAge '3 days' is not an ISO-8601 duration", id="age-words"),
        pytest.param(pool(maxCopyAge="PT0S"), "maxCopyAge 'PT0S' is zero", id="age-zero"),
        pytest.param(pool(maxCopyAge=3), "maxCopyAge must be an ISO-8601 duration such as P3D, got 3", id="age-num"),
        pytest.param(pool(dryRun="false"), 'Pool 1 (prod-db): dryRun must be true or false, got "false"', id="dry"),
        pytest.param(pool(spareslots=3), 'Pool 1 (prod-db): unknown field "spareslots"', id="unknown-field"),
    ],
)
def test_config_invalid_refused_naming_pool_and_field(document: str | dict[str, Any], says: str) -> None:
    with pytest.raises(PoolConfigError) as raised:
        parse_pool_config(document)

    assert any(says in problem for problem in raised.value.problems), raised.value.problems
    assert str(raised.value).startswith("Invalid pool configuration: ")
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "second",
    [pytest.param("prod-db", id="same-spelling"), pytest.param("PROD-DB", id="other-case")],
)
def test_config_repeated_source_refused(second: str) -> None:
    document = {"pools": [{"source": "prod-db", "spareSlots": 30}, {"source": second, "spareSlots": 5}]}

    with pytest.raises(PoolConfigError) as raised:
        parse_pool_config(document)

    assert raised.value.problems == [
        "Pool 2 (prod-db): source 'prod-db' already has pool 1; give each source one pool."
    ]


def test_config_every_problem_reported() -> None:
    document = {
        "pools": [
            {"source": "prod-db", "spareSlots": -1, "dryRun": "yes"},
            {"spareSlots": 5},
            {"source": "billing-db", "spareSlots": 5, "maxCopyAge": "P1Y"},
        ]
    }

    with pytest.raises(PoolConfigError) as raised:
        parse_pool_config(document)

    labels = [problem.split(":")[0] for problem in raised.value.problems]
    assert labels == ["Pool 1 (prod-db)", "Pool 1 (prod-db)", "Pool 2", "Pool 3 (billing-db)"]
