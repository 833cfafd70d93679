"""Create, update, delete and poll a clone, as short steps over the RDS gateway and the pure decisions.

Each public method returns an ``Outcome``: Done (answer SUCCESS), Failed (answer FAILED) or Pending
(look at the returned ``Job`` again at the next wake-up). Nothing here knows about crhelper, the request
records or how a request is woken up (aurora_clone.engine). A transient RDS error (throttling, 5xx, a
timeout) is raised, never answered: the request is tried again at its next wake-up.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone import clock as process_clock
from aurora_clone.actions import ActionExecutor
from aurora_clone.aws_errors import is_transient
from aurora_clone.changes import (
    CLUSTER_PARAMETER_GROUP,
    INSTANCE_PARAMETER_GROUP,
    CurrentClone,
    EngineOffer,
    arn_account,
    backtrack_update_problem,
    classify_update,
    creation_problems,
    engine_problems,
    is_shared_source,
    resolve_desired,
    shared_source_problems,
    source_location_problems,
    tag_changes,
)
from aurora_clone.clone_state import ClusterView, DesiredClone
from aurora_clone.connection_check import (
    PREPARE_LIMIT_SECONDS,
    Prober,
    ProbeRequest,
    ProbeResult,
    judge,
    probe_request,
)
from aurora_clone.ledger import trusted_clusters
from aurora_clone.logs import SERVICE
from aurora_clone.naming import (
    derive_cluster_id,
    final_snapshot_id,
    has_prefix,
    instance_number,
    is_valid_identifier,
    not_created_id,
    request_token,
)
from aurora_clone.outcome import Done, Failed, Job, Outcome, Pending
from aurora_clone.ownership import (
    CLONED_FROM_TAG,
    FROM_WARM_POOL_TAG,
    FULL_COPY_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    REQUEST_TAG,
    SOURCE_TAG,
    WARM_POOL_TAG,
    Owner,
)
from aurora_clone.pool.model import DATA_TIME_TAG
from aurora_clone.pool.select import SelectionPolicy, choose_clone_source, obsolete_copies
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT
from aurora_clone.pool.warm import WarmCandidate, choose_warm_clones, recorded_shape
from aurora_clone.pool_waker import PoolWaker
from aurora_clone.prepare_script import readable_from
from aurora_clone.properties import (
    MAX_SERVICE_TIMEOUT_SECONDS,
    CloneProperties,
    PropertiesError,
    PropertyReading,
    parse_properties,
    read_properties,
    refusal_reason,
)
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import (
    Act,
    Broken,
    Ready,
    Step,
    Wait,
    deletion_accepted,
    plan_convergence,
    plan_teardown,
)
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore
from aurora_clone.settings import settings
from aurora_clone.slot_lock import SlotLock
from aurora_clone.timespec import format_timestamp, parse_timestamp

logger = Logger(service=SERVICE, child=True)


@dataclass(frozen=True)
class Request:
    """The parts of a CloudFormation request the resource uses."""

    request_type: str
    stack_id: str
    request_id: str
    logical_id: str
    properties: Mapping[str, Any]
    physical_id: str | None = None
    old_properties: Mapping[str, Any] | None = None

    @property
    def owner(self) -> Owner:
        return Owner(self.stack_id, self.logical_id)

    @property
    def token(self) -> str:
        return request_token(self.stack_id, self.request_id, self.logical_id)

    @property
    def not_created_id(self) -> str:
        return not_created_id(self.stack_id, self.request_id, self.logical_id)

    @property
    def account(self) -> str | None:
        """The account the stack, and so this function's clones, live in (from the StackId ARN)."""
        return arn_account(self.stack_id)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        return cls(
            request_type=event["RequestType"],
            stack_id=event["StackId"],
            request_id=event["RequestId"],
            logical_id=event["LogicalResourceId"],
            properties=event.get("ResourceProperties") or {},
            physical_id=event.get("PhysicalResourceId") or None,
            old_properties=event.get("OldResourceProperties"),
        )


def _no_unknown_clones(_request: Request) -> tuple[str, ...]:
    return ()


def _nothing_to_remember(_request: Request, _cluster_id: str) -> None:
    return None


@dataclass(frozen=True)
class EngineHooks:
    """What the request engine tells the resource, and is told by it.

    ``unknown_clones``: for a Delete whose id is not a clone of this resource, the clones requests of the
    resource made that CloudFormation's own record of the resource does not name, newest first (their requests
    stopped): a Create CloudFormation gave up on, or whose answer it never took, even when the PUT went through.
    ``before_restore``: told a clone's identifier right before its restore is asked for, so a Delete that
    arrives while the restore runs (a rollback) finds it, and an RDS event about it finds its request.
    """

    unknown_clones: Callable[[Request], tuple[str, ...]] = _no_unknown_clones
    before_restore: Callable[[Request, str], None] = _nothing_to_remember


def service_timeout(raw: Mapping[str, Any]) -> int:
    """The request's ServiceTimeout in seconds (CloudFormation's default when unset or unreadable)."""
    try:
        seconds = int(str(raw.get("ServiceTimeout", MAX_SERVICE_TIMEOUT_SECONDS)))
    except ValueError:
        return MAX_SERVICE_TIMEOUT_SECONDS
    return min(max(seconds, 1), MAX_SERVICE_TIMEOUT_SECONDS)


