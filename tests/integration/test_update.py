"""Update: in place (same PhysicalResourceId) or by replacement (new one), rollbacks included."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import boto3
import pytest

from tests.cloudformation import FakeCloudFormation
from tests.conftest import Source, cluster_ids, describe_cluster, instance_ids, make_source
from tests.moto_gaps import AwsGaps


def converge(cfn: FakeCloudFormation, world: AwsGaps, event: dict[str, Any]) -> dict[str, Any]:
    return cfn.run(cfn.send(event), world.advance)


def instances_of(clone_id: str) -> dict[str, Mapping[str, Any]]:
    found = boto3.client("rds").describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [clone_id]}])
    return {item["DBInstanceIdentifier"]: item for item in found["DBInstances"]}


@pytest.fixture
def clone(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> tuple[str, dict[str, Any]]:
    properties = {"SourceClusterId": source.identifier, "Tags": [{"Key": "env", "Value": "a"}]}
    answer = converge(cfn, world, cfn.event("Create", properties))
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return answer["PhysicalResourceId"], properties


def test_update_of_instance_class_resizes_in_place_and_keeps_id(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    new = {**old, "InstanceClass": "db.r6g.2xlarge"}
    sent = cfn.send(cfn.event("Update", new, physical_id=clone_id, old_properties=old))
    assert cfn.answer(sent) is None, "must wait for RDS to apply the new class"

    answer = cfn.run(sent, world.advance)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert [i["DBInstanceClass"] for i in instances_of(clone_id).values()] == ["db.r6g.2xlarge"]
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1


def test_update_of_instance_count_adds_then_removes_readers(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, one = clone
    three = {**one, "InstanceCount": "3"}

    grown = converge(cfn, world, cfn.event("Update", three, physical_id=clone_id, old_properties=one))
    assert sorted(instances_of(clone_id)) == [f"{clone_id}-1", f"{clone_id}-2", f"{clone_id}-3"]
    assert grown["Data"]["InstanceIds"] == f"{clone_id}-1,{clone_id}-2,{clone_id}-3"

    shrunk = converge(cfn, world, cfn.event("Update", one, physical_id=clone_id, old_properties=three))
    assert shrunk["Status"] == "SUCCESS"
    assert sorted(instances_of(clone_id)) == [f"{clone_id}-1"]
    assert shrunk["PhysicalResourceId"] == clone_id


def test_update_of_tags_and_port_modifies_in_place_and_rollback_restores_them(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    new = {**old, "Port": "3307", "Tags": [{"Key": "owner", "Value": "qa"}]}

    forward = converge(cfn, world, cfn.event("Update", new, physical_id=clone_id, old_properties=old))
    cluster = describe_cluster(clone_id)
    assert cluster is not None
    assert forward["PhysicalResourceId"] == clone_id
    assert cluster["Port"] == 3307 and forward["Data"]["Port"] == "3307"
    user_tags = {t["Key"]: t["Value"] for t in cluster["TagList"] if not t["Key"].startswith("aurora-clone:")}
    assert user_tags == {"owner": "qa"}

    rollback = converge(cfn, world, cfn.event("Update", old, physical_id=clone_id, old_properties=new))
    cluster = describe_cluster(clone_id)
    assert cluster is not None
    assert rollback["Status"] == "SUCCESS" and rollback["PhysicalResourceId"] == clone_id
    assert cluster["Port"] == 3306
    user_tags = {t["Key"]: t["Value"] for t in cluster["TagList"] if not t["Key"].startswith("aurora-clone:")}
    assert user_tags == {"env": "a"}
    for instance in instances_of(clone_id).values():
        assert {"Key": "env", "Value": "a"} in instance["TagList"]
        assert all(t["Key"] != "owner" for t in instance["TagList"])


def test_update_of_source_replaces_clone_and_cleanup_delete_removes_old(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    other = make_source(world, "staging-db")
    new = {**old, "SourceClusterId": other.identifier}

    answer = converge(cfn, world, cfn.event("Update", new, physical_id=clone_id, old_properties=old))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    new_id = answer["PhysicalResourceId"]
    assert new_id != clone_id
    assert answer["Data"]["SourceClusterId"] == "staging-db"
    assert {clone_id, new_id} <= cluster_ids(), "the old clone stays until CloudFormation deletes it"

    cleanup = converge(cfn, world, cfn.event("Delete", old, physical_id=clone_id))
    assert cleanup["Status"] == "SUCCESS"
    assert clone_id not in cluster_ids() and new_id in cluster_ids()


def test_update_replacing_with_same_explicit_cluster_id_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    old = {"SourceClusterId": source.identifier, "ClusterId": "aurora-clone-qa-fixed"}
    converge(cfn, world, cfn.event("Create", old))
    make_source(world, "staging-db")
    before = cluster_ids()
    new = {**old, "SourceClusterId": "staging-db"}

    answer = converge(cfn, world, cfn.event("Update", new, physical_id="aurora-clone-qa-fixed", old_properties=old))

    assert answer["Status"] == "FAILED"
    assert "ClusterId" in answer["Reason"] and "aurora-clone-qa-fixed" in answer["Reason"]
    assert answer["PhysicalResourceId"] == "aurora-clone-qa-fixed"
    assert cluster_ids() == before


def test_update_with_new_explicit_cluster_id_replaces_under_that_name(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    answer = converge(
        cfn,
        world,
        cfn.event("Update", {**old, "ClusterId": "aurora-clone-qa-renamed"}, physical_id=clone_id, old_properties=old),
    )

    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] == "aurora-clone-qa-renamed"
    assert {"aurora-clone-qa-renamed-1"} <= instance_ids()


def test_failed_replacement_deletes_the_new_clone_and_answers_with_old_id(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    other = make_source(world, "staging-db")
    new = {**old, "SourceClusterId": other.identifier}
    before = cluster_ids()
    sent = cfn.send(cfn.event("Update", new, physical_id=clone_id, old_properties=old))
    (replacement,) = cluster_ids() - before
    world.set_cluster_status(replacement, "incompatible-parameters")

    answer = cfn.run(sent, world.advance)

    assert answer["Status"] == "FAILED"
    assert "incompatible-parameters" in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id
    assert replacement not in cluster_ids(), "a failed replacement must not be left behind"
    assert clone_id in cluster_ids()
    assert cfn.nothing_left()


def test_update_of_clone_deleted_outside_cloudformation_makes_a_new_one(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    rds = boto3.client("rds")
    for instance in instances_of(clone_id):
        rds.delete_db_instance(DBInstanceIdentifier=instance, SkipFinalSnapshot=True)
    world.settle()
    rds.delete_db_cluster(DBClusterIdentifier=clone_id, SkipFinalSnapshot=True)
    world.settle()

    answer = converge(
        cfn, world, cfn.event("Update", {**old, "InstanceCount": "2"}, physical_id=clone_id, old_properties=old)
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] in cluster_ids()
    assert len(instances_of(answer["PhysicalResourceId"])) == 2


def test_update_with_invalid_new_properties_fails_at_once_and_keeps_id(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = clone
    sent = cfn.send(cfn.event("Update", {**old, "InstanceCount": "many"}, physical_id=clone_id, old_properties=old))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert "InstanceCount" in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id
    assert cfn.nothing_left()


@pytest.mark.parametrize(
    "bad_change",
    [{"InstanceCount": "99"}, {"SourceClusterId": "missing-db"}],
    ids=["invalid-property", "missing-new-source"],
)
def test_rollback_of_failed_update_keeps_clone_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, clone: tuple[str, dict[str, Any]], bad_change: dict[str, str]
) -> None:
    clone_id, good = clone
    bad = {**good, **bad_change}
    failed = converge(cfn, world, cfn.event("Update", bad, physical_id=clone_id, old_properties=good))
    assert failed["Status"] == "FAILED"

    rollback = converge(cfn, world, cfn.event("Update", good, physical_id=clone_id, old_properties=bad))

    assert rollback["Status"] == "SUCCESS", rollback.get("Reason")
    assert rollback["PhysicalResourceId"] == clone_id
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1
