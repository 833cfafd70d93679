"""One clock in the local world: the function, RDS, CloudFormation and the CLI read the same (scaled) time."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from aurora_clone import clock as process_clock
from aurora_clone.local.session import LocalSession
from aurora_clone.pool.model import DATA_TIME_TAG
from aurora_clone.timespec import format_timestamp, parse_timestamp

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")
BACKTRACK_EXAMPLE = str(ROOT / "example" / "backtrack-test.yaml")
PARAMS = {"SourceClusterId": "prod-db", "CloneFunctionStackName": "aurora-clone"}


@pytest.fixture
def local() -> Iterator[LocalSession]:
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.002, printer=lambda _line: None) as session:
        session.world.create_source_cluster("prod-db")
        yield session


def test_an_update_with_a_new_backtrack_to_rewinds_the_clone_to_that_world_moment(local: LocalSession) -> None:
    created = local.cloudformation.create_stack("rewind", BACKTRACK_EXAMPLE, PARAMS)
    assert created.status == "CREATE_COMPLETE", created.status_reason
    assert created.outputs["BacktrackedTo"] == ""
    data_time = parse_timestamp(created.outputs["DataTimestamp"])
    # A moment after the clone was made, once the world clock has passed it (fixtures loaded, say).
    moment = format_timestamp(data_time + timedelta(minutes=10))
    assert local.world.wait_until(lambda: process_clock.utcnow() > parse_timestamp(moment), world_seconds=1200)

    updated = local.cloudformation.update_stack("rewind", BACKTRACK_EXAMPLE, {**PARAMS, "BacktrackTo": moment})

    assert updated.status == "UPDATE_COMPLETE", updated.status_reason
    assert updated.outputs["BacktrackedTo"] == moment
    assert updated.outputs["ClusterId"] == created.outputs["ClusterId"]
    assert local.cloudformation.delete_stack("rewind").status == "DELETE_COMPLETE"


def test_a_clone_s_data_time_tag_agrees_with_its_creation_time_on_the_world_clock(local: LocalSession) -> None:
    # At this scale one real second is 500 world seconds: two clocks would disagree by hours.
    stack = local.cloudformation.create_stack("dated", BACKTRACK_EXAMPLE, PARAMS)
    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    cluster = local.world.client("rds").describe_db_clusters(DBClusterIdentifier=stack.outputs["ClusterId"])[
        "DBClusters"
    ][0]
    tags = {tag["Key"]: tag["Value"] for tag in cluster["TagList"]}

    data_time = parse_timestamp(tags[DATA_TIME_TAG])
    created = cluster["ClusterCreateTime"]

    assert abs(data_time - created) < timedelta(minutes=5), (data_time, created)
    assert stack.events[0].timestamp <= created + timedelta(minutes=5)
    assert abs(process_clock.utcnow() - local.world.clock.at(local.world.world_time())) < timedelta(minutes=1)
    assert local.cloudformation.delete_stack("dated").status == "DELETE_COMPLETE"
