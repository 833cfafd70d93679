"""The AWS resource types of the function stack, made with the world's APIs: IAM roles and inline policies,
``AWS::IAM::RolePolicy``, log groups, the function (``AWS::Serverless::Function`` or ``AWS::Lambda::Function``,
registered with ``LocalLambda``, which runs the real handler), ``AWS::Lambda::Permission``,
``AWS::Events::Rule`` (put on the world's default bus with its targets, where the EventBridge player fires it),
``AWS::DynamoDB::Table``, ``AWS::SQS::Queue``, ``AWS::Lambda::EventSourceMapping`` (made in the world's
Lambda and handed to the queue poller, which delivers the queue's messages to the function),
``AWS::Lambda::EventInvokeConfig`` and ``AWS::CloudWatch::Alarm`` (recorded in the world's Lambda and CloudWatch:
the local Lambda sends no failed invocation to a destination, and no alarm changes state). A function's
``ReservedConcurrentExecutions`` is recorded in the world's Lambda; the local runtime keeps its own pool. No SAM
transform runs: the function resource is handled as it is written. They are created and deleted, never updated.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from botocore.exceptions import ClientError

from aurora_clone.aws_errors import error_code
from aurora_clone.local.queue_poller import QueueMapping
from aurora_clone.local.stacks import (
    Lambdas,
    LocalStack,
    ResourceFailedError,
    StackResource,
    World,
    cloudformation_strings,
    generated_name,
)


class Pollers(Protocol):
    """What the local CloudFormation needs of the QueuePoller: Lambda's side of an event source mapping."""

    def register(self, mapping: QueueMapping) -> None: ...

    def unregister(self, mapping_id: str) -> None: ...


