"""Rules that make moto refuse what real AWS refuses and move RDS resources through real lifecycles.

moto's emulated AWS is more lenient than the real one in ways that matter to this project (see the section
"What the emulated AWS (moto) gets wrong" of the project reference). ``RdsRules`` patches moto's classes
while it is installed (``with RdsRules(pace): ...``); every patch is removed on exit. The patches are
global: they apply to every account and region moto emulates, in-process (``mock_aws``) and served
(``LocalAws``) alike, so only one ``RdsRules`` can be installed at a time.

When things move is a pluggable ``Pace``. Each status that RDS leaves by itself (a *stage*: ``creating``,
``backing-up``, ``modifying``, ``deleting``, ``backtracking``, ...) gets a due time when it is entered:

- ``ManualPace`` (the in-process tests): every due time is "the next step"; nothing moves until
  ``pace.advance()`` and ``RdsRules.tick()``, and then everything moves exactly one stage.
- ``WorldPace`` (``LocalAws``): the due time is the stage's duration from ``Durations`` (world seconds,
  real seconds divided by the time scale); a ticker calls ``tick()`` and every stage whose due time has
  passed ends, one after another if several have.

Lifecycles (``tick``; instances move before clusters, so a cluster whose last instance goes in a step
goes in that step too):

- Clusters (``CreateDBCluster``, restores): ``creating`` -> ``backing-up`` -> ``available``; a full-copy
  restore stays ``creating`` much longer than a copy-on-write clone. ``ModifyDBCluster`` of the port,
  security groups, parameter group (and a few more settings, see ``CLUSTER_MODIFYING_PARAMETERS``):
  ``modifying`` -> ``available``, values visible at once. ``BacktrackDBCluster``: ``backtracking`` ->
  ``available``. ``DeleteDBCluster``: ``deleting``, gone once the stage is over and no instance is left.
- Instances (``CreateDBInstance``): ``creating`` -> ``backing-up`` -> ``available`` (moto: ``available`` at
  once). ``ModifyDBInstance`` of the class keeps the old class in ``DBInstanceClass`` and the new one in
  ``PendingModifiedValues``: with ``ApplyImmediately`` the instance is ``modifying`` until the stage ends
  and applies it; without it the change waits for a maintenance window that never comes. A new DB
  parameter group makes the instance ``modifying`` too. ``DeleteDBInstance``: ``deleting``, then gone.
- A stage whose duration is 0 in ``Durations`` is left out where it is optional (``cluster_backing_up``,
  ``instance_backing_up``); ``MANUAL_DURATIONS`` leaves out the clusters' ``backing-up``.

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

Describe lag (``describe_lag``, off unless given): RDS is eventually consistent, so an event can arrive
before ``DescribeDBClusters``/``DescribeDBInstances`` show the status it announces. With a lag, a status
reached by the end of a stage is shown to Describe calls only after up to ``describe_lag`` world seconds
(drawn at random with ``rng``; with ``ManualPace``, from the next step); the rules themselves always see
the status as it is.

RDS events: each stage change sends the event RDS sends (``aurora_clone.local.events``) to the default
EventBridge bus of the resource's account and region (rules with a matching pattern deliver it to the
targets moto supports), and hands it to ``notify``.

Automated backups: moto names a cluster's automated snapshot after the cluster and the minute and never
removes it, so a cluster re-created under the same identifier within the minute fails; here a deleted
cluster's automated snapshots go with it.

EventBridge: ``PutRule`` (and the ``Rule`` of ``PutTargets``) checks the rule name (at most 64 characters
of ``[.\\-_A-Za-z0-9]``); ``PutTargets`` checks ``Input`` is at most 8192 characters (both
``ValidationException``). Rules without a pattern receive no bus events, and targets moto cannot deliver
to (Lambda, ...) are skipped instead of failing the whole ``PutEvents``; ``PutEvents`` on the default bus
is handed to ``notify`` too.

Lambda: ``AddPermission`` raises ``PolicyLengthExceededException`` when the function's resource policy
would exceed 20 KB, and ``ResourceConflictException`` for a statement id already in the policy.

RDS call count: ``rds_calls`` counts every request that reaches moto's RDS endpoint, by operation name,
refused and throttled requests included.

Threads: every patched method and ``tick`` hold ``LOCK``, so a ticker thread and a threaded server can
share moto's objects.
"""

from __future__ import annotations

