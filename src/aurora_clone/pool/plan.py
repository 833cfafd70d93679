"""The copy pool's plan: how many full copies of a source to add, which stale copies to delete, and why.

The scheduled function and the CLI gather a snapshot, call :func:`plan_pool` and carry the plan out
without waiting for copies to finish. A copy still being made counts as the slots it will bring, so a
second run from the same state (or one that overlaps the first) creates nothing more. Warm clones still to
make (``aurora_clone.pool.warm``) count on top of spareSlots: the copies bring the slots they wait for.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aurora_clone.naming import is_valid_identifier
from aurora_clone.pool.model import ClusterFacts, Snapshot
from aurora_clone.pool.select import DEFAULT_MAX_COPY_AGE, is_fresh, obsolete_copies
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT, free_slots, has_live_clones, slots_used
from aurora_clone.pool.warm import WarmShape, parse_warm_shapes, warm_reserve
from aurora_clone.timespec import format_duration, format_timestamp, parse_duration

# Statuses RDS leaves for 'available' by itself: a copy in one of them will bring its free slots.
ON_THE_WAY_STATUSES = frozenset(
    {
        "creating",
        "backing-up",
        "modifying",
        "maintenance",
        "upgrading",
        "renaming",
        "resetting-master-credentials",
        "starting",
    }
)

_POOL_FIELDS = {"source", "spareSlots", "maxCopyAge", "dryRun", "maxNewCopiesPerRun", "warm"}
# Every spare slot past the source's own 15 is a full copy of the source, billed in full. 60 slots is four
# copies' worth: room for a large team, while a typo (300, 3000) cannot order tens of copies of production.
MAX_SPARE_SLOTS = 60
# A run that would start more copies than this at once (a new pool, a burst of stacks) does not, and says
# so: the document must allow it with maxNewCopiesPerRun (at most MAX_NEW_COPIES_PER_RUN).
DEFAULT_MAX_NEW_COPIES_PER_RUN = 3
MAX_NEW_COPIES_PER_RUN = 10


@dataclass(frozen=True)
class PoolPolicy:
    """One pool: keep ``spare_slots`` clone slots free over ``source_id`` and its fresh copies, and the
    ``warm`` shapes' warm clones made."""

    source_id: str
    spare_slots: int
    max_copy_age: timedelta = DEFAULT_MAX_COPY_AGE
    dry_run: bool = False
    slot_limit: int = CLONE_SLOT_LIMIT
    max_new_copies_per_run: int = DEFAULT_MAX_NEW_COPIES_PER_RUN
    warm: tuple[WarmShape, ...] = ()

    def __post_init__(self) -> None:
        if self.spare_slots < 0:
            raise ValueError(f"spare_slots must be 0 or more, got {self.spare_slots}.")
        if self.max_new_copies_per_run < 1:
            raise ValueError(f"max_new_copies_per_run must be at least 1, got {self.max_new_copies_per_run}.")
        if self.max_copy_age <= timedelta(0):
            raise ValueError(f"max_copy_age must be positive, got {self.max_copy_age}.")
        if self.slot_limit < 1:
            raise ValueError(f"slot_limit must be at least 1, got {self.slot_limit}.")
        names = [shape.name for shape in self.warm]
        if len(set(names)) < len(names):
            raise ValueError(f"warm shapes must have distinct names, got {', '.join(names)}.")


@dataclass(frozen=True)
class PoolPlan:
    """What one run found and will do for one source.

    ``free_slots`` can take a clone now; ``future_slots`` adds the slots of copies still on their way.
    ``copies_to_finish`` are available copies without an instance: they need a writer instance before
    they can be cloned. With ``dry_run`` the plan is only logged.
    """

    source_id: str
    free_slots: int
    future_slots: int
    copies_to_create: int
    copies_to_delete: tuple[str, ...]
    findings: tuple[str, ...]
    actions: tuple[str, ...]
    dry_run: bool
    copies: tuple[str, ...] = ()
    copies_to_finish: tuple[str, ...] = ()


