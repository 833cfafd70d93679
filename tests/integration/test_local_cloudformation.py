"""End to end with no AWS account: the embedded world, the local Lambda runtime running the real handler,
EventBridge played for its RDS event rule (events late, a few lost or doubled, as on AWS), the queue poller
delivering its wake-ups, and the local CloudFormation driving Custom::AuroraClone stacks.

One world (time_scale 0.005, as LocalSession: a world minute is 0.3 s) and one function stack serve the
module; every test makes its own stacks and leaves nothing behind. The handler runs in real time, so the
function's execution environments are warmed up first: a cold start on a busy machine would cost
CloudFormation's ServiceTimeout, counted in world time, a good share of its hour.
"""

from __future__ import annotations

import json
import os
import textwrap
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local.cloudformation import LocalCloudFormation
from aurora_clone.local.cloudformation_api import CloudFormationApi
from aurora_clone.local.eventbridge import EventBridgePlayer, rate_seconds
from aurora_clone.local.lambda_runtime import FunctionError, LocalLambda
from aurora_clone.local.queue_poller import QueuePoller
from aurora_clone.local.session import leftovers
from aurora_clone.local.stacks import LocalStack, StackError, cloudformation_strings
from aurora_clone.local.template import TemplateError
from aurora_clone.local.world import EventDelivery, LocalAws

REPO = Path(__file__).resolve().parents[2]
FUNCTION_STACK = "aurora-clone"
SOURCE = "prod-db"
OTHER_SOURCE = "staging-db"
BUCKET = "cloudformation-custom-resource-response-useast1"
SETTLE_WORLD_SECONDS = 600.0  # 0.6 s of real time: enough for the last (stale) wake-ups to be consumed
SEED = 7
TIME_SCALE = 0.005
WARM_UP = {  # a wake-up for a request that does not exist: builds the handler's clients, changes nothing
    "Records": [
        {"messageId": "warm-up", "eventSource": "aws:sqs", "body": '{"request": "000000000000", "recheck": true}'}
    ]
}


class RecordingLambda(LocalLambda):
    """LocalLambda that keeps a copy of every asynchronous invocation's event."""

    def __init__(self, world: LocalAws, **options: Any) -> None:
        super().__init__(world, **options)
        self.sent: list[dict[str, Any]] = []
        self._sent_lock = threading.Lock()

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Future[None]:
        with self._sent_lock:
            self.sent.append(json.loads(json.dumps(event)))
        return super().invoke_async(function_name_or_arn, event)

    def requests(self, stack_id: str) -> list[dict[str, Any]]:
        """The requests CloudFormation sent for a stack (RDS events left out), in order."""
        with self._sent_lock:
            return [event for event in self.sent if event.get("StackId") == stack_id and "RequestType" in event]


@dataclass
class Local:
    world: LocalAws
    lambdas: RecordingLambda
    player: EventBridgePlayer
    poller: QueuePoller
    cfn: LocalCloudFormation
    function_stack: LocalStack
    printed: list[str]
    logs: list[str]

    def cluster_ids(self) -> set[str]:
        return {item["DBClusterIdentifier"] for item in self.world.client("rds").describe_db_clusters()["DBClusters"]}

    def instances(self) -> dict[str, dict[str, Any]]:
        found = self.world.client("rds").describe_db_instances()["DBInstances"]
        return {item["DBInstanceIdentifier"]: item for item in found}

    def leftovers(self) -> dict[str, list[str]]:
        return leftovers(self.world, self.function_stack)

    def settled(self) -> bool:
        """Only the sources are left, and nothing of the tool's: no request pending, no wake-up queued."""
        sources = {SOURCE, OTHER_SOURCE}
        writers = {f"{source}-writer" for source in sources}
        return self.cluster_ids() == sources and set(self.instances()) == writers and not any(self.leftovers().values())

    def template(self, directory: Path, body: str) -> str:
        path = directory / "template.yaml"
        path.write_text(textwrap.dedent(body))
        return str(path)


@pytest.fixture(scope="module")
def local() -> Iterator[Local]:
    printed: list[str] = []
    logs: list[str] = []
    with (
        LocalAws(time_scale=TIME_SCALE, event_delivery=EventDelivery(seed=SEED)) as world,
        RecordingLambda(world, log_sink=lambda _name, line: logs.append(line)) as lambdas,
        EventBridgePlayer(world, lambdas) as player,
        QueuePoller(world, lambdas) as poller,
    ):
        cfn = LocalCloudFormation(world, lambdas, printer=printed.append, poller=poller)
        # The endpoint's CloudFormation API answers from these stacks, as in LocalSession: the function confirms
        # each request there (DescribeStacks, DescribeStackResource).
        world.put_in_front(CloudFormationApi(cfn, world).in_front_of)
        function_stack = cfn.deploy_function_stack(str(REPO / "template.yaml"), FUNCTION_STACK)
        assert function_stack.status == "CREATE_COMPLETE", function_stack.status_reason
        function_arn = function_stack.outputs["ServiceToken"]
        warming = [lambdas.invoke_async(function_arn, WARM_UP) for _ in range(lambdas.concurrency)]
        for invocation in warming:
            invocation.result()
        world.create_source_cluster(SOURCE)
        world.create_source_cluster(OTHER_SOURCE)
        yield Local(world, lambdas, player, poller, cfn, function_stack, printed, logs)


