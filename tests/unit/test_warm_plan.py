"""Warm pools, the pure floor: the document's warm shapes, a claim's differences from a shape, the warm plan,
and the clone slots warm clones share with stacks."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import pytest

from aurora_clone.pool.model import Snapshot
from aurora_clone.pool.plan import PoolConfigError, PoolPolicy, free_slots_now, parse_pool_config, plan_pool
from aurora_clone.pool.warm import (
    DEFAULT_WARM_MAX_AGE,
    MAX_WARM_CLONES_PER_POOL,
    SET_AT_CLAIM,
    WARM_SHAPE_PROPERTIES,
    WarmMember,
    WarmPlan,
    WarmShape,
    parse_warm_shapes,
    plan_warm,
    shape_difference,
    warm_slots_allowed,
)
from aurora_clone.properties import KNOWN_PROPERTIES, CloneProperties, read_properties
from tests.unit.pool_factories import FRESH, NEWEST, NOW, SOURCE_ID, STALE, clones, copy, snapshot, source

LABEL = f"Pool 1 ({SOURCE_ID})"
CI = f'{LABEL}: warm "ci"'

# A valid value, not the default, for every slow property (the test below checks none is missing).
SAMPLES: dict[str, Any] = {
    "InstanceClass": "db.r6g.large",
    "InstanceCount": "2",
    "DBSubnetGroupName": "private",
    "DBClusterParameterGroupName": "cluster-params",
    "DBParameterGroupName": "instance-params",
    "KmsKeyId": "alias/clones",
    "BacktrackWindow": "3600",
    "ManageMasterUserPassword": "true",
    "MasterUserSecretKmsKeyId": "alias/secrets",
    "ServerlessV2MinCapacity": "0.5",
    "ServerlessV2MaxCapacity": "8",
    "EnableIAMDatabaseAuthentication": "true",
    "Port": "5433",
}


def props(**raw: Any) -> CloneProperties:
    """The resource's properties read from ``raw``, kept even where a pair does not go together."""
    reading = read_properties({"SourceClusterId": SOURCE_ID, **raw})
    assert reading.properties is not None
    return reading.properties


def shape(name: str = "ci", count: int = 3, max_age: timedelta = DEFAULT_WARM_MAX_AGE, **raw: Any) -> WarmShape:
    return WarmShape(name, count, max_age, props(**raw))


def member(
    cluster_id: str, age: timedelta = timedelta(hours=1), status: str = "available", of: str = "ci", instances: int = 1
) -> WarmMember:
    return WarmMember(cluster_id, of, NOW - age, status, instances)


def pool(*shapes: WarmShape, spare: int = 5, dry_run: bool = False) -> PoolPolicy:
    return PoolPolicy(SOURCE_ID, spare, dry_run=dry_run, warm=shapes)


def warm(policy: PoolPolicy, members: Sequence[WarmMember] = (), free_now: int = 15) -> WarmPlan:
    return plan_warm(policy, members, NOW, free_now)


def carried_out(plan: WarmPlan, members: Sequence[WarmMember], minutes: int = 1) -> list[WarmMember]:
    """``members`` after the plan's warm clones were requested and its deletions begun, ``minutes`` later."""
    at = NOW + timedelta(minutes=minutes)
    made = [
        WarmMember(f"{name}-new-{n}", name, at, "creating", 0) for name, count in plan.to_make for n in range(count)
    ]
    kept = [
        WarmMember(m.cluster_id, m.shape, m.made_at, "deleting", m.instance_count)
        if m.cluster_id in plan.to_delete
        else m
        for m in members
    ]
    return kept + made


def refused(*entries: Any) -> list[str]:
    shapes, problems = parse_warm_shapes(list(entries), SOURCE_ID, LABEL)
    assert shapes == () or problems
    return problems


def accepted(*entries: Any) -> tuple[WarmShape, ...]:
    shapes, problems = parse_warm_shapes(list(entries), SOURCE_ID, LABEL)
    assert problems == []
    return shapes


def entry(**fields: Any) -> dict[str, Any]:
    return {"name": "ci", "count": 3, **fields}


# --- the document ----------------------------------------------------------------------------------------------------


