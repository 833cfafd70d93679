"""The whole local world in one object: the emulated AWS, the Lambda runtime, EventBridge, the SQS event
source mappings' poller, CloudFormation, and the function stack (template.yaml) deployed into it, ready for
``Custom::AuroraClone`` stacks. RDS events reach the function as on AWS by default: late, a few lost, a few
twice (``EventDelivery``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from aurora_clone.local.cloudformation import LocalCloudFormation
from aurora_clone.local.cloudformation_api import CloudFormationApi
from aurora_clone.local.eventbridge import EventBridgePlayer
from aurora_clone.local.lambda_api import LambdaInvokeApi
from aurora_clone.local.lambda_runtime import LocalLambda
from aurora_clone.local.pace import Durations
from aurora_clone.local.queue_poller import QueuePoller
from aurora_clone.local.stacks import LocalStack
from aurora_clone.local.throttling import Throttling
from aurora_clone.local.world import EventDelivery, LocalAws
from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE

FUNCTION_STACK = "aurora-clone"
RULE_PREFIX = "aurora-clone-"  # rules named like the tool's (its own RDS event rule aside) are leftovers
SETTLE_REAL_SECONDS = 10.0  # how long, in real time, settled_leftovers waits at least for the last invocations
LEFTOVER_KINDS = ("clusters", "instances", "pending requests", "queued wake-ups", "rules")


class LocalSession:
    """``with LocalSession("template.yaml") as local: local.cloudformation.create_stack(...)``."""

    def __init__(
        self,
        function_template: str,
        *,
        function_stack: str = FUNCTION_STACK,
        time_scale: float = 0.005,
        durations: Durations | None = None,
        throttling: Throttling | None = None,
        seed: int | None = None,
        printer: Callable[[str], None] = print,
        concurrency: int = 4,
        event_delivery: EventDelivery | None = None,
        function_parameters: Mapping[str, str] | None = None,
        real_databases: bool = False,
    ) -> None:
        self.function_template = function_template
        self.function_parameters = dict(function_parameters or {})
        self.function_stack_name = function_stack
        self.world = LocalAws(
            time_scale=time_scale,
            durations=durations,
            throttling=throttling,
            seed=seed,
            event_delivery=event_delivery if event_delivery is not None else EventDelivery(),
            real_databases=real_databases,  # real servers behind the clusters' endpoints (LocalAws)
        )
        self._printer = printer
        self._sinks: list[Callable[[str], None]] = []
        self._sinks_lock = threading.Lock()
        self._concurrency = concurrency
        self.lambdas: LocalLambda | None = None
        self.player: EventBridgePlayer | None = None
        self.poller: QueuePoller | None = None
        self._cloudformation: LocalCloudFormation | None = None
        self.function_stack: LocalStack | None = None

    @property
    def cloudformation(self) -> LocalCloudFormation:
        if self._cloudformation is None:
            raise RuntimeError("the local session is not started")
        return self._cloudformation

    def __enter__(self) -> LocalSession:
        self.world.__enter__()
        try:
            self.lambdas = LocalLambda(self.world, concurrency=self._concurrency)
            self.player = EventBridgePlayer(self.world, self.lambdas)
            self.player.start()
            self.poller = QueuePoller(self.world, self.lambdas)
            self.poller.start()
            self._cloudformation = LocalCloudFormation(self.world, self.lambdas, self._print, poller=self.poller)
            # The endpoint's CloudFormation API answers from these stacks, not from moto's.
            self.world.put_in_front(CloudFormationApi(self._cloudformation, self.world).in_front_of)
            # Lambda's Invoke runs the deployed functions in the local runtime, not in moto's containers.
            self.world.put_in_front(LambdaInvokeApi(self.lambdas).in_front_of)
            self.function_stack = self._cloudformation.deploy_function_stack(
                self.function_template, self.function_stack_name, self.function_parameters
            )
            if self.function_stack.status != "CREATE_COMPLETE":
                raise RuntimeError(f"the function stack ended {self.function_stack.status}")
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.player is not None:
            self.player.stop()
        if self.poller is not None:
            self.poller.stop()
        if self.lambdas is not None:
            self.lambdas.close()
        self.world.__exit__(kind, error, trace)

    def _print(self, line: str) -> None:
        with self._sinks_lock:
            sinks = list(self._sinks)
        for sink in sinks or [self._printer]:
            sink(line)

    def add_sink(self, sink: Callable[[str], None]) -> None:
        """Send stack events to ``sink`` (instead of the printer) until removed."""
        with self._sinks_lock:
            self._sinks.append(sink)

    def remove_sink(self, sink: Callable[[str], None]) -> None:
        with self._sinks_lock:
            self._sinks.remove(sink)

    def leftovers(self) -> dict[str, list[str]]:
        """What this tool made or left that still exists (see ``leftovers``); every list empty when clean."""
        return leftovers(self.world, self.function_stack)

    def settled_leftovers(self, world_seconds: float) -> dict[str, list[str]]:
        """``leftovers()`` once nothing is left, or once ``world_seconds`` have passed: a request's last
        fallback wake-up stays queued (delayed) for a while after its answer, and is then consumed. At least
        ``SETTLE_REAL_SECONDS`` of real time: the invocation consuming it runs at the machine's speed."""
        floor = SETTLE_REAL_SECONDS / self.world.time_scale
        self.world.wait_until(lambda: not any(self.leftovers().values()), max(world_seconds, floor))
        return self.leftovers()

    def clone_function_name(self) -> str:
        """The name of the function stack's Custom::AuroraClone function (its resource ``Function``)."""
        return _resources_of(self.function_stack, "AWS::Serverless::Function").get("Function", "")

    def describe(self) -> dict[str, Any]:
        """Where the world is, for a user pointing the AWS CLI or their own tests at it."""
        return {"endpoint_url": self.world.endpoint_url, "ca_bundle": self.world.ca_bundle, **self.world.client_env()}