def statuses(stack: LocalStack, logical_id: str) -> list[str]:
    return [event.status for event in stack.events if event.logical_id == logical_id]


def reasons(stack: LocalStack, status: str) -> list[str]:
    return [event.reason for event in stack.events if event.status == status]


# -- the function stack ---------------------------------------------------------------------------------------


def test_function_stack_deploys_role_policies_log_group_function_and_permission(local: Local) -> None:
    outputs = local.function_stack.outputs
    resources = local.function_stack.resources
    function_name = resources["Function"].physical_id
    lambda_client, iam = local.world.client("lambda"), local.world.client("iam")

    assert outputs["ServiceToken"] == outputs["LambdaArn"] == local.lambdas.function_arn(function_name)
    assert local.cfn.exports[f"{FUNCTION_STACK}-ServiceToken"] == outputs["ServiceToken"]
    assert function_name.startswith(f"{FUNCTION_STACK}-Function-") and len(function_name) <= 64
    configuration = lambda_client.get_function(FunctionName=function_name)["Configuration"]
    role_name = resources["FunctionRole"].physical_id
    assert configuration["Role"] == iam.get_role(RoleName=role_name)["Role"]["Arn"]
    assert (configuration["Handler"], configuration["Timeout"], configuration["MemorySize"]) == (
        "aurora_clone.handler.handler",
        120,
        256,
    )
    variables = configuration["Environment"]["Variables"]
    assert variables["REQUEST_TABLE"] == resources["RequestTable"].physical_id  # Ref: the table's name
    assert variables["WAKE_UP_QUEUE_URL"] == resources["WakeUpQueue"].physical_id  # Ref: the queue's URL
    assert sorted(iam.list_role_policies(RoleName=role_name)["PolicyNames"]) == ["logs", "rds", "request-engine"]
    engine_policy = iam.get_role_policy(RoleName=role_name, PolicyName="request-engine")["PolicyDocument"]
    assert resources["RequestTable"].attributes["Arn"] in json.dumps(engine_policy)  # !GetAtt, resolved
    assert resources["WakeUpQueue"].attributes["Arn"] in json.dumps(engine_policy)
    (statement,) = json.loads(lambda_client.get_policy(FunctionName=function_name)["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert resources["RdsEventRule"].attributes["Arn"] in json.dumps(statement["Condition"])
    groups = local.world.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/")["logGroups"]
    (log_group,) = [group for group in groups if group["logGroupName"] == "/aws/lambda/aurora-clone-aurora-clone"]
    assert (log_group["logGroupName"], log_group["retentionInDays"]) == ("/aws/lambda/aurora-clone-aurora-clone", 30)


def test_function_stack_deploys_request_table_wake_up_queues_mapping_and_event_rule(local: Local) -> None:
    resources = local.function_stack.resources
    dynamodb, sqs = local.world.client("dynamodb"), local.world.client("sqs")
    lambda_client, events = local.world.client("lambda"), local.world.client("events")

    table = dynamodb.describe_table(TableName=resources["RequestTable"].physical_id)["Table"]
    assert table["TableArn"] == resources["RequestTable"].attributes["Arn"]
    assert [(key["AttributeName"], key["KeyType"]) for key in table["KeySchema"]] == [("pk", "HASH"), ("sk", "RANGE")]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    assert table["SSEDescription"]["Status"] == "ENABLED"
    ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])["TimeToLiveDescription"]
    assert (ttl["TimeToLiveStatus"], ttl["AttributeName"]) == ("ENABLED", "expires_at")

    queue_url, dead_letter_url = resources["WakeUpQueue"].physical_id, resources["WakeUpDeadLetterQueue"].physical_id
    assert queue_url.startswith(f"{local.world.endpoint_url}/")
    assert resources["WakeUpQueue"].attributes["QueueName"] == queue_url.rsplit("/", 1)[-1]
    assert resources["WakeUpQueue"].attributes["QueueName"].startswith(f"{FUNCTION_STACK}-WakeUpQueue-")
    queue = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    dead_letter = sqs.get_queue_attributes(QueueUrl=dead_letter_url, AttributeNames=["All"])["Attributes"]
    assert (queue["VisibilityTimeout"], queue["MessageRetentionPeriod"], queue["SqsManagedSseEnabled"]) == (
        "720",
        "86400",
        "true",
    )
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dead_letter["QueueArn"], "maxReceiveCount": 5}
    assert dead_letter["MessageRetentionPeriod"] == "1209600"
    assert queue["QueueArn"] == resources["WakeUpQueue"].attributes["Arn"]

    (mapping,) = lambda_client.list_event_source_mappings(EventSourceArn=queue["QueueArn"])["EventSourceMappings"]
    assert mapping["UUID"] == resources["WakeUpMapping"].physical_id
    assert mapping["FunctionArn"] == local.function_stack.outputs["ServiceToken"]
    assert (mapping["BatchSize"], mapping["FunctionResponseTypes"]) == (10, ["ReportBatchItemFailures"])
    polled = local.poller.mappings[mapping["UUID"]]
    assert (polled.queue_url, polled.batch_size, polled.report_batch_item_failures) == (queue_url, 10, True)

    rule = events.describe_rule(Name=resources["RdsEventRule"].physical_id)
    assert rule["Name"].startswith("aurora-clone-rds-events-")
    assert json.loads(rule["EventPattern"])["source"] == ["aws.rds"]
    (target,) = events.list_targets_by_rule(Rule=rule["Name"])["Targets"]
    assert target["Arn"] == local.function_stack.outputs["ServiceToken"]