def test_warm_shapes_parsed_with_the_resources_properties() -> None:
    shapes, problems = parse_warm_shapes(
        [
            {"name": "ci", "count": 3, "properties": {"InstanceClass": "db.t4g.medium", "InstanceCount": 2}},
            {"name": "qa-2", "count": 1, "maxAge": "P1D"},
        ],
        "prod-db",
        "Pool 1 (prod-db)",
    )

    assert problems == []
    assert shapes == (
        WarmShape(
            "ci", 3, timedelta(hours=12), CloneProperties("prod-db", instance_class="db.t4g.medium", instance_count=2)
        ),
        WarmShape("qa-2", 1, timedelta(days=1), CloneProperties("prod-db")),
    )


def test_pool_without_warm_has_no_shapes() -> None:
    [policy] = parse_pool_config({"pools": [{"source": SOURCE_ID, "spareSlots": 5}]})

    assert policy.warm == ()


def test_the_pool_document_takes_warm_shapes_and_reports_their_problems_with_the_pools() -> None:
    [policy] = parse_pool_config({"pools": [{"source": "Prod-DB", "spareSlots": 5, "warm": [entry()]}]})
    with pytest.raises(PoolConfigError) as raised:
        parse_pool_config({"pools": [{"source": SOURCE_ID, "spareSlots": 5, "warm": [entry(count=0)], "warmth": 1}]})

    assert policy.warm == (WarmShape("ci", 3, DEFAULT_WARM_MAX_AGE, CloneProperties("prod-db")),)
    assert raised.value.problems == [
        f'{LABEL}: unknown field "warmth" (fields are source, spareSlots, maxCopyAge, dryRun, '
        "maxNewCopiesPerRun and warm, case-sensitive).",
        f"{CI}: count must be a whole number from 1 to 15, got 0.",
    ]


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param(entry(count=15), id="count-at-limit"),
        pytest.param(entry(maxAge="P7D"), id="max-age-at-limit"),
        pytest.param(entry(name="a" * 20), id="name-20-characters"),
        pytest.param(entry(name="c1-x"), id="name-digits-hyphen"),
        pytest.param(entry(properties={}), id="no-properties"),
    ],
)
def test_warm_shape_at_the_limits_accepted(fields: dict[str, Any]) -> None:
    shapes = accepted(fields)

    assert [s.name for s in shapes] == [fields["name"]]


