"""The copy pool in the embedded AWS world: the ``pool`` commands, the scheduled function from template.yaml,
and a Custom::AuroraClone stack cloning a pool copy once its source has no clone slot left."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora_clone import cli
from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")
CLONE_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  TestDatabase:
    Type: Custom::AuroraClone
    Properties:
      ServiceToken: !ImportValue aurora-clone-ServiceToken
      SourceClusterId: prod-db
Outputs:
  ClusterId:
    Value: !GetAtt TestDatabase.ClusterId
  SourceClusterId:
    Value: !GetAtt TestDatabase.SourceClusterId
  IsFullCopy:
    Value: !GetAtt TestDatabase.IsFullCopy
"""
FULL_COPY_WORLD_SECONDS = 2 * 1800.0  # a full copy's cluster takes about 30 emulated minutes
INSTANCE_WORLD_SECONDS = 2 * 900.0


@pytest.fixture
def local(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalSession]:
    """The world with the function stack and prod-db; boto3's default environment points at it, as the
    environment ``aurora-clone local serve`` prints does."""
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.002, printer=lambda _line: None) as session:
        session.world.create_source_cluster("prod-db")
        for key, value in session.world.client_env().items():
            monkeypatch.setenv(key, value)
        yield session


def fill_slots(local: LocalSession, source: str, count: int) -> None:
    rds = local.world.client("rds")
    for number in range(count):
        rds.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=f"team-{number}",
            SourceDBClusterIdentifier=source,
            RestoreType="copy-on-write",
            UseLatestRestorableTime=True,
        )


def cluster(local: LocalSession, identifier: str) -> dict[str, Any]:
    found: dict[str, Any] = local.world.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)[
        "DBClusters"
    ][0]
    return found


def pool_copies(local: LocalSession) -> list[str]:
    clusters = local.world.client("rds").describe_db_clusters()["DBClusters"]
    return sorted(
        item["DBClusterIdentifier"]
        for item in clusters
        if {"Key": "aurora-clone:copy-of", "Value": "prod-db"} in item["TagList"]
    )


def instance_status(local: LocalSession, identifier: str) -> str:
    rds = local.world.client("rds")
    instances = rds.describe_db_instances(Filters=[{"Name": "db-instance-id", "Values": [identifier]}])["DBInstances"]
    return str(instances[0]["DBInstanceStatus"]) if instances else "absent"


def test_source_out_of_slots_next_stack_clones_the_pool_copy(
    local: LocalSession, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill_slots(local, "prod-db", 15)
    config = tmp_path / "pools.json"
    config.write_text(json.dumps({"pools": [{"source": "prod-db", "spareSlots": 5}]}))

    assert cli.main(["pool", "apply", "--config", str(config)]) == 0
    (copy_id,) = pool_copies(local)
    assert local.world.wait_until(lambda: cluster(local, copy_id)["Status"] == "available", FULL_COPY_WORLD_SECONDS)
    assert cli.main(["pool", "apply", "--config", str(config)]) == 0  # the copy's writer
    assert f"Writers added: {copy_id}" in capsys.readouterr().out
    writer = f"{copy_id}-1"
    assert local.world.wait_until(lambda: instance_status(local, writer) == "available", INSTANCE_WORLD_SECONDS)
    assert pool_copies(local) == [copy_id], "the second run made another copy"
    template = tmp_path / "clone.yaml"
    template.write_text(CLONE_TEMPLATE)

    stack = local.cloudformation.create_stack("needs-a-database", str(template))

    assert stack.status == "CREATE_COMPLETE", [event.line() for event in stack.events]
    assert stack.outputs["SourceClusterId"] == copy_id
    assert stack.outputs["IsFullCopy"] == "false"
    clone = cluster(local, stack.outputs["ClusterId"])
    assert clone["CloneGroupId"] == cluster(local, copy_id)["CloneGroupId"], "not a copy-on-write clone of the copy"
    assert local.cloudformation.delete_stack("needs-a-database").status == "DELETE_COMPLETE"


def test_scheduled_pool_function_from_template_keeps_the_target_once(local: LocalSession) -> None:
    events = local.world.client("events")
    (rule,) = events.list_rules(NamePrefix="pool-schedule-")["Rules"]
    assert local.function_stack is not None and local.lambdas is not None
    pool_function = local.function_stack.resources["PoolFunction"].attributes["Arn"]
    assert rule["ScheduleExpression"] == "rate(1 day)"
    assert [target["Arn"] for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]] == [pool_function]
    document = {"pools": [{"source": "prod-db", "spareSlots": 20}]}
    local.world.client("ssm").put_parameter(Name="/aurora-clone/pools", Value=json.dumps(document), Type="String")
    scheduled = {"source": "aws.events", "detail-type": "Scheduled Event", "resources": [rule["Arn"]], "detail": {}}

    local.lambdas.invoke(pool_function, scheduled)
    first = pool_copies(local)
    local.lambdas.invoke(pool_function, scheduled)

    assert len(first) == 1
    assert cluster(local, first[0])["Status"] != "available", "the run waited for the copy"
    assert pool_copies(local) == first
    assert local.cloudformation.delete_stack("aurora-clone").status == "DELETE_COMPLETE"
    assert events.list_rules(NamePrefix="pool-schedule-")["Rules"] == []
