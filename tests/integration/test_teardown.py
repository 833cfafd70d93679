"""Teardown: a final snapshot that stays, deletion protection that only the template releases, and deletes
that wait for a clone RDS is still busy with."""

from __future__ import annotations

import time
from typing import Any

import boto3
import pytest

from aurora_clone.naming import final_snapshot_id, request_token
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, instance_ids
from tests.moto_gaps import AwsGaps


def converge(cfn: FakeCloudFormation, world: AwsGaps, event: dict[str, Any]) -> dict[str, Any]:
    return cfn.run(cfn.send(event), world.advance)


def created(cfn: FakeCloudFormation, world: AwsGaps, properties: dict[str, Any]) -> str:
    answer = converge(cfn, world, cfn.event("Create", properties))
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    clone_id: str = answer["PhysicalResourceId"]
    return clone_id


def manual_snapshots() -> dict[str, dict[str, Any]]:
    found = boto3.client("rds").describe_db_cluster_snapshots(SnapshotType="manual")["DBClusterSnapshots"]
    return {snapshot["DBClusterSnapshotIdentifier"]: dict(snapshot) for snapshot in found}


# --- SnapshotOnDelete ----------------------------------------------------------------------------------------------


def test_delete_with_snapshot_on_delete_leaves_named_snapshot_and_deletes_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "InstanceCount": "2", "SnapshotOnDelete": "true"}
    clone_id = created(cfn, world, properties)
    event = cfn.event("Delete", properties, physical_id=clone_id)
    expected = final_snapshot_id(clone_id, request_token(cfn.stack_id, event["RequestId"], "TestDatabase"))

    answer = cfn.run(cfn.send(event), world.advance)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert clone_id not in cluster_ids()
    assert instance_ids() == {source.writer}
    snapshots = manual_snapshots()
    assert list(snapshots) == [expected]
    assert snapshots[expected]["DBClusterIdentifier"] == clone_id
    assert expected.startswith(f"{clone_id}-final-")
    world.settle()
    assert expected in manual_snapshots(), "the final snapshot is never deleted by the tool"


def test_delete_without_snapshot_on_delete_takes_no_snapshot(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    clone_id = created(cfn, world, properties)

    answer = converge(cfn, world, cfn.event("Delete", properties, physical_id=clone_id))

    assert answer["Status"] == "SUCCESS"
    assert clone_id not in cluster_ids()
    assert manual_snapshots() == {}


def test_delete_with_snapshot_on_delete_and_other_invalid_properties_still_snapshots(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "SnapshotOnDelete": "true"}
    clone_id = created(cfn, world, properties)

    answer = converge(cfn, world, cfn.event("Delete", {**properties, "InstanceCount": "many"}, physical_id=clone_id))

    assert answer["Status"] == "SUCCESS"
    assert [name for name in manual_snapshots() if name.startswith(f"{clone_id}-final-")]


# --- WaitForDeletion -----------------------------------------------------------------------------------------------


def cluster_status(clone_id: str) -> str | None:
    cluster = describe_cluster(clone_id)
    return None if cluster is None else str(cluster["Status"])


def test_wait_for_deletion_false_answers_once_rds_accepted_then_watches_until_gone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "InstanceCount": "2", "WaitForDeletion": "false"}
    clone_id = created(cfn, world, properties)

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == clone_id
    assert cluster_status(clone_id) == "deleting", "answered before RDS finished, after it accepted"
    instances = boto3.client("rds").describe_db_instances()["DBInstances"]
    assert {i["DBInstanceStatus"] for i in instances if i["DBInstanceIdentifier"].startswith(clone_id)} == {"deleting"}
    for _ in range(6):
        cfn.step()
    assert clone_id not in cluster_ids() and instance_ids() == {source.writer}
    assert len(cfn.answers(sent)) == 1, "the watch never answers again"
    assert cfn.nothing_left(), "the watch ends once RDS no longer lists the clone"


def test_wait_for_deletion_false_waits_while_the_clone_is_busy_and_answers_once_accepted(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "WaitForDeletion": "false"}
    clone_id = created(cfn, world, properties)
    boto3.client("rds").modify_db_cluster(DBClusterIdentifier=clone_id, Port=6543, ApplyImmediately=True)
    assert cluster_status(clone_id) == "modifying"

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    assert cfn.answer(sent) is None, "nothing is deleted, so nothing answered, while RDS is modifying"
    answer = cfn.run(sent, world.advance)
    assert answer["Status"] == "SUCCESS"
    assert cluster_status(clone_id) in ("deleting", None)


def test_wait_for_deletion_default_answers_only_once_the_clone_is_gone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    clone_id = created(cfn, world, properties)

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    assert cfn.answer(sent) is None and cluster_status(clone_id) == "deleting"
    assert cfn.run(sent, world.advance)["Status"] == "SUCCESS"
    assert clone_id not in cluster_ids()


# --- DeletionProtection --------------------------------------------------------------------------------------------


