"""The copy pool's scheduled function and the ``pool`` commands, against moto with its gaps closed."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from aurora_clone import cli, maintenance
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG
from aurora_clone.pool.plan import PoolConfigError, PoolPolicy, plan_pool
from aurora_clone.pool_runner import carry_out, copy_identifier, gather
from aurora_clone.rds import RdsGateway
from aurora_clone.timespec import parse_timestamp
from tests.cloudformation import LambdaContext
from tests.conftest import cluster_ids, describe_cluster, fill_slots, instance_ids, make_copy, make_source
from tests.moto_gaps import AwsGaps

PARAMETER = "/aurora-clone/pools"
MANAGED_BY = {"aurora-clone:managed-by": "aurora-clone"}
SCHEDULED_EVENT = {"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}


def put_pools(*pools: dict[str, Any], name: str = PARAMETER) -> None:
    boto3.client("ssm").put_parameter(Name=name, Value=json.dumps({"pools": list(pools)}), Type="String")


def run_scheduled() -> dict[str, Any]:
    result: dict[str, Any] = maintenance.handler(dict(SCHEDULED_EVENT), LambdaContext())
    return result


def tags_of(cluster: Mapping[str, Any] | None) -> dict[str, str]:
    assert cluster is not None
    return {tag["Key"]: tag["Value"] for tag in cluster["TagList"]}


def pool_copies(source: str = "prod-db") -> list[str]:
    """The clusters carrying the pool's tags for ``source``."""
    clusters = boto3.client("rds").describe_db_clusters()["DBClusters"]
    return sorted(
        cluster["DBClusterIdentifier"]
        for cluster in clusters
        if tags_of(cluster).get(COPY_OF_TAG) == source and tags_of(cluster).get("aurora-clone:managed-by")
    )


def changing_calls(world: AwsGaps) -> Counter[str]:
    """RDS requests other than Describe*: anything that could change something."""
    return Counter({name: count for name, count in world.rds_calls.items() if not name.startswith("Describe")})


def emf_documents(stdout: str) -> list[dict[str, Any]]:
    """The CloudWatch embedded-metric-format documents among the printed lines."""
    documents = []
    for line in stdout.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if isinstance(document, dict) and "_aws" in document:
            documents.append(document)
    return documents


# -- the scheduled function ---------------------------------------------------------------------------------


def test_pool_below_target_creates_tagged_full_copies_without_waiting(world: AwsGaps) -> None:
    source = make_source(world)
    fill_slots(source.identifier, 12, world)  # 3 of 15 free
    put_pools({"source": "prod-db", "spareSlots": 20})
    before = datetime.now(UTC).replace(microsecond=0)

    summary = run_scheduled()

    after = datetime.now(UTC)
    family = describe_cluster("prod-db")
    assert family is not None
    created = summary["pools"][0]["created"]
    assert len(created) == 2, summary  # 17 short of 20; each copy brings 15
    assert pool_copies() == sorted(created)
    for copy_id in created:
        assert copy_id.startswith("aurora-clone-prod-db-copy-")
        copy = describe_cluster(copy_id)
        assert copy is not None
        assert copy["Status"] == "creating", "the run waited for the copy"
        tags = tags_of(copy)
        assert tags == {
            "aurora-clone:managed-by": "aurora-clone",
            "aurora-clone:source-cluster": "prod-db",
            COPY_OF_TAG: "prod-db",
            DATA_TIME_TAG: tags[DATA_TIME_TAG],
        }
        assert before <= parse_timestamp(tags[DATA_TIME_TAG]) <= after
        assert copy.get("CloneGroupId") != family["CloneGroupId"], "a clone of the source, not a full copy"
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 12 + 2
    assert world.rds_calls["CreateDBInstance"] == 1  # the source's writer only: a copy gets one once available
    assert summary["errors"] == 0


def test_pool_run_twice_while_copies_are_creating_creates_nothing_more(world: AwsGaps) -> None:
    make_source(world)
    put_pools({"source": "prod-db", "spareSlots": 40})
    first = run_scheduled()
    clusters = cluster_ids()

    second = run_scheduled()

    assert len(first["pools"][0]["created"]) == 2
    assert second["pools"][0]["created"] == []
    assert second["pools"][0]["futureSlots"] >= 40
    assert cluster_ids() == clusters


