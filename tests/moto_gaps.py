"""Make moto refuse what real AWS refuses and move RDS resources through real lifecycles.

moto's emulated AWS is more lenient than the real one in ways that matter to this project (see the section
"What the emulated AWS (moto) gets wrong" of the project reference). ``AwsGaps`` patches moto's backend
classes while it is installed, so that tests meet the refusals and the intermediate states of real AWS:

    with mock_aws(), AwsGaps() as world:
        rds = boto3.client("rds", region_name="us-east-1")
        rds.create_db_cluster(DBClusterIdentifier="c", Engine="aurora-mysql", ...)   # status "creating"
        world.advance()                          # every cluster and instance moves ONE step
        world.settle()                           # advance until nothing is transitional (at most 50 steps)
        world.set_cluster_status("c", "incompatible-network")
        world.transitional()                     # {} once settled
        world.rds_calls["CreateDBCluster"]       # 1

Nothing moves by itself: no clock, no thread. Every patch is removed on exit. The patches apply to every
account and region that moto emulates.

What is patched, and why:

RDS lifecycle
    ``DBCluster.status``: moto reports ``creating`` once and then ``available``; here a status changes
    only on ``advance()``. Clusters (create, restores) start ``creating`` -> ``available``. Instances
    made by ``CreateDBInstance`` go ``creating`` -> ``backing-up`` -> ``available`` (moto: ``available``
    at once). ``ModifyDBInstance`` of the instance class keeps the old class in ``DBInstanceClass`` and the
    new one in ``PendingModifiedValues`` (moto applies it at once): with ``ApplyImmediately`` the instance
    is ``modifying`` until the next step applies it, without it the change waits for the maintenance
    window, which never comes here. A new DB parameter group makes the instance ``modifying`` for a step.
    ``ModifyDBCluster`` of the port, security groups, parameter group (and a few more settings) makes the
    cluster ``modifying`` for a step, values visible at once. Deletes leave the resource ``deleting`` for
    a step (moto: gone at once); a cluster disappears once its last instance has.

RDS refusals (the error codes of the botocore RDS model)
    ``CreateDBCluster`` and ``RestoreDBClusterToPointInTime`` on an existing identifier:
    ``DBClusterAlreadyExistsFault`` (moto overwrites). ``CreateDBInstance`` into a cluster that is not
    ``available``: ``InvalidDBClusterStateFault``. ``DeleteDBInstance`` of a busy instance:
    ``InvalidDBInstanceState``. ``DeleteDBCluster`` of a busy cluster: ``InvalidDBClusterStateFault``
    (moto already refuses a cluster with instances; here instances that are ``deleting`` no longer count,
    as in real RDS). ``ModifyDBInstance`` / ``ModifyDBCluster`` of something not ``available``:
    ``InvalidDBInstanceState`` / ``InvalidDBClusterStateFault`` (and ``DBClusterNotFoundFault`` instead of
    moto's internal error for an unknown cluster).

RDS restores
    ``RestoreDBClusterToPointInTime`` copies every attribute of the source in moto. Request parameters with
    a documented default get that default when omitted instead: ``Tags`` (the source's tags are not copied),
    ``DeletionProtection`` (off), ``BacktrackWindow`` (0), ``CopyTagsToSnapshot`` (off).

RDS automated backups
    moto names a cluster's automated snapshot after the cluster and the minute and never removes it, so a
    cluster re-created under the same identifier within the minute fails with
    ``DBClusterSnapshotAlreadyExistsFault``. Here a deleted cluster's automated snapshots go with it.

EventBridge
    ``PutRule`` (and the ``Rule`` of ``PutTargets``) checks the rule name against the model: at most 64
    characters of ``[.\\-_A-Za-z0-9]``. ``PutTargets`` checks ``Input`` is at most 8192 characters. Both
    raise ``ValidationException`` with the real message style.

Lambda
    ``AddPermission`` raises ``PolicyLengthExceededException`` when the function's resource policy would
    exceed 20 KB, and ``ResourceConflictException`` for a statement id already in the policy.

RDS call count
    ``rds_calls`` counts every request that reaches moto's RDS endpoint (``RDSResponse.call_action``), by
    operation name, refused requests included.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import ExitStack
from types import TracebackType
from typing import Any, cast
from unittest import mock

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.policy import Policy
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, Rule
from moto.rds.exceptions import (
    DBClusterToBeDeletedHasActiveMembers,
    InvalidDBClusterStateFault,
    RDSClientError,
)
from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

MAX_SETTLE_STEPS = 50

# Transitional statuses and the status one step later. "deleting" is handled apart: the resource goes.
CLUSTER_NEXT_STATUS: Mapping[str, str] = {
    "creating": "available",
    "modifying": "available",
    "backtracking": "available",
    "upgrading": "available",
    "renaming": "available",
    "resetting-master-credentials": "available",
    "starting": "available",
    "stopping": "stopped",
}
INSTANCE_NEXT_STATUS: Mapping[str, str] = {
    "creating": "backing-up",
    "backing-up": "available",
    "modifying": "available",
    "rebooting": "available",
    "upgrading": "available",
    "renaming": "available",
    "configuring-enhanced-monitoring": "available",
    "starting": "available",
    "stopping": "stopped",
}
DELETING = "deleting"
AVAILABLE = "available"

# ModifyDBCluster parameters (in moto's snake case) whose change puts the cluster in "modifying".
CLUSTER_MODIFYING_PARAMETERS = (
    "port",
    "vpc_security_group_ids",
    "db_cluster_parameter_group_name",
    "new_db_cluster_identifier",
    "engine_version",
    "backtrack_window",
    "serverless_v2_scaling_configuration",
    "enable_iam_database_authentication",
)

RULE_NAME_MAX_LENGTH = 64
RULE_NAME_PATTERN = r"[\.\-_A-Za-z0-9]+"
TARGET_INPUT_MAX_LENGTH = 8192
LAMBDA_POLICY_MAX_BYTES = 20480


class NeverSettledError(RuntimeError):
    """``AwsGaps.settle`` gave up: something was still transitional after the maximum number of steps."""


class AwsGaps:
    """Patch moto, while installed, so that it refuses and moves like real AWS. See the module docstring.

    Use it inside ``mock_aws()``; leaving it removes every patch (moto's state stays as it is).
    """

    def __init__(self) -> None:
        self.rds_calls: Counter[str] = Counter()
        self._stack: ExitStack | None = None

    # -- installation -------------------------------------------------------------------------------

    def __enter__(self) -> AwsGaps:
        if self._stack is not None:
            raise RuntimeError("AwsGaps is already installed")
        stack = ExitStack()
        try:
            self._install(stack)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            stack.close()

    def _install(self, stack: ExitStack) -> None:
        def wrap(owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
            stack.enter_context(mock.patch.object(owner, name, wrapper(getattr(owner, name))))

        stack.enter_context(mock.patch.object(DBCluster, "status", property(_get_status, _set_status)))
        wrap(RDSBackend, "create_db_cluster", _create_db_cluster)
        wrap(RDSBackend, "restore_db_cluster_to_point_in_time", _restore_db_cluster_to_point_in_time)
        wrap(RDSBackend, "modify_db_cluster", _modify_db_cluster)
        wrap(RDSBackend, "delete_db_cluster", _delete_db_cluster)
        wrap(RDSBackend, "create_db_instance", _create_db_instance)
        wrap(RDSBackend, "modify_db_instance", _modify_db_instance)
        wrap(RDSBackend, "delete_db_instance", _delete_db_instance)
        wrap(EventsBackend, "put_rule", _put_rule)
        wrap(EventsBackend, "put_targets", _put_targets)
        wrap(Policy, "add_statement", _add_statement)
        wrap(RDSResponse, "call_action", self._counting_call_action)

    def _counting_call_action(self, call_action: Callable[[RDSResponse], Any]) -> Callable[[RDSResponse], Any]:
        def counted(response: RDSResponse) -> Any:
            self.rds_calls[response._get_action()] += 1
            return call_action(response)

        return counted

    # -- the clock ------------------------------------------------------------------------------------

    def advance(self) -> None:
        """Move every cluster and instance, in every account and region, one step along its lifecycle.

        Instances move first, so a cluster whose last instance goes in this step goes in this step too.
        Statuses that are not transitional (``available``, ``stopped``, ``failed``,
        ``incompatible-network``...) stay as they are.
        """
        for backend in _rds_backends():
            for key, instance in list(backend.databases.items()):
                status = instance.status
                if status == DELETING:
                    del backend.databases[key]
                elif status in INSTANCE_NEXT_STATUS:
                    if status == "modifying":
                        _apply_pending_modifications(instance)
                    instance.status = INSTANCE_NEXT_STATUS[status]
            for key, cluster in list(backend.clusters.items()):
                status = cluster.status
                if status == DELETING:
                    if not _cluster_members(backend, cluster):
                        del backend.clusters[key]
                        _drop_automated_snapshots(backend, cluster)
                elif status in CLUSTER_NEXT_STATUS:
                    cluster.status = CLUSTER_NEXT_STATUS[status]

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
        moving: dict[str, str] = {}
        for backend in _rds_backends():
            for instance in backend.databases.values():
                if instance.status == DELETING or instance.status in INSTANCE_NEXT_STATUS:
                    moving[instance.db_instance_identifier] = instance.status
            for cluster in backend.clusters.values():
                if cluster.status == DELETING or cluster.status in CLUSTER_NEXT_STATUS:
                    moving[cluster.db_cluster_identifier] = cluster.status
        return moving

    def set_cluster_status(self, identifier: str, status: str) -> None:
        """Force a cluster's status, for example a terminal one such as ``incompatible-network``."""
        _find(identifier, lambda backend: backend.clusters).status = status

    def set_instance_status(self, identifier: str, status: str) -> None:
        """Force an instance's status, for example ``failed``."""
        _find(identifier, lambda backend: backend.databases).status = status


# -- helpers ------------------------------------------------------------------------------------------


def _rds_backends() -> Iterator[RDSBackend]:
    """Every RDS backend moto has created so far (one per account and region in use)."""
    for _account, _region, backend in rds_backends.iter_backends():
        yield cast(RDSBackend, backend)


def _find(identifier: str, table: Callable[[RDSBackend], MutableMapping[str, Any]]) -> Any:
    for backend in _rds_backends():
        found = table(backend).get(identifier)
        if found is not None:
            return found
    raise KeyError(identifier)


def _cluster_members(backend: RDSBackend, cluster: DBCluster) -> list[DBInstance]:
    identifier = cluster.db_cluster_identifier.lower()
    return [
        instance
        for instance in backend.databases.values()
        if (instance.db_cluster_identifier or "").lower() == identifier
    ]


def _drop_automated_snapshots(backend: RDSBackend, cluster: DBCluster) -> None:
    identifier = cluster.db_cluster_identifier.lower()
    for key, snapshot in list(backend.cluster_snapshots.items()):
        if snapshot.snapshot_type == "automated" and snapshot.db_cluster_identifier.lower() == identifier:
            del backend.cluster_snapshots[key]


def _apply_pending_modifications(instance: DBInstance) -> None:
    pending: dict[str, Any] = getattr(instance, "pending_modified_values", None) or {}
    if "DBInstanceClass" in pending:
        instance.db_instance_class = pending["DBInstanceClass"]
    instance.pending_modified_values = {}  # type: ignore[attr-defined]


def _invalid_instance_state(identifier: str, status: str, action: str) -> RDSClientError:
    return RDSClientError(
        "InvalidDBInstanceState",
        f"Instance {identifier} is in {status} state and cannot be {action}; it must be available.",
    )


def _invalid_cluster_state(identifier: str, status: str, action: str) -> InvalidDBClusterStateFault:
    return InvalidDBClusterStateFault(
        f"DB cluster {identifier} is in {status} state and cannot be {action}; it must be available."
    )


def _validation_error(violations: list[str]) -> ValidationException:
    count = len(violations)
    noun = "validation error" if count == 1 else "validation errors"
    return ValidationException(f"{count} {noun} detected: " + "; ".join(violations))


def _rule_name_violations(name: str, field: str) -> list[str]:
    violations = []
    if len(name) > RULE_NAME_MAX_LENGTH:
        violations.append(
            f"Value '{name}' at '{field}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {RULE_NAME_MAX_LENGTH}"
        )
    if not re.fullmatch(RULE_NAME_PATTERN, name):
        violations.append(
            f"Value '{name}' at '{field}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {RULE_NAME_PATTERN}"
        )
    return violations


# -- patches: each takes moto's original and returns its replacement -------------------------------------


def _get_status(cluster: DBCluster) -> str:
    status: str = cluster._status
    return status


def _set_status(cluster: DBCluster, value: str) -> None:
    cluster._status = value


def _create_db_cluster(original: Callable[[RDSBackend, dict[str, Any]], DBCluster]) -> Callable[..., DBCluster]:
    def create_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> DBCluster:
        if kwargs["db_cluster_identifier"] in backend.clusters:
            raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
        return original(backend, kwargs)

    return create_db_cluster


def _restore_db_cluster_to_point_in_time(original: Callable[..., DBCluster]) -> Callable[..., DBCluster]:
    def restore_db_cluster_to_point_in_time(backend: RDSBackend, *args: Any, **kwargs: Any) -> DBCluster:
        # moto copies every attribute of the source; these request parameters have documented defaults.
        kwargs.setdefault("tags", [])
        kwargs.setdefault("deletion_protection", False)
        kwargs.setdefault("backtrack_window", 0)
        kwargs.setdefault("copy_tags_to_snapshot", False)
        return original(backend, *args, **kwargs)

    return restore_db_cluster_to_point_in_time


def _modify_db_cluster(original: Callable[[RDSBackend, dict[str, Any]], DBCluster]) -> Callable[..., DBCluster]:
    def modify_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> DBCluster:
        cluster = backend.describe_db_clusters(db_cluster_identifier=kwargs["db_cluster_identifier"])[0]
        if cluster.status != AVAILABLE:
            raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "modified")
        kwargs["db_cluster_identifier"] = cluster.db_cluster_identifier
        changes = any(kwargs.get(name) is not None for name in CLUSTER_MODIFYING_PARAMETERS)
        original(backend, kwargs)  # returns a copy; the live cluster is what later calls see
        if changes:
            cluster.status = "modifying"
        return cluster

    return modify_db_cluster


