"""Running a pool: read the pool document, gather the snapshot through the RDS gateway, plan (pure, in
``aurora_clone.pool``), then act on the plan, never waiting.

Copies are full copies of the source (``RestoreType=full-copy``) with names derived from the source, the
run's data time to the minute and a number, so two runs that overlap on the same deficit ask for the same
names and RDS refuses the second (``DBClusterAlreadyExistsFault``, taken as "already there"). A copy is
restored without instances; a later run, seeing it ``available`` without one, adds its writer. Obsolete
copies lose their instances first and their cluster once it has none, one step per run.

Nothing here touches a cluster that lacks this tool's managed-by tag and a copy-of tag naming the pool's
source, and the tool's own record of making it as that copy (the ledger, written before each restore): both
are read again right before each create-instance and delete call, and the snapshot the plan is made from keeps
the tool's tags only on clusters the ledger names (``aurora_clone.ledger``). The RDS actions
themselves go through the one executor (``aurora_clone.actions``), as the resource's do.

    run = run_pool(policy, rds, now)   # = carry_out(plan_pool(policy, gather(rds), now), rds, now, logger)
    run.result.created, run.result.finished, run.result.deleted, run.result.errors
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools import Logger
from botocore.exceptions import BotoCoreError, ClientError

from aurora_clone.actions import ActionExecutor
from aurora_clone.aws_clients import aws_client
from aurora_clone.aws_errors import error_code
from aurora_clone.changes import resolve_desired
from aurora_clone.clone_state import ClusterView
from aurora_clone.ledger import trusted_clusters
from aurora_clone.logs import SERVICE, AnyLogger
from aurora_clone.naming import DEFAULT_CLUSTER_ID_PREFIX, MAX_IDENTIFIER, instance_id, short_hash
from aurora_clone.ownership import CLONED_FROM_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, SOURCE_TAG, WARM_POOL_TAG
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG, Snapshot
from aurora_clone.pool.plan import PoolPlan, PoolPolicy, free_slots_now, plan_pool
from aurora_clone.pool.select import SelectionPolicy, choose_clone_source
from aurora_clone.pool.slots import has_live_clones, slots_used
from aurora_clone.pool.warm import (
    WarmMember,
    WarmPlan,
    WarmShape,
    plan_warm,
    shape_written,
)
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import (
    Act,
    Broken,
    CreateInstance,
    DeleteCluster,
    DeleteInstance,
    Ready,
    Wait,
    plan_convergence,
)
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore
from aurora_clone.settings import settings
from aurora_clone.slot_lock import SlotLock, SlotLockBusyError
from aurora_clone.timespec import format_timestamp

logger = Logger(service=SERVICE, child=True)

_INSTANCE_ROOM = 4  # keeps "<copy>-1" within 63 characters, so the writer's name stays readable


@dataclass(frozen=True)
class RunResult:
    """What one run did for one pool.

    ``created``: copies whose restore this run requested. ``finished``: copies that got their writer
    instance. ``deleted``: copies whose cluster delete this run requested; ``instances_deleted``: instances
    of obsolete copies this run started deleting (their cluster goes in a later run). ``errors``: one
    sentence per action that failed; the other actions went ahead.
    """

    created: tuple[str, ...] = ()
    deleted: tuple[str, ...] = ()
    finished: tuple[str, ...] = ()
    errors: tuple[str, ...] = ()
    instances_deleted: tuple[str, ...] = ()
    warm_made: tuple[str, ...] = ()
    warm_ready: tuple[str, ...] = ()
    warm_deleted: tuple[str, ...] = ()


def gather(rds: RdsGateway, store: RequestStore | None = None) -> Snapshot:
    """Every cluster of the account and Region, as the pool decides on them: the tool's tags kept only on
    the clusters its ledger names."""
    return trusted_clusters(rds, store or RequestStore()).snapshot


def copy_identifier(
    source_id: str, data_time: datetime, number: int, prefix: str = DEFAULT_CLUSTER_ID_PREFIX, kind: str = "copy"
) -> str:
    """The name of the ``number``-th copy of ``source_id`` made by a run whose data time is ``data_time``
    (``kind`` ``warm-<shape>`` for a warm clone).

    The same source, minute and number give the same name; a source too long for the suffix is shortened
    and a hash of it added, so two long sources never share names.

    >>> copy_identifier("prod-db", datetime(2026, 11, 22, 9, 55, 41, tzinfo=UTC), 1)
    'aurora-clone-prod-db-copy-202611220955-1'
    >>> copy_identifier("prod-db", datetime(2026, 11, 22, 9, 55, tzinfo=UTC), 2, kind="warm-ci")
    'aurora-clone-prod-db-warm-ci-202611220955-2'
    >>> len(copy_identifier("a" * 63, datetime(2026, 11, 22, 9, 55, tzinfo=UTC), 2))
    59
    """
    suffix = f"-{kind}-{data_time.astimezone(UTC):%Y%m%d%H%M}-{number}"
    stem = prefix + source_id.lower()
    room = MAX_IDENTIFIER - _INSTANCE_ROOM - len(suffix)
    if len(stem) > room:
        stem = f"{stem[: room - 7].rstrip('-')}-{short_hash(source_id.lower(), length=6)}"
    return stem + suffix


def copy_tags(source_id: str, data_time: datetime) -> dict[str, str]:
    """The tags on every copy: this tool's, the source it copies, and when its data was taken."""
    return {
        MANAGED_BY_TAG: MANAGED_BY_VALUE,
        SOURCE_TAG: source_id,
        COPY_OF_TAG: source_id,
        DATA_TIME_TAG: format_timestamp(data_time),
    }


