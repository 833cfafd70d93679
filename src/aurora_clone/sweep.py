"""No orphans: which clones outlived their stack, or their resource, and go. Pure, from a snapshot, the stacks'
statuses and what their resources name.

A clone can outlive its stack: a stack deleted while the function was broken, or from tooling that never
called it. ``DeletionPolicy: Retain`` is a user's choice to keep the clone; CloudFormation does not tell
the function, so a clone to keep is tagged ``aurora-clone-retain: true`` (in the resource's ``Tags``, or by
hand later) and the sweep leaves it.

A clone can also outlive its request while its stack lives: a Create or a replacing Update whose answer
never reached CloudFormation, so the stack's resource names another PhysicalResourceId (or none). Such a
clone goes too once no pending request owns it, past the same grace period.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from aurora_clone.naming import stack_name
from aurora_clone.ownership import LOGICAL_ID_TAG, STACK_ID_TAG
from aurora_clone.pool.model import Snapshot

RETAIN_TAG = "aurora-clone-retain"
DEFAULT_GRACE = timedelta(hours=1)
GONE_STACK_STATUSES = frozenset({"DELETE_COMPLETE"})


@dataclass(frozen=True)
class Orphan:
    """A clone to delete, and why (logged with the deletion)."""

    cluster_id: str
    stack_id: str
    reason: str


@dataclass(frozen=True)
class SweepPlan:
    orphans: tuple[Orphan, ...]
    kept: tuple[str, ...]  # one line per clone left alone on purpose, with the reason
    dry_run: bool


def owning_stacks(snapshot: Snapshot) -> tuple[str, ...]:
    """The stack ids named by this tool's clones: the stacks whose status the sweep needs."""
    return tuple(sorted({c.tags[STACK_ID_TAG] for c in snapshot if c.made_by_tool and c.tags.get(STACK_ID_TAG)}))


def owning_resources(snapshot: Snapshot, stack_status: Mapping[str, str | None]) -> tuple[tuple[str, str], ...]:
    """(stack id, logical id) of this tool's clones whose stack lives: the resources whose ids the sweep needs."""
    pairs = {
        (c.tags[STACK_ID_TAG], c.tags[LOGICAL_ID_TAG])
        for c in snapshot
        if c.made_by_tool
        and not c.copy_of
        and c.tags.get(STACK_ID_TAG)
        and c.tags.get(LOGICAL_ID_TAG)
        and stack_status.get(c.tags[STACK_ID_TAG]) not in (None, *GONE_STACK_STATUSES)
    }
    return tuple(sorted(pairs))


def plan_sweep(
    snapshot: Snapshot,
    stack_status: Mapping[str, str | None],
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    resource_ids: Mapping[tuple[str, str], str | None] | None = None,
    owned: frozenset[str] = frozenset(),
) -> SweepPlan:
    """Clones of this tool whose stack no longer exists (``None``) or is ``DELETE_COMPLETE``, older than
    ``grace`` and not tagged to be retained. Pool copies (no stack) and others' clusters are never listed;
    nor is a clone whose stack is in any ``*_IN_PROGRESS`` status. ``snapshot`` must be the trusted one
    (``pool.model.trusted``): only clusters the tool's record names carry its tags there.

    With ``resource_ids`` ((stack id, logical id) -> the PhysicalResourceId the stack's resource names, None
    for no such resource): a clone of a live stack that its resource does not name, and that no pending
    request owns (``owned``), goes too. A resource not looked up keeps its clones.

    >>> from datetime import UTC
    >>> from aurora_clone.pool.model import ClusterFacts
    >>> tags = {"aurora-clone:managed-by": "aurora-clone", STACK_ID_TAG: "arn:aws:cloudformation:r:1:stack/qa/x"}
    >>> old = ClusterFacts("qa-db", "available", "aurora-mysql", "g", datetime(2026, 1, 1, tzinfo=UTC), tags)
    >>> [o.cluster_id for o in plan_sweep(Snapshot((old,)), {}, datetime(2026, 1, 2, tzinfo=UTC)).orphans]
    ['qa-db']
    """
    orphans: list[Orphan] = []
    kept: list[str] = []
    for cluster in snapshot:
        stack_id = cluster.tags.get(STACK_ID_TAG)
        if not cluster.made_by_tool or not stack_id or cluster.copy_of or not cluster.is_live:
            continue
        status = stack_status.get(stack_id)
        name = stack_name(stack_id)
        logical = cluster.tags.get(LOGICAL_ID_TAG, "?")
        gone = "no longer exists" if status is None else f"is {status}"
        if status is not None and status.endswith("_IN_PROGRESS"):
            # Mid-operation (a replacing update, its rollback, a delete): what its resource names is about to
            # change, and CloudFormation may still send the request that removes or keeps the clone.
            kept.append(f"{cluster.identifier}: stack {name} is {status}; looked at again once it settles")
            continue
        if status is not None and status not in GONE_STACK_STATUSES:
            key = (stack_id, logical)
            if resource_ids is None or key not in resource_ids or resource_ids[key] == cluster.identifier:
                continue  # its stack lives and names it: the stack's own Delete removes it
            if cluster.identifier in owned:
                continue  # a pending request is still making or changing it
            names = resource_ids[key]
            gone = f"lives, but its resource {logical} names {names or 'no clone'}, and no pending request owns it"
        if cluster.tags.get(RETAIN_TAG, "").lower() == "true":
            kept.append(f"{cluster.identifier}: stack {name} is gone, kept by its {RETAIN_TAG} tag")
            continue
        age = now - cluster.created
        if age < grace:
            kept.append(f"{cluster.identifier}: stack {name} is gone, but the clone is younger than {grace}")
            continue
        reason = f"its stack {name} {gone} (resource {logical}); the clone is {age // timedelta(minutes=1)} min old"
        orphans.append(Orphan(cluster.identifier, stack_id, reason))
    return SweepPlan(tuple(orphans), tuple(kept), dry_run)