def test_warm_clones_adding_up_to_the_limit_accepted() -> None:
    shapes = accepted(entry(count=10), entry(name="qa", count=5))

    assert sum(s.count for s in shapes) == MAX_WARM_CLONES_PER_POOL


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        pytest.param(
            [{"count": 3}],
            f"{LABEL}: warm 1: name is required: the name stacks claim this shape's warm clones by, such as ci.",
            id="name-missing",
        ),
        pytest.param(
            [entry(name="CI")],
            f'{LABEL}: warm 1: name "CI" must be 1-20 lower-case letters, digits and hyphens, starting with a letter.',
            id="name-upper-case",
        ),
        pytest.param([entry(name="1ci")], f'{LABEL}: warm 1: name "1ci" must be 1-20', id="name-digit-first"),
        pytest.param([entry(name="a" * 21)], f'{LABEL}: warm 1: name "{"a" * 21}" must be 1-20', id="name-too-long"),
        pytest.param([entry(name="")], f'{LABEL}: warm 1: name "" must be 1-20', id="name-empty"),
        pytest.param([entry(name=7)], f"{LABEL}: warm 1: name 7 must be 1-20", id="name-number"),
        pytest.param(
            [entry(), entry(count=1)],
            f'{CI}: warm 1 is named "ci" too; give each warm shape its own name.',
            id="name-repeated",
        ),
        pytest.param(
            [{"name": "ci"}],
            f"{CI}: count is required: how many warm clones of this shape to keep ready.",
            id="count-missing",
        ),
        pytest.param([entry(count=0)], f"{CI}: count must be a whole number from 1 to 15, got 0.", id="count-zero"),
        pytest.param([entry(count=16)], f"{CI}: count must be a whole number from 1 to 15, got 16.", id="count-16"),
        pytest.param([entry(count=True)], f"{CI}: count must be a whole number from 1 to 15, got true.", id="bool"),
        pytest.param([entry(count="3")], f'{CI}: count must be a whole number from 1 to 15, got "3".', id="string"),
        pytest.param([entry(count=2.5)], f"{CI}: count must be a whole number from 1 to 15, got 2.5.", id="fraction"),
        pytest.param(
            [entry(maxAge="P8D")],
            f'{CI}: maxAge "P8D" is more than P7D: a warm clone keeps the data of the moment it was made, and its '
            "instance is billed all the while it waits.",
            id="max-age-over-a-week",
        ),
        pytest.param([entry(maxAge="PT0S")], f"{CI}: maxAge 'PT0S' is zero", id="max-age-zero"),
        pytest.param([entry(maxAge="P1M")], f"{CI}: maxAge 'P1M' counts in years or months", id="max-age-months"),
        pytest.param(
            [entry(maxAge=12)], f"{CI}: maxAge must be an ISO-8601 duration such as PT12H, got 12.", id="max-age-number"
        ),
        pytest.param(
            [entry(properties=["InstanceClass"])],
            f'{CI}: properties must be an object of slow properties such as {{"InstanceClass": "db.r6g.large"}}, '
            'got ["InstanceClass"].',
            id="properties-not-object",
        ),
        pytest.param(
            [entry(properties={"SourceClusterId": "other-db"})],
            f'{CI}: SourceClusterId cannot be set on a warm shape: the pool\'s source ("{SOURCE_ID}") is the source '
            "of its warm clones.",
            id="source-cluster-id",
        ),
        pytest.param(
            [entry(properties={"Tags": [{"Key": "team", "Value": "a"}]})],
            f"{CI}: Tags is not a slow property: the resource that claims a warm clone sets it instead.",
            id="tags",
        ),
        pytest.param(
            [entry(properties={"InstanceClas": "db.r6g.large"})],
            f'{CI}: unknown property "InstanceClas": did you mean "InstanceClass"?',
            id="typo",
        ),
        pytest.param(
            [entry(properties={"Colour": "blue"})],
            f'{CI}: unknown property "Colour" (a warm shape takes only {", ".join(WARM_SHAPE_PROPERTIES)}).',
            id="unknown-property",
        ),
        pytest.param(
            [entry(Count=3)],
            f'{CI}: unknown field "Count" (fields are name, count, maxAge and properties, case-sensitive).',
            id="unknown-field",
        ),
        pytest.param(
            ["ci"],
            f'{LABEL}: warm 1 must be an object with "name" and "count", and optionally "maxAge" and "properties".',
            id="entry-not-object",
        ),
        pytest.param(
            [entry(count=10), entry(name="qa", count=6)],
            f"{LABEL}: the warm shapes keep 16 warm clones; at most 15 per pool: each warm clone holds a clone slot "
            "and, unlike a spare slot, an instance billed by the hour.",
            id="too-many-in-all",
        ),
    ],
)
def test_warm_shape_invalid_refused_naming_pool_shape_and_field(entries: list[Any], problem: str) -> None:
    problems = refused(*entries)

    assert len(problems) == 1, problems
    assert problems[0].startswith(problem), problems


def test_warm_not_a_list_refused() -> None:
    _, problems = parse_warm_shapes({"name": "ci"}, SOURCE_ID, LABEL)

    assert problems == [
        f'{LABEL}: warm must be a list of warm shapes such as [{{"name": "ci", "count": 2}}], got {{"name": "ci"}}.'
    ]


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param({"InstanceCount": 0}, id="instance-count-zero"),
        pytest.param({"InstanceClass": "large"}, id="instance-class"),
        pytest.param({"Port": 80}, id="port"),
        pytest.param({"KmsKeyId": "nope"}, id="kms-key"),
        pytest.param({"BacktrackWindow": -1}, id="backtrack-window"),
        pytest.param({"ServerlessV2MinCapacity": 0.3, "ServerlessV2MaxCapacity": 8}, id="capacity"),
        pytest.param({"EnableIAMDatabaseAuthentication": "yes"}, id="flag"),
        pytest.param({"DBSubnetGroupName": "bad!"}, id="name"),
        pytest.param({"MasterUserSecretKmsKeyId": "alias/x"}, id="pair-without-its-flag"),
    ],
)
def test_slow_properties_checked_with_the_resources_rules_and_sentences(raw: dict[str, Any]) -> None:
    [resource_says] = read_properties({"SourceClusterId": SOURCE_ID, **raw}).problems

    assert refused(entry(properties=raw)) == [f"{CI}: {resource_says}"]


