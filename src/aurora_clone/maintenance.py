"""The scheduled function: sweep orphaned clones, and keep spare clone slots ready for each pool.

Sweep (``aurora_clone.sweep``): clones of this tool whose stack no longer exists (or is DELETE_COMPLETE),
older than ``SWEEP_GRACE`` (default PT1H) and not tagged ``aurora-clone-retain: true``, are deleted, each
logged with its reason; ``SWEEP_DRY_RUN=true`` only logs, ``SWEEP_ENABLED=false`` turns it off.

Each run reads the pools from a JSON document in SSM Parameter Store, then for each pool gathers the
account's clusters, plans (``aurora_clone.pool.plan.plan_pool``, pure), logs the plan and carries it out
without waiting (``aurora_clone.pool.runner``). A pool that fails is logged and counted; the others go on.

The document::

    {"pools": [{"source": "prod-db", "spareSlots": 30, "maxCopyAge": "P3D", "dryRun": false}]}

Configuration (all optional): ``POOL_CONFIG_PARAMETER`` (default ``/aurora-clone/pools``; a missing
parameter means no pools), ``CLONE_SLOT_LIMIT`` (default 15), ``POWERTOOLS_METRICS_NAMESPACE`` (default
``AuroraClone``), ``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_LOG_LEVEL``.

Metrics (CloudWatch embedded metric format on stdout, one document per pool, dimensions ``service`` and
``Source``): ``FreeSlots``, ``FutureSlots``, ``Copies``, ``CopiesCreated``, ``CopiesDeleted``, ``Errors``.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aurora_clone import clock as process_clock
from aurora_clone.logs import SERVICE
from aurora_clone.ownership import LOGICAL_ID_TAG, STACK_ID_TAG
from aurora_clone.pool.plan import PoolConfigError, PoolPlan, PoolPolicy, parse_pool_config, plan_pool
from aurora_clone.pool.runner import PoolLogger, RunResult, carry_out, gather, take_teardown_step
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import Broken
from aurora_clone.request_store import RequestStore
from aurora_clone.settings import clone_slot_limit
from aurora_clone.stacks import stack_resource_ids, stack_statuses
from aurora_clone.sweep import DEFAULT_GRACE, SweepPlan, owning_resources, owning_stacks, plan_sweep
from aurora_clone.timespec import parse_duration

DEFAULT_POOL_PARAMETER = "/aurora-clone/pools"
METRICS_NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "AuroraClone"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


class PoolDocumentError(Exception):
    """The pool document could not be read (SSM refused or could not be reached)."""


@dataclass(frozen=True)
class PoolRun:
    """One pool's run: the plan (None when planning failed) and what was done."""

    source_id: str
    plan: PoolPlan | None
    result: RunResult

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
            "errors": list(self.result.errors),
        }


def read_pool_document(parameter_name: str, ssm: Any = None) -> str | None:
    """The pool document in the SSM parameter ``parameter_name``; None when there is no such parameter."""
    client = ssm or boto3.client(
        "ssm",
        region_name=os.environ.get("AWS_REGION"),
        config=Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=10),
    )
    try:
        value: str = client.get_parameter(Name=parameter_name, WithDecryption=True)["Parameter"]["Value"]
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
            return None
        raise PoolDocumentError(f"Could not read the pool document '{parameter_name}' from SSM: {error}") from error
    except BotoCoreError as error:
        raise PoolDocumentError(f"Could not reach SSM for the pool document '{parameter_name}': {error}") from error
    return value


def run_pool(policy: PoolPolicy, rds: RdsGateway, now: datetime, log: PoolLogger = logger) -> PoolRun:
    """Gather, plan, log the plan and carry it out for one pool; RDS errors end up in the result."""
    try:
        plan = plan_pool(policy, gather(rds), now)
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
        },
    )
    return PoolRun(policy.source_id, plan, carry_out(plan, rds, now, log))


def run_pools(
    policies: Sequence[PoolPolicy], rds: RdsGateway, now: datetime, log: PoolLogger = logger
) -> Iterator[PoolRun]:
    """Every pool in turn, each run yielded as it ends; one pool's failure, whatever it is, is logged and the
    next pool still runs."""
    for policy in policies:
        try:
            yield run_pool(policy, rds, now, log)
        except Exception as error:  # a bug or an unforeseen error in one pool must not stop the others
            log.exception("Pool run failed", extra={"source": policy.source_id})
            yield PoolRun(policy.source_id, None, RunResult(errors=(f"Unexpected error: {error}",)))


def emit_metrics(run: PoolRun) -> None:
    """One EMF document for the pool: its slots and copies, and what this run did."""
    metrics.add_dimension(name="Source", value=run.source_id)
    if run.plan is not None:
        metrics.add_metric(name="FreeSlots", unit=MetricUnit.Count, value=run.plan.free_slots)
        metrics.add_metric(name="FutureSlots", unit=MetricUnit.Count, value=run.plan.future_slots)
        metrics.add_metric(name="Copies", unit=MetricUnit.Count, value=len(run.plan.copies))
    metrics.add_metric(name="CopiesCreated", unit=MetricUnit.Count, value=len(run.result.created))
    metrics.add_metric(name="CopiesDeleted", unit=MetricUnit.Count, value=len(run.result.deleted))
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=len(run.result.errors))
    metrics.flush_metrics()