def snapshot_on_delete(raw: Mapping[str, Any]) -> bool:
    """The request's SnapshotOnDelete; read on its own when other properties no longer parse, since a
    Delete must go ahead whatever else is wrong with them."""
    try:
        return parse_properties(raw).snapshot_on_delete
    except PropertiesError:
        return str(raw.get("SnapshotOnDelete", "")).strip().lower() == "true"


def wait_for_deletion(raw: Mapping[str, Any]) -> bool:
    """The request's WaitForDeletion, read on its own as SnapshotOnDelete is (a Delete goes ahead whatever
    else is wrong with its properties); anything but false waits, as before the property existed."""
    try:
        return parse_properties(raw).wait_for_deletion
    except PropertiesError:
        return str(raw.get("WaitForDeletion", "")).strip().lower() != "false"


def _shared_defaults(source: ClusterView) -> ClusterView:
    """What a cluster of another account can give a clone here as defaults: its port and capacities only
    (its parameter groups, security groups and instances belong to its own account)."""
    return ClusterView(
        source.identifier,
        source.status,
        source.engine,
        port=source.port,
        serverless_v2_capacity=source.serverless_v2_capacity,
    )


class CloneResource:
    """The Custom::AuroraClone lifecycle."""

    def __init__(
        self,
        rds: RdsGateway,
        clock: Callable[[], float] = process_clock.now,
        slot_lock: SlotLock | None = None,
        slot_limit: int = CLONE_SLOT_LIMIT,
        hooks: EngineHooks | None = None,
        prober: Prober | None = None,
        store: RequestStore | None = None,
        pool_waker: PoolWaker | None = None,
        run_clock: Callable[[], float] = time.time,
    ) -> None:
        self.rds = rds
        # The system clock, also in the local world: a prepare run lives in the real seconds of its invocation.
        self.run_clock = run_clock
        # The function's table: the ledger of what the tool made (asked before anything is changed or deleted).
        self.store = store or RequestStore()
        self.actions = ActionExecutor(rds, self.store)
        # The connection check (the function stack's optional probe in the tests' VPC); None: not configured.
        self.prober = prober
        self.clock = clock
        self.slot_lock = slot_lock or SlotLock()
        self.slot_limit = slot_limit
        # The clone a request of this resource made that CloudFormation does not know of (its answer was
        # never delivered, or CloudFormation stopped waiting), its request stopped; None when none.
        self.hooks = hooks or EngineHooks()
        # The copy pool function, woken when a warm clone is claimed so its pool is refilled at once.
        self.pool_waker = pool_waker

    # -- Create ---------------------------------------------------------------------------------------

    def create(self, request: Request) -> Outcome:
        reading = read_properties(request.properties)
        if reading.properties is None:
            return Failed(refusal_reason(reading.problems), request.not_created_id)
        properties = reading.properties
        cluster_id = properties.cluster_id or self._derived_id(request)
        return self._make_clone(request, properties, cluster_id, replacing=None, reading=reading)

    def _prepare_problems(self, properties: CloneProperties) -> list[str]:
        """PrepareScript runs in the connection check's function, reading only where the function stack lets
        it: without the function, or outside those places, it is refused."""
        script = properties.prepare_script
        if script is None:
            return []
        if self.prober is None:
            return [
                "PrepareScript is run by the connection check's function in your tests' VPC, which this function "
                "stack does not have: deploy it with ConnectionCheckSubnetIds and ConnectionCheckSecurityGroupIds."
            ]
        allowed = settings.prepare_script_locations
        if not readable_from(script, allowed):
            where = ", ".join(allowed) if allowed else "none"
            return [
                f"PrepareScript {script.uri} is not in a place the function stack lets the connection check read "
                f"(its PrepareScriptLocations: {where}); add an ARN pattern covering it there, such as "
                f"arn:aws:s3:::{script.bucket}/*."
            ]
        return []

    @staticmethod
    def _derived_id(request: Request) -> str:
        return derive_cluster_id(request.stack_id, request.logical_id, request.token, settings.cluster_id_prefix)

    def _recorded_owner(self, request: Request, cluster: ClusterView) -> bool:
        """True when ``cluster`` is this resource's clone by its tags and by the tool's own record. A cluster
        with the tags and no such record (tagged by someone else) is logged and never acted on."""
        if not request.owner.owns(cluster.tags):
            return False
        made = self.store.made(cluster.identifier)
        if made is not None and made.is_clone_of(request.stack_id, request.logical_id):
            return True
        logger.warning(
            "A cluster carries this resource's tags, but the tool has no record of making it: left alone",
            extra={"cluster": cluster.identifier},
        )
        return False

    def _make_clone(
        self,
        request: Request,
        properties: CloneProperties,
        cluster_id: str,
        replacing: str | None,
        reading: PropertyReading | None = None,
    ) -> Outcome:
        """Restore a clone into ``cluster_id`` (or adopt it when this very request made it already).

        Every mistake is refused before anything is made, in one answer: the property problems of
        ``reading`` together with what the source and its engine version refuse.
        """
        failed_id = replacing or request.not_created_id
        problems = list(reading.problems) if reading is not None else []
        prefix = settings.cluster_id_prefix
        if properties.cluster_id and not has_prefix(properties.cluster_id, prefix):
            problems.append(
                f"ClusterId '{properties.cluster_id}' must start with '{prefix}' (the function stack's "
                "ClusterIdPrefix): the tool may only create, change and delete clusters whose identifiers carry it."
            )
        problems += self._prepare_problems(properties)
        location = source_location_problems(properties, settings.region, request.account)
        if location:
            return Failed(refusal_reason(problems + location), failed_id)
        shared = is_shared_source(properties, request.account)
        try:
            source = self.rds.describe_cluster(properties.source_cluster_id, shared=shared)
            if source is None:
                where = (
                    "is not shared with this account through AWS RAM, or does not exist"
                    if shared
                    else "does not exist in this account and Region"
                )
                problems.append(f"SourceClusterId '{properties.source_cluster_id}' {where}.")
                return Failed(refusal_reason(problems), failed_id)
            problem = _source_problem(properties.source_cluster_id, source)
            if problem is not None:
                problems.append(problem)
                if not source.engine.startswith("aurora"):
                    return Failed(refusal_reason(problems), failed_id)
            deadline = self.clock() + service_timeout(request.properties)
            problems += creation_problems(
                properties,
                source,
                datetime.fromtimestamp(self.clock(), UTC),
                datetime.fromtimestamp(deadline, UTC),
            )
            if shared:
                problems += shared_source_problems(properties, source)
            default_class = source.writer.instance_class if source.writer is not None else None
            problems += engine_problems(
                properties,
                source,
                self._engine_offer(properties, source, default_class),
                f"SourceClusterId '{properties.source_cluster_id}'",
                default_class=default_class,
                invalid=reading.invalid if reading is not None else frozenset(),
            )
            if problems:
                return Failed(refusal_reason(problems), failed_id)
            desired = resolve_desired(properties, cluster_id, _shared_defaults(source) if shared else source)
            job = Job(
                "converge",
                cluster_id,
                deadline=deadline,
                answer_id=cluster_id,
                source=properties.source_key if shared else source.identifier,
                desired=desired,
                replacing=replacing,
                purge_older_than=properties.max_copy_age.total_seconds() if properties.purge_obsolete_copies else None,
                prepare=properties.prepare_script.uri if properties.prepare_script else "",
            )
            existing = self.rds.describe_cluster(cluster_id)
            warm_job, warm_note = self._warm_job(
                request, properties, source, job, claimable=existing is None and not shared
            )
            if warm_job is not None:
                return self.poll(warm_job, request)
            if existing is None:
                if shared:
                    refusal = self._restore_shared(request, properties, desired, replacing)
                else:
                    refusal = self._restore(request, properties, desired, source.identifier)
                if refusal is None:
                    logger.info("Clone requested", extra={"cluster": cluster_id, "source": job.source})
                    note = f" ({warm_note})" if warm_note else ""
                    return Pending(job, f"DB cluster '{cluster_id}' is being restored{note}")
                if refusal != _RESTORED_BY_ANOTHER_DELIVERY:
                    return Failed(refusal, failed_id)
                existing = self.rds.describe_cluster(cluster_id)
            if existing is not None and not self._made_by(request, existing):
                return Failed(
                    f"ClusterId '{cluster_id}' already exists and was not created by this resource; "
                    "choose another ClusterId or remove it to get a generated one.",
                    failed_id,
                )
        except (RdsError, ValueError) as error:
            _raise_if_transient(error)
            return Failed(str(error), failed_id)
        return self.poll(job, request)

    def _engine_offer(
        self, properties: CloneProperties, cluster: ClusterView, default_class: str | None
    ) -> EngineOffer:
        """What RDS offers for ``cluster``'s engine version, read only as far as the template needs it: the
        instance classes (one call per engine and version while the function is warm) when a class is to be
        created, and a parameter group's family (one call each) only when the template names the group.

        A read that fails judges nothing (RDS still judges at the call itself), so a missing permission
        never fails a template RDS would accept.
        """
        classes = None
        if (properties.instance_class or default_class) and cluster.engine_version:
            try:
                classes = self.rds.orderable_instance_classes(cluster.engine, cluster.engine_version)
            except RdsError as error:
                logger.warning("Could not read the orderable instance classes", extra={"error": str(error)})
        families: dict[str, str | None] = {}
        for name, group, is_cluster in (
            (CLUSTER_PARAMETER_GROUP, properties.db_cluster_parameter_group_name, True),
            (INSTANCE_PARAMETER_GROUP, properties.db_parameter_group_name, False),
        ):
            if group is not None:
                try:
                    families[name] = self.rds.parameter_group_family(group, cluster=is_cluster)
                except RdsError as error:
                    logger.warning("Could not read a parameter group", extra={"group": group, "error": str(error)})
        return EngineOffer(classes, families)

    def _warm_job(
        self, request: Request, properties: CloneProperties, source: ClusterView, job: Job, *, claimable: bool
    ) -> tuple[Job | None, str]:
        """The job converging a claimed warm clone, when ``WarmPool`` is set and one is taken; else (None, why)."""
        if properties.warm_pool is None or not claimable:
            return None, ""
        claimed, why = self._claim_warm(request, properties, source)
        if claimed is None:
            logger.info("No warm clone claimed", extra={"warm_pool": properties.warm_pool, "why": why})
            return None, why
        desired = resolve_desired(properties, claimed, source)
        return replace(job, cluster_id=claimed, answer_id=claimed, desired=desired), ""

    def _claim_warm(self, request: Request, properties: CloneProperties, source: ClusterView) -> tuple[str | None, str]:
        """Take a ready warm clone of ``source`` in the shape ``WarmPool`` names and make it this resource's clone:
        (its identifier, "") or (None, why none was taken). Under the source's slot lock, one conditional write in
        the ledger makes it this request's; then, the lock released, its tags pass to the stack. A re-delivery
        finds its own claim."""
        pool = properties.warm_pool
        assert pool is not None
        taken, why = self._choose_and_claim(request, properties, source, pool)
        if taken is None:
            return None, why
        return self._take_warm(request, properties, source, taken, pool)

    def _choose_and_claim(
        self, request: Request, properties: CloneProperties, source: ClusterView, pool: str
    ) -> tuple[str | None, str]:
        """Under the source's slot lock, the warm clone this request claimed before, or the one it claims now
        with one conditional write in the ledger; (None, why) when none."""
        with self.slot_lock.hold(source.identifier, request.token):
            listed = self.rds.list_clusters()
            warm = [c for c in listed.warm_clones_of(source.identifier) if c.warm_pool == pool]
            mine = [c for c in listed if c.tags.get(FROM_WARM_POOL_TAG) and c.tags.get(REQUEST_TAG) == request.token]
            records = self.store.made_many([c.identifier for c in warm + mine]) if warm or mine else {}
            for cluster in warm + mine:
                made = records.get(cluster.identifier.lower())
                if made is not None and made.made_for == "clone" and made.request == request.token:
                    return cluster.identifier, ""
            candidates = [
                WarmCandidate(
                    c.identifier,
                    recorded_shape(pool, source.identifier, made.shape_properties),
                    c.status == "available",
                    c.data_time,
                )
                for c in warm
                if (made := records.get(c.identifier.lower())) is not None and made.is_warm_of(source.identifier, pool)
            ]
            choice = choose_warm_clones(pool, candidates, properties)
            for cluster_id in choice.cluster_ids:
                view = self.rds.describe_cluster(cluster_id)
                if view is None or not _warm_ready(view, properties.instance_count):
                    continue
                if self.store.claim_warm(cluster_id, pool, self._clone_record(request, cluster_id)):
                    return cluster_id, ""
            return None, choice.why or f"WarmPool '{pool}' has no warm clone ready now"

    def _clone_record(self, request: Request, cluster_id: str, source: str = "") -> MadeRecord:
        """The ledger's record of ``cluster_id`` as this request's clone (``source``: what it is restored from)."""
        return MadeRecord(
            cluster_id,
            "clone",
            request=request.token,
            stack_id=request.stack_id,
            logical_id=request.logical_id,
            source=source,
            made_at=self.clock(),
        )

    def _take_warm(
        self, request: Request, properties: CloneProperties, source: ClusterView, cluster_id: str, pool: str
    ) -> tuple[str, str]:
        """The claimed warm clone becomes this resource's: remembered as its clone, tagged as the stack's (on
        the cluster and each instance), and its pool woken to make a replacement."""
        self.hooks.before_restore(request, cluster_id)
        view = self.rds.describe_cluster(cluster_id)
        if view is None:
            raise RdsError("DBClusterNotFoundFault", f"The claimed warm clone '{cluster_id}' no longer exists.")
        handed = {
            **dict(properties.tags),
            **request.owner.tags(request.token, source.identifier),
            FROM_WARM_POOL_TAG: pool,
        }
        for arn, actual in [(view.arn, view.tags)] + [(i.arn, i.tags) for i in view.instances]:
            add = {key: value for key, value in handed.items() if actual.get(key) != value}
            if add:
                self.rds.add_tags(arn, add)
            if WARM_POOL_TAG in actual:
                self.rds.remove_tags(arn, (WARM_POOL_TAG,))
        logger.info("Warm clone claimed", extra={"cluster": cluster_id, "warm_pool": pool})
        if self.pool_waker is not None:
            try:
                self.pool_waker.wake(source.identifier)
            except Exception:  # the schedule refills too; a claim never fails for this
                logger.exception("Could not wake the pool function", extra={"source": source.identifier})
        return cluster_id, ""

    def _made_by(self, request: Request, cluster: ClusterView) -> bool:
        """True when this very request made ``cluster`` (a re-delivery finds its own restore)."""
        return cluster.tags.get(REQUEST_TAG) == request.token and self._recorded_owner(request, cluster)

    def _restore(
        self, request: Request, properties: CloneProperties, desired: DesiredClone, source_id: str
    ) -> str | None:
        """Choose what to clone and restore it, holding the source's slot lock; a refusal's words, or None.

        The lock spans counting and restoring: the count must include every clone already asked for.
        """
        with self.slot_lock.hold(source_id, request.token):
            policy = SelectionPolicy(properties.max_copy_age, properties.copy_created_since, self.slot_limit)
            now = datetime.fromtimestamp(self.clock(), UTC)
            snapshot = trusted_clusters(self.rds, self.store).snapshot
            choice = choose_clone_source(source_id, snapshot, policy, now, properties.copy_ok)
            if choice.refused:
                return choice.reason
            cloned = choice.cluster_id or source_id
            tags = {
                **dict(properties.tags),
                **request.owner.tags(request.token, source_id),
                CLONED_FROM_TAG: cloned,
                DATA_TIME_TAG: format_timestamp(choice.data_time),
                **({FULL_COPY_TAG: "true"} if choice.full_copy else {}),
            }
            logger.info("Clone source chosen", extra={"cloned": cloned, "full_copy": choice.full_copy})
            return self._restore_clone(
                request,
                properties,
                desired,
                source=properties.source_cluster_id if cloned == source_id else cloned,
                tags=tags,
                full_copy=choice.full_copy,
            )

    def _restore_shared(
        self, request: Request, properties: CloneProperties, desired: DesiredClone, replacing: str | None
    ) -> str | None:
        """Clone a cluster shared from another account, by its ARN; a refusal's words, or None.

        Its clone slots cannot be counted from here, and the pool cannot copy it: RDS itself limits a shared
        cluster to one clone per account (REFERENCE: Aurora clones), which is checked among this tool's clones.
        """
        source_key = properties.source_key
        others = sorted(
            cluster.identifier
            for cluster in trusted_clusters(self.rds, self.store).snapshot
            if cluster.is_live
            and cluster.tags.get(CLONED_FROM_TAG) == source_key
            and cluster.identifier != desired.cluster_id
        )
        if replacing in others:
            return (
                f"This change replaces the clone '{replacing}' of SourceClusterId '{properties.source_cluster_id}', a "
                "cluster of another account, and RDS allows one clone of such a cluster per account: the replacement "
                "cannot be made while the old clone exists. Delete the stack and create it again with the change."
            )
        if others:
            return (
                f"DB cluster '{others[0]}' already is a clone of SourceClusterId '{properties.source_cluster_id}' in "
                "this account, and RDS allows one clone of a cluster of another account per account. Delete that "
                "clone (or its stack) first."
            )
        tags = {
            **dict(properties.tags),
            **request.owner.tags(request.token, source_key),
            CLONED_FROM_TAG: source_key,
            DATA_TIME_TAG: format_timestamp(datetime.fromtimestamp(self.clock(), UTC)),
        }
        try:
            return self._restore_clone(
                request, properties, desired, source=properties.source_cluster_id, tags=tags, full_copy=False
            )
        except RdsError as error:
            if error.code in (
                "KMSKeyNotAccessibleFault",
                "InvalidRestoreFault",
                "AccessDenied",
                "AccessDeniedException",
            ):
                raise RdsError(
                    error.code,
                    f"{error} A cluster of another account can be cloned only when it is shared with this account "
                    "through AWS RAM and encrypted with a customer managed key that is shared too (never the "
                    "default aws/rds key).",
                ) from error
            raise

    def _restore_clone(
        self,
        request: Request,
        properties: CloneProperties,
        desired: DesiredClone,
        *,
        source: str,
        tags: Mapping[str, str],
        full_copy: bool,
    ) -> str | None:
        """Record the clone in the ledger, then restore it; None when restored, _RESTORED_BY_ANOTHER_DELIVERY
        when it already existed and this request recorded it before, else a refusal's words."""
        cluster_id = desired.cluster_id
        recorded = self.store.made(cluster_id)
        if recorded is not None and recorded.request != request.token:
            return (
                f"ClusterId '{cluster_id}' is recorded as made by another resource or pool; choose another "
                "ClusterId or remove it to get a generated one."
            )
        if recorded is None:
            made = self._clone_record(request, cluster_id, source)
            if self.store.record_made(made) is not None:
                return f"ClusterId '{cluster_id}' is being made by another request; choose another ClusterId."
        self.hooks.before_restore(request, cluster_id)
        try:
            self.actions.restore(desired, properties, source=source, tags=tags, full_copy=full_copy)
        except RdsError as error:
            if error.code != "DBClusterAlreadyExistsFault":
                if not error.transient:
                    self.store.forget_made(cluster_id)  # nothing was made
                raise
            existing = self.rds.describe_cluster(cluster_id)
            if recorded is None and (existing is None or existing.tags.get(REQUEST_TAG) != request.token):
                # It existed before this request recorded it (and no delivery of this request made it meanwhile):
                # someone else's, whatever its other tags say.
                self.store.forget_made(cluster_id)
                return (
                    f"ClusterId '{cluster_id}' already exists and was not created by this resource; "
                    "choose another ClusterId or remove it to get a generated one."
                )
            return _RESTORED_BY_ANOTHER_DELIVERY  # the caller judges whose it is
        return None

    # -- Update ---------------------------------------------------------------------------------------

    def update(self, request: Request) -> Outcome:
        current_id = request.physical_id or ""
        reading = read_properties(request.properties)
        if reading.properties is None:
            return Failed(refusal_reason(reading.problems), current_id)
        new = reading.properties
        try:
            old: CloneProperties | None = parse_properties(request.old_properties or {})
        except PropertiesError:
            old = None  # unreadable old properties (a rollback of a refused update): judge by the clone itself
        location = source_location_problems(new, settings.region, request.account)
        if location:
            return Failed(refusal_reason([*reading.problems, *location]), current_id)
        replacement_id = new.cluster_id or self._derived_id(request)
        try:
            current = self.rds.describe_cluster(current_id) if is_valid_identifier(current_id) else None
            if current is None:
                # Deleted outside CloudFormation: make it again rather than leave the stack stuck.
                return self._make_clone(request, new, replacement_id, replacing=current_id, reading=reading)
            if not self._recorded_owner(request, current):
                return Failed(f"DB cluster '{current_id}' was not created by this resource.", current_id)
            if reading.problems or self._prepare_problems(new):
                problems = [
                    *reading.problems,
                    *self._prepare_problems(new),
                    *self._in_place_problems(new, current, reading),
                ]
                return Failed(refusal_reason(problems), current_id)
            data_time = current.tags.get(DATA_TIME_TAG)
            decision = classify_update(
                old,
                new,
                CurrentClone.of(
                    current, current.tags.get(SOURCE_TAG), parse_timestamp(data_time) if data_time else None
                ),
            )
            if decision.refusal:
                return Failed(decision.refusal, current_id)
            if decision.replaces:
                return self._make_clone(request, new, replacement_id, replacing=current_id, reading=reading)
            in_place_problems = self._in_place_problems(new, current, reading)
            problem = backtrack_update_problem(new, current, datetime.fromtimestamp(self.clock(), UTC))
            if problem is not None:
                in_place_problems.append(problem)
            if in_place_problems:
                return Failed(refusal_reason(in_place_problems), current_id)
            shared = is_shared_source(new, request.account)
            source = self.rds.describe_cluster(new.source_cluster_id, shared=shared)
            desired = resolve_desired(
                new, current_id, _shared_defaults(source) if shared and source is not None else source, current
            )
            self._retag(current, dict(new.tags), dict(old.tags) if old is not None else {})
        except (RdsError, ValueError) as error:
            _raise_if_transient(error)
            return Failed(str(error), current_id)
        job = Job(
            "converge",
            current_id,
            deadline=self.clock() + service_timeout(request.properties),
            answer_id=current_id,
            source=current.tags.get(SOURCE_TAG, new.source_identifier),
            desired=desired,
            purge_older_than=new.max_copy_age.total_seconds() if new.purge_obsolete_copies else None,
            # Run again only when the script (or its version) changed: the clone's data was prepared already.
            prepare=new.prepare_script.uri
            if new.prepare_script and (old is None or old.prepare_script != new.prepare_script)
            else "",
        )
        # The clone was just described (its user tags changed since, which no plan looks at).
        return self.conclude(job, self._plan(job, request, current))

    def _in_place_problems(self, new: CloneProperties, current: ClusterView, reading: PropertyReading) -> list[str]:
        """What the clone's engine version refuses of an in-place change. A class the clone already runs needs
        no new instance of it, so it is not judged (nor read for)."""
        running = {instance.instance_class for instance in current.instances}
        judged = new if new.instance_class not in running else replace(new, instance_class=None)
        offer = self._engine_offer(judged, current, None)
        return engine_problems(judged, current, offer, f"the clone '{current.identifier}'", invalid=reading.invalid)

    def _retag(self, cluster: ClusterView, wanted: dict[str, str], previous: dict[str, str]) -> None:
        """Bring the tags the template sets on the cluster and each of its instances to ``wanted``; of the
        others, only those the ``previous`` template set are removed."""
        targets = [(cluster.arn, cluster.tags)] + [(i.arn, i.tags) for i in cluster.instances]
        for arn, actual in targets:
            changes = tag_changes(wanted, actual, previous)
            if changes.add:
                self.rds.add_tags(arn, changes.add)
            if changes.remove:
                self.rds.remove_tags(arn, changes.remove)

    # -- Delete ---------------------------------------------------------------------------------------

    def delete(self, request: Request) -> Outcome:
        physical_id = request.physical_id or request.not_created_id
        try:
            cluster = self.rds.describe_cluster(physical_id) if is_valid_identifier(physical_id) else None
            if cluster is None or not self._recorded_owner(request, cluster):
                # Not a clone of this resource. A made-up id can still stand for a Create that
                # CloudFormation stopped waiting for while it ran: what that Create is making goes.
                unknown = self.hooks.unknown_clones(request)
                if not unknown:
                    logger.info("Nothing of this resource to delete", extra={"physical_id": physical_id})
                    return Done(physical_id)
                logger.info("Deleting the clones CloudFormation does not know", extra={"clusters": list(unknown)})
                target, then = unknown[0], unknown[1:]
            else:
                target, then = physical_id, ()
        except RdsError as error:
            _raise_if_transient(error)
            return Failed(str(error), physical_id)
        # SnapshotOnDelete applies to the clone this resource answered with; what an unanswered Create was
        # still making never held anything worth keeping.
        keep = target == physical_id and snapshot_on_delete(request.properties)
        job = Job(
            "teardown",
            target,
            deadline=self.clock() + service_timeout(request.properties),
            answer_id=physical_id,
            final_snapshot=final_snapshot_id(target, request.token) if keep else None,
            then=then,
            answer_when_accepted=not wait_for_deletion(request.properties),
        )
        # The clone was just described: plan from that view rather than describe it again.
        return (
            self.poll(job, request) if target != physical_id else self.conclude(job, self._plan(job, request, cluster))
        )

    # -- Poll -----------------------------------------------------------------------------------------

    def poll(self, job: Job, request: Request) -> Outcome:
        """Look at the cluster once, take the next step, and say whether the request is finished."""
        return self.conclude(job, self.look(job, request))

    def look(self, job: Job, request: Request) -> Look:
        """Describe the job's cluster and plan the next step toward the job's goal (nothing is changed)."""
        try:
            cluster = self.rds.describe_cluster(job.cluster_id)
        except RdsError as error:
            _raise_if_transient(error)
            return Look(None, Broken(str(error)), request.token)
        return self._plan(job, request, cluster)

    def _plan(self, job: Job, request: Request, cluster: ClusterView | None) -> Look:
        try:
            if job.kind == "teardown":
                step = plan_teardown(cluster, request.owner, job.final_snapshot)
            elif job.desired is not None:
                step = plan_convergence(job.desired, cluster, datetime.fromtimestamp(self.clock(), UTC))
            else:
                raise ValueError("a converge job without a goal")
        except (RdsError, ValueError) as error:
            _raise_if_transient(error)
            step = Broken(str(error))
        return Look(cluster, step, request.token)

    def conclude(self, job: Job, look: Look) -> Outcome:
        """Carry out the looked-at step (its RDS actions, if any) and say whether the request is finished."""
        cluster, step = look.cluster, look.step
        carried_out: Act | None = None
        if isinstance(step, Act) and cluster is not None:
            try:
                done = self.actions.carry_out(step, cluster)
                carried_out = done if isinstance(done, Act) else None
                step = Wait(step.why) if isinstance(done, Act) else done
            except (RdsError, ValueError) as error:
                _raise_if_transient(error)
                step = Broken(str(error))
        if (
            isinstance(step, Wait)
            and job.kind == "teardown"
            and job.answer_when_accepted
            and job.failure is None
            and deletion_accepted(cluster, carried_out)
        ):
            # WaitForDeletion false: RDS cannot take the deletion back; answer now, the engine watches the rest.
            step = Ready()
            if not job.then:
                logger.info("Deletion accepted by RDS; answering now", extra={"cluster": job.cluster_id})
                return Done(job.answer_id, watch=job.cluster_id)
        if isinstance(step, Wait) and job.kind == "converge" and _copying_in_full(cluster):
            # Said in every pending status, so a timeout's Reason tells why this clone was slow.
            step = Wait(
                f"{step.why}; this clone is a full copy of the source (no clone slot was free, CopyOk), "
                "which copies the whole volume and for a large cluster can take longer than "
                "CloudFormation's one-hour limit"
            )
        return self._answer(job, step, cluster if isinstance(step, Ready) else None, look.token)

    def _purge_obsolete_copies(self, source_id: str, older_than_seconds: float) -> None:
        """Start deleting the source's copies older than MaxCopyAge that no clone uses (PurgeObsoleteCopies).

        Only copies this tool made (ownership and copy-of tags) are touched; a copy's instances go first,
        and its cluster once it has none (a later purge or the pool's run finishes what this one starts).
        The answer does not wait for it, and a failure here does not fail the clone.
        """
        now = datetime.fromtimestamp(self.clock(), UTC)
        try:
            snapshot = trusted_clusters(self.rds, self.store).snapshot
            stale = obsolete_copies(source_id, snapshot, timedelta(seconds=older_than_seconds), now)
            for copy_id in stale:
                copy = self.rds.describe_cluster(copy_id)
                made = self.store.made(copy_id)
                if copy is None or copy.tags.get(MANAGED_BY_TAG) != MANAGED_BY_VALUE:
                    continue
                if made is None or not made.is_copy_of(source_id):
                    continue
                self.actions.tear_down(copy)
                logger.info("Obsolete copy being deleted", extra={"copy": copy_id, "source": source_id})
        except RdsError:
            logger.exception("Could not purge obsolete copies", extra={"source": source_id})

    def _answer(self, job: Job, step: Step, cluster: ClusterView | None, token: str = "") -> Outcome:
        match step:
            case Ready() if job.kind == "teardown" and job.then:
                following = replace(job, cluster_id=job.then[0], then=job.then[1:], final_snapshot=None)
                return Pending(following, f"deleting the clone '{job.then[0]}' CloudFormation does not know")
            case Ready() if job.kind == "teardown":
                if job.failure:
                    return Failed(job.failure, job.answer_id)
                return Done(job.answer_id)
            case Ready():
                assert cluster is not None
                ran = ""
                if self.prober is not None:
                    # Checked once before the script runs; while it runs, the run's record says more.
                    checked = self._check_connection(job, cluster) if job.prepare_started is None else None
                    if checked is not None:
                        return checked
                    prepared = self._prepare(job, cluster, token) if job.prepare else self._prepared_with(cluster)
                    if not isinstance(prepared, str):
                        return prepared
                    ran = prepared
                if job.purge_older_than is not None:
                    self._purge_obsolete_copies(job.source, job.purge_older_than)
                return Done(job.answer_id, attributes(cluster, job.source, ran))
            case Broken(why) if job.kind == "converge" and job.replacing is not None:
                return Pending(job.discard(why), f"deleting the failed replacement clone '{job.cluster_id}'")
            case Broken(why):
                if job.failure:
                    why = f"{job.failure} The failed replacement clone '{job.cluster_id}' remains: {why}"
                return Failed(why, job.answer_id)
            case Wait(why) | Act(why=why):
                return Pending(job, why)
        raise AssertionError(f"unhandled step {step}")

    def _prepare(self, job: Job, cluster: ClusterView, token: str) -> Outcome | str:
        """What ran (for ``PreparedWith``) once the request's prepare script succeeded in the ready clone; until
        then, start it (the in-VPC function runs it, asynchronously) and look again, or fail with its reason."""
        assert self.prober is not None
        now = self.run_clock()
        running = f"running the prepare script {job.prepare} in the clone"
        if job.prepare_started is None:
            try:
                self.prober.start_prepare(ProbeRequest(cluster.identifier, prepare=token))
            except Exception as error:
                if is_transient(error):
                    raise
                return self._answer(
                    job, Broken(f"The prepare script could not be started: the function failed: {error}"), None
                )
            logger.info("Prepare script started", extra={"cluster": cluster.identifier, "script": job.prepare})
            return Pending(replace(job, prepare_started=now), running)
        run = self.store.preparation(cluster.identifier)
        if run is not None and run.token == token and run.state == "done":
            logger.info("Prepare script done", extra={"cluster": cluster.identifier, "detail": run.detail})
            return run.prepared_with
        if run is not None and run.token == token and run.state == "failed":
            return self._answer(job, Broken(f"{run.detail[:1].upper()}{run.detail[1:]}."), None)
        if now - job.prepare_started > PREPARE_LIMIT_SECONDS:
            why = (
                f"The prepare script {job.prepare} gave no result within {PREPARE_LIMIT_SECONDS:.0f} s (the "
                "connection check function's timeout, 15 minutes): make it shorter or split the work."
            )
            return self._answer(job, Broken(why), None)
        return Pending(job, running)

    def _prepared_with(self, cluster: ClusterView) -> str:
        """What last prepared the clone (``PreparedWith``), for an answer that runs no script."""
        run = self.store.preparation(cluster.identifier)
        return run.prepared_with if run is not None and run.state == "done" else ""

    def _check_connection(self, job: Job, cluster: ClusterView) -> Outcome | None:
        """None when the connection check reaches the clone (or is not configured); else look again, or fail
        once its patience is over (connection_check.judge)."""
        assert self.prober is not None
        try:
            result = self.prober.probe(probe_request(cluster))
        except Exception as error:
            if is_transient(error):
                raise
            result = ProbeResult(False, "probe", f"the connection check function could not be invoked: {error}")
        verdict = judge(result, cluster, job.unreachable_since, self.clock())
        if verdict.action == "proceed":
            return None
        logger.info(
            "Connection check", extra={"cluster": cluster.identifier, "stage": result.stage, "detail": result.detail}
        )
        if verdict.action == "retry":
            return Pending(replace(job, unreachable_since=verdict.unreachable_since), verdict.reason)
        return self._answer(job, Broken(verdict.reason), None)


