"""The copy pool's scheduled function: keep spare clone slots ready for each configured source.

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
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from aurora_clone.logs import SERVICE
from aurora_clone.pool.plan import PoolConfigError, PoolPlan, PoolPolicy, parse_pool_config, plan_pool
from aurora_clone.pool.runner import PoolLogger, RunResult, carry_out, gather
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.settings import clone_slot_limit

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


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """The scheduled run: every pool of the document, planned and carried out; returns a short summary.

    An unreadable or invalid document fails the invocation (nothing can be done without it); a missing
    one means there are no pools.
    """
    now = datetime.now(UTC)
    parameter = os.environ.get("POOL_CONFIG_PARAMETER") or DEFAULT_POOL_PARAMETER
    logger.append_keys(pool_parameter=parameter)
    document = read_pool_document(parameter)
    if document is None:
        logger.info("No pool document: no pools to keep", extra={"parameter": parameter})
        return {"pools": [], "errors": 0}
    try:
        policies = parse_pool_config(document, slot_limit=clone_slot_limit())
    except PoolConfigError as error:
        logger.error("Invalid pool document", extra={"parameter": parameter, "problems": error.problems})
        raise
    runs = []
    for run in run_pools(policies, RdsGateway(), now):
        emit_metrics(run)  # at once: a run cut short by the timeout still reports the pools it did
        runs.append(run)
    summary = {"pools": [run.summary() for run in runs], "errors": sum(len(run.result.errors) for run in runs)}
    logger.info("Pool run finished", extra={"pools": len(runs), "errors": summary["errors"]})
    return summary
