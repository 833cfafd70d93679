"""Beyond 15 clones: the resource clones the source or a fresh copy, makes a full copy only with CopyOk."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE
from aurora_clone.pool.model import COPY_OF_TAG
from aurora_clone.timespec import format_timestamp
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, fill_slots, make_copy
from tests.moto_gaps import AwsGaps


def pool_copy(source: Source, name: str, data_time: datetime, world: AwsGaps, made_by_tool: bool = True) -> str:
    """A pool copy of ``source``, tagged as the pool tags it (or, not made by the tool, only as a copy)."""
    tags = {COPY_OF_TAG: source.identifier, **({MANAGED_BY_TAG: MANAGED_BY_VALUE} if made_by_tool else {})}
    return make_copy(source, name, data_time, world, tags)


def now_of(clock: FakeClock) -> datetime:
    return datetime.fromtimestamp(clock(), UTC)


def create(cfn: FakeCloudFormation, world: AwsGaps, properties: dict[str, Any], logical: str = "Db") -> dict[str, Any]:
    return cfn.run(cfn.send(cfn.event("Create", properties, logical_id=logical)), world.advance)


def test_sixteenth_clone_of_source_goes_to_fresh_copy(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    fill_slots(source.identifier, 15, world)
    copy = pool_copy(source, "prod-db-copy-1", now_of(clock) - timedelta(hours=2), world)

    answer = create(cfn, world, {"SourceClusterId": source.identifier})

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["Data"]["SourceClusterId"] == copy
    assert answer["Data"]["IsFullCopy"] == "false"
    assert answer["Data"]["DataTimestamp"] == format_timestamp(now_of(clock) - timedelta(hours=2))
    clone = describe_cluster(answer["PhysicalResourceId"])
    assert clone is not None and clone["CloneGroupId"] == describe_cluster(copy)["CloneGroupId"]  # type: ignore[index]


def test_no_free_slot_and_no_copy_without_copy_ok_fails_at_once_creating_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    fill_slots(source.identifier, 15, world)
    before = cluster_ids()

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "15 of 15" in answer["Reason"] and "CopyOk" in answer["Reason"]
    assert cluster_ids() == before
    assert cfn.nothing_left()


def test_no_free_slot_with_copy_ok_makes_full_copy_and_says_so(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    fill_slots(source.identifier, 15, world)
    restores: list[dict[str, Any]] = []
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register(
        "provide-client-params.rds.RestoreDBClusterToPointInTime", lambda params, **_: restores.append(dict(params))
    )

    answer = create(cfn, world, {"SourceClusterId": source.identifier, "CopyOk": "true"})

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["Data"]["IsFullCopy"] == "true"
    assert answer["Data"]["SourceClusterId"] == source.identifier
    assert [call["RestoreType"] for call in restores] == ["full-copy"]
    assert describe_cluster(answer["PhysicalResourceId"]).get("CloneGroupId") is None  # type: ignore[union-attr]


def test_stale_copy_skipped_and_purged_when_asked(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    fill_slots(source.identifier, 15, world)
    stale = pool_copy(source, "prod-db-copy-old", now_of(clock) - timedelta(days=5), world)
    fresh = pool_copy(source, "prod-db-copy-new", now_of(clock) - timedelta(hours=1), world)
    others = pool_copy(source, "someone-elses-copy", now_of(clock) - timedelta(days=9), world, made_by_tool=False)

    answer = create(
        cfn, world, {"SourceClusterId": source.identifier, "MaxCopyAge": "P2D", "PurgeObsoleteCopies": "true"}
    )
    world.settle()

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["Data"]["SourceClusterId"] == fresh
    rds = boto3.client("rds")
    assert rds.describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [stale]}])["DBInstances"] == []
    assert others in cluster_ids() and fresh in cluster_ids()
    assert source.identifier in cluster_ids()


def test_copy_created_since_after_copy_data_refuses_the_copy(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    fill_slots(source.identifier, 15, world)
    pool_copy(source, "prod-db-copy-1", now_of(clock) - timedelta(hours=3), world)
    since = format_timestamp(now_of(clock) - timedelta(hours=1))

    answer = cfn.answer(
        cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "CopyCreatedSince": since}))
    )

    assert answer is not None and answer["Status"] == "FAILED"
    assert "prod-db-copy-1" in answer["Reason"]


@pytest.mark.parametrize(
    ("hours_after_data", "replaces"), [(-1, False), (1, True)], ids=["before-data-time", "after-data-time"]
)
def test_update_moving_copy_created_since_replaces_only_past_data_time(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock, hours_after_data: int, replaces: bool
) -> None:
    old = {"SourceClusterId": source.identifier}
    created = create(cfn, world, old)
    data_time = datetime.fromisoformat(created["Data"]["DataTimestamp"])
    clock.advance(3 * 3600)
    new = {**old, "CopyCreatedSince": format_timestamp(data_time + timedelta(hours=hours_after_data))}

    answer = cfn.run(
        cfn.send(
            cfn.event("Update", new, logical_id="Db", physical_id=created["PhysicalResourceId"], old_properties=old)
        ),
        world.advance,
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert (answer["PhysicalResourceId"] != created["PhysicalResourceId"]) is replaces
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == (2 if replaces else 1)


def test_full_copy_still_copying_at_its_deadline_says_why_in_the_reason(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock
) -> None:
    fill_slots(source.identifier, 15, world)
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "CopyOk": "true"}))
    clock.advance(3600)

    world.pass_time()
    cfn.wake_up()

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert "full copy" in answer["Reason"] and "one-hour limit" in answer["Reason"]
    assert "ServiceTimeout" in answer["Reason"]
