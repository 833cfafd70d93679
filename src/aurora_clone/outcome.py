"""What one step of a request ends in, and the pending work a poll picks up again.

A ``Job`` is everything a poll needs, kept small on purpose: it travels in an EventBridge target's
Input (at most 8192 characters), so it holds identifiers and the resolved goal, never the template's
tags or properties (tags are read back from the cluster, which carries them).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from aurora_clone.clone_state import DesiredClone

# Job fields written only when set.
_OPTIONAL_FIELDS = (
    "replacing",
    "failure",
    "purge_older_than",
    "final_snapshot",
    "unreachable_since",
    "prepare_started",
)


@dataclass(frozen=True)
class Job:
    """Work still under way for one request."""

    kind: Literal["converge", "teardown"]
    cluster_id: str
    deadline: float  # epoch seconds; the request must be answered before it
    answer_id: str  # the PhysicalResourceId to answer with
    source: str = ""  # the cluster actually cloned, for the SourceClusterId attribute
    desired: DesiredClone | None = None
    replacing: str | None = None  # the clone a replacement supersedes; set only while replacing
    failure: str | None = None  # a teardown that ends in FAILED with this reason (a discarded replacement)
    purge_older_than: float | None = None  # PurgeObsoleteCopies: MaxCopyAge in seconds, once the clone is ready
    final_snapshot: str | None = None  # SnapshotOnDelete: the snapshot RDS takes before deleting the cluster
    unreachable_since: float | None = None  # when the connection check first failed to reach the ready clone
    then: tuple[str, ...] = ()  # teardown: the clusters torn down after this one (clones CloudFormation does not name)
    answer_when_accepted: bool = False  # teardown, WaitForDeletion false: SUCCESS once RDS accepted every deletion
    prepare: str = ""  # converge: the PrepareScript URI to run in the clone once it is ready ("" for none)
    prepare_started: float | None = None  # when the in-VPC function was asked to run it (system clock)

    def discard(self, reason: str) -> Job:
        """Turn a failed replacement into the teardown of the half-made clone, then FAILED."""
        return replace(
            self,
            kind="teardown",
            answer_id=self.replacing or self.answer_id,
            replacing=None,
            failure=reason,
            final_snapshot=None,
            prepare="",
            prepare_started=None,
        )

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "kind": self.kind,
            "cluster_id": self.cluster_id,
            "deadline": self.deadline,
            "answer_id": self.answer_id,
            "source": self.source,
        }
        if self.desired is not None:
            data["desired"] = self.desired.to_dict()
        for key in _OPTIONAL_FIELDS:
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.then:
            data["then"] = list(self.then)
        if self.answer_when_accepted:
            data["answer_when_accepted"] = True
        if self.prepare:
            data["prepare"] = self.prepare
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Job:
        values = dict(data)
        if "desired" in values:
            values["desired"] = DesiredClone.from_dict(values["desired"])
        if "then" in values:
            values["then"] = tuple(values["then"])
        return cls(**values)


@dataclass(frozen=True)
class Done:
    """Answer SUCCESS."""

    physical_id: str
    data: dict[str, str] = field(default_factory=dict)
    # WaitForDeletion false: the cluster RDS is still deleting; the engine watches it after the answer.
    watch: str | None = None


@dataclass(frozen=True)
class Failed:
    """Answer FAILED with ``reason``. ``physical_id`` never names something this resource did not create."""

    reason: str
    physical_id: str


@dataclass(frozen=True)
class Pending:
    """Not finished: poll ``job`` again. ``status`` says what it waits for."""

    job: Job
    status: str


Outcome = Done | Failed | Pending