def is_pool_copy(tags: Mapping[str, str], source_id: str) -> bool:
    """True when ``tags`` say this tool made the cluster as a copy of ``source_id``."""
    return tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE and tags.get(COPY_OF_TAG, "").lower() == source_id.lower()


def carry_out(
    plan: PoolPlan, rds: RdsGateway, now: datetime, logger: AnyLogger, store: RequestStore | None = None
) -> RunResult:
    """Create the copies the plan asks for, add writers to finished copies, step obsolete copies' deletion.

    Returns at once: nothing waits for RDS. With ``plan.dry_run`` every action is only logged. A failed
    action is recorded in ``errors`` and the others still run.
    """
    if plan.dry_run:
        for action in plan.actions:
            logger.info("Dry run: not carried out", extra={"source": plan.source_id, "action": action})
        return RunResult()
    run = _Run(plan, rds, now, logger, store or RequestStore())
    if plan.copies_to_create or plan.copies_to_finish:
        run.fetch_source()
    run.create_copies()
    run.finish_copies()
    run.delete_copies()
    return RunResult(
        created=tuple(run.created),
        deleted=tuple(run.deleted),
        finished=tuple(run.finished),
        errors=tuple(run.errors),
        instances_deleted=tuple(run.instances_deleted),
    )


class _Actions:
    """What one run did and what failed (a sentence per failed action; the other actions went ahead)."""

    failure_message = "Pool action failed"

    def __init__(self, source_id: str, logger: AnyLogger) -> None:
        self.source_id = source_id
        self.logger = logger
        self.deleted: list[str] = []
        self.instances_deleted: list[str] = []
        self.errors: list[str] = []

    def _error(self, text: str) -> None:
        self.errors.append(text)
        self.logger.error(self.failure_message, extra={"source": self.source_id, "error": text})

    def _count_deletions(self, step: Act, cluster_id: str) -> None:
        """Record the deletes a teardown step asked RDS for."""
        for action in step.actions:
            if isinstance(action, DeleteInstance):
                self.instances_deleted.append(action.identifier)
            elif isinstance(action, DeleteCluster):
                self.deleted.append(cluster_id)


