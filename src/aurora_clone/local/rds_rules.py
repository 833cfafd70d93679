"""The RDS rules of the local world, and ``RdsRules``: the one installer of every rule (RDS, EventBridge,
Lambda, SQS).

moto's emulated AWS is more lenient than the real one in ways that matter to this project (see the section
"What the emulated AWS (moto) gets wrong" of the project reference). ``RdsRules`` patches moto's classes
while it is installed (``with RdsRules(pace): ...``); every patch is removed on exit. The patches are
global: they apply to every account and region moto emulates, in-process (``mock_aws``) and served
(``LocalAws``) alike, so only one ``RdsRules`` can be installed at a time. Besides the rules of RDS requests
below, it installs the RDS lifecycles of its base class (``rds_lifecycle``; when stages end is the ``Pace``,
``aurora_clone.local.pace``) and the rules of ``eventbridge_rules``, ``lambda_rules`` and ``queue_rules``.

Refusals (error codes of the botocore RDS model):

- ``CreateDBCluster`` / ``RestoreDBClusterToPointInTime`` on an existing identifier:
  ``DBClusterAlreadyExistsFault`` (moto overwrites). ``CreateDBInstance`` into a cluster that is not
  ``available``: ``InvalidDBClusterStateFault``. ``DeleteDBInstance`` of a busy instance:
  ``InvalidDBInstanceState``. ``DeleteDBCluster`` of a busy cluster: ``InvalidDBClusterStateFault``, of a
  cluster with instances that are not ``deleting``: ``InvalidDBClusterStateFault``, of a protected one:
  ``InvalidParameterCombination`` (moto). ``ModifyDBInstance`` / ``ModifyDBCluster`` of something not
  ``available``: ``InvalidDBInstanceState`` / ``InvalidDBClusterStateFault`` (and
  ``DBClusterNotFoundFault`` instead of moto's internal error for an unknown cluster).
- ``BacktrackWindow`` above 259200 s or on a non-MySQL engine at create or restore:
  ``InvalidParameterValue`` (moto).
- ``CreateDBInstance`` of a class the cluster's engine version does not offer: ``InvalidParameterCombination``;
  ``DescribeOrderableDBInstanceOptions`` answers the Aurora engines from the table in ``local.orderable``, which
  also gives new clusters a current default engine version.

Clones (``RestoreDBClusterToPointInTime``):

- Request parameters with a documented default get it when omitted instead of moto's copy of the
  source: ``Tags`` (the source's tags are not copied), ``DeletionProtection`` (off), ``BacktrackWindow``
  (0), ``CopyTagsToSnapshot`` (off).
- ``RestoreType=copy-on-write`` puts the clone in the source's clone family: both carry the same
  ``CloneGroupId`` (a UUID given at the family's first clone and kept). A family holds at most 15
  clones (``MAX_CLONES_PER_FAMILY``, clusters that still exist); the next copy-on-write restore silently
  makes a full copy, as does a restore without ``RestoreType``: no ``CloneGroupId`` (a new family once it
  is cloned), the long ``full_copy_creating`` stage, and nothing in the response says so.

Backtrack (``BacktrackDBCluster``, which moto does not implement): answered with the model's
``DBClusterBacktrack``. Refused with ``InvalidParameterValue`` for an engine other than ``aurora-mysql``,
for a cluster whose ``BacktrackWindow`` is 0, for a time in the future and for a time before the
``EarliestBacktrackTime`` (the cluster's creation, or now minus the window, whichever is later; with
``UseEarliestTimeOnPointInTimeUnavailable`` the earliest time is used instead); with
``InvalidDBClusterStateFault`` when the cluster is not ``available``. ``DescribeDBClusters`` reports
``EarliestBacktrackTime`` for clusters with a window.

Throttling (``Throttling``, off unless given): one token bucket per account and region over every RDS
request (a burst of 300, 12 requests/s in real time); beyond it the request is answered HTTP 400
``ThrottlingException`` "Rate exceeded", which the SDKs retry.

RDS call count: ``rds_calls`` counts every request that reaches moto's RDS endpoint, by operation name,
refused and throttled requests included.
"""

from __future__ import annotations