def test_function_stack_deploys_prefix_concurrency_failure_destination_and_alarms(local: Local) -> None:
    resources = local.function_stack.resources
    lambda_client, cloudwatch = local.world.client("lambda"), local.world.client("cloudwatch")
    function_name, pool_name = resources["Function"].physical_id, resources["PoolFunction"].physical_id

    for name in (function_name, pool_name):
        variables = lambda_client.get_function(FunctionName=name)["Configuration"]["Environment"]["Variables"]
        assert variables["CLUSTER_ID_PREFIX"] == "aurora-clone-"  # the ClusterIdPrefix default
    assert lambda_client.get_function_concurrency(FunctionName=function_name)["ReservedConcurrentExecutions"] == 20
    assert lambda_client.get_function_concurrency(FunctionName=pool_name)["ReservedConcurrentExecutions"] == 1

    failure_queue = resources["FailedInvocationQueue"]
    config = lambda_client.get_function_event_invoke_config(FunctionName=function_name, Qualifier="$LATEST")
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"] == failure_queue.attributes["Arn"]
    sqs = local.world.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=failure_queue.physical_id, AttributeNames=["All"])["Attributes"]
    assert (attributes["MessageRetentionPeriod"], attributes["SqsManagedSseEnabled"]) == ("1209600", "true")
    engine_policy = local.world.client("iam").get_role_policy(
        RoleName=resources["FunctionRole"].physical_id, PolicyName="request-engine"
    )["PolicyDocument"]
    assert failure_queue.attributes["Arn"] in json.dumps(engine_policy)

    alarms = {
        alarm["AlarmName"]: alarm
        for alarm in cloudwatch.describe_alarms(
            AlarmNames=[resources[name].physical_id for name in ("WakeUpDeadLetterAlarm", "FailedInvocationAlarm")]
        )["MetricAlarms"]
    }
    for alarm_id, queue_id in (
        ("WakeUpDeadLetterAlarm", "WakeUpDeadLetterQueue"),
        ("FailedInvocationAlarm", "FailedInvocationQueue"),
    ):
        alarm = alarms[resources[alarm_id].physical_id]
        assert (alarm["Namespace"], alarm["MetricName"], alarm["Statistic"]) == (
            "AWS/SQS",
            "ApproximateNumberOfMessagesVisible",
            "Maximum",
        )
        assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": resources[queue_id].attributes["QueueName"]}]
        assert (alarm["Period"], alarm["EvaluationPeriods"], alarm["Threshold"]) == (300, 1, 1.0)
        assert (alarm["ComparisonOperator"], alarm["TreatMissingData"]) == (
            "GreaterThanOrEqualToThreshold",
            "notBreaching",
        )
        assert alarm["AlarmActions"] == []  # AlarmTopicArn is empty by default: no action

    backups = local.world.client("dynamodb").describe_continuous_backups(
        TableName=resources["RequestTable"].physical_id
    )
    recovery = backups["ContinuousBackupsDescription"]["PointInTimeRecoveryDescription"]
    assert recovery["PointInTimeRecoveryStatus"] == "ENABLED"
    outputs = local.function_stack.outputs
    assert outputs["FailedInvocationQueueUrl"] == failure_queue.physical_id
    assert outputs["WakeUpDeadLetterQueueUrl"] == resources["WakeUpDeadLetterQueue"].physical_id


