"""The scheduled function: sweep orphaned clones, and keep spare clone slots ready for each pool.

Sweep (``aurora_clone.sweep_runner``): clones of this tool whose stack no longer exists (or is
DELETE_COMPLETE), older than ``SWEEP_GRACE`` (default PT1H) and not tagged ``aurora-clone-retain: true``,
are deleted, each logged with its reason; ``SWEEP_DRY_RUN=true`` only logs, ``SWEEP_ENABLED=false`` turns
it off.

Each run reads the pools from a JSON document in SSM Parameter Store, then for each pool gathers the
account's clusters, plans (``aurora_clone.pool.plan.plan_pool``, pure), logs the plan and carries it out
without waiting (``aurora_clone.pool_runner``). A pool that fails is logged and counted; the others go on.

The document::

    {"pools": [{"source": "prod-db", "spareSlots": 30, "maxCopyAge": "P3D", "dryRun": false,
                "warm": [{"name": "ci", "count": 3, "maxAge": "PT12H",
                          "properties": {"InstanceClass": "db.t4g.medium"}}]}]}

Besides its schedule, the function runs the pools (not the sweep) when a Create claimed a warm clone
(``{"refill": "<source>"}``, from the clone function: that pool only) and when RDS reports a step of a
warm clone (an RDS event whose source identifier is one: every pool, so the clone's next step follows at once).

Configuration (all optional, see ``aurora_clone.settings``): ``POOL_CONFIG_PARAMETER`` (a missing parameter
means no pools), ``CLONE_SLOT_LIMIT``, ``SWEEP_ENABLED``, ``SWEEP_GRACE``, ``SWEEP_DRY_RUN``,
``POWERTOOLS_METRICS_NAMESPACE``, ``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_LOG_LEVEL``.

Metrics (CloudWatch embedded metric format on stdout, one document per pool, dimensions ``service`` and
``Source``): ``FreeSlots``, ``FutureSlots``, ``Copies``, ``CopiesCreated``, ``CopiesDeleted``, ``Errors``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from aurora_clone import clock as process_clock
from aurora_clone.logs import SERVICE
from aurora_clone.pool.plan import PoolConfigError, parse_pool_config
from aurora_clone.pool_runner import PoolRun, read_pool_document, retire_warm_clones, run_pools
from aurora_clone.rds import RdsGateway
from aurora_clone.settings import settings
from aurora_clone.sweep_runner import run_sweep

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=settings.metrics_namespace, service=SERVICE)


def emit_metrics(run: PoolRun) -> None:
    """One EMF document for the pool: its slots and copies, and what this run did."""
    metrics.add_dimension(name="Source", value=run.source_id)
    if run.plan is not None:
        metrics.add_metric(name="FreeSlots", unit=MetricUnit.Count, value=run.plan.free_slots)
        metrics.add_metric(name="FutureSlots", unit=MetricUnit.Count, value=run.plan.future_slots)
        metrics.add_metric(name="Copies", unit=MetricUnit.Count, value=len(run.plan.copies))
    metrics.add_metric(name="CopiesCreated", unit=MetricUnit.Count, value=len(run.result.created))
    metrics.add_metric(name="CopiesDeleted", unit=MetricUnit.Count, value=len(run.result.deleted))
    metrics.add_metric(name="WarmClonesMade", unit=MetricUnit.Count, value=len(run.result.warm_made))
    metrics.add_metric(name="WarmClonesReady", unit=MetricUnit.Count, value=len(run.result.warm_ready))
    metrics.add_metric(name="Errors", unit=MetricUnit.Count, value=len(run.result.errors))
    metrics.flush_metrics()


@dataclass(frozen=True)
class Asked:
    """What one invocation of the pool function is for: the sweep too, one source's pool only (None: every
    pool), or only the pools that keep warm clones."""

    sweep: bool
    only: str | None = None
    warm_only: bool = False


# The target Input of the warm upkeep schedule (template.yaml PoolWarmUpkeepRule).
WARM_UPKEEP = {"upkeep": "warm"}


def pools_asked_for(event: Any) -> Asked | None:
    """What an invocation asks; None for an RDS event of something that is not a warm clone (nothing to do).

    >>> pools_asked_for({"refill": "Prod-DB"}), pools_asked_for({"source": "aws.events"})
    (Asked(sweep=False, only='prod-db', warm_only=False), Asked(sweep=True, only=None, warm_only=False))
    >>> pools_asked_for({"upkeep": "warm"})
    Asked(sweep=False, only=None, warm_only=True)
    >>> pools_asked_for({"source": "aws.rds", "detail": {"SourceIdentifier": "aurora-clone-prod-db-warm-ci-1-1"}})
    Asked(sweep=False, only=None, warm_only=True)
    >>> pools_asked_for({"source": "aws.rds", "detail": {"SourceIdentifier": "aurora-clone-prod-db-copy-1-1"}})
    """
    if isinstance(event, dict) and isinstance(event.get("refill"), str):
        return Asked(sweep=False, only=event["refill"].strip().lower())
    if event == WARM_UPKEEP:
        return Asked(sweep=False, warm_only=True)
    if isinstance(event, dict) and event.get("source") == "aws.rds":
        detail = event.get("detail")
        identifier = detail.get("SourceIdentifier") if isinstance(detail, dict) else None
        if isinstance(identifier, str) and "-warm-" in identifier:
            return Asked(sweep=False, warm_only=True)
        return None
    return Asked(sweep=True)


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled run: every pool of the document, planned and carried out; returns a short summary.

    An unreadable or invalid document fails the invocation (nothing can be done without it); a missing
    one means there are no pools.
    """
    now = process_clock.utcnow()
    rds = RdsGateway()
    summary: dict[str, Any] = {"pools": [], "errors": 0}
    dry_run = settings.sweep_dry_run
    asked = pools_asked_for(event)
    if asked is None:
        return summary
    if asked.sweep and settings.sweep_enabled:
        sweep = run_sweep(rds, now, grace=settings.sweep_grace, dry_run=dry_run)
        for problem in sweep.errors:
            logger.error("Orphan not deleted", extra={"problem": problem})
        metrics.add_metric(name="OrphansDeleted", unit=MetricUnit.Count, value=len(sweep.deleting))
        # Clusters someone tagged as this tool's without its record: worth an alarm, never a deletion.
        metrics.add_metric(name="UnrecordedTaggedClusters", unit=MetricUnit.Count, value=len(sweep.forged))
        metrics.flush_metrics()
        summary["sweep"] = {
            "deleting": list(sweep.deleting),
            "kept": list(sweep.plan.kept),
            "unrecorded": list(sweep.forged),
            "dry_run": dry_run,
        }
        summary["errors"] += len(sweep.errors)
    parameter = settings.pool_config_parameter
    logger.append_keys(pool_parameter=parameter)
    document = read_pool_document(parameter)
    if document is None:
        logger.info("No pool document: no pools to keep", extra={"parameter": parameter})
        return summary
    try:
        policies = parse_pool_config(document, slot_limit=settings.clone_slot_limit)
    except PoolConfigError as error:
        logger.error("Invalid pool document", extra={"parameter": parameter, "problems": error.problems})
        raise
    if asked.only is not None:
        policies = tuple(policy for policy in policies if policy.source_id == asked.only)
    else:
        retired = retire_warm_clones(policies, rds, now)
        summary["warmRetired"] = list(retired.warm_deleted)
        summary["errors"] += len(retired.errors)
    if asked.warm_only:
        # Between the daily runs, only warm clones need their next step (a cluster made needs its instance).
        policies = tuple(policy for policy in policies if policy.warm)
    runs = []
    for run in run_pools(policies, rds, now):
        emit_metrics(run)  # at once: a run cut short by the timeout still reports the pools it did
        runs.append(run)
    summary["pools"] = [run.summary() for run in runs]
    summary["errors"] += sum(len(run.result.errors) for run in runs)
    logger.info("Pool run finished", extra={"pools": len(runs), "errors": summary["errors"]})
    return summary