@dataclass(frozen=True)
class SweepRun:
    """What one sweep found and did."""

    plan: SweepPlan
    deleting: tuple[str, ...]
    errors: tuple[str, ...]


def run_sweep(
    rds: RdsGateway,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    statuses: Callable[[Sequence[str]], Mapping[str, str | None]] = stack_statuses,
    resources: Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], str | None]] = stack_resource_ids,
    owner: Callable[[str], str | None] | None = None,
    log: PoolLogger = logger,
) -> SweepRun:
    """Delete (one step at a time, without waiting) the clones whose stack is gone, or whose live stack's
    resource names another clone and no pending request owns; log each with its reason."""
    snapshot = rds.list_clusters()
    stack_status = statuses(owning_stacks(snapshot))
    resource_ids = resources(owning_resources(snapshot, stack_status))
    unnamed = {
        c.identifier
        for c in snapshot
        if (key := (c.tags.get(STACK_ID_TAG, ""), c.tags.get(LOGICAL_ID_TAG, ""))) in resource_ids
        and resource_ids[key] != c.identifier
    }
    owner_of = owner or RequestStore().owner
    owned = frozenset(cluster_id for cluster_id in unnamed if owner_of(cluster_id))
    plan = plan_sweep(snapshot, stack_status, now, grace, dry_run, resource_ids, owned)
    for line in plan.kept:
        log.info("Orphan kept", extra={"why": line})
    deleting: list[str] = []
    errors: list[str] = []
    for orphan in plan.orphans:
        if dry_run:
            log.info("Orphan would be deleted (dry run)", extra={"cluster": orphan.cluster_id, "why": orphan.reason})
            continue
        try:
            cluster = rds.describe_cluster(orphan.cluster_id)
            if cluster is None or cluster.tags.get(STACK_ID_TAG) != orphan.stack_id:
                continue  # gone, or no longer the clone that was judged
            step = take_teardown_step(rds, cluster)
        except RdsError as error:
            errors.append(f"{orphan.cluster_id}: {error}")
            continue
        if isinstance(step, Broken):
            errors.append(f"{orphan.cluster_id}: {step.why}")
            continue
        deleting.append(orphan.cluster_id)
        log.info("Orphan being deleted", extra={"cluster": orphan.cluster_id, "why": orphan.reason})
    return SweepRun(plan, tuple(deleting), tuple(errors))


def sweep_settings() -> tuple[bool, timedelta, bool]:
    """``SWEEP_ENABLED`` (default true), ``SWEEP_GRACE`` (ISO-8601, default PT1H), ``SWEEP_DRY_RUN`` (false)."""
    enabled = (os.environ.get("SWEEP_ENABLED") or "true").strip().lower() != "false"
    grace_text = (os.environ.get("SWEEP_GRACE") or "").strip()
    grace = parse_duration(grace_text, allow_zero=True) if grace_text else DEFAULT_GRACE
    dry_run = (os.environ.get("SWEEP_DRY_RUN") or "false").strip().lower() == "true"
    return enabled, grace, dry_run


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled run: every pool of the document, planned and carried out; returns a short summary.

    An unreadable or invalid document fails the invocation (nothing can be done without it); a missing
    one means there are no pools.
    """
    now = process_clock.utcnow()
    rds = RdsGateway()
    summary: dict[str, Any] = {"pools": [], "errors": 0}
    enabled, grace, dry_run = sweep_settings()
    if enabled:
        sweep = run_sweep(rds, now, grace=grace, dry_run=dry_run)
        for problem in sweep.errors:
            logger.error("Orphan not deleted", extra={"problem": problem})
        metrics.add_metric(name="OrphansDeleted", unit=MetricUnit.Count, value=len(sweep.deleting))
        metrics.flush_metrics()
        summary["sweep"] = {"deleting": list(sweep.deleting), "kept": list(sweep.plan.kept), "dry_run": dry_run}
        summary["errors"] += len(sweep.errors)
    parameter = os.environ.get("POOL_CONFIG_PARAMETER") or DEFAULT_POOL_PARAMETER
    logger.append_keys(pool_parameter=parameter)
    document = read_pool_document(parameter)
    if document is None:
        logger.info("No pool document: no pools to keep", extra={"parameter": parameter})
        return summary
    try:
        policies = parse_pool_config(document, slot_limit=clone_slot_limit())
    except PoolConfigError as error:
        logger.error("Invalid pool document", extra={"parameter": parameter, "problems": error.problems})
        raise
    runs = []
    for run in run_pools(policies, rds, now):
        emit_metrics(run)  # at once: a run cut short by the timeout still reports the pools it did
        runs.append(run)
    summary["pools"] = [run.summary() for run in runs]
    summary["errors"] += sum(len(run.result.errors) for run in runs)
    logger.info("Pool run finished", extra={"pools": len(runs), "errors": summary["errors"]})
    return summary