class PoolConfigError(ValueError):
    """The pool configuration is invalid; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid pool configuration: " + " ".join(problems))


def plan_pool(policy: PoolPolicy, snapshot: Snapshot, now: datetime, warm_wanted: int = 0) -> PoolPlan:
    """Copies to create so the free slots reach the target, and obsolete copies to delete.

    The target is spareSlots; with ``warm_wanted`` warm clones still to make (``WarmPlan.wanted``) it is
    those on top of the slots warm clones never take (spareSlots, and at least one).

    >>> from datetime import UTC
    >>> now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    >>> source = ClusterFacts("prod-db", "available", "aurora-mysql", None, datetime(2026, 1, 1, tzinfo=UTC))
    >>> plan = plan_pool(PoolPolicy("prod-db", spare_slots=40), Snapshot((source,)), now)
    >>> plan.free_slots, plan.copies_to_create
    (15, 2)
    """
    if warm_wanted < 0:
        raise ValueError(f"warm_wanted must be 0 or more, got {warm_wanted}.")
    limit = policy.slot_limit
    source = snapshot.get(policy.source_id)
    copies = [copy for copy in snapshot.copies_of(policy.source_id) if copy.is_live]
    findings: list[str] = []
    if source is not None:
        findings.append(_describe("Source", source, snapshot, limit, now, data="live"))
    for copy in copies:
        note = ""
        if not is_fresh(copy, policy.max_copy_age, now):
            fate = "kept while it has live clones" if has_live_clones(copy, snapshot) else "obsolete"
            note = f"; older than MaxCopyAge {format_duration(policy.max_copy_age)}: {fate}"
        findings.append(_describe("Copy", copy, snapshot, limit, now, note=note))
    free_now, on_the_way, to_finish = _count_slots(policy, snapshot, now)
    findings.extend(
        f"Ignored '{cluster.identifier}': tagged as a copy of '{policy.source_id}' but not made by this tool."
        for cluster in snapshot
        if (cluster.copy_of or "").lower() == policy.source_id.lower() and not cluster.made_by_tool
    )
    future = free_now + on_the_way
    target, target_words = _target(policy.spare_slots, warm_wanted)
    findings.append(f"Free clone slots: {free_now} now, {future} counting copies on the way; target {target_words}.")

    if source is None or source.status != "available":
        blocked = (
            f"the source '{policy.source_id}' was not found"
            if source is None
            else f"the source '{source.identifier}' is '{source.status}', not 'available'"
        )
        findings.append(f"Planning nothing for this pool: {blocked}.")
        return _plan(policy, free_now, future, 0, (), findings, [f"Do nothing: {blocked}."], copies, ())

    actions: list[str] = []
    deficit = target - future
    to_create = math.ceil(deficit / limit) if deficit > 0 else 0
    if to_create > policy.max_new_copies_per_run:
        lower = "its spareSlots or its warm counts" if warm_wanted else "its spareSlots"
        actions.append(
            f"Create no copy: {to_create} full copies of '{source.identifier}' at once ({future} free slots counting "
            f"copies on the way, target {target_words}) are more than maxNewCopiesPerRun "
            f'({policy.max_new_copies_per_run}) allows. If that is meant, set "maxNewCopiesPerRun": {to_create} '
            f"in the pool of '{policy.source_id}'; else lower {lower}."
        )
        to_create = 0
    elif to_create:
        actions.append(
            f"Create {to_create} full {_copies_word(to_create)} of '{source.identifier}': {future} free slots "
            f"counting copies on the way, {deficit} below the target of {target_words}; each copy brings {limit}."
        )
    else:
        actions.append(
            f"Create no copy: {future} free slots counting copies on the way meet the target of {target_words}."
        )
    actions.extend(
        f"Add a writer instance to '{identifier}': a copy without an instance cannot be cloned."
        for identifier in to_finish
    )
    to_delete = obsolete_copies(policy.source_id, snapshot, policy.max_copy_age, now)
    by_id = {copy.identifier: copy for copy in copies}
    actions.extend(
        f"Delete '{identifier}': a copy with data from {format_timestamp(by_id[identifier].data_time)}, older than "
        f"MaxCopyAge {format_duration(policy.max_copy_age)}, with no live clones."
        for identifier in to_delete
    )
    return _plan(policy, free_now, future, to_create, to_delete, findings, actions, copies, to_finish)


def free_slots_now(policy: PoolPolicy, snapshot: Snapshot, now: datetime) -> int:
    """The clone slots that can take a clone now (``PoolPlan.free_slots``): the source's while it takes
    clones, and its fresh copies'. Warm clones share them with stacks (``aurora_clone.pool.warm``).

    >>> from datetime import UTC
    >>> source = ClusterFacts("prod-db", "available", "aurora-mysql", None, datetime(2026, 1, 1, tzinfo=UTC))
    >>> free_slots_now(PoolPolicy("prod-db", spare_slots=40), Snapshot((source,)), datetime(2026, 11, 22, tzinfo=UTC))
    15
    """
    return _count_slots(policy, snapshot, now)[0]


def parse_pool_config(
    document: str | Mapping[str, Any], *, slot_limit: int = CLONE_SLOT_LIMIT
) -> tuple[PoolPolicy, ...]:
    """The pools in the scheduled function's JSON document, validated; every problem is reported at once.

    >>> pools = parse_pool_config('{"pools": [{"source": "prod-db", "spareSlots": 30, "maxCopyAge": "P2D"}]}')
    >>> [(pool.source_id, pool.spare_slots, pool.max_copy_age.days, pool.dry_run) for pool in pools]
    [('prod-db', 30, 2, False)]
    """
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError as error:
            raise PoolConfigError([f"The document is not valid JSON: {error}."]) from None
    if not isinstance(document, Mapping) or not isinstance(document.get("pools"), list):
        raise PoolConfigError(['The document must be a JSON object with a "pools" list, such as {"pools": []}.'])
    problems = [
        f'Unknown top-level field "{name}" (the document has only "pools").'
        for name in sorted(set(document) - {"pools"})
    ]
    policies: list[PoolPolicy] = []
    first_pool: dict[str, int] = {}
    for number, entry in enumerate(document["pools"], start=1):
        policy = _parse_pool(number, entry, slot_limit, problems)
        if policy is None:
            continue
        if policy.source_id in first_pool:
            problems.append(
                f"Pool {number} ({policy.source_id}): source '{policy.source_id}' already has pool "
                f"{first_pool[policy.source_id]}; give each source one pool."
            )
            continue
        first_pool[policy.source_id] = number
        policies.append(policy)
    if problems:
        raise PoolConfigError(problems)
    return tuple(policies)


def _parse_pool(number: int, entry: Any, slot_limit: int, problems: list[str]) -> PoolPolicy | None:
    if not isinstance(entry, Mapping):
        problems.append(f'Pool {number} must be an object with "source", "spareSlots", "maxCopyAge" and "dryRun".')
        return None
    source = entry.get("source")
    source_id = source.strip().lower() if isinstance(source, str) and is_valid_identifier(source.strip()) else None
    label = f"Pool {number} ({source_id})" if source_id else f"Pool {number}"
    found = len(problems)
    for name in sorted(set(entry) - _POOL_FIELDS):
        problems.append(
            f'{label}: unknown field "{name}" (fields are source, spareSlots, maxCopyAge, dryRun, '
            "maxNewCopiesPerRun and warm, case-sensitive)."
        )
    if source is None:
        problems.append(f"{label}: source is required: the identifier of the DB cluster to keep copies of.")
    elif source_id is None:
        problems.append(f"{label}: source {_shown(source)} is not a DB cluster identifier.")
    spare = entry.get("spareSlots")
    spare_slots = spare if isinstance(spare, int) and not isinstance(spare, bool) and spare >= 0 else None
    if spare is None:
        problems.append(f"{label}: spareSlots is required: how many free clone slots to keep ready.")
    elif spare_slots is None:
        problems.append(f"{label}: spareSlots must be a whole number of 0 or more, got {_shown(spare)}.")
    elif spare_slots > MAX_SPARE_SLOTS:
        problems.append(
            f"{label}: spareSlots {spare_slots} is more than {MAX_SPARE_SLOTS}: each spare slot past the source's "
            f"own is a full copy of the source billed in full, and {MAX_SPARE_SLOTS} is four copies' worth "
            f"({math.ceil(spare_slots / slot_limit)} copies would be kept for {spare_slots}). Was it a typo?"
        )
    max_new = entry.get("maxNewCopiesPerRun", DEFAULT_MAX_NEW_COPIES_PER_RUN)
    if isinstance(max_new, bool) or not isinstance(max_new, int) or not 1 <= max_new <= MAX_NEW_COPIES_PER_RUN:
        problems.append(
            f"{label}: maxNewCopiesPerRun must be a whole number from 1 to {MAX_NEW_COPIES_PER_RUN}, got "
            f"{_shown(max_new)}."
        )
    max_copy_age = DEFAULT_MAX_COPY_AGE
    written_age = entry.get("maxCopyAge")
    if written_age is not None:
        if not isinstance(written_age, str):
            problems.append(f"{label}: maxCopyAge must be an ISO-8601 duration such as P3D, got {_shown(written_age)}.")
        else:
            try:
                max_copy_age = parse_duration(written_age)
            except ValueError as error:
                problems.append(f"{label}: maxCopyAge {error}")
    dry_run = entry.get("dryRun", False)
    if not isinstance(dry_run, bool):
        problems.append(f"{label}: dryRun must be true or false, got {_shown(dry_run)}.")
    warm: tuple[WarmShape, ...] = ()
    if "warm" in entry:
        warm, warm_problems = parse_warm_shapes(entry["warm"], source_id, label)
        problems.extend(warm_problems)
    if source_id is None or spare_slots is None or len(problems) > found:
        return None
    return PoolPolicy(source_id, spare_slots, max_copy_age, dry_run, slot_limit, max_new, warm)


def _shown(value: Any) -> str:
    """A configuration value as it was written in JSON (strings quoted, true/false lower-case)."""
    return json.dumps(value, default=repr)


def _describe(
    role: str, cluster: ClusterFacts, snapshot: Snapshot, limit: int, now: datetime, data: str = "", note: str = ""
) -> str:
    used = slots_used(cluster, snapshot)
    age = format_duration(max(timedelta(0), now - cluster.created) // timedelta(minutes=1) * timedelta(minutes=1))
    data_time = data or f"from {format_timestamp(cluster.data_time)}"
    instances = "" if cluster.instance_count is None else f", {cluster.instance_count} instance(s)"
    return (
        f"{role} '{cluster.identifier}': {cluster.status}{instances}, age {age}, data {data_time}, "
        f"{used} of {limit} clone slots used, {free_slots(cluster, snapshot, limit)} free{note}."
    )


def _count_slots(policy: PoolPolicy, snapshot: Snapshot, now: datetime) -> tuple[int, int, tuple[str, ...]]:
    """(free now, free on the way, copies to finish) over the source and its fresh live copies."""
    limit = policy.slot_limit
    source = snapshot.get(policy.source_id)
    free_now = free_slots(source, snapshot, limit) if source is not None and source.accepts_clones else 0
    on_the_way = 0
    to_finish: list[str] = []
    for copy in snapshot.copies_of(policy.source_id):
        if not copy.is_live or not is_fresh(copy, policy.max_copy_age, now):
            continue
        if copy.accepts_clones:
            free_now += free_slots(copy, snapshot, limit)
        elif copy.status == "available":  # available without an instance: one step from taking clones
            to_finish.append(copy.identifier)
            on_the_way += free_slots(copy, snapshot, limit)
        elif copy.status in ON_THE_WAY_STATUSES:
            on_the_way += free_slots(copy, snapshot, limit)
    return free_now, on_the_way, tuple(to_finish)


def _target(spare_slots: int, warm_wanted: int) -> tuple[int, str]:
    """The free slots the copies must reach, and how to say it."""
    if not warm_wanted:
        return spare_slots, str(spare_slots)
    reserve = warm_reserve(spare_slots)
    return reserve + warm_wanted, f"{reserve + warm_wanted} ({reserve} spare for stacks, {warm_wanted} for warm clones)"


def _copies_word(count: int) -> str:
    return "copy" if count == 1 else "copies"


def _plan(
    policy: PoolPolicy,
    free_now: int,
    future: int,
    to_create: int,
    to_delete: tuple[str, ...],
    findings: list[str],
    actions: list[str],
    copies: list[ClusterFacts],
    to_finish: tuple[str, ...],
) -> PoolPlan:
    if policy.dry_run:
        actions = [f"[dry run] {action}" for action in actions]
    return PoolPlan(
        source_id=policy.source_id,
        free_slots=free_now,
        future_slots=future,
        copies_to_create=to_create,
        copies_to_delete=to_delete,
        findings=tuple(findings),
        actions=tuple(actions),
        dry_run=policy.dry_run,
        copies=tuple(copy.identifier for copy in copies),
        copies_to_finish=to_finish,
    )
