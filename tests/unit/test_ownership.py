"""Ownership tags: written on everything the resource makes, and the only proof that something is its own."""

from __future__ import annotations

import pytest

from aurora_clone.ownership import (
    LOGICAL_ID_TAG,
    MANAGED_BY_TAG,
    REQUEST_TAG,
    SOURCE_TAG,
    STACK_ID_TAG,
    Owner,
    is_ownership_tag,
)

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/integration-env/0a1b2c3d-0000-1111-2222-333344445555"
OTHER_STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/other-env/9f8e7d6c-0000-1111-2222-333344445555"
OWNER = Owner(STACK_ID, "Clone")


def test_tags_all_five_written() -> None:
    tags = OWNER.tags("0123456789ab", "prod-db")

    assert tags == {
        "aurora-clone:managed-by": "aurora-clone",
        "aurora-clone:stack-id": STACK_ID,
        "aurora-clone:logical-id": "Clone",
        "aurora-clone:request": "0123456789ab",
        "aurora-clone:source-cluster": "prod-db",
    }
    assert all(is_ownership_tag(key) for key in tags)


def written(**changes: str | None) -> dict[str, str]:
    """The owner's tags with some replaced (a value) or removed (None)."""
    tags = OWNER.tags("0123456789ab", "prod-db")
    for key, value in changes.items():
        tag = {
            "managed_by": MANAGED_BY_TAG,
            "stack": STACK_ID_TAG,
            "logical": LOGICAL_ID_TAG,
            "request": REQUEST_TAG,
            "source": SOURCE_TAG,
        }[key]
        if value is None:
            tags.pop(tag)
        else:
            tags[tag] = value
    return tags


@pytest.mark.parametrize(
    ("tags", "owned"),
    [
        pytest.param(written(), True, id="own-tags"),
        pytest.param({**written(), "team": "payments"}, True, id="own-tags-and-user-tags"),
        pytest.param(written(request="fedcba987654"), True, id="made-by-another-request"),
        pytest.param(written(source="other-db"), True, id="other-source"),
        pytest.param(written(managed_by=None), False, id="managed-by-missing"),
        pytest.param(written(managed_by="someone-else"), False, id="managed-by-other-tool"),
        pytest.param(written(stack=None), False, id="stack-missing"),
        pytest.param(written(stack=OTHER_STACK_ID), False, id="other-stack"),
        pytest.param(written(logical=None), False, id="logical-id-missing"),
        pytest.param(written(logical="OtherClone"), False, id="other-logical-id"),
        pytest.param(written(logical="clone"), False, id="logical-id-other-case"),
        pytest.param({}, False, id="untagged"),
        pytest.param({"team": "payments"}, False, id="user-tags-only"),
    ],
)
def test_owns_tags_matched(tags: dict[str, str], owned: bool) -> None:
    assert OWNER.owns(tags) is owned


@pytest.mark.parametrize(
    ("key", "ownership"),
    [
        pytest.param("aurora-clone:managed-by", True, id="own"),
        pytest.param("aurora-clone:anything", True, id="own-prefix"),
        pytest.param("team", False, id="user"),
        pytest.param("aurora-clone", False, id="no-colon"),
    ],
)
def test_ownership_tag_recognised_by_prefix(key: str, ownership: bool) -> None:
    assert is_ownership_tag(key) is ownership
