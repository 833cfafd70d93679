"""Stacks through the local CloudFormation in the embedded AWS world, and the demo itself."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora_clone.local.pace import Durations
from aurora_clone.local.session import LocalSession
from aurora_clone.local.stacks import LocalStack
from aurora_clone.local.throttling import Throttling

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "example" / "template.yaml")
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")


def params(source: str = "prod-db", **extra: str) -> dict[str, str]:
    return {"SourceClusterId": source, "CloneFunctionStackName": "aurora-clone", **extra}


@pytest.fixture
def local() -> Iterator[LocalSession]:
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.002, printer=lambda _line: None) as session:
        session.world.create_source_cluster("prod-db")
        yield session


def test_two_stacks_cloning_the_same_source_at_once_both_complete(local: LocalSession) -> None:
    results: dict[str, LocalStack] = {}

    def create(name: str) -> None:
        results[name] = local.cloudformation.create_stack(name, EXAMPLE, params())

    threads = [threading.Thread(target=create, args=(name,)) for name in ("team-a", "team-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert {name: stack.status for name, stack in results.items()} == {
        "team-a": "CREATE_COMPLETE",
        "team-b": "CREATE_COMPLETE",
    }
    assert results["team-a"].outputs["ClusterId"] != results["team-b"].outputs["ClusterId"]
    for name in results:
        assert local.cloudformation.delete_stack(name).status == "DELETE_COMPLETE"
    assert not any(local.settled_leftovers(world_seconds=120).values()), local.leftovers()


def test_stack_rolled_back_while_its_clone_is_still_being_created_leaves_nothing() -> None:
    # A clone slower than the stack's ServiceTimeout: CloudFormation stops waiting and rolls back, and its
    # Delete reaches a clone RDS is still creating, which must wait for it, then delete it.
    slow = Durations(cluster_creating=5000.0)
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.002, durations=slow, printer=lambda _line: None) as local:
        local.world.create_source_cluster("prod-db")

        stack = local.cloudformation.create_stack("impatient", EXAMPLE, params())

        assert stack.status == "ROLLBACK_COMPLETE", stack.status_reason
        failure = next(event for event in stack.events if event.status == "CREATE_FAILED")
        assert "did not receive a response" in failure.reason
        assert local.world.wait_until(lambda: not any(local.leftovers().values()), world_seconds=600), local.leftovers()


def test_throttled_rds_slows_stacks_but_fails_none() -> None:
    # Backoff after a ThrottlingException takes real seconds: a gentler time scale keeps ServiceTimeout
    # (emulated) longer than the retries (real).
    with LocalSession(
        FUNCTION_TEMPLATE, time_scale=0.01, throttling=Throttling(burst=10, rate=4.0), printer=lambda _line: None
    ) as local:
        local.world.create_source_cluster("prod-db")
        results: list[str] = []

        def lifecycle(name: str) -> None:
            results.append(local.cloudformation.create_stack(name, EXAMPLE, params()).status)
            results.append(local.cloudformation.delete_stack(name).status)

        threads = [threading.Thread(target=lifecycle, args=(f"env-{n}",)) for n in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        assert sorted(results) == ["CREATE_COMPLETE"] * 3 + ["DELETE_COMPLETE"] * 3
        assert local.world.throttled > 0, "the limit was never reached: the test proves nothing"
        assert not any(local.settled_leftovers(world_seconds=120).values()), local.leftovers()


def test_demo_creates_updates_deletes_and_leaves_nothing() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aurora_clone.cli", "local", "demo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "CREATE_COMPLETE" in result.stdout and "UPDATE_COMPLETE" in result.stdout
    assert "db.r6g.xlarge" in result.stdout
    assert "clusters: none" in result.stdout and "pending requests: none" in result.stdout
    assert "queued wake-ups: none" in result.stdout
    # The clone is a real database: the source's rows, its own writes, and its server gone with it.
    assert "customers in the clone, copied from the source: Ada Lovelace" in result.stdout
    assert "wrote customer 100 in the clone: 1 row there, 0 in the source" in result.stdout
    assert "the clone's server at 127." in result.stdout and "no longer answers" in result.stdout
    # A prepare script masked the second clone's emails; the source kept the real ones.
    assert "emails in the clone: customer-1@example.invalid, customer-2@example.invalid" in result.stdout
    assert "emails in the source: ada@example.com, grace@example.com" in result.stdout


def test_two_stacks_racing_for_the_last_clone_slot_never_overfill_the_source(local: LocalSession) -> None:
    rds = local.world.client("rds")
    for n in range(14):
        rds.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=f"other-team-{n}",
            SourceDBClusterIdentifier="prod-db",
            RestoreType="copy-on-write",
            UseLatestRestorableTime=True,
        )
    results: dict[str, LocalStack] = {}

    def create(name: str) -> None:
        results[name] = local.cloudformation.create_stack(name, EXAMPLE, params())

    threads = [threading.Thread(target=create, args=(name,)) for name in ("race-a", "race-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    statuses = sorted(stack.status for stack in results.values())
    assert statuses == ["CREATE_COMPLETE", "ROLLBACK_COMPLETE"]
    loser = next(stack for stack in results.values() if stack.status == "ROLLBACK_COMPLETE")
    failure = next(event for event in loser.events if event.status == "CREATE_FAILED")
    assert "15 of 15" in failure.reason
    clusters = rds.describe_db_clusters()["DBClusters"]
    family = [c for c in clusters if c.get("CloneGroupId") and c["DBClusterIdentifier"] != "prod-db"]
    assert len(family) == 15
    assert all(c.get("CloneGroupId") for c in clusters), "a silent full copy was made"


def test_backtrack_example_stack_runs_with_its_own_secret_and_leaves_nothing(local: LocalSession) -> None:
    template = str(ROOT / "example" / "backtrack-test.yaml")

    stack = local.cloudformation.create_stack("backtrack-test", template, params())

    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    assert stack.outputs["SecretArn"].startswith("arn:aws:secretsmanager:")
    clone = local.world.client("rds").describe_db_clusters(DBClusterIdentifier=stack.outputs["ClusterId"])
    assert clone["DBClusters"][0]["BacktrackWindow"] == 86400
    assert local.cloudformation.delete_stack("backtrack-test").status == "DELETE_COMPLETE"
    assert not any(local.settled_leftovers(world_seconds=120).values()), local.leftovers()
