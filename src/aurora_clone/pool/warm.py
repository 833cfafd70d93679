"""Warm pools: clones the pool makes before anyone asks, with the slow properties of a named shape, so a
stack can claim one and be green in seconds.

Warm clones and stacks share clone slots, and stacks come first: a warm clone is started only into a slot
beyond the pool's spareSlots, and never into the last free slot even when spareSlots is 0. The copy plan
counts the warm clones still to make on top of those reserved slots, so copies bring the slots they wait for.

Everything here is pure. The runner reads the tool's ledger records of warm clones not yet claimed, joins
them with the snapshot into :class:`WarmMember`, and plans both sides::

    warm = plan_warm(policy, members, now, free_now=free_slots_now(policy, snapshot, now))
    plan = plan_pool(policy, snapshot, now, warm_wanted=warm.wanted)
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from aurora_clone.pool.model import GONE_STATUSES
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT
from aurora_clone.properties import KNOWN_PROPERTIES, CloneProperties, read_properties
from aurora_clone.timespec import format_duration, format_timestamp, parse_duration

# Each warm clone holds a clone slot and, unlike a spare slot, an instance billed by the hour.
MAX_WARM_CLONES_PER_POOL = 15
DEFAULT_WARM_MAX_AGE = timedelta(hours=12)
MAX_WARM_MAX_AGE = timedelta(days=7)
_NAME = re.compile(r"[a-z][a-z0-9-]{0,19}")
_SHAPE_FIELDS = ("name", "count", "maxAge", "properties")
# Only a checked source makes a shape; with an invalid source this one stands in, so the shapes' own
# problems are still reported together with the source's.
_STAND_IN_SOURCE = "pool-source"

# The slow properties, those a claim cannot change in seconds: (property, CloneProperties field, what unset means).
_SLOW: tuple[tuple[str, str, str], ...] = (
    ("InstanceClass", "instance_class", "the source writer's class"),
    ("InstanceCount", "instance_count", ""),
    ("DBSubnetGroupName", "db_subnet_group_name", "the source's"),
    ("DBClusterParameterGroupName", "db_cluster_parameter_group_name", "the source's"),
    ("DBParameterGroupName", "db_parameter_group_name", "the source writer's"),
    ("KmsKeyId", "kms_key_id", "the source's key"),
    ("BacktrackWindow", "backtrack_window", "backtracking off"),
    ("ManageMasterUserPassword", "manage_master_user_password", ""),
    ("MasterUserSecretKmsKeyId", "master_user_secret_kms_key_id", "aws/secretsmanager"),
    ("ServerlessV2MinCapacity", "serverless_v2_min_capacity", "the source's"),
    ("ServerlessV2MaxCapacity", "serverless_v2_max_capacity", "the source's"),
    ("EnableIAMDatabaseAuthentication", "enable_iam_database_authentication", ""),
    ("Port", "port", "the source's"),
)
WARM_SHAPE_PROPERTIES = tuple(name for name, _, _ in _SLOW)
# Serverless v2 capacities change in seconds (ModifyDBCluster, applied at once), so a warm shape may idle at
# its own (MinCapacity 0: paused) and the claim sets the resource's; they never make a mismatch.
SET_AT_CLAIM = ("ServerlessV2MinCapacity", "ServerlessV2MaxCapacity")


@dataclass(frozen=True)
class WarmShape:
    """Keep ``count`` warm clones with these slow ``properties``, none older than ``max_age``."""

    name: str
    count: int
    max_age: timedelta
    properties: CloneProperties

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"count must be at least 1, got {self.count}.")
        if self.max_age <= timedelta(0):
            raise ValueError(f"max_age must be positive, got {self.max_age}.")


@dataclass(frozen=True)
class WarmMember:
    """A warm clone not yet claimed: its cluster, its shape's name, when it was made and its RDS status.

    ``instance_count`` is None when it was not gathered.
    """

    cluster_id: str
    shape: str
    made_at: datetime
    status: str
    instance_count: int | None = None

    def __post_init__(self) -> None:
        if self.made_at.tzinfo is None or self.made_at.utcoffset() is None:
            raise ValueError(f"WarmMember '{self.cluster_id}': made_at must have a time zone.")

    @property
    def is_live(self) -> bool:
        """True unless the cluster is being deleted; one still ``creating`` is live and holds its slot."""
        return self.status not in GONE_STATUSES


@dataclass(frozen=True)
class WarmPlan:
    """What one run found and will do for one pool's warm clones.

    ``to_make``: (shape, how many) to start now, within the free slots. ``wanted``: the warm clones still
    to make, those waiting for slots included: what the copy plan must bring slots for beyond spareSlots.
    """

    source_id: str
    to_make: tuple[tuple[str, int], ...]
    to_delete: tuple[str, ...]
    findings: tuple[str, ...]
    actions: tuple[str, ...]
    dry_run: bool
    wanted: int = 0


class WarmPolicy(Protocol):
    """What :func:`plan_warm` reads of a pool; a ``PoolPolicy`` is one."""

    @property
    def source_id(self) -> str: ...
    @property
    def spare_slots(self) -> int: ...
    @property
    def dry_run(self) -> bool: ...
    @property
    def warm(self) -> tuple[WarmShape, ...]: ...


def warm_slots_allowed(free_now: int, spare_slots: int) -> int:
    """How many warm clones may start now: the free slots beyond spareSlots, always leaving one free.

    >>> warm_slots_allowed(15, 10), warm_slots_allowed(15, 0), warm_slots_allowed(3, 5)
    (5, 14, 0)
    """
    return max(0, free_now - warm_reserve(spare_slots))


def warm_reserve(spare_slots: int) -> int:
    """The free slots warm clones never take: spareSlots, and at least one."""
    return max(spare_slots, 1)


def shape_difference(shape: WarmShape, wanted: CloneProperties) -> tuple[str, ...]:
    """One sentence per slow property on which ``wanted`` differs from ``shape``; empty when it can claim one.

    >>> ci = WarmShape("ci", 2, DEFAULT_WARM_MAX_AGE, CloneProperties("prod-db", instance_class="db.t4g.medium"))
    >>> shape_difference(ci, CloneProperties("prod-db", instance_class="db.t4g.medium", tags=(("team", "a"),)))
    ()
    >>> shape_difference(ci, CloneProperties("prod-db", instance_class="db.r6g.large"))
    ("InstanceClass is 'db.r6g.large' here, but warm pool 'ci' keeps 'db.t4g.medium'.",)
    """
    differences = []
    for name, field_name, unset in _SLOW:
        if name in SET_AT_CLAIM:
            continue
        kept, asked = getattr(shape.properties, field_name), getattr(wanted, field_name)
        if kept != asked:
            differences.append(
                f"{name} is {_value(asked, unset)} here, but warm pool '{shape.name}' keeps {_kept(kept, unset)}."
            )
    return tuple(differences)


def shape_written(shape: WarmShape) -> dict[str, Any]:
    """The shape's slow properties as a template writes them, those set only: what the ledger keeps of each
    warm clone, so a claim compares with what was made, whatever the pool document says by then.

    >>> shape_written(WarmShape("ci", 1, DEFAULT_WARM_MAX_AGE, CloneProperties("prod-db", instance_count=2)))
    {'InstanceCount': 2}
    """
    unset = CloneProperties(shape.properties.source_cluster_id)
    return {
        name: getattr(shape.properties, field_name)
        for name, field_name, _ in _SLOW
        if getattr(shape.properties, field_name) != getattr(unset, field_name)
    }


def recorded_shape(name: str, source_id: str, written: str) -> WarmShape | None:
    """The shape a warm clone's ledger record names (``shape_written`` as JSON), read back with the resource's
    rules; None when it cannot be read, and such a warm clone is never claimed.

    >>> recorded_shape("ci", "prod-db", '{"InstanceCount": 2}').properties.instance_count
    2
    """
    try:
        raw = json.loads(written or "{}")
    except ValueError:
        return None
    if not isinstance(raw, dict) or not set(raw) <= set(WARM_SHAPE_PROPERTIES):
        return None
    reading = read_properties({"SourceClusterId": source_id, **raw})
    if reading.properties is None or reading.problems:
        return None
    return WarmShape(name, 1, DEFAULT_WARM_MAX_AGE, reading.properties)


@dataclass(frozen=True)
class WarmCandidate:
    """An unclaimed warm clone a Create might take: its recorded ``shape`` (None when unreadable), whether it
    is ``ready`` (available, every instance available) and when its data was taken."""

    cluster_id: str
    shape: WarmShape | None
    ready: bool
    data_time: datetime


@dataclass(frozen=True)
class WarmChoice:
    """The warm clones a Create may claim, freshest data first (tried in turn: another request may take one
    first), or none and ``why`` in words for the request's status."""

    cluster_ids: tuple[str, ...]
    why: str