def test_leftovers_list_pending_requests_queued_wake_ups_and_stray_rules(local: Local) -> None:
    resources = local.function_stack.resources
    table, queue_url = resources["RequestTable"].physical_id, resources["WakeUpQueue"].physical_id
    dynamodb, sqs, events = (local.world.client(name) for name in ("dynamodb", "sqs", "events"))
    records: dict[str, dict[str, Any]] = {
        "0123456789ab": {"state": {"S": "pending"}},
        "ba9876543210": {"state": {"S": "answered"}, "delivered": {"BOOL": False}},
        "aaaaaaaaaaaa": {"state": {"S": "answered"}, "delivered": {"BOOL": True}},
    }
    for token, fields in records.items():
        dynamodb.put_item(TableName=table, Item={"pk": {"S": f"request#{token}"}, "sk": {"S": "request"}, **fields})
    sqs.send_message(QueueUrl=queue_url, MessageBody="{}", DelaySeconds=900)
    events.put_rule(Name="aurora-clone-stray", ScheduleExpression="rate(1 day)")
    try:
        found = local.leftovers()
    finally:
        for token in records:
            dynamodb.delete_item(TableName=table, Key={"pk": {"S": f"request#{token}"}, "sk": {"S": "request"}})
        sqs.purge_queue(QueueUrl=queue_url)
        events.delete_rule(Name="aurora-clone-stray")

    assert found == {
        "clusters": [],
        "instances": [],
        "pending requests": ["0123456789ab", "ba9876543210 (answer not delivered)"],
        "queued wake-ups": ["WakeUpQueue: 1 (0 visible, 0 in flight, 1 delayed)"],
        "rules": ["aurora-clone-stray"],  # the function stack's own RDS event rule is not a leftover
    }
    assert local.settled()


# -- the example stack ----------------------------------------------------------------------------------------


def test_example_stack_creates_resizes_and_deletes_its_clone(local: Local) -> None:
    example = str(REPO / "example" / "template.yaml")

    created = local.cfn.create_stack("integration", example, {"SourceClusterId": SOURCE})

    assert created.status == "CREATE_COMPLETE", created.status_reason
    clone_id = created.outputs["ClusterId"]
    assert created.resources["TestDatabase"].physical_id == clone_id
    assert created.outputs["Endpoint"].startswith(f"{clone_id}.cluster-")
    assert created.outputs["Port"] == "3306"
    assert clone_id in local.cluster_ids()
    (create,) = local.lambdas.requests(created.stack_id)
    assert create["RequestType"] == "Create"
    assert create["ResourceProperties"]["ServiceTimeout"] == "3600"  # numbers arrive as strings
    assert create["ResponseURL"].startswith(f"{local.world.endpoint_url}/{BUCKET}/")
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in create["ResponseURL"]
    assert any(
        line.endswith("integration  TestDatabase  Custom::AuroraClone  CREATE_COMPLETE") for line in local.printed
    )

    updated = local.cfn.update_stack("integration", example, {"InstanceClass": "db.r6g.xlarge"})

    assert updated.status == "UPDATE_COMPLETE", updated.status_reason
    assert updated.resources["TestDatabase"].physical_id == clone_id  # resized in place, not replaced
    assert local.instances()[f"{clone_id}-1"]["DBInstanceClass"] == "db.r6g.xlarge"
    update = local.lambdas.requests(created.stack_id)[-1]
    assert (update["RequestType"], update["PhysicalResourceId"]) == ("Update", clone_id)
    assert update["OldResourceProperties"]["InstanceClass"] == "db.r6g.large"
    assert update["ResourceProperties"]["SourceClusterId"] == SOURCE  # previous value kept

    deleted = local.cfn.delete_stack("integration")

    assert deleted.status == "DELETE_COMPLETE", deleted.status_reason
    assert "integration" not in local.cfn.stacks
    assert local.lambdas.requests(created.stack_id)[-1]["RequestType"] == "Delete"
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS), (local.cluster_ids(), local.leftovers())


# -- failures -------------------------------------------------------------------------------------------------


def test_failed_create_rolls_back_with_a_delete_for_the_failed_answer(local: Local, tmp_path: Path) -> None:
    template = local.template(
        tmp_path,
        """
        Resources:
          TestDatabase:
            Type: Custom::AuroraClone
            Properties:
              ServiceToken: !ImportValue aurora-clone-ServiceToken
              SourceClusterId: prod-db
              Colour: blue
        """,
    )

    stack = local.cfn.create_stack("broken", template)

    assert stack.status == "ROLLBACK_COMPLETE"
    assert statuses(stack, "TestDatabase") == [
        "CREATE_IN_PROGRESS",
        "CREATE_FAILED",
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
    ]
    (failure,) = reasons(stack, "CREATE_FAILED")
    assert failure.startswith("Received response status [FAILED] from custom resource. Message returned: ")
    assert "Colour" in failure
    create, delete = local.lambdas.requests(stack.stack_id)
    failed_id = next(event.physical_id for event in stack.events if event.status == "CREATE_FAILED")
    assert failed_id
    assert (delete["RequestType"], delete["PhysicalResourceId"]) == ("Delete", failed_id)
    assert delete["RequestId"] != create["RequestId"]
    assert "ROLLBACK_IN_PROGRESS" in statuses(stack, "broken")
    assert stack.resources == {}
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS)
    local.cfn.delete_stack("broken")


