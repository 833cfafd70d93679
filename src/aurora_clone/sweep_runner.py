"""Carrying out a sweep: find this tool's clones that outlived their stack or their resource, and delete them.

Which clones are orphans is decided by ``aurora_clone.sweep`` (pure); here the facts are gathered (RDS,
CloudFormation, the request table and its ledger) and each orphan's deletion is stepped through the one
executor (``aurora_clone.actions``), without waiting. A cluster tagged as this tool's that its ledger does
not name is reported (``forged``) and never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aws_lambda_powertools import Logger

from aurora_clone.actions import ActionExecutor
from aurora_clone.ledger import trusted_clusters
from aurora_clone.logs import SERVICE, AnyLogger
from aurora_clone.ownership import LOGICAL_ID_TAG, STACK_ID_TAG
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import Broken
from aurora_clone.request_store import RequestStore
from aurora_clone.stacks import stack_resource_ids, stack_statuses
from aurora_clone.sweep import DEFAULT_GRACE, SweepPlan, owning_resources, owning_stacks, plan_sweep

logger = Logger(service=SERVICE, child=True)


@dataclass(frozen=True)
class SweepRun:
    """What one sweep found and did."""

    plan: SweepPlan
    deleting: tuple[str, ...]
    errors: tuple[str, ...]
    forged: tuple[str, ...] = ()  # tagged as this tool's, with no record of it: reported, left alone


def run_sweep(
    rds: RdsGateway,
    now: datetime,
    *,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    statuses: Callable[[Sequence[str]], Mapping[str, str | None]] = stack_statuses,
    resources: Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], str | None]] = stack_resource_ids,
    owner: Callable[[str], str | None] | None = None,
    log: AnyLogger = logger,
    store: RequestStore | None = None,
) -> SweepRun:
    """Delete (one step at a time, without waiting) the clones whose stack is gone, or whose live stack's
    resource names another clone and no pending request owns; log each with its reason."""
    store = store or RequestStore()
    seen = trusted_clusters(rds, store, log)
    snapshot = seen.snapshot
    stack_status = statuses(owning_stacks(snapshot))
    resource_ids = resources(owning_resources(snapshot, stack_status))
    unnamed = {
        c.identifier
        for c in snapshot
        if (key := (c.tags.get(STACK_ID_TAG, ""), c.tags.get(LOGICAL_ID_TAG, ""))) in resource_ids
        and resource_ids[key] != c.identifier
    }
    owner_of = owner or store.owner
    owned = frozenset(cluster_id for cluster_id in unnamed if owner_of(cluster_id))
    plan = plan_sweep(snapshot, stack_status, now, grace, dry_run, resource_ids, owned)
    for line in plan.kept:
        log.info("Orphan kept", extra={"why": line})
    executor = ActionExecutor(rds, store)
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
            step = executor.tear_down(cluster)
        except RdsError as error:
            errors.append(f"{orphan.cluster_id}: {error}")
            continue
        if isinstance(step, Broken):
            errors.append(f"{orphan.cluster_id}: {step.why}")
            continue
        deleting.append(orphan.cluster_id)
        log.info("Orphan being deleted", extra={"cluster": orphan.cluster_id, "why": orphan.reason})
    return SweepRun(plan, tuple(deleting), tuple(errors), seen.forged)
