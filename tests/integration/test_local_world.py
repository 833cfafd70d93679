"""The served world (``LocalAws``) refuses what real AWS refuses and moves like it, in world time, over HTTPS.

Every test talks to the world through ``LocalAws.client()``, as a process outside it would. World time
runs five hundred times faster than real time here, so a four-minute stage lasts 0.48 s.
"""

from __future__ import annotations

import datetime
import io
import json
import random
import statistics
import threading
import uuid
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.rds.responses import RDSResponse

from aurora_clone.local.pace import Durations, Stage
from aurora_clone.local.throttling import Throttling
from aurora_clone.local.world import EventDelivery, LocalAws

TIME_SCALE = 0.002
FAST_TIME_SCALE = 0.001
DURATIONS = Durations()
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
RETRIES = Config(retries={"mode": "adaptive", "max_attempts": 8})
SOURCE = "prod-db"


# -- fixtures and helpers -------------------------------------------------------------------------------


@pytest.fixture
def aws() -> Iterator[LocalAws]:
    with LocalAws(time_scale=TIME_SCALE) as world:
        yield world


@pytest.fixture
def rds(aws: LocalAws) -> Any:
    return aws.client("rds")


def clone(rds: Any, identifier: str, source: str = SOURCE, **extra: Any) -> dict[str, Any]:
    answer: dict[str, Any] = rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=identifier,
        SourceDBClusterIdentifier=source,
        RestoreType="copy-on-write",
        UseLatestRestorableTime=True,
        **extra,
    )["DBCluster"]
    return answer


def describe(rds: Any, identifier: str) -> dict[str, Any]:
    cluster: dict[str, Any] = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    return cluster


def status(rds: Any, identifier: str) -> str:
    return str(describe(rds, identifier)["Status"])


def error_code(raised: pytest.ExceptionInfo[ClientError]) -> str:
    return str(raised.value.response["Error"]["Code"])


def watch(aws: LocalAws, look: Callable[[], str], until: str, world_seconds: float) -> list[tuple[str, float]]:
    """Each value ``look`` gives, with the world time it was first seen, until it gives ``until``."""
    seen: list[tuple[str, float]] = []

    def changed() -> bool:
        value = look()
        if not seen or seen[-1][0] != value:
            seen.append((value, aws.world_time()))
        return value == until

    assert aws.wait_until(changed, world_seconds), f"never {until}: {seen}"
    return seen


def gone(rds: Any, identifier: str) -> bool:
    try:
        rds.describe_db_clusters(DBClusterIdentifier=identifier)
    except ClientError as error:
        return bool(error.response["Error"]["Code"] == "DBClusterNotFoundFault")
    return False


