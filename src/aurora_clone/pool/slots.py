"""Clone slots: how many copy-on-write clones a cluster's family holds, and how many it has left.

Every cluster of a clone family shares a ``CloneGroupId`` (REFERENCE: Aurora clones). Slots used on a
cluster are the clusters of its family RDS still lists, other than itself: a clone being made holds its
slot already, so two requests at once cannot both take the last one, and a clone being deleted holds it
until it is gone (the family still has it; counting it free would let a burst of stacks past 15 into
silent full copies while the last teardowns finish).
"""

from __future__ import annotations

from aurora_clone.pool.model import ClusterFacts, Snapshot

# Aurora's limit; past it the next "clone" silently becomes a full copy.
CLONE_SLOT_LIMIT = 15


def slots_used(cluster: ClusterFacts, snapshot: Snapshot) -> int:
    """The clusters of ``cluster``'s family other than itself, being deleted or not; 0 for a cluster never
    cloned.

    >>> from datetime import UTC, datetime
    >>> def facts(name, status="available"):
    ...     return ClusterFacts(name, status, "aurora-mysql", "g-1", datetime(2026, 11, 1, tzinfo=UTC))
    >>> snapshot = Snapshot((facts("prod-db"), facts("clone-1", "creating"), facts("clone-2", "deleting")))
    >>> slots_used(facts("prod-db"), snapshot), has_live_clones(facts("prod-db"), snapshot)
    (2, True)
    """
    return len(_others(cluster, snapshot))


def has_live_clones(cluster: ClusterFacts, snapshot: Snapshot) -> bool:
    """True when a cluster of ``cluster``'s family other than itself is not being deleted: ``cluster`` is
    still needed as a clone source's data."""
    return any(member.is_live for member in _others(cluster, snapshot))


def _others(cluster: ClusterFacts, snapshot: Snapshot) -> list[ClusterFacts]:
    wanted = cluster.identifier.lower()
    return [member for member in snapshot.family(cluster.clone_group_id) if member.identifier.lower() != wanted]


def free_slots(cluster: ClusterFacts, snapshot: Snapshot, limit: int = CLONE_SLOT_LIMIT) -> int:
    """How many more clones ``cluster`` can take before Aurora would make a full copy; never negative."""
    return max(0, limit - slots_used(cluster, snapshot))