def test_failed_update_rolls_back_with_old_and_new_swapped(local: Local, tmp_path: Path) -> None:
    body = """
        Parameters:
          ParameterGroup:
            Type: String
            Default: ""
        Conditions:
          HasParameterGroup: !Not [!Equals [!Ref ParameterGroup, ""]]
        Resources:
          TestDatabase:
            Type: Custom::AuroraClone
            Properties:
              ServiceToken: !ImportValue aurora-clone-ServiceToken
              SourceClusterId: prod-db
              DBParameterGroupName: !If [HasParameterGroup, !Ref ParameterGroup, !Ref AWS::NoValue]
        """
    template = local.template(tmp_path, body)
    created = local.cfn.create_stack("rollback", template)
    assert created.status == "CREATE_COMPLETE", created.status_reason
    clone_id = created.resources["TestDatabase"].physical_id

    updated = local.cfn.update_stack("rollback", template, {"ParameterGroup": "no-such-group"})

    assert updated.status == "UPDATE_ROLLBACK_COMPLETE", updated.status_reason
    assert statuses(updated, "rollback")[-4:] == [
        "UPDATE_IN_PROGRESS",
        "UPDATE_ROLLBACK_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        "UPDATE_ROLLBACK_COMPLETE",
    ]
    assert "parameter group does not exist" in reasons(updated, "UPDATE_FAILED")[0]
    create, attempt, rollback = local.lambdas.requests(created.stack_id)
    assert "DBParameterGroupName" not in create["ResourceProperties"]  # AWS::NoValue removed it
    assert attempt["ResourceProperties"]["DBParameterGroupName"] == "no-such-group"
    assert (rollback["ResourceProperties"], rollback["OldResourceProperties"]) == (
        attempt["OldResourceProperties"],
        attempt["ResourceProperties"],
    )
    assert rollback["PhysicalResourceId"] == attempt["PhysicalResourceId"] == clone_id
    assert updated.parameters["ParameterGroup"] == ""
    assert updated.resources["TestDatabase"].physical_id == clone_id
    assert clone_id in local.cluster_ids()

    assert local.cfn.delete_stack("rollback").status == "DELETE_COMPLETE"
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS)


def test_replacement_deletes_the_old_clone_in_the_cleanup_phase(local: Local) -> None:
    example = str(REPO / "example" / "template.yaml")
    created = local.cfn.create_stack("replaced", example, {"SourceClusterId": SOURCE})
    assert created.status == "CREATE_COMPLETE", created.status_reason
    old_id = created.outputs["ClusterId"]

    updated = local.cfn.update_stack("replaced", example, {"SourceClusterId": OTHER_SOURCE})

    assert updated.status == "UPDATE_COMPLETE", updated.status_reason
    new_id = updated.outputs["ClusterId"]
    assert new_id != old_id and updated.resources["TestDatabase"].physical_id == new_id
    update, cleanup = local.lambdas.requests(created.stack_id)[-2:]
    assert (update["RequestType"], update["PhysicalResourceId"]) == ("Update", old_id)
    assert (cleanup["RequestType"], cleanup["PhysicalResourceId"]) == ("Delete", old_id)
    assert cleanup["ResourceProperties"]["SourceClusterId"] == SOURCE  # the old resource's properties
    stack_lines = [event.status for event in updated.events]
    assert stack_lines.index("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS") < stack_lines.index("DELETE_COMPLETE")
    assert old_id not in local.cluster_ids() and new_id in local.cluster_ids()

    assert local.cfn.delete_stack("replaced").status == "DELETE_COMPLETE"
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS)


def test_retained_resource_gets_no_delete_on_rollback(local: Local, tmp_path: Path) -> None:
    template = local.template(
        tmp_path,
        """
        Resources:
          TestDatabase:
            Type: Custom::AuroraClone
            DeletionPolicy: Retain
            Properties:
              ServiceToken: !ImportValue aurora-clone-ServiceToken
              SourceClusterId: prod-db
              Colour: blue
        """,
    )

    stack = local.cfn.create_stack("retained", template)

    assert stack.status == "ROLLBACK_COMPLETE"
    assert statuses(stack, "TestDatabase") == ["CREATE_IN_PROGRESS", "CREATE_FAILED", "DELETE_SKIPPED"]
    assert [event["RequestType"] for event in local.lambdas.requests(stack.stack_id)] == ["Create"]
    local.cfn.delete_stack("retained")


