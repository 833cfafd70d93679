"""No orphans: which clones outlived their stack and go. Pure, from a snapshot and the stacks' statuses.

A clone can outlive its stack: a stack deleted while the function was broken, or from tooling that never
called it. ``DeletionPolicy: Retain`` is a user's choice to keep the clone; CloudFormation does not tell
the function, so a clone to keep is tagged ``aurora-clone-retain: true`` (in the resource's ``Tags``, or by
hand later) and the sweep leaves it.
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


def plan_sweep(
    snapshot: Snapshot,
    stack_status: Mapping[str, str | None],
    now: datetime,
    grace: timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
) -> SweepPlan:
    """Clones of this tool whose stack no longer exists (``None``) or is ``DELETE_COMPLETE``, older than
    ``grace`` and not tagged to be retained. Pool copies (no stack) and others' clusters are never listed.

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
        if status is not None and status not in GONE_STACK_STATUSES:
            continue  # its stack lives: the stack's own Delete removes it
        if cluster.tags.get(RETAIN_TAG, "").lower() == "true":
            kept.append(f"{cluster.identifier}: stack {name} is gone, kept by its {RETAIN_TAG} tag")
            continue
        age = now - cluster.created
        if age < grace:
            kept.append(f"{cluster.identifier}: stack {name} is gone, but the clone is younger than {grace}")
            continue
        gone = "no longer exists" if status is None else f"is {status}"
        logical = cluster.tags.get(LOGICAL_ID_TAG, "?")
        reason = f"its stack {name} {gone} (resource {logical}); the clone is {age // timedelta(minutes=1)} min old"
        orphans.append(Orphan(cluster.identifier, stack_id, reason))
    return SweepPlan(tuple(orphans), tuple(kept), dry_run)