def test_instance_count_zero_gives_the_resources_sentence() -> None:
    assert refused(entry(properties={"InstanceCount": 0})) == [f"{CI}: InstanceCount must be between 1 and 16, got 0."]


@pytest.mark.parametrize("name", sorted(KNOWN_PROPERTIES - set(WARM_SHAPE_PROPERTIES) - {"SourceClusterId"}))
def test_every_property_that_is_not_slow_refused(name: str) -> None:
    assert refused(entry(properties={name: "x"})) == [
        f"{CI}: {name} is not a slow property: the resource that claims a warm clone sets it instead."
    ]


def test_every_problem_reported_at_once() -> None:
    # A pool whose own source is invalid (None): its shapes are still checked, against a stand-in source.
    _, problems = parse_warm_shapes(
        [
            {"name": "ci", "count": 0, "maxAge": "P9D", "properties": {"Tags": [], "InstanceCount": 0}},
            {"name": "ci", "count": 15},
            {"count": 1, "colour": "red"},
        ],
        None,
        "Pool 1",
    )

    assert problems == [
        'Pool 1: warm "ci": count must be a whole number from 1 to 15, got 0.',
        'Pool 1: warm "ci": maxAge "P9D" is more than P7D: a warm clone keeps the data of the moment it was made, '
        "and its instance is billed all the while it waits.",
        'Pool 1: warm "ci": Tags is not a slow property: the resource that claims a warm clone sets it instead.',
        'Pool 1: warm "ci": InstanceCount must be between 1 and 16, got 0.',
        'Pool 1: warm "ci": warm 1 is named "ci" too; give each warm shape its own name.',
        'Pool 1: warm 3: unknown field "colour" (fields are name, count, maxAge and properties, case-sensitive).',
        "Pool 1: warm 3: name is required: the name stacks claim this shape's warm clones by, such as ci.",
        "Pool 1: the warm shapes keep 16 warm clones; at most 15 per pool: each warm clone holds a clone slot and, "
        "unlike a spare slot, an instance billed by the hour.",
    ]


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"count": 0}, "count", id="count-zero"),
        pytest.param({"max_age": timedelta(0)}, "max_age", id="age-zero"),
    ],
)
def test_warm_shape_invalid_values_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        WarmShape(**{"name": "ci", "count": 1, "max_age": DEFAULT_WARM_MAX_AGE, "properties": props(), **changes})


def test_pool_policy_repeated_shape_names_refused() -> None:
    with pytest.raises(ValueError, match="distinct names"):
        pool(shape("ci"), shape("ci", count=1))


def test_warm_member_without_time_zone_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        WarmMember("w-1", "ci", NOW.replace(tzinfo=None), "available", 1)


# --- a claim against a shape -----------------------------------------------------------------------------------------


def test_slow_properties_are_the_resources() -> None:
    assert set(WARM_SHAPE_PROPERTIES) <= KNOWN_PROPERTIES
    assert set(SAMPLES) == set(WARM_SHAPE_PROPERTIES)


@pytest.mark.parametrize("name", [name for name in WARM_SHAPE_PROPERTIES if name not in SET_AT_CLAIM])
def test_each_slow_property_compared_on_its_own_field(name: str) -> None:
    differences = shape_difference(shape(), props(**{name: SAMPLES[name]}))

    assert len(differences) == 1, differences
    assert differences[0].startswith(f"{name} is "), differences
    assert "but warm pool 'ci' keeps " in differences[0]