def choose_warm_clones(pool: str, candidates: Sequence[WarmCandidate], wanted: CloneProperties) -> WarmChoice:
    """Of ``candidates`` (the source's unclaimed warm clones of the shape named ``pool``), those ``wanted`` can
    claim: ready, and the same on every slow property. ``WarmPool`` is a preference: none is not a failure.

    >>> from datetime import UTC
    >>> ci = WarmShape("ci", 1, DEFAULT_WARM_MAX_AGE, CloneProperties("prod-db"))
    >>> when = datetime(2026, 11, 22, tzinfo=UTC)
    >>> choose_warm_clones("ci", [WarmCandidate("w-1", ci, True, when)], CloneProperties("prod-db", port=6543)).why
    "WarmPool 'ci' not used: Port is 6543 here, but warm pool 'ci' keeps it unset (the source's)."
    """
    if not candidates:
        return WarmChoice((), f"WarmPool '{pool}' has no warm clone of '{wanted.source_identifier}' now")
    differences: tuple[str, ...] = ()
    matching: list[WarmCandidate] = []
    for candidate in candidates:
        if candidate.shape is None:
            continue
        found = shape_difference(candidate.shape, wanted)
        if found:
            differences = differences or found
        else:
            matching.append(candidate)
    if not matching:
        why = " ".join(differences) if differences else "its warm clones' records cannot be read."
        return WarmChoice((), f"WarmPool '{pool}' not used: {why}")
    ready = sorted((c for c in matching if c.ready), key=lambda c: (-c.data_time.timestamp(), c.cluster_id))
    if not ready:
        return WarmChoice((), f"WarmPool '{pool}' has {len(matching)} matching warm clone(s), none ready yet")
    return WarmChoice(tuple(c.cluster_id for c in ready), "")


