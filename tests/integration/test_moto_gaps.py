"""The emulated AWS refuses what real AWS refuses and moves RDS resources through real lifecycles.

Each test shows one behaviour of ``tests.moto_gaps.AwsGaps`` that moto alone does not have.
"""

from __future__ import annotations

import datetime
import io
import json
import zipfile
from collections.abc import Iterator
from typing import TYPE_CHECKING

import boto3
import pytest
from botocore.client import BaseClient
from botocore.exceptions import ClientError
from moto import mock_aws

from aurora_clone.local.throttling import Throttling, TokenBuckets
from tests.moto_gaps import AwsGaps, NeverSettledError

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_rds import RDSClient

REGION = "us-east-1"
SOURCE = "source"
SOURCE_INSTANCE = "source-1"
SOURCE_TAGS = [{"Key": "team", "Value": "data"}]
INSTANCE_CLASS = "db.r6g.large"


# -- fixtures -----------------------------------------------------------------------------------------


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsGaps]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    with mock_aws(), AwsGaps() as gaps:
        yield gaps


@pytest.fixture
def rds(world: AwsGaps) -> RDSClient:
    return boto3.client("rds", region_name=REGION)


@pytest.fixture
def events(world: AwsGaps) -> EventBridgeClient:
    return boto3.client("events", region_name=REGION)


@pytest.fixture
def source(world: AwsGaps, rds: RDSClient) -> str:
    """An available Aurora MySQL cluster with one available db.r6g.large instance."""
    create_cluster(rds, SOURCE, Tags=SOURCE_TAGS)
    world.settle()
    create_instance(rds, SOURCE_INSTANCE, SOURCE)
    world.settle()
    return SOURCE


@pytest.fixture
def function_name(world: AwsGaps) -> str:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="clone-function",
        AssumeRolePolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"Service": "lambda.amazonaws.com"},
                        "Action": "sts:AssumeRole",
                    }
                ],
            }
        ),
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("handler.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda", region_name=REGION).create_function(
        FunctionName="clone-function",
        Runtime="python3.11",
        Role=role["Role"]["Arn"],
        Handler="handler.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    return "clone-function"


# -- helpers ------------------------------------------------------------------------------------------


def create_cluster(rds: RDSClient, identifier: str, **extra: object) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="password-123",
        **extra,  # type: ignore[arg-type]
    )


def create_instance(rds: RDSClient, identifier: str, cluster: str) -> None:
    rds.create_db_instance(
        DBInstanceIdentifier=identifier,
        DBClusterIdentifier=cluster,
        Engine="aurora-mysql",
        DBInstanceClass=INSTANCE_CLASS,
    )


def clone(rds: RDSClient, identifier: str, source: str = SOURCE, **extra: object) -> None:
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=identifier,
        SourceDBClusterIdentifier=source,
        RestoreType="copy-on-write",
        UseLatestRestorableTime=True,
        **extra,  # type: ignore[arg-type]
    )


def cluster_status(rds: RDSClient, identifier: str) -> str:
    return rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]["Status"]


def instance_status(rds: RDSClient, identifier: str) -> str:
    return rds.describe_db_instances(DBInstanceIdentifier=identifier)["DBInstances"][0]["DBInstanceStatus"]


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return raised.value.response["Error"]["Code"]


# -- 1. lifecycle -------------------------------------------------------------------------------------


def test_create_cluster_stays_creating_until_advanced(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "fresh")

    assert cluster_status(rds, "fresh") == "creating"
    assert cluster_status(rds, "fresh") == "creating"
    assert world.transitional() == {"fresh": "creating"}
    world.advance()
    assert cluster_status(rds, "fresh") == "available"
    assert world.transitional() == {}


def test_restore_clone_stays_creating_until_advanced(world: AwsGaps, rds: RDSClient, source: str) -> None:
    clone(rds, "clone")

    assert cluster_status(rds, "clone") == "creating"
    assert cluster_status(rds, "clone") == "creating"
    world.advance()
    assert cluster_status(rds, "clone") == "available"