class _Run(_Actions):
    """One carrying out of one plan; collects what it did and what failed."""

    def __init__(self, plan: PoolPlan, rds: RdsGateway, now: datetime, logger: AnyLogger, store: RequestStore) -> None:
        super().__init__(plan.source_id, logger)
        self.plan = plan
        self.rds = rds
        self.store = store
        self.prefix = settings.cluster_id_prefix
        self.executor = ActionExecutor(rds, store)
        self.now = now
        self.source: ClusterView | None = None
        self.created: list[str] = []
        self.finished: list[str] = []

    def fetch_source(self) -> None:
        source_id = self.plan.source_id
        try:
            self.source = self.rds.describe_cluster(source_id)
        except RdsError as error:
            self._error(f"Could not read the source '{source_id}': {error}")
            return
        if self.source is None:
            self._error(f"The source '{source_id}' no longer exists; no copy made or finished.")

    # -- create -----------------------------------------------------------------------------------------

    def create_copies(self) -> None:
        source = self.source
        if not self.plan.copies_to_create or source is None:
            return
        if source.status != "available":
            self._error(f"The source '{source.identifier}' is '{source.status}'; no copy made.")
            return
        taken = {identifier.lower() for identifier in self.plan.copies}
        number = 0
        for _ in range(self.plan.copies_to_create):
            number += 1
            while copy_identifier(source.identifier, self.now, number, self.prefix) in taken:
                number += 1
            self._create_copy(source, copy_identifier(source.identifier, self.now, number, self.prefix))

    def _recorded_copy(self, copy_id: str) -> bool:
        """True when the ledger says this tool made ``copy_id`` as a copy of the pool's source."""
        made = self.store.made(copy_id)
        return made is not None and made.is_copy_of(self.plan.source_id)

    def _create_copy(self, source: ClusterView, copy_id: str) -> None:
        existing = self.store.made(copy_id)
        if existing is not None and not existing.is_copy_of(self.plan.source_id):
            self._error(f"'{copy_id}' is recorded as made for something else; no copy made in its place.")
            return
        recorded_before = existing is not None
        if existing is None:
            made = MadeRecord(copy_id, "copy", source=self.plan.source_id, made_at=self.now.timestamp())
            conflict = self.store.record_made(made)
            if conflict is not None and not conflict.is_copy_of(self.plan.source_id):
                self._error(f"'{copy_id}' was just recorded as made for something else; no copy made in its place.")
                return
            recorded_before = conflict is not None  # another run recorded this very copy a moment ago
        try:
            self.rds.restore_clone(
                cluster_id=copy_id,
                source=source.identifier,
                tags=copy_tags(self.plan.source_id, self.now),
                subnet_group=source.subnet_group,
                security_groups=source.vpc_security_group_ids or None,
                cluster_parameter_group=source.parameter_group,
                port=source.port or None,
                full_copy=True,
                # A db.serverless writer can only join a cluster with Serverless v2 capacities.
                serverless_v2_capacity=source.serverless_v2_capacity,
            )
        except RdsError as error:
            if error.code == "DBClusterAlreadyExistsFault":
                self._already_there(copy_id, recorded_before=recorded_before)
            else:
                if not error.transient:
                    self.store.forget_made(copy_id)  # nothing was made
                self._error(f"Could not create the copy '{copy_id}' of '{source.identifier}': {error}")
            return
        self.created.append(copy_id)
        self.logger.info(
            "Pool copy requested",
            extra={"source": self.plan.source_id, "copy": copy_id, "data_time": format_timestamp(self.now)},
        )

    def _already_there(self, copy_id: str, *, recorded_before: bool) -> None:
        """Another run asked for this very copy first (it recorded it before this run looked); fine if it is
        ours, an error if someone else's. A cluster that existed before anyone recorded it is someone else's."""
        try:
            existing = self.rds.describe_cluster(copy_id)
        except RdsError as error:
            self._error(f"The copy '{copy_id}' already exists and could not be read: {error}")
            return
        if not recorded_before:
            self.store.forget_made(copy_id)
        elif existing is not None and is_pool_copy(existing.tags, self.plan.source_id):
            self.logger.info(
                "Pool copy already requested by another run", extra={"source": self.plan.source_id, "copy": copy_id}
            )
            return
        self._error(
            f"A DB cluster named '{copy_id}' already exists and is not a copy of '{self.plan.source_id}' made by "
            "this tool; no copy made in its place."
        )

    # -- finish -----------------------------------------------------------------------------------------

    def finish_copies(self) -> None:
        source = self.source
        if not self.plan.copies_to_finish or source is None:
            return
        template = source.writer or (source.instances[0] if source.instances else None)
        if template is None:
            self._error(f"The source '{source.identifier}' has no instance whose class a copy's writer could take.")
            return
        for copy_id in self.plan.copies_to_finish:
            try:
                self._finish_copy(copy_id, template.instance_class, template.parameter_group)
            except RdsError as error:
                if error.code == "DBInstanceAlreadyExists":
                    self.logger.info(
                        "Pool copy writer already requested by another run",
                        extra={"source": self.plan.source_id, "copy": copy_id},
                    )
                else:
                    self._error(f"Could not add a writer instance to the copy '{copy_id}': {error}")

    def _finish_copy(self, copy_id: str, instance_class: str, parameter_group: str | None) -> None:
        copy = self.rds.describe_cluster(copy_id)
        if copy is None:
            self.logger.info("Pool copy gone before its writer was added", extra={"copy": copy_id})
            return
        if not is_pool_copy(copy.tags, self.plan.source_id) or not self._recorded_copy(copy_id):
            self._error(f"'{copy_id}' is not a copy of '{self.plan.source_id}' made by this tool; left alone.")
            return
        if copy.instances or copy.status != "available":
            self.logger.info(
                "Pool copy needs no writer now",
                extra={"copy": copy_id, "status": copy.status, "instances": len(copy.instances)},
            )
            return
        writer = instance_id(copy.identifier, 1)
        self.executor.run(CreateInstance(writer, instance_class, parameter_group), copy)
        self.finished.append(copy_id)
        self.logger.info(
            "Pool copy writer requested",
            extra={"source": self.plan.source_id, "copy": copy_id, "instance": writer, "class": instance_class},
        )

    # -- delete -----------------------------------------------------------------------------------------

    def delete_copies(self) -> None:
        if not self.plan.copies_to_delete:
            return
        try:
            fresh = self.rds.list_clusters()  # the plan's snapshot may be minutes old: a clone may have come
        except RdsError as error:
            self._error(f"Could not look again before deleting obsolete copies: {error}")
            return
        for copy_id in self.plan.copies_to_delete:
            facts = fresh.get(copy_id)
            if facts is None or not facts.is_live:
                continue
            if has_live_clones(facts, fresh):
                self.logger.info(
                    "Obsolete copy kept: it has live clones now",
                    extra={"copy": copy_id, "clones": slots_used(facts, fresh)},
                )
                continue
            try:
                self._step_deletion(copy_id)
            except RdsError as error:
                if error.look_again:
                    self.logger.info("Obsolete copy busy; a later run goes on", extra={"copy": copy_id})
                else:
                    self._error(f"Could not delete the obsolete copy '{copy_id}': {error}")

    def _step_deletion(self, copy_id: str) -> None:
        copy = self.rds.describe_cluster(copy_id)
        if copy is None:
            return
        if (
            copy.identifier.lower() == self.plan.source_id.lower()
            or not is_pool_copy(copy.tags, self.plan.source_id)
            or not self._recorded_copy(copy_id)
        ):
            self._error(f"'{copy_id}' is not a copy of '{self.plan.source_id}' made by this tool; not deleted.")
            return
        step = self.executor.tear_down(copy)
        match step:
            case Act():
                self._count_deletions(step, copy_id)
                self.logger.info("Obsolete copy being deleted", extra={"copy": copy_id, "step": step.why})
            case Wait(why):
                self.logger.info(
                    "Obsolete copy not deletable yet; a later run goes on", extra={"copy": copy_id, "why": why}
                )
            case Broken(why):
                self._error(why)