def test_overlapping_runs_for_the_same_deficit_create_each_copy_once(world: AwsGaps) -> None:
    make_source(world)
    rds = RdsGateway()
    now = datetime.now(UTC).replace(second=0, microsecond=0)  # the copies' names hold the minute
    plan = plan_pool(PoolPolicy("prod-db", spare_slots=25), gather(rds), now)  # both runs saw the same state

    first = carry_out(plan, rds, now, maintenance.logger)
    second = carry_out(plan, rds, now + timedelta(seconds=20), maintenance.logger)

    assert plan.copies_to_create == 1
    assert first.created == (copy_identifier("prod-db", now, 1),)
    assert second.created == ()
    assert second.errors == ()
    assert pool_copies() == [copy_identifier("prod-db", now, 1)]


def test_available_copy_without_instance_gets_its_writer_and_no_new_copy(world: AwsGaps) -> None:
    make_source(world)
    put_pools({"source": "prod-db", "spareSlots": 15})
    fill_slots("prod-db", 5, world)
    (copy_id,) = run_scheduled()["pools"][0]["created"]
    world.settle()  # the copy is available, without an instance

    second = run_scheduled()["pools"][0]

    assert second["created"] == []
    assert second["finished"] == [copy_id]
    writer = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=f"{copy_id}-1")["DBInstances"][0]
    assert writer["DBClusterIdentifier"] == copy_id
    assert writer["DBInstanceClass"] == "db.r6g.large"  # the source writer's class
    assert {tag["Key"]: tag["Value"] for tag in writer["TagList"]} == tags_of(describe_cluster(copy_id))
    world.settle()
    third = run_scheduled()["pools"][0]
    assert (third["created"], third["finished"], third["freeSlots"]) == ([], [], 10 + 15)


def test_obsolete_copy_loses_instances_first_and_its_cluster_next_run(world: AwsGaps) -> None:
    source = make_source(world)
    old = datetime.now(UTC) - timedelta(days=5)
    tags = {**MANAGED_BY, COPY_OF_TAG: "prod-db"}
    copy_id = make_copy(source, "prod-db-copy-old", old, world, tags)
    put_pools({"source": "prod-db", "spareSlots": 0, "maxCopyAge": "P3D"})

    first = run_scheduled()["pools"][0]

    assert (first["instancesDeleted"], first["deleted"]) == ([f"{copy_id}-1"], [])
    assert describe_cluster(copy_id) is not None
    world.settle()
    assert f"{copy_id}-1" not in instance_ids()
    second = run_scheduled()["pools"][0]
    assert second["deleted"] == [copy_id]
    world.settle()
    assert copy_id not in cluster_ids()
    assert {"prod-db", source.writer} <= cluster_ids() | instance_ids()


def test_copy_tagged_by_others_is_never_deleted_nor_counted(world: AwsGaps) -> None:
    source = make_source(world)
    old = datetime.now(UTC) - timedelta(days=30)
    foreign = make_copy(source, "hand-made-copy", old, world, {COPY_OF_TAG: "prod-db"})
    fill_slots("prod-db", 15, world)
    put_pools({"source": "prod-db", "spareSlots": 1, "maxCopyAge": "P1D"})

    runs = [run_scheduled()["pools"][0] for _ in range(2)]
    world.settle()

    assert describe_cluster(foreign) is not None
    assert f"{foreign}-1" in instance_ids()
    assert all(foreign not in run["deleted"] + run["instancesDeleted"] + run["copies"] for run in runs)
    assert runs[0]["freeSlots"] == 0 and len(runs[0]["created"]) == 1  # the hand-made copy brought no slot


def test_copy_cloned_after_planning_is_not_deleted(world: AwsGaps) -> None:
    source = make_source(world)
    copy_id = make_copy(
        source, "prod-db-copy-old", datetime.now(UTC) - timedelta(days=5), world, {**MANAGED_BY, COPY_OF_TAG: "prod-db"}
    )
    rds = RdsGateway()
    now = datetime.now(UTC)
    plan = plan_pool(PoolPolicy("prod-db", spare_slots=0), gather(rds), now)
    fill_slots(copy_id, 1, world)  # a stack cloned the copy between the plan and its carrying out

    result = carry_out(plan, rds, now, maintenance.logger)

    assert plan.copies_to_delete == (copy_id,)
    assert (result.deleted, result.instances_deleted, result.errors) == ((), (), ())
    assert f"{copy_id}-1" in instance_ids()