def leftovers(world: LocalAws, function_stack: LocalStack | None) -> dict[str, list[str]]:
    """What this tool made or left that still exists; every list empty when a run cleaned up after itself.

    Keys (``LEFTOVER_KINDS``), each a sorted list of strings:

    - ``clusters``, ``instances``: identifiers of clusters and instances with the ownership tag;
    - ``pending requests``: request tokens in the function stack's table that are still pending, or
      answered without CloudFormation having accepted the answer (``"<token> (answer not delivered)"``);
    - ``queued wake-ups``: per queue of the function stack holding messages (visible, in flight or
      delayed), ``"<logical id>: <n> (<visible> visible, <in flight> in flight, <delayed> delayed)"``;
    - ``rules``: EventBridge rules named ``aurora-clone-...`` that the function stack did not make.
    """
    rds = world.client("rds")
    owned = {MANAGED_BY_TAG: MANAGED_BY_VALUE}

    def ours(tag_list: list[dict[str, str]]) -> bool:
        tags = {tag["Key"]: tag["Value"] for tag in tag_list}
        return all(tags.get(key) == value for key, value in owned.items())

    clusters = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"] if ours(c["TagList"])]
    instances = [i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"] if ours(i["TagList"])]
    own_rules = set(_resources_of(function_stack, "AWS::Events::Rule").values())
    events = world.client("events")
    rules = [
        rule["Name"]
        for page in events.get_paginator("list_rules").paginate(NamePrefix=RULE_PREFIX)
        for rule in page["Rules"]
        if rule["Name"] not in own_rules
    ]
    return {
        "clusters": sorted(clusters),
        "instances": sorted(instances),
        "pending requests": sorted(_pending_requests(world, function_stack)),
        "queued wake-ups": sorted(_queued_messages(world, function_stack)),
        "rules": sorted(rules),
    }


def _resources_of(stack: LocalStack | None, resource_type: str) -> dict[str, str]:
    """Logical id -> physical id of the function stack's resources of ``resource_type``."""
    if stack is None:
        return {}
    return {
        logical_id: resource.physical_id
        for logical_id, resource in stack.resources.items()
        if resource.resource_type == resource_type and resource.physical_id
    }


def _pending_requests(world: LocalAws, function_stack: LocalStack | None) -> list[str]:
    dynamodb = world.client("dynamodb")
    found = []
    for table in _resources_of(function_stack, "AWS::DynamoDB::Table").values():
        pages = dynamodb.get_paginator("scan").paginate(
            TableName=table,
            FilterExpression="sk = :request AND (#state = :pending OR (#state = :answered AND delivered = :no))",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={
                ":request": {"S": "request"},
                ":pending": {"S": "pending"},
                ":answered": {"S": "answered"},
                ":no": {"BOOL": False},
            },
        )
        try:
            for item in (item for page in pages for item in page.get("Items", [])):
                token = item["pk"]["S"].removeprefix("request#")
                found.append(token if item["state"]["S"] == "pending" else f"{token} (answer not delivered)")
        except dynamodb.exceptions.ResourceNotFoundException:
            continue  # the function stack is gone, and its table with it
    return found


def _queued_messages(world: LocalAws, function_stack: LocalStack | None) -> list[str]:
    sqs = world.client("sqs")
    names = {
        "ApproximateNumberOfMessages": "visible",
        "ApproximateNumberOfMessagesNotVisible": "in flight",
        "ApproximateNumberOfMessagesDelayed": "delayed",
    }
    found = []
    for logical_id, url in _resources_of(function_stack, "AWS::SQS::Queue").items():
        try:
            attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=list(names))["Attributes"]
        except sqs.exceptions.QueueDoesNotExist:
            continue
        counts = {label: int(attributes.get(name, 0)) for name, label in names.items()}
        if sum(counts.values()):
            detail = ", ".join(f"{count} {label}" for label, count in counts.items())
            found.append(f"{logical_id}: {sum(counts.values())} ({detail})")
    return found
