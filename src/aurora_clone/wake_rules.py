"""What an invocation is, and when a pending request is looked at next. Pure: plain data in, decisions out.

The function is invoked three ways (REFERENCE: "Waking a request up again", "RDS events on EventBridge"):
CloudFormation's request, a wake-up message from the function's own queue, and an RDS event from the
template's rule. Anything else is ignored. A wake-up or an event only names what to look at (a request
token, a cluster): what to do always comes from the request's record.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from aurora_clone.clone_state import ClusterView

REQUEST_TYPES = frozenset({"Create", "Update", "Delete"})
CLOUDFORMATION_FIELDS = ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId")
RDS_DETAIL_TYPES = frozenset({"RDS DB Cluster Event", "RDS DB Instance Event"})

FALLBACK_SECONDS = 30  # a pending request is looked at at least this often, whatever events say
LAST_STAGE_SECONDS = 10  # ... and this often once its last stage is under way: its event may be lost
WATCH_SECONDS = 30  # an accepted deletion answered early (WaitForDeletion false) is looked at this often ...
WATCH_LIMIT_SECONDS = 3600  # ... for at most this long after the answer
RECHECK_SECONDS = 2  # after an event that Describe does not show yet (REFERENCE: eventual consistency)
ANSWER_MARGIN_SECONDS = 15  # the answer must reach CloudFormation this long before its ServiceTimeout
MAX_DELAY_SECONDS = 900  # SQS's limit for DelaySeconds
# A request's first step may still be running this long after it began (the function's timeout, 120 s, and a
# margin): a fallback that finds no job yet before then only keeps the chain going, so two first steps
# never run at once.
START_GRACE_SECONDS = 150

_TOKEN = re.compile(r"[0-9a-f]{12}")
_WAKE = re.compile(r"[0-9a-f]{32}")
_INSTANCE_NUMBER = re.compile(r"-(\d{1,2})$")

InvocationKind = Literal["cloudformation", "wake-ups", "rds-event", "other"]


def invocation_kind(event: Any) -> InvocationKind:
    """Which of the function's three inputs ``event`` is, by its shape alone.

    >>> invocation_kind({})
    'other'
    >>> invocation_kind({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]})
    'wake-ups'
    >>> invocation_kind({"source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {}})
    'rds-event'
    """
    if not isinstance(event, Mapping):
        return "other"
    if event.get("RequestType") in REQUEST_TYPES and all(
        isinstance(event.get(field), str) and event.get(field) for field in CLOUDFORMATION_FIELDS
    ):
        return "cloudformation"
    records = event.get("Records")
    if (
        isinstance(records, list)
        and records
        and all(isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" for record in records)
    ):
        return "wake-ups"
    if (
        event.get("source") == "aws.rds"
        and event.get("detail-type") in RDS_DETAIL_TYPES
        and isinstance(event.get("detail"), Mapping)
    ):
        return "rds-event"
    return "other"


@dataclass(frozen=True)
class WakeUp:
    """A message of the function's queue: look at request ``token``.

    ``wake`` is set on the fallback chain's messages: only the one the record names is current. A recheck
    (``wake`` None) is a one-off look soon after an event.
    """

    token: str
    wake: str | None = None

    def body(self) -> str:
        return json.dumps({"request": self.token, **({"wake": self.wake} if self.wake else {"recheck": True})})


def parse_wake_up(body: Any) -> WakeUp | None:
    """A queue message's body as a WakeUp; None for anything not shaped like one of ours.

    >>> parse_wake_up('{"request": "0123456789ab", "recheck": true}')
    WakeUp(token='0123456789ab', wake=None)
    >>> parse_wake_up('{"request": "x; delete everything"}') is None
    True
    """
    try:
        data = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("request"), str):
        return None
    token, wake = data["request"], data.get("wake")
    if not _TOKEN.fullmatch(token):
        return None
    if wake is None:
        return WakeUp(token) if data.get("recheck") is True and set(data) == {"request", "recheck"} else None
    if not isinstance(wake, str) or not _WAKE.fullmatch(wake) or set(data) != {"request", "wake"}:
        return None
    return WakeUp(token, wake)


@dataclass(frozen=True)
class RdsHint:
    """What an RDS event says: which resource, and what happened to it."""

    event_id: str
    source_type: str  # CLUSTER or DB_INSTANCE
    identifier: str

    def cluster_candidates(self) -> tuple[str, ...]:
        """The clusters the event may concern: the cluster itself, or the cluster an instance named by this
        tool belongs to (``<cluster>-<n>``, see naming.instance_id); an instance named otherwise concerns no
        request here (its request is looked at by its fallback)."""
        if self.source_type == "CLUSTER":
            return (self.identifier,)
        match = _INSTANCE_NUMBER.search(self.identifier)
        if self.source_type == "DB_INSTANCE" and match and int(match.group(1)) >= 1:
            return (self.identifier[: match.start()],)
        return ()


def parse_rds_event(event: Mapping[str, Any]) -> RdsHint | None:
    """The hint in an RDS event on EventBridge; None when it names nothing usable."""
    detail = event.get("detail")
    if not isinstance(detail, Mapping):
        return None
    event_id, source_type, identifier = (detail.get(key) for key in ("EventID", "SourceType", "SourceIdentifier"))
    if not all(isinstance(value, str) and value for value in (event_id, source_type, identifier)):
        return None
    return RdsHint(str(event_id).rsplit("#", 1)[-1], str(source_type), str(identifier).lower())


# What an event says a resource has left: while Describe still shows that status, it lags the event.
_LEFT_STATUS = {
    "RDS-EVENT-0170": ("CLUSTER", "creating"),
    "RDS-EVENT-0005": ("DB_INSTANCE", "creating"),
    "RDS-EVENT-0002": ("DB_INSTANCE", "backing-up"),
    "RDS-EVENT-0014": ("DB_INSTANCE", "modifying"),
}
_GONE_EVENTS = {"RDS-EVENT-0171": "CLUSTER", "RDS-EVENT-0003": "DB_INSTANCE"}


def describe_lags(hint: RdsHint, cluster: ClusterView | None) -> bool:
    """True when what Describe showed has not caught up with ``hint`` yet, so a recheck is due soon.

    >>> view = ClusterView("c", "creating", "aurora-mysql")
    >>> describe_lags(RdsHint("RDS-EVENT-0170", "CLUSTER", "c"), view)
    True
    >>> describe_lags(RdsHint("RDS-EVENT-0171", "CLUSTER", "c"), None)
    False
    """
    if hint.event_id in _GONE_EVENTS:
        if _GONE_EVENTS[hint.event_id] == "CLUSTER":
            return cluster is not None and cluster.identifier == hint.identifier
        return cluster is not None and any(i.identifier == hint.identifier for i in cluster.instances)
    if hint.event_id not in _LEFT_STATUS or cluster is None:
        return False
    source_type, left = _LEFT_STATUS[hint.event_id]
    if source_type == "CLUSTER":
        return cluster.identifier == hint.identifier and cluster.status == left
    return any(
        i.identifier == hint.identifier and (i.status == left or (left == "backing-up" and i.status == "creating"))
        for i in cluster.instances
    )


def next_look_interval(job_kind: str, cluster: ClusterView | None, prepares: bool = False) -> int:
    """How soon the fallback looks again: sooner while the request's last stage is under way (a clone being
    deleted; a clone whose instances all exist and only finish their backup or a change; a ready clone whose
    prepare script, ``prepares``, runs: no event tells when it ends), so that a lost event costs seconds
    rather than the full interval.

    >>> next_look_interval("teardown", ClusterView("c", "deleting", "aurora-mysql"))
    10
    >>> next_look_interval("converge", ClusterView("c", "creating", "aurora-mysql"))
    30
    """
    if cluster is None:
        return FALLBACK_SECONDS
    if job_kind == "teardown":
        return LAST_STAGE_SECONDS if cluster.status == "deleting" else FALLBACK_SECONDS
    if prepares and cluster.status == "available":
        return LAST_STAGE_SECONDS
    finishing = {"backing-up", "modifying", "backtracking"}
    statuses = {instance.status for instance in cluster.instances}
    if cluster.status == "available" and statuses and statuses <= {"available"} | finishing and statuses & finishing:
        return LAST_STAGE_SECONDS
    return FALLBACK_SECONDS


def out_of_time(now: float, deadline: float) -> bool:
    """True when a request still pending now can no longer wait for another look and answer in time."""
    return now >= deadline - ANSWER_MARGIN_SECONDS


def fallback_delay(now: float, deadline: float, interval: int = FALLBACK_SECONDS) -> int:
    """Seconds until the next fallback look: the interval, or less so that the last look comes just before
    the answer's margin (that look answers FAILED if the request is still not done).

    >>> fallback_delay(0, 3600), fallback_delay(0, 40), fallback_delay(0, 5)
    (30, 25, 1)
    """
    left = deadline - ANSWER_MARGIN_SECONDS - now
    return max(1, min(interval, MAX_DELAY_SECONDS, math.floor(left)))