def test_unsupported_resource_type_is_refused_before_anything_runs(local: Local, tmp_path: Path) -> None:
    template = local.template(tmp_path, "Resources:\n  Bucket:\n    Type: AWS::S3::Bucket\n")

    with pytest.raises(TemplateError, match=r"Resource Bucket: type AWS::S3::Bucket is not supported"):
        local.cfn.create_stack("unsupported", template)
    assert "unsupported" not in local.cfn.stacks


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        pytest.param({}, r"Parameters: \[SourceClusterId\] must have values", id="missing"),
        pytest.param(
            {"SourceClusterId": SOURCE, "InstanceClass": "large"}, "failed to satisfy constraint", id="pattern"
        ),
    ],
)
def test_example_stack_parameters_are_checked(local: Local, parameters: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        local.cfn.create_stack("bad-parameters", str(REPO / "example" / "template.yaml"), parameters)


def test_update_without_changes_is_refused(local: Local) -> None:
    with pytest.raises(StackError, match="No updates are to be performed"):
        local.cfn.update_stack(FUNCTION_STACK, str(REPO / "template.yaml"))


# -- intrinsics and dependencies ------------------------------------------------------------------------------

INTRINSICS = """
    Parameters:
      FunctionStack:
        Type: String
        Default: aurora-clone
      Source:
        Type: String
      Colours:
        Type: CommaDelimitedList
        Default: "blue, green"
    Conditions:
      IsBlue: !Equals [!Select [0, !Ref Colours], blue]
    Resources:
      First:
        Type: Custom::AuroraClone
        Properties:
          ServiceToken: !ImportValue
            Fn::Sub: ${FunctionStack}-ServiceToken
          ServiceTimeout: 3600
          SourceClusterId: !Ref Source
          InstanceCount: 1
      Second:
        Type: AWS::CloudFormation::CustomResource
        Properties:
          ServiceToken: !ImportValue
            Fn::Sub: ${FunctionStack}-ServiceToken
          SourceClusterId: !GetAtt First.ClusterId
          Tags:
            - Key: copied-from
              Value: !Sub ${First}@${AWS::Region}
    Outputs:
      FirstRef:
        Value: !Ref First
      FirstAddress:
        Value: !Sub ${First.Endpoint}:${First.Port}
      SecondSource:
        Value: !GetAtt [Second, SourceClusterId]
      Token:
        Value: !ImportValue
          Fn::Sub: ${FunctionStack}-ServiceToken
      Colour:
        Value: !If [IsBlue, !Join ["-", [!Select [1, !Ref Colours], !Ref "AWS::StackName"]], none]
      Where:
        Value: !Sub ${AWS::AccountId}/${AWS::Region}/${AWS::Partition}/${AWS::URLSuffix}/${!Literal}
      SecondId:
        Value: !Ref Second
        Export:
          Name: !Sub ${AWS::StackName}-SecondId
    """


def test_intrinsics_resolve_and_dependent_resources_run_in_order(local: Local, tmp_path: Path) -> None:
    stack = local.cfn.create_stack("intrinsics", local.template(tmp_path, INTRINSICS), {"Source": SOURCE})

    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    first, second = stack.resources["First"], stack.resources["Second"]
    outputs = stack.outputs
    assert outputs["FirstRef"] == first.physical_id
    assert outputs["FirstAddress"] == f"{first.attributes['Endpoint']}:{first.attributes['Port']}"
    assert outputs["SecondSource"] == first.physical_id  # a clone of the clone, made once the first was ready
    assert outputs["Token"] == local.function_stack.outputs["ServiceToken"]
    assert outputs["Colour"] == "green-intrinsics"
    assert outputs["Where"] == "123456789012/us-east-1/aws/amazonaws.com/${Literal}"
    assert local.cfn.exports["intrinsics-SecondId"] == second.physical_id == outputs["SecondId"]
    lines = [(event.logical_id, event.status) for event in stack.events]
    assert lines.index(("First", "CREATE_COMPLETE")) < lines.index(("Second", "CREATE_IN_PROGRESS"))
    second_create = next(
        event for event in local.lambdas.requests(stack.stack_id) if event["LogicalResourceId"] == "Second"
    )
    assert second_create["ResourceType"] == "AWS::CloudFormation::CustomResource"
    assert second_create["ResourceProperties"]["Tags"] == [
        {"Key": "copied-from", "Value": f"{first.physical_id}@us-east-1"}
    ]

    deleted = local.cfn.delete_stack("intrinsics")

    assert deleted.status == "DELETE_COMPLETE", deleted.status_reason
    lines = [(event.logical_id, event.status) for event in deleted.events]
    assert lines.index(("Second", "DELETE_COMPLETE")) < lines.index(("First", "DELETE_IN_PROGRESS"))
    assert "intrinsics-SecondId" not in local.cfn.exports
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS)