# -- warm clones ------------------------------------------------------------------------------------------------------


def warm_members(source_id: str, snapshot: Snapshot) -> list[WarmMember]:
    """The unclaimed warm clones of ``source_id`` in a trusted snapshot, as the warm plan sees them."""
    return [
        WarmMember(c.identifier, c.warm_pool or "", c.created, c.status, c.instance_count)
        for c in snapshot.warm_clones_of(source_id)
    ]


def warm_tags(source_id: str, shape: str, cloned: str, data_time: datetime) -> dict[str, str]:
    """The tags on an unclaimed warm clone: this tool's, its source, its shape, what it was cloned from and
    when its data was taken. A claim replaces the shape's tag with the stack's."""
    return {
        MANAGED_BY_TAG: MANAGED_BY_VALUE,
        SOURCE_TAG: source_id,
        WARM_POOL_TAG: shape,
        CLONED_FROM_TAG: cloned,
        DATA_TIME_TAG: format_timestamp(data_time),
    }


class _WarmRun(_Actions):
    """One carrying out of a warm plan: deletes, makes and moves each warm clone one step towards its shape."""

    failure_message = "Warm pool action failed"

    def __init__(
        self, policy: PoolPolicy, plan: WarmPlan, rds: RdsGateway, now: datetime, log: AnyLogger, store: RequestStore
    ) -> None:
        super().__init__(policy.source_id, log)
        self.policy, self.plan, self.rds, self.now, self.store = policy, plan, rds, now, store
        self.executor = ActionExecutor(rds, store)
        self.shapes = {shape.name: shape for shape in policy.warm}
        self.made: list[str] = []
        self.ready: list[str] = []

    def _recorded(self, cluster: ClusterView) -> bool:
        shape = cluster.tags.get(WARM_POOL_TAG, "")
        made = self.store.made(cluster.identifier)
        return bool(shape) and made is not None and made.is_warm_of(self.policy.source_id, shape)

    def run(self, members: Sequence[WarmMember]) -> None:
        for cluster_id in self.plan.to_delete:
            self.delete(cluster_id)
        if not self.policy.warm:
            return
        source = self.rds.describe_cluster(self.policy.source_id)
        if source is None:
            self._error(f"The source '{self.policy.source_id}' no longer exists; no warm clone made or finished.")
            return
        for member in members:
            if member.is_live and member.cluster_id not in self.plan.to_delete:
                self.converge(member, source)
        for shape_name, count in self.plan.to_make:
            for _ in range(count):
                self.make(self.shapes[shape_name], source)

    def delete(self, cluster_id: str) -> None:
        try:
            cluster = self.rds.describe_cluster(cluster_id)
            if cluster is None:
                return
            if not self._recorded(cluster):
                self._error(f"'{cluster_id}' is not a warm clone of '{self.policy.source_id}' made by this tool.")
                return
            step = self.executor.tear_down(cluster)
        except RdsError as error:
            if not error.look_again:
                self._error(f"Could not delete the warm clone '{cluster_id}': {error}")
            return
        if isinstance(step, Act):
            self._count_deletions(step, cluster_id)
        elif isinstance(step, Broken):
            self._error(step.why)

    def converge(self, member: WarmMember, source: ClusterView) -> None:
        shape = self.shapes.get(member.shape)
        if shape is None or member.status != "available":
            return
        try:
            cluster = self.rds.describe_cluster(member.cluster_id)
            if cluster is None or not self._recorded(cluster):
                return
            desired = resolve_desired(shape.properties, cluster.identifier, source)
            step = plan_convergence(desired, cluster, self.now)
            if isinstance(step, Act):
                self.executor.carry_out(step, cluster)
                self.logger.info("Warm clone step", extra={"cluster": cluster.identifier, "step": step.why})
            elif isinstance(step, Ready):
                self.ready.append(cluster.identifier)
            elif isinstance(step, Broken):
                self._error(f"The warm clone '{cluster.identifier}' cannot be finished: {step.why}")
        except (RdsError, ValueError) as error:
            if not isinstance(error, RdsError) or not error.look_again:
                self._error(f"Could not finish the warm clone '{member.cluster_id}': {error}")

    def make(self, shape: WarmShape, source: ClusterView) -> None:
        """One warm clone of ``shape``, cloned from the source or a fresh copy exactly as a Create chooses,
        holding the source's slot lock as a Create does, so the two never count the same free slot."""
        source_id = self.policy.source_id
        lock = SlotLock(self.store)
        try:
            with lock.hold(source_id, f"pool-{uuid.uuid4().hex[:12]}"):
                snapshot = gather(self.rds, self.store)
                still = self._still_wanted(shape, snapshot)
                if still:
                    self.logger.info("Warm clone not made", extra={"shape": shape.name, "why": still})
                    return
                selection = SelectionPolicy(self.policy.max_copy_age, None, self.policy.slot_limit)
                choice = choose_clone_source(source_id, snapshot, selection, self.now, copy_ok=False)
                if choice.refused or choice.cluster_id is None:
                    self._error(f"No warm clone of shape '{shape.name}' made: {choice.reason}")
                    return
                taken = {cluster.identifier.lower() for cluster in snapshot}
                number = 1
                while (cluster_id := self._identifier(shape, number)).lower() in taken:
                    number += 1
                made = MadeRecord(
                    cluster_id,
                    "warm",
                    source=source_id,
                    made_at=self.now.timestamp(),
                    shape=shape.name,
                    shape_properties=json.dumps(shape_written(shape), sort_keys=True),
                )
                if self.store.record_made(made) is not None:
                    self._error(f"'{cluster_id}' is recorded as made for something else; no warm clone made.")
                    return
                desired = resolve_desired(shape.properties, cluster_id, source)
                tags = warm_tags(source_id, shape.name, choice.cluster_id, choice.data_time)
                try:
                    self.executor.restore(desired, shape.properties, source=choice.cluster_id, tags=tags)
                except RdsError:
                    self.store.forget_made(cluster_id)  # nothing was made
                    raise
        except (RdsError, ValueError, SlotLockBusyError) as error:
            self._error(f"Could not make a warm clone of shape '{shape.name}': {error}")
            return
        self.made.append(cluster_id)
        self.logger.info("Warm clone requested", extra={"cluster": cluster_id, "shape": shape.name})

    def _still_wanted(self, shape: WarmShape, snapshot: Snapshot) -> str:
        """Why ``shape`` needs no new warm clone in ``snapshot`` (taken under the lock), or "" when it does.
        The plan was made before the lock, and runs overlap (every claim wakes one): planned again on what is
        there now, a run neither makes more than ``count`` nor takes a slot kept for stacks."""
        members = warm_members(self.policy.source_id, snapshot)
        fresh = plan_warm(self.policy, members, self.now, free_now=free_slots_now(self.policy, snapshot, self.now))
        return "" if dict(fresh.to_make).get(shape.name) else " ".join(fresh.findings)

    def _identifier(self, shape: WarmShape, number: int) -> str:
        return copy_identifier(
            self.policy.source_id, self.now, number, settings.cluster_id_prefix, f"warm-{shape.name}"
        )


