"""Which cluster takes a new clone: the source while it has a free slot, else its freshest usable copy.

The source comes first because its clones are billed only for the pages they change while it lives;
a copy is the next best thing, as long as its data is fresh enough for the template. When nothing
qualifies, the answer is a full copy only if the template said ``CopyOk``: Aurora would otherwise make
one silently, which is slow and billed in full.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from aurora_clone.pool.model import ClusterFacts, Snapshot
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT, free_slots, has_live_clones, slots_used
from aurora_clone.timespec import format_duration, format_timestamp

DEFAULT_MAX_COPY_AGE = timedelta(days=3)
_LISTED_COPIES = 5  # a Reason has little room; the rest is summarised as "and N more"


@dataclass(frozen=True)
class SelectionPolicy:
    """How fresh a copy must be to take a clone, and how many clones a cluster may hold."""

    max_copy_age: timedelta = DEFAULT_MAX_COPY_AGE
    copy_created_since: datetime | None = None
    slot_limit: int = CLONE_SLOT_LIMIT

    def __post_init__(self) -> None:
        if self.max_copy_age <= timedelta(0):
            raise ValueError(f"max_copy_age must be positive, got {self.max_copy_age}.")
        if self.slot_limit < 1:
            raise ValueError(f"slot_limit must be at least 1, got {self.slot_limit}.")


@dataclass(frozen=True)
class SourceChoice:
    """What to do for a new clone, and why in words fit for a CloudFormation Reason.

    ``cluster_id`` is the cluster to clone with copy-on-write (the source or one of its copies); with
    ``full_copy`` the resource itself is made a full copy of the source instead (``is_source`` is then
    true too: the data comes from the source, taken now). Neither means refused.
    """

    cluster_id: str | None
    full_copy: bool
    data_time: datetime
    is_source: bool
    reason: str

    @property
    def refused(self) -> bool:
        """True when nothing may be cloned or copied: the request fails with ``reason``."""
        return self.cluster_id is None and not self.full_copy


def is_fresh(copy: ClusterFacts, max_copy_age: timedelta, now: datetime) -> bool:
    """True while the copy's data is younger than ``max_copy_age``."""
    return now - copy.data_time < max_copy_age


def choose_clone_source(
    source_id: str, snapshot: Snapshot, policy: SelectionPolicy, now: datetime, copy_ok: bool
) -> SourceChoice:
    """The source if it can take a clone, else the copy with the newest data that can, else a full copy
    (with ``copy_ok``) or a refusal that says where the slots went and what to do.

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    >>> source = ClusterFacts("prod-db", "available", "aurora-mysql", None, datetime(2026, 1, 1, tzinfo=UTC))
    >>> choice = choose_clone_source("prod-db", Snapshot((source,)), SelectionPolicy(), now, copy_ok=False)
    >>> choice.cluster_id, choice.is_source, choice.data_time == now
    ('prod-db', True, True)
    """
    limit = policy.slot_limit
    source = snapshot.get(source_id)
    if source is not None and source.accepts_clones and free_slots(source, snapshot, limit) > 0:
        return SourceChoice(
            cluster_id=source.identifier,
            full_copy=False,
            data_time=now,
            is_source=True,
            reason=f"{_describe_source(source, snapshot, limit)}; cloning it.",
        )
    source_state = _describe_source(source, snapshot, limit) if source else f"DB cluster '{source_id}' was not found"
    copies = [copy for copy in snapshot.copies_of(source_id) if copy.is_live]
    problems = {copy.identifier: _copy_problem(copy, snapshot, policy, now) for copy in copies}
    usable = [copy for copy in copies if problems[copy.identifier] is None]
    if usable:
        chosen = usable[0]  # copies_of lists the newest data first
        return SourceChoice(
            cluster_id=chosen.identifier,
            full_copy=False,
            data_time=chosen.data_time,
            is_source=False,
            reason=(
                f"{source_state}; cloning its copy '{chosen.identifier}' (data from "
                f"{format_timestamp(chosen.data_time)}, {slots_used(chosen, snapshot)} of {limit} clone slots in use)."
            ),
        )
    found = f"{source_state}; {_list_copies(copies, problems)}."
    if source is None:
        return _refusal(now, f"{found} Check SourceClusterId.")
    if not source.accepts_clones:
        return _refusal(now, f"{found} Try again once it is 'available' with an instance.")
    if copy_ok:
        return SourceChoice(
            cluster_id=None,
            full_copy=True,
            data_time=now,
            is_source=True,
            reason=(
                f"{found} Making this clone a full copy of '{source.identifier}' instead (CopyOk is true): it is "
                "slow and billed in full, and a copy of a large cluster can take longer than CloudFormation's "
                "one-hour limit for a custom resource."
            ),
        )
    return _refusal(
        now,
        f"{found} Set CopyOk: true to make this clone a full copy (slow, billed in full), or let the copy pool "
        f"keep spare copies of '{source.identifier}' (raise its spareSlots).",
    )


def obsolete_copies(source_id: str, snapshot: Snapshot, max_copy_age: timedelta, now: datetime) -> tuple[str, ...]:
    """Copies of ``source_id`` made by this tool, older than ``max_copy_age``, with no live clone, not
    already being deleted: safe to delete, oldest data first. Never the source, never anyone else's cluster.
    """
    stale = [
        copy
        for copy in snapshot.copies_of(source_id)
        if copy.is_live and not is_fresh(copy, max_copy_age, now) and not has_live_clones(copy, snapshot)
    ]
    return tuple(copy.identifier for copy in sorted(stale, key=lambda copy: (copy.data_time, copy.identifier)))


def _describe_source(source: ClusterFacts, snapshot: Snapshot, limit: int) -> str:
    if source.status != "available":
        return f"DB cluster '{source.identifier}' is '{source.status}', not 'available'"
    if not source.accepts_clones:
        return f"DB cluster '{source.identifier}' has no instance"
    return f"DB cluster '{source.identifier}' has {slots_used(source, snapshot)} of {limit} clone slots in use"


def _copy_problem(copy: ClusterFacts, snapshot: Snapshot, policy: SelectionPolicy, now: datetime) -> str | None:
    """Why ``copy`` cannot take the clone, most lasting reason first; None when it can."""
    if not is_fresh(copy, policy.max_copy_age, now):
        return f"older than MaxCopyAge {format_duration(policy.max_copy_age)}"
    if policy.copy_created_since is not None and copy.data_time < policy.copy_created_since:
        return (
            f"data from {format_timestamp(copy.data_time)}, before CopyCreatedSince "
            f"{format_timestamp(policy.copy_created_since)}"
        )
    if copy.status != "available":
        return f"'{copy.status}'"
    if not copy.accepts_clones:
        return "no instance yet"
    used = slots_used(copy, snapshot)
    if used >= policy.slot_limit:
        return f"{used}/{policy.slot_limit} used"
    return None


def _list_copies(copies: list[ClusterFacts], problems: dict[str, str | None]) -> str:
    if not copies:
        return "it has no copies"
    listed = [f"{copy.identifier} ({problems[copy.identifier]})" for copy in copies[:_LISTED_COPIES]]
    more = len(copies) - len(listed)
    return "copies: " + ", ".join(listed) + (f" and {more} more" if more else "")


def _refusal(now: datetime, reason: str) -> SourceChoice:
    return SourceChoice(cluster_id=None, full_copy=False, data_time=now, is_source=False, reason=reason)