def _delete_db_cluster(original: Callable[..., DBCluster]) -> Callable[..., DBCluster]:
    def delete_db_cluster(backend: RDSBackend, cluster_identifier: str, snapshot_name: str | None = None) -> DBCluster:
        cluster = backend.clusters.get(cluster_identifier)
        if cluster is None or cluster.deletion_protection:
            return original(backend, cluster_identifier, snapshot_name)  # moto refuses as RDS does
        if cluster.status == DELETING or cluster.status in CLUSTER_NEXT_STATUS:
            raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "deleted")
        members = _cluster_members(backend, cluster)
        if any(member.status != DELETING for member in members):
            raise DBClusterToBeDeletedHasActiveMembers()
        # Members already deleting do not block the delete: hide them from moto's own check.
        member_ids = {id(member) for member in members}
        parked = {key: db for key, db in backend.databases.items() if id(db) in member_ids}
        for key in parked:
            del backend.databases[key]
        try:
            deleted = original(backend, cluster_identifier, snapshot_name)
        finally:
            backend.databases.update(parked)
        deleted.status = DELETING
        backend.clusters[deleted.db_cluster_identifier] = deleted  # gone on a later advance()
        return deleted

    return delete_db_cluster


def _create_db_instance(original: Callable[[RDSBackend, dict[str, Any]], DBInstance]) -> Callable[..., DBInstance]:
    def create_db_instance(backend: RDSBackend, db_kwargs: dict[str, Any]) -> DBInstance:
        cluster_identifier = db_kwargs.get("db_cluster_identifier")
        if cluster_identifier is not None and db_kwargs["db_instance_identifier"] not in backend.databases:
            cluster = backend.clusters.get(cluster_identifier)
            if cluster is not None and cluster.status != AVAILABLE:
                raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "given instances")
        instance = original(backend, db_kwargs)
        instance.status = "creating"
        instance.pending_modified_values = {}  # type: ignore[attr-defined]
        return instance

    return create_db_instance