@dataclass(frozen=True)
class Look:
    """What one look at a job's cluster saw, and the step planned from it; ``token``: the request's."""

    cluster: ClusterView | None
    step: Step
    token: str = ""


# _restore_clone's word for "the cluster already exists": made by another delivery of the request, or not.
_RESTORED_BY_ANOTHER_DELIVERY = "restored by another delivery"


def _raise_if_transient(error: Exception) -> None:
    """A transient RDS error is raised on: the request is tried again at its next wake-up."""
    if isinstance(error, RdsError) and error.transient:
        raise error


def _warm_ready(cluster: ClusterView, instance_count: int) -> bool:
    """True when a warm clone can answer a stack now: available, with its instances, all available."""
    return (
        cluster.status == "available"
        and len(cluster.instances) >= instance_count
        and all(instance.status == "available" for instance in cluster.instances)
    )


def _copying_in_full(cluster: ClusterView | None) -> bool:
    return cluster is not None and cluster.tags.get(FULL_COPY_TAG) == "true" and cluster.status != "available"


def _source_problem(name: str, source: ClusterView) -> str | None:
    """Why ``source`` cannot be cloned now, in the user's words; None when it can."""
    if not source.engine.startswith("aurora"):
        return f"SourceClusterId '{name}' is a {source.engine} cluster; only Aurora clusters can be cloned."
    if source.status != "available":
        return f"SourceClusterId '{name}' is '{source.status}'; it must be 'available' to be cloned."
    if not source.instances and not source.member_count:
        return f"SourceClusterId '{name}' has no DB instance; Aurora clones a cluster only when it has one."
    return None