def test_matching_slow_properties_claim_whatever_else_differs() -> None:
    ci = shape(**SAMPLES)
    claim = props(
        **SAMPLES,
        ClusterId="my-clone",
        Tags=[{"Key": "team", "Value": "a"}],
        VpcSecurityGroupIds=["sg-0123456789abcdef0"],
        CopyOk="true",
        SnapshotOnDelete="true",
    )

    assert shape_difference(ci, claim) == ()


@pytest.mark.parametrize(
    ("kept", "asked", "sentence"),
    [
        pytest.param(
            {"InstanceClass": "db.t4g.medium"},
            {"InstanceClass": "db.r6g.large"},
            "InstanceClass is 'db.r6g.large' here, but warm pool 'ci' keeps 'db.t4g.medium'.",
            id="both-set",
        ),
        pytest.param(
            {},
            {"InstanceClass": "db.r6g.large"},
            "InstanceClass is 'db.r6g.large' here, but warm pool 'ci' keeps it unset (the source writer's class).",
            id="unset-in-shape",
        ),
        pytest.param(
            {"DBSubnetGroupName": "private"},
            {},
            "DBSubnetGroupName is unset (the source's) here, but warm pool 'ci' keeps 'private'.",
            id="unset-in-claim",
        ),
        pytest.param(
            {},
            {"InstanceCount": "2"},
            "InstanceCount is 2 here, but warm pool 'ci' keeps 1.",
            id="count-default",
        ),
        pytest.param(
            {"ManageMasterUserPassword": "true"},
            {},
            "ManageMasterUserPassword is false here, but warm pool 'ci' keeps true.",
            id="flag",
        ),
        pytest.param(
            {"BacktrackWindow": "3600"},
            {},
            "BacktrackWindow is unset (backtracking off) here, but warm pool 'ci' keeps 3600.",
            id="backtrack",
        ),
    ],
)
def test_difference_says_what_differs(kept: dict[str, Any], asked: dict[str, Any], sentence: str) -> None:
    assert shape_difference(shape(**kept), props(**asked)) == (sentence,)


def test_capacities_are_set_at_the_claim_not_compared() -> None:
    paused = shape(InstanceClass="db.serverless", ServerlessV2MinCapacity="0", ServerlessV2MaxCapacity="4")
    busy = props(InstanceClass="db.serverless", ServerlessV2MinCapacity="2", ServerlessV2MaxCapacity="16")

    assert set(SET_AT_CLAIM) <= set(WARM_SHAPE_PROPERTIES)
    assert paused.properties.serverless_v2_min_capacity == 0
    assert shape_difference(paused, busy) == ()


def test_every_difference_named_in_property_order() -> None:
    differences = shape_difference(shape(Port="5433", InstanceClass="db.t4g.medium"), props(InstanceCount="3"))

    assert [line.split(" ")[0] for line in differences] == ["InstanceClass", "InstanceCount", "Port"]


# --- the warm plan ---------------------------------------------------------------------------------------------------


def test_empty_pool_makes_the_count() -> None:
    plan = warm(pool(shape(count=3)))

    assert (plan.to_make, plan.to_delete, plan.wanted) == ((("ci", 3),), (), 3)
    assert plan.source_id == SOURCE_ID
    assert plan.actions == ("Make 3 warm clones of shape 'ci': 0 of 3 present.",)
    assert plan.findings == ("Warm 'ci': 0 of 3 present; maxAge PT12H.",)


@pytest.mark.parametrize(
    ("members", "make"),
    [
        pytest.param([member("w-1", status="creating", instances=0)], 2, id="creating-counts"),
        pytest.param([member("w-1"), member("w-2", status="modifying")], 1, id="modifying-counts"),
        pytest.param([member("w-1", status="deleting"), member("w-2", status="deleted")], 3, id="gone-not-counted"),
        pytest.param([member("w-1", of="qa")], 3, id="other-shape-not-counted"),
        pytest.param([member(f"w-{n}") for n in range(3)], 0, id="full"),
    ],
)
def test_live_members_count_towards_the_shape(members: list[WarmMember], make: int) -> None:
    plan = warm(pool(shape(count=3), shape("qa", count=1)), members)

    assert dict(plan.to_make).get("ci", 0) == make
    assert not {m.cluster_id for m in members if m.status in ("deleting", "deleted")} & set(plan.to_delete)


