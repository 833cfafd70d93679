"""A stack's clone of an Aurora PostgreSQL source is a real database: a copy of the source's data, on its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora_clone.local.session import LocalSession
from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME
from tests.local_databases import connect, port_answers, process_tree, running, wait_for

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "example" / "template.yaml")
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")
SOURCE = "orders-db"


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