def attributes(cluster: ClusterView, source: str, prepared_with: str = "") -> dict[str, str]:
    """The Fn::GetAtt attributes of a ready clone; what it was cloned from comes from its own tags, what
    prepared it from the run's record."""
    numbered = sorted(
        (number, instance.identifier)
        for instance in cluster.instances
        if (number := instance_number(cluster.identifier, instance.identifier)) is not None
    )
    return {
        "Endpoint": cluster.endpoint,
        "ReaderEndpoint": cluster.reader_endpoint,
        "Port": str(cluster.port),
        "ClusterId": cluster.identifier,
        "ClusterArn": cluster.arn,
        "ClusterResourceId": cluster.resource_id,
        "Engine": cluster.engine,
        "EngineVersion": cluster.engine_version,
        "SourceClusterId": cluster.tags.get(CLONED_FROM_TAG, source),
        "DataTimestamp": cluster.tags.get(DATA_TIME_TAG, ""),
        "IsFullCopy": "true" if cluster.tags.get(FULL_COPY_TAG) == "true" else "false",
        "FromWarmPool": "true" if cluster.tags.get(FROM_WARM_POOL_TAG) else "false",
        "InstanceIds": ",".join(identifier for _, identifier in numbered),
        "BacktrackedTo": cluster.backtracked_to,
        "MasterUserSecretArn": cluster.master_user_secret_arn,
        "PreparedWith": prepared_with,
    }