@pytest.mark.parametrize(
    ("age", "deleted"),
    [
        pytest.param(timedelta(hours=11, minutes=59), False, id="younger-kept"),
        pytest.param(timedelta(hours=12), True, id="at-max-age"),
        pytest.param(timedelta(days=2), True, id="older"),
    ],
)
def test_member_at_max_age_deleted_and_replaced_in_the_same_run(age: timedelta, deleted: bool) -> None:
    members = [member("w-old", age=age), member("w-1")]

    plan = warm(pool(shape(count=2)), members)

    assert plan.to_delete == (("w-old",) if deleted else ())
    assert plan.to_make == ((("ci", 1),) if deleted else ())


def test_old_member_deletion_says_why() -> None:
    plan = warm(pool(shape(count=1)), [member("w-old", age=timedelta(hours=13))])

    assert plan.actions == (
        "Make 1 warm clone of shape 'ci': 0 of 1 present.",
        "Delete warm clone 'w-old': made 2026-11-21T21:00:00Z, older than maxAge PT12H of shape 'ci'.",
    )


def test_members_of_a_removed_shape_deleted() -> None:
    plan = warm(
        pool(shape(count=1)), [member("w-1"), member("w-gone", of="old"), member("w-x", of="old", status="deleting")]
    )

    assert plan.to_delete == ("w-gone",)
    assert "Delete warm clone 'w-gone': its shape 'old' is no longer in the pool's document." in plan.actions
    assert plan.to_make == ()


def test_pool_without_shapes_deletes_every_member() -> None:
    plan = warm(pool(), [member("w-2", age=timedelta(hours=2)), member("w-1")])

    assert plan.to_delete == ("w-2", "w-1")
    assert plan.wanted == 0
    assert plan.findings == ()


def test_members_beyond_the_count_deleted_oldest_first_newest_kept() -> None:
    members = [member(f"w-{hours}h", age=timedelta(hours=hours)) for hours in (2, 4, 1, 3)]

    plan = warm(pool(shape(count=2)), members)

    assert plan.to_delete == ("w-4h", "w-3h")
    assert plan.to_make == ()
    assert "Delete warm clone 'w-4h': shape 'ci' keeps 2, and this one is older than those." in plan.actions


@pytest.mark.parametrize(
    "members",
    [
        pytest.param([], id="empty"),
        pytest.param([member("w-old", age=timedelta(days=1)), member("w-1")], id="old-replaced"),
        pytest.param([member("w-gone", of="old")], id="removed-shape"),
        pytest.param([member(f"w-{n}", age=timedelta(hours=n)) for n in range(1, 6)], id="extras"),
        pytest.param([member("w-1", status="creating", instances=0)], id="creating"),
    ],
)
def test_second_run_from_the_resulting_state_makes_and_deletes_nothing(members: list[WarmMember]) -> None:
    policy = pool(shape(count=3), shape("qa", count=1))
    first = warm(policy, members)

    second = plan_warm(policy, carried_out(first, members), NOW + timedelta(minutes=2), free_now=15)

    assert first.to_make or first.to_delete
    assert (second.to_make, second.to_delete, second.wanted) == ((), (), 0)
    assert "Make no warm clone: every shape has its count." in second.actions


def test_findings_describe_each_shape() -> None:
    members = [
        member("w-1", age=timedelta(hours=3)),
        member("w-2", age=timedelta(minutes=10), status="creating", instances=0),
        member("w-3", age=timedelta(hours=1, minutes=30, seconds=20), instances=0),
    ]

    plan = warm(pool(shape(count=4), shape("qa", count=1, max_age=timedelta(days=1))), members)

    assert plan.findings == (
        "Warm 'ci': 3 of 4 present (1 creating, 1 available with 0 of 1 instances, 1 available), "
        "ages PT10M, PT1H30M, PT3H; maxAge PT12H.",
        "Warm 'qa': 0 of 1 present; maxAge P1D.",
    )