import copy
import datetime
import json
import logging
import random
import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import ExitStack
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Any, Protocol, cast
from unittest import mock

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.policy import Policy
from moto.core.responses import ActionResult
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, Rule
from moto.rds.exceptions import (
    DBClusterToBeDeletedHasActiveMembers,
    InvalidDBClusterStateFault,
    InvalidParameterValue,
    RDSClientError,
)
from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from aurora_clone.clock import WorldClock
from aurora_clone.local import events as rds_events
from aurora_clone.local import orderable
from aurora_clone.local.events import RdsEventKind
from aurora_clone.local.queue_rules import install_queue_rules

LOGGER = logging.getLogger(__name__)

LOCK = threading.RLock()
"""Held by every patched method and by ``RdsRules.tick``: moto's objects are not thread-safe."""

_describing = threading.local()  # set while a Describe request is answered: it may see statuses late
DESCRIBE_ACTIONS = frozenset({"DescribeDBClusters", "DescribeDBInstances"})

MAX_CLONES_PER_FAMILY = 15
BACKTRACK_ENGINE = "aurora-mysql"
DELETING = "deleting"
AVAILABLE = "available"
BACKING_UP = "backing-up"
CREATING = "creating"
MODIFYING = "modifying"
BACKTRACKING = "backtracking"

# Transitional statuses and the status after them. "deleting" is handled apart: the resource goes.
CLUSTER_NEXT_STATUS: Mapping[str, str] = {
    CREATING: BACKING_UP,
    BACKING_UP: AVAILABLE,
    MODIFYING: AVAILABLE,
    BACKTRACKING: AVAILABLE,
    "upgrading": AVAILABLE,
    "renaming": AVAILABLE,
    "resetting-master-credentials": AVAILABLE,
    "starting": AVAILABLE,
    "stopping": "stopped",
}
INSTANCE_NEXT_STATUS: Mapping[str, str] = {
    CREATING: BACKING_UP,
    BACKING_UP: AVAILABLE,
    MODIFYING: AVAILABLE,
    "rebooting": AVAILABLE,
    "upgrading": AVAILABLE,
    "renaming": AVAILABLE,
    "configuring-enhanced-monitoring": AVAILABLE,
    "starting": AVAILABLE,
    "stopping": "stopped",
}

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


# -- durations -----------------------------------------------------------------------------------------


class Stage(StrEnum):
    """A status RDS leaves by itself; the value names its field in ``Durations``."""

    CLUSTER_CREATING = "cluster_creating"
    FULL_COPY_CREATING = "full_copy_creating"
    CLUSTER_BACKING_UP = "cluster_backing_up"
    CLUSTER_MODIFYING = "cluster_modifying"
    CLUSTER_DELETING = "cluster_deleting"
    BACKTRACKING = "backtracking"
    CLUSTER_OTHER = "cluster_other"
    INSTANCE_CREATING = "instance_creating"
    INSTANCE_BACKING_UP = "instance_backing_up"
    INSTANCE_MODIFYING = "instance_modifying"
    INSTANCE_DELETING = "instance_deleting"
    INSTANCE_OTHER = "instance_other"


@dataclass(frozen=True)
class Durations:
    """How long each stage lasts, in world seconds.

    No published figure exists for most of these; they keep the proportions reported for Aurora: a
    copy-on-write clone's cluster takes minutes, its first instance longer, a full copy far longer.
    ``spread`` is the sigma of the lognormal factor ``draw`` applies around the base value (its median).

        >>> Durations().draw(Stage.INSTANCE_CREATING)
        420.0
        >>> 200 < Durations().draw("instance_creating", random.Random(7)) < 900
        True
    """

    cluster_creating: float = 240.0
    full_copy_creating: float = 1800.0
    cluster_backing_up: float = 60.0
    cluster_modifying: float = 150.0
    cluster_deleting: float = 60.0
    backtracking: float = 120.0
    cluster_other: float = 180.0
    instance_creating: float = 420.0
    instance_backing_up: float = 60.0
    instance_modifying: float = 300.0
    instance_deleting: float = 180.0
    instance_other: float = 120.0
    spread: float = 0.3

    def base(self, kind: Stage | str) -> float:
        """The stage's base duration."""
        return float(getattr(self, Stage(kind).value))

    def draw(self, kind: Stage | str, rng: random.Random | None = None) -> float:
        """A duration for one pass through the stage: the base, or with ``rng`` a lognormal draw around it."""
        base = self.base(kind)
        if rng is None or base <= 0:
            return base
        return base * rng.lognormvariate(0.0, self.spread)


