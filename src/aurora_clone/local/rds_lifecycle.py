"""How RDS clusters and instances move through their statuses in time: ``RdsLifecycle``, the base of the
RDS rules (``RdsRules``), which holds each resource's stage, ends it when the pace says (``tick``) and sends
the RDS events of each change.

Lifecycles (``tick``; instances move before clusters, so a cluster whose last instance goes in a step goes
in that step too):

- Clusters (``CreateDBCluster``, restores): ``creating`` -> ``backing-up`` -> ``available``; a full-copy
  restore stays ``creating`` much longer than a copy-on-write clone. ``ModifyDBCluster`` of the port,
  security groups, parameter group (and a few more settings, see ``CLUSTER_MODIFYING_PARAMETERS`` in
  ``rds_rules``): ``modifying`` -> ``available``, values visible at once. ``BacktrackDBCluster``:
  ``backtracking`` -> ``available``. ``DeleteDBCluster``: ``deleting``, gone once the stage is over and no
  instance is left.
- Instances (``CreateDBInstance``): ``creating`` -> ``backing-up`` -> ``available`` (moto: ``available`` at
  once). ``ModifyDBInstance`` of the class keeps the old class in ``DBInstanceClass`` and the new one in
  ``PendingModifiedValues``: with ``ApplyImmediately`` the instance is ``modifying`` until the stage ends
  and applies it; without it the change waits for a maintenance window that never comes. A new DB
  parameter group makes the instance ``modifying`` too. ``DeleteDBInstance``: ``deleting``, then gone.
- A stage whose duration is 0 in ``Durations`` is left out where it is optional (``cluster_backing_up``,
  ``instance_backing_up``); ``MANUAL_DURATIONS`` leaves out the clusters' ``backing-up``.

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
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import ExitStack, contextmanager
from typing import Any, cast
from unittest import mock

from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends

from aurora_clone.local import events as rds_events
from aurora_clone.local.events import RdsEventKind
from aurora_clone.local.moto_lock import LOCK
from aurora_clone.local.pace import Durations, Pace, Stage

LOGGER = logging.getLogger(__name__)

_describing = threading.local()  # set while a Describe request is answered: it may see statuses late
DESCRIBE_ACTIONS = frozenset({"DescribeDBClusters", "DescribeDBInstances"})

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


class NeverSettledError(RuntimeError):
    """Something was still transitional after the maximum number of steps."""


@contextmanager
def answering(action: str) -> Iterator[None]:
    """While a request of ``action`` is answered: a Describe call may see statuses late (the describe lag)."""
    _describing.active = action in DESCRIBE_ACTIONS
    try:
        yield
    finally:
        _describing.active = False


class RdsLifecycle:
    """The stages of every RDS cluster and instance moto holds, ended by ``tick``. See the module docstring.

    ``notify`` receives every RDS event; it is called with ``LOCK`` held, so it must only hand the event on
    (to a queue, say).
    """

    def __init__(
        self,
        pace: Pace,
        *,
        durations: Durations | None = None,
        rng: random.Random | None = None,
        notify: Callable[[dict[str, Any]], None] | None = None,
        describe_lag: float = 0.0,
    ) -> None:
        self.pace = pace
        self.describe_lag = describe_lag
        self.durations = durations if durations is not None else Durations()
        self.rng = rng
        self._notify = notify

    def _install_statuses(self, stack: ExitStack) -> None:
        """Patch the status of moto's clusters and instances: every status set starts a stage."""
        stack.enter_context(mock.patch.object(DBCluster, "status", self._cluster_status_property()))
        stack.enter_context(mock.patch.object(DBInstance, "status", self._instance_status_property(), create=True))

    # -- stepping -------------------------------------------------------------------------------------

    def tick(self) -> None:
        """End every stage whose due time has come, in every account and region (instances first)."""
        with LOCK:
            now = self.pace.now()
            for backend in rds_backends_in_use():
                for key, instance in list(backend.databases.items()):
                    self._move_instance(backend, key, instance, now)
                for key, cluster in list(backend.clusters.items()):
                    self._move_cluster(backend, key, cluster, now)

    def transitional(self) -> dict[str, str]:
        """Identifiers of the clusters and instances in a transitional status, mapped to that status."""
        moving: dict[str, str] = {}
        with LOCK:
            for backend in rds_backends_in_use():
                for instance in backend.databases.values():
                    if instance_moving(instance.status):
                        moving[instance.db_instance_identifier] = instance.status
                for cluster in backend.clusters.values():
                    if cluster_moving(cluster.status):
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
            if not instance_moving(status):
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
            if not cluster_moving(status):
                return
            due = self._due(cluster, status)
            if due > now:
                return
            if status == DELETING:
                if cluster_members(backend, cluster):
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


# -- moto's RDS state ---------------------------------------------------------------------------------


def rds_backends_in_use() -> Iterator[RDSBackend]:
    """Every RDS backend moto has created so far (one per account and region in use)."""
    for _account, _region, backend in list(rds_backends.iter_backends()):
        yield cast(RDSBackend, backend)


def _find(identifier: str, table: Callable[[RDSBackend], MutableMapping[str, Any]]) -> Any:
    for backend in rds_backends_in_use():
        found = table(backend).get(identifier)
        if found is not None:
            return found
    raise KeyError(identifier)


def cluster_moving(status: str) -> bool:
    return status == DELETING or status in CLUSTER_NEXT_STATUS


def instance_moving(status: str) -> bool:
    return status == DELETING or status in INSTANCE_NEXT_STATUS


def cluster_members(backend: RDSBackend, cluster: Any) -> list[Any]:
    identifier = cluster.db_cluster_identifier.lower()
    return [
        instance
        for instance in backend.databases.values()
        if (instance.db_cluster_identifier or "").lower() == identifier
    ]


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
