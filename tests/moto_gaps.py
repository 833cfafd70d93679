"""Make moto refuse what real AWS refuses and move RDS resources through real lifecycles, step by step.

``AwsGaps`` installs the rules ``aurora_clone.local.rds_rules.RdsRules`` installs (the same rules ``LocalAws`` runs in
world time) with a ``ManualPace``: nothing moves by itself, no clock, no thread; every stage ends at the
next ``advance()``. Use it inside ``mock_aws()``:

    with mock_aws(), AwsGaps() as world:
        rds = boto3.client("rds", region_name="us-east-1")
        rds.create_db_cluster(DBClusterIdentifier="c", Engine="aurora-mysql", ...)   # status "creating"
        world.advance()                          # every cluster and instance moves ONE step
        world.settle()                           # advance until nothing is transitional (at most 50 steps)
        world.set_cluster_status("c", "incompatible-network")
        world.transitional()                     # {} once settled
        world.rds_calls["CreateDBCluster"]       # 1

Every patch is removed on exit (moto's state stays as it is). The patches apply to every account and
region that moto emulates. What the rules do is described in ``aurora_clone.local``'s ``rds_rules``,
``rds_lifecycle``, ``eventbridge_rules``, ``lambda_rules`` and ``queue_rules``; in steps:

- Clusters (create, restores) go ``creating`` -> ``available`` in one step (the ``backing-up`` stage of
  the world-time clusters is left out, ``MANUAL_DURATIONS``); a full copy too, as nothing is long here.
- Instances made by ``CreateDBInstance`` go ``creating`` -> ``backing-up`` -> ``available``.
- ``ModifyDBInstance`` of the class with ``ApplyImmediately``, or of the parameter group, and
  ``ModifyDBCluster`` of the port, security groups, parameter group (and a few more settings) are
  ``modifying`` for a step; ``BacktrackDBCluster`` is ``backtracking`` for a step.
- Deletes leave the resource ``deleting`` for a step; a cluster disappears once its last instance has.
- The refusals, the restore defaults (no source tags), ``CloneGroupId`` and the 15-clone limit,
  ``BacktrackDBCluster``, the EventBridge limits (rule names, target ``Input``), the Lambda policy limit
  and RDS events on the default bus are the rules' own. Throttling is off.
- ``rds_calls`` counts every request that reaches moto's RDS endpoint, by operation name, refused
  requests included.
- RDS events are kept in ``rds_events`` (``take_rds_events()`` hands them over once), for a test to
  deliver to the function late, twice, out of order or never. ``AwsGaps(describe_lag=1)`` makes a status
  reached at the end of a stage show to Describe calls only from the next step on.
- moto's CloudFormation cannot hold a custom resource in the middle of an operation (it runs a template's
  custom resources itself, at once). ``hold_custom_resource`` makes a stack show what CloudFormation's
  record shows while it waits for a custom resource's answer: the stack's status, and the resource's
  logical id, type and PhysicalResourceId, as DescribeStacks and DescribeStackResource read them.
"""

from __future__ import annotations

from collections import Counter
from types import TracebackType
from typing import Any

from moto.cloudformation.models import cloudformation_backends

from aurora_clone.local.pace import MANUAL_DURATIONS, ManualPace
from aurora_clone.local.rds_lifecycle import NeverSettledError
from aurora_clone.local.rds_rules import RdsRules

MAX_SETTLE_STEPS = 50

__all__ = ["MAX_SETTLE_STEPS", "AwsGaps", "NeverSettledError"]


