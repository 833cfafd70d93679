"""The gateway to CloudFormation's stack statuses, for the sweep.

A stack that does not exist answers ``None``; any other failure raises, so the sweep deletes nothing on a
doubt (a denied or throttled DescribeStacks must never look like a deleted stack).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError


def stack_statuses(stack_ids: Iterable[str], client: Any = None) -> dict[str, str | None]:
    """Each stack id's status (DescribeStacks by stack id also finds deleted stacks: DELETE_COMPLETE)."""
    cloudformation = client or boto3.client(
        "cloudformation",
        region_name=os.environ.get("AWS_REGION"),
        config=Config(retries={"mode": "adaptive", "max_attempts": 8}),
    )
    statuses: dict[str, str | None] = {}
    for stack_id in stack_ids:
        try:
            stacks = cloudformation.describe_stacks(StackName=stack_id)["Stacks"]
        except ClientError as error:
            message = error.response.get("Error", {}).get("Message", "")
            if error.response.get("Error", {}).get("Code") == "ValidationError" and "does not exist" in message:
                statuses[stack_id] = None
                continue
            raise
        statuses[stack_id] = stacks[0]["StackStatus"] if stacks else None
    return statuses
