"""Polls as EventBridge rules: one ``rate(1 minute)`` rule per pending request, targeting this function.

What differs from crhelper, and why:
- Rule names are ``<prefix>-<cluster hash>-<request token>`` (<= 64 characters whatever the
  LogicalResourceId): deterministic, so a re-delivered request reuses its rule, and findable from a
  cluster id, so a pending request can be completed at once from outside (for example on an RDS event)
  by invoking the function with the rule's target Input.
- The target Input is a compact request (no properties, no ResponseURL logging), checked against
  EventBridge's 8192-character limit before it is sent.
- No Lambda permission per rule: the template grants EventBridge ``rule/<prefix>-*`` once (a resource
  policy is capped at 20 KB).
"""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from aurora_clone.naming import MAX_RULE_NAME, poll_rule_name, request_token
from aurora_clone.outcome import Job

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

POLL_SCHEDULE = "rate(1 minute)"
POLL_SECONDS = 60
MAX_INPUT = 8192  # EventBridge's limit for a target's Input.
TARGET_ID = "poll"
JOB_KEY = "AuroraCloneJob"
POLL_KEY = "CrHelperPoll"  # crhelper's marker: the event is a poll, run poll_* instead of create/update/delete
RULE_KEY = "CrHelperRule"
DEFAULT_PREFIX = "aurora-clone"

# The request fields a poll needs; everything else (properties above all) stays out of the Input.
_ENVELOPE = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId", "ResourceType")


class PollSchedulingError(Exception):
    """A poll could not be scheduled; the request is answered FAILED with this message."""


def rule_prefix() -> str:
    prefix = os.environ.get("POLL_RULE_PREFIX") or DEFAULT_PREFIX
    if len(poll_rule_name(prefix, "x", "0" * 12)) > MAX_RULE_NAME:
        raise PollSchedulingError(f"POLL_RULE_PREFIX '{prefix}' is too long: at most 38 characters.")
    return prefix


def poll_input(event: dict[str, Any], job: Job, rule: str) -> str:
    """The target Input: the request's envelope, the physical id so far, and the job."""
    envelope = {key: event[key] for key in _ENVELOPE if key in event}
    if event.get("PhysicalResourceId"):
        envelope["PhysicalResourceId"] = event["PhysicalResourceId"]
    envelope.update({POLL_KEY: True, RULE_KEY: rule, JOB_KEY: job.to_dict()})
    text = json.dumps(envelope, separators=(",", ":"))
    if len(text) > MAX_INPUT:
        raise PollSchedulingError(
            f"The poll for this request would need {len(text)} characters of EventBridge Input "
            f"(limit {MAX_INPUT}); shorten the LogicalResourceId or the stack name."
        )
    return text


class PollScheduler:
    """Creates and removes the poll rule of a request."""

    def __init__(self, client: EventBridgeClient | None = None, prefix: str | None = None) -> None:
        self._client = client or boto3.client(
            "events",
            region_name=os.environ.get("AWS_REGION"),
            config=Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=10),
        )
        self._prefix = prefix or rule_prefix()

    def rule_for(self, event: dict[str, Any], job: Job) -> str:
        token = request_token(event["StackId"], event["RequestId"], event["LogicalResourceId"])
        return poll_rule_name(self._prefix, job.cluster_id, token)

    def schedule(self, event: dict[str, Any], job: Job, function_arn: str) -> str:
        """Create (or refresh) the rule that polls ``job``; returns the rule's name."""
        rule = event.get(RULE_KEY) or self.rule_for(event, job)
        target_input = poll_input(event, job, rule)
        try:
            self._client.put_rule(
                Name=rule,
                ScheduleExpression=POLL_SCHEDULE,
                State="ENABLED",
                Description=f"Polls {event['LogicalResourceId'][:200]} ({job.kind} {job.cluster_id})",
            )
            self._client.put_targets(Rule=rule, Targets=[{"Id": TARGET_ID, "Arn": function_arn, "Input": target_input}])
        except ClientError as error:
            raise PollSchedulingError(f"Could not schedule the poll rule '{rule}': {error}") from error
        return rule

    def cancel(self, rule: str) -> None:
        """Remove the rule and its target; a rule already gone is fine (a poll delivered twice)."""
        try:
            self._client.remove_targets(Rule=rule, Ids=[TARGET_ID])
            self._client.delete_rule(Name=rule)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise

    def pending_creates(self, stack_id: str, logical_id: str) -> list[tuple[str, str]]:
        """The clones whose Create for this resource is still being polled: never answered.

        CloudFormation sends a Delete with a made-up PhysicalResourceId when it stops waiting for a Create
        (its ServiceTimeout passed, or another resource of the stack failed); this finds what that Create
        is making, so the Delete can remove it. Returns (rule name, cluster id) pairs.
        """
        clusters = []
        for page in self._client.get_paginator("list_rules").paginate(NamePrefix=f"{self._prefix}-"):
            for rule in page.get("Rules", []):
                for target in self._client.list_targets_by_rule(Rule=rule["Name"]).get("Targets", []):
                    try:
                        request = json.loads(target.get("Input") or "{}")
                    except ValueError:
                        continue
                    job = request.get(JOB_KEY) or {}
                    if (
                        request.get("RequestType") == "Create"
                        and request.get("StackId") == stack_id
                        and request.get("LogicalResourceId") == logical_id
                        and job.get("kind") == "converge"
                    ):
                        clusters.append((str(rule["Name"]), str(job["cluster_id"])))
        return clusters
