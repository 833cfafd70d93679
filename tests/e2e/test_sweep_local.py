"""``aurora-clone sweep`` against the local world reads the stacks through the endpoint's CloudFormation API:
it sees exactly the stacks that exist, so a live stack's clone stays and a deleted stack's clone goes; a
cluster someone else tagged as a gone stack's clone is reported and stays."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
RETAINED = textwrap.dedent(
    """\
    Resources:
      Database:
        Type: Custom::AuroraClone
        DeletionPolicy: Retain
        Properties:
          ServiceToken: !ImportValue aurora-clone-ServiceToken
          SourceClusterId: prod-db
    """
)


def sweep(local: LocalSession) -> list[str]:
    """``aurora-clone sweep --grace PT0S`` run as a user runs it against the world; the lines it printed."""
    table = local.cloudformation.stack("aurora-clone").outputs["RequestTableName"]
    swept = subprocess.run(
        [sys.executable, "-m", "aurora_clone.cli", "sweep", "--grace", "PT0S", "--request-table", table],
        cwd=ROOT,
        env={**os.environ, **local.world.client_env()},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert swept.returncode == 0, swept.stdout + swept.stderr
    return swept.stdout.splitlines()


def local_tags(rds: Any, cluster_id: str) -> list[Any]:
    """The ownership tags of ``cluster_id``, as a forger copies them."""
    (cluster,) = rds.describe_db_clusters(DBClusterIdentifier=cluster_id)["DBClusters"]
    return [tag for tag in cluster["TagList"] if tag["Key"].startswith("aurora-clone:")]


def clusters(local: LocalSession) -> set[str]:
    return {
        cluster["DBClusterIdentifier"] for cluster in local.world.client("rds").describe_db_clusters()["DBClusters"]
    }


def instances_of(local: LocalSession, cluster_id: str) -> list[str]:
    found = local.world.client("rds").describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [cluster_id]}])
    return [instance["DBInstanceIdentifier"] for instance in found["DBInstances"]]


def test_sweep_keeps_the_clone_of_a_live_stack_and_deletes_the_one_a_deleted_stack_left(tmp_path: Path) -> None:
    retained = tmp_path / "retained.yaml"
    retained.write_text(RETAINED)
    with LocalSession(str(ROOT / "template.yaml"), time_scale=0.002, printer=lambda _line: None) as local:
        local.world.create_source_cluster("prod-db")
        cloudformation = local.cloudformation
        live = cloudformation.create_stack(
            "sweep-live", str(ROOT / "example" / "template.yaml"), {"SourceClusterId": "prod-db"}
        )
        left = cloudformation.create_stack("sweep-left", str(retained))
        assert (live.status, left.status) == ("CREATE_COMPLETE", "CREATE_COMPLETE")
        kept, orphan = live.outputs["ClusterId"], left.resources["Database"].physical_id
        # DeletionPolicy: Retain leaves the clone, tagged with its stack's id, and no retain tag: an orphan.
        assert cloudformation.delete_stack("sweep-left").status == "DELETE_COMPLETE"
        assert {kept, orphan} <= clusters(local)
        deleting = f"deleting: {orphan}: its stack sweep-left is DELETE_COMPLETE (resource Database)"
        # Someone allowed only to tag marks another production cluster as that gone stack's clone.
        rds = local.world.client("rds")
        local.world.create_source_cluster("orders-db")
        (orders,) = rds.describe_db_clusters(DBClusterIdentifier="orders-db")["DBClusters"]
        rds.add_tags_to_resource(ResourceName=orders["DBClusterArn"], Tags=local_tags(rds, orphan))
        unrecorded = "unrecorded: orders-db: tagged as this tool's, but the tool has no record of making it"

        # One step per run, as the scheduled sweep does: the instances first, then the cluster. The live
        # stack's clone is never named; the tagged production cluster is reported, never deleted.
        first, report = sweep(local)
        assert first.startswith(deleting) and report.startswith(unrecorded)
        assert local.world.wait_until(lambda: not instances_of(local, orphan), world_seconds=1200)
        second, _ = sweep(local)
        assert second.startswith(deleting)
        assert local.world.wait_until(lambda: orphan not in clusters(local), world_seconds=1200), clusters(local)
        assert clusters(local) == {"prod-db", "orders-db", kept}
        assert instances_of(local, "orders-db")

        assert cloudformation.delete_stack("sweep-live").status == "DELETE_COMPLETE"
        # Its owner takes the forged tags off; then nothing of the tool's is left.
        forged = [tag["Key"] for tag in local_tags(rds, "orders-db")]
        rds.remove_tags_from_resource(ResourceName=orders["DBClusterArn"], TagKeys=forged)
        assert not any(local.settled_leftovers(world_seconds=600).values()), local.leftovers()
