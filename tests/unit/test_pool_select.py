"""choose_clone_source and obsolete_copies: the source first, then fresh copies, never a silent full copy."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aurora_clone.ownership import MANAGED_BY_TAG
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG, ClusterFacts, Snapshot
from aurora_clone.pool.select import SelectionPolicy, SourceChoice, choose_clone_source, obsolete_copies
from tests.unit.pool_factories import (
    ENGINE,
    FRESH,
    MAX_AGE,
    NEWEST,
    NOW,
    SOURCE_ID,
    STALE,
    TOOL,
    clones,
    copy,
    snapshot,
    source,
)


def choose(state: Snapshot, copy_ok: bool = False, policy: SelectionPolicy | None = None) -> SourceChoice:
    return choose_clone_source(SOURCE_ID, state, policy or SelectionPolicy(), NOW, copy_ok)


# --- which cluster takes the clone -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "chosen"),
    [
        pytest.param(snapshot(source()), SOURCE_ID, id="source-never-cloned"),
        pytest.param(snapshot(source(used=3), copy("copy-1", NEWEST)), SOURCE_ID, id="source-before-fresher-copy"),
        pytest.param(snapshot(source(used=14), copy("copy-1", FRESH)), SOURCE_ID, id="source-last-slot"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH)), "copy-1", id="16th-clone-to-fresh-copy"),
        pytest.param(
            snapshot(source(used=14), clones("g-prod", 1, "creating", prefix="new"), copy("copy-1", FRESH)),
            "copy-1",
            id="creating-clone-holds-last-source-slot",
        ),
        pytest.param(
            snapshot(source(used=15), clones("g-prod", 2, "deleting", prefix="old")),
            None,
            id="deleting-clones-leave-source-full",
        ),
        pytest.param(
            snapshot(source(used=15), clones("g-prod", 1, "deleting", prefix="old"), copy("copy-1", FRESH)),
            "copy-1",
            id="deleting-clone-does-not-count-as-used",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-old", FRESH), copy("copy-new", NEWEST)),
            "copy-new",
            id="newest-data-first",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-old", FRESH, used=2), copy("copy-new", NEWEST, used=15)),
            "copy-old",
            id="full-newest-copy-skipped",
        ),
        pytest.param(snapshot(source(used=15), copy("copy-1", STALE)), None, id="stale-copy-skipped"),
        pytest.param(
            snapshot(source(used=15), copy("copy-stale", STALE), copy("copy-fresh", FRESH, used=5)),
            "copy-fresh",
            id="stale-skipped-fresh-chosen",
        ),
        pytest.param(snapshot(source(used=15), copy("copy-1", MAX_AGE)), None, id="copy-exactly-max-age-stale"),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", MAX_AGE - timedelta(minutes=1))),
            "copy-1",
            id="copy-just-under-max-age",
        ),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, maker={})), None, id="untagged-maker-copy"),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, maker={MANAGED_BY_TAG: "terraform"})),
            None,
            id="other-tool-copy",
        ),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, of="other-db")), None, id="copy-of-other-source"),
        pytest.param(snapshot(source(used=15), copy("copy-1", NEWEST, status="creating")), None, id="creating-copy"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, status="deleting")), None, id="deleting-copy"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH, status="stopped")), None, id="stopped-copy"),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, instance_count=0)), None, id="copy-without-instance"
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, instance_count=None)),
            "copy-1",
            id="copy-instances-not-gathered",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, used=3, clone_status="creating")),
            "copy-1",
            id="copy-with-creating-clones-has-room",
        ),
        pytest.param(
            snapshot(source(status="modifying"), copy("copy-1", FRESH)), "copy-1", id="source-modifying-copy-chosen"
        ),
        pytest.param(snapshot(source(instance_count=0), copy("copy-1", FRESH)), "copy-1", id="source-without-instance"),
        pytest.param(snapshot(copy("copy-1", FRESH)), "copy-1", id="source-gone-copy-remains"),
        pytest.param(snapshot(source(used=15)), None, id="source-full-no-copies"),
    ],
)
def test_clone_source_chosen_in_order(state: Snapshot, chosen: str | None) -> None:
    choice = choose(state)

    assert choice.cluster_id == chosen
    assert choice.full_copy is False
    assert choice.refused is (chosen is None)
    assert choice.is_source is (chosen == SOURCE_ID)
    if chosen is not None:
        assert f"'{chosen}'" in choice.reason


@pytest.mark.parametrize(
    ("state", "data_time"),
    [
        pytest.param(snapshot(source(used=2), copy("copy-1", NEWEST)), NOW, id="source-data-is-now"),
        pytest.param(snapshot(source(used=15), copy("copy-1", FRESH)), NOW - FRESH, id="copy-data-is-its-own"),
    ],
)
def test_data_time_now_for_source_own_for_copy(state: Snapshot, data_time: datetime) -> None:
    assert choose(state).data_time == data_time


def test_slot_limit_from_policy_applied() -> None:
    state = snapshot(source(used=3), copy("copy-1", FRESH, used=2))

    assert choose(state, policy=SelectionPolicy(slot_limit=3)).cluster_id == "copy-1"
    assert choose(state, policy=SelectionPolicy(slot_limit=2)).refused
    assert choose(state, policy=SelectionPolicy(slot_limit=4)).cluster_id == SOURCE_ID


def test_max_copy_age_from_policy_applied() -> None:
    state = snapshot(source(used=15), copy("copy-1", timedelta(days=2)))

    assert choose(state, policy=SelectionPolicy(max_copy_age=timedelta(days=3))).cluster_id == "copy-1"
    assert choose(state, policy=SelectionPolicy(max_copy_age=timedelta(days=1))).refused


# --- CopyCreatedSince ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "since", "chosen"),
    [
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH)), NOW - FRESH, "copy-1", id="copy-data-exactly-since"
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH)), NOW - timedelta(hours=12), None, id="copy-data-before"
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-1", FRESH, copy_took=timedelta(hours=20))),
            NOW - timedelta(hours=12),
            None,
            id="copy-made-after-since-data-before",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-new", NEWEST, used=15), copy("copy-old", FRESH)),
            NOW - timedelta(hours=12),
            None,
            id="only-recent-copy-full",
        ),
        pytest.param(
            snapshot(source(used=15), copy("copy-old", FRESH), copy("copy-new", NEWEST, used=4)),
            NOW - timedelta(hours=12),
            "copy-new",
            id="older-copy-excluded-newer-chosen",
        ),
        pytest.param(
            snapshot(source(used=2), copy("copy-1", NEWEST)),
            NOW - timedelta(minutes=5),
            SOURCE_ID,
            id="source-always-fresh",
        ),
        pytest.param(
            snapshot(source(used=2)), NOW + timedelta(days=1), SOURCE_ID, id="source-fresh-even-for-future-since"
        ),
    ],
)
def test_copy_created_since_excludes_older_copies_never_source(
    state: Snapshot, since: datetime, chosen: str | None
) -> None:
    choice = choose(state, policy=SelectionPolicy(copy_created_since=since))

    assert choice.cluster_id == chosen
    assert choice.full_copy is False


# --- no candidate: full copy with CopyOk, else refused ---------------------------------------------------------------


def test_no_candidate_copy_ok_full_copy_warned() -> None:
    choice = choose(snapshot(source(used=15), copy("copy-1", STALE)), copy_ok=True)

    assert choice.full_copy is True
    assert choice.cluster_id is None
    assert choice.refused is False
    assert choice.is_source is True
    assert choice.data_time == NOW
    assert "full copy" in choice.reason
    assert "one-hour limit" in choice.reason
    assert "15 of 15" in choice.reason


def test_candidate_present_copy_ok_still_clones() -> None:
    choice = choose(snapshot(source(used=15), copy("copy-1", FRESH)), copy_ok=True)

    assert choice.cluster_id == "copy-1"
    assert choice.full_copy is False


@pytest.mark.parametrize(
    ("state", "says"),
    [
        pytest.param(snapshot(), "'prod-db' was not found", id="source-missing"),
        pytest.param(snapshot(source(status="modifying")), "'modifying', not 'available'", id="source-modifying"),
        pytest.param(snapshot(source(status="stopped", used=15)), "'stopped', not 'available'", id="source-stopped"),
        pytest.param(snapshot(source(instance_count=0)), "has no instance", id="source-without-instance"),
    ],
)
def test_source_unusable_copy_ok_refused(state: Snapshot, says: str) -> None:
    # A full copy is the answer to full slots only, never to a source that cannot be read now.
    choice = choose(state, copy_ok=True)

    assert choice.refused
    assert says in choice.reason


def test_no_candidate_refusal_says_where_slots_went() -> None:
    state = snapshot(
        source(used=15),
        copy("copy-full", FRESH, used=15),
        copy("copy-stale", STALE),
        copy("copy-creating", NEWEST, status="creating"),
        copy("copy-foreign", NEWEST, maker={}),
    )

    choice = choose(state)

    assert choice.refused
    assert choice.data_time == NOW
    assert "DB cluster 'prod-db' has 15 of 15 clone slots in use" in choice.reason
    assert "copy-full (15/15 used)" in choice.reason
    assert "copy-stale (older than MaxCopyAge P3D)" in choice.reason
    assert "copy-creating ('creating')" in choice.reason
    assert "copy-foreign" not in choice.reason
    assert "CopyOk: true" in choice.reason
    assert "copy pool" in choice.reason


def test_no_candidate_refusal_names_copy_created_since() -> None:
    since = datetime(2026, 11, 22, 0, tzinfo=UTC)

    choice = choose(snapshot(source(used=15), copy("copy-1", FRESH)), policy=SelectionPolicy(copy_created_since=since))

    assert choice.refused
    assert "copy-1 (data from 2026-11-21T10:00:00Z, before CopyCreatedSince 2026-11-22T00:00:00Z)" in choice.reason


def test_no_candidate_refusal_without_copies_says_so() -> None:
    choice = choose(snapshot(source(used=15)))

    assert choice.refused
    assert "it has no copies" in choice.reason


def test_many_copies_listed_briefly() -> None:
    copies = [copy(f"copy-{n}", FRESH + timedelta(minutes=n), used=15) for n in range(1, 9)]

    choice = choose(snapshot(source(used=15), *copies))

    assert choice.refused
    assert "copy-5 (15/15 used)" in choice.reason
    assert "copy-6" not in choice.reason
    assert "and 3 more" in choice.reason


# --- obsolete copies -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "obsolete"),
    [
        pytest.param(snapshot(source(), copy("copy-1", STALE)), ("copy-1",), id="stale-without-clones"),
        pytest.param(snapshot(source(), copy("copy-1", MAX_AGE)), ("copy-1",), id="exactly-max-age"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, used=1)), (), id="stale-with-live-clone-kept"),
        pytest.param(
            snapshot(source(), copy("copy-1", STALE, used=1, clone_status="creating")),
            (),
            id="stale-with-creating-clone-kept",
        ),
        pytest.param(
            snapshot(source(), copy("copy-1", STALE, used=2, clone_status="deleting")),
            ("copy-1",),
            id="stale-with-deleting-clones-only",
        ),
        pytest.param(snapshot(source(), copy("copy-1", FRESH)), (), id="fresh-kept"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, status="deleting")), (), id="already-deleting"),
        pytest.param(snapshot(source(), copy("copy-1", STALE, maker={})), (), id="not-made-by-tool"),
        pytest.param(
            snapshot(source(), copy("copy-1", STALE, maker={MANAGED_BY_TAG: "terraform"})), (), id="other-tool"
        ),
        pytest.param(snapshot(source(), copy("copy-1", STALE, of="other-db")), (), id="copy-of-other-source"),
        pytest.param(snapshot(copy("copy-1", STALE)), ("copy-1",), id="source-gone"),
        pytest.param(
            snapshot(source(), copy("copy-b", STALE), copy("copy-a", timedelta(days=9)), copy("copy-c", STALE)),
            ("copy-a", "copy-b", "copy-c"),
            id="oldest-first",
        ),
    ],
)
def test_obsolete_copies_stale_unused_own_only(state: Snapshot, obsolete: tuple[str, ...]) -> None:
    assert obsolete_copies(SOURCE_ID, state, MAX_AGE, NOW) == obsolete


def test_obsolete_copies_never_source() -> None:
    # Even a source that looks like an old, unused copy of itself is never offered for deletion.
    tags = {**TOOL, COPY_OF_TAG: SOURCE_ID, DATA_TIME_TAG: "2020-01-01T00:00:00Z"}
    old_source = ClusterFacts(SOURCE_ID, "available", ENGINE, None, NOW - timedelta(days=900), tags)

    assert obsolete_copies(SOURCE_ID, Snapshot((old_source,)), MAX_AGE, NOW) == ()
    assert choose(Snapshot((old_source,))).cluster_id == SOURCE_ID


def test_obsolete_copies_follow_max_copy_age() -> None:
    state = snapshot(source(), copy("copy-1", timedelta(days=2)))

    assert obsolete_copies(SOURCE_ID, state, timedelta(days=1), NOW) == ("copy-1",)
    assert obsolete_copies(SOURCE_ID, state, timedelta(days=3), NOW) == ()


# --- policy ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        pytest.param({"max_copy_age": timedelta(0)}, "max_copy_age", id="zero-age"),
        pytest.param({"max_copy_age": timedelta(hours=-1)}, "max_copy_age", id="negative-age"),
        pytest.param({"slot_limit": 0}, "slot_limit", id="zero-limit"),
    ],
)
def test_selection_policy_invalid_refused(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(ValueError, match=says):
        SelectionPolicy(**changes)


def test_selection_policy_defaults() -> None:
    policy = SelectionPolicy()

    assert policy.max_copy_age == timedelta(days=3)
    assert policy.copy_created_since is None
    assert policy.slot_limit == 15