class NativeResources:
    """IAM roles and policies, log groups, functions, permissions, event rules, tables, queues and event source
    mappings, made with the world's APIs."""

    UPDATE_UNSUPPORTED = "Updating {type} ({logical_id}) is not supported by the local CloudFormation"

    def __init__(self, world: World, lambdas: Lambdas, code_dir: str | None, poller: Pollers | None = None) -> None:
        self._world = world
        self._lambdas = lambdas
        self._code_dir = code_dir
        self._poller = poller

    def create(self, stack: LocalStack, resource: StackResource, properties: dict[str, Any]) -> tuple[str, Any]:
        creators: dict[str, Callable[[LocalStack, str, dict[str, Any]], tuple[str, dict[str, Any]]]] = {
            "AWS::IAM::Role": self._create_role,
            "AWS::IAM::RolePolicy": self._create_role_policy,
            "AWS::Logs::LogGroup": self._create_log_group,
            "AWS::Serverless::Function": self._create_function,
            "AWS::Lambda::Function": self._create_function,
            "AWS::Lambda::Permission": self._create_permission,
            "AWS::Events::Rule": self._create_rule,
            "AWS::DynamoDB::Table": self._create_table,
            "AWS::SQS::Queue": self._create_queue,
            "AWS::Lambda::EventSourceMapping": self._create_event_source_mapping,
            "AWS::Lambda::EventInvokeConfig": self._create_event_invoke_config,
            "AWS::CloudWatch::Alarm": self._create_alarm,
        }
        return creators[resource.resource_type](stack, resource.logical_id, properties)

    def update(
        self, stack: LocalStack, resource: StackResource, properties: dict[str, Any], old: dict[str, Any]
    ) -> tuple[str, Any]:
        message = self.UPDATE_UNSUPPORTED.format(type=resource.resource_type, logical_id=resource.logical_id)
        raise ResourceFailedError(message, request_sent=False)

    def delete(self, stack: LocalStack, resource: StackResource) -> None:
        kind, properties, physical_id = resource.resource_type, resource.properties, resource.physical_id
        if kind == "AWS::IAM::Role":
            self._delete_role(physical_id)
        elif kind == "AWS::IAM::RolePolicy":
            iam = self._world.client("iam")
            _ignore_missing(lambda: iam.delete_role_policy(RoleName=properties["RoleName"], PolicyName=physical_id))
        elif kind == "AWS::Logs::LogGroup":
            logs = self._world.client("logs")
            _ignore_missing(lambda: logs.delete_log_group(logGroupName=physical_id))
        elif kind in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            if self._lambdas.is_registered(physical_id):
                self._lambdas.unregister(physical_id)
        elif kind == "AWS::Lambda::Permission":
            client = self._world.client("lambda")
            _ignore_missing(
                lambda: client.remove_permission(FunctionName=properties["FunctionName"], StatementId=physical_id)
            )
        elif kind == "AWS::Events::Rule":
            self._delete_rule(physical_id)
        elif kind == "AWS::DynamoDB::Table":
            dynamodb = self._world.client("dynamodb")
            _ignore_missing(lambda: dynamodb.delete_table(TableName=physical_id))
        elif kind == "AWS::SQS::Queue":
            sqs = self._world.client("sqs")
            _ignore_missing(lambda: sqs.delete_queue(QueueUrl=physical_id))
        elif kind == "AWS::Lambda::EventSourceMapping":
            if self._poller is not None:
                self._poller.unregister(physical_id)
            client = self._world.client("lambda")
            _ignore_missing(lambda: client.delete_event_source_mapping(UUID=physical_id))
        elif kind == "AWS::Lambda::EventInvokeConfig":
            client = self._world.client("lambda")
            _ignore_missing(
                lambda: client.delete_function_event_invoke_config(
                    FunctionName=str(properties["FunctionName"]), Qualifier=str(properties["Qualifier"])
                )
            )
        elif kind == "AWS::CloudWatch::Alarm":
            self._world.client("cloudwatch").delete_alarms(AlarmNames=[physical_id])  # no error when gone

    def _create_role(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        iam = self._world.client("iam")
        name = str(properties.get("RoleName") or generated_name(stack.name, logical_id, 64))
        optional = {key: properties[key] for key in ("Path", "Description", "MaxSessionDuration") if key in properties}
        role = iam.create_role(
            RoleName=name, AssumeRolePolicyDocument=json.dumps(properties["AssumeRolePolicyDocument"]), **optional
        )["Role"]
        for policy in properties.get("Policies", []):
            iam.put_role_policy(
                RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(policy["PolicyDocument"])
            )
        for policy_arn in properties.get("ManagedPolicyArns", []):
            iam.attach_role_policy(RoleName=name, PolicyArn=policy_arn)
        return name, {"Arn": role["Arn"], "RoleId": role["RoleId"]}

    def _delete_role(self, name: str) -> None:
        iam = self._world.client("iam")
        try:
            for policy_name in iam.list_role_policies(RoleName=name)["PolicyNames"]:
                iam.delete_role_policy(RoleName=name, PolicyName=policy_name)
            for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]:
                iam.detach_role_policy(RoleName=name, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=name)
        except iam.exceptions.NoSuchEntityException:
            pass  # already gone: a delete must succeed then

    def _create_role_policy(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        self._world.client("iam").put_role_policy(
            RoleName=properties["RoleName"],
            PolicyName=properties["PolicyName"],
            PolicyDocument=json.dumps(properties["PolicyDocument"]),
        )
        return str(properties["PolicyName"]), {}

    def _create_log_group(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        logs = self._world.client("logs")
        name = str(properties.get("LogGroupName") or generated_name(stack.name, logical_id, 512))
        logs.create_log_group(logGroupName=name)
        if "RetentionInDays" in properties:
            logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
        arn = f"arn:aws:logs:{self._world.region}:{self._world.account_id}:log-group:{name}:*"
        return name, {"Arn": arn}

    def _create_function(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        unsupported = sorted(
            set(properties)
            & {
                "Events",
                "AutoPublishAlias",
                "DeploymentPreference",
                "ProvisionedConcurrencyConfig",
                "FunctionUrlConfig",
            }
        )
        if unsupported:
            raise ResourceFailedError(f"{logical_id}: {', '.join(unsupported)} not supported by the local Lambda")
        if "Role" not in properties:
            raise ResourceFailedError(
                f"{logical_id}: the local CloudFormation needs an explicit Role (no SAM Policies)"
            )
        runtime = str(properties.get("Runtime", "python3.13"))
        if not runtime.startswith("python"):
            raise ResourceFailedError(f"{logical_id}: runtime {runtime} cannot run locally (Python only)")
        name = str(properties.get("FunctionName") or generated_name(stack.name, logical_id, 64))
        variables = (properties.get("Environment") or {}).get("Variables") or {}
        arn = self._lambdas.register(
            name,
            str(properties["Handler"]),
            {key: str(cloudformation_strings(value)) for key, value in variables.items()},
            int(properties.get("Timeout", 3)),  # SAM's and Lambda's defaults
            int(properties.get("MemorySize", 128)),
            role_arn=str(properties["Role"]),
            code_dir=self._code_dir,
        )
        if "ReservedConcurrentExecutions" in properties:
            self._world.client("lambda").put_function_concurrency(
                FunctionName=name, ReservedConcurrentExecutions=int(properties["ReservedConcurrentExecutions"])
            )
        return name, {"Arn": arn}

    def _create_permission(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        statement_id = generated_name(stack.name, logical_id, 100)
        optional_keys = ("SourceArn", "SourceAccount", "EventSourceToken", "PrincipalOrgID", "FunctionUrlAuthType")
        optional = {key: str(properties[key]) for key in optional_keys if key in properties}
        self._world.client("lambda").add_permission(
            FunctionName=str(properties["FunctionName"]),
            StatementId=statement_id,
            Action=str(properties["Action"]),
            Principal=str(properties["Principal"]),
            **optional,
        )
        return statement_id, {}

    def _create_rule(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        if properties.get("EventBusName", "default") != "default":
            raise ResourceFailedError(f"{logical_id}: only the default event bus is supported locally")
        events = self._world.client("events")
        name = str(properties.get("Name") or generated_name(stack.name, logical_id, 64))
        optional: dict[str, Any] = {
            key: str(properties[key]) for key in ("ScheduleExpression", "Description", "State") if key in properties
        }
        if "EventPattern" in properties:
            pattern = properties["EventPattern"]
            optional["EventPattern"] = pattern if isinstance(pattern, str) else json.dumps(pattern)
        arn = events.put_rule(Name=name, **optional)["RuleArn"]
        target_keys = ("Id", "Arn", "Input", "InputPath", "RoleArn")
        targets = [
            {key: str(target[key]) for key in target_keys if key in target} for target in properties.get("Targets", [])
        ]
        if targets:
            events.put_targets(Rule=name, Targets=targets)
        return name, {"Arn": arn}

    def _create_table(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        _refuse_unsupported(logical_id, properties, TABLE_PROPERTIES)
        dynamodb = self._world.client("dynamodb")
        name = str(properties.get("TableName") or generated_name(stack.name, logical_id, 255))
        request: dict[str, Any] = {
            "TableName": name,
            "AttributeDefinitions": properties["AttributeDefinitions"],
            "KeySchema": properties["KeySchema"],
            "BillingMode": str(properties.get("BillingMode", "PROVISIONED")),
        }
        for key in ("ProvisionedThroughput", "GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
            if key in properties:
                request[key] = _api_numbers(properties[key])
        if properties.get("Tags"):
            request["Tags"] = [{"Key": str(tag["Key"]), "Value": str(tag["Value"])} for tag in properties["Tags"]]
        if "TableClass" in properties:
            request["TableClass"] = str(properties["TableClass"])
        if "DeletionProtectionEnabled" in properties:
            request["DeletionProtectionEnabled"] = _boolean(properties["DeletionProtectionEnabled"])
        sse = properties.get("SSESpecification")
        if sse:  # CloudFormation's SSEEnabled is the API's Enabled
            request["SSESpecification"] = {
                "Enabled": _boolean(sse.get("SSEEnabled", False)),
                **{key: str(sse[key]) for key in ("SSEType", "KMSMasterKeyId") if key in sse},
            }
        stream = properties.get("StreamSpecification")
        if stream:
            request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": str(stream["StreamViewType"])}
        table = dynamodb.create_table(**request)["TableDescription"]
        recovery = properties.get("PointInTimeRecoverySpecification")
        if recovery:
            dynamodb.update_continuous_backups(
                TableName=name,
                PointInTimeRecoverySpecification={
                    "PointInTimeRecoveryEnabled": _boolean(recovery.get("PointInTimeRecoveryEnabled", False))
                },
            )
        ttl = properties.get("TimeToLiveSpecification")
        if ttl:
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={
                    "AttributeName": str(ttl["AttributeName"]),
                    "Enabled": _boolean(ttl.get("Enabled", False)),
                },
            )
        attributes = {"Arn": table["TableArn"]}
        if "LatestStreamArn" in table:
            attributes["StreamArn"] = table["LatestStreamArn"]
        return name, attributes

    def _create_queue(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        _refuse_unsupported(logical_id, properties, {"QueueName", "Tags", *QUEUE_ATTRIBUTES})
        sqs = self._world.client("sqs")
        fifo = _boolean(properties.get("FifoQueue", False))
        name = properties.get("QueueName")
        if not name:  # a FIFO queue's name must end in .fifo, generated or not
            name = generated_name(stack.name, logical_id, 75 if fifo else 80) + (".fifo" if fifo else "")
        attributes: dict[str, str] = {}
        for key in QUEUE_ATTRIBUTES:
            if key not in properties:
                continue
            value = properties[key]
            if isinstance(value, dict | list):
                attributes[key] = json.dumps(value)
            elif isinstance(value, bool):
                attributes[key] = "true" if value else "false"
            else:
                attributes[key] = str(value)
        request: dict[str, Any] = {"QueueName": str(name), "Attributes": attributes}
        if properties.get("Tags"):
            request["tags"] = {str(tag["Key"]): str(tag["Value"]) for tag in properties["Tags"]}
        url = str(sqs.create_queue(**request)["QueueUrl"])
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        return url, {"Arn": arn, "QueueName": str(name), "QueueUrl": url}

    def _create_event_source_mapping(
        self, stack: LocalStack, logical_id: str, properties: dict[str, Any]
    ) -> tuple[str, Any]:
        _refuse_unsupported(logical_id, properties, EVENT_SOURCE_MAPPING_PROPERTIES)
        if self._poller is None:
            raise ResourceFailedError(f"{logical_id}: event source mappings need a queue poller in this world")
        source_arn = str(properties["EventSourceArn"])
        if source_arn.split(":")[2:3] != ["sqs"]:
            raise ResourceFailedError(f"{logical_id}: only SQS event sources are delivered locally, not {source_arn}")
        function = str(properties["FunctionName"])
        if not self._lambdas.is_registered(function):
            raise ResourceFailedError(f"{logical_id}: function {function} is not a function of the local Lambda")
        request: dict[str, Any] = {
            "EventSourceArn": source_arn,
            "FunctionName": function,
            "Enabled": _boolean(properties.get("Enabled", True)),
        }
        if "BatchSize" in properties:
            request["BatchSize"] = int(properties["BatchSize"])
        if "MaximumBatchingWindowInSeconds" in properties:
            request["MaximumBatchingWindowInSeconds"] = int(properties["MaximumBatchingWindowInSeconds"])
        if "FunctionResponseTypes" in properties:
            request["FunctionResponseTypes"] = [str(kind) for kind in properties["FunctionResponseTypes"]]
        if "ScalingConfig" in properties:
            request["ScalingConfig"] = _api_numbers(properties["ScalingConfig"])
        client = self._world.client("lambda")
        created = client.create_event_source_mapping(**request)
        queue_name = source_arn.rsplit(":", 1)[-1]
        queue_url = self._world.client("sqs").get_queue_url(QueueName=queue_name)["QueueUrl"]
        maximum = (request.get("ScalingConfig") or {}).get("MaximumConcurrency")
        self._poller.register(
            QueueMapping(
                mapping_id=str(created["UUID"]),
                queue_url=str(queue_url),
                queue_arn=source_arn,
                function_arn=str(created["FunctionArn"]),
                batch_size=int(created["BatchSize"]),
                report_batch_item_failures="ReportBatchItemFailures" in request.get("FunctionResponseTypes", []),
                enabled=bool(request["Enabled"]),
                maximum_concurrency=int(maximum) if maximum is not None else None,
            )
        )
        return str(created["UUID"]), {"EventSourceMappingArn": created.get("EventSourceMappingArn", "")}

    def _create_event_invoke_config(
        self, stack: LocalStack, logical_id: str, properties: dict[str, Any]
    ) -> tuple[str, Any]:
        _refuse_unsupported(logical_id, properties, EVENT_INVOKE_CONFIG_PROPERTIES)
        function, qualifier = str(properties["FunctionName"]), str(properties["Qualifier"])
        if not self._lambdas.is_registered(function):
            raise ResourceFailedError(f"{logical_id}: function {function} is not a function of the local Lambda")
        request: dict[str, Any] = {"FunctionName": function, "Qualifier": qualifier}
        for key in ("MaximumRetryAttempts", "MaximumEventAgeInSeconds"):
            if key in properties:
                request[key] = int(properties[key])
        if "DestinationConfig" in properties:
            request["DestinationConfig"] = {
                kind: {"Destination": str(target["Destination"])}
                for kind, target in properties["DestinationConfig"].items()
            }
        self._world.client("lambda").put_function_event_invoke_config(**request)
        return f"{function}:{qualifier}", {}

    def _create_alarm(self, stack: LocalStack, logical_id: str, properties: dict[str, Any]) -> tuple[str, Any]:
        _refuse_unsupported(logical_id, properties, ALARM_PROPERTIES)
        name = str(properties.get("AlarmName") or generated_name(stack.name, logical_id, 255))
        request: dict[str, Any] = {"AlarmName": name}
        for key in ("AlarmDescription", "Namespace", "MetricName", "Statistic", "ComparisonOperator", "Unit"):
            if key in properties:
                request[key] = str(properties[key])
        if "TreatMissingData" in properties:
            request["TreatMissingData"] = str(properties["TreatMissingData"])
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in properties:
                request[key] = int(properties[key])
        if "Threshold" in properties:
            request["Threshold"] = float(properties["Threshold"])
        if "ActionsEnabled" in properties:
            request["ActionsEnabled"] = _boolean(properties["ActionsEnabled"])
        for key in ("AlarmActions", "OKActions", "InsufficientDataActions"):
            if key in properties:
                request[key] = [str(action) for action in properties[key]]
        if "Dimensions" in properties:
            request["Dimensions"] = [
                {"Name": str(dimension["Name"]), "Value": str(dimension["Value"])}
                for dimension in properties["Dimensions"]
            ]
        self._world.client("cloudwatch").put_metric_alarm(**request)
        arn = f"arn:aws:cloudwatch:{self._world.region}:{self._world.account_id}:alarm:{name}"
        return name, {"Arn": arn}

    def _delete_rule(self, name: str) -> None:
        events = self._world.client("events")
        try:
            ids = [target["Id"] for target in events.list_targets_by_rule(Rule=name)["Targets"]]
            if ids:
                events.remove_targets(Rule=name, Ids=ids)
            events.delete_rule(Name=name)
        except events.exceptions.ResourceNotFoundException:
            pass  # already gone: a delete must succeed then


NATIVE_TYPES = frozenset(
    {
        "AWS::IAM::Role",
        "AWS::IAM::RolePolicy",
        "AWS::Logs::LogGroup",
        "AWS::Serverless::Function",
        "AWS::Lambda::Function",
        "AWS::Lambda::Permission",
        "AWS::Events::Rule",
        "AWS::DynamoDB::Table",
        "AWS::SQS::Queue",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::CloudWatch::Alarm",
    }
)
TABLE_PROPERTIES = frozenset(
    {
        "TableName",
        "AttributeDefinitions",
        "KeySchema",
        "BillingMode",
        "ProvisionedThroughput",
        "GlobalSecondaryIndexes",
        "LocalSecondaryIndexes",
        "SSESpecification",
        "StreamSpecification",
        "TimeToLiveSpecification",
        "Tags",
        "TableClass",
        "DeletionProtectionEnabled",
        "PointInTimeRecoverySpecification",
    }
)
# AWS::SQS::Queue properties that are CreateQueue attributes of the same name (policies as JSON text).
QUEUE_ATTRIBUTES = (
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "DelaySeconds",
    "FifoQueue",
    "FifoThroughputLimit",
    "KmsDataKeyReusePeriodSeconds",
    "KmsMasterKeyId",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "RedriveAllowPolicy",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "VisibilityTimeout",
)
EVENT_SOURCE_MAPPING_PROPERTIES = frozenset(
    {
        "EventSourceArn",
        "FunctionName",
        "BatchSize",
        "Enabled",
        "FunctionResponseTypes",
        "MaximumBatchingWindowInSeconds",
        "ScalingConfig",
    }
)
EVENT_INVOKE_CONFIG_PROPERTIES = frozenset(
    {"FunctionName", "Qualifier", "MaximumRetryAttempts", "MaximumEventAgeInSeconds", "DestinationConfig"}
)
# AWS::CloudWatch::Alarm on one metric (no Metrics math, no ExtendedStatistic).
ALARM_PROPERTIES = frozenset(
    {
        "AlarmName",
        "AlarmDescription",
        "Namespace",
        "MetricName",
        "Dimensions",
        "Statistic",
        "Unit",
        "Period",
        "EvaluationPeriods",
        "DatapointsToAlarm",
        "Threshold",
        "ComparisonOperator",
        "TreatMissingData",
        "ActionsEnabled",
        "AlarmActions",
        "OKActions",
        "InsufficientDataActions",
    }
)


def _refuse_unsupported(logical_id: str, properties: Mapping[str, Any], supported: frozenset[str] | set[str]) -> None:
    unsupported = sorted(set(properties) - set(supported))
    if unsupported:
        raise ResourceFailedError(f"{logical_id}: {', '.join(unsupported)} not supported by the local CloudFormation")


def _boolean(value: Any) -> bool:
    """A template's boolean, written as true/false or as the strings CloudFormation accepts for it."""
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _api_numbers(value: Any) -> Any:
    """Template values for an API call: strings of digits that the API takes as numbers become numbers."""
    if isinstance(value, dict):
        return {key: _api_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_api_numbers(item) for item in value]
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return value


_MISSING_CODES = frozenset(
    {
        "NoSuchEntity",
        "ResourceNotFoundException",
        "ResourceNotFound",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }
)


def _ignore_missing(call: Callable[[], Any]) -> None:
    """Run a delete call; a resource that is already gone counts as deleted."""
    try:
        call()
    except ClientError as error:
        if error_code(error) not in _MISSING_CODES:
            raise