def test_dry_run_pool_plans_but_changes_nothing(world: AwsGaps) -> None:
    source = make_source(world)
    make_copy(
        source, "prod-db-copy-old", datetime.now(UTC) - timedelta(days=5), world, {**MANAGED_BY, COPY_OF_TAG: "prod-db"}
    )
    put_pools({"source": "prod-db", "spareSlots": 40, "dryRun": True})
    calls_before = changing_calls(world)
    clusters, instances = cluster_ids(), instance_ids()

    pool = run_scheduled()["pools"][0]

    assert pool["dryRun"] is True
    assert (pool["created"], pool["deleted"], pool["instancesDeleted"]) == ([], [], [])
    assert changing_calls(world) == calls_before
    assert (cluster_ids(), instance_ids()) == (clusters, instances)


def test_metrics_printed_once_per_pool_with_its_values(world: AwsGaps, capsys: pytest.CaptureFixture[str]) -> None:
    make_source(world)
    make_source(world, "billing-db")
    fill_slots("billing-db", 4, world)
    put_pools({"source": "prod-db", "spareSlots": 20}, {"source": "billing-db", "spareSlots": 5})
    capsys.readouterr()

    run_scheduled()

    printed = emf_documents(capsys.readouterr().out)
    documents = {doc["Source"]: doc for doc in printed if "Source" in doc}
    sweeps = [doc for doc in printed if "OrphansDeleted" in doc]
    assert set(documents) == {"prod-db", "billing-db"}
    assert [doc["OrphansDeleted"] for doc in sweeps] == [[0]]  # the sweep reports once per run
    for document in documents.values():
        (directive,) = document["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "AuroraClone"
        assert "Source" in directive["Dimensions"][0]
        assert {metric["Name"] for metric in directive["Metrics"]} == {
            "FreeSlots",
            "FutureSlots",
            "Copies",
            "CopiesCreated",
            "CopiesDeleted",
            "WarmClonesMade",
            "WarmClonesReady",
            "Errors",
        }
    prod = documents["prod-db"]
    assert (prod["FreeSlots"], prod["FutureSlots"], prod["Copies"], prod["CopiesCreated"]) == ([15], [15], [0], [1])
    billing = documents["billing-db"]
    assert (billing["FreeSlots"], billing["CopiesCreated"], billing["CopiesDeleted"]) == ([11], [0], [0])


def test_failing_pool_is_logged_and_the_next_pool_still_runs(
    world: AwsGaps,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    make_source(world)
    make_source(world, "billing-db")
    put_pools({"source": "billing-db", "spareSlots": 20}, {"source": "prod-db", "spareSlots": 20})
    real_plan = plan_pool

    def plan_or_fail(policy: PoolPolicy, *args: Any, **kwargs: Any) -> Any:
        if policy.source_id == "billing-db":
            raise RuntimeError("something unforeseen")
        return real_plan(policy, *args, **kwargs)

    monkeypatch.setattr("aurora_clone.pool_runner.plan_pool", plan_or_fail)

    summary = run_scheduled()

    billing, prod = summary["pools"]
    assert billing["errors"] == ["Unexpected error: something unforeseen"]
    assert len(prod["created"]) == 1 and prod["errors"] == []
    assert summary["errors"] == 1
    (failure,) = [record for record in caplog.records if record.levelname == "ERROR"]
    assert failure.getMessage() == "Pool run failed"
    assert failure.exc_info is not None and "something unforeseen" in str(failure.exc_info[1])
    assert {doc["Source"]: doc["Errors"] for doc in emf_documents(capsys.readouterr().out) if "Source" in doc} == {
        "billing-db": [1],
        "prod-db": [0],
    }


def test_missing_pool_parameter_means_no_pools(world: AwsGaps) -> None:
    make_source(world)
    calls_before = changing_calls(world)

    summary = run_scheduled()
    assert (summary["pools"], summary["errors"]) == ([], 0)
    assert changing_calls(world) == calls_before


def test_pool_parameter_named_by_environment_is_read(world: AwsGaps, monkeypatch: pytest.MonkeyPatch) -> None:
    make_source(world)
    put_pools({"source": "prod-db", "spareSlots": 16}, name="/team/pools")
    monkeypatch.setenv("POOL_CONFIG_PARAMETER", "/team/pools")
    monkeypatch.setenv("CLONE_SLOT_LIMIT", "10")

    pool = run_scheduled()["pools"][0]

    assert (pool["freeSlots"], len(pool["created"])) == (10, 1)


def test_invalid_pool_document_fails_the_run_naming_the_problem(world: AwsGaps) -> None:
    make_source(world)
    put_pools({"source": "prod-db", "spareSlots": -1})

    with pytest.raises(PoolConfigError, match="spareSlots"):
        run_scheduled()
    assert pool_copies() == []


# -- the pool commands --------------------------------------------------------------------------------------


def test_pool_status_lists_source_and_copies_with_slots(world: AwsGaps, capsys: pytest.CaptureFixture[str]) -> None:
    source = make_source(world)
    fill_slots("prod-db", 3, world)
    copy_id = make_copy(
        source, "prod-db-copy-1", datetime.now(UTC) - timedelta(hours=2), world, {**MANAGED_BY, COPY_OF_TAG: "prod-db"}
    )

    status = cli.main(["pool", "status", "prod-db"])

    lines = capsys.readouterr().out.splitlines()
    assert status == 0
    assert lines[0].split() == [
        "CLUSTER",
        "ROLE",
        "STATUS",
        "INSTANCES",
        "AGE",
        "DATA",
        "TIME",
        "SLOTS",
        "USED",
        "FREE",
    ]
    assert lines[1].split()[:4] == ["prod-db", "source", "available", "1"]
    assert lines[1].split()[-2:] == ["3/15", "12"]
    row = lines[2].split()
    assert row[:4] == [copy_id, "copy", "available", "1"]
    assert row[-2:] == ["0/15", "15"]
    assert "Clone slots free now: 27" in lines[-1]


def test_pool_apply_from_file_carries_out_what_plan_shows(
    world: AwsGaps, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_source(world)
    config = tmp_path / "pools.json"
    config.write_text(json.dumps({"pools": [{"source": "prod-db", "spareSlots": 20}]}))

    planned = cli.main(["pool", "plan", "--config", str(config)])
    plan_out = capsys.readouterr().out
    assert planned == 0 and pool_copies() == []
    applied = cli.main(["pool", "apply", "--config", str(config)])
    apply_out = capsys.readouterr().out

    assert applied == 0
    assert "[dry run] Create 1 full copy of 'prod-db'" in plan_out
    assert "Create 1 full copy of 'prod-db'" in apply_out
    (copy_id,) = pool_copies()
    assert f"Copies requested: {copy_id}" in apply_out


def test_pool_apply_dry_run_changes_nothing(world: AwsGaps, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_source(world)
    put_pools({"source": "prod-db", "spareSlots": 20})
    calls_before = changing_calls(world)

    status = cli.main(["pool", "apply", "--parameter", PARAMETER, "--dry-run"])

    assert status == 0
    assert "[dry run] Create 1 full copy" in capsys.readouterr().out
    assert changing_calls(world) == calls_before


def test_pool_put_stores_a_checked_document_and_refuses_an_invalid_one(
    world: AwsGaps, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ssm = boto3.client("ssm")
    good = tmp_path / "pools.json"
    good.write_text(json.dumps({"pools": [{"source": "prod-db", "spareSlots": 5}]}))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"pools": [{"source": "prod-db", "spareSlot": 5}]}))

    stored = cli.main(["pool", "put", "--config", str(good), "--parameter", PARAMETER])
    with pytest.raises(SystemExit) as refused:
        cli.main(["pool", "put", "--config", str(bad), "--parameter", PARAMETER])

    assert stored == 0
    assert ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"] == good.read_text()
    assert "spareSlot" in str(refused.value), "the problem is named"
    assert f"Stored the pool document in the SSM parameter '{PARAMETER}'" in capsys.readouterr().out
