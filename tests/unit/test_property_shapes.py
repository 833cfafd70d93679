"""Every property value checked for JSON type and shape, each problem naming the property (and the entry),
suggestions for misspelt names, limits that say where they come from, and all of it in one bounded Reason."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone.clone_state import BACKTRACKED_TO_TAG
from aurora_clone.ownership import (
    CLONED_FROM_TAG,
    FULL_COPY_TAG,
    LOGICAL_ID_TAG,
    MANAGED_BY_TAG,
    REQUEST_TAG,
    SOURCE_TAG,
    STACK_ID_TAG,
)
from aurora_clone.pool.model import DATA_TIME_TAG
from aurora_clone.properties import (
    MAX_USER_TAGS,
    OWN_TAGS,
    RDS_TAGS_PER_RESOURCE,
    read_properties,
    refusal_reason,
)
from tests.unit.properties_helpers import problems_of, raw


def test_own_tags_counted_as_the_tool_writes_them() -> None:
    written = {
        MANAGED_BY_TAG,
        STACK_ID_TAG,
        LOGICAL_ID_TAG,
        REQUEST_TAG,
        SOURCE_TAG,
        CLONED_FROM_TAG,
        DATA_TIME_TAG,
        FULL_COPY_TAG,
        BACKTRACKED_TO_TAG,
    }

    assert len(written) == OWN_TAGS
    assert MAX_USER_TAGS + OWN_TAGS == RDS_TAGS_PER_RESOURCE


@pytest.mark.parametrize(
    ("properties", "says"),
    [
        pytest.param(
            {"InstanceClass": ["db.r6g.large"]},
            "InstanceClass must be a single value (a string), not a list.",
            id="list",
        ),
        pytest.param(
            {"Port": {"Ref": "DbPort"}}, "Port must be a single value (a string), not an object.", id="object"
        ),
        pytest.param({"ClusterId": None}, "ClusterId must be a single value (a string), not null.", id="null"),
        pytest.param({"SourceClusterId": None}, "SourceClusterId must be the identifier or ARN", id="source-null"),
        pytest.param(
            {"InstanceClass": "db.r6g.large\n"}, "InstanceClass has a control character at position 13", id="newline"
        ),
        pytest.param({"DBSubnetGroupName": "a" * 600}, "DBSubnetGroupName is 600 characters long", id="overlong"),
        pytest.param(
            {"BacktrackTo": "2026-11-22T10:00:00Z" * 5}, "BacktrackTo is 100 characters long", id="overlong-time"
        ),
        pytest.param(
            {"VpcSecurityGroupIds": ["sg-0123abcd", 7.5, {"a": 1}]},
            "VpcSecurityGroupIds[2] must be a single value",
            id="group-entry",
        ),
        pytest.param(
            {"Tags": {"Key": "team"}}, "Tags must be a list of {Key, Value} objects, not an object.", id="tags-object"
        ),
        pytest.param(
            {"Tags": ["team=qa"]}, "Tags[0] must be an object with Key and Value, not a string.", id="tag-string"
        ),
        pytest.param(
            {"Tags": [{"Key": ["team"], "Value": "qa"}]},
            "Tags[0].Key must be a single value (a string), not a list.",
            id="key-list",
        ),
        pytest.param(
            {"Tags": [{"Key": "team", "Value": {"a": 1}}]},
            "Tags[0].Value must be a single value (a string), not an object.",
            id="value-object",
        ),
        pytest.param(
            {"Tags": [{"Key": "team", "Value": None}]},
            "Tags[0].Value must be a single value (a string), not null.",
            id="value-null",
        ),
        pytest.param({"Tags": [{"Value": "qa"}]}, "Tags[0].Key is required.", id="key-missing"),
        pytest.param(
            {"Tags": [{"Key": "a", "Value": "b"}, {"Key": "", "Value": "qa"}]},
            "Tags[1].Key must be 1-128 characters, got 0.",
            id="key-empty",
        ),
        pytest.param(
            {"Tags": [{"Key": "rds:owner", "Value": "qa"}]}, "Tags[0].Key 'rds:owner' is reserved", id="rds-prefix"
        ),
        pytest.param(
            {"Tags": [{"Key": "cost#center", "Value": "qa"}]}, "Tags[0].Key 'cost#center' has '#'", id="key-char"
        ),
        pytest.param({"Tags": [{"Key": "team", "Value": "q&a"}]}, "Tags[0].Value 'q&a' has '&'", id="value-char"),
        pytest.param(
            {"Tags": [{"Key": "team", "Value": "v" * 257}]},
            "Tags[0].Value must be at most 256 characters, got 257.",
            id="value-long",
        ),
        pytest.param(
            {"Tags": [{"Key": "team", "value": "qa"}]},
            "Tags[0] has an unknown field 'value': did you mean 'Value'?",
            id="field-case",
        ),
        pytest.param(
            {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}]},
            "Tags[1].Key 'a' appears more than once (also Tags[0]).",
            id="duplicate",
        ),
    ],
)
def test_wrong_type_or_shape_refused_naming_property_and_entry(properties: dict[str, Any], says: str) -> None:
    found = problems_of(raw(**properties))

    assert any(problem.startswith(says) for problem in found), found


def test_too_many_tags_says_where_the_limit_comes_from() -> None:
    tags = [{"Key": f"k{n}", "Value": "v"} for n in range(60)]

    [problem] = problems_of(raw(Tags=tags))

    assert problem == (
        f"Tags has 60 tags; at most {MAX_USER_TAGS}: RDS allows 50 per cluster or instance, and this tool "
        f"writes up to {OWN_TAGS} of its own."
    )


@pytest.mark.parametrize(
    ("name", "guess"),
    [("InstanceClas", "InstanceClass"), ("instanceclass", "InstanceClass"), ("SourceClusterID", "SourceClusterId")],
)
def test_unknown_property_suggests_the_closest(name: str, guess: str) -> None:
    assert f"Unknown property '{name}': did you mean '{guess}'?" in problems_of(raw(**{name: "x"}))


def test_unknown_property_without_a_close_one_says_so() -> None:
    [problem] = problems_of(raw(Colour="blue"))

    assert problem == "Unknown property 'Colour' (properties are case-sensitive; the README lists them)."


def test_tag_values_of_any_language_and_cloudformation_numbers_accepted() -> None:
    reading = read_properties(raw(Tags=[{"Key": "équipe", "Value": "données 2"}, {"Key": "n", "Value": 7}]))

    assert reading.problems == ()
    assert reading.properties is not None
    assert reading.properties.tags == (("équipe", "données 2"), ("n", "7"))


def test_reading_keeps_valid_values_and_names_the_invalid() -> None:
    reading = read_properties(
        raw(
            InstanceClass="db.r6g.xlarge", InstanceCount="many", BacktrackTo="2026-11-22T10:00:00Z", BacktrackWindow="x"
        )
    )

    assert reading.properties is not None
    assert reading.properties.instance_class == "db.r6g.xlarge"
    assert reading.invalid == {"InstanceCount", "BacktrackWindow"}
    # BacktrackTo's need for a window is not judged while the window itself is wrong.
    assert not any(problem.startswith("BacktrackTo needs") for problem in reading.problems)


def test_unreadable_source_gives_no_properties_but_every_problem() -> None:
    reading = read_properties({"SourceClusterId": {"Ref": "Source"}, "InstanceCount": "0"})

    assert reading.properties is None
    assert len(reading.problems) == 2


def test_reason_of_many_problems_stays_within_budget_keeping_whole_problems() -> None:
    problems = [f"Problem number {n} is described in a sentence of some length." for n in range(200)]

    reason = refusal_reason(problems, budget=1000)

    assert len(reason.encode()) <= 1000
    assert reason.startswith("200 problems, fix them all: (1) Problem number 0 ")
    kept = reason.count(" is described in a sentence of some length.")
    assert reason.endswith(f" ... and {200 - kept} more, reported once these are fixed.")
