"""The connection check in the local world: the function stack deployed with its VPC parameters, the probe
run by the local Lambda through Lambda's Invoke at the world's endpoint, and a stack whose clone cannot be
reached failing with the reason, leaving nothing."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")
EXAMPLE = str(ROOT / "example" / "template.yaml")
CHECKED = {"ConnectionCheckSubnetIds": "subnet-0tests1,subnet-0tests2", "ConnectionCheckSecurityGroupIds": "sg-0tests"}


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSession]:
    with LocalSession(
        FUNCTION_TEMPLATE, time_scale=0.002, printer=lambda _line: None, function_parameters=CHECKED
    ) as session:
        session.world.create_source_cluster("prod-db")
        yield session


def probe_function(local: LocalSession) -> str:
    assert local.function_stack is not None
    return local.function_stack.resources["ConnectionCheckFunction"].physical_id


def invoke(local: LocalSession, name: str, event: dict[str, Any]) -> dict[str, Any]:
    answer = local.world.client("lambda").invoke(FunctionName=name, Payload=json.dumps(event).encode())
    assert "FunctionError" not in answer, answer["Payload"].read()
    result: dict[str, Any] = json.loads(answer["Payload"].read())
    return result


def test_the_clone_function_is_told_its_connection_check(local: LocalSession) -> None:
    name = probe_function(local)
    environment = local.world.client("lambda").get_function_configuration(FunctionName=local.clone_function_name())

    assert environment["Environment"]["Variables"]["CONNECTION_CHECK_FUNCTION"] == name


def test_the_probe_answers_through_lambda_s_invoke_at_the_endpoint_and_only_for_the_tool_s_clusters(
    local: LocalSession,
) -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        port = listener.getsockname()[1]
        source = invoke(local, probe_function(local), {"cluster": "prod-db"})
        # The shape the probe once took: a host and port of the caller's choosing. Nothing connects to them.
        listener.settimeout(0.5)
        pointed = invoke(
            local, probe_function(local), {"host": "127.0.0.1", "port": port, "engine": "aurora-postgresql"}
        )
        with pytest.raises(TimeoutError):
            listener.accept()

    assert source["reachable"] is False and source["stage"] == "probe"
    assert "'prod-db' is not a cluster this tool made" in source["detail"]
    assert pointed["reachable"] is False and pointed["stage"] == "probe"
    assert "a probe request names a cluster by its RDS identifier" in pointed["detail"]


def test_a_stack_whose_clone_cannot_be_reached_fails_naming_its_network_and_leaves_nothing(
    local: LocalSession,
) -> None:
    # Without real databases no clone's endpoint answers: what a clone in the wrong network looks like.
    stack = local.cloudformation.create_stack(
        "unreachable", EXAMPLE, {"SourceClusterId": "prod-db", "CloneFunctionStackName": "aurora-clone"}
    )

    assert stack.status == "ROLLBACK_COMPLETE"
    failure = next(event for event in stack.events if event.status == "CREATE_FAILED")
    assert "is available but the connection check cannot reach it: no TCP connection" in failure.reason
    assert "security groups (" in failure.reason and "subnet group (" in failure.reason
    assert not any(local.settled_leftovers(world_seconds=300).values()), local.leftovers()