def test_function_stack_is_kept_while_its_export_is_imported_then_deleted(local: Local) -> None:
    second = local.cfn.deploy_function_stack(str(REPO / "template.yaml"), "other-clones")
    assert second.status == "CREATE_COMPLETE", second.status_reason
    function_name = second.resources["Function"].physical_id
    role_name = second.resources["FunctionRole"].physical_id
    table_name = second.resources["RequestTable"].physical_id
    queue_url = second.resources["WakeUpQueue"].physical_id
    mapping_id = second.resources["WakeUpMapping"].physical_id
    rule_name = second.resources["RdsEventRule"].physical_id
    importer = local.cfn.create_stack(
        "importer",
        str(REPO / "example" / "template.yaml"),
        {"SourceClusterId": SOURCE, "CloneFunctionStackName": "other-clones"},
    )
    assert importer.status == "CREATE_COMPLETE", importer.status_reason

    refused = local.cfn.delete_stack("other-clones")

    assert refused.status == "DELETE_FAILED"
    assert refused.status_reason == "Export other-clones-ServiceToken cannot be deleted as it is in use by importer"
    assert local.lambdas.is_registered(function_name)
    assert local.cfn.delete_stack("importer").status == "DELETE_COMPLETE"
    assert local.cfn.delete_stack("other-clones").status == "DELETE_COMPLETE"
    assert not local.lambdas.is_registered(function_name)
    assert "other-clones-ServiceToken" not in local.cfn.exports
    iam = local.world.client("iam")
    with pytest.raises(iam.exceptions.NoSuchEntityException):
        iam.get_role(RoleName=role_name)
    dynamodb, sqs, events = (local.world.client(name) for name in ("dynamodb", "sqs", "events"))
    with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
        dynamodb.describe_table(TableName=table_name)
    with pytest.raises(sqs.exceptions.QueueDoesNotExist):
        sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    assert mapping_id not in local.poller.mappings
    mappings = local.world.client("lambda").list_event_source_mappings()["EventSourceMappings"]
    assert mapping_id not in [mapping["UUID"] for mapping in mappings]
    assert rule_name not in [rule["Name"] for rule in events.list_rules(NamePrefix="aurora-clone-")["Rules"]]
    assert local.world.wait_until(local.settled, SETTLE_WORLD_SECONDS)


# -- the pieces underneath: Lambda runtime and EventBridge ------------------------------------------------------

RECORDING_HANDLER = """
import json, os, time

def handler(event, context):
    print("a line on stdout")  # the worker's protocol must survive this
    os.write(1, b"and raw bytes on fd 1\\n")
    record = {
        "event": event,
        "pid": os.getpid(),
        "function_name": context.function_name,
        "arn": context.invoked_function_arn,
        "remaining_ms": context.get_remaining_time_in_millis(),
        "endpoint": os.environ.get("AWS_ENDPOINT_URL"),
        "leaked": os.environ.get("LEAKED_FROM_PARENT"),
    }
    path = os.path.join(os.environ["RECORD_DIR"], context.aws_request_id + ".json")
    with open(path, "w") as file:
        json.dump(record, file)
    time.sleep(float(event.get("sleep", 0)))
    if event.get("fail"):
        raise ValueError("asked to fail")
    return {"ok": True}
"""


