"""``LocalCloudFormation``: stacks deployed into the embedded AWS world, custom resources driven like CloudFormation.

Two kinds of stack:

- ``deploy_function_stack`` deploys the SAM function stack as far as it matters locally: IAM roles and
  inline policies, ``AWS::IAM::RolePolicy``, log groups, the function (``AWS::Serverless::Function`` or
  ``AWS::Lambda::Function``, registered with ``LocalLambda``, which runs the real handler),
  ``AWS::Lambda::Permission``, ``AWS::Events::Rule`` (put on the world's default bus with its targets,
  where the EventBridge player fires it), ``AWS::DynamoDB::Table``, ``AWS::SQS::Queue`` and
  ``AWS::Lambda::EventSourceMapping`` (made in the world's Lambda and handed to the queue poller, which
  delivers the queue's messages to the function); outputs and their exports are recorded. No SAM transform
  runs: the function resource is handled as it is written.
- ``create_stack`` / ``update_stack`` / ``delete_stack`` run stacks of custom resources (``Custom::*``,
  ``AWS::CloudFormation::CustomResource``) the way CloudFormation does: each request is an event sent by
  invoking the ServiceToken's function asynchronously, with a pre-signed S3 PUT URL (SigV4, served over
  HTTPS by the world's S3) as ResponseURL; the answer is read back from S3, waiting at most the
  resource's ServiceTimeout in world time. Independent resources run concurrently.

Every operation runs in the background, as CloudFormation's API calls do: ``start_create_stack``,
``start_update_stack``, ``start_delete_stack`` and ``execute_change_set`` check what CloudFormation checks
before it answers (raising ``StackError`` or ``TemplateError``; ``NoChangesError`` for an update that
changes nothing), put the stack in its ``*_IN_PROGRESS`` status and return a ``StackOperation``, whose
``events()`` yields the stack's events as they happen and whose ``wait()`` returns the stack once the
operation has ended. ``create_stack``, ``update_stack``, ``delete_stack`` and ``deploy_function_stack`` are
those operations, waited for. Change sets (``create_change_set``) follow CloudFormation: a CREATE change set
makes the stack exist in ``REVIEW_IN_PROGRESS``; one that changes nothing ends ``FAILED``. A deleted stack
stays visible by its stack id (``DELETE_COMPLETE``), as on AWS. ``aurora_clone.local.cloudformation_api``
serves all this as the CloudFormation API at the world's endpoint.

Lifecycles follow CloudFormation: a failed create rolls back (Delete for every resource created or
attempted, with the PhysicalResourceId of its answer); an update replaces a resource whose answer carries a
new PhysicalResourceId and deletes the old one in the cleanup phase; a failed update rolls back (a swapped
Update to each resource updated in place or whose update failed, replacements and new resources deleted);
``DeletionPolicy: Retain`` and ``UpdateReplacePolicy: Retain`` are honoured. Stack events go to ``printer``
as they happen::

    12:00:01  my-stack  TestDatabase  Custom::AuroraClone  CREATE_IN_PROGRESS

Where CloudFormation's exact behaviour is unknown, choices are stated next to the code.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import json
import re
import secrets
import string
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, Protocol
from urllib.parse import quote

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from moto.backends import get_backend

from aurora_clone import clock as process_clock
from aurora_clone.local.queue_poller import QueueMapping
from aurora_clone.local.template import (
    AttributeNotFoundError,
    Output,
    ParameterValue,
    StackContext,
    TemplateError,
    active_resources,
    check_outputs,
    creation_order,
    dependencies,
    evaluate_conditions,
    import_names,
    parse_template,
    read_template,
    resolve,
    resolve_outputs,
    resolve_parameters,
)

STACK_TYPE = "AWS::CloudFormation::Stack"
CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"
SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
MAX_RESPONSE_BYTES = 4096  # CloudFormation's limit for a custom resource's answer
MAX_PHYSICAL_ID = 1024
DEFAULT_SERVICE_TIMEOUT = 3600
RESPONSE_URL_EXPIRES = 7200
_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})
_CHANGE_SET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# CloudFormation's reason for a change set that changes nothing, which `aws cloudformation deploy` looks for.
EMPTY_CHANGE_SET = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)
# Where a stack ends when its operation fails unexpectedly, by the status it had reached.
_FAILED_STATUS = {
    "CREATE_IN_PROGRESS": "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
    "DELETE_IN_PROGRESS": "DELETE_FAILED",
    "UPDATE_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
}


class World(Protocol):
    """What the local CloudFormation needs of LocalAws."""

    region: str
    account_id: str
    endpoint_url: str
    ca_bundle: str

    def client_env(self) -> dict[str, str]: ...

    def client(self, service: str) -> Any: ...

    def world_time(self) -> float: ...

    def to_real(self, world_seconds: float) -> float: ...


class Lambdas(Protocol):
    """What the local CloudFormation needs of LocalLambda."""

    def register(
        self,
        function_name: str,
        handler: str = ...,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = ...,
        memory_mb: int = ...,
        *,
        role_arn: str | None = None,
        code_dir: str | None = None,
    ) -> str: ...

    def unregister(self, function_name_or_arn: str) -> None: ...

    def is_registered(self, function_name_or_arn: str) -> bool: ...

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Future[None]: ...


class Pollers(Protocol):
    """What the local CloudFormation needs of the QueuePoller: Lambda's side of an event source mapping."""

    def register(self, mapping: QueueMapping) -> None: ...

    def unregister(self, mapping_id: str) -> None: ...


class StackError(Exception):
    """The operation was refused before it started (CloudFormation's ValidationError)."""


class StackNotFoundError(StackError):
    """No stack of that name, or of that stack id."""


class NoChangesError(StackError):
    """An update that would change nothing: the template, parameters and tags are the stack's own."""


class AlreadyExistsError(StackError):
    """A stack, or a stack's change set, of that name exists already (CloudFormation's AlreadyExistsException)."""


class ChangeSetNotFoundError(StackError):
    """No such change set (CloudFormation's ChangeSetNotFound)."""


class ChangeSetStatusError(StackError):
    """The change set cannot be executed or deleted in its status (CloudFormation's InvalidChangeSetStatus)."""