def event_date(event: dict[str, Any]) -> datetime.datetime:
    return datetime.datetime.strptime(event["detail"]["Date"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.UTC)


def within_a_millisecond(elapsed: datetime.timedelta, world_seconds: float) -> bool:
    """An RDS event's Date has milliseconds only."""
    return abs(elapsed - datetime.timedelta(seconds=world_seconds)) < datetime.timedelta(milliseconds=1)


# -- lifecycles in world time ---------------------------------------------------------------------------


def test_restore_clone_moves_creating_backing_up_available_in_world_time(aws: LocalAws, rds: Any) -> None:
    heard: list[dict[str, Any]] = []
    aws.subscribe(heard.append)
    aws.create_source_cluster(SOURCE)
    asked = aws.world_time()
    answer = clone(rds, "clone")

    seen = watch(aws, lambda: status(rds, "clone"), "available", world_seconds=2000)

    assert answer["Status"] == "creating"
    assert [value for value, _ in seen] == ["creating", "backing-up", "available"]
    creating, backing_up = DURATIONS.cluster_creating, DURATIONS.cluster_backing_up
    assert seen[1][1] - asked >= creating, "backing-up before the creating stage was over"
    assert seen[2][1] - asked >= creating + backing_up, "available before the backing-up stage was over"
    assert seen[2][1] - asked <= 3 * (creating + backing_up), "far too late, even for slow polls"
    [created] = heard  # dated when the creating stage ended, to the millisecond
    assert within_a_millisecond(event_date(created) - answer["ClusterCreateTime"], creating)


def test_create_instance_moves_creating_backing_up_available_in_world_time(aws: LocalAws, rds: Any) -> None:
    heard: list[dict[str, Any]] = []
    aws.subscribe(heard.append)
    aws.create_source_cluster(SOURCE)
    asked = aws.world_time()
    answer = rds.create_db_instance(
        DBInstanceIdentifier="prod-db-reader",
        DBClusterIdentifier=SOURCE,
        Engine="aurora-mysql",
        DBInstanceClass="db.r6g.large",
    )["DBInstance"]

    def look() -> str:
        instance = rds.describe_db_instances(DBInstanceIdentifier="prod-db-reader")["DBInstances"][0]
        return str(instance["DBInstanceStatus"])

    seen = watch(aws, look, "available", world_seconds=3000)

    assert answer["DBInstanceStatus"] == "creating"
    assert [value for value, _ in seen] == ["creating", "backing-up", "available"]
    creating, backing_up = DURATIONS.instance_creating, DURATIONS.instance_backing_up
    assert seen[1][1] - asked >= creating
    assert seen[2][1] - asked >= creating + backing_up
    assert seen[2][1] - asked <= 3 * (creating + backing_up)
    assert aws.wait_until(lambda: len(heard) == 3, world_seconds=1000)
    assert [event["detail"]["EventID"] for event in heard] == ["RDS-EVENT-0005", "RDS-EVENT-0001", "RDS-EVENT-0002"]
    offsets = [event_date(event) - answer["InstanceCreateTime"] for event in heard]
    assert all(map(within_a_millisecond, offsets, [creating, creating, creating + backing_up]))


def test_delete_writer_then_cluster_is_gone_once_the_writer_is(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE)
    asked = aws.world_time()
    rds.delete_db_instance(DBInstanceIdentifier=f"{SOURCE}-writer", SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=SOURCE, SkipFinalSnapshot=True)

    assert status(rds, SOURCE) == "deleting"
    assert aws.wait_until(lambda: gone(rds, SOURCE), world_seconds=1000)
    assert aws.world_time() - asked >= DURATIONS.instance_deleting  # not before its instance, though 60 s is due
    assert rds.describe_db_instances()["DBInstances"] == []


def test_cluster_deleted_event_is_dated_when_it_went_not_before_its_last_instance(aws: LocalAws, rds: Any) -> None:
    heard: list[dict[str, Any]] = []
    aws.subscribe(heard.append)
    aws.create_source_cluster(SOURCE)
    rds.delete_db_instance(DBInstanceIdentifier=f"{SOURCE}-writer", SkipFinalSnapshot=True)
    rds.delete_db_cluster(DBClusterIdentifier=SOURCE, SkipFinalSnapshot=True)

    assert aws.wait_until(lambda: len(heard) == 2, world_seconds=1000)
    dates = {event["detail"]["EventID"]: event_date(event) for event in heard}
    assert dates["RDS-EVENT-0171"] >= dates["RDS-EVENT-0003"]  # the cluster's own stage (60 s) ended earlier


# -- refusals -----------------------------------------------------------------------------------------


def test_create_cluster_over_existing_identifier_raises_already_exists(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE)

    with pytest.raises(ClientError) as created:
        rds.create_db_cluster(
            DBClusterIdentifier=SOURCE, Engine="aurora-mysql", MasterUsername="admin", MasterUserPassword="password-1"
        )
    with pytest.raises(ClientError) as restored:
        clone(rds, SOURCE)

    assert error_code(created) == "DBClusterAlreadyExistsFault"
    assert error_code(restored) == "DBClusterAlreadyExistsFault"
    assert status(rds, SOURCE) == "available"


def test_delete_cluster_with_instances_raises_invalid_cluster_state(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE)

    with pytest.raises(ClientError) as raised:
        rds.delete_db_cluster(DBClusterIdentifier=SOURCE, SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidDBClusterStateFault"
    assert status(rds, SOURCE) == "available"


def test_delete_protected_cluster_raises_invalid_parameter_combination(aws: LocalAws, rds: Any) -> None:
    rds.create_db_cluster(
        DBClusterIdentifier="protected",
        Engine="aurora-mysql",
        MasterUsername="admin",
        MasterUserPassword="password-1",
        DeletionProtection=True,
    )
    assert aws.wait_until(lambda: status(rds, "protected") == "available", world_seconds=1000)

    with pytest.raises(ClientError) as raised:
        rds.delete_db_cluster(DBClusterIdentifier="protected", SkipFinalSnapshot=True)

    assert error_code(raised) == "InvalidParameterCombination"
    assert status(rds, "protected") == "available"


# -- clones ---------------------------------------------------------------------------------------------


def test_restore_without_tags_gives_clone_no_source_tags(aws: LocalAws, rds: Any) -> None:
    source_arn = aws.create_source_cluster(SOURCE)
    rds.add_tags_to_resource(ResourceName=source_arn, Tags=[{"Key": "team", "Value": "payments"}])

    made = clone(rds, "clone")

    assert made["TagList"] == []
    assert rds.list_tags_for_resource(ResourceName=made["DBClusterArn"])["TagList"] == []
    assert describe(rds, SOURCE)["TagList"] == [{"Key": "team", "Value": "payments"}]


def test_copy_on_write_clones_share_clone_group_id_with_source(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE)
    assert "CloneGroupId" not in describe(rds, SOURCE)

    first, second = clone(rds, "clone-1"), clone(rds, "clone-2")
    full_copy = rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier="copy", SourceDBClusterIdentifier=SOURCE, UseLatestRestorableTime=True
    )["DBCluster"]

    family = describe(rds, SOURCE)["CloneGroupId"]
    assert str(uuid.UUID(family)) == family
    assert first["CloneGroupId"] == second["CloneGroupId"] == family
    assert describe(rds, "clone-2")["CloneGroupId"] == family
    assert "CloneGroupId" not in full_copy


def test_sixteenth_copy_on_write_clone_becomes_full_copy_in_a_new_family() -> None:
    with LocalAws(time_scale=FAST_TIME_SCALE) as aws:  # a full copy takes half an hour of world time
        rds = aws.client("rds")
        aws.create_source_cluster(SOURCE)
        clones = [f"clone-{number}" for number in range(1, 16)]
        for identifier in clones:
            clone(rds, identifier)
        asked = aws.world_time()

        extra = clone(rds, "clone-16")
        family = describe(rds, SOURCE)["CloneGroupId"]

        assert extra["Status"] == "creating"  # nothing in the answer says it is not a clone
        assert "CloneGroupId" not in extra and "CloneGroupId" not in describe(rds, "clone-16")
        assert {describe(rds, identifier)["CloneGroupId"] for identifier in clones} == {family}

        def clones_available() -> bool:
            clusters = rds.describe_db_clusters()["DBClusters"]
            return all(
                cluster["Status"] == "available" for cluster in clusters if cluster["DBClusterIdentifier"] in clones
            )

        assert aws.wait_until(clones_available, world_seconds=1200)
        assert status(rds, "clone-16") == "creating"
        assert aws.wait_until(lambda: status(rds, "clone-16") == "available", world_seconds=4000)
        assert aws.world_time() - asked >= DURATIONS.full_copy_creating + DURATIONS.cluster_backing_up
        grandchild = clone(rds, "clone-of-copy", source="clone-16")
        assert grandchild["CloneGroupId"] == describe(rds, "clone-16")["CloneGroupId"] != family


# -- backtrack ------------------------------------------------------------------------------------------


def test_backtrack_aurora_postgresql_cluster_raises_invalid_parameter_value(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster("pg-db", engine="aurora-postgresql")
    created = describe(rds, "pg-db")["ClusterCreateTime"]

    with pytest.raises(ClientError) as raised:
        rds.backtrack_db_cluster(DBClusterIdentifier="pg-db", BacktrackTo=created)

    assert error_code(raised) == "InvalidParameterValue"
    assert status(rds, "pg-db") == "available"


def test_backtrack_cluster_without_window_raises_invalid_parameter_value(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE, backtrack_window=0)
    created = describe(rds, SOURCE)["ClusterCreateTime"]

    with pytest.raises(ClientError) as raised:
        rds.backtrack_db_cluster(DBClusterIdentifier=SOURCE, BacktrackTo=created)

    assert error_code(raised) == "InvalidParameterValue"
    assert "EarliestBacktrackTime" not in describe(rds, SOURCE)
    assert status(rds, SOURCE) == "available"


def test_backtrack_to_before_creation_raises_invalid_parameter_value(aws: LocalAws, rds: Any) -> None:
    aws.create_source_cluster(SOURCE, backtrack_window=3600)
    created = describe(rds, SOURCE)["ClusterCreateTime"]

    with pytest.raises(ClientError) as raised:
        rds.backtrack_db_cluster(DBClusterIdentifier=SOURCE, BacktrackTo=created - datetime.timedelta(minutes=1))

    assert error_code(raised) == "InvalidParameterValue"
    assert describe(rds, SOURCE)["EarliestBacktrackTime"] == created
    assert status(rds, SOURCE) == "available"


def test_backtrack_within_window_is_backtracking_then_available() -> None:
    durations = Durations(backtracking=600)  # a long rewind, so that the first look cannot miss it
    with LocalAws(time_scale=TIME_SCALE, durations=durations) as aws:
        rds = aws.client("rds")
        aws.create_source_cluster(SOURCE, backtrack_window=3600)
        created = describe(rds, SOURCE)["ClusterCreateTime"]
        started = aws.world_time()
        assert aws.wait_until(lambda: aws.world_time() - started >= 120, world_seconds=600)
        target = created + datetime.timedelta(seconds=60)
        asked = aws.world_time()

        answer = rds.backtrack_db_cluster(DBClusterIdentifier=SOURCE, BacktrackTo=target)

        seen = watch(aws, lambda: status(rds, SOURCE), "available", world_seconds=2000)
    assert answer["DBClusterIdentifier"] == SOURCE
    assert answer["BacktrackTo"] == target
    assert answer["Status"] == "pending"
    assert answer["BacktrackedFrom"] >= target + datetime.timedelta(seconds=60)
    assert str(uuid.UUID(answer["BacktrackIdentifier"])) == answer["BacktrackIdentifier"]
    assert [value for value, _ in seen] == ["backtracking", "available"]
    assert seen[1][1] - asked >= durations.backtracking


def test_backtrack_window_over_72_hours_raises_invalid_parameter_value(aws: LocalAws, rds: Any) -> None:
    def create(identifier: str, window: int) -> None:
        rds.create_db_cluster(
            DBClusterIdentifier=identifier,
            Engine="aurora-mysql",
            MasterUsername="admin",
            MasterUserPassword="password-1",
            BacktrackWindow=window,
        )

    create("longest", 259200)
    with pytest.raises(ClientError) as raised:
        create("too-long", 259201)

    assert error_code(raised) == "InvalidParameterValue"
    assert [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]] == ["longest"]


# -- throttling -----------------------------------------------------------------------------------------


def test_burst_over_limit_raises_throttling_without_retries_and_succeeds_with_them() -> None:
    with LocalAws(time_scale=TIME_SCALE, throttling=Throttling()) as aws:
        impatient = aws.client("rds", config=NO_RETRIES)
        answered = 0
        with pytest.raises(ClientError) as raised:
            for _ in range(400):
                impatient.describe_db_clusters()
                answered += 1

        patient = aws.client("rds", config=RETRIES)
        retries = sum(patient.describe_db_clusters()["ResponseMetadata"]["RetryAttempts"] for _ in range(6))

    assert error_code(raised) == "ThrottlingException"
    assert raised.value.response["Error"]["Message"] == "Rate exceeded"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert 300 <= answered < 400
    assert retries > 0
    assert aws.rds_calls["DescribeDBClusters"] >= answered + 1 + 6 + retries


def test_burst_of_400_calls_without_throttling_configured_is_answered(aws: LocalAws) -> None:
    impatient = aws.client("rds", config=NO_RETRIES)

    answers = [impatient.describe_db_clusters() for _ in range(400)]

    assert len(answers) == 400
    assert aws.rds_calls["DescribeDBClusters"] == 400


# -- events ---------------------------------------------------------------------------------------------


def test_clone_created_event_reaches_sqs_rule_and_subscriber_in_rds_shape(aws: LocalAws, rds: Any) -> None:
    heard: list[dict[str, Any]] = []
    aws.subscribe(heard.append)
    sqs, events = aws.client("sqs"), aws.client("events")
    queue = sqs.create_queue(QueueName="rds-events")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="rds-events", EventPattern=json.dumps({"source": ["aws.rds"]}))
    events.put_targets(Rule="rds-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
    function_arn = f"arn:aws:lambda:{aws.region}:{aws.account_id}:function:somewhere"
    events.put_rule(Name="to-lambda", EventPattern=json.dumps({"source": ["aws.rds"]}))
    events.put_targets(Rule="to-lambda", Targets=[{"Id": "function", "Arn": function_arn}])
    events.put_rule(Name="every-minute", ScheduleExpression="rate(1 minute)")
    events.put_targets(Rule="every-minute", Targets=[{"Id": "queue", "Arn": queue_arn}])
    aws.create_source_cluster(SOURCE)
    made = clone(rds, "clone")
    received: list[dict[str, Any]] = []

    def arrived() -> bool:
        for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            received.append(json.loads(message["Body"]))
        return bool(received) and bool(heard)

    assert aws.wait_until(arrived, world_seconds=1000)
    [event] = received
    assert set(event) == {"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}
    assert event["source"] == "aws.rds"
    assert event["detail-type"] == "RDS DB Cluster Event"
    assert event["account"] == aws.account_id and event["region"] == aws.region
    assert event["resources"] == [made["DBClusterArn"]]
    detail = event["detail"]
    assert detail["EventID"] == "RDS-EVENT-0170"
    assert detail["Message"] == "DB cluster created."
    assert detail["EventCategories"] == ["creation"]
    assert detail["SourceType"] == "CLUSTER"
    assert detail["SourceArn"] == made["DBClusterArn"]
    assert detail["SourceIdentifier"] == "clone"
    assert within_a_millisecond(event_date(event) - made["ClusterCreateTime"], DURATIONS.cluster_creating)
    assert event["time"] == detail["Date"][:19] + "Z"
    assert heard == [event]


def test_put_events_on_default_bus_reaches_subscriber_and_queue_past_lambda_targets(aws: LocalAws) -> None:
    heard: list[dict[str, Any]] = []
    aws.subscribe(heard.append)
    sqs, events = aws.client("sqs"), aws.client("events")
    queue = sqs.create_queue(QueueName="custom")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    function_arn = f"arn:aws:lambda:{aws.region}:{aws.account_id}:function:somewhere"
    events.put_rule(Name="custom", EventPattern=json.dumps({"source": ["my.app"]}))
    events.put_targets(Rule="custom", Targets=[{"Id": "function", "Arn": function_arn}, {"Id": "q", "Arn": queue_arn}])

    answer = events.put_events(Entries=[{"Source": "my.app", "DetailType": "Thing", "Detail": json.dumps({"a": 1})}])

    assert answer["FailedEntryCount"] == 0
    assert aws.wait_until(lambda: bool(heard), world_seconds=1000)
    [event] = heard
    assert event["id"] == answer["Entries"][0]["EventId"]
    assert (event["source"], event["detail-type"], event["detail"]) == ("my.app", "Thing", {"a": 1})
    [message] = sqs.receive_message(QueueUrl=queue)["Messages"]
    assert json.loads(message["Body"])["id"] == event["id"]


def test_seeded_world_draws_stage_durations_around_base() -> None:
    with LocalAws(time_scale=TIME_SCALE, seed=11) as aws:
        heard: list[dict[str, Any]] = []
        aws.subscribe(heard.append)
        aws.create_source_cluster(SOURCE)
        rds = aws.client("rds")
        made = clone(rds, "clone")
        assert aws.wait_until(lambda: bool(heard), world_seconds=2000)

    creating = (event_date(heard[0]) - made["ClusterCreateTime"]).total_seconds()
    assert heard[0]["detail"]["EventID"] == "RDS-EVENT-0170"
    assert abs(creating - DURATIONS.cluster_creating) > 1
    assert DURATIONS.cluster_creating / 3 < creating < DURATIONS.cluster_creating * 3


# -- EventBridge and Lambda limits ----------------------------------------------------------------------


def test_put_rule_name_over_64_characters_raises_validation(aws: LocalAws) -> None:
    events = aws.client("events")
    events.put_rule(Name="r" * 64, ScheduleExpression="rate(2 minutes)")

    with pytest.raises(ClientError) as raised:
        events.put_rule(Name="r" * 65, ScheduleExpression="rate(2 minutes)")

    assert error_code(raised) == "ValidationException"
    assert "Member must have length less than or equal to 64" in raised.value.response["Error"]["Message"]
    assert [rule["Name"] for rule in events.list_rules()["Rules"]] == ["r" * 64]


def test_put_targets_input_over_8192_characters_raises_validation(aws: LocalAws) -> None:
    events = aws.client("events")
    events.put_rule(Name="poll", ScheduleExpression="rate(2 minutes)")
    function_arn = f"arn:aws:lambda:{aws.region}:{aws.account_id}:function:clone-function"
    accepted = json.dumps({"k": "v" * 8183})

    events.put_targets(Rule="poll", Targets=[{"Id": "1", "Arn": function_arn, "Input": accepted}])
    with pytest.raises(ClientError) as raised:
        events.put_targets(Rule="poll", Targets=[{"Id": "1", "Arn": function_arn, "Input": accepted + " "}])

    assert len(accepted) == 8192
    assert error_code(raised) == "ValidationException"
    [kept] = events.list_targets_by_rule(Rule="poll")["Targets"]
    assert kept["Input"] == accepted


def test_add_permission_beyond_20kb_policy_raises_policy_length_exceeded(aws: LocalAws) -> None:
    iam, functions = aws.client("iam"), aws.client("lambda")
    role = iam.create_role(RoleName="clone-function", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    functions.create_function(
        FunctionName="clone-function",
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    added = 0

    with pytest.raises(ClientError) as raised:
        for index in range(200):
            functions.add_permission(
                FunctionName="clone-function",
                StatementId=f"ClonePollingRule{index:08d}",
                Action="lambda:InvokeFunction",
                Principal="events.amazonaws.com",
                SourceArn=f"arn:aws:events:{aws.region}:{aws.account_id}:rule/{'ClonePollingRule' * 3}{index:08d}",
            )
            added += 1

    assert error_code(raised) == "PolicyLengthExceededException"
    policy = json.loads(functions.get_policy(FunctionName="clone-function")["Policy"])
    assert added > 20
    assert len(policy["Statement"]) == added
    assert len(json.dumps(policy, separators=(",", ":"))) <= 20480


# -- the world itself -----------------------------------------------------------------------------------


def test_second_world_does_not_see_first_worlds_clusters() -> None:
    with LocalAws(time_scale=TIME_SCALE) as first:
        first.create_source_cluster(SOURCE)
        assert [c["DBClusterIdentifier"] for c in first.client("rds").describe_db_clusters()["DBClusters"]] == [SOURCE]

    with LocalAws(time_scale=TIME_SCALE) as second:
        rds = second.client("rds")
        assert rds.describe_db_clusters()["DBClusters"] == []
        assert rds.describe_db_instances()["DBInstances"] == []
        second.create_source_cluster(SOURCE)  # the identifier is free again


def test_leaving_world_stops_every_thread_and_removes_patches_and_files() -> None:
    before = set(threading.enumerate())
    with LocalAws(time_scale=TIME_SCALE) as aws:
        aws.subscribe(lambda event: None)
        aws.create_source_cluster(SOURCE)
        clone(aws.client("rds"), "clone")
        aws.client("sqs").list_queues()
        ca_bundle = Path(aws.ca_bundle)
        assert ca_bundle.exists()
        assert "backtrack_db_cluster" in vars(RDSResponse)

    assert [thread.name for thread in set(threading.enumerate()) - before] == []
    assert not ca_bundle.exists()
    assert "backtrack_db_cluster" not in vars(RDSResponse)
    assert aws.transitional() == {}


def test_seeded_durations_vary_around_base_and_repeat() -> None:
    drawn = [DURATIONS.draw(Stage.INSTANCE_CREATING, random.Random(seed)) for seed in range(50)]
    again = [DURATIONS.draw(Stage.INSTANCE_CREATING, random.Random(seed)) for seed in range(50)]

    assert drawn == again
    assert len(set(drawn)) == 50
    assert min(drawn) < DURATIONS.instance_creating < max(drawn)
    assert all(DURATIONS.instance_creating / 3 < value < DURATIONS.instance_creating * 3 for value in drawn)
    assert DURATIONS.draw(Stage.INSTANCE_CREATING) == DURATIONS.instance_creating
    assert DURATIONS.full_copy_creating > 5 * DURATIONS.cluster_creating


def test_second_world_at_once_raises_and_leaves_the_first_running() -> None:
    with LocalAws(time_scale=TIME_SCALE) as first:
        first.create_source_cluster(SOURCE)

        with pytest.raises(RuntimeError, match="already installed"), LocalAws(time_scale=TIME_SCALE):
            pass

        assert status(first.client("rds"), SOURCE) == "available"


# -- RDS events: best effort, as on AWS ------------------------------------------------------------------


def test_event_delivery_loses_and_doubles_about_the_configured_fractions_with_lognormal_lags() -> None:
    delivery = EventDelivery()
    rng = random.Random(2024)
    draws = [delivery.arrivals(rng) for _ in range(20000)]

    lost = sum(not lags for lags in draws) / len(draws)
    doubled = sum(len(lags) == 2 for lags in draws) / len(draws)
    lags = [lag for arrival in draws for lag in arrival]
    assert 0.025 < lost < 0.035
    assert 0.015 < doubled < 0.025
    assert 0.9 < statistics.median(lags) < 1.1
    assert min(lags) > 0 and max(lags) > 5  # some are very late
    assert [delivery.arrivals(random.Random(7)) for _ in range(3)] == [delivery.arrivals(random.Random(7))] * 3


def test_world_delivers_rds_events_late_some_lost_some_twice_and_counts_them() -> None:
    # Every event RDS publishes reaches the SQS rule at once; the subscriber gets what delivery lets through.
    delivery = EventDelivery(lag_median=2.0, loss=0.25, duplicate=0.25, seed=5)
    heard: list[dict[str, Any]] = []

    def hear(event: dict[str, Any]) -> None:
        if event["source"] == "aws.rds":
            heard.append(event)

    with LocalAws(time_scale=TIME_SCALE, event_delivery=delivery) as world:
        world.subscribe(hear)
        sqs, events, rds = world.client("sqs"), world.client("events"), world.client("rds")
        published_url = sqs.create_queue(QueueName="published")["QueueUrl"]
        published_arn = sqs.get_queue_attributes(QueueUrl=published_url, AttributeNames=["QueueArn"])["Attributes"]
        events.put_rule(Name="all-rds", EventPattern=json.dumps({"source": ["aws.rds"]}))
        events.put_targets(Rule="all-rds", Targets=[{"Id": "queue", "Arn": published_arn["QueueArn"]}])
        world.create_source_cluster(SOURCE)
        for number in range(12):
            rds.restore_db_cluster_to_point_in_time(
                DBClusterIdentifier=f"clone-{number}",
                SourceDBClusterIdentifier=SOURCE,
                RestoreType="copy-on-write",
                UseLatestRestorableTime=True,
            )
        published: list[dict[str, Any]] = []

        def all_published_and_settled() -> bool:
            for message in sqs.receive_message(QueueUrl=published_url, MaxNumberOfMessages=10).get("Messages", []):
                published.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=published_url, ReceiptHandle=message["ReceiptHandle"])
            counts = world.event_counts
            return len(published) == 12 and counts["delivered"] + counts["lost"] - counts["duplicated"] == 12

        assert world.wait_until(all_published_and_settled, world_seconds=3000), (len(published), world.event_counts)
        counts = dict(world.event_counts)

    published_ids = [event["id"] for event in published]
    heard_ids = [event["id"] for event in heard]
    assert counts["lost"] > 0 and counts["duplicated"] > 0
    assert len(set(published_ids) - set(heard_ids)) == counts["lost"]
    assert len(heard_ids) - len(set(heard_ids)) == counts["duplicated"]
    assert len(heard) == counts["delivered"]
    assert set(heard_ids) <= set(published_ids)


def test_world_without_event_delivery_hands_every_rds_event_over_once() -> None:
    heard: list[dict[str, Any]] = []
    with LocalAws(time_scale=TIME_SCALE) as world:
        world.subscribe(heard.append)
        world.create_source_cluster(SOURCE)
        rds = world.client("rds")
        for number in range(3):
            rds.restore_db_cluster_to_point_in_time(
                DBClusterIdentifier=f"clone-{number}",
                SourceDBClusterIdentifier=SOURCE,
                RestoreType="copy-on-write",
                UseLatestRestorableTime=True,
            )
        assert world.wait_until(lambda: len(heard) == 3, world_seconds=1000)
        counts = dict(world.event_counts)

    assert sorted(event["detail"]["SourceIdentifier"] for event in heard) == ["clone-0", "clone-1", "clone-2"]
    assert counts == {"delivered": 3}
