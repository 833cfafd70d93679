"""Delete: only what this resource made, instances first, answered only once RDS no longer lists it."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.cloudformation import FakeCloudFormation
from tests.conftest import Source, cluster_ids, describe_cluster, instance_ids
from tests.moto_gaps import AwsGaps


def create_clone(cfn: FakeCloudFormation, world: AwsGaps, properties: dict[str, Any]) -> dict[str, Any]:
    answer = cfn.run(cfn.send(cfn.event("Create", properties)), world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return answer


def test_delete_removes_instances_and_cluster_in_one_step_and_answers_when_gone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "InstanceCount": "2"}
    clone_id = create_clone(cfn, world, properties)["PhysicalResourceId"]

    sent = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))

    # RDS accepts the cluster's delete once every instance is being deleted (it refuses it otherwise), and
    # removes the cluster after its last instance: one step, no round of waiting in between.
    assert world.rds_calls["DeleteDBInstance"] == 2 and world.rds_calls["DeleteDBCluster"] == 1
    assert {i: s for i, s in world.transitional().items() if i.startswith(clone_id)} == {
        clone_id: "deleting",
        f"{clone_id}-1": "deleting",
        f"{clone_id}-2": "deleting",
    }
    answer = cfn.run(sent)
    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == clone_id
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}
    assert world.rds_calls["DeleteDBCluster"] == 1
    assert cfn.nothing_left()


def test_delete_of_source_cluster_id_succeeds_and_touches_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    sent = cfn.send(cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=source.identifier))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert describe_cluster(source.identifier)["Status"] == "available"  # type: ignore[index]
    assert world.rds_calls["DeleteDBInstance"] + world.rds_calls["DeleteDBCluster"] == 0


def test_delete_of_clone_owned_by_another_stack_succeeds_and_touches_nothing(
    cfn: FakeCloudFormation, response_server: Any, world: AwsGaps, source: Source
) -> None:
    clone_id = create_clone(cfn, world, {"SourceClusterId": source.identifier})["PhysicalResourceId"]
    other_stack = FakeCloudFormation(response_server, cfn.handler, stack="someone-else", world=cfn.world)

    sent = other_stack.send(other_stack.event("Delete", {"SourceClusterId": source.identifier}, physical_id=clone_id))

    assert other_stack.answer(sent)["Status"] == "SUCCESS"  # type: ignore[index]
    assert clone_id in cluster_ids()
    assert world.rds_calls["DeleteDBCluster"] == 0


@pytest.mark.parametrize(
    "physical_id",
    ["aurora-clone:not-created:0123456789ab", "already-gone-cluster", "integration-env_TestDatabase_ABCDEFGH", ""],
    ids=["failed-create-id", "missing-cluster", "crhelper-style-id", "empty"],
)
def test_delete_of_id_that_is_no_cluster_of_ours_succeeds_at_once(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, physical_id: str
) -> None:
    sent = cfn.send(cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=physical_id))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"], "CloudFormation needs a non-empty id"
    assert cfn.nothing_left()
    assert cluster_ids() == {source.identifier}


def test_delete_while_clone_is_being_created_waits_then_deletes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    create = cfn.send(cfn.event("Create", properties))
    clone_id = next(iter(cluster_ids() - {source.identifier}))
    assert describe_cluster(clone_id)["Status"] == "creating"  # type: ignore[index]

    delete = cfn.send(cfn.event("Delete", properties, physical_id=clone_id))
    assert cfn.answer(delete) is None, "cannot be deleted while creating: must wait"

    answer = cfn.run(delete, world.advance)
    assert answer["Status"] == "SUCCESS"
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}
    assert cfn.answer(create) is None, "the Delete took its clone over: CloudFormation no longer waits for it"
    assert cfn.nothing_left()


def test_delete_after_create_timed_out_waits_for_creation_then_deletes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: Any
) -> None:
    properties = {"SourceClusterId": source.identifier, "ServiceTimeout": "600"}
    create = cfn.send(cfn.event("Create", properties))
    clock.advance(600)
    world.pass_time()
    cfn.wake_up()
    failed = cfn.answer(create)
    assert failed is not None and failed["Status"] == "FAILED"
    assert "ServiceTimeout" in failed["Reason"]
    clone_id = failed["PhysicalResourceId"]
    assert describe_cluster(clone_id)["Status"] == "creating"  # type: ignore[index]
    assert cfn.nothing_left()

    answer = cfn.run(cfn.send(cfn.event("Delete", properties, physical_id=clone_id)), world.advance)

    assert answer["Status"] == "SUCCESS"
    assert cluster_ids() == {source.identifier}


def test_delete_with_foreign_instance_in_clone_fails_naming_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    clone_id = create_clone(cfn, world, properties)["PhysicalResourceId"]
    boto3.client("rds").create_db_instance(
        DBInstanceIdentifier="hand-made",
        DBClusterIdentifier=clone_id,
        Engine="aurora-mysql",
        DBInstanceClass="db.r6g.large",
    )
    world.settle()

    answer = cfn.run(cfn.send(cfn.event("Delete", properties, physical_id=clone_id)), world.advance)

    assert answer["Status"] == "FAILED"
    assert "hand-made" in answer["Reason"]
    assert "hand-made" in instance_ids()
    assert cfn.nothing_left()


def test_delete_with_made_up_id_while_create_unanswered_deletes_what_create_makes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    # CloudFormation stopped waiting for the Create (another resource failed, or its ServiceTimeout passed)
    # and sends Delete with an id of its own making.
    properties = {"SourceClusterId": source.identifier}
    create = cfn.send(cfn.event("Create", properties))
    assert len(cluster_ids() - {source.identifier}) == 1
    world.advance()
    cfn.wake_up()  # the Create is adding the instance

    delete = cfn.send(cfn.event("Delete", properties, physical_id="integration-env-TestDatabase-1A2B3C4D5E6F"))
    answer = cfn.run(delete, world.advance)

    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "integration-env-TestDatabase-1A2B3C4D5E6F"
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}
    assert cfn.nothing_left()
    assert cfn.answer(create) is None  # CloudFormation gave up on it; nothing more is sent for it