def plan_warm(policy: WarmPolicy, members: Sequence[WarmMember], now: datetime, free_now: int) -> WarmPlan:
    """Warm clones to make so each shape has its count, and those to delete: too old, of a shape no longer
    in the document, or beyond their shape's count (the oldest go). ``free_now`` is the pool's free clone
    slots (:func:`aurora_clone.pool.plan.free_slots_now`); warm clones start only in those past the reserve.

    >>> from datetime import UTC
    >>> from aurora_clone.pool.plan import PoolPolicy
    >>> ci = WarmShape("ci", 3, DEFAULT_WARM_MAX_AGE, CloneProperties("prod-db"))
    >>> now = datetime(2026, 11, 22, 10, tzinfo=UTC)
    >>> made = WarmMember("warm-1", "ci", now - timedelta(hours=1), "available", 1)
    >>> plan = plan_warm(PoolPolicy("prod-db", spare_slots=5, warm=(ci,)), [made], now, free_now=14)
    >>> plan.to_make, plan.to_delete, plan.wanted
    ((('ci', 2),), (), 2)
    """
    shapes = {shape.name: shape for shape in policy.warm}
    live = sorted((m for m in members if m.is_live), key=lambda m: (m.made_at, m.cluster_id))
    reasons: dict[str, str] = {}
    for member in live:
        shape = shapes.get(member.shape)
        if shape is None:
            reasons[member.cluster_id] = f"its shape '{member.shape}' is no longer in the pool's document"
        elif now - member.made_at >= shape.max_age:
            reasons[member.cluster_id] = (
                f"made {format_timestamp(member.made_at)}, older than maxAge {format_duration(shape.max_age)} "
                f"of shape '{shape.name}'"
            )
    kept: dict[str, list[WarmMember]] = {}
    for shape in policy.warm:
        newest_first = [m for m in reversed(live) if m.shape == shape.name and m.cluster_id not in reasons]
        kept[shape.name] = newest_first[: shape.count]
        for extra in newest_first[shape.count :]:
            reasons[extra.cluster_id] = f"shape '{shape.name}' keeps {shape.count}, and this one is older than those"
    to_delete = tuple(m.cluster_id for m in live if m.cluster_id in reasons)

    need = {shape.name: shape.count - len(kept[shape.name]) for shape in policy.warm}
    making = _share(need, warm_slots_allowed(free_now, policy.spare_slots))
    findings = [_describe(shape, kept[shape.name], now) for shape in policy.warm]
    wanted, started = sum(need.values()), sum(making.values())
    if started < wanted:
        reserve = warm_reserve(policy.spare_slots)
        findings.append(
            f"Warm clones: {wanted - started} of {wanted} to make {_wait(wanted - started)} for free clone slots: "
            f"{free_now} free now, and {reserve} stay free for stacks (spareSlots {policy.spare_slots}, and always "
            "at least one); the copy plan counts them."
        )
    actions = [
        _make_action(shape, len(kept[shape.name]), need[shape.name], making[shape.name])
        for shape in policy.warm
        if need[shape.name]
    ]
    if policy.warm and not wanted:
        actions.append("Make no warm clone: every shape has its count.")
    actions.extend(f"Delete warm clone '{identifier}': {reasons[identifier]}." for identifier in to_delete)
    if policy.dry_run:
        actions = [f"[dry run] {action}" for action in actions]
    return WarmPlan(
        source_id=policy.source_id,
        to_make=tuple((name, count) for name, count in making.items() if count),
        to_delete=to_delete,
        findings=tuple(findings),
        actions=tuple(actions),
        dry_run=policy.dry_run,
        wanted=wanted,
    )


