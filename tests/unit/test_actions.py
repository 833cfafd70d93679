"""The one executor of readiness actions: every action reaches RDS, "not yet" becomes a wait, the rest is raised."""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, cast

import pytest

from aurora_clone.actions import ActionExecutor, NotRecordedError
from aurora_clone.clone_state import BACKTRACKED_TO_TAG, ClusterView, InstanceView
from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import (
    Act,
    Action,
    Backtrack,
    Broken,
    CreateInstance,
    DeleteCluster,
    DeleteInstance,
    ModifyCluster,
    ModifyInstance,
    Wait,
)
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore

OURS = {MANAGED_BY_TAG: MANAGED_BY_VALUE}
CLUSTER = ClusterView(
    "clone-1",
    "available",
    "aurora-postgresql",
    arn="arn:aws:rds:eu-west-1:123456789012:cluster:clone-1",
    tags=OURS,
    instances=(InstanceView("clone-1-1", "available", "db.r6g.large", is_writer=True, tags=OURS),),
)

# One of each action the planner can ask for.
ONE_OF_EACH: dict[type, Action] = {
    CreateInstance: CreateInstance("clone-1-2", "db.r6g.large", None),
    ModifyInstance: ModifyInstance("clone-1-1", instance_class="db.r6g.xlarge"),
    DeleteInstance: DeleteInstance("clone-1-1"),
    ModifyCluster: ModifyCluster(port=5433),
    Backtrack: Backtrack("2026-11-28T10:00:00Z"),
    DeleteCluster: DeleteCluster("clone-1", "clone-1-final"),
}


class RecordingRds:
    """Records each RDS call; raises what ``refuse`` names for an operation."""

    def __init__(self, refuse: dict[str, RdsError] | None = None) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
        self.refuse = refuse or {}

    def __getattr__(self, operation: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            self.calls.append((operation, args, kwargs))
            if operation in self.refuse:
                raise self.refuse[operation]

        return call


class MemoryLedger:
    """The ledger part of the request table, in memory: what the tool made."""

    def __init__(self, *records: MadeRecord) -> None:
        self.records = {record.cluster_id: record for record in records}

    def made(self, cluster_id: str) -> MadeRecord | None:
        return self.records.get(cluster_id.lower())

    def record_instance(self, cluster_id: str, instance_id: str) -> bool:
        record = self.records.get(cluster_id.lower())
        if record is None:
            return False
        self.records[record.cluster_id] = dataclasses.replace(record, instances=record.instances | {instance_id})
        return True

    def forget_made(self, cluster_id: str) -> None:
        self.records.pop(cluster_id.lower(), None)


def made_clone_1() -> MemoryLedger:
    return MemoryLedger(MadeRecord("clone-1", "clone", request="t", instances=frozenset({"clone-1-1"})))


def executor(rds: RecordingRds, ledger: MemoryLedger | None = None) -> ActionExecutor:
    return ActionExecutor(cast(RdsGateway, rds), cast(RequestStore, ledger or made_clone_1()))


def test_every_kind_of_action_is_covered_here() -> None:
    assert set(ONE_OF_EACH) == set(typing.get_args(Action))


@pytest.mark.parametrize("kind", sorted(kind.__name__ for kind in ONE_OF_EACH))
def test_every_action_reaches_rds(kind: str) -> None:
    (action,) = [action for action in ONE_OF_EACH.values() if type(action).__name__ == kind]
    rds = RecordingRds()
    executor(rds).run(action, CLUSTER)
    assert rds.calls, f"{kind} was skipped"


def test_actions_go_to_the_calls_they_stand_for() -> None:
    rds = RecordingRds()
    step = Act(tuple(ONE_OF_EACH.values()), "everything")

    assert executor(rds).carry_out(step, CLUSTER) is step

    assert [operation for operation, _, _ in rds.calls] == [
        "create_instance",
        "modify_instance",
        "delete_instance",
        "modify_cluster",
        "backtrack_cluster",
        "add_tags",
        "delete_cluster",
    ]
    create = rds.calls[0][2]
    assert (create["cluster_id"], create["engine"], create["tags"]) == ("clone-1", "aurora-postgresql", OURS)
    assert rds.calls[5][1] == (CLUSTER.arn, {BACKTRACKED_TO_TAG: "2026-11-28T10:00:00Z"})
    assert rds.calls[6][1] == ("clone-1", "clone-1-final")


def test_rds_saying_not_yet_is_a_wait_and_stops_the_step() -> None:
    busy = RdsError("InvalidDBInstanceState", "DB instance 'clone-1-1' is not in a state that allows this right now.")
    rds = RecordingRds(refuse={"delete_instance": busy})
    step = Act((DeleteInstance("clone-1-1"), DeleteCluster("clone-1")), "deleting")

    outcome = executor(rds).carry_out(step, CLUSTER)

    assert isinstance(outcome, Wait) and "RDS says not yet" in outcome.why and "deleting" in outcome.why
    assert [operation for operation, _, _ in rds.calls] == ["delete_instance"]


def test_any_other_refusal_is_raised() -> None:
    denied = RdsError("AccessDenied", "The function's role may not do this: no.")
    rds = RecordingRds(refuse={"modify_cluster": denied})

    with pytest.raises(RdsError) as raised:
        executor(rds).carry_out(Act((ModifyCluster(port=5433),), "port"), CLUSTER)
    assert raised.value is denied


def test_tear_down_deletes_instances_first_and_leaves_protected_clusters_alone() -> None:
    rds = RecordingRds()
    step = executor(rds).tear_down(CLUSTER)
    assert isinstance(step, Act) and [operation for operation, _, _ in rds.calls] == ["delete_instance"]

    protected = RecordingRds()
    kept = executor(protected).tear_down(ClusterView("clone-1", "available", "aurora-mysql", deletion_protection=True))
    assert isinstance(kept, Broken) and protected.calls == []


@pytest.mark.parametrize("kind", sorted(kind.__name__ for kind in ONE_OF_EACH))
def test_no_action_reaches_a_cluster_the_ledger_does_not_name(kind: str) -> None:
    (action,) = [action for action in ONE_OF_EACH.values() if type(action).__name__ == kind]
    rds = RecordingRds()
    with pytest.raises(NotRecordedError, match="no record of making it"):
        executor(rds, MemoryLedger()).run(action, CLUSTER)  # tagged as ours, never recorded
    assert rds.calls == []


@pytest.mark.parametrize("action", [DeleteInstance("clone-1-9"), ModifyInstance("clone-1-9", "db.r6g.xlarge")])
def test_an_instance_the_tool_did_not_create_is_left_alone(action: Action) -> None:
    rds = RecordingRds()
    with pytest.raises(NotRecordedError, match="clone-1-9"):
        executor(rds).run(action, CLUSTER)
    assert rds.calls == []


def test_an_instance_is_recorded_before_it_is_created_and_a_deleted_cluster_leaves_the_ledger() -> None:
    ledger = made_clone_1()
    rds = RecordingRds()
    executor(rds, ledger).run(CreateInstance("clone-1-2", "db.r6g.large", None), CLUSTER)
    made = ledger.made("clone-1")
    assert made is not None and "clone-1-2" in made.instances

    executor(rds, ledger).run(DeleteCluster("clone-1"), CLUSTER)
    assert ledger.made("clone-1") is None
