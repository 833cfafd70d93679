"""Create: the clone restored with the right parameters, instances added, SUCCESS only when usable."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.cloudformation import FakeCloudFormation
from tests.conftest import Source, cluster_ids, describe_cluster, instance_ids
from tests.moto_gaps import AwsGaps


@pytest.fixture
def restore_calls() -> list[dict[str, Any]]:
    """The exact parameters of every RestoreDBClusterToPointInTime the handler sends."""
    calls: list[dict[str, Any]] = []
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.rds.RestoreDBClusterToPointInTime", lambda params, **_: calls.append(dict(params))
    )
    return calls


def test_create_restores_copy_on_write_clone_and_answers_with_attributes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, restore_calls: list[dict[str, Any]]
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "InstanceCount": "2"}))

    assert cfn.answer(sent) is None, "answered before the clone was usable"
    answer = cfn.run(sent, world.advance)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    clone_id = answer["PhysicalResourceId"]
    assert restore_calls == [
        {
            "DBClusterIdentifier": clone_id,
            "SourceDBClusterIdentifier": source.identifier,
            "RestoreType": "copy-on-write",
            "UseLatestRestorableTime": True,
            "Tags": restore_calls[0]["Tags"],
            "DBClusterParameterGroupName": restore_calls[0]["DBClusterParameterGroupName"],
            "Port": 3306,
        }
    ]
    clone = describe_cluster(clone_id)
    assert clone is not None
    data = answer["Data"]
    assert data["Endpoint"] == clone["Endpoint"]
    assert data["Port"] == "3306"
    assert data["SourceClusterId"] == source.identifier
    assert data["InstanceIds"] == f"{clone_id}-1,{clone_id}-2"
    assert {f"{clone_id}-1", f"{clone_id}-2"} <= instance_ids()
    assert cfn.nothing_left()


def test_create_tags_clone_and_instances_with_ownership_and_user_tags_only(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "Tags": [{"Key": "env", "Value": "it-42"}]}
    answer = cfn.run(cfn.send(cfn.event("Create", properties)), world.advance)

    rds = boto3.client("rds")
    clone = describe_cluster(answer["PhysicalResourceId"])
    assert clone is not None
    writer = rds.describe_db_instances(DBInstanceIdentifier=answer["Data"]["InstanceIds"])["DBInstances"][0]
    for tag_list in (clone["TagList"], writer["TagList"]):
        tags = {tag["Key"]: tag["Value"] for tag in tag_list}
        assert tags == {
            "env": "it-42",
            "aurora-clone:managed-by": "aurora-clone",
            "aurora-clone:stack-id": cfn.stack_id,
            "aurora-clone:logical-id": "TestDatabase",
            "aurora-clone:request": tags["aurora-clone:request"],
            "aurora-clone:source-cluster": source.identifier,
            "aurora-clone:cloned-from": source.identifier,
            "aurora-clone:data-time": answer["Data"]["DataTimestamp"],
        }
        assert "team" not in tags, "the source's tags must not be carried onto the clone"


def test_create_defaults_instance_class_to_source_writer_and_honours_explicit_class(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    default = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})), world.advance)
    explicit = cfn.run(
        cfn.send(cfn.event("Create", {"SourceClusterId": source.arn, "InstanceClass": "db.r6g.xlarge"}, "Other")),
        world.advance,
    )

    rds = boto3.client("rds")
    classes = [
        rds.describe_db_instances(DBInstanceIdentifier=a["Data"]["InstanceIds"])["DBInstances"][0]["DBInstanceClass"]
        for a in (default, explicit)
    ]
    assert classes == ["db.r6g.large", "db.r6g.xlarge"]
    assert explicit["Data"]["SourceClusterId"] == source.identifier


def test_create_answers_only_once_every_instance_is_available(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "InstanceCount": "3"}))
    while cfn.answer(sent) is None:
        world.advance()
        cfn.wake_up()
        if cfn.answer(sent) is None:
            continue
        assert world.transitional() == {}, "SUCCESS sent while RDS was still working"
    assert cfn.answer(sent)["Status"] == "SUCCESS"  # type: ignore[index]


@pytest.mark.parametrize("status", ["incompatible-network", "inaccessible-encryption-credentials", "failed"])
def test_create_with_clone_in_terminal_status_fails_at_once_naming_status(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, status: str
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    clone_id = next(iter(cluster_ids() - {source.identifier}))
    world.set_cluster_status(clone_id, status)

    world.advance()  # the next look: a terminal status stays
    assert cfn.wake_up() == 1
    answer = cfn.answer(sent)

    assert answer is not None
    assert answer["Status"] == "FAILED"
    assert status in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id, "the rollback Delete must be able to remove what was made"
    assert cfn.nothing_left()