MANUAL_DURATIONS = Durations(cluster_backing_up=0.0)
"""Durations for manual stepping: clusters go ``creating`` -> ``available`` in one step."""


# -- pace ----------------------------------------------------------------------------------------------


class Pace(Protocol):
    """When stages end. Times are in the pace's own unit (steps or world seconds)."""

    def now(self) -> float: ...

    def ends(self, start: float, seconds: float) -> float:
        """When a stage that began at ``start`` and lasts ``seconds`` world seconds ends."""
        ...

    def unknown_start(self) -> float:
        """The start assumed for a stage entered behind the rules' back (moto itself, before installing)."""
        ...

    def wall_at(self, moment: float) -> datetime.datetime:
        """The world's UTC date and time at ``moment``."""
        ...


class ManualPace:
    """Every stage ends at the next ``advance()``; time counts the steps, dates are real time."""

    def __init__(self) -> None:
        self.step = 0

    def advance(self) -> None:
        self.step += 1

    def now(self) -> float:
        return float(self.step)

    def ends(self, start: float, seconds: float) -> float:
        return start + 1.0

    def unknown_start(self) -> float:
        return self.now() - 1.0

    def wall_at(self, moment: float) -> datetime.datetime:
        return datetime.datetime.now(datetime.UTC)


class WorldPace:
    """World time: the world clock's seconds since the start; dates are the world clock's (``aurora_clone.clock``)."""

    def __init__(self, time_scale: float) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.time_scale = time_scale
        self.clock = WorldClock(epoch=time.time(), scale=time_scale)

    def now(self) -> float:
        return self.clock.elapsed()

    def ends(self, start: float, seconds: float) -> float:
        return start + seconds

    def unknown_start(self) -> float:
        return self.now()

    def wall_at(self, moment: float) -> datetime.datetime:
        return self.clock.at(moment)


# -- throttling ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Throttling:
    """RDS's request limit per account and region: a bucket of ``burst`` tokens refilled at ``rate``/s."""

    burst: int = 300
    rate: float = 12.0