def parse_warm_shapes(written: Any, source_id: str | None, label: str) -> tuple[tuple[WarmShape, ...], list[str]]:
    """A pool's ``warm`` list read into shapes, and one sentence per problem (each starting with ``label``).

    The properties are checked with the resource's own rules, against the pool's source.

    >>> shapes, problems = parse_warm_shapes([{"name": "ci", "count": 2, "properties": {"InstanceCount": 0}}],
    ...     "prod-db", "Pool 1 (prod-db)")
    >>> shapes, problems
    ((), ['Pool 1 (prod-db): warm "ci": InstanceCount must be between 1 and 16, got 0.'])
    """
    if not isinstance(written, list):
        return (), [
            f'{label}: warm must be a list of warm shapes such as [{{"name": "ci", "count": 2}}], got '
            f"{_shown(written)}."
        ]
    problems: list[str] = []
    shapes: list[WarmShape] = []
    first_at: dict[str, int] = {}
    total = 0
    for position, entry in enumerate(written, start=1):
        if not isinstance(entry, Mapping):
            problems.append(
                f'{label}: warm {position} must be an object with "name" and "count", and optionally "maxAge" '
                'and "properties".'
            )
            continue
        found = len(problems)
        name = entry.get("name")
        named = isinstance(name, str) and _NAME.fullmatch(name) is not None
        where = f'{label}: warm "{name}"' if named else f"{label}: warm {position}"
        problems.extend(
            f'{where}: unknown field "{field}" (fields are name, count, maxAge and properties, case-sensitive).'
            for field in sorted(set(entry) - set(_SHAPE_FIELDS), key=str)
        )
        problems.extend(_name_problems(where, name, named, position, first_at))
        count = _read_count(where, entry, problems)
        total += count or 0
        max_age = _read_max_age(where, entry, problems)
        properties = _read_properties(where, entry, source_id, problems)
        if len(problems) == found and count is not None and properties is not None and isinstance(name, str):
            shapes.append(WarmShape(name, count, max_age, properties))
    if total > MAX_WARM_CLONES_PER_POOL:
        problems.append(
            f"{label}: the warm shapes keep {total} warm clones; at most {MAX_WARM_CLONES_PER_POOL} per pool: each "
            "warm clone holds a clone slot and, unlike a spare slot, an instance billed by the hour."
        )
    return tuple(shapes), problems


def _name_problems(where: str, name: Any, named: bool, position: int, first_at: dict[str, int]) -> list[str]:
    if name is None:
        return [f"{where}: name is required: the name stacks claim this shape's warm clones by, such as ci."]
    if not named:
        return [
            f"{where}: name {_shown(name)} must be 1-20 lower-case letters, digits and hyphens, starting with a letter."
        ]
    if name in first_at:
        return [f'{where}: warm {first_at[name]} is named "{name}" too; give each warm shape its own name.']
    first_at[name] = position
    return []


def _read_count(where: str, entry: Mapping[str, Any], problems: list[str]) -> int | None:
    count = entry.get("count")
    if count is None:
        problems.append(f"{where}: count is required: how many warm clones of this shape to keep ready.")
        return None
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= CLONE_SLOT_LIMIT:
        problems.append(f"{where}: count must be a whole number from 1 to {CLONE_SLOT_LIMIT}, got {_shown(count)}.")
        return None
    return count


