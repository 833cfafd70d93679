"""The whole local world in one object: the emulated AWS, the Lambda runtime, EventBridge, CloudFormation,
and the function stack (template.yaml) deployed into it, ready for ``Custom::AuroraClone`` stacks."""

from __future__ import annotations

import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aurora_clone.cfn.polling import DEFAULT_PREFIX
from aurora_clone.local.cloudformation import LocalCloudFormation, LocalStack
from aurora_clone.local.eventbridge import EventBridgePlayer
from aurora_clone.local.lambda_runtime import LocalLambda
from aurora_clone.local.rds_rules import Durations, Throttling
from aurora_clone.local.world import LocalAws
from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE

FUNCTION_STACK = "aurora-clone"


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
    ) -> None:
        self.function_template = function_template
        self.function_stack_name = function_stack
        self.world = LocalAws(time_scale=time_scale, durations=durations, throttling=throttling, seed=seed)
        self._printer = printer
        self._sinks: list[Callable[[str], None]] = []
        self._sinks_lock = threading.Lock()
        self._concurrency = concurrency
        self.lambdas: LocalLambda | None = None
        self.player: EventBridgePlayer | None = None
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
            self._cloudformation = LocalCloudFormation(self.world, self.lambdas, self._print)
            self.function_stack = self._cloudformation.deploy_function_stack(
                self.function_template, self.function_stack_name
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
        """What this tool made that still exists: clone clusters, their instances, poll rules."""
        rds = self.world.client("rds")
        owned = {MANAGED_BY_TAG: MANAGED_BY_VALUE}

        def ours(tag_list: list[dict[str, str]]) -> bool:
            tags = {tag["Key"]: tag["Value"] for tag in tag_list}
            return all(tags.get(key) == value for key, value in owned.items())

        clusters = [c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"] if ours(c["TagList"])]
        instances = [
            i["DBInstanceIdentifier"] for i in rds.describe_db_instances()["DBInstances"] if ours(i["TagList"])
        ]
        rules = [r["Name"] for r in self.world.client("events").list_rules(NamePrefix=f"{DEFAULT_PREFIX}-")["Rules"]]
        return {"clusters": clusters, "instances": instances, "poll rules": rules}

    def describe(self) -> dict[str, Any]:
        """Where the world is, for a user pointing the AWS CLI or their own tests at it."""
        return {"endpoint_url": self.world.endpoint_url, "ca_bundle": self.world.ca_bundle, **self.world.client_env()}
