"""Worlds of their own: every server stops with its world; clusters stay metadata only where they must."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local import database_servers
from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME, LocalAws
from tests.local_databases import describe, port_answers, process_tree, running, wait_for


def test_leaving_the_world_stops_every_server_and_removes_every_file() -> None:
    with LocalAws(time_scale=0.002, real_databases=True) as short_lived:
        short_lived.create_source_cluster("short", engine="aurora-postgresql", sql="")
        short_lived.client("rds").restore_db_cluster_to_point_in_time(
            DBClusterIdentifier="short-copy", SourceDBClusterIdentifier="short", UseLatestRestorableTime=True
        )
        assert short_lived.databases is not None
        servers = short_lived.databases.servers.servers()
        root = short_lived.databases.servers.root
        processes = {pid for server in servers if server.pid for pid in process_tree(server.pid)}
        addresses = [(server.address, server.port) for server in servers]
        assert len(servers) == 2 and root is not None and root.is_dir()

    assert not running(processes), f"left running: {running(processes)}"
    assert not root.exists()
    assert not any(port_answers(address, port) for address, port in addresses)


def test_without_real_databases_clusters_are_metadata_only() -> None:
    with LocalAws(time_scale=0.002) as plain:
        plain.create_source_cluster("plain", engine="aurora-postgresql")

        assert plain.databases is None
        assert describe(plain, "plain")["Endpoint"].endswith(".rds.amazonaws.com")


def test_mysql_without_a_server_binary_stays_metadata_only_and_says_why(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(database_servers, "mysql_server_binary", lambda: None)
    with LocalAws(time_scale=0.002, real_databases=True) as mixed:
        mixed.create_source_cluster("my-db")
        assert mixed.databases is not None

        assert mixed.databases.server("my-db") is None
        assert describe(mixed, "my-db")["Endpoint"].endswith(".rds.amazonaws.com")
        assert describe(mixed, "my-db")["Status"] == "available"
        assert "no MySQL or MariaDB server" in mixed.databases.describe("my-db", "aurora-mysql")


@pytest.mark.skipif(database_servers.mysql_server_binary() is None, reason="no mysqld or mariadbd on PATH")
def test_mysql_with_a_server_binary_is_cloned_like_postgresql() -> None:
    client = shutil.which("mariadb") or shutil.which("mysql")
    assert client is not None

    def query(cluster: dict[str, Any], sql: str) -> str:
        command = [client, "--no-defaults", "--protocol=TCP", "-h", cluster["Endpoint"], "-P", str(cluster["Port"])]
        command += ["-u", SOURCE_MASTER_USERNAME, "-N", "-B", "-e", sql]
        environment = {"MYSQL_PWD": SOURCE_MASTER_PASSWORD, "PATH": "/usr/bin:/bin"}
        return subprocess.run(command, capture_output=True, text=True, check=True, env=environment).stdout.strip()

    with LocalAws(time_scale=0.002, real_databases=True) as mysql_world:
        mysql_world.create_source_cluster("my-db")
        mysql_world.client("rds").restore_db_cluster_to_point_in_time(
            DBClusterIdentifier="my-copy",
            SourceDBClusterIdentifier="my-db",
            RestoreType="copy-on-write",
            UseLatestRestorableTime=True,
        )
        source, copy = describe(mysql_world, "my-db"), describe(mysql_world, "my-copy")
        query(copy, "INSERT INTO app.customers VALUES (10, 'Clone Only', 'clone@example.com')")

        assert query(source, "SELECT count(*) FROM app.customers") == "3"
        assert query(copy, "SELECT count(*) FROM app.customers") == "4"


def test_the_servers_of_a_killed_world_are_stopped_and_removed_by_the_next() -> None:
    # A world whose process is killed runs no exit handler: its servers live on, until a next world starts.
    keep_serving = (
        "import time\n"
        "from aurora_clone.local.database_servers import Credentials, DatabaseServers\n"
        "servers = DatabaseServers().__enter__()\n"
        "address = servers.reserve_address(5432)\n"
        "server = servers.create('doomed', 'aurora-postgresql', address, 5432, Credentials('owner', 'password-1'))\n"
        "print(server.pid, servers.root, address, flush=True)\n"
        "time.sleep(600)\n"
    )
    world = subprocess.Popen([sys.executable, "-c", keep_serving], stdout=subprocess.PIPE, text=True)
    try:
        pid, root, address = world.stdout.readline().split() if world.stdout else ("", "", "")
        processes = process_tree(int(pid))
    finally:
        world.kill()
        world.wait()
    assert running(processes) and port_answers(address, 5432), "the killed world's server should outlive it"

    removed = database_servers.remove_abandoned(Path(root).parent)

    assert Path(root) in removed and not Path(root).exists()
    assert wait_for(lambda: not running(processes)), running(processes)
    assert not port_answers(address, 5432)
