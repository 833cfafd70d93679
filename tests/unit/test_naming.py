"""Deterministic names: every derived identifier is a valid RDS identifier, every rule name fits EventBridge."""

from __future__ import annotations

import re

import pytest

from aurora_clone.naming import (
    derive_cluster_id,
    instance_id,
    instance_number,
    is_valid_identifier,
    not_created_id,
    request_token,
    stack_name,
)

REQUEST_ID = "5f0d9a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6"
# EventBridge rule names: 1-64 characters of [.-_A-Za-z0-9].
RULE_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")


def stack_arn(name: str) -> str:
    return f"arn:aws:cloudformation:us-east-1:123456789012:stack/{name}/0a1b2c3d-0000-1111-2222-333344445555"


STACK_ID = stack_arn("integration-env")


@pytest.mark.parametrize(
    ("text", "valid"),
    [
        pytest.param("prod-db", True, id="hyphenated"),
        pytest.param("a", True, id="one-letter"),
        pytest.param("Prod-DB", True, id="upper-case"),
        pytest.param("a1-b2-c3", True, id="digits-after-first"),
        pytest.param("a" * 63, True, id="63-chars"),
        pytest.param("a" * 64, False, id="64-chars"),
        pytest.param("", False, id="empty"),
        pytest.param("1db", False, id="digit-first"),
        pytest.param("-db", False, id="hyphen-first"),
        pytest.param("a--b", False, id="double-hyphen"),
        pytest.param("db-", False, id="trailing-hyphen"),
        pytest.param("a_b", False, id="underscore"),
        pytest.param("a.b", False, id="period"),
        pytest.param("a b", False, id="space"),
        pytest.param("caf\u00e9", False, id="non-ascii-letter"),
        pytest.param("abc\n", False, id="trailing-newline"),
        pytest.param("aurora-clone:not-created:0123456789ab", False, id="colon"),
    ],
)
def test_identifier_checked_valid(text: str, valid: bool) -> None:
    assert is_valid_identifier(text) is valid


@pytest.mark.parametrize(
    ("stack_id", "name"),
    [
        pytest.param(STACK_ID, "integration-env", id="stack-arn"),
        pytest.param("integration-env", "integration-env", id="plain-name"),
    ],
)
def test_stack_name_extracted(stack_id: str, name: str) -> None:
    assert stack_name(stack_id) == name


def test_derive_cluster_id_documented_example_matches() -> None:
    # Lower-cased, underscore turned into a hyphen, the token's first 8 characters at the end.
    derived = derive_cluster_id(stack_arn("My_Stack"), "Db", "0123456789ab")

    assert derived == "aurora-clone-my-stack-db-01234567"


@pytest.mark.parametrize("prefix", ["aurora-clone-", "ci-", "qa-team-clones-"])
def test_derive_cluster_id_always_starts_with_the_prefix(prefix: str) -> None:
    for stack in ("My_Stack", "1-starts-with-a-digit", "x" * 90, "---"):
        derived = derive_cluster_id(stack_arn(stack), "Db" * 40, "0123456789ab", prefix)
        assert derived.startswith(prefix) and is_valid_identifier(derived) and len(derived) <= 63 - 4


def test_derive_cluster_id_same_request_same_id() -> None:
    token = request_token(STACK_ID, REQUEST_ID, "Clone")

    assert derive_cluster_id(STACK_ID, "Clone", token) == derive_cluster_id(STACK_ID, "Clone", token)


def test_derive_cluster_id_other_token_other_id() -> None:
    first = derive_cluster_id(STACK_ID, "Clone", request_token(STACK_ID, REQUEST_ID, "Clone"))
    second = derive_cluster_id(STACK_ID, "Clone", request_token(STACK_ID, "another-request", "Clone"))

    assert first != second


def test_derive_cluster_id_long_logical_ids_differing_at_end_distinct() -> None:
    first, second = "L" * 254 + "a", "L" * 254 + "b"

    derived = {
        derive_cluster_id(STACK_ID, logical, request_token(STACK_ID, REQUEST_ID, logical))
        for logical in (first, second)
    }

    assert len(derived) == 2