def carry_out_warm(
    policy: PoolPolicy,
    plan: WarmPlan,
    members: Sequence[WarmMember],
    rds: RdsGateway,
    now: datetime,
    log: AnyLogger,
    store: RequestStore,
) -> RunResult:
    """Delete what the warm plan retires, move every other warm clone one step towards its shape (instances,
    settings), and start the warm clones it asks for; never waits. With ``plan.dry_run`` nothing is done."""
    if plan.dry_run or not (policy.warm or plan.to_delete):
        return RunResult()
    run = _WarmRun(policy, plan, rds, now, log, store)
    try:
        run.run(members)
    except RdsError as error:
        run._error(f"Could not look at the warm clones of '{policy.source_id}': {error}")
    return RunResult(
        warm_made=tuple(run.made),
        warm_ready=tuple(run.ready),
        warm_deleted=tuple(run.deleted),
        instances_deleted=tuple(run.instances_deleted),
        errors=tuple(run.errors),
    )


def retire_warm_clones(
    policies: Sequence[PoolPolicy],
    rds: RdsGateway,
    now: datetime,
    log: AnyLogger = logger,
    store: RequestStore | None = None,
) -> RunResult:
    """Warm clones belong to their pool: those of a source with no pool in the document are deleted, one step
    per run (instances, then the cluster)."""
    store = store or RequestStore()
    kept = {policy.source_id.lower() for policy in policies}
    snapshot = gather(rds, store)
    retired: dict[str, list[WarmMember]] = {}
    for cluster in snapshot:
        source_id = cluster.tags.get(SOURCE_TAG, "").lower()
        if cluster.made_by_tool and cluster.warm_pool and cluster.is_live and source_id not in kept:
            retired.setdefault(source_id, []).append(
                WarmMember(cluster.identifier, cluster.warm_pool, cluster.created, cluster.status)
            )
    results = []
    for source_id, members in sorted(retired.items()):
        policy = PoolPolicy(source_id, spare_slots=0)
        plan = plan_warm(policy, members, now, free_now=0)
        results.append(carry_out_warm(policy, plan, members, rds, now, log, store))
    return RunResult(
        warm_deleted=tuple(name for result in results for name in result.warm_deleted),
        instances_deleted=tuple(name for result in results for name in result.instances_deleted),
        errors=tuple(error for result in results for error in result.errors),
    )


