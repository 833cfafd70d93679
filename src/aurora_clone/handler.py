"""The Lambda entry point: tells CloudFormation's requests, wake-ups and RDS events apart, and hands each
to the request engine. Anything else is logged and ignored: never answered, never raised.

Configuration (``aurora_clone.settings``): ``REQUEST_TABLE`` and ``WAKE_UP_QUEUE_URL`` (set by
template.yaml), ``CLONE_SLOT_LIMIT``, ``CONNECTION_CHECK_FUNCTION``, ``RESPONSE_ENDPOINT`` (a local world's
response bucket), and Powertools' ``POWERTOOLS_SERVICE_NAME`` and ``POWERTOOLS_LOG_LEVEL`` (read by
Powertools itself).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone.cfn.helper import RequestDispatch
from aurora_clone.engine import RequestEngine
from aurora_clone.logs import SERVICE
from aurora_clone.pool_waker import PoolWaker
from aurora_clone.probe_invoker import ProbeInvoker
from aurora_clone.rds import RdsGateway
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.settings import settings
from aurora_clone.wake_queue import WakeUpQueue
from aurora_clone.wake_rules import invocation_kind

logger = Logger(service=SERVICE)


@functools.cache
def engine() -> RequestEngine:
    """Built on first use, not at import, and reused while the Lambda environment lives."""

    check = settings.connection_check_function
    prober = ProbeInvoker(check) if check else None
    pool = settings.pool_function
    waker = PoolWaker(pool) if pool else None

    def clone_resource(hooks: EngineHooks) -> CloneResource:
        return CloneResource(
            RdsGateway(), slot_limit=settings.clone_slot_limit, hooks=hooks, prober=prober, pool_waker=waker
        )

    return RequestEngine(clone_resource, RequestStore(), WakeUpQueue())


helper = RequestDispatch(on_timeout=lambda event: engine().on_lambda_timeout(event))


@helper.create
@helper.update
@helper.delete
def on_request(event: dict[str, Any], context: Any) -> None:
    # The function's own ARN, from the context: a request for a custom type other than Custom::AuroraClone
    # is confirmed only when its ServiceToken is this function.
    engine().on_request(event, str(getattr(context, "invoked_function_arn", "") or ""))


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any] | None:
    """Lambda handler for Custom::AuroraClone requests, its own wake-ups and RDS events."""
    kind = invocation_kind(event)
    logger.append_keys(invocation=kind)
    if kind == "cloudformation":
        logger.append_keys(
            request_type=event["RequestType"],
            stack_id=event["StackId"],
            logical_id=event["LogicalResourceId"],
            cfn_request_id=event["RequestId"],
            physical_id=event.get("PhysicalResourceId"),
        )
        helper(event, context)
        return None
    if kind == "wake-ups":
        return engine().on_wake_ups(event["Records"])
    if kind == "rds-event":
        engine().on_rds_event(event)
        return None
    keys = sorted(str(key) for key in event)[:20] if isinstance(event, dict) else [type(event).__name__]
    logger.warning(
        "Ignored an invocation that is none of a CloudFormation request, a wake-up or an RDS event",
        extra={"keys": keys},
    )
    return None
