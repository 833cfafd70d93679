"""The durable record of one CloudFormation request, from its arrival to its answer. Plain data.

It is the only source of what a request wants: the request as CloudFormation sent it (ResponseURL
included: never logged), its deadline, the job once it is known (the cluster it acts on and the goal),
and where it stands. ``version`` grows with every write; each write is conditional on it, so two
invocations cannot both move a request, and a request is answered at most once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aurora_clone.naming import request_token, short_hash
from aurora_clone.outcome import Job

State = Literal["pending", "answered", "superseded"]


@dataclass(frozen=True)
class RequestRecord:
    token: str
    event: Mapping[str, Any]  # the CloudFormation request as received
    deadline: float  # epoch seconds: CloudFormation's ServiceTimeout from the arrival
    version: int = 1
    state: State = "pending"
    wake: str = ""  # the current fallback wake-up; any other is stale
    job: Job | None = None  # None until the request's first step has decided it
    answer: Mapping[str, Any] | None = None  # the body answered
    delivered: bool | None = None  # whether CloudFormation accepted the answer
    seen: str = ""  # what the last look saw (statuses), for the logs
    started_at: float = 0.0  # epoch seconds on the run clock (RequestEngine.run_clock): when its first step began
    watching: str = ""  # answered early (WaitForDeletion false): the cluster RDS is still deleting
    watch_until: float = 0.0  # epoch seconds: when the watch gives up (the sweep's then)

    @property
    def request_type(self) -> str:
        return str(self.event.get("RequestType", ""))

    @property
    def stack_id(self) -> str:
        return str(self.event.get("StackId", ""))

    @property
    def logical_id(self) -> str:
        return str(self.event.get("LogicalResourceId", ""))

    @property
    def resource_key(self) -> str:
        return resource_key(self.stack_id, self.logical_id)

    @property
    def makes_clone(self) -> bool:
        """True while the request's job makes a clone CloudFormation does not know yet (a Create, or the
        new clone of a replacing Update)."""
        job = self.job
        return job is not None and job.kind == "converge" and (self.request_type == "Create" or bool(job.replacing))


def token_of(event: Mapping[str, Any]) -> str:
    """The request's token: StackId + RequestId + LogicalResourceId (REFERENCE: these identify a request)."""
    return request_token(str(event["StackId"]), str(event["RequestId"]), str(event["LogicalResourceId"]))


def resource_key(stack_id: str, logical_id: str) -> str:
    """One resource of one stack, across all its requests."""
    return short_hash(stack_id, logical_id, length=24)


@dataclass(frozen=True)
class UnansweredClone:
    """A clone a request of this resource made that CloudFormation may not know of (its answer is pending,
    or was never delivered)."""

    cluster_id: str
    token: str
    made_at: float = field(default=0.0)


MadeFor = Literal["clone", "copy", "warm"]


@dataclass(frozen=True)
class MadeRecord:
    """The tool's own record of a cluster it made (the ledger), written before the RDS call that makes it.

    Tags are the visible mark and what IAM reads, but anyone allowed to tag can write them: this record is
    the proof. ``made_for``: a stack's clone (``stack_id``, ``logical_id``, the ``request`` token that made
    it), a pool ``copy`` of ``source``, or a ``warm`` clone of ``source`` the pool keeps ready in the warm
    ``shape`` (its slow properties as written, JSON, in ``shape_properties``) until a stack claims it, which
    turns the record into the stack's clone. ``instances``: the instances the tool created in it.
    """

    cluster_id: str
    made_for: MadeFor
    request: str = ""
    stack_id: str = ""
    logical_id: str = ""
    source: str = ""
    made_at: float = 0.0
    instances: frozenset[str] = frozenset()
    shape: str = ""
    shape_properties: str = ""

    def is_clone_of(self, stack_id: str, logical_id: str) -> bool:
        """True when a resource ``logical_id`` of stack ``stack_id`` made the cluster."""
        return self.made_for == "clone" and self.stack_id == stack_id and self.logical_id == logical_id

    def is_copy_of(self, source_id: str) -> bool:
        return self.made_for == "copy" and self.source.lower() == source_id.lower()

    def is_warm_of(self, source_id: str, shape: str) -> bool:
        """True for an unclaimed warm clone of ``source_id`` in the warm shape ``shape``."""
        return self.made_for == "warm" and self.source.lower() == source_id.lower() and self.shape == shape


PreparationState = Literal["running", "done", "failed"]


@dataclass(frozen=True)
class Preparation:
    """A run of a prepare script in a cluster (``PrepareScript``), written by the in-VPC function that runs it:
    at most one per request (``token``), started once. ``detail``: why it failed, or what ran (statements,
    seconds); ``prepared_with``: the script's URI and the version or ETag of the object that ran."""

    cluster_id: str
    token: str
    state: PreparationState
    started_at: float = 0.0
    detail: str = ""
    prepared_with: str = ""
