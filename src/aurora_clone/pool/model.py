"""Plain data: the facts about one cluster that the pool decides on, and a snapshot of many."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aurora_clone.ownership import (
    LOGICAL_ID_TAG,
    MANAGED_BY_TAG,
    MANAGED_BY_VALUE,
    SOURCE_TAG,
    STACK_ID_TAG,
    TAG_PREFIX,
    WARM_POOL_TAG,
)
from aurora_clone.request_record import MadeRecord
from aurora_clone.timespec import parse_timestamp

# Written on every pool copy: the cluster it is a full copy of, and when its data was taken.
COPY_OF_TAG = f"{TAG_PREFIX}copy-of"
DATA_TIME_TAG = f"{TAG_PREFIX}data-time"

# A cluster in these statuses is on its way out: it holds no clone slot and takes no clone.
GONE_STATUSES = frozenset({"deleting", "deleted"})


@dataclass(frozen=True)
class ClusterFacts:
    """One DB cluster as the pool sees it.

    ``instance_count`` is None when it was not gathered; 0 means the cluster has no instance yet, and a
    cluster without an instance cannot be cloned.

    >>> from datetime import UTC
    >>> copy = ClusterFacts("prod-db-copy-1", "available", "aurora-postgresql", "g-2",
    ...     datetime(2026, 11, 22, 10, tzinfo=UTC), {COPY_OF_TAG: "prod-db", DATA_TIME_TAG: "2026-11-22T09:55:00Z"})
    >>> copy.copy_of, copy.data_time.isoformat(), copy.is_live
    ('prod-db', '2026-11-22T09:55:00+00:00', True)
    """

    identifier: str
    status: str
    engine: str
    clone_group_id: str | None
    created: datetime
    tags: Mapping[str, str] = field(default_factory=dict)
    instance_count: int | None = None

    def __post_init__(self) -> None:
        # Naive and aware datetimes cannot be compared; refuse the naive one where it enters.
        if self.created.tzinfo is None or self.created.utcoffset() is None:
            raise ValueError(f"ClusterFacts '{self.identifier}': created must have a time zone.")

    @property
    def is_live(self) -> bool:
        """True unless the cluster is being deleted; a cluster still ``creating`` is live."""
        return self.status not in GONE_STATUSES

    @property
    def accepts_clones(self) -> bool:
        """True when RDS would clone it now: ``available``, and not known to lack an instance."""
        return self.status == "available" and self.instance_count != 0

    @property
    def copy_of(self) -> str | None:
        """The source this cluster is a pool copy of, or None when it is not tagged as one."""
        return self.tags.get(COPY_OF_TAG) or None

    @property
    def warm_pool(self) -> str | None:
        """The warm shape this unclaimed warm clone was made in, or None when it is not one."""
        return self.tags.get(WARM_POOL_TAG) or None

    @property
    def made_by_tool(self) -> bool:
        """True when this tool's managed-by tag is on the cluster."""
        return self.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE

    @property
    def data_time(self) -> datetime:
        """When the cluster's data was taken: the data-time tag, else the creation time.

        A tag that does not parse falls back to the creation time too: a copy's data is never younger
        than the copy, so the fallback can only make it look older, never fresher.
        """
        written = self.tags.get(DATA_TIME_TAG)
        if written:
            try:
                return parse_timestamp(written)
            except ValueError:
                pass
        return self.created