def test_dry_run_planned_but_marked() -> None:
    members = [member("w-old", age=timedelta(days=1))]

    plan = warm(pool(shape(count=1), dry_run=True), members)

    assert plan.dry_run is True
    assert (plan.to_make, plan.to_delete) == ((("ci", 1),), ("w-old",))
    assert len(plan.actions) == 2
    assert all(action.startswith("[dry run] ") for action in plan.actions)
    assert warm(pool(shape(count=1)), members).dry_run is False


# --- the slots warm clones share with stacks -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_now", "spare", "allowed"),
    [(15, 5, 10), (6, 5, 1), (5, 5, 0), (3, 5, 0), (15, 0, 14), (1, 0, 0), (0, 0, 0)],
)
def test_warm_clones_leave_spare_slots_and_always_one(free_now: int, spare: int, allowed: int) -> None:
    assert warm_slots_allowed(free_now, spare) == allowed


@pytest.mark.parametrize(
    ("free_now", "spare", "make"),
    [
        pytest.param(15, 5, 3, id="room"),
        pytest.param(7, 5, 2, id="two-past-spare"),
        pytest.param(5, 5, 0, id="only-spare-slots-free"),
        pytest.param(2, 0, 1, id="last-slot-kept-with-no-spare"),
        pytest.param(0, 0, 0, id="no-slot"),
    ],
)
def test_slot_cap_keeps_spare_slots_free_for_stacks(free_now: int, spare: int, make: int) -> None:
    plan = warm(pool(shape(count=3), spare=spare), free_now=free_now)

    assert sum(count for _, count in plan.to_make) == make
    assert plan.wanted == 3
    waiting = [line for line in plan.findings if line.startswith("Warm clones:")]
    if make < 3:
        assert waiting == [
            f"Warm clones: {3 - make} of 3 to make {'waits' if make == 2 else 'wait'} for free clone slots: "
            f"{free_now} free now, and "
            f"{max(spare, 1)} stay free for stacks (spareSlots {spare}, and always at least one); the copy plan "
            "counts them."
        ]
    else:
        assert waiting == []


def test_capped_slots_shared_between_shapes() -> None:
    plan = warm(pool(shape(count=3), shape("qa", count=2), shape("db", count=1)), free_now=8)  # 3 past spareSlots

    assert plan.to_make == (("ci", 1), ("qa", 1), ("db", 1))
    assert plan.actions[:2] == (
        "Make 1 warm clone of shape 'ci': 0 of 3 present, 2 more wait for free clone slots.",
        "Make 1 warm clone of shape 'qa': 0 of 2 present, 1 more waits for free clone slots.",
    )


def test_shape_with_no_slot_says_it_waits() -> None:
    plan = warm(pool(shape(count=2)), free_now=5)

    assert plan.to_make == ()
    assert plan.actions == ("Make no warm clone of shape 'ci' yet: 0 of 2 present; 2 wait for free clone slots.",)


# --- the copy plan with warm demand ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "spare", "wanted", "create"),
    [
        pytest.param(snapshot(source(used=5)), 5, 0, 0, id="no-warm-demand"),
        pytest.param(snapshot(source(used=5)), 5, 5, 0, id="warm-demand-met"),
        pytest.param(snapshot(source(used=5)), 5, 6, 1, id="warm-demand-one-short"),
        pytest.param(snapshot(source(used=15)), 5, 3, 1, id="source-full"),
        pytest.param(snapshot(source(used=12)), 0, 3, 1, id="no-spare-still-keeps-one-slot"),
        pytest.param(snapshot(source(used=15), copy("copy-1", NEWEST, status="creating")), 5, 10, 0, id="copy-coming"),
        pytest.param(snapshot(source(used=15), copy("copy-1", STALE)), 5, 3, 1, id="stale-copy-not-counted"),
    ],
)
def test_copy_deficit_counts_warm_demand(state: Snapshot, spare: int, wanted: int, create: int) -> None:
    plan = plan_pool(PoolPolicy(SOURCE_ID, spare), state, NOW, warm_wanted=wanted)

    assert plan.copies_to_create == create
    assert plan.free_slots == plan_pool(PoolPolicy(SOURCE_ID, spare), state, NOW).free_slots