class AwsGaps:
    """moto with the emulation rules (``RdsRules`` installs them all), moved by hand. See the module docstring."""

    def __init__(self, describe_lag: float = 0.0) -> None:
        self._pace = ManualPace()
        self._rules = RdsRules(
            self._pace, durations=MANUAL_DURATIONS, notify=self._keep_rds_event, describe_lag=describe_lag
        )
        self.rds_calls: Counter[str] = self._rules.rds_calls
        self.rds_events: list[dict[str, Any]] = []

    def _keep_rds_event(self, event: dict[str, Any]) -> None:
        if event.get("source") == "aws.rds":
            self.rds_events.append(event)

    def take_rds_events(self) -> list[dict[str, Any]]:
        """The RDS events sent since the last call, in the order RDS sent them."""
        events, self.rds_events = self.rds_events, []
        return events

    def __enter__(self) -> AwsGaps:
        if self._rules.installed:
            raise RuntimeError("AwsGaps is already installed")
        self._rules.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._rules.__exit__(exc_type, exc, traceback)

    def advance(self) -> None:
        """Move every cluster and instance, in every account and region, one step along its lifecycle.

        Instances move first, so a cluster whose last instance goes in this step goes in this step too.
        Statuses that are not transitional (``available``, ``stopped``, ``failed``,
        ``incompatible-network``...) stay as they are.
        """
        self._pace.advance()
        self._rules.tick()

    def pass_time(self) -> None:
        """Let delayed messages and visibility timeouts pass without moving RDS: its stages end at the next
        ``advance()`` as they would have."""
        self._pace.advance()

    def settle(self) -> None:
        """Advance until nothing is transitional; raise ``NeverSettledError`` after 50 steps."""
        for _ in range(MAX_SETTLE_STEPS):
            if not self.transitional():
                return
            self.advance()
        still = self.transitional()
        if still:
            raise NeverSettledError(f"still transitional after {MAX_SETTLE_STEPS} steps: {still}")

    def transitional(self) -> dict[str, str]:
        """Identifiers of the clusters and instances in a transitional status, mapped to that status."""
        return self._rules.transitional()

    def set_cluster_status(self, identifier: str, status: str) -> None:
        """Force a cluster's status, for example a terminal one such as ``incompatible-network``."""
        self._rules.set_cluster_status(identifier, status)

    def fail_next(self, action: str, times: int, status: int = 400, code: str = "ThrottlingException") -> None:
        """Answer the next ``times`` RDS requests of ``action`` with an HTTP error response, so botocore retries
        as it would on AWS (400 ``ThrottlingException``; 500 ``InternalFailure``; 503 ``ServiceUnavailable``)."""
        self._rules.fail_next(action, times, status, code)

    def set_instance_status(self, identifier: str, status: str) -> None:
        """Force an instance's status, for example ``failed``."""
        self._rules.set_instance_status(identifier, status)

    def hold_custom_resource(
        self, stack_id: str, stack_status: str, logical_id: str, resource_type: str, physical_id: str | None = None
    ) -> None:
        """Make moto's stack ``stack_id`` (it must exist) show ``stack_status``, and a resource ``logical_id`` of
        ``resource_type`` with ``physical_id`` (None: none yet, as while a Create is in flight), as
        CloudFormation's record shows them while it waits for that resource's answer. moto's
        DescribeStackResource gives the stack's status as the resource's."""
        _, _, _, region, account, _ = stack_id.split(":", 5)
        stack = cloudformation_backends[account][region].stacks[stack_id]
        stack.status = stack_status
        resources = stack.resource_map
        # What DescribeStackResource reads (moto's StackResourceDTO): the template's resource names, each
        # resolved to an object with these attributes.
        resources._resource_json_map[logical_id] = {"Type": resource_type}
        resources._parsed_resources[logical_id] = _HeldResource(logical_id, resource_type, physical_id)

    def forget_stack(self, stack_id: str) -> None:
        """Remove moto's stack ``stack_id`` altogether, as CloudFormation forgets a stack deleted long ago
        (DescribeStacks by its id: no such stack)."""
        _, _, _, region, account, _ = stack_id.split(":", 5)
        backend = cloudformation_backends[account][region]
        backend.stacks.pop(stack_id, None)
        backend.deleted_stacks.pop(stack_id, None)


class _HeldResource:
    """A stack resource as moto's DescribeStackResource reads it."""

    def __init__(self, logical_id: str, resource_type: str, physical_id: str | None) -> None:
        self.logical_resource_id = logical_id
        self.cf_resource_type = resource_type
        self.physical_resource_id = physical_id