def test_create_instance_moves_creating_backing_up_available(world: AwsGaps, rds: RDSClient, source: str) -> None:
    create_instance(rds, "source-2", source)

    assert instance_status(rds, "source-2") == "creating"
    world.advance()
    assert instance_status(rds, "source-2") == "backing-up"
    world.advance()
    assert instance_status(rds, "source-2") == "available"


def test_modify_instance_class_immediately_is_modifying_until_advanced(
    world: AwsGaps, rds: RDSClient, source: str
) -> None:
    answer = rds.modify_db_instance(
        DBInstanceIdentifier=SOURCE_INSTANCE, DBInstanceClass="db.r6g.xlarge", ApplyImmediately=True
    )["DBInstance"]

    assert answer["DBInstanceStatus"] == "modifying"
    described = rds.describe_db_instances(DBInstanceIdentifier=SOURCE_INSTANCE)["DBInstances"][0]
    assert described["DBInstanceStatus"] == "modifying"
    assert described["DBInstanceClass"] == INSTANCE_CLASS
    assert described["PendingModifiedValues"] == {"DBInstanceClass": "db.r6g.xlarge"}
    world.advance()
    described = rds.describe_db_instances(DBInstanceIdentifier=SOURCE_INSTANCE)["DBInstances"][0]
    assert described["DBInstanceStatus"] == "available"
    assert described["DBInstanceClass"] == "db.r6g.xlarge"
    assert described["PendingModifiedValues"] == {}


def test_modify_instance_class_without_apply_immediately_stays_pending(
    world: AwsGaps, rds: RDSClient, source: str
) -> None:
    rds.modify_db_instance(DBInstanceIdentifier=SOURCE_INSTANCE, DBInstanceClass="db.r6g.xlarge")
    world.settle()

    described = rds.describe_db_instances(DBInstanceIdentifier=SOURCE_INSTANCE)["DBInstances"][0]
    assert described["DBInstanceStatus"] == "available"
    assert described["DBInstanceClass"] == INSTANCE_CLASS
    assert described["PendingModifiedValues"] == {"DBInstanceClass": "db.r6g.xlarge"}


def test_modify_cluster_port_is_modifying_until_advanced(world: AwsGaps, rds: RDSClient, source: str) -> None:
    answer = rds.modify_db_cluster(DBClusterIdentifier=source, Port=3307, ApplyImmediately=True)["DBCluster"]

    assert answer["Status"] == "modifying"
    assert answer["Port"] == 3307
    assert cluster_status(rds, source) == "modifying"
    world.advance()
    assert cluster_status(rds, source) == "available"


def test_delete_instance_is_deleting_until_advanced_then_gone(world: AwsGaps, rds: RDSClient, source: str) -> None:
    answer = rds.delete_db_instance(DBInstanceIdentifier=SOURCE_INSTANCE, SkipFinalSnapshot=True)["DBInstance"]

    assert answer["DBInstanceStatus"] == "deleting"
    assert instance_status(rds, SOURCE_INSTANCE) == "deleting"
    world.advance()
    with pytest.raises(ClientError) as raised:
        rds.describe_db_instances(DBInstanceIdentifier=SOURCE_INSTANCE)
    assert error_code(raised) == "DBInstanceNotFound"
    members = rds.describe_db_clusters(DBClusterIdentifier=source)["DBClusters"][0]["DBClusterMembers"]
    assert members == []


def test_delete_cluster_is_deleting_until_advanced_then_gone(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "short-lived")
    world.settle()

    answer = rds.delete_db_cluster(DBClusterIdentifier="short-lived", SkipFinalSnapshot=True)["DBCluster"]

    assert answer["Status"] == "deleting"
    assert cluster_status(rds, "short-lived") == "deleting"
    world.advance()
    with pytest.raises(ClientError) as raised:
        rds.describe_db_clusters(DBClusterIdentifier="short-lived")
    assert error_code(raised) == "DBClusterNotFoundFault"