def test_copy_plan_says_the_warm_share_of_its_target() -> None:
    plan = plan_pool(PoolPolicy(SOURCE_ID, 5), snapshot(source(used=15)), NOW, warm_wanted=3)

    assert plan.findings[-1] == (
        "Free clone slots: 0 now, 0 counting copies on the way; target 8 (5 spare for stacks, 3 for warm clones)."
    )
    assert plan.actions[0] == (
        "Create 1 full copy of 'prod-db': 0 free slots counting copies on the way, 8 below the target of 8 "
        "(5 spare for stacks, 3 for warm clones); each copy brings 15."
    )


def test_too_many_copies_for_warm_demand_says_to_lower_the_warm_counts() -> None:
    plan = plan_pool(PoolPolicy(SOURCE_ID, 50), snapshot(source(used=15)), NOW, warm_wanted=10)

    assert plan.copies_to_create == 0
    assert plan.actions[0].endswith("else lower its spareSlots or its warm counts.")


def test_negative_warm_demand_refused() -> None:
    with pytest.raises(ValueError, match="warm_wanted"):
        plan_pool(PoolPolicy(SOURCE_ID, 5), snapshot(source()), NOW, warm_wanted=-1)


@pytest.mark.parametrize(
    "state",
    [
        pytest.param(snapshot(source(used=3)), id="source"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, used=4)), id="copy"),
        pytest.param(snapshot(source(used=15), copy("copy-1", NEWEST, status="creating")), id="copy-on-the-way"),
        pytest.param(snapshot(source(used=2, status="stopped")), id="source-stopped"),
        pytest.param(snapshot(source(used=15), copy("copy-1", STALE)), id="stale-copy"),
    ],
)
def test_free_slots_now_is_the_copy_plans(state: Snapshot) -> None:
    policy = PoolPolicy(SOURCE_ID, 5)

    assert free_slots_now(policy, state, NOW) == plan_pool(policy, state, NOW).free_slots


def test_copy_brings_the_slots_warm_clones_wait_for_and_nothing_more() -> None:
    policy = pool(shape(count=3), spare=5)
    full = snapshot(source(used=15))

    waiting = plan_warm(policy, [], NOW, free_slots_now(policy, full, NOW))
    first = plan_pool(policy, full, NOW, warm_wanted=waiting.wanted)
    ready = snapshot(source(used=15), copy("copy-1", NEWEST))
    making = plan_warm(policy, [], NOW, free_slots_now(policy, ready, NOW))
    warm_made = [WarmMember(f"w-{n}", "ci", NOW, "creating", 0) for n in range(3)]
    cloned = snapshot(source(used=15), copy("copy-1", NEWEST, used=3))
    after = plan_warm(policy, warm_made, NOW, free_slots_now(policy, cloned, NOW))

    assert (waiting.to_make, waiting.wanted, first.copies_to_create) == ((), 3, 1)
    assert (making.to_make, plan_pool(policy, ready, NOW, warm_wanted=making.wanted).copies_to_create) == (
        (("ci", 3),),
        0,
    )
    assert (after.wanted, plan_pool(policy, cloned, NOW, warm_wanted=after.wanted).copies_to_create) == (0, 0)
    assert plan_pool(policy, cloned, NOW).free_slots == 12  # the warm clones hold three of the copy's slots


def test_no_spare_slots_warm_demand_never_waits_forever() -> None:
    policy = pool(shape(count=3), spare=0)
    state = snapshot(source(used=12))  # 3 free: two may start, the last slot stays for a stack

    plan = plan_warm(policy, [], NOW, free_slots_now(policy, state, NOW))
    after = snapshot(source(), clones("g-prod", 12, prefix="env"), clones("g-prod", 2, "creating", prefix="warm"))
    later = plan_warm(policy, [WarmMember(f"warm-c{n}", "ci", NOW, "creating", 0) for n in (1, 2)], NOW, 1)

    assert plan.to_make == (("ci", 2),)
    assert plan_pool(policy, state, NOW, warm_wanted=plan.wanted).copies_to_create == 1
    assert free_slots_now(policy, after, NOW) == 1
    assert later.wanted == 1
    assert plan_pool(policy, after, NOW, warm_wanted=later.wanted).copies_to_create == 1