class ResourceFailedError(Exception):
    """A resource operation failed; ``physical_id`` is the id its answer carried, if any."""

    def __init__(self, reason: str, physical_id: str = "", *, request_sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.physical_id = physical_id
        self.request_sent = request_sent


@dataclass(frozen=True)
class StackEvent:
    """One line of a stack's event history."""

    timestamp: datetime.datetime
    stack_name: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str = ""
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def line(self) -> str:
        text = f"{self.timestamp:%H:%M:%S}  {self.stack_name}  {self.logical_id}  {self.resource_type}  {self.status}"
        return f"{text}  {self.reason}" if self.reason else text


@dataclass
class StackResource:
    """A resource as the stack knows it: ids, status, the properties last applied, its attributes."""

    logical_id: str
    resource_type: str
    physical_id: str = ""
    status: str = ""
    status_reason: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    answer_object: str = ""  # the S3 key of the answer whose Data are the attributes (custom resources)
    updated_at: datetime.datetime | None = None  # the time of its last status


@dataclass
class LocalStack:
    """A stack: its status, resolved outputs, resources and events."""

    name: str
    stack_id: str
    status: str
    created_at: datetime.datetime
    status_reason: str = ""
    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    output_details: dict[str, Output] = field(default_factory=dict)  # with descriptions and export names
    exports: dict[str, str] = field(default_factory=dict)  # export name -> value
    resources: dict[str, StackResource] = field(default_factory=dict)
    events: list[StackEvent] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict, repr=False)
    conditions: dict[str, bool] = field(default_factory=dict, repr=False)
    imports: set[str] = field(default_factory=set, repr=False)
    function_stack: bool = False
    template_body: str = field(default="", repr=False)  # the template as it was given, for GetTemplate
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    updated_at: datetime.datetime | None = None
    deleted_at: datetime.datetime | None = None
    change_set_id: str = ""  # the change set that last ran on it


@dataclass(frozen=True)
class ResourceChange:
    """One line of a change set: what would happen to a resource."""

    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    physical_id: str = ""
    replacement: str = ""  # for Modify: True, False or Conditional


@dataclass
class ChangeSet:
    """A change set: what a CREATE or UPDATE would do, kept to be executed (or deleted)."""

    name: str
    change_set_id: str
    change_set_type: str  # CREATE or UPDATE
    stack_id: str
    stack_name: str
    created_at: datetime.datetime
    template_body: str = field(repr=False)
    given: dict[str, str] = field(default_factory=dict)  # the parameter values given
    use_previous: frozenset[str] | None = None  # parameters to keep (None: every one not given)
    parameters: dict[str, ParameterValue] = field(default_factory=dict)  # the values it would apply
    tags: dict[str, str] | None = None
    capabilities: list[str] = field(default_factory=list)
    description: str = ""
    status: str = "CREATE_COMPLETE"  # or FAILED
    status_reason: str = ""
    changes: list[ResourceChange] = field(default_factory=list)
    execution: StackOperation | None = None

    @property
    def execution_status(self) -> str:
        if self.execution is None:
            return "AVAILABLE" if self.status == "CREATE_COMPLETE" else "UNAVAILABLE"
        final = self.execution.final_status
        if final is None:
            return "EXECUTE_IN_PROGRESS"
        return "EXECUTE_COMPLETE" if final in ("CREATE_COMPLETE", "UPDATE_COMPLETE") else "EXECUTE_FAILED"


class StackOperation:
    """A create, update or delete running in the background, as CloudFormation runs them.

    ``events()`` yields the stack's events from the operation's first one, as they happen, and ends with its
    last; ``wait()`` returns the stack once the operation has ended (``final_status`` is then its status).
    """

    def __init__(self, stack: LocalStack, changed: threading.Condition) -> None:
        self.stack = stack
        self.final_status: str | None = None
        self._changed = changed
        self._first = len(stack.events)  # the caller holds the lock and records the first event next
        self._end: int | None = None
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> LocalStack:
        """The stack once the operation has ended; TimeoutError after ``timeout`` real seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"stack {self.stack.name} is still {self.stack.status}")
        return self.stack

    def events(self) -> Iterator[StackEvent]:
        position = self._first
        while True:
            with self._changed:
                while self._end is None and len(self.stack.events) <= position:
                    self._changed.wait()
                finished = self._end is not None
                new = self.stack.events[position : self._end]
            position += len(new)
            yield from new
            if finished:
                return

    def finish(self) -> None:
        """Mark the operation ended (its last event recorded); called once, by the thread that ran it."""
        with self._changed:
            self._end = len(self.stack.events)
            self.final_status = self.stack.status
            self._changed.notify_all()
        self._done.set()


@dataclass(frozen=True)
class _Plan:
    """A template checked against a stack: parameters, conditions, active resources and their order."""

    template: dict[str, Any]
    parameters: dict[str, ParameterValue]
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]
    needs: dict[str, set[str]]
    order: list[str]
    imports: set[str]


class _Provider(Protocol):
    """Creates, updates and deletes resources of some types; failures raise ResourceFailedError."""

    def create(self, stack: LocalStack, resource: StackResource, properties: dict[str, Any]) -> tuple[str, Any]: ...

    def update(
        self, stack: LocalStack, resource: StackResource, properties: dict[str, Any], old: dict[str, Any]
    ) -> tuple[str, Any]: ...

    def delete(self, stack: LocalStack, resource: StackResource) -> None: ...


def is_custom_type(resource_type: str) -> bool:
    return resource_type == CUSTOM_RESOURCE_TYPE or resource_type.startswith("Custom::")


def cloudformation_strings(value: Any) -> Any:
    """Property values as a custom resource receives them: every scalar a string, lists and maps kept."""
    if isinstance(value, dict):
        return {key: cloudformation_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cloudformation_strings(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def generated_name(stack_name: str, logical_id: str, max_length: int) -> str:
    """A name like CloudFormation generates: ``<stack>-<logical id>-<12 random>``, cut to ``max_length``."""
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    base = f"{stack_name}-{logical_id}"[: max_length - len(suffix) - 1]
    return f"{base}-{suffix}"


# -- the custom resource protocol -----------------------------------------------------------------------


class _CustomResources:
    """Custom resources: requests through the ServiceToken's function, answers through S3."""

    def __init__(self, cloudformation: LocalCloudFormation) -> None:
        self._cfn = cloudformation

    def create(self, stack: LocalStack, resource: StackResource, properties: dict[str, Any]) -> tuple[str, Any]:
        return self._cfn._custom_request(stack, "Create", resource, properties)

    def update(
        self, stack: LocalStack, resource: StackResource, properties: dict[str, Any], old: dict[str, Any]
    ) -> tuple[str, Any]:
        if properties.get("ServiceToken") != old.get("ServiceToken"):
            raise ResourceFailedError("Modifying service token is not allowed.", request_sent=False)
        return self._cfn._custom_request(stack, "Update", resource, properties, old)

    def delete(self, stack: LocalStack, resource: StackResource) -> None:
        self._cfn._custom_request(stack, "Delete", resource, resource.properties)


# -- the function stack's resource types ----------------------------------------------------------------


class _NativeResources:
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
        code = error.response.get("Error", {}).get("Code", "")
        if code not in _MISSING_CODES:
            raise


# -- the engine -----------------------------------------------------------------------------------------


