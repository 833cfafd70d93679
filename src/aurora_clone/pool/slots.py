"""Clone slots: how many copy-on-write clones a cluster's family holds, and how many it has left.

Every cluster of a clone family shares a ``CloneGroupId`` (REFERENCE: Aurora clones). Slots used on a
cluster are the live clusters of its family other than itself, ``creating`` ones included: a clone
being made holds its slot already, so two requests at once cannot both take the last one.
"""

from __future__ import annotations

from aurora_clone.pool.model import ClusterFacts, Snapshot

# Aurora's limit; past it the next "clone" silently becomes a full copy.
CLONE_SLOT_LIMIT = 15


def slots_used(cluster: ClusterFacts, snapshot: Snapshot) -> int:
    """The live clusters of ``cluster``'s family other than itself; 0 for a cluster never cloned.

    >>> from datetime import UTC, datetime
    >>> def facts(name, status="available"):
    ...     return ClusterFacts(name, status, "aurora-mysql", "g-1", datetime(2026, 11, 1, tzinfo=UTC))
    >>> snapshot = Snapshot((facts("prod-db"), facts("clone-1", "creating"), facts("clone-2", "deleting")))
    >>> slots_used(facts("prod-db"), snapshot)
    1
    """
    wanted = cluster.identifier.lower()
    return sum(1 for member in snapshot.family(cluster.clone_group_id) if member.identifier.lower() != wanted)


def free_slots(cluster: ClusterFacts, snapshot: Snapshot, limit: int = CLONE_SLOT_LIMIT) -> int:
    """How many more clones ``cluster`` can take before Aurora would make a full copy; never negative."""
    return max(0, limit - slots_used(cluster, snapshot))