def records(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"), key=os.path.getmtime)]


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def test_local_lambda_runs_a_handler_in_warm_isolated_workers(
    local: Local, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "recording.py").write_text(RECORDING_HANDLER)
    monkeypatch.setenv("LEAKED_FROM_PARENT", "secret")
    logs: list[str] = []
    with LocalLambda(local.world, log_sink=lambda _name, line: logs.append(line)) as lambdas:
        arn = lambdas.register(
            "recording",
            "recording.handler",
            {"RECORD_DIR": str(tmp_path)},
            timeout_seconds=2,
            code_dir=str(tmp_path / "code"),
        )
        answer = lambdas.invoke(arn, {"n": 1})
        lambdas.invoke("recording", {"n": 2})
        with pytest.raises(FunctionError) as failed:
            lambdas.invoke(arn, {"fail": True})
        with pytest.raises(FunctionError) as timed_out:
            lambdas.invoke(arn, {"sleep": 10})
        lambdas.invoke(arn, {"n": 3})
        stats = lambdas.stats["recording"]
        pids = {record["pid"] for record in records(tmp_path)}

    first, second, *_ = records(tmp_path)
    assert (first["event"], second["event"]) == ({"n": 1}, {"n": 2})
    assert first["pid"] == second["pid"]  # warm: one worker served both
    assert first["function_name"] == "recording"
    assert first["arn"] == arn == f"arn:aws:lambda:us-east-1:{local.world.account_id}:function:recording"
    assert 0 < first["remaining_ms"] <= 2000
    assert first["endpoint"] == local.world.endpoint_url
    assert first["leaked"] is None  # only a minimal environment reaches the function
    assert answer == {"ok": True}  # the handler's result, as a synchronous invocation returns it
    assert (failed.value.error_type, failed.value.message) == ("ValueError", "asked to fail")
    assert timed_out.value.error_type == "Sandbox.Timedout"
    assert records(tmp_path)[-1]["pid"] != first["pid"]  # the timed-out worker was replaced
    assert (stats.invocations, stats.errors, stats.timeouts, stats.cold_starts) == (5, 2, 1, 2)
    assert stats.billed_ms >= 2000
    assert "a line on stdout" in logs and "and raw bytes on fd 1" in logs
    assert any(line.startswith("REPORT RequestId: ") and "Billed Duration: " in line for line in logs)
    assert all(process_gone(pid) for pid in pids)  # close() left no worker behind
    assert local.world.client("lambda").get_function(FunctionName="recording")  # registered in the world too


def test_eventbridge_player_delivers_matching_events_and_enabled_schedules(local: Local, tmp_path: Path) -> None:
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "recording.py").write_text(RECORDING_HANDLER)
    events = local.world.client("events")
    with LocalLambda(local.world) as lambdas:
        arn = lambdas.register(
            "listener", "recording.handler", {"RECORD_DIR": str(tmp_path)}, code_dir=str(tmp_path / "code")
        )
        player = EventBridgePlayer(local.world, lambdas)
        events.put_rule(Name="test-pattern", EventPattern=json.dumps({"source": ["test.local"]}))
        events.put_targets(Rule="test-pattern", Targets=[{"Id": "listener", "Arn": arn}])
        events.put_rule(Name="test-schedule", ScheduleExpression="rate(2 minutes)")
        events.put_targets(Rule="test-schedule", Targets=[{"Id": "listener", "Arn": arn, "Input": '{"tick": true}'}])
        events.put_rule(Name="test-disabled", ScheduleExpression="rate(1 minute)", State="DISABLED")
        events.put_targets(Rule="test-disabled", Targets=[{"Id": "listener", "Arn": arn}])
        with player:
            events.put_events(Entries=[{"Source": "other.source", "DetailType": "x", "Detail": "{}"}])
            events.put_events(Entries=[{"Source": "test.local", "DetailType": "Ping", "Detail": '{"n": 1}'}])
            assert local.world.wait_until(
                lambda: player.fires["test-schedule"] >= 2 and player.fires["test-pattern"] >= 1, 900
            )
            for name in ("test-pattern", "test-schedule", "test-disabled"):
                events.remove_targets(Rule=name, Ids=["listener"])
                events.delete_rule(Name=name)
            fired = player.fire_count
            assert local.world.wait_until(lambda: player.fire_count > fired, 300) is False  # deleted rules are silent

    delivered = [record["event"] for record in records(tmp_path)]
    assert {"tick": True} in delivered
    matched = [event for event in delivered if event.get("source") == "test.local"]
    assert len(matched) == 1 and matched[0]["detail"] == {"n": 1}
    assert player.fires["test-disabled"] == 0


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [
        pytest.param("rate(1 minute)", 60, id="minute"),
        pytest.param("rate(5 minutes)", 300, id="minutes"),
        pytest.param("rate(2 hours)", 7200, id="hours"),
        pytest.param("rate(1 day)", 86400, id="day"),
        pytest.param("cron(0 12 * * ? *)", None, id="cron-not-played"),
        pytest.param("rate(0 minutes)", None, id="zero"),
    ],
)
def test_rate_seconds(expression: str, seconds: int | None) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    ("properties", "expected"),
    [
        pytest.param(
            {"Timeout": 3600, "On": True, "Off": False}, {"Timeout": "3600", "On": "true", "Off": "false"}, id="scalars"
        ),
        pytest.param({"Tags": [{"Key": "n", "Value": 2}]}, {"Tags": [{"Key": "n", "Value": "2"}]}, id="nested"),
        pytest.param({"Ratio": 0.5, "Name": "x"}, {"Ratio": "0.5", "Name": "x"}, id="float-and-text"),
    ],
)
def test_cloudformation_strings(properties: dict[str, Any], expected: dict[str, Any]) -> None:
    assert cloudformation_strings(properties) == expected
