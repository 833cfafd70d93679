"""The gateway to CloudFormation's stack statuses and resources: for the sweep, and for the engine's intake
(what CloudFormation's record says of the stack and resource a request names).

A stack that does not exist answers ``None``; any other failure raises, so the sweep deletes nothing on a
doubt (a denied or throttled DescribeStacks must never look like a deleted stack), and a request that
cannot be confirmed yet is tried again (throttling, 5xx) rather than ignored.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError

from aurora_clone.aws_clients import aws_client
from aurora_clone.aws_errors import error_code, error_message


def stack_statuses(stack_ids: Iterable[str], client: Any = None) -> dict[str, str | None]:
    """Each stack id's status (DescribeStacks by stack id also finds deleted stacks: DELETE_COMPLETE)."""
    cloudformation = client or aws_client("cloudformation")
    statuses: dict[str, str | None] = {}
    for stack_id in stack_ids:
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        except ClientError as error:
            if _does_not_exist(error):
                statuses[stack_id] = None
                continue
            raise
        statuses[stack_id] = stacks[0]["StackStatus"] if stacks else None
    return statuses


def stack_resource_ids(resources: Iterable[tuple[str, str]], client: Any = None) -> dict[tuple[str, str], str | None]:
    """The PhysicalResourceId each (stack id, logical id) names now; None when the stack has no such resource."""
    cloudformation = client or aws_client("cloudformation")
    named: dict[tuple[str, str], str | None] = {}
    for stack_id, logical_id in resources:
        try:
            detail = cloudformation.describe_stack_resource(StackName=stack_id, LogicalResourceId=logical_id)
        except ClientError as error:
            if _does_not_exist(error):
                named[(stack_id, logical_id)] = None
                continue
            raise
        named[(stack_id, logical_id)] = detail["StackResourceDetail"].get("PhysicalResourceId") or None
    return named


def describe_request_resource(
    stack_id: str, logical_id: str, client: Any = None
) -> tuple[dict[str, str] | None, dict[str, str | None] | None]:
    """What CloudFormation's record says of a request's stack and resource: the stack (``id``, ``status``),
    None when there is no such stack; the resource (``type``, ``physical_id``, ``status``), None when the
    stack has no such resource. A ValidationError (no such stack or resource, or an id CloudFormation
    refuses) confirms nothing; anything else raises (throttling, 5xx: the request is tried again)."""
    cloudformation = client or aws_client("cloudformation")
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
    except ClientError as error:
        if error_code(error) == "ValidationError":
            return None, None
        raise
    if not stacks:
        return None, None
    stack = {"id": str(stacks[0].get("StackId", "")), "status": str(stacks[0].get("StackStatus", ""))}
    try:
        detail = cloudformation.describe_stack_resource(StackName=stack_id, LogicalResourceId=logical_id)
    except ClientError as error:
        if error_code(error) == "ValidationError":
            return stack, None
        raise
    found = detail["StackResourceDetail"]
    resource = {
        "type": str(found.get("ResourceType", "")),
        "physical_id": found.get("PhysicalResourceId") or None,
        "status": found.get("ResourceStatus") or None,
    }
    return stack, resource


def _does_not_exist(error: ClientError) -> bool:
    return error_code(error) == "ValidationError" and "does not exist" in error_message(error)