def _modify_db_instance(original: Callable[..., DBInstance]) -> Callable[..., DBInstance]:
    def modify_db_instance(backend: RDSBackend, db_instance_identifier: str, db_kwargs: Any) -> DBInstance:
        instance = backend.describe_db_instances(db_instance_identifier)[0]
        if instance.status != AVAILABLE:
            raise _invalid_instance_state(instance.db_instance_identifier, instance.status, "modified")
        pending = dict(getattr(instance, "pending_modified_values", None) or {})
        new_class = db_kwargs.get("db_instance_class")
        if new_class is not None:
            del db_kwargs["db_instance_class"]  # moto would apply it at once
            if new_class != instance.db_instance_class:
                pending["DBInstanceClass"] = new_class
        new_group = db_kwargs.get("db_parameter_group_name")
        new_group_now = new_group is not None and new_group != instance.db_parameter_group_name
        modified = original(backend, db_instance_identifier, db_kwargs)
        modified.pending_modified_values = pending  # type: ignore[attr-defined]
        if (pending and db_kwargs.get("apply_immediately")) or new_group_now:
            modified.status = "modifying"
        return modified

    return modify_db_instance


def _delete_db_instance(original: Callable[..., DBInstance]) -> Callable[..., DBInstance]:
    def delete_db_instance(backend: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> DBInstance:
        instance = backend.databases.get(db_instance_identifier)
        if instance is not None and (instance.status == DELETING or instance.status in INSTANCE_NEXT_STATUS):
            raise _invalid_instance_state(instance.db_instance_identifier, instance.status, "deleted")
        deleted = original(backend, db_instance_identifier, *args, **kwargs)
        backend.databases[deleted.db_instance_identifier] = deleted  # "deleting", gone on a later advance()
        return deleted

    return delete_db_instance


def _put_rule(original: Callable[..., Rule]) -> Callable[..., Rule]:
    def put_rule(backend: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Rule:
        violations = _rule_name_violations(name, "name")
        if violations:
            raise _validation_error(violations)
        return original(backend, name, *args, **kwargs)

    return put_rule


def _put_targets(original: Callable[..., None]) -> Callable[..., None]:
    def put_targets(
        backend: EventsBackend, name: str, event_bus_arn: str | None, targets: list[dict[str, Any]]
    ) -> None:
        violations = _rule_name_violations(name, "rule")
        for position, target in enumerate(targets, start=1):
            text = target.get("Input")
            if text is not None and len(text) > TARGET_INPUT_MAX_LENGTH:
                violations.append(
                    f"Value '{text}' at 'targets.{position}.member.input' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {TARGET_INPUT_MAX_LENGTH}"
                )
        if violations:
            raise _validation_error(violations)
        original(backend, name, event_bus_arn, targets)

    return put_targets


def _add_statement(original: Callable[..., tuple[Any, str]]) -> Callable[..., tuple[Any, str]]:
    def add_statement(policy: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        if not isinstance(policy.parent, LambdaFunction):
            return original(policy, raw, qualifier)
        statement_id = json.loads(raw).get("StatementId")
        if statement_id is not None and any(s.get("Sid") == statement_id for s in policy.statements):
            conflict = LambdaClientError(
                "ResourceConflictException",
                f"The statement id ({statement_id}) provided already exists. "
                "Please provide a new statement id, or remove the existing statement.",
            )
            conflict.code = 409
            raise conflict
        revision = policy.revision
        added = original(policy, raw, qualifier)
        document = json.dumps(policy.get_policy()["Policy"], separators=(",", ":"))
        size = len(document.encode("utf-8"))
        if size > LAMBDA_POLICY_MAX_BYTES:
            policy.statements.pop()
            policy.revision = revision
            raise LambdaClientError(
                "PolicyLengthExceededException",
                f"The final policy size ({size}) is bigger than the limit ({LAMBDA_POLICY_MAX_BYTES}).",
            )
        return added

    return add_statement