def test_delete_cluster_while_its_instances_are_deleting_succeeds(world: AwsGaps, rds: RDSClient, source: str) -> None:
    rds.delete_db_instance(DBInstanceIdentifier=SOURCE_INSTANCE, SkipFinalSnapshot=True)

    rds.delete_db_cluster(DBClusterIdentifier=source, SkipFinalSnapshot=True)

    assert world.transitional() == {SOURCE_INSTANCE: "deleting", source: "deleting"}
    world.settle()
    assert rds.describe_db_clusters()["DBClusters"] == []
    assert rds.describe_db_instances()["DBInstances"] == []


def test_create_cluster_again_after_delete_succeeds(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "reborn")
    world.settle()
    rds.delete_db_cluster(DBClusterIdentifier="reborn", SkipFinalSnapshot=True)
    world.settle()

    create_cluster(rds, "reborn")

    assert cluster_status(rds, "reborn") == "creating"


def test_forced_terminal_status_is_not_transitional(world: AwsGaps, rds: RDSClient, source: str) -> None:
    world.set_cluster_status(source, "incompatible-network")
    world.set_instance_status(SOURCE_INSTANCE, "failed")

    assert world.transitional() == {}
    world.settle()
    assert cluster_status(rds, source) == "incompatible-network"
    assert instance_status(rds, SOURCE_INSTANCE) == "failed"


def test_settle_with_stuck_cluster_raises_never_settled(world: AwsGaps, rds: RDSClient, source: str) -> None:
    world.set_cluster_status(source, "deleting")  # its instance is not deleting, so it can never go

    with pytest.raises(NeverSettledError):
        world.settle()
    assert world.transitional() == {source: "deleting"}


def test_advance_moves_clusters_in_every_region(world: AwsGaps) -> None:
    for region in ("us-east-1", "eu-west-1"):
        create_cluster(boto3.client("rds", region_name=region), f"in-{region}")

    assert world.transitional() == {"in-us-east-1": "creating", "in-eu-west-1": "creating"}
    world.advance()
    assert world.transitional() == {}


# -- 2. refusals --------------------------------------------------------------------------------------


def test_create_cluster_over_existing_cluster_raises_already_exists(rds: RDSClient, source: str) -> None:
    with pytest.raises(ClientError) as raised:
        create_cluster(rds, source)

    assert error_code(raised) == "DBClusterAlreadyExistsFault"
    assert rds.describe_db_clusters(DBClusterIdentifier=source)["DBClusters"][0]["TagList"] == SOURCE_TAGS


def test_restore_over_existing_cluster_raises_already_exists(world: AwsGaps, rds: RDSClient, source: str) -> None:
    clone(rds, "clone", Tags=[{"Key": "generation", "Value": "1"}])
    world.settle()

    with pytest.raises(ClientError) as raised:
        clone(rds, "clone", Tags=[{"Key": "generation", "Value": "2"}])

    assert error_code(raised) == "DBClusterAlreadyExistsFault"
    existing = rds.describe_db_clusters(DBClusterIdentifier="clone")["DBClusters"][0]
    assert existing["TagList"] == [{"Key": "generation", "Value": "1"}]
    assert existing["Status"] == "available"


def test_restore_from_missing_source_raises_cluster_not_found(rds: RDSClient) -> None:
    with pytest.raises(ClientError) as raised:
        clone(rds, "clone", source="no-such-cluster")

    assert error_code(raised) == "DBClusterNotFoundFault"


def test_create_instance_over_existing_instance_raises_already_exists(rds: RDSClient, source: str) -> None:
    with pytest.raises(ClientError) as raised:
        create_instance(rds, SOURCE_INSTANCE, source)

    assert error_code(raised) == "DBInstanceAlreadyExists"