class PoolDocumentError(Exception):
    """The pool document could not be read (SSM refused or could not be reached)."""


@dataclass(frozen=True)
class PoolRun:
    """One pool's run: the plan (None when planning failed) and what was done."""

    source_id: str
    plan: PoolPlan | None
    result: RunResult
    warm: WarmPlan | None = None

    def summary(self) -> dict[str, Any]:
        plan = self.plan
        return {
            "source": self.source_id,
            "dryRun": plan.dry_run if plan else False,
            "freeSlots": plan.free_slots if plan else None,
            "futureSlots": plan.future_slots if plan else None,
            "copies": list(plan.copies) if plan else [],
            "created": list(self.result.created),
            "finished": list(self.result.finished),
            "deleted": list(self.result.deleted),
            "instancesDeleted": list(self.result.instances_deleted),
            "warmMade": list(self.result.warm_made),
            "warmReady": list(self.result.warm_ready),
            "warmDeleted": list(self.result.warm_deleted),
            "errors": list(self.result.errors),
        }


def read_pool_document(parameter_name: str, ssm: Any = None) -> str | None:
    """The pool document in the SSM parameter ``parameter_name``; None when there is no such parameter."""
    client = ssm or aws_client("ssm")
    try:
        value: str = client.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        if error_code(error) == "ParameterNotFound":
            return None
        raise PoolDocumentError(f"Could not read the pool document '{parameter_name}' from SSM: {error}") from error
    except BotoCoreError as error:
        raise PoolDocumentError(f"Could not reach SSM for the pool document '{parameter_name}': {error}") from error
    return value


