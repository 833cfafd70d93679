"""Backtrack: BacktrackWindow at creation, BacktrackTo rewinds the clone once it is ready, and again in place."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from aurora_clone.clone_state import BACKTRACKED_TO_TAG, backtrack_mark
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, make_source
from tests.moto_gaps import AwsGaps

WINDOW = "3600"


@pytest.fixture
def restore_calls() -> list[dict[str, Any]]:
    """The exact parameters of every RestoreDBClusterToPointInTime the handler sends."""
    calls: list[dict[str, Any]] = []
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.rds.RestoreDBClusterToPointInTime", lambda params, **_: calls.append(dict(params))
    )
    return calls


@pytest.fixture
def real_time(clock: FakeClock) -> FakeClock:
    """The function's clock set to the real time, which the emulated RDS's backtrack rules use."""
    clock.now = time.time()
    return clock


def converge(cfn: FakeCloudFormation, world: AwsGaps, event: dict[str, Any]) -> dict[str, Any]:
    return cfn.run(cfn.send(event), world.advance)


def created_at(clone_id: str) -> datetime:
    clone = describe_cluster(clone_id)
    assert clone is not None
    moment: datetime = clone["ClusterCreateTime"]
    return moment.astimezone(UTC)


def tags_of(clone_id: str) -> dict[str, str]:
    clone = describe_cluster(clone_id)
    assert clone is not None
    return {tag["Key"]: tag["Value"] for tag in clone["TagList"]}


@pytest.fixture
def backtrackable(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, real_time: FakeClock
) -> tuple[str, dict[str, Any]]:
    """A clone made with a backtrack window and no BacktrackTo."""
    properties = {"SourceClusterId": source.identifier, "BacktrackWindow": WINDOW}
    answer = converge(cfn, world, cfn.event("Create", properties))
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return answer["PhysicalResourceId"], properties


def test_create_with_backtrack_to_answers_only_after_backtracking_ends(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock, restore_calls: list[dict[str, Any]]
) -> None:
    started = time.time()
    clock.now = started - 60  # the request arrives; BacktrackTo is after it, as a new clone requires
    target = backtrack_mark(datetime.fromtimestamp(started - 30, UTC))
    properties = {"SourceClusterId": source.identifier, "BacktrackWindow": WINDOW, "BacktrackTo": target}
    sent = cfn.send(cfn.event("Create", properties))
    (clone_id,) = cluster_ids() - {source.identifier}
    clock.now = time.time()  # BacktrackTo has passed by the time the clone is ready

    seen: list[str] = []
    while cfn.answer(sent) is None:
        world.advance()
        cfn.wake_up()
        seen.append(describe_cluster(clone_id)["Status"])  # type: ignore[index]
        assert len(seen) < 20, seen

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS", answer
    assert "backtracking" in seen
    assert seen[-1] == "available"
    assert seen.index("backtracking") < len(seen) - 1, "answered while the clone was still backtracking"
    assert world.rds_calls["BacktrackDBCluster"] == 1
    assert restore_calls[0]["BacktrackWindow"] == 3600
    assert answer["Data"]["BacktrackedTo"] == target
    assert tags_of(clone_id)[BACKTRACKED_TO_TAG] == target


def test_create_without_backtrack_to_never_backtracks_and_attribute_empty(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]]
) -> None:
    clone_id, _ = backtrackable

    assert describe_cluster(clone_id)["BacktrackWindow"] == 3600  # type: ignore[index]
    assert world.rds_calls["BacktrackDBCluster"] == 0
    assert BACKTRACKED_TO_TAG not in tags_of(clone_id)


def test_update_of_backtrack_to_rewinds_same_clone_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]], real_time: FakeClock
) -> None:
    clone_id, old = backtrackable
    first = created_at(clone_id) + timedelta(milliseconds=1)
    time.sleep(0.01)
    real_time.now = time.time()
    new = {**old, "BacktrackTo": first.isoformat()}

    sent = cfn.send(cfn.event("Update", new, physical_id=clone_id, old_properties=old))
    assert describe_cluster(clone_id)["Status"] == "backtracking"  # type: ignore[index]
    assert cfn.answer(sent) is None, "answered before the backtrack was done"
    answer = cfn.run(sent, world.advance)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert answer["Data"]["BacktrackedTo"] == backtrack_mark(first)
    assert world.rds_calls["BacktrackDBCluster"] == 1
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1

    # Re-running a test from another moment: the same clone again.
    second = first + timedelta(milliseconds=2)
    again = {**new, "BacktrackTo": second.isoformat()}
    real_time.now = time.time()
    answer = converge(cfn, world, cfn.event("Update", again, physical_id=clone_id, old_properties=new))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert answer["Data"]["BacktrackedTo"] == backtrack_mark(second)
    assert world.rds_calls["BacktrackDBCluster"] == 2
    assert cluster_ids() == {"prod-db", clone_id}


def test_update_of_other_property_does_not_backtrack_again(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]], real_time: FakeClock
) -> None:
    clone_id, old = backtrackable
    rewound = {**old, "BacktrackTo": created_at(clone_id).isoformat()}
    real_time.now = time.time()
    assert converge(cfn, world, cfn.event("Update", rewound, physical_id=clone_id, old_properties=old))["Status"] == (
        "SUCCESS"
    )
    real_time.advance(7200)  # BacktrackTo is now outside the window: it must not matter, it was applied already

    answer = converge(
        cfn, world, cfn.event("Update", {**rewound, "InstanceCount": "2"}, physical_id=clone_id, old_properties=rewound)
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert world.rds_calls["BacktrackDBCluster"] == 1


def test_update_of_backtrack_window_changes_it_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]]
) -> None:
    clone_id, old = backtrackable

    answer = converge(
        cfn, world, cfn.event("Update", {**old, "BacktrackWindow": "7200"}, physical_id=clone_id, old_properties=old)
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert describe_cluster(clone_id)["BacktrackWindow"] == 7200  # type: ignore[index]
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1


def test_update_adding_backtrack_window_to_clone_without_one_replaces_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, real_time: FakeClock
) -> None:
    old = {"SourceClusterId": source.identifier}
    clone_id = converge(cfn, world, cfn.event("Create", old))["PhysicalResourceId"]

    answer = converge(
        cfn, world, cfn.event("Update", {**old, "BacktrackWindow": WINDOW}, physical_id=clone_id, old_properties=old)
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] != clone_id, "RDS turns backtracking on only when a clone is made"
    assert describe_cluster(answer["PhysicalResourceId"])["BacktrackWindow"] == 3600  # type: ignore[index]
    assert describe_cluster(clone_id)["BacktrackWindow"] == 0  # type: ignore[index]


@pytest.mark.parametrize(
    ("properties", "named"),
    [
        pytest.param({"BacktrackTo": "2026-01-01T00:00:00Z"}, "BacktrackWindow", id="window-missing"),
        pytest.param({"BacktrackWindow": "259201"}, "BacktrackWindow", id="window-above-72-hours"),
        pytest.param({"BacktrackWindow": "-1"}, "BacktrackWindow", id="window-negative"),
        pytest.param({"BacktrackWindow": WINDOW, "BacktrackTo": "yesterday"}, "BacktrackTo", id="not-a-time"),
        pytest.param(
            {"BacktrackWindow": WINDOW, "BacktrackTo": "2026-01-01T00:00:00"}, "BacktrackTo", id="time-without-zone"
        ),
    ],
)
def test_create_with_invalid_backtrack_properties_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, properties: dict[str, str], named: str
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, **properties}))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert named in answer["Reason"]
    assert answer["PhysicalResourceId"].startswith("aurora-clone:not-created:")
    assert cluster_ids() == {source.identifier}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0
    assert cfn.nothing_left()


def test_create_with_backtrack_to_in_the_past_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, real_time: FakeClock
) -> None:
    yesterday = backtrack_mark(datetime.fromtimestamp(real_time.now, UTC) - timedelta(days=1))
    properties = {"SourceClusterId": source.identifier, "BacktrackWindow": WINDOW, "BacktrackTo": yesterday}

    answer = cfn.answer(cfn.send(cfn.event("Create", properties)))

    assert answer is not None and answer["Status"] == "FAILED"
    assert f"BacktrackTo {yesterday}" in answer["Reason"]
    assert "before this clone exists" in answer["Reason"]
    assert cluster_ids() == {source.identifier}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0


def test_create_with_backtrack_to_after_deadline_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, real_time: FakeClock
) -> None:
    later = backtrack_mark(datetime.fromtimestamp(real_time.now, UTC) + timedelta(hours=2))
    properties = {"SourceClusterId": source.identifier, "BacktrackWindow": WINDOW, "BacktrackTo": later}

    answer = cfn.answer(cfn.send(cfn.event("Create", properties)))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "ServiceTimeout" in answer["Reason"]
    assert cluster_ids() == {source.identifier}


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"BacktrackWindow": WINDOW}, id="window"),
        pytest.param({"BacktrackWindow": WINDOW, "BacktrackTo": "2099-01-01T00:00:00Z"}, id="window-and-time"),
    ],
)
def test_create_backtrack_of_postgresql_source_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, properties: dict[str, str]
) -> None:
    postgres = make_source(world, "pg-db", engine="aurora-postgresql")

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": postgres.identifier, **properties})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "Aurora MySQL" in answer["Reason"] and "aurora-postgresql" in answer["Reason"]
    assert cluster_ids() == {postgres.identifier}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0


def test_update_with_backtrack_to_before_clone_fails_and_keeps_clone(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]], real_time: FakeClock
) -> None:
    clone_id, old = backtrackable
    before = backtrack_mark(created_at(clone_id) - timedelta(minutes=5))
    sent = cfn.send(cfn.event("Update", {**old, "BacktrackTo": before}, physical_id=clone_id, old_properties=old))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert f"BacktrackTo {before} is before" in answer["Reason"]
    assert "earliest time" in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id
    assert world.rds_calls["BacktrackDBCluster"] == 0
    assert describe_cluster(clone_id)["Status"] == "available"  # type: ignore[index]
    assert cfn.nothing_left()


def test_update_with_backtrack_to_in_future_fails_and_keeps_clone(
    cfn: FakeCloudFormation, world: AwsGaps, backtrackable: tuple[str, dict[str, Any]], real_time: FakeClock
) -> None:
    clone_id, old = backtrackable
    ahead = backtrack_mark(datetime.fromtimestamp(real_time.now, UTC) + timedelta(minutes=10))

    answer = cfn.answer(
        cfn.send(cfn.event("Update", {**old, "BacktrackTo": ahead}, physical_id=clone_id, old_properties=old))
    )

    assert answer is not None and answer["Status"] == "FAILED"
    assert "in the future" in answer["Reason"]
    assert world.rds_calls["BacktrackDBCluster"] == 0