def test_create_instance_in_creating_cluster_raises_invalid_cluster_state(rds: RDSClient, source: str) -> None:
    clone(rds, "clone")

    with pytest.raises(ClientError) as raised:
        create_instance(rds, "clone-1", "clone")

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert rds.describe_db_instances()["DBInstances"][0]["DBInstanceIdentifier"] == SOURCE_INSTANCE
    assert len(rds.describe_db_instances()["DBInstances"]) == 1


@pytest.mark.parametrize("status", ["creating", "backing-up", "modifying", "deleting"])
def test_delete_instance_while_busy_raises_invalid_instance_state(
    world: AwsGaps, rds: RDSClient, source: str, status: str
) -> None:
    world.set_instance_status(SOURCE_INSTANCE, status)

    with pytest.raises(ClientError) as raised:
        rds.delete_db_instance(DBInstanceIdentifier=SOURCE_INSTANCE, SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidDBInstanceState"
    assert instance_status(rds, SOURCE_INSTANCE) == status


def test_delete_just_created_instance_raises_invalid_instance_state(rds: RDSClient, source: str) -> None:
    create_instance(rds, "source-2", source)

    with pytest.raises(ClientError) as raised:
        rds.delete_db_instance(DBInstanceIdentifier="source-2", SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidDBInstanceState"


def test_delete_cluster_with_instances_raises_invalid_cluster_state(rds: RDSClient, source: str) -> None:
    with pytest.raises(ClientError) as raised:
        rds.delete_db_cluster(DBClusterIdentifier=source, SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert cluster_status(rds, source) == "available"


@pytest.mark.parametrize("status", ["creating", "modifying", "deleting", "backtracking"])
def test_delete_cluster_while_busy_raises_invalid_cluster_state(world: AwsGaps, rds: RDSClient, status: str) -> None:
    create_cluster(rds, "busy")
    world.set_cluster_status("busy", status)

    with pytest.raises(ClientError) as raised:
        rds.delete_db_cluster(DBClusterIdentifier="busy", SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert cluster_status(rds, "busy") == status


def test_delete_protected_cluster_raises_invalid_parameter_combination(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "protected", DeletionProtection=True)
    world.settle()

    with pytest.raises(ClientError) as raised:
        rds.delete_db_cluster(DBClusterIdentifier="protected", SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidParameterCombination"
    assert cluster_status(rds, "protected") == "available"


def test_modify_creating_instance_raises_invalid_instance_state(rds: RDSClient, source: str) -> None:
    create_instance(rds, "source-2", source)

    with pytest.raises(ClientError) as raised:
        rds.modify_db_instance(DBInstanceIdentifier="source-2", DBInstanceClass="db.r6g.xlarge", ApplyImmediately=True)

    assert error_code(raised) == "InvalidDBInstanceState"
    described = rds.describe_db_instances(DBInstanceIdentifier="source-2")["DBInstances"][0]
    assert described["DBInstanceClass"] == INSTANCE_CLASS


def test_modify_creating_cluster_raises_invalid_cluster_state(rds: RDSClient, source: str) -> None:
    clone(rds, "clone")

    with pytest.raises(ClientError) as raised:
        rds.modify_db_cluster(DBClusterIdentifier="clone", Port=3307, ApplyImmediately=True)

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert rds.describe_db_clusters(DBClusterIdentifier="clone")["DBClusters"][0]["Port"] == 3306


def test_modify_missing_cluster_raises_cluster_not_found(rds: RDSClient) -> None:
    with pytest.raises(ClientError) as raised:
        rds.modify_db_cluster(DBClusterIdentifier="no-such-cluster", Port=3307, ApplyImmediately=True)

    assert error_code(raised) == "DBClusterNotFoundFault"


# -- 3. tags and other restore defaults -----------------------------------------------------------------


def test_restore_without_tags_gives_clone_no_source_tags(world: AwsGaps, rds: RDSClient, source: str) -> None:
    clone(rds, "clone")

    described = rds.describe_db_clusters(DBClusterIdentifier="clone")["DBClusters"][0]
    assert described["TagList"] == []
    assert rds.list_tags_for_resource(ResourceName=described["DBClusterArn"])["TagList"] == []


def test_restore_with_tags_gives_clone_only_request_tags(world: AwsGaps, rds: RDSClient, source: str) -> None:
    clone(rds, "clone", Tags=[{"Key": "owner", "Value": "stack"}])

    described = rds.describe_db_clusters(DBClusterIdentifier="clone")["DBClusters"][0]
    listed = rds.list_tags_for_resource(ResourceName=described["DBClusterArn"])["TagList"]
    assert described["TagList"] == [{"Key": "owner", "Value": "stack"}]
    assert listed == described["TagList"]


def test_restore_from_protected_source_gives_unprotected_clone(world: AwsGaps, rds: RDSClient, source: str) -> None:
    rds.modify_db_cluster(DBClusterIdentifier=source, DeletionProtection=True)
    clone(rds, "clone")
    world.settle()

    assert rds.describe_db_clusters(DBClusterIdentifier="clone")["DBClusters"][0]["DeletionProtection"] is False
    rds.delete_db_cluster(DBClusterIdentifier="clone", SkipFinalSnapshot=True)
    assert cluster_status(rds, "clone") == "deleting"


# -- 4. EventBridge -----------------------------------------------------------------------------------


def test_put_rule_name_over_64_characters_raises_validation(events: EventBridgeClient) -> None:
    events.put_rule(Name="r" * 64, ScheduleExpression="rate(2 minutes)")

    with pytest.raises(ClientError) as raised:
        events.put_rule(Name="r" * 65, ScheduleExpression="rate(2 minutes)")

    assert error_code(raised) == "ValidationException"
    assert "Member must have length less than or equal to 64" in raised.value.response["Error"]["Message"]
    assert [rule["Name"] for rule in events.list_rules()["Rules"]] == ["r" * 64]


def test_put_rule_name_with_forbidden_character_raises_validation(events: EventBridgeClient) -> None:
    with pytest.raises(ClientError) as raised:
        events.put_rule(Name="Clone/Poll", ScheduleExpression="rate(2 minutes)")

    assert error_code(raised) == "ValidationException"
    assert "regular expression pattern" in raised.value.response["Error"]["Message"]
    assert events.list_rules()["Rules"] == []


def test_put_targets_input_over_8192_characters_raises_validation(events: EventBridgeClient) -> None:
    events.put_rule(Name="poll", ScheduleExpression="rate(2 minutes)")
    function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:clone-function"
    accepted = json.dumps({"k": "v" * 8183})
    events.put_targets(Rule="poll", Targets=[{"Id": "1", "Arn": function_arn, "Input": accepted}])

    with pytest.raises(ClientError) as raised:
        events.put_targets(Rule="poll", Targets=[{"Id": "1", "Arn": function_arn, "Input": accepted + " "}])

    assert error_code(raised) == "ValidationException"
    assert "at 'targets.1.member.input'" in raised.value.response["Error"]["Message"]
    [kept] = events.list_targets_by_rule(Rule="poll")["Targets"]
    assert len(accepted) == 8192
    assert kept["Input"] == accepted


# -- 5. Lambda ----------------------------------------------------------------------------------------


def add_poll_permission(client: BaseClient, function_name: str, index: int) -> None:
    rule_arn = f"arn:aws:events:{REGION}:123456789012:rule/{'ClonePollingRule' * 3}{index:08d}"
    client.add_permission(  # type: ignore[attr-defined]
        FunctionName=function_name,
        StatementId=f"ClonePollingRule{index:08d}",
        Action="lambda:InvokeFunction",
        Principal="events.amazonaws.com",
        SourceArn=rule_arn,
    )


def test_add_permission_beyond_20kb_policy_raises_policy_length_exceeded(function_name: str) -> None:
    client = boto3.client("lambda", region_name=REGION)
    added = 0
    with pytest.raises(ClientError) as raised:
        for index in range(200):
            add_poll_permission(client, function_name, index)
            added += 1

    assert error_code(raised) == "PolicyLengthExceededException"
    assert added > 20
    policy = client.get_policy(FunctionName=function_name)["Policy"]
    assert len(json.loads(policy)["Statement"]) == added
    assert len(json.dumps(json.loads(policy), separators=(",", ":"))) <= 20480


def test_add_permission_with_existing_statement_id_raises_conflict(function_name: str) -> None:
    client = boto3.client("lambda", region_name=REGION)
    add_poll_permission(client, function_name, 1)

    with pytest.raises(ClientError) as raised:
        add_poll_permission(client, function_name, 1)

    assert error_code(raised) == "ResourceConflictException"
    policy = json.loads(client.get_policy(FunctionName=function_name)["Policy"])
    assert len(policy["Statement"]) == 1


# -- 6. clone families, backtrack, RDS events, throttling ----------------------------------------------


def test_copy_on_write_clone_shares_clone_group_id_with_source(world: AwsGaps, rds: RDSClient, source: str) -> None:
    clone(rds, "clone-1")
    clone(rds, "clone-2")
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier="copy", SourceDBClusterIdentifier=source, UseLatestRestorableTime=True
    )

    family = rds.describe_db_clusters(DBClusterIdentifier=source)["DBClusters"][0]["CloneGroupId"]
    groups = {c["DBClusterIdentifier"]: c.get("CloneGroupId") for c in rds.describe_db_clusters()["DBClusters"]}
    assert groups == {source: family, "clone-1": family, "clone-2": family, "copy": None}


def test_clone_beyond_15_in_family_becomes_full_copy_until_a_clone_is_deleted(
    world: AwsGaps, rds: RDSClient, source: str
) -> None:
    for number in range(1, 16):
        clone(rds, f"clone-{number}")
    world.settle()

    clone(rds, "clone-16")
    rds.delete_db_cluster(DBClusterIdentifier="clone-1", SkipFinalSnapshot=True)
    world.settle()
    clone(rds, "clone-17")

    family = rds.describe_db_clusters(DBClusterIdentifier=source)["DBClusters"][0]["CloneGroupId"]
    assert "CloneGroupId" not in rds.describe_db_clusters(DBClusterIdentifier="clone-16")["DBClusters"][0]
    assert rds.describe_db_clusters(DBClusterIdentifier="clone-17")["DBClusters"][0]["CloneGroupId"] == family


def test_backtrack_within_window_is_backtracking_until_advanced(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "rewindable", BacktrackWindow=3600)
    world.settle()
    described = rds.describe_db_clusters(DBClusterIdentifier="rewindable")["DBClusters"][0]

    answer = rds.backtrack_db_cluster(DBClusterIdentifier="rewindable", BacktrackTo=described["ClusterCreateTime"])

    assert answer["Status"] == "pending"
    assert answer["BacktrackTo"] == described["ClusterCreateTime"] == described["EarliestBacktrackTime"]
    assert cluster_status(rds, "rewindable") == "backtracking"
    world.advance()
    assert cluster_status(rds, "rewindable") == "available"


def test_backtrack_before_earliest_time_with_option_goes_to_earliest(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "rewindable", BacktrackWindow=3600)
    world.settle()
    created = rds.describe_db_clusters(DBClusterIdentifier="rewindable")["DBClusters"][0]["ClusterCreateTime"]

    answer = rds.backtrack_db_cluster(
        DBClusterIdentifier="rewindable",
        BacktrackTo=created - datetime.timedelta(hours=1),
        UseEarliestTimeOnPointInTimeUnavailable=True,
    )

    assert answer["BacktrackTo"] == created


def test_backtrack_creating_cluster_raises_invalid_cluster_state(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "rewindable", BacktrackWindow=3600)

    with pytest.raises(ClientError) as raised:
        rds.backtrack_db_cluster(DBClusterIdentifier="rewindable", BacktrackTo=datetime.datetime.now(datetime.UTC))

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert cluster_status(rds, "rewindable") == "creating"


def test_backtrack_to_the_future_raises_invalid_parameter_value(world: AwsGaps, rds: RDSClient) -> None:
    create_cluster(rds, "rewindable", BacktrackWindow=3600)
    world.settle()

    with pytest.raises(ClientError) as raised:
        rds.backtrack_db_cluster(
            DBClusterIdentifier="rewindable",
            BacktrackTo=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
        )

    assert error_code(raised) == "InvalidParameterValue"
    assert cluster_status(rds, "rewindable") == "available"


def test_instance_lifecycle_sends_rds_events_to_matching_rule(
    world: AwsGaps, rds: RDSClient, events: EventBridgeClient, source: str
) -> None:
    sqs = boto3.client("sqs", region_name=REGION)
    queue = sqs.create_queue(QueueName="instance-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = {"source": ["aws.rds"], "detail-type": ["RDS DB Instance Event"]}
    events.put_rule(Name="instance-events", EventPattern=json.dumps(pattern))
    events.put_targets(Rule="instance-events", Targets=[{"Id": "queue", "Arn": queue_arn}])

    create_instance(rds, "source-2", source)
    world.settle()
    rds.modify_db_instance(DBInstanceIdentifier="source-2", DBInstanceClass="db.r6g.xlarge", ApplyImmediately=True)
    world.settle()
    rds.delete_db_instance(DBInstanceIdentifier="source-2", SkipFinalSnapshot=True)
    world.settle()

    bodies = [json.loads(m["Body"]) for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)["Messages"]]
    assert [body["detail"]["EventID"] for body in bodies] == [
        "RDS-EVENT-0005",
        "RDS-EVENT-0001",
        "RDS-EVENT-0002",
        "RDS-EVENT-0012",
        "RDS-EVENT-0014",
        "RDS-EVENT-0003",
    ]
    assert {body["detail"]["SourceIdentifier"] for body in bodies} == {"source-2"}
    assert {body["detail"]["SourceType"] for body in bodies} == {"DB_INSTANCE"}


def test_token_bucket_allows_burst_then_rate() -> None:
    now = [0.0]
    buckets = TokenBuckets(Throttling(burst=300, rate=12.0), clock=lambda: now[0])
    key = ("123456789012", REGION)

    burst = sum(buckets.take(key) for _ in range(301))
    now[0] = 1.0
    second = sum(buckets.take(key) for _ in range(20))

    assert burst == 300
    assert second == 12
    assert buckets.take(("210987654321", REGION)), "each account and region has its own bucket"


# -- RDS call count and removal -------------------------------------------------------------------------


def test_rds_calls_counts_every_rds_request_refused_ones_included(world: AwsGaps, rds: RDSClient, source: str) -> None:
    world.rds_calls.clear()
    clone(rds, "clone")
    with pytest.raises(ClientError):
        clone(rds, "clone")
    rds.describe_db_clusters(DBClusterIdentifier="clone")
    boto3.client("rds", region_name="eu-west-1").describe_db_clusters()

    assert world.rds_calls == {"RestoreDBClusterToPointInTime": 2, "DescribeDBClusters": 2}


def test_leaving_removes_every_patch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        gaps = AwsGaps()
        with gaps:
            pass
        rds = boto3.client("rds", region_name=REGION)
        create_cluster(rds, "plain")
        create_instance(rds, "plain-1", "plain")
        boto3.client("events", region_name=REGION).put_rule(Name="r" * 65, ScheduleExpression="rate(2 minutes)")

        assert cluster_status(rds, "plain") == "available"  # moto alone: "creating" only until described
        assert instance_status(rds, "plain-1") == "available"  # moto alone: available at once
        assert gaps.rds_calls == {}
