"""The Lambda entry point: crhelper wiring and nothing else.

Configuration (all optional): ``POLL_RULE_PREFIX`` (default ``aurora-clone``), and Powertools'
``POWERTOOLS_SERVICE_NAME`` / ``POWERTOOLS_LOG_LEVEL`` (default INFO).
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone.cfn.helper import HardenedCfnResource
from aurora_clone.cfn.polling import JOB_KEY, POLL_KEY
from aurora_clone.logs import SERVICE
from aurora_clone.outcome import Job
from aurora_clone.rds import RdsGateway
from aurora_clone.resource import CloneResource, Request
from aurora_clone.settings import clone_slot_limit

logger = Logger(service=SERVICE)
helper = HardenedCfnResource()


@functools.cache
def clone_resource() -> CloneResource:
    """Built on first use, not at import, and reused while the Lambda environment lives."""
    return CloneResource(RdsGateway(), slot_limit=clone_slot_limit())


@helper.create
def create(event: dict[str, Any], _context: Any) -> Any:
    return clone_resource().create(Request.from_event(event))


@helper.update
def update(event: dict[str, Any], _context: Any) -> Any:
    return clone_resource().update(Request.from_event(event))


@helper.delete
def delete(event: dict[str, Any], _context: Any) -> Any:
    return clone_resource().delete(Request.from_event(event))


@helper.poll_create
@helper.poll_update
@helper.poll_delete
def poll(event: dict[str, Any], _context: Any) -> Any:
    return clone_resource().poll(Job.from_dict(event[JOB_KEY]), Request.from_event(event))


@logger.inject_lambda_context(log_event=False, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> None:
    """Lambda handler for Custom::AuroraClone requests and for its own polls."""
    logger.append_keys(
        request_type=event.get("RequestType"),
        stack_id=event.get("StackId"),
        logical_id=event.get("LogicalResourceId"),
        cfn_request_id=event.get("RequestId"),
        physical_id=event.get("PhysicalResourceId"),
        poll=POLL_KEY in event,
    )
    helper(event, context)