@dataclass(frozen=True)
class Snapshot:
    """The clusters seen at one moment, with the lookups the pool needs."""

    clusters: tuple[ClusterFacts, ...] = ()

    def __post_init__(self) -> None:
        identifiers = [cluster.identifier.lower() for cluster in self.clusters]
        repeated = sorted({identifier for identifier in identifiers if identifiers.count(identifier) > 1})
        if repeated:
            raise ValueError(f"A snapshot lists each cluster once; repeated: {', '.join(repeated)}.")

    def __iter__(self) -> Iterator[ClusterFacts]:
        return iter(self.clusters)

    def __len__(self) -> int:
        return len(self.clusters)

    def get(self, identifier: str) -> ClusterFacts | None:
        """The cluster named ``identifier`` (RDS identifiers are case-insensitive), or None."""
        wanted = identifier.lower()
        return next((cluster for cluster in self.clusters if cluster.identifier.lower() == wanted), None)

    def family(self, clone_group_id: str | None) -> tuple[ClusterFacts, ...]:
        """The clusters sharing ``clone_group_id``; none for a cluster that was never cloned. A cluster being
        deleted is one of them: it holds its clone slot until RDS no longer lists it."""
        if not clone_group_id:
            return ()
        return tuple(
            cluster
            for cluster in self.clusters
            if cluster.clone_group_id == clone_group_id and cluster.status != "deleted"
        )

    def copies_of(self, source_id: str) -> tuple[ClusterFacts, ...]:
        """Pool copies of ``source_id`` made by this tool, in any status, newest data first.

        A cluster tagged as a copy by anyone else is not a copy here: the pool neither clones nor deletes it.
        """
        wanted = source_id.lower()
        copies = [
            cluster
            for cluster in self.clusters
            if cluster.made_by_tool
            and (cluster.copy_of or "").lower() == wanted
            and cluster.identifier.lower() != wanted
        ]
        return tuple(sorted(copies, key=lambda cluster: (-cluster.data_time.timestamp(), cluster.identifier)))

    def warm_clones_of(self, source_id: str) -> tuple[ClusterFacts, ...]:
        """Unclaimed warm clones of ``source_id`` made by this tool, in any status, by identifier."""
        wanted = source_id.lower()
        return tuple(
            sorted(
                (
                    cluster
                    for cluster in self.clusters
                    if cluster.made_by_tool and cluster.warm_pool and cluster.tags.get(SOURCE_TAG, "").lower() == wanted
                ),
                key=lambda cluster: cluster.identifier,
            )
        )


def recorded_as_tagged(cluster: ClusterFacts, made: MadeRecord | None) -> bool:
    """True when the tool's own record of ``cluster`` says what its tags say: a pool copy of the source its
    copy-of tag names, or the clone of the stack and logical id its tags name."""
    if made is None:
        return False
    if cluster.warm_pool:
        return made.is_warm_of(cluster.tags.get(SOURCE_TAG, ""), cluster.warm_pool)
    if cluster.copy_of:
        return made.is_copy_of(cluster.copy_of)
    return made.is_clone_of(cluster.tags.get(STACK_ID_TAG, ""), cluster.tags.get(LOGICAL_ID_TAG, ""))


@dataclass(frozen=True)
class TrustedSnapshot:
    """A snapshot in which only the clusters the tool's record names keep its tags, and those it does not.

    ``forged``: clusters carrying this tool's managed-by tag that the tool has no matching record of (tagged
    by someone else, or made before the record existed). In ``snapshot`` they carry none of the tool's tags,
    so every decision taken from it (clone sources, copies, the sweep) treats them as anyone's cluster.
    """

    snapshot: Snapshot
    forged: tuple[str, ...] = ()


def trusted(snapshot: Snapshot, records: Mapping[str, MadeRecord]) -> TrustedSnapshot:
    """``snapshot`` with the tool's tags kept only where ``records`` (by lower-case identifier) agree.

    >>> from datetime import UTC
    >>> tags = {MANAGED_BY_TAG: MANAGED_BY_VALUE, COPY_OF_TAG: "prod-db"}
    >>> when = datetime(2026, 11, 22, tzinfo=UTC)
    >>> prod = ClusterFacts("prod-db", "available", "aurora-postgresql", None, when, tags)
    >>> copy = ClusterFacts("aurora-clone-prod-db-copy-1", "available", "aurora-postgresql", None, when, tags)
    >>> seen = trusted(Snapshot((prod, copy)), {copy.identifier: MadeRecord(copy.identifier, "copy", source="prod-db")})
    >>> seen.forged, [c.identifier for c in seen.snapshot.copies_of("prod-db")]
    (('prod-db',), ['aurora-clone-prod-db-copy-1'])
    """
    kept: list[ClusterFacts] = []
    forged: list[str] = []
    for cluster in snapshot:
        if cluster.made_by_tool and not recorded_as_tagged(cluster, records.get(cluster.identifier.lower())):
            forged.append(cluster.identifier)
            untagged = {key: value for key, value in cluster.tags.items() if not key.startswith(TAG_PREFIX)}
            cluster = ClusterFacts(
                cluster.identifier,
                cluster.status,
                cluster.engine,
                cluster.clone_group_id,
                cluster.created,
                untagged,
                cluster.instance_count,
            )
        kept.append(cluster)
    return TrustedSnapshot(Snapshot(tuple(kept)), tuple(forged))