import datetime
import random
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from types import TracebackType
from typing import Any
from unittest import mock

from moto.core.responses import ActionResult
from moto.rds.exceptions import (
    DBClusterToBeDeletedHasActiveMembers,
    InvalidDBClusterStateFault,
    InvalidParameterValue,
    RDSClientError,
)
from moto.rds.models import DBCluster, RDSBackend
from moto.rds.responses import RDSResponse

from aurora_clone.local import events as rds_events
from aurora_clone.local import orderable
from aurora_clone.local.eventbridge_rules import install_eventbridge_rules
from aurora_clone.local.lambda_rules import install_lambda_rules
from aurora_clone.local.moto_lock import LOCK
from aurora_clone.local.pace import Durations, ManualPace, Pace
from aurora_clone.local.queue_rules import install_queue_rules
from aurora_clone.local.rds_lifecycle import (
    AVAILABLE,
    BACKTRACKING,
    CREATING,
    DELETING,
    MODIFYING,
    RdsLifecycle,
    answering,
    cluster_members,
    cluster_moving,
    instance_moving,
)
from aurora_clone.local.throttling import Throttling, TokenBuckets

MAX_CLONES_PER_FAMILY = 15
BACKTRACK_ENGINE = "aurora-mysql"

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

FAULT_BODY = (
    '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>{kind}</Type>'
    "<Code>{code}</Code><Message>{message}</Message></Error>"
    "<RequestId>{request_id}</RequestId></ErrorResponse>"
)
THROTTLED_BODY = (
    '<ErrorResponse xmlns="http://rds.amazonaws.com/doc/2014-10-31/"><Error><Type>Sender</Type>'
    "<Code>ThrottlingException</Code><Message>Rate exceeded</Message></Error>"
    "<RequestId>{request_id}</RequestId></ErrorResponse>"
)

_installation_lock = threading.Lock()
_installed: list[RdsRules] = []


