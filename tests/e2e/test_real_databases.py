"""A stack's clone of an Aurora PostgreSQL source is a real database: a copy of the source's data, on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aurora_clone import cli
from aurora_clone.local.auto_pause import RESUME_SECONDS, SECONDS_UNTIL_AUTO_PAUSE
from aurora_clone.local.pace import Durations
from aurora_clone.local.session import LocalSession
from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME
from tests.local_databases import connect, describe, port_answers, process_tree, running, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "example" / "template.yaml")
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")
SOURCE = "orders-db"
WARM_TAG = "aurora-clone:warm-pool"
WARM_FILL_WORLD_SECONDS = 3 * 3600.0
AUTO_PAUSE_WORLD_SECONDS = SECONDS_UNTIL_AUTO_PAUSE
# A cold clone waits for its cluster and then its writer (about 11 world minutes); a warm claim waits for neither.
# At this time scale the function's own real run time counts too (0.35 s real is 70 world seconds), hence the
# bound is one instance's creation, not the seconds bench/lifecycle.py measures at realistic durations.
WARM_GREEN_WORLD_SECONDS = Durations().instance_creating


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSession]:
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.005, printer=lambda _line: None, real_databases=True) as session:
        session.world.create_source_cluster(SOURCE, engine="aurora-postgresql")
        yield session


def test_clone_from_the_stack_outputs_has_the_source_data_then_goes_its_own_way(local: LocalSession) -> None:
    databases = local.world.databases
    assert databases is not None
    source = databases.server(SOURCE)
    assert source is not None
    parameters = {"SourceClusterId": SOURCE, "CloneFunctionStackName": local.function_stack_name}

    stack = local.cloudformation.create_stack("real-db", EXAMPLE, parameters)

    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    endpoint, port = stack.outputs["Endpoint"], stack.outputs["Port"]
    assert (endpoint, port) != (source.address, str(source.port))
    clone_server = databases.server(stack.outputs["ClusterId"])
    assert clone_server is not None and clone_server.pid is not None
    clone_processes = process_tree(clone_server.pid)
    clone_files = clone_server.directory
    source_db = connect(source.address, source.port, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
    # The master user and password are the source's, as after an RDS restore.
    clone = connect(endpoint, port, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
    try:
        names = [row[0] for row in clone.run("SELECT name FROM customers ORDER BY id")]
        assert names == ["Ada Lovelace", "Grace Hopper", "Edsger Dijkstra"]

        clone.run("INSERT INTO customers (id, name, email) VALUES (10, 'Clone Only', 'clone@example.com')")
        source_db.run("INSERT INTO customers (id, name, email) VALUES (20, 'Source Only', 'source@example.com')")

        assert source_db.run("SELECT id FROM customers WHERE id IN (10, 20)") == [[20]]
        assert clone.run("SELECT id FROM customers WHERE id IN (10, 20)") == [[10]]
    finally:
        clone.close()
        source_db.close()

    assert local.cloudformation.delete_stack("real-db").status == "DELETE_COMPLETE"

    assert wait_for(lambda: not port_answers(endpoint, port)), "the clone's server still answers"
    # The port closes as the server stops; its files go right after.
    assert wait_for(lambda: not clone_files.exists()), f"{clone_files} is still there"
    assert wait_for(lambda: not running(clone_processes)), f"left running: {running(clone_processes)}"
    assert port_answers(source.address, source.port), "the source's server went with the clone"


def warm_clones(local: LocalSession) -> dict[str, dict[str, Any]]:
    """The unclaimed warm clones of the source: identifier -> the cluster as RDS lists it."""
    clusters = local.world.client("rds").describe_db_clusters()["DBClusters"]
    return {
        item["DBClusterIdentifier"]: item
        for item in clusters
        if any(tag["Key"] == WARM_TAG for tag in item["TagList"]) and item["Status"] != "deleting"
    }


def source_names(local: LocalSession) -> list[str]:
    """The source's customers now, by id."""
    databases = local.world.databases
    assert databases is not None
    source = databases.server(SOURCE)
    assert source is not None
    db = connect(source.address, source.port, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
    try:
        return [row[0] for row in db.run("SELECT name FROM customers ORDER BY id")]
    finally:
        db.close()


def ready(local: LocalSession, identifier: str) -> bool:
    """The cluster and each of its instances are available: what a claim waits for."""
    rds = local.world.client("rds")
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"]
    members = [member["DBInstanceIdentifier"] for member in cluster["DBClusterMembers"]]
    statuses = [
        rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"] for name in members
    ]
    return cluster["Status"] == "available" and bool(statuses) and set(statuses) == {"available"}


def test_warm_pool_filled_by_pool_apply_gives_a_stack_a_real_database_in_seconds(
    local: LocalSession, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    for key, value in local.world.client_env().items():
        monkeypatch.setenv(key, value)
    shape = {"name": "ci", "count": 1, "maxAge": "PT12H", "properties": {"InstanceClass": "db.r6g.large"}}
    document = {"pools": [{"source": SOURCE, "spareSlots": 2, "warm": [shape]}]}
    ssm = local.world.client("ssm")
    pools = tmp_path / "pools.json"
    pools.write_text(json.dumps(document))

    # Made from the file first, then stored for the refills: at this time scale the scheduled upkeep runs
    # every 1.5 real seconds, and would race the apply for the slot lock.
    assert cli.main(["pool", "apply", "--config", str(pools)]) == 0
    assert "Make 1 warm clone" in capsys.readouterr().out
    assert cli.main(["pool", "put", "--config", str(pools)]) == 0
    (warm_id,) = warm_clones(local)
    # The pool function, woken by the warm clone's RDS events, adds its writer: no second apply.
    assert local.world.wait_until(lambda: ready(local, warm_id), WARM_FILL_WORLD_SECONDS), warm_id
    assert cli.main(["pool", "status", SOURCE]) == 0
    assert "Warm pool 'ci': 1 of 1 ready" in capsys.readouterr().out
    parameters = {
        "SourceClusterId": SOURCE,
        "CloneFunctionStackName": local.function_stack_name,
        "WarmPool": "ci",
        "WaitForDeletion": "false",
    }

    started = local.world.world_time()
    stack = local.cloudformation.create_stack("warm-db", EXAMPLE, parameters)
    took = local.world.world_time() - started

    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    assert stack.outputs["ClusterId"] == warm_id and stack.outputs["FromWarmPool"] == "true"
    assert took < WARM_GREEN_WORLD_SECONDS, f"green after {took:.0f} world seconds"
    clone = connect(stack.outputs["Endpoint"], stack.outputs["Port"], SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
    try:
        names = [row[0] for row in clone.run("SELECT name FROM customers ORDER BY id")]
    finally:
        clone.close()
    # The source has not changed since the warm clone was made (an earlier test of this world wrote to it).
    assert names == source_names(local) and "Ada Lovelace" in names
    # The claim woke the pool: a replacement is on its way without another apply.
    assert local.world.wait_until(lambda: bool(set(warm_clones(local)) - {warm_id}), WARM_GREEN_WORLD_SECONDS)

    gone_at: list[float] = []

    def on_rds_event(event: dict[str, Any]) -> None:
        detail = event.get("detail", {})
        if detail.get("EventID") == "RDS-EVENT-0171" and detail.get("SourceIdentifier") == warm_id:
            gone_at.append(local.world.world_time_at(datetime.fromisoformat(detail["Date"].replace("Z", "+00:00"))))

    local.world.watch_rds_events(on_rds_event)
    assert local.cloudformation.delete_stack("warm-db").status == "DELETE_COMPLETE"
    answered_at = local.world.world_time()
    assert local.world.wait_until(lambda: bool(gone_at), WARM_FILL_WORLD_SECONDS), "the claimed clone stayed"
    # WaitForDeletion false: the Delete was answered once RDS accepted the deletion, before it was over.
    assert answered_at < gone_at[0], f"answered at {answered_at:.0f}, the clone gone at {gone_at[0]:.0f}"
    ssm.put_parameter(Name="/aurora-clone/pools", Value=json.dumps({"pools": []}), Type="String", Overwrite=True)
    assert cli.main(["pool", "apply"]) == 0
    assert local.world.wait_until(lambda: not warm_clones(local), WARM_FILL_WORLD_SECONDS), "the warm pool stayed"


def test_an_idle_serverless_clone_with_min_capacity_zero_pauses_and_a_connection_resumes_it(
    local: LocalSession,
) -> None:
    databases = local.world.databases
    assert databases is not None
    rds = local.world.client("rds")
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier="paused-clone",
        SourceDBClusterIdentifier=SOURCE,
        RestoreType="copy-on-write",
        UseLatestRestorableTime=True,
        ServerlessV2ScalingConfiguration={"MinCapacity": 0, "MaxCapacity": 4},
    )
    assert local.world.wait_until(lambda: describe(local.world, "paused-clone")["Status"] == "available", 3600)
    rds.create_db_instance(
        DBInstanceIdentifier="paused-clone-1",
        DBClusterIdentifier="paused-clone",
        DBInstanceClass="db.serverless",
        Engine="aurora-postgresql",
    )
    assert local.world.wait_until(lambda: ready(local, "paused-clone"), 3600)
    gate = databases.pauses.get("paused-clone")
    assert gate is not None, "the clone's endpoint has no auto-pause gate"
    cluster = describe(local.world, "paused-clone")
    endpoint, port = cluster["Endpoint"], cluster["Port"]

    assert local.world.wait_until(gate.paused, 2 * AUTO_PAUSE_WORLD_SECONDS), "idle, it never paused"
    started = local.world.world_time()
    first = connect(endpoint, port, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
    resumed_after = local.world.world_time() - started
    try:
        assert first.run("SELECT count(*) FROM customers") == [[len(source_names(local))]]
        assert not gate.paused(), "paused with a session open"
        second = connect(endpoint, port, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
        second.close()
    finally:
        first.close()

    assert resumed_after >= RESUME_SECONDS, f"answered {resumed_after:.1f} world seconds after the connection"
    assert gate.resumes == 1, "the second connection, while it ran, resumed it again"
    rds.delete_db_instance(DBInstanceIdentifier="paused-clone-1")
    rds.delete_db_cluster(DBClusterIdentifier="paused-clone", SkipFinalSnapshot=True)