def run_pool(
    policy: PoolPolicy, rds: RdsGateway, now: datetime, log: AnyLogger = logger, store: RequestStore | None = None
) -> PoolRun:
    """Gather, plan, log the plan and carry it out for one pool; RDS errors end up in the result."""
    store = store or RequestStore()
    try:
        snapshot = gather(rds, store)
        members = warm_members(policy.source_id, snapshot)
        warm = plan_warm(policy, members, now, free_now=free_slots_now(policy, snapshot, now))
        plan = plan_pool(policy, snapshot, now, warm_wanted=warm.wanted)
    except (RdsError, ValueError) as error:
        text = f"Could not plan the pool of '{policy.source_id}': {error}"
        log.error("Pool not planned", extra={"source": policy.source_id, "error": str(error)})
        return PoolRun(policy.source_id, None, RunResult(errors=(text,)))
    log.info(
        "Pool plan",
        extra={
            "source": plan.source_id,
            "dry_run": plan.dry_run,
            "free_slots": plan.free_slots,
            "future_slots": plan.future_slots,
            "copies_to_create": plan.copies_to_create,
            "copies_to_finish": list(plan.copies_to_finish),
            "copies_to_delete": list(plan.copies_to_delete),
            "findings": list(plan.findings),
            "actions": list(plan.actions),
            "warm_findings": list(warm.findings),
            "warm_actions": list(warm.actions),
        },
    )
    copies = carry_out(plan, rds, now, log, store)
    warmed = carry_out_warm(policy, warm, members, rds, now, log, store)
    result = dataclasses.replace(
        copies,
        warm_made=warmed.warm_made,
        warm_ready=warmed.warm_ready,
        warm_deleted=warmed.warm_deleted,
        instances_deleted=copies.instances_deleted + warmed.instances_deleted,
        errors=copies.errors + warmed.errors,
    )
    return PoolRun(policy.source_id, plan, result, warm)


def run_pools(
    policies: Sequence[PoolPolicy], rds: RdsGateway, now: datetime, log: AnyLogger = logger
) -> Iterator[PoolRun]:
    """Every pool in turn, each run yielded as it ends; one pool's failure, whatever it is, is logged and the
    next pool still runs."""
    for policy in policies:
        try:
            yield run_pool(policy, rds, now, log)
        except Exception as error:  # a bug or an unforeseen error in one pool must not stop the others
            log.exception("Pool run failed", extra={"source": policy.source_id})
            yield PoolRun(policy.source_id, None, RunResult(errors=(f"Unexpected error: {error}",)))