class TokenBuckets:
    """One token bucket per key, in real (monotonic) time; thread-safe."""

    def __init__(self, limits: Throttling, clock: Callable[[], float] = time.monotonic) -> None:
        self._limits = limits
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: tuple[str, str]) -> bool:
        """Take one token for ``key``; ``False`` when the bucket is empty."""
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(self._limits.burst), now))
            tokens = min(float(self._limits.burst), tokens + (now - last) * self._limits.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return True
            self._buckets[key] = (tokens, now)
            return False


# -- the rules -----------------------------------------------------------------------------------------


class NeverSettledError(RuntimeError):
    """Something was still transitional after the maximum number of steps."""


_installation_lock = threading.Lock()
_installed: list[RdsRules] = []


class RdsRules:
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
        self.pace = pace
        self.describe_lag = describe_lag
        self._faults: dict[str, list[tuple[int, str]]] = {}
        self.durations = durations if durations is not None else Durations()
        self.rng = rng
        self.rds_calls: Counter[str] = Counter()
        self._buckets = TokenBuckets(throttling) if throttling is not None else None
        self.throttled = 0  # requests answered ThrottlingException
        self._notify = notify
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

        stack.enter_context(mock.patch.object(DBCluster, "status", self._cluster_status_property()))
        add(DBInstance, "status", self._instance_status_property())
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
        wrap(EventsBackend, "put_rule", _locked(_put_rule))
        wrap(EventsBackend, "put_targets", _locked(_put_targets))
        wrap(EventsBackend, "remove_targets", _locked(_unchanged))
        wrap(EventsBackend, "delete_rule", _locked(_unchanged))
        wrap(EventsBackend, "put_events", self._put_events)
        wrap(Rule, "send_to_targets", _send_to_deliverable_targets)
        wrap(Policy, "add_statement", _add_statement)
        install_queue_rules(stack, self.pace, manual=isinstance(self.pace, ManualPace))

    # -- stepping -------------------------------------------------------------------------------------

    def tick(self) -> None:
        """End every stage whose due time has come, in every account and region (instances first)."""
        with LOCK:
            now = self.pace.now()
            for backend in _rds_backends():
                for key, instance in list(backend.databases.items()):
                    self._move_instance(backend, key, instance, now)
                for key, cluster in list(backend.clusters.items()):
                    self._move_cluster(backend, key, cluster, now)

    def transitional(self) -> dict[str, str]:
        """Identifiers of the clusters and instances in a transitional status, mapped to that status."""
        moving: dict[str, str] = {}
        with LOCK:
            for backend in _rds_backends():
                for instance in backend.databases.values():
                    if _instance_moving(instance.status):
                        moving[instance.db_instance_identifier] = instance.status
                for cluster in backend.clusters.values():
                    if _cluster_moving(cluster.status):
                        moving[cluster.db_cluster_identifier] = cluster.status
        return moving

    def set_cluster_status(self, identifier: str, status: str) -> None:
        """Force a cluster's status, for example a terminal one such as ``incompatible-network``."""
        with LOCK:
            _find(identifier, lambda backend: backend.clusters).status = status

    def set_instance_status(self, identifier: str, status: str) -> None:
        """Force an instance's status, for example ``failed``."""
        with LOCK:
            _find(identifier, lambda backend: backend.databases).status = status

    def _move_instance(self, backend: RDSBackend, key: str, instance: Any, now: float) -> None:
        while True:
            status: str = instance.status
            if not _instance_moving(status):
                return
            due = self._due(instance, status)
            if due > now:
                return
            if status == DELETING:
                del backend.databases[key]
                cluster = backend.clusters.get(getattr(instance, "db_cluster_identifier", None) or "")
                if cluster is not None:  # a cluster waiting for its members goes at this moment at the earliest
                    cluster._aurora_members_gone_at = max(due, getattr(cluster, "_aurora_members_gone_at", due))
                self._publish(rds_events.INSTANCE_DELETED, instance, due)
                return
            following = INSTANCE_NEXT_STATUS[status]
            if status == CREATING:
                self._publish(rds_events.INSTANCE_CREATED, instance, due)
                if self.durations.instance_backing_up <= 0:
                    following = AVAILABLE
                else:
                    self._publish(rds_events.INSTANCE_BACKUP_STARTED, instance, due)
            elif status == BACKING_UP:
                self._publish(rds_events.INSTANCE_BACKUP_FINISHED, instance, due)
            elif status == MODIFYING:
                for kind in _apply_pending_modifications(instance):
                    self._publish(kind, instance, due)
            self._enter(instance, following, due)

    def _move_cluster(self, backend: RDSBackend, key: str, cluster: Any, now: float) -> None:
        while True:
            status: str = cluster.status
            if not _cluster_moving(status):
                return
            due = self._due(cluster, status)
            if due > now:
                return
            if status == DELETING:
                if _cluster_members(backend, cluster):
                    return  # gone once its last instance is
                del backend.clusters[key]
                _drop_automated_snapshots(backend, cluster)
                gone = max(due, getattr(cluster, "_aurora_members_gone_at", due))
                self._publish(rds_events.CLUSTER_DELETED, cluster, gone)
                return
            following = CLUSTER_NEXT_STATUS[status]
            if status == CREATING:
                self._publish(rds_events.CLUSTER_CREATED, cluster, due)
                if self.durations.cluster_backing_up <= 0:
                    following = AVAILABLE
            self._enter(cluster, following, due)

    # -- scheduling -----------------------------------------------------------------------------------

    def _schedule(self, resource: Any, status: str, start: float) -> None:
        stage = _cluster_stage(resource, status) if isinstance(resource, DBCluster) else _instance_stage(status)
        if stage is None:
            resource._aurora_status = None
            resource._aurora_due = None
            return
        resource._aurora_status = status
        resource._aurora_since = start
        resource._aurora_due = self.pace.ends(start, self.durations.draw(stage, self.rng))

    def _due(self, resource: Any, status: str) -> float:
        if getattr(resource, "_aurora_status", None) != status or getattr(resource, "_aurora_due", None) is None:
            self._schedule(resource, status, self.pace.unknown_start())
        return float(resource._aurora_due)

    def _enter(self, resource: Any, status: str, start: float) -> None:
        """Put ``resource`` in ``status`` as of ``start`` (the moment the previous stage ended)."""
        if self.describe_lag > 0:
            lag = self.describe_lag * (self.rng.random() if self.rng is not None else 1.0)
            resource._aurora_shown = (self._true_status(resource), self.pace.ends(start, lag))
        if isinstance(resource, DBCluster):
            resource._status = status
        else:
            resource.__dict__["status"] = status
        self._schedule(resource, status, start)

    @staticmethod
    def _true_status(resource: Any) -> str:
        return str(resource._status if isinstance(resource, DBCluster) else resource.__dict__.get("status", AVAILABLE))

    def _shown(self, resource: Any, status: str) -> str:
        """The status a Describe call sees: the previous one until the describe lag has passed."""
        shown = getattr(resource, "_aurora_shown", None)
        if shown is not None and getattr(_describing, "active", False) and self.pace.now() < shown[1]:
            return str(shown[0])
        return status

    def _cluster_status_property(self) -> property:
        def get(cluster: Any) -> str:
            return self._shown(cluster, cluster._status)

        def put(cluster: Any, value: str) -> None:
            cluster._status = value
            cluster._aurora_shown = None  # a status set by a request shows at once
            self._schedule(cluster, value, self.pace.now())

        return property(get, put)

    def _instance_status_property(self) -> property:
        def get(instance: Any) -> str:
            return self._shown(instance, instance.__dict__.get("status", AVAILABLE))

        def put(instance: Any, value: str) -> None:
            instance.__dict__["status"] = value
            instance._aurora_shown = None  # a status set by a request shows at once
            self._schedule(instance, value, self.pace.now())

        return property(get, put)

    # -- events ---------------------------------------------------------------------------------------

    def _publish(self, kind: RdsEventKind, resource: Any, moment: float, **message_fields: str) -> None:
        identifier = (
            resource.db_cluster_identifier if isinstance(resource, DBCluster) else resource.db_instance_identifier
        )
        event = rds_events.rds_event(
            kind, arn=resource.arn, identifier=identifier, when=self.pace.wall_at(moment), **message_fields
        )
        try:
            rds_events.put_on_default_bus(event)
        except Exception:  # best effort, as in AWS: a broken target must not stop the world
            LOGGER.exception("could not deliver %s to the default bus", kind.event_id)
        if self._notify is not None:
            self._notify(event)

    def _put_events(self, original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
        def put_events(backend: EventsBackend, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            with LOCK:
                results = original(backend, entries)
                if self._notify is not None:
                    for entry, result in zip(entries, results, strict=False):
                        if "EventId" in result and _is_default_bus(entry.get("EventBusName")):
                            self._notify(self._bus_event(backend, entry, result["EventId"]))
                return results

        return put_events

    def _bus_event(self, backend: EventsBackend, entry: Mapping[str, Any], event_id: str) -> dict[str, Any]:
        when = self.pace.wall_at(self.pace.now())
        given = entry.get("Time")
        if isinstance(given, datetime.datetime):
            when = given
        elif isinstance(given, int | float):
            when = datetime.datetime.fromtimestamp(given, datetime.UTC)
        return {
            "version": "0",
            "id": event_id,
            "detail-type": entry["DetailType"],
            "source": entry["Source"],
            "account": backend.account_id,
            "time": rds_events.event_time(when),
            "region": backend.region_name,
            "resources": list(entry.get("Resources") or []),
            "detail": json.loads(entry["Detail"]),
        }

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
            with LOCK:
                _describing.active = response._get_action() in DESCRIBE_ACTIONS
                try:
                    return original(response)
                finally:
                    _describing.active = False

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
                if _cluster_moving(cluster.status):
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
                if instance is not None and _instance_moving(instance.status):
                    raise _invalid_instance_state(instance.db_instance_identifier, instance.status, "deleted")
                deleted = original(backend, db_instance_identifier, *args, **kwargs)
                backend.databases[deleted.db_instance_identifier] = deleted  # "deleting", gone later
                return deleted

        return delete_db_instance


# -- helpers ------------------------------------------------------------------------------------------


def _rds_backends() -> Iterator[RDSBackend]:
    """Every RDS backend moto has created so far (one per account and region in use)."""
    for _account, _region, backend in list(rds_backends.iter_backends()):
        yield cast(RDSBackend, backend)


def _find(identifier: str, table: Callable[[RDSBackend], MutableMapping[str, Any]]) -> Any:
    for backend in _rds_backends():
        found = table(backend).get(identifier)
        if found is not None:
            return found
    raise KeyError(identifier)


def _cluster_moving(status: str) -> bool:
    return status == DELETING or status in CLUSTER_NEXT_STATUS


def _instance_moving(status: str) -> bool:
    return status == DELETING or status in INSTANCE_NEXT_STATUS


def _cluster_stage(cluster: Any, status: str) -> Stage | None:
    if status == CREATING:
        return Stage.FULL_COPY_CREATING if getattr(cluster, "_aurora_full_copy", False) else Stage.CLUSTER_CREATING
    stages = {
        BACKING_UP: Stage.CLUSTER_BACKING_UP,
        MODIFYING: Stage.CLUSTER_MODIFYING,
        DELETING: Stage.CLUSTER_DELETING,
        BACKTRACKING: Stage.BACKTRACKING,
    }
    if status in stages:
        return stages[status]
    return Stage.CLUSTER_OTHER if status in CLUSTER_NEXT_STATUS else None


def _instance_stage(status: str) -> Stage | None:
    stages = {
        CREATING: Stage.INSTANCE_CREATING,
        BACKING_UP: Stage.INSTANCE_BACKING_UP,
        MODIFYING: Stage.INSTANCE_MODIFYING,
        DELETING: Stage.INSTANCE_DELETING,
    }
    if status in stages:
        return stages[status]
    return Stage.INSTANCE_OTHER if status in INSTANCE_NEXT_STATUS else None


def _clones_in_family(backend: RDSBackend, source: Any) -> int:
    """Copy-on-write clones in the source's family: the family's clusters that still exist, less one."""
    family = source.clone_group_id
    if not family:
        return 0
    return sum(1 for cluster in backend.clusters.values() if cluster.clone_group_id == family) - 1


def _cluster_members(backend: RDSBackend, cluster: Any) -> list[Any]:
    identifier = cluster.db_cluster_identifier.lower()
    return [
        instance
        for instance in backend.databases.values()
        if (instance.db_cluster_identifier or "").lower() == identifier
    ]


def _drop_automated_snapshots(backend: RDSBackend, cluster: Any) -> None:
    identifier = cluster.db_cluster_identifier.lower()
    for key, snapshot in list(backend.cluster_snapshots.items()):
        if snapshot.snapshot_type == "automated" and snapshot.db_cluster_identifier.lower() == identifier:
            del backend.cluster_snapshots[key]


def _apply_pending_modifications(instance: Any) -> list[RdsEventKind]:
    """Apply what a ``modifying`` stage was applying; the events that say it is done."""
    pending: dict[str, Any] = getattr(instance, "pending_modified_values", None) or {}
    if "DBInstanceClass" in pending:
        instance.db_instance_class = pending["DBInstanceClass"]
    instance.pending_modified_values = {}
    applying: list[str] = list(getattr(instance, "_aurora_applying", None) or [])
    instance._aurora_applying = []
    finished = {
        "class": rds_events.INSTANCE_CLASS_APPLIED,
        "parameter-group": rds_events.INSTANCE_PARAMETER_GROUP_APPLIED,
    }
    return [finished[item] for item in applying if item in finished]


def _utc(moment: datetime.datetime) -> datetime.datetime:
    return moment.replace(tzinfo=datetime.UTC) if moment.tzinfo is None else moment.astimezone(datetime.UTC)


def _is_default_bus(name: str | None) -> bool:
    return name is None or name == "" or name == "default" or name.endswith(":event-bus/default")


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


# -- EventBridge and Lambda patches: each takes moto's original and returns its replacement --------------


def _locked(wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[Callable[..., Any]], Any]:
    """``wrapper`` applied to moto's original, with the replacement holding ``LOCK``."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        replacement = wrapper(original)

        def locked(*args: Any, **kwargs: Any) -> Any:
            with LOCK:
                return replacement(*args, **kwargs)

        return locked

    return make


def _unchanged(original: Callable[..., Any]) -> Callable[..., Any]:
    return original


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


def _send_to_deliverable_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
        if rule.scheduled_expression and not rule.event_pattern.get_pattern():
            return  # a schedule, not a pattern: bus events never reach it
        targets = [target for target in rule.targets if rds_events.deliverable(target["Arn"])]
        if len(targets) == len(rule.targets):
            original(rule, event, transform_input)
        elif targets:
            single = copy.copy(rule)
            single.targets = targets
            original(single, event, transform_input)

    return send_to_targets


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


__all__ = [
    "LOCK",
    "MANUAL_DURATIONS",
    "MAX_CLONES_PER_FAMILY",
    "Durations",
    "ManualPace",
    "NeverSettledError",
    "Pace",
    "RdsRules",
    "Stage",
    "Throttling",
    "TokenBuckets",
    "WorldPace",
]


def _iam_auth_enabled(cluster: Any) -> bool:
    return bool(cluster.__dict__.get("enable_iam_database_authentication", cluster.iam_auth))