def _read_max_age(where: str, entry: Mapping[str, Any], problems: list[str]) -> timedelta:
    written = entry.get("maxAge")
    if written is None:
        return DEFAULT_WARM_MAX_AGE
    if not isinstance(written, str):
        problems.append(f"{where}: maxAge must be an ISO-8601 duration such as PT12H, got {_shown(written)}.")
        return DEFAULT_WARM_MAX_AGE
    try:
        max_age = parse_duration(written)
    except ValueError as error:
        problems.append(f"{where}: maxAge {error}")
        return DEFAULT_WARM_MAX_AGE
    if max_age > MAX_WARM_MAX_AGE:
        problems.append(
            f"{where}: maxAge {_shown(written)} is more than {format_duration(MAX_WARM_MAX_AGE)}: a warm clone keeps "
            "the data of the moment it was made, and its instance is billed all the while it waits."
        )
    return max_age


def _read_properties(
    where: str, entry: Mapping[str, Any], source_id: str | None, problems: list[str]
) -> CloneProperties | None:
    written = entry.get("properties", {})
    if not isinstance(written, Mapping):
        problems.append(
            f'{where}: properties must be an object of slow properties such as {{"InstanceClass": "db.r6g.large"}}, '
            f"got {_shown(written)}."
        )
        return None
    slow: dict[str, Any] = {}
    for key in sorted(written, key=str):
        name = str(key)
        if name in WARM_SHAPE_PROPERTIES:
            slow[name] = written[key]
        elif name == "SourceClusterId":
            problems.append(
                f"{where}: SourceClusterId cannot be set on a warm shape: the pool's source "
                f"({_shown(source_id or '?')}) is the source of its warm clones."
            )
        elif name in KNOWN_PROPERTIES:
            problems.append(
                f"{where}: {name} is not a slow property: the resource that claims a warm clone sets it instead."
            )
        else:
            problems.append(f"{where}: {_unknown_property(name)}")
    reading = read_properties({"SourceClusterId": source_id or _STAND_IN_SOURCE, **slow})
    problems.extend(f"{where}: {problem}" for problem in reading.problems)
    return reading.properties


def _unknown_property(name: str) -> str:
    lowered = {known.lower(): known for known in WARM_SHAPE_PROPERTIES}
    guess = lowered.get(name.lower()) or next(iter(difflib.get_close_matches(name, WARM_SHAPE_PROPERTIES, n=1)), None)
    if guess is not None:
        return f"unknown property {_shown(name)}: did you mean {_shown(guess)}?"
    return f"unknown property {_shown(name)} (a warm shape takes only {', '.join(WARM_SHAPE_PROPERTIES)})."


def _share(need: Mapping[str, int], slots: int) -> dict[str, int]:
    """``slots`` dealt one at a time to the shapes that need them, in document order: no shape starves the rest."""
    given = dict.fromkeys(need, 0)
    while slots > 0 and any(given[name] < need[name] for name in need):
        for name in need:
            if slots > 0 and given[name] < need[name]:
                given[name] += 1
                slots -= 1
    return given


def _describe(shape: WarmShape, kept: Sequence[WarmMember], now: datetime) -> str:
    line = f"Warm '{shape.name}': {len(kept)} of {shape.count} present"
    if kept:
        states: dict[str, int] = {}
        for member in kept:
            state = member.status
            wanted = shape.properties.instance_count
            if member.status == "available" and member.instance_count is not None and member.instance_count < wanted:
                state = f"available with {member.instance_count} of {wanted} instances"
            states[state] = states.get(state, 0) + 1
        ages = ", ".join(_age(now - member.made_at) for member in kept)
        line += f" ({', '.join(f'{n} {state}' for state, n in states.items())}), ages {ages}"
    return f"{line}; maxAge {format_duration(shape.max_age)}."


def _make_action(shape: WarmShape, present: int, need: int, making: int) -> str:
    state = f"{present} of {shape.count} present"
    if not making:
        return f"Make no warm clone of shape '{shape.name}' yet: {state}; {need} {_wait(need)} for free clone slots."
    waiting = f", {need - making} more {_wait(need - making)} for free clone slots" if need > making else ""
    clones = "clone" if making == 1 else "clones"
    return f"Make {making} warm {clones} of shape '{shape.name}': {state}{waiting}."


def _wait(count: int) -> str:
    return "waits" if count == 1 else "wait"


def _age(length: timedelta) -> str:
    return format_duration(max(timedelta(0), length) // timedelta(minutes=1) * timedelta(minutes=1))


def _value(value: Any, unset: str) -> str:
    if value is None:
        return f"unset ({unset})"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"'{value}'"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _kept(value: Any, unset: str) -> str:
    return f"it unset ({unset})" if value is None else _value(value, unset)


def _shown(value: Any) -> str:
    """A document value as it was written in JSON (strings quoted, true/false lower-case)."""
    return json.dumps(value, default=repr)