class LocalCloudFormation:
    """Stacks in the embedded world; operations run in the background (``start_*``) or are waited for."""

    def __init__(
        self,
        world: World,
        lambdas: Lambdas,
        printer: Callable[[str], None] = print,
        *,
        poller: Pollers | None = None,
    ) -> None:
        self._world = world
        self._lambdas = lambdas
        self._poller = poller
        self._printer = printer
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified at every event recorded
        self._stacks: dict[str, LocalStack] = {}
        self._deleted: dict[str, LocalStack] = {}  # by stack id: DescribeStacks and ListStacks still show them
        self._operations: dict[str, StackOperation] = {}  # the last operation of each stack, by stack id
        self._change_sets: dict[str, ChangeSet] = {}  # by change set id
        self._providers: dict[str, dict[str, _Provider]] = {}
        self._custom = _CustomResources(self)
        self._bucket = f"cloudformation-custom-resource-response-{world.region.replace('-', '')}"
        self._bucket_ready = False
        env = world.client_env()
        self._s3 = boto3.client(
            "s3",
            region_name=world.region,
            endpoint_url=world.endpoint_url,
            verify=world.ca_bundle,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            # SigV4 and path-style, as CloudFormation's ResponseURLs are; a bucket subdomain of localhost
            # would not resolve.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    # -- queries ----------------------------------------------------------------------------------------

    @property
    def stacks(self) -> dict[str, LocalStack]:
        """The stacks that exist (a deleted stack is gone), by name."""
        with self._lock:
            return dict(self._stacks)

    @property
    def exports(self) -> dict[str, str]:
        """Every export of every stack: name -> value."""
        with self._lock:
            return {name: value for stack in self._stacks.values() for name, value in stack.exports.items()}

    def stack(self, name_or_id: str) -> LocalStack:
        """A stack that exists, by name or stack id; a deleted one by its stack id only, as CloudFormation
        finds them."""
        with self._lock:
            found = self._stacks.get(name_or_id)
            if found is None:
                live = (stack for stack in self._stacks.values() if stack.stack_id == name_or_id)
                found = next(live, None) or self._deleted.get(name_or_id)
            if found is None:
                raise StackNotFoundError(f"Stack with id {name_or_id} does not exist")
            return found

    def view(self, name_or_id: str) -> LocalStack:
        """A copy of the stack as it is now, which operations running in the background leave alone."""
        with self._lock:
            return copy.deepcopy(self.stack(name_or_id))

    def every_stack(self) -> list[LocalStack]:
        """Copies of every stack, the deleted ones included (as ListStacks shows them), oldest first."""
        with self._lock:
            stacks = [*self._deleted.values(), *self._stacks.values()]
            return [copy.deepcopy(stack) for stack in sorted(stacks, key=lambda stack: stack.created_at)]

    def change_set(self, name_or_id: str, stack_name: str | None = None) -> ChangeSet:
        """A change set by its id, or by its name and its stack's name or id."""
        with self._lock:
            found = self._change_sets.get(name_or_id)
            if found is None and stack_name is None and not name_or_id.startswith("arn:"):
                raise StackError("StackName must be specified if ChangeSetName is not specified as an ARN.")
            if found is None and stack_name is not None:
                stack_id = self.stack(stack_name).stack_id
                named = (c for c in self._change_sets.values() if c.stack_id == stack_id and c.name == name_or_id)
                found = next(named, None)
            if found is None:
                raise ChangeSetNotFoundError(f"ChangeSet [{name_or_id}] does not exist")
            return found

    def change_sets(self, stack_name: str) -> list[ChangeSet]:
        """The change sets of a stack, oldest first."""
        with self._lock:
            stack_id = self.stack(stack_name).stack_id
            return [change_set for change_set in self._change_sets.values() if change_set.stack_id == stack_id]

    # -- operations ---------------------------------------------------------------------------------------

    def deploy_function_stack(
        self,
        template_path: str,
        stack_name: str,
        parameters: Mapping[str, str] | None = None,
        code_dir: str | None = None,
    ) -> LocalStack:
        """Create the SAM function stack: roles, policies, log group, the function (run by LocalLambda)."""
        providers: dict[str, _Provider] = dict.fromkeys(
            NATIVE_TYPES, _NativeResources(self._world, self._lambdas, code_dir, self._poller)
        )
        body = read_template(template_path)
        return self._start_create(stack_name, body, template_path, parameters, providers, function_stack=True).wait()

    def create_stack(self, name: str, template_path: str, parameters: Mapping[str, str] | None = None) -> LocalStack:
        """Create a stack of custom resources; it ends CREATE_COMPLETE or, after a rollback, ROLLBACK_COMPLETE."""
        return self.start_create_stack(name, read_template(template_path), parameters, source=template_path).wait()

    def update_stack(self, name: str, template_path: str, parameters: Mapping[str, str] | None = None) -> LocalStack:
        """Update a stack; parameters not given keep their previous value (new ones take their Default)."""
        return self.start_update_stack(name, read_template(template_path), parameters, source=template_path).wait()

    def delete_stack(self, name: str) -> LocalStack:
        """Delete a stack: resources in reverse dependency order; DELETE_COMPLETE or DELETE_FAILED."""
        return self.start_delete_stack(name).wait()

    def start_create_stack(
        self,
        name: str,
        template_body: str,
        parameters: Mapping[str, str] | None = None,
        *,
        source: str = "template",
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
    ) -> StackOperation:
        """Start creating a stack of custom resources (``source`` names the template in error messages)."""
        return self._start_create(
            name, template_body, source, parameters, {}, function_stack=False, tags=tags, capabilities=capabilities
        )

    def start_update_stack(
        self,
        name: str,
        template_body: str | None,
        parameters: Mapping[str, str] | None = None,
        *,
        use_previous: Collection[str] | None = None,
        source: str = "template",
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] | None = None,
    ) -> StackOperation:
        """Start updating a stack. ``template_body`` None keeps its template. Parameters not given keep their
        previous value; with ``use_previous``, only those named there do and the others take their Default, as
        UpdateStack does. ``tags`` None keeps the stack's tags. NoChangesError when nothing would change."""
        with self._lock:
            stack = self.stack(name)
            plan, body = self._update_plan(stack, template_body, parameters, use_previous, source)
            if self._unchanged(stack, plan, tags):
                raise NoChangesError("No updates are to be performed.")
            return self._begin_update(stack, plan, body, tags, capabilities)

    def start_delete_stack(self, name: str) -> StackOperation:
        """Start deleting a stack; a stack already being deleted, or deleted, gives the operation that did it."""
        with self._lock:
            stack = self.stack(name)
            running = self._operations.get(stack.stack_id)
            if running is not None and stack.status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
                return running
            if stack.status.endswith("_IN_PROGRESS") and stack.status != "REVIEW_IN_PROGRESS":
                raise StackError(f"Stack [{stack.stack_id}] cannot be deleted while in status {stack.status}")
            return self._launch(stack, "DELETE_IN_PROGRESS", lambda: self._run_delete(stack))

    # -- change sets ----------------------------------------------------------------------------------------

    def create_change_set(
        self,
        stack_name: str,
        change_set_name: str,
        change_set_type: str,
        template_body: str | None,
        parameters: Mapping[str, str] | None = None,
        *,
        use_previous: Collection[str] | None = None,
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
        description: str = "",
    ) -> ChangeSet:
        """A change set, complete at once (or FAILED when it changes nothing). CREATE makes the stack exist in
        REVIEW_IN_PROGRESS; UPDATE takes parameters as ``start_update_stack`` does."""
        if change_set_type not in ("CREATE", "UPDATE"):
            raise StackError(f"ChangeSetType {change_set_type} is not supported by the local CloudFormation")
        if _CHANGE_SET_NAME.fullmatch(change_set_name) is None:
            raise StackError(
                f"ChangeSet name '{change_set_name}' must start with a letter and hold only letters, digits and "
                "hyphens, at most 128"
            )
        if change_set_type == "CREATE" and template_body is None:
            raise StackError("UsePreviousTemplate cannot be used for a change set of type CREATE")
        with self._lock:
            existing = self._stacks.get(stack_name)
            makes_stack = change_set_type == "CREATE" and existing is None
            if change_set_type == "CREATE":
                if existing is not None and existing.status != "REVIEW_IN_PROGRESS":
                    raise StackError(
                        f"Stack [{stack_name}] already exists and cannot be created again with the changeSet "
                        f"[{change_set_name}]."
                    )
                stack = existing or self._new_stack(stack_name, function_stack=False)
                body = str(template_body)
                plan = self._plan(stack, self._parse(body, "template", function_stack=False), parameters, None, {})
            else:
                try:
                    stack = self.stack(stack_name)
                except StackNotFoundError:
                    raise StackError(f"Stack [{stack_name}] does not exist") from None
                plan, body = self._update_plan(stack, template_body, parameters, use_previous, "template")
            if not makes_stack and any(other.name == change_set_name for other in self.change_sets(stack.stack_id)):
                raise AlreadyExistsError(f"ChangeSet [{change_set_name}] already exists")
            if makes_stack:
                self._register(stack, {})
                self._stack_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
            change_set = ChangeSet(
                change_set_name,
                f"arn:aws:cloudformation:{self._world.region}:{self._world.account_id}:changeSet/"
                f"{change_set_name}/{uuid.uuid4()}",
                change_set_type,
                stack.stack_id,
                stack.name,
                self._now(),
                body,
                dict(parameters or {}),
                frozenset(use_previous) if use_previous is not None else None,
                dict(plan.parameters),
                dict(tags) if tags is not None else None,
                list(capabilities),
                description,
            )
            if change_set_type == "UPDATE" and self._unchanged(stack, plan, tags):
                change_set.status, change_set.status_reason = "FAILED", EMPTY_CHANGE_SET
            else:
                change_set.changes = self._changes(stack, plan)
            self._change_sets[change_set.change_set_id] = change_set
            return change_set

    def execute_change_set(self, name_or_id: str, stack_name: str | None = None) -> StackOperation:
        """Start what the change set says; the stack's other change sets go, as they no longer apply."""
        with self._lock:
            change_set = self.change_set(name_or_id, stack_name)
            if change_set.execution_status != "AVAILABLE":
                raise ChangeSetStatusError(
                    f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of "
                    f"[{change_set.execution_status}]"
                )
            stack = self.stack(change_set.stack_id)
            if change_set.change_set_type == "CREATE":
                template = self._parse(change_set.template_body, "template", function_stack=False)
                plan = self._plan(stack, template, change_set.given, None, {})
                operation = self._begin_create(
                    stack, plan, change_set.template_body, change_set.tags, change_set.capabilities
                )
            else:
                plan, body = self._update_plan(
                    stack, change_set.template_body, change_set.given, change_set.use_previous, "template"
                )
                operation = self._begin_update(stack, plan, body, change_set.tags, change_set.capabilities)
            change_set.execution = operation
            stack.change_set_id = change_set.change_set_id
            for other in [other for other in self._change_sets.values() if other.stack_id == stack.stack_id]:
                if other is not change_set:
                    self._change_sets.pop(other.change_set_id)
            return operation

    def delete_change_set(self, name_or_id: str, stack_name: str | None = None) -> None:
        with self._lock:
            change_set = self.change_set(name_or_id, stack_name)
            if change_set.execution_status == "EXECUTE_IN_PROGRESS":
                raise ChangeSetStatusError(
                    f"ChangeSet [{change_set.change_set_id}] cannot be deleted while in status EXECUTE_IN_PROGRESS"
                )
            self._change_sets.pop(change_set.change_set_id)

    def _changes(self, stack: LocalStack, plan: _Plan) -> list[ResourceChange]:
        """What applying ``plan`` would do to the stack's resources. A custom resource's Modify may replace it
        (its function decides, by the PhysicalResourceId it answers): Replacement is Conditional."""
        changes: list[ResourceChange] = []
        context = replace(
            self._context(stack),
            parameters=dict(plan.parameters),
            conditions=dict(plan.conditions),
            mappings=plan.template.get("Mappings") or {},
        )
        for logical_id in plan.order:
            definition = plan.resources[logical_id]
            resource = stack.resources.get(logical_id)
            if resource is None:
                changes.append(ResourceChange("Add", logical_id, definition["Type"]))
                continue
            try:
                same = resolve(definition.get("Properties") or {}, context) == resource.properties
            except TemplateError:  # it reads an attribute that another change sets: it may change
                same = False
            if not same:
                replacement = "Conditional" if is_custom_type(resource.resource_type) else "Unknown"
                changes.append(
                    ResourceChange("Modify", logical_id, resource.resource_type, resource.physical_id, replacement)
                )
        for logical_id, resource in stack.resources.items():
            if logical_id not in plan.resources:
                changes.append(ResourceChange("Remove", logical_id, resource.resource_type, resource.physical_id))
        return changes

    # -- starting an operation ------------------------------------------------------------------------------

    def _parse(self, body: str, source: str, *, function_stack: bool) -> dict[str, Any]:
        """The template, with the transforms a stack may use: the SAM transform in the function stack only."""
        template = parse_template(body, source)
        transforms = template.get("Transform") or []
        if transforms and not function_stack:
            raise TemplateError("Transforms are only supported in the function stack (deploy_function_stack)")
        for transform in [transforms] if isinstance(transforms, str) else transforms:
            if transform != SERVERLESS_TRANSFORM:
                raise TemplateError(f"Transform {transform} is not supported by the local CloudFormation")
        if "Globals" in template:
            raise TemplateError("SAM Globals are not supported by the local CloudFormation; set each property")
        return template

    def _new_stack(self, name: str, *, function_stack: bool) -> LocalStack:
        if _STACK_NAME.fullmatch(name) is None:
            raise StackError(f"Stack name '{name}' must start with a letter and hold only letters, digits and hyphens")
        stack_id = f"arn:aws:cloudformation:{self._world.region}:{self._world.account_id}:stack/{name}/{uuid.uuid4()}"
        return LocalStack(name, stack_id, "CREATE_IN_PROGRESS", self._now(), function_stack=function_stack)

    def _register(self, stack: LocalStack, providers: dict[str, _Provider]) -> None:
        with self._lock:
            self._stacks[stack.name] = stack
            self._providers[stack.name] = providers

    def _launch(self, stack: LocalStack, status: str, work: Callable[[], None]) -> StackOperation:
        """Put the stack in ``status`` and run ``work`` on a thread of its own; the caller holds the lock."""
        operation = StackOperation(stack, self._changed)
        self._operations[stack.stack_id] = operation
        self._stack_status(stack, status, "User Initiated")

        def run() -> None:
            try:
                work()
            except Exception as error:  # a stack never stays in progress: it ends failed, saying why
                with self._lock:
                    failed = _FAILED_STATUS.get(stack.status, stack.status)
                self._stack_status(stack, failed, f"Internal failure of the local CloudFormation: {error}")
            finally:
                operation.finish()

        threading.Thread(target=run, name=f"local-cfn-{stack.name}", daemon=True).start()
        return operation

    # -- create ---------------------------------------------------------------------------------------------

    def _start_create(
        self,
        name: str,
        body: str,
        source: str,
        given: Mapping[str, str] | None,
        providers: dict[str, _Provider],
        *,
        function_stack: bool,
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
    ) -> StackOperation:
        template = self._parse(body, source, function_stack=function_stack)
        with self._lock:
            if name in self._stacks:
                raise AlreadyExistsError(f"Stack [{name}] already exists")
            stack = self._new_stack(name, function_stack=function_stack)
            plan = self._plan(stack, template, given, None, providers)
            self._register(stack, providers)
            return self._begin_create(stack, plan, body, tags, capabilities)

    def _begin_create(
        self,
        stack: LocalStack,
        plan: _Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> StackOperation:
        self._adopt(stack, plan, body, tags, capabilities)
        return self._launch(stack, "CREATE_IN_PROGRESS", lambda: self._run_create(stack, plan))

    def _run_create(self, stack: LocalStack, plan: _Plan) -> None:
        failed = self._run_graph(
            plan.order, plan.needs, lambda logical_id: self._create_resource(stack, plan, logical_id)
        )
        reason = f"The following resource(s) failed to create: [{', '.join(failed)}]. " if failed else ""
        reason = reason or self._publish_outputs(stack)
        if not reason:
            self._stack_status(stack, "CREATE_COMPLETE")
            return
        self._stack_status(stack, "ROLLBACK_IN_PROGRESS", f"{reason}Rollback requested by user.")
        with self._lock:
            attempted = {key: resource for key, resource in stack.resources.items() if resource.physical_id}
            for logical_id in set(stack.resources) - set(attempted):
                stack.resources.pop(logical_id)  # never reached its function: nothing to delete
        failed_deletes = self._delete_resources(stack, attempted, plan.needs)
        if failed_deletes:
            self._stack_status(
                stack, "ROLLBACK_FAILED", f"The following resource(s) failed to delete: [{', '.join(failed_deletes)}]. "
            )
        else:
            self._stack_status(stack, "ROLLBACK_COMPLETE")

    def _plan(
        self,
        stack: LocalStack,
        template: dict[str, Any],
        given: Mapping[str, str] | None,
        previous: Mapping[str, ParameterValue] | None,
        providers: Mapping[str, _Provider],
    ) -> _Plan:
        """Everything CloudFormation checks before the first resource event; raises TemplateError."""
        parameters = resolve_parameters(template, given, previous)
        context = StackContext(
            stack.name,
            stack.stack_id,
            self._world.region,
            self._world.account_id,
            parameters,
            exports=self.exports,
            mappings=template.get("Mappings") or {},
        )
        conditions = evaluate_conditions(template, context)
        resources = active_resources(template, conditions)
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if not is_custom_type(kind) and kind not in providers:
                supported = "custom resources" + (f" and {', '.join(sorted(providers))}" if providers else "")
                raise TemplateError(
                    f"Resource {logical_id}: type {kind} is not supported by the local CloudFormation "
                    f"(supported in this stack: {supported})"
                )
        needs = dependencies(template, resources)
        order = creation_order(needs)
        check_outputs(template)
        imports = import_names(template, replace(context, conditions=conditions))
        missing = sorted(imports - set(context.exports))
        if missing:
            raise TemplateError(f"No export named {missing[0]} found.")
        return _Plan(template, parameters, conditions, resources, needs, order, imports)

    def _adopt(
        self,
        stack: LocalStack,
        plan: _Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> None:
        """The stack takes the plan's template and parameters; tags and capabilities None keep the stack's."""
        with self._lock:
            stack.template, stack.parameters, stack.conditions = plan.template, plan.parameters, plan.conditions
            stack.imports = set(plan.imports)
            stack.template_body, stack.description = body, str(plan.template.get("Description", ""))
            if tags is not None:
                stack.tags = dict(tags)
            if capabilities is not None:
                stack.capabilities = list(capabilities)

    def _create_resource(self, stack: LocalStack, plan: _Plan, logical_id: str) -> bool:
        definition = plan.resources[logical_id]
        resource = StackResource(
            logical_id,
            definition["Type"],
            deletion_policy=str(definition.get("DeletionPolicy", "Delete")),
            update_replace_policy=str(definition.get("UpdateReplacePolicy", "Delete")),
        )
        with self._lock:
            stack.resources[logical_id] = resource
        try:
            properties = self._resolve(stack, definition.get("Properties") or {})
            resource.properties = properties
            self._resource_status(stack, resource, "CREATE_IN_PROGRESS")
            physical_id, attributes = self._provider(stack, resource).create(stack, resource, properties)
        except ResourceFailedError as error:
            with self._lock:
                resource.physical_id = error.physical_id
            self._resource_status(stack, resource, "CREATE_FAILED", error.reason)
            return False
        except Exception as error:  # an AWS error of a native resource fails that resource, as in CloudFormation
            self._resource_status(stack, resource, "CREATE_FAILED", str(error))
            return False
        with self._lock:
            resource.physical_id, resource.attributes = physical_id, dict(attributes)
        self._resource_status(stack, resource, "CREATE_COMPLETE")
        return True

    # -- update ---------------------------------------------------------------------------------------------

    def _update_plan(
        self,
        stack: LocalStack,
        body: str | None,
        given: Mapping[str, str] | None,
        use_previous: Collection[str] | None,
        source: str,
    ) -> tuple[_Plan, str]:
        """The plan of an update and the template text it applies (``body`` None: the stack's template)."""
        if stack.status not in _UPDATABLE:
            raise StackError(f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
        new = [name for name in use_previous or () if name not in stack.parameters]
        if new:
            raise StackError(
                f"Invalid input for parameter key {new[0]}. Cannot specify usePreviousValue as true for a parameter "
                "key not in the previous template"
            )
        if body is None:
            body, template = stack.template_body, stack.template
        else:
            template = self._parse(body, source, function_stack=stack.function_stack)
        previous = {
            key: value for key, value in stack.parameters.items() if use_previous is None or key in use_previous
        }
        with self._lock:
            providers = self._providers[stack.name]
        plan = self._plan(stack, template, given, previous, providers)
        changed_types = sorted(
            logical_id
            for logical_id, definition in plan.resources.items()
            if logical_id in stack.resources and stack.resources[logical_id].resource_type != definition["Type"]
        )
        if changed_types:
            raise TemplateError(
                "Update of resource type is not permitted. The new template modifies resource type of the "
                f"following resources: [{', '.join(changed_types)}]"
            )
        return plan, body

    @staticmethod
    def _unchanged(stack: LocalStack, plan: _Plan, tags: Mapping[str, str] | None) -> bool:
        """Whether an update to ``plan`` (and ``tags``, None keeping them) would change nothing."""
        same_tags = tags is None or dict(tags) == stack.tags
        return plan.template == stack.template and plan.parameters == stack.parameters and same_tags

    def _begin_update(
        self,
        stack: LocalStack,
        plan: _Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> StackOperation:
        with self._lock:
            before = copy.deepcopy(stack)
            self._adopt(stack, plan, body, tags, capabilities)
            stack.updated_at = self._now()
            return self._launch(stack, "UPDATE_IN_PROGRESS", lambda: self._run_update(stack, before, plan))

    def _run_update(self, stack: LocalStack, before: LocalStack, plan: _Plan) -> None:
        journal = _UpdateJournal()
        failed = self._run_graph(
            plan.order, plan.needs, lambda logical_id: self._update_resource(stack, plan, logical_id, journal)
        )
        reason = ""
        if failed:
            verb = "update" if any(logical_id in before.resources for logical_id in failed) else "create"
            reason = f"The following resource(s) failed to {verb}: [{', '.join(failed)}]. "
        reason = reason or self._export_users(stack, self._changed_exports(before, stack), updating=True)
        reason = reason or self._publish_outputs(stack)
        if not reason:
            self._finish_update(stack, before, plan, journal)
        else:
            self._roll_back_update(stack, before, plan, journal, reason)

    def _update_resource(self, stack: LocalStack, plan: _Plan, logical_id: str, journal: _UpdateJournal) -> bool:
        with self._lock:
            resource = stack.resources.get(logical_id)
        if resource is None:
            created = self._create_resource(stack, plan, logical_id)
            with self._lock:
                journal.created.append(logical_id)
            return created
        try:
            properties = self._resolve(stack, plan.resources[logical_id].get("Properties") or {})
        except ResourceFailedError as error:
            self._resource_status(stack, resource, "UPDATE_FAILED", error.reason)
            return False
        with self._lock:
            resource.deletion_policy = str(plan.resources[logical_id].get("DeletionPolicy", "Delete"))
            resource.update_replace_policy = str(plan.resources[logical_id].get("UpdateReplacePolicy", "Delete"))
        if properties == resource.properties:
            return True
        self._resource_status(stack, resource, "UPDATE_IN_PROGRESS")
        try:
            physical_id, attributes = self._provider(stack, resource).update(
                stack, resource, properties, resource.properties
            )
        except ResourceFailedError as error:
            if error.request_sent:
                with self._lock:
                    journal.attempted[logical_id] = properties
            self._resource_status(stack, resource, "UPDATE_FAILED", error.reason)
            return False
        except Exception as error:  # an AWS error of a native resource fails that resource
            self._resource_status(stack, resource, "UPDATE_FAILED", str(error))
            return False
        with self._lock:
            if physical_id != resource.physical_id:
                journal.replaced[logical_id] = replace(resource)
                resource = replace(resource)
                stack.resources[logical_id] = resource
            else:
                journal.attempted[logical_id] = properties
            resource.physical_id, resource.properties, resource.attributes = physical_id, properties, dict(attributes)
        self._resource_status(stack, resource, "UPDATE_COMPLETE")
        return True

    def _finish_update(self, stack: LocalStack, before: LocalStack, plan: _Plan, journal: _UpdateJournal) -> None:
        self._stack_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        old_needs = dependencies(before.template, active_resources(before.template, before.conditions))
        removed = {key: resource for key, resource in stack.resources.items() if key not in plan.resources}
        self._delete_resources(stack, removed, old_needs)
        # The old copies of replaced resources: never in stack.resources again, Delete with their old ids.
        replaced = {
            key: replace(old, deletion_policy=old.update_replace_policy) for key, old in journal.replaced.items()
        }
        self._delete_resources(stack, replaced, plan.needs, keep_records=True)
        self._stack_status(stack, "UPDATE_COMPLETE")

    def _roll_back_update(
        self, stack: LocalStack, before: LocalStack, plan: _Plan, journal: _UpdateJournal, reason: str
    ) -> None:
        self._stack_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
        with self._lock:
            stack.template, stack.parameters, stack.conditions = before.template, before.parameters, before.conditions
            stack.imports, stack.tags, stack.capabilities = before.imports, before.tags, before.capabilities
            stack.template_body, stack.description = before.template_body, before.description
        obsolete: dict[str, StackResource] = {}
        # A replacement is undone by going back to the old resource, which cleanup never reached; the new one
        # is deleted (CloudFormation sends its Delete with the new PhysicalResourceId).
        for logical_id, old in journal.replaced.items():
            with self._lock:
                obsolete[logical_id] = stack.resources[logical_id]
                stack.resources[logical_id] = old
            self._resource_status(stack, old, "UPDATE_COMPLETE")
        for logical_id in journal.created:
            with self._lock:
                created = stack.resources.pop(logical_id)
            if created.physical_id:
                obsolete[logical_id] = created
        # Resources changed in place, and those whose Update was sent but failed, get an ordinary Update back
        # to the old properties (old and new swapped), in the old template's order.
        old_needs = dependencies(before.template, active_resources(before.template, before.conditions))
        to_revert = [logical_id for logical_id in old_needs if logical_id in journal.attempted]
        failed = self._run_graph(
            to_revert,
            old_needs,
            lambda logical_id: self._revert_resource(stack, before, logical_id, journal, obsolete),
            stop_on_failure=False,
        )
        if failed:
            self._stack_status(
                stack, "UPDATE_ROLLBACK_FAILED", f"The following resource(s) failed to update: [{', '.join(failed)}]. "
            )
            return
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self._delete_resources(stack, obsolete, {**old_needs, **plan.needs}, keep_records=True)
        with self._lock:
            stack.outputs, stack.output_details, stack.exports = before.outputs, before.output_details, before.exports
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE")

    def _revert_resource(
        self,
        stack: LocalStack,
        before: LocalStack,
        logical_id: str,
        journal: _UpdateJournal,
        obsolete: dict[str, StackResource],
    ) -> bool:
        with self._lock:
            resource = stack.resources[logical_id]
        old_properties = before.resources[logical_id].properties
        self._resource_status(stack, resource, "UPDATE_IN_PROGRESS")
        try:
            physical_id, attributes = self._provider(stack, resource).update(
                stack, resource, old_properties, journal.attempted[logical_id]
            )
        except Exception as error:  # a failed rollback step fails the rollback (UPDATE_ROLLBACK_FAILED)
            self._resource_status(stack, resource, "UPDATE_FAILED", getattr(error, "reason", str(error)))
            return False
        with self._lock:
            if physical_id != resource.physical_id:
                obsolete[logical_id] = replace(resource)
                resource = replace(resource)
                stack.resources[logical_id] = resource
            resource.physical_id, resource.properties, resource.attributes = (
                physical_id,
                old_properties,
                dict(attributes),
            )
        self._resource_status(stack, resource, "UPDATE_COMPLETE")
        return True

    # -- delete ---------------------------------------------------------------------------------------------

    def _run_delete(self, stack: LocalStack) -> None:
        users = self._export_users(stack, set(stack.exports))
        if users:
            self._stack_status(stack, "DELETE_FAILED", users)
            return
        template = stack.template  # a stack still in REVIEW_IN_PROGRESS has none
        needs = dependencies(template, active_resources(template, stack.conditions)) if template else {}
        failed = self._delete_resources(stack, dict(stack.resources), needs)
        if failed:
            self._stack_status(
                stack, "DELETE_FAILED", f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
            )
            return
        with self._lock:  # gone by name and deleted by id at once, as DescribeStacks sees it
            stack.exports, stack.deleted_at = {}, self._now()
            self._stacks.pop(stack.name, None)
            self._providers.pop(stack.name, None)
            self._deleted[stack.stack_id] = stack
            for change_set in [c for c in self._change_sets.values() if c.stack_id == stack.stack_id]:
                self._change_sets.pop(change_set.change_set_id)
            self._stack_status(stack, "DELETE_COMPLETE")

    def _delete_resources(
        self,
        stack: LocalStack,
        resources: Mapping[str, StackResource],
        needs: Mapping[str, set[str]],
        *,
        keep_records: bool = False,
    ) -> list[str]:
        """Delete ``resources`` (dependents first), concurrently where independent; returns the failed ids.

        Deleted (or retained) resources leave ``stack.resources`` unless ``keep_records`` (copies that the
        stack no longer lists: replaced or rolled-back resources).
        """
        names = set(resources)
        dependents = {name: {other for other in names if name in needs.get(other, set())} for name in names}
        order = list(reversed(creation_order({name: needs.get(name, set()) & names for name in names})))

        def delete(logical_id: str) -> bool:
            resource = resources[logical_id]
            if resource.deletion_policy == "Retain":
                self._resource_status(stack, resource, "DELETE_SKIPPED")
            elif resource.physical_id:
                self._resource_status(stack, resource, "DELETE_IN_PROGRESS")
                try:
                    self._provider(stack, resource).delete(stack, resource)
                except Exception as error:  # reported as DELETE_FAILED with the reason, as CloudFormation does
                    self._resource_status(stack, resource, "DELETE_FAILED", getattr(error, "reason", str(error)))
                    return False
                self._resource_status(stack, resource, "DELETE_COMPLETE")
            if not keep_records:
                with self._lock:
                    stack.resources.pop(logical_id, None)
            return True

        return self._run_graph(order, dependents, delete, stop_on_failure=False)

    # -- custom resource requests ------------------------------------------------------------------------

    def _custom_request(
        self,
        stack: LocalStack,
        request_type: str,
        resource: StackResource,
        properties: dict[str, Any],
        old_properties: dict[str, Any] | None = None,
    ) -> tuple[str, Any]:
        """Send one request to the ServiceToken's function and wait for its answer in S3."""
        token = properties.get("ServiceToken")
        if not isinstance(token, str) or not token:
            raise ResourceFailedError("ServiceToken must be the ARN of a function", request_sent=False)
        if not self._lambdas.is_registered(token):
            raise ResourceFailedError(f"Invalid service token: no local function {token}", request_sent=False)
        timeout = _service_timeout(properties.get("ServiceTimeout"))
        request_id = str(uuid.uuid4())
        key = f"{quote(stack.stack_id, safe='')}|{resource.logical_id}|{request_id}"
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "ResponseURL": self._response_url(key),
            "StackId": stack.stack_id,
            "RequestId": request_id,
            "ResourceType": resource.resource_type,
            "LogicalResourceId": resource.logical_id,
            "ResourceProperties": cloudformation_strings(properties),
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = resource.physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = cloudformation_strings(old_properties)
        self._lambdas.invoke_async(token, event)
        body = self._await_answer(key, timeout)
        if body is None:
            # The rollback Delete after an unanswered Create needs an id: CloudFormation sends one it made up.
            fallback_id = resource.physical_id or generated_name(stack.name, resource.logical_id, 64)
            raise ResourceFailedError(
                "CloudFormation did not receive a response from your Custom Resource. "
                f"Please check your logs for requestId [{request_id}].",
                fallback_id,
            )
        answer = _parse_answer(body, event)
        physical_id = str(answer.get("PhysicalResourceId") or "")
        if answer["Status"] == "FAILED":
            raise ResourceFailedError(
                "Received response status [FAILED] from custom resource. Message returned: "
                f"{answer.get('Reason', '')} (RequestId: {request_id})",
                physical_id or resource.physical_id,
            )
        with self._lock:
            resource.answer_object = key
        return physical_id, dict(answer.get("Data") or {})

    def _response_url(self, key: str) -> str:
        with self._lock:
            if not self._bucket_ready:
                with contextlib.suppress(self._s3.exceptions.BucketAlreadyOwnedByYou):
                    self._s3.create_bucket(Bucket=self._bucket)
                self._bucket_ready = True
        url: str = self._s3.generate_presigned_url(
            "put_object", Params={"Bucket": self._bucket, "Key": key}, ExpiresIn=RESPONSE_URL_EXPIRES
        )
        return url

    def _await_answer(self, key: str, timeout_world_seconds: float) -> bytes | None:
        """The answer's body once it is in S3, or None after the timeout (world time)."""
        deadline = self._world.world_time() + timeout_world_seconds
        # Looked up in this process, so a short interval costs nothing and adds little to the measured latency.
        interval = min(max(self._world.to_real(0.1), 0.01), 0.05)
        while True:
            if self._answer_present(key):
                try:
                    body: bytes = self._s3.get_object(Bucket=self._bucket, Key=key)["Body"].read()
                    return body
                except self._s3.exceptions.NoSuchKey:
                    pass
            if self._world.world_time() >= deadline:
                return None
            time.sleep(interval)

    def _answer_present(self, key: str) -> bool:
        """Whether the answer has landed, looked up in moto's S3 in this process (no request per check)."""
        try:
            bucket = get_backend("s3")[self._world.account_id]["aws"].buckets.get(self._bucket)
        except (KeyError, AttributeError):  # moto's internals moved: ask S3 itself every time
            return True
        return bucket is not None and key in bucket.keys

    # -- shared steps -------------------------------------------------------------------------------------

    def _provider(self, stack: LocalStack, resource: StackResource) -> _Provider:
        if is_custom_type(resource.resource_type):
            return self._custom
        with self._lock:
            return self._providers[stack.name][resource.resource_type]

    def _context(self, stack: LocalStack) -> StackContext:
        with self._lock:
            return StackContext(
                stack.name,
                stack.stack_id,
                self._world.region,
                self._world.account_id,
                dict(stack.parameters),
                {key: resource.physical_id for key, resource in stack.resources.items() if resource.physical_id},
                {key: dict(resource.attributes) for key, resource in stack.resources.items() if resource.physical_id},
                self.exports,
                dict(stack.conditions),
                stack.template.get("Mappings") or {},
            )

    def _resolve(self, stack: LocalStack, value: Any) -> Any:
        """``value`` resolved in the stack's current context; failures as CloudFormation words them."""
        try:
            return resolve(value, self._context(stack))
        except AttributeNotFoundError as error:
            raise ResourceFailedError(self._attribute_error(stack, error), request_sent=False) from None
        except TemplateError as error:
            raise ResourceFailedError(str(error), request_sent=False) from None

    def _attribute_error(self, stack: LocalStack, error: AttributeNotFoundError) -> str:
        resource = stack.resources.get(error.logical_id)
        if resource is not None and is_custom_type(resource.resource_type):
            return (
                f"CustomResource attribute error: Vendor response doesn't contain {error.attribute} key in object "
                f"{resource.answer_object} in S3 bucket {self._bucket}"
            )
        return (
            f"Template error: resource {error.logical_id} does not support attribute type {error.attribute} "
            "in Fn::GetAtt"
        )

    def _publish_outputs(self, stack: LocalStack) -> str:
        """Resolve the outputs and record them and their exports; the failure reason, or ''."""
        try:
            outputs = resolve_outputs(stack.template, self._context(stack))
        except AttributeNotFoundError as error:
            return self._attribute_error(stack, error) + ". "
        except TemplateError as error:
            return f"{error}. "
        exports = {output.export_name: output.value for output in outputs.values() if output.export_name}
        with self._lock:
            for name in exports:
                owner = next(
                    (other for other in self._stacks.values() if name in other.exports and other is not stack), None
                )
                if owner is not None:
                    return f"Export with name {name} is already exported by stack {owner.name}. "
            stack.outputs = {name: output.value for name, output in outputs.items()}
            stack.output_details, stack.exports = outputs, exports
        return ""

    def _changed_exports(self, before: LocalStack, stack: LocalStack) -> set[str]:
        """Exports an update would remove or change (values as they will resolve are checked after outputs)."""
        try:
            outputs = resolve_outputs(stack.template, self._context(stack))
        except TemplateError:
            return set()  # reported by _publish_outputs
        after = {output.export_name: output.value for output in outputs.values() if output.export_name}
        return {name for name, value in before.exports.items() if after.get(name) != value}

    def _export_users(self, stack: LocalStack, exports: set[str], *, updating: bool = False) -> str:
        """A reason if another stack imports one of ``exports``, else ''."""
        with self._lock:
            for name in sorted(exports):
                for other in self._stacks.values():
                    if other is not stack and name in other.imports:
                        if updating:
                            return f"Cannot update export {name} as it is in use by {other.name}. "
                        return f"Export {name} cannot be deleted as it is in use by {other.name}"
        return ""

    def _run_graph(
        self,
        order: list[str],
        needs: Mapping[str, set[str]],
        step: Callable[[str], bool],
        *,
        stop_on_failure: bool = True,
    ) -> list[str]:
        """Run ``step`` for each id once the ids it needs have succeeded; independent ids run concurrently.

        With ``stop_on_failure``, nothing new starts after a failure (what runs ends). Returns the failed ids.
        """
        members = set(order)
        pending = list(order)
        done: set[str] = set()
        failed: list[str] = []
        running: dict[Future[bool], str] = {}
        with ThreadPoolExecutor(max_workers=max(1, len(order)), thread_name_prefix="local-cfn") as pool:
            while pending or running:
                if failed and stop_on_failure:
                    pending = []
                for name in [name for name in pending if needs.get(name, set()) & members <= done]:
                    pending.remove(name)
                    running[pool.submit(step, name)] = name
                if not running:
                    break  # what is left waits on something that failed
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    name = running.pop(future)
                    try:
                        succeeded = future.result()
                    except Exception:  # a step reports its own failure; an escaped error still fails it
                        succeeded = False
                    if succeeded:
                        done.add(name)
                    else:
                        failed.append(name)
        return failed

    # -- events -------------------------------------------------------------------------------------------

    def _now(self) -> datetime.datetime:
        """The world's date (the process reads the world's clock while the world runs), in UTC."""
        return process_clock.utcnow()

    def _record(self, stack: LocalStack, event: StackEvent) -> None:
        with self._lock:
            stack.events.append(event)
            self._changed.notify_all()
            self._printer(event.line())

    def _stack_status(self, stack: LocalStack, status: str, reason: str = "") -> None:
        with self._lock:
            stack.status, stack.status_reason = status, reason
            self._record(
                stack, StackEvent(self._now(), stack.name, stack.name, stack.stack_id, STACK_TYPE, status, reason)
            )

    def _resource_status(self, stack: LocalStack, resource: StackResource, status: str, reason: str = "") -> None:
        with self._lock:
            resource.status, resource.status_reason = status, reason
            event = StackEvent(
                self._now(),
                stack.name,
                resource.logical_id,
                resource.physical_id,
                resource.resource_type,
                status,
                reason,
            )
            resource.updated_at = event.timestamp
            self._record(stack, event)


@dataclass
class _UpdateJournal:
    """What an update did, for its cleanup or its rollback."""

    created: list[str] = field(default_factory=list)
    attempted: dict[str, dict[str, Any]] = field(default_factory=dict)  # in-place updates sent: new properties
    replaced: dict[str, StackResource] = field(default_factory=dict)  # the old resource of each replacement


def _service_timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_SERVICE_TIMEOUT
    try:
        seconds = int(str(value))
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= DEFAULT_SERVICE_TIMEOUT:
        raise ResourceFailedError(
            f"ServiceTimeout must be a whole number of seconds from 1 to 3600, not {value!r}", request_sent=False
        )
    return float(seconds)


def _parse_answer(body: bytes, event: Mapping[str, Any]) -> dict[str, Any]:
    """The answer, checked as CloudFormation checks it; ResourceFailedError when it is unusable."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise ResourceFailedError("Response object is too long.")
    try:
        answer = json.loads(body)
    except ValueError:
        raise ResourceFailedError("Invalid response object: the response is not valid JSON") from None
    if not isinstance(answer, dict) or answer.get("Status") not in ("SUCCESS", "FAILED"):
        raise ResourceFailedError("Invalid response object: Status must be SUCCESS or FAILED")
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(key) != event[key]:
            raise ResourceFailedError(f"Invalid response object: {key} does not match the request")
    physical_id = answer.get("PhysicalResourceId")
    if answer["Status"] == "SUCCESS" and (
        not isinstance(physical_id, str) or not physical_id or len(physical_id) > MAX_PHYSICAL_ID
    ):
        raise ResourceFailedError("Invalid PhysicalResourceId")
    if answer.get("Data") is not None and not isinstance(answer["Data"], dict):
        raise ResourceFailedError("Invalid response object: Data must be a map")
    return answer
