"""The local world's real database servers: started for Aurora PostgreSQL clusters, copied by restores, changed
by ModifyDBCluster, stopped with their cluster and with the world, and absent where they cannot be."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pg8000.native
import pytest

from aurora_clone.local.database_plan import ServerFacts
from aurora_clone.local.database_servers import Credentials, DatabaseServers
from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME, LocalAws
from tests.local_databases import connect, describe, port_answers, process_tree, running, wait_for

SOURCE = "prod-pg"
SETTLE_WORLD_SECONDS = 2000.0


@pytest.fixture(scope="module")
def world() -> Iterator[LocalAws]:
    with LocalAws(time_scale=0.002, real_databases=True) as running_world:
        running_world.create_source_cluster(SOURCE, engine="aurora-postgresql")
        yield running_world


def restore(world: LocalAws, identifier: str, **options: Any) -> dict[str, Any]:
    rds = world.client("rds")
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=identifier,
        SourceDBClusterIdentifier=SOURCE,
        RestoreType="copy-on-write",
        UseLatestRestorableTime=True,
        **options,
    )
    assert world.wait_until(lambda: identifier not in world.transitional(), SETTLE_WORLD_SECONDS)
    return describe(world, identifier)


def delete(world: LocalAws, identifier: str) -> None:
    world.client("rds").delete_db_cluster(DBClusterIdentifier=identifier, SkipFinalSnapshot=True)


def source_connection(world: LocalAws) -> pg8000.native.Connection:
    source = describe(world, SOURCE)
    return connect(source["Endpoint"], source["Port"], SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)


def test_source_answers_at_its_endpoint_with_its_master_user_and_sample_rows(world: LocalAws) -> None:
    cluster = describe(world, SOURCE)
    writer = world.client("rds").describe_db_instances(DBInstanceIdentifier=f"{SOURCE}-writer")["DBInstances"][0]

    assert cluster["Endpoint"] == cluster["ReaderEndpoint"] == writer["Endpoint"]["Address"]
    assert cluster["Endpoint"].startswith("127.") and cluster["Endpoint"] != "127.0.0.1"
    assert cluster["Port"] == writer["Endpoint"]["Port"] == 5432
    database = source_connection(world)
    try:
        assert database.run("SELECT count(*) FROM customers") == [[3]]
        assert database.run("SELECT rolsuper FROM pg_roles WHERE rolname = current_user") == [[False]]
    finally:
        database.close()
    with pytest.raises(pg8000.native.DatabaseError):
        connect(cluster["Endpoint"], cluster["Port"], SOURCE_MASTER_USERNAME, "not-the-password")


def test_restore_copies_the_source_as_it_was_when_asked_and_then_each_keeps_its_writes(world: LocalAws) -> None:
    source = source_connection(world)
    try:
        source.run("CREATE TABLE IF NOT EXISTS marks (name text PRIMARY KEY)")
        source.run("INSERT INTO marks VALUES ('before the restore')")

        clone = restore(world, "copy-a")
        source.run("INSERT INTO marks VALUES ('after the restore')")
        copy = connect(clone["Endpoint"], clone["Port"], SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
        try:
            copy.run("INSERT INTO marks VALUES ('in the clone')")
            in_clone = sorted(row[0] for row in copy.run("SELECT name FROM marks"))
        finally:
            copy.close()
        in_source = sorted(row[0] for row in source.run("SELECT name FROM marks"))
    finally:
        source.close()
        delete(world, "copy-a")

    assert clone["Port"] == describe(world, SOURCE)["Port"], "a clone keeps its source's port, as on RDS"
    assert clone["Endpoint"] != describe(world, SOURCE)["Endpoint"]
    assert in_clone == ["before the restore", "in the clone"]
    assert in_source == ["after the restore", "before the restore"]


def test_a_managed_master_secret_becomes_the_clone_master_password(world: LocalAws) -> None:
    clone = restore(world, "copy-secret")
    world.client("rds").modify_db_cluster(
        DBClusterIdentifier="copy-secret", ManageMasterUserPassword=True, ApplyImmediately=True
    )
    secret_arn = describe(world, "copy-secret")["MasterUserSecret"]["SecretArn"]
    secret = json.loads(world.client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])

    try:
        with_secret = connect(clone["Endpoint"], clone["Port"], SOURCE_MASTER_USERNAME, secret["password"])
        assert with_secret.run("SELECT current_user") == [[SOURCE_MASTER_USERNAME]]
        with_secret.close()
        with pytest.raises(pg8000.native.DatabaseError):
            connect(clone["Endpoint"], clone["Port"], SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD)
        source = source_connection(world)  # the source keeps its own password
        source.close()
    finally:
        delete(world, "copy-secret")


def test_modifying_the_port_moves_the_server(world: LocalAws) -> None:
    clone = restore(world, "copy-port")
    try:
        world.client("rds").modify_db_cluster(DBClusterIdentifier="copy-port", Port=15432, ApplyImmediately=True)
        moved = describe(world, "copy-port")

        assert moved["Port"] == 15432 and moved["Endpoint"] == clone["Endpoint"]
        assert port_answers(moved["Endpoint"], 15432)
        assert not port_answers(clone["Endpoint"], clone["Port"])
        connect(moved["Endpoint"], 15432, SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD).close()
    finally:
        world.wait_until(lambda: "copy-port" not in world.transitional(), SETTLE_WORLD_SECONDS)
        delete(world, "copy-port")


def test_a_deleted_cluster_server_stops_and_its_files_go(world: LocalAws) -> None:
    assert world.databases is not None
    clone = restore(world, "copy-gone")
    server = world.databases.server("copy-gone")
    assert server is not None and server.pid is not None
    processes, files = process_tree(server.pid), server.directory
    assert len(processes) > 1 and files.is_dir()

    delete(world, "copy-gone")

    assert world.wait_until(lambda: "copy-gone" not in world.transitional(), SETTLE_WORLD_SECONDS)
    assert wait_for(lambda: world.databases is not None and world.databases.server("copy-gone") is None)
    assert not port_answers(clone["Endpoint"], clone["Port"])
    assert not files.exists()
    assert wait_for(lambda: not running(processes)), running(processes)


def test_server_manager_copies_a_server_and_stops_it_alone() -> None:
    facts = ServerFacts(postgres_binaries=True, mysql_server=None, loopback_range=True)
    with DatabaseServers(facts) as servers:
        owner = Credentials("owner", "owner-password-1")
        first_address = servers.reserve_address(5432)
        assert first_address is not None
        first = servers.create("first", "aurora-postgresql", first_address, 5432, owner)
        servers.load_sql("first", "CREATE TABLE t (n int); INSERT INTO t VALUES (1);")
        second_address = servers.reserve_address(5432)
        assert second_address is not None and second_address != first_address

        second = servers.clone("first", "second", second_address, 5432, Credentials("owner", "other-password-2"))
        copied = connect(second.address, second.port, "owner", "other-password-2")
        try:
            assert copied.run("SELECT n FROM t") == [[1]]
        finally:
            copied.close()
        assert second.prepare_seconds > 0 and second.start_seconds > 0
        servers.stop("first")

        assert not port_answers(first.address, first.port) and not first.directory.exists()
        assert port_answers(second.address, second.port)