def test_delete_of_protected_clone_fails_with_release_steps_and_clone_stays_protected(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "DeletionProtection": "true"}
    clone_id = created(cfn, world, properties)
    assert describe_cluster(clone_id)["DeletionProtection"] is True  # type: ignore[index]
    modifications = world.rds_calls["ModifyDBCluster"]

    answer = converge(cfn, world, cfn.event("Delete", properties, physical_id=clone_id))

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == clone_id
    assert "DeletionProtection set to false" in answer["Reason"]
    assert "then delete the stack again" in answer["Reason"]
    assert "never turns the protection off by itself" in answer["Reason"]
    clone = describe_cluster(clone_id)
    assert clone is not None and clone["DeletionProtection"] is True
    assert world.rds_calls["ModifyDBCluster"] == modifications, "protection must never be switched off by a Delete"
    assert world.rds_calls["DeleteDBInstance"] + world.rds_calls["DeleteDBCluster"] == 0
    assert f"{clone_id}-1" in instance_ids()
    assert cfn.nothing_left()


def test_update_releasing_protection_then_delete_removes_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    protected = {"SourceClusterId": source.identifier, "DeletionProtection": "true"}
    clone_id = created(cfn, world, protected)
    released = {**protected, "DeletionProtection": "false"}

    update = converge(cfn, world, cfn.event("Update", released, physical_id=clone_id, old_properties=protected))
    assert update["Status"] == "SUCCESS" and update["PhysicalResourceId"] == clone_id
    assert describe_cluster(clone_id)["DeletionProtection"] is False  # type: ignore[index]

    answer = converge(cfn, world, cfn.event("Delete", released, physical_id=clone_id))

    assert answer["Status"] == "SUCCESS"
    assert cluster_ids() == {source.identifier}


def test_update_protecting_clone_modifies_in_place(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> None:
    old = {"SourceClusterId": source.identifier}
    clone_id = created(cfn, world, old)

    answer = converge(
        cfn, world, cfn.event("Update", {**old, "DeletionProtection": "true"}, physical_id=clone_id, old_properties=old)
    )

    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == clone_id
    assert describe_cluster(clone_id)["DeletionProtection"] is True  # type: ignore[index]


def test_failed_create_of_protected_clone_is_deleted_by_rollback(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    """Protection is turned on once the clone is ready, so a clone that never was can be rolled back."""
    properties = {"SourceClusterId": source.identifier, "DeletionProtection": "true"}
    sent = cfn.send(cfn.event("Create", properties))
    (clone_id,) = cluster_ids() - {source.identifier}
    world.advance()
    cfn.wake_up()
    world.set_instance_status(f"{clone_id}-1", "failed")
    failed = cfn.run(sent, world.advance)
    assert failed["Status"] == "FAILED"
    assert describe_cluster(clone_id)["DeletionProtection"] is False  # type: ignore[index]

    rollback = converge(cfn, world, cfn.event("Delete", properties, physical_id=failed["PhysicalResourceId"]))

    assert rollback["Status"] == "SUCCESS", rollback.get("Reason")
    assert cluster_ids() == {source.identifier}


def test_update_replacing_protected_clone_fails_and_keeps_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    old = {"SourceClusterId": source.identifier, "DeletionProtection": "true"}
    clone_id = created(cfn, world, old)
    before = cluster_ids()

    answer = converge(
        cfn,
        world,
        cfn.event("Update", {**old, "ClusterId": "aurora-clone-renamed"}, physical_id=clone_id, old_properties=old),
    )

    assert answer["Status"] == "FAILED"
    assert "deletion protection" in answer["Reason"] and "DeletionProtection set to false" in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id
    assert cluster_ids() == before


# --- deletes while RDS is busy -------------------------------------------------------------------------------------


def test_delete_while_backtracking_waits_then_deletes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    clock.now = time.time()
    properties = {"SourceClusterId": source.identifier, "BacktrackWindow": "3600"}
    clone_id = created(cfn, world, properties)
    clone = describe_cluster(clone_id)
    assert clone is not None
    boto3.client("rds").backtrack_db_cluster(DBClusterIdentifier=clone_id, BacktrackTo=clone["ClusterCreateTime"])
    assert describe_cluster(clone_id)["Status"] == "backtracking"  # type: ignore[index]

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    assert cfn.answer(sent) is None, "a backtracking clone must be waited for"
    assert world.rds_calls["DeleteDBInstance"] + world.rds_calls["DeleteDBCluster"] == 0
    answer = cfn.run(sent, world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}
    assert cfn.nothing_left()


def test_delete_while_modifying_waits_then_deletes(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> None:
    properties = {"SourceClusterId": source.identifier, "InstanceCount": "2"}
    clone_id = created(cfn, world, properties)
    boto3.client("rds").modify_db_cluster(DBClusterIdentifier=clone_id, Port=3310, ApplyImmediately=True)
    assert describe_cluster(clone_id)["Status"] == "modifying"  # type: ignore[index]

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    assert cfn.answer(sent) is None, "a modifying clone must be waited for"
    assert world.rds_calls["DeleteDBInstance"] + world.rds_calls["DeleteDBCluster"] == 0
    answer = cfn.run(sent, world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert cluster_ids() == {source.identifier}
    assert cfn.nothing_left()


@pytest.mark.parametrize("status", ["backtracking", "modifying"])
def test_delete_while_busy_with_snapshot_on_delete_snapshots_once_done(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, status: str
) -> None:
    properties = {"SourceClusterId": source.identifier, "SnapshotOnDelete": "true"}
    clone_id = created(cfn, world, properties)
    world.set_cluster_status(clone_id, status)

    answer = converge(cfn, world, cfn.event("Delete", properties, physical_id=clone_id))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert clone_id not in cluster_ids()
    assert [name for name in manual_snapshots() if name.startswith(f"{clone_id}-final-")]