class RdsRules(RdsLifecycle):
    """The rules, installed as patches of moto's classes while the context is entered. See the module doc.

    ``notify`` receives every event put on a default bus (RDS events and ``PutEvents``); it is called with
    ``LOCK`` held, so it must only hand the event on (to a queue, say).
    """

    def __init__(
        self,
        pace: Pace,
        *,
        durations: Durations | None = None,
        rng: random.Random | None = None,
        throttling: Throttling | None = None,
        notify: Callable[[dict[str, Any]], None] | None = None,
        describe_lag: float = 0.0,
    ) -> None:
        super().__init__(pace, durations=durations, rng=rng, notify=notify, describe_lag=describe_lag)
        self._faults: dict[str, list[tuple[int, str]]] = {}
        self.rds_calls: Counter[str] = Counter()
        self._buckets = TokenBuckets(throttling) if throttling is not None else None
        self.throttled = 0  # requests answered ThrottlingException
        self._stack: ExitStack | None = None

    # -- installation ---------------------------------------------------------------------------------

    def __enter__(self) -> RdsRules:
        with _installation_lock:
            if _installed:
                raise RuntimeError("RdsRules are already installed; moto's classes can carry one set at a time")
            stack = ExitStack()
            try:
                self._install(stack)
            except BaseException:
                stack.close()
                raise
            self._stack = stack
            _installed.append(self)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        with _installation_lock:
            stack, self._stack = self._stack, None
            if stack is not None:
                with LOCK:
                    stack.close()
                _installed.remove(self)

    @property
    def installed(self) -> bool:
        return self._stack is not None

    def _install(self, stack: ExitStack) -> None:
        def wrap(owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
            stack.enter_context(mock.patch.object(owner, name, wrapper(getattr(owner, name))))

        def add(owner: type, name: str, value: Any) -> None:
            stack.enter_context(mock.patch.object(owner, name, value, create=True))

        self._install_statuses(stack)
        add(DBCluster, "clone_group_id", None)
        add(DBCluster, "earliest_backtrack_time", property(self._earliest_backtrack_time))
        # moto applies EnableIAMDatabaseAuthentication at creation only; RDS also reports what a
        # ModifyDBCluster set (moto stores that as enable_iam_database_authentication).
        add(DBCluster, "iam_database_authentication_enabled", property(_iam_auth_enabled))
        wrap(RDSBackend, "create_db_cluster", self._create_db_cluster)
        wrap(RDSBackend, "restore_db_cluster_to_point_in_time", self._restore_db_cluster_to_point_in_time)
        wrap(RDSBackend, "modify_db_cluster", self._modify_db_cluster)
        wrap(RDSBackend, "delete_db_cluster", self._delete_db_cluster)
        wrap(RDSBackend, "create_db_instance", self._create_db_instance)
        # What RDS offers per Aurora engine version, and a current default version (see local.orderable).
        wrap(RDSBackend, "describe_orderable_db_instance_options", orderable.describe_orderable_db_instance_options)
        add(
            DBCluster,
            "default_engine_version",
            staticmethod(orderable.default_engine_version(DBCluster.default_engine_version)),
        )
        wrap(RDSBackend, "modify_db_instance", self._modify_db_instance)
        wrap(RDSBackend, "delete_db_instance", self._delete_db_instance)
        wrap(RDSResponse, "call_action", self._call_action)
        add(RDSResponse, "backtrack_db_cluster", self._backtrack_method())
        install_eventbridge_rules(stack, self.pace, self._notify)
        install_lambda_rules(stack)
        install_queue_rules(stack, self.pace, manual=isinstance(self.pace, ManualPace))

    # -- RDS endpoint ---------------------------------------------------------------------------------

    def fail_next(self, action: str, times: int, status: int = 400, code: str = "ThrottlingException") -> None:
        """Answer the next ``times`` requests of ``action`` with an error response (HTTP ``status``, ``code``),
        as RDS does when it throttles (400 ThrottlingException) or fails (500 InternalFailure, 503)."""
        with LOCK:
            self._faults.setdefault(action, []).extend([(status, code)] * times)

    def _injected_fault(self, action: str) -> tuple[int, dict[str, str], str] | None:
        with LOCK:
            faults = self._faults.get(action)
            if not faults:
                return None
            status, code = faults.pop(0)
        request_id = str(uuid.uuid4())
        body = FAULT_BODY.format(
            kind="Sender" if status < 500 else "Receiver", code=code, message=code, request_id=request_id
        )
        return status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body

    def _call_action(self, original: Callable[[RDSResponse], Any]) -> Callable[[RDSResponse], Any]:
        def call_action(response: RDSResponse) -> Any:
            with LOCK:
                self.rds_calls[response._get_action()] += 1
            fault = self._injected_fault(response._get_action())
            if fault is not None:
                return fault
            if self._buckets is not None and not self._buckets.take((response.current_account, response.region)):
                with LOCK:
                    self.throttled += 1
                request_id = str(uuid.uuid4())
                headers = {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}
                return 400, headers, THROTTLED_BODY.format(request_id=request_id)
            with LOCK, answering(response._get_action()):
                return original(response)

        return call_action

    def _backtrack_method(self) -> Callable[[RDSResponse], ActionResult]:
        """``RDSResponse.backtrack_db_cluster``: a plain function, as moto looks actions up among functions."""

        def backtrack_db_cluster(response: RDSResponse) -> ActionResult:
            params = response.params
            with LOCK:
                result = self._backtrack(
                    response.backend,
                    identifier=params.get("db_cluster_identifier"),
                    target=params.get("backtrack_to"),
                    use_earliest=bool(params.get("use_earliest_time_on_point_in_time_unavailable")),
                )
            return ActionResult(result)

        return backtrack_db_cluster

    def _backtrack(
        self, backend: RDSBackend, *, identifier: str, target: datetime.datetime | None, use_earliest: bool
    ) -> dict[str, Any]:
        cluster = backend.describe_db_clusters(db_cluster_identifier=identifier)[0]
        if cluster.engine != BACKTRACK_ENGINE:
            raise InvalidParameterValue(f"Backtrack is not enabled for the {cluster.engine} engine.")
        if not cluster.backtrack_window:
            raise InvalidParameterValue(
                f"Backtrack is not enabled for DB cluster {cluster.db_cluster_identifier}: "
                "it can only be enabled when the cluster is created."
            )
        if cluster.status != AVAILABLE:
            raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "backtracked")
        if target is None:
            raise InvalidParameterValue("The parameter BacktrackTo must be provided.")
        now = self.pace.wall_at(self.pace.now())
        wanted = _utc(target)
        if wanted > now:
            raise InvalidParameterValue("The BacktrackTo time can't be in the future.")
        earliest = self._earliest_backtrack_time(cluster)
        if earliest is not None and wanted < earliest:
            if not use_earliest:
                raise InvalidParameterValue(
                    f"The BacktrackTo time {wanted.isoformat()} is before the earliest backtrack time "
                    f"{earliest.isoformat()} of DB cluster {cluster.db_cluster_identifier}."
                )
            wanted = earliest
        cluster.status = BACKTRACKING
        return {
            "DBClusterIdentifier": cluster.db_cluster_identifier,
            "BacktrackIdentifier": str(uuid.uuid4()),
            "BacktrackTo": wanted,
            "BacktrackedFrom": now,
            "BacktrackRequestCreationTime": now,
            "Status": "pending",
        }

    def _earliest_backtrack_time(self, cluster: Any) -> datetime.datetime | None:
        window = getattr(cluster, "backtrack_window", 0) or 0
        if not window:
            return None
        now = self.pace.wall_at(self.pace.now())
        return max(_utc(cluster.cluster_create_time), now - datetime.timedelta(seconds=window))

    # -- RDS backend patches: each takes moto's original and returns its replacement -------------------

    def _create_db_cluster(self, original: Callable[[RDSBackend, dict[str, Any]], Any]) -> Callable[..., Any]:
        def create_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> Any:
            with LOCK:
                identifier = kwargs["db_cluster_identifier"]
                if identifier in backend.clusters or str(identifier).lower() in backend.clusters:
                    raise RDSClientError("DBClusterAlreadyExistsFault", "DB Cluster already exists")
                cluster = original(backend, kwargs)
                created = self.pace.now()
                cluster.cluster_create_time = self.pace.wall_at(created)
                self._enter(cluster, CREATING, created)
                return cluster

        return create_db_cluster

    def _restore_db_cluster_to_point_in_time(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def restore_db_cluster_to_point_in_time(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
            with LOCK:
                # moto copies every attribute of the source; these request parameters have documented defaults.
                kwargs.setdefault("tags", [])
                kwargs.setdefault("deletion_protection", False)
                kwargs.setdefault("backtrack_window", 0)
                kwargs.setdefault("copy_tags_to_snapshot", False)
                source_id = kwargs["source_db_cluster_identifier"] if len(args) < 2 else args[1]
                source = backend.describe_db_clusters(db_cluster_identifier=source_id)[0]
                restore_type = (kwargs.get("restore_type") if len(args) < 3 else args[2]) or "full-copy"
                copy_on_write = (
                    restore_type == "copy-on-write" and _clones_in_family(backend, source) < MAX_CLONES_PER_FAMILY
                )
                cluster = original(backend, *args, **kwargs)
                if copy_on_write:
                    family = source.clone_group_id or str(uuid.uuid4())
                    source.clone_group_id = family
                    cluster.clone_group_id = family
                else:  # a full copy: a family of its own once it is cloned, and a long creation
                    cluster.clone_group_id = None
                    cluster._aurora_full_copy = True
                    self._enter(cluster, CREATING, cluster._aurora_since)
                return cluster

        return restore_db_cluster_to_point_in_time

    def _modify_db_cluster(self, original: Callable[[RDSBackend, dict[str, Any]], Any]) -> Callable[..., Any]:
        def modify_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> Any:
            with LOCK:
                cluster = backend.describe_db_clusters(db_cluster_identifier=kwargs["db_cluster_identifier"])[0]
                if cluster.status != AVAILABLE:
                    raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "modified")
                kwargs["db_cluster_identifier"] = cluster.db_cluster_identifier
                changes = any(kwargs.get(name) is not None for name in CLUSTER_MODIFYING_PARAMETERS)
                original(backend, kwargs)  # returns a copy; the live cluster is what later calls see
                if changes:
                    cluster.status = MODIFYING
                return cluster

        return modify_db_cluster

    def _delete_db_cluster(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_db_cluster(backend: RDSBackend, cluster_identifier: str, snapshot_name: str | None = None) -> Any:
            with LOCK:
                cluster = backend.clusters.get(cluster_identifier)
                if cluster is None or cluster.deletion_protection:
                    return original(backend, cluster_identifier, snapshot_name)  # moto refuses as RDS does
                if cluster_moving(cluster.status):
                    raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "deleted")
                members = cluster_members(backend, cluster)
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
                backend.clusters[deleted.db_cluster_identifier] = deleted  # gone when the stage is over
                return deleted

        return delete_db_cluster

    def _create_db_instance(self, original: Callable[[RDSBackend, dict[str, Any]], Any]) -> Callable[..., Any]:
        def create_db_instance(backend: RDSBackend, db_kwargs: dict[str, Any]) -> Any:
            with LOCK:
                cluster_identifier = db_kwargs.get("db_cluster_identifier")
                if cluster_identifier is not None and db_kwargs["db_instance_identifier"] not in backend.databases:
                    cluster = backend.clusters.get(cluster_identifier)
                    if cluster is not None and cluster.status != AVAILABLE:
                        raise _invalid_cluster_state(cluster.db_cluster_identifier, cluster.status, "given instances")
                    if cluster is not None:
                        orderable.refuse_unoffered_class(
                            cluster.engine, cluster.engine_version, db_kwargs.get("db_instance_class")
                        )
                instance = original(backend, db_kwargs)
                created = self.pace.now()
                instance.instance_create_time = self.pace.wall_at(created)
                self._enter(instance, CREATING, created)
                instance.pending_modified_values = {}
                instance._aurora_applying = []
                return instance

        return create_db_instance

    def _modify_db_instance(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def modify_db_instance(backend: RDSBackend, db_instance_identifier: str, db_kwargs: Any) -> Any:
            with LOCK:
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
                class_now = bool(pending) and bool(db_kwargs.get("apply_immediately"))
                modified = original(backend, db_instance_identifier, db_kwargs)
                modified.pending_modified_values = pending
                if class_now or new_group_now:
                    applying: list[str] = []
                    if class_now and "DBInstanceClass" in pending:
                        applying.append("class")
                        self._publish(rds_events.INSTANCE_CLASS_APPLYING, modified, self.pace.now())
                    if new_group_now:
                        applying.append("parameter-group")
                        self._publish(
                            rds_events.INSTANCE_PARAMETER_GROUP_CHANGED, modified, self.pace.now(), name=str(new_group)
                        )
                    modified._aurora_applying = applying
                    modified.status = MODIFYING
                return modified

        return modify_db_instance

    def _delete_db_instance(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def delete_db_instance(backend: RDSBackend, db_instance_identifier: str, *args: Any, **kwargs: Any) -> Any:
            with LOCK:
                instance = backend.databases.get(db_instance_identifier)
                if instance is not None and instance_moving(instance.status):
                    raise _invalid_instance_state(instance.db_instance_identifier, instance.status, "deleted")
                deleted = original(backend, db_instance_identifier, *args, **kwargs)
                backend.databases[deleted.db_instance_identifier] = deleted  # "deleting", gone later
                return deleted

        return delete_db_instance


# -- helpers ------------------------------------------------------------------------------------------


def _clones_in_family(backend: RDSBackend, source: Any) -> int:
    """Copy-on-write clones in the source's family: the family's clusters that still exist, less one."""
    family = source.clone_group_id
    if not family:
        return 0
    return sum(1 for cluster in backend.clusters.values() if cluster.clone_group_id == family) - 1


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)


def _invalid_instance_state(identifier: str, status: str, action: str) -> RDSClientError:
    return RDSClientError(
        "InvalidDBInstanceState",
        f"Instance {identifier} is in {status} state and cannot be {action}; it must be available.",
    )


def _invalid_cluster_state(identifier: str, status: str, action: str) -> InvalidDBClusterStateFault:
    return InvalidDBClusterStateFault(
        f"DB cluster {identifier} is in {status} state and cannot be {action}; it must be available."
    )


def _iam_auth_enabled(cluster: Any) -> bool:
    return bool(cluster.__dict__.get("enable_iam_database_authentication", cluster.iam_auth))
