"""plan_sweep: clones whose stack is gone go, after a grace period, unless retained; nothing else is listed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from aurora_clone.ownership import LOGICAL_ID_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, STACK_ID_TAG
from aurora_clone.pool.model import COPY_OF_TAG, ClusterFacts, Snapshot
from aurora_clone.sweep import RETAIN_TAG, owning_resources, owning_stacks, plan_sweep

NOW = datetime(2026, 11, 22, 12, tzinfo=UTC)
STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/qa-env/0a1b"
OURS = {MANAGED_BY_TAG: MANAGED_BY_VALUE, STACK_ID_TAG: STACK, LOGICAL_ID_TAG: "TestDatabase"}


def clone(
    name: str = "qa-db",
    age: timedelta = timedelta(hours=3),
    status: str = "available",
    tags: dict[str, str] | None = None,
) -> ClusterFacts:
    return ClusterFacts(name, status, "aurora-mysql", "g-1", NOW - age, {**OURS, **(tags or {})})


@pytest.mark.parametrize(
    ("stack_status", "swept"),
    [
        pytest.param(None, True, id="stack-gone"),
        pytest.param("DELETE_COMPLETE", True, id="stack-delete-complete"),
        pytest.param("CREATE_COMPLETE", False, id="stack-alive"),
        pytest.param("DELETE_IN_PROGRESS", False, id="stack-being-deleted"),
        pytest.param("UPDATE_ROLLBACK_FAILED", False, id="stack-stuck"),
    ],
)
def test_clone_swept_only_when_its_stack_is_gone(stack_status: str | None, swept: bool) -> None:
    plan = plan_sweep(Snapshot((clone(),)), {STACK: stack_status}, NOW)

    assert [o.cluster_id for o in plan.orphans] == (["qa-db"] if swept else [])


def test_orphan_reason_names_stack_and_resource() -> None:
    (orphan,) = plan_sweep(Snapshot((clone(),)), {STACK: None}, NOW).orphans

    assert "qa-env" in orphan.reason and "no longer exists" in orphan.reason and "TestDatabase" in orphan.reason


@pytest.mark.parametrize(
    "cluster",
    [
        pytest.param(clone(age=timedelta(minutes=30)), id="within-grace"),
        pytest.param(clone(tags={RETAIN_TAG: "true"}), id="retained-by-tag"),
        pytest.param(clone(tags={RETAIN_TAG: "TRUE"}), id="retained-upper-case"),
    ],
)
def test_orphan_kept_with_a_reason(cluster: ClusterFacts) -> None:
    plan = plan_sweep(Snapshot((cluster,)), {STACK: None}, NOW)

    assert plan.orphans == ()
    assert len(plan.kept) == 1 and cluster.identifier in plan.kept[0]


@pytest.mark.parametrize(
    "cluster",
    [
        pytest.param(ClusterFacts("prod-db", "available", "aurora-mysql", "g-1", NOW - timedelta(days=9)), id="others"),
        pytest.param(clone(tags={COPY_OF_TAG: "prod-db"}), id="pool-copy"),
        pytest.param(clone(status="deleting"), id="already-deleting"),
        pytest.param(
            ClusterFacts("half", "available", "aurora-mysql", None, NOW - timedelta(days=1), {MANAGED_BY_TAG: "x"}),
            id="other-managed-by",
        ),
    ],
)
def test_never_listed_clusters(cluster: ClusterFacts) -> None:
    plan = plan_sweep(Snapshot((cluster,)), {STACK: None}, NOW)

    assert plan.orphans == () and plan.kept == ()


def test_owning_stacks_lists_each_stack_once() -> None:
    snapshot = Snapshot((clone("a"), clone("b"), ClusterFacts("c", "available", "aurora-mysql", None, NOW)))

    assert owning_stacks(snapshot) == (STACK,)


RESOURCE = (STACK, "TestDatabase")


@pytest.mark.parametrize(
    ("named", "owned", "age", "swept"),
    [
        pytest.param("qa-db", frozenset(), timedelta(hours=3), False, id="resource-names-it"),
        pytest.param("qa-db-new", frozenset(), timedelta(hours=3), True, id="resource-names-another"),
        pytest.param(None, frozenset(), timedelta(hours=3), True, id="no-such-resource"),
        pytest.param("qa-db-new", frozenset({"qa-db"}), timedelta(hours=3), False, id="pending-request-owns-it"),
        pytest.param("qa-db-new", frozenset(), timedelta(minutes=5), False, id="younger-than-grace"),
    ],
)
def test_clone_of_a_live_stack_swept_only_when_its_resource_names_another_and_no_request_owns_it(
    named: str | None, owned: frozenset[str], age: timedelta, swept: bool
) -> None:
    plan = plan_sweep(
        Snapshot((clone(age=age),)), {STACK: "UPDATE_COMPLETE"}, NOW, resource_ids={RESOURCE: named}, owned=owned
    )

    assert [o.cluster_id for o in plan.orphans] == (["qa-db"] if swept else [])
    if swept:
        assert "TestDatabase" in plan.orphans[0].reason and "no pending request owns it" in plan.orphans[0].reason


def test_clone_of_a_live_stack_whose_resource_was_not_looked_up_is_kept() -> None:
    plan = plan_sweep(Snapshot((clone(),)), {STACK: "CREATE_COMPLETE"}, NOW, resource_ids={}, owned=frozenset())

    assert plan.orphans == ()


def test_owning_resources_lists_only_clones_of_live_stacks() -> None:
    gone = "arn:aws:cloudformation:us-east-1:123456789012:stack/gone/0c"
    snapshot = Snapshot((clone("a"), clone("b", tags={STACK_ID_TAG: gone}), clone("c", tags={COPY_OF_TAG: "prod"})))

    assert owning_resources(snapshot, {STACK: "CREATE_COMPLETE", gone: None}) == (RESOURCE,)