@pytest.mark.parametrize(
    ("stack_id", "logical_id"),
    [
        pytest.param(STACK_ID, "Clone", id="ordinary"),
        pytest.param(stack_arn("S" * 128), "Clone", id="stack-name-128"),
        pytest.param(STACK_ID, "L" * 255, id="logical-id-255"),
        pytest.param(stack_arn("s" * 128), "l" * 255, id="both-longest"),
        pytest.param(stack_arn("a-" * 64), "Clone", id="stack-name-cut-at-hyphen"),
        pytest.param(stack_arn("12345"), "67890", id="digits-only"),
        pytest.param(stack_arn("1" * 128), "2" * 255, id="digits-only-longest"),
        pytest.param(stack_arn("___"), "___", id="underscores-only"),
        pytest.param(stack_arn("9-stack"), "Clone", id="digit-first-stack"),
        pytest.param(stack_arn("\u00e9t\u00e9"), "\u30af\u30ed\u30fc\u30f3", id="unicode"),
        pytest.param(stack_arn("\u00fc" * 128), "\u00df" * 255, id="unicode-longest"),
        pytest.param("", "", id="empty"),
    ],
)
def test_derive_cluster_id_any_names_valid_identifier(stack_id: str, logical_id: str) -> None:
    token = request_token(stack_id, REQUEST_ID, logical_id)

    derived = derive_cluster_id(stack_id, logical_id, token)

    assert is_valid_identifier(derived), derived
    assert len(derived) <= 63
    assert derived == derived.lower()  # RDS stores identifiers lower-case
    assert derived.endswith("-" + token[:8])
    # Room is left for the largest instance suffix, so instance ids stay "<cluster>-<n>".
    assert instance_id(derived, 16) == f"{derived}-16"


@pytest.mark.parametrize(
    ("cluster_id", "number", "expected"),
    [
        pytest.param("my-clone", 1, "my-clone-1", id="writer"),
        pytest.param("my-clone", 2, "my-clone-2", id="reader"),
        pytest.param("my-clone", 16, "my-clone-16", id="last"),
        pytest.param("c" * 61, 2, "c" * 61 + "-2", id="exactly-63"),
    ],
)
def test_instance_id_short_cluster_suffixed(cluster_id: str, number: int, expected: str) -> None:
    assert instance_id(cluster_id, number) == expected


@pytest.mark.parametrize("number", [1, 2, 9, 10, 16])
@pytest.mark.parametrize(
    "cluster_id",
    [
        pytest.param("c" * 63, id="63-letters"),
        pytest.param("a-" * 31 + "b", id="63-hyphenated"),
        pytest.param("c" * 61, id="61-letters"),
    ],
)
def test_instance_id_long_cluster_valid(cluster_id: str, number: int) -> None:
    identifier = instance_id(cluster_id, number)

    assert is_valid_identifier(identifier), identifier
    assert len(identifier) <= 63
    assert identifier.endswith(f"-{number}")


@pytest.mark.parametrize("number", [1, 2, 16])
def test_instance_id_long_clusters_sharing_prefix_distinct(number: int) -> None:
    shared = "p" * 60
    first, second = shared + "abc", shared + "xyz"

    assert instance_id(first, number) != instance_id(second, number)


def test_instance_id_numbers_distinct() -> None:
    cluster_id = "c" * 63

    assert len({instance_id(cluster_id, number) for number in range(1, 17)}) == 16


@pytest.mark.parametrize("number", [1, 2, 10, 16])
@pytest.mark.parametrize("cluster_id", [pytest.param("my-clone", id="short"), pytest.param("c" * 63, id="63")])
def test_instance_number_of_instance_id_inverted(cluster_id: str, number: int) -> None:
    assert instance_number(cluster_id, instance_id(cluster_id, number)) == number


@pytest.mark.parametrize(
    "identifier",
    [
        pytest.param("my-clone-writer", id="named-by-hand"),
        pytest.param("my-clone", id="cluster-name"),
        pytest.param("my-clone-0", id="number-zero"),
        pytest.param("other-clone-1", id="other-cluster"),
        pytest.param("my-clone-1-1", id="nested"),
    ],
)
def test_instance_number_foreign_instance_none(identifier: str) -> None:
    assert instance_number("my-clone", identifier) is None


PREFIX_38 = "integration-aurora-clone-poll-rules-01"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        pytest.param((STACK_ID, REQUEST_ID, "Clone"), (stack_arn("other"), REQUEST_ID, "Clone"), id="stack"),
        pytest.param((STACK_ID, REQUEST_ID, "Clone"), (STACK_ID, "another-request", "Clone"), id="request"),
        pytest.param((STACK_ID, REQUEST_ID, "Clone"), (STACK_ID, REQUEST_ID, "Other"), id="logical-id"),
    ],
)
def test_request_token_any_part_changed_differs(first: tuple[str, str, str], second: tuple[str, str, str]) -> None:
    assert request_token(*first) != request_token(*second)
    assert request_token(*first) == request_token(*first)


def test_not_created_id_never_valid_identifier() -> None:
    physical_id = not_created_id(STACK_ID, REQUEST_ID, "Clone")

    assert physical_id  # CloudFormation needs a non-empty PhysicalResourceId
    assert not is_valid_identifier(physical_id)
    assert not is_valid_identifier(physical_id.lower())
    assert physical_id != not_created_id(STACK_ID, "another-request", "Clone")
