"""The sweep deletes clones whose stack is gone, logs why, and touches nothing else."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from aurora_clone import maintenance, sweep_runner
from aurora_clone.cli import main as cli_main
from aurora_clone.rds import RdsGateway
from tests.cloudformation import FakeCloudFormation, LambdaContext
from tests.conftest import Source, cluster_ids, instance_ids
from tests.moto_gaps import AwsGaps

NO_GRACE = timedelta(0)


def make_clone(cfn: FakeCloudFormation, world: AwsGaps, source: Source, **properties: Any) -> str:
    answer = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, **properties})), world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return str(answer["PhysicalResourceId"])


def settle(stack: FakeCloudFormation, physical_id: str | None, status: str = "CREATE_COMPLETE") -> None:
    """The stack's operation is over; CloudFormation's record of its TestDatabase names ``physical_id``."""
    stack.world.hold_custom_resource(stack.stack_id, status, "TestDatabase", "Custom::AuroraClone", physical_id)


def live_stack_id() -> str:
    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}}
    return str(
        boto3.client("cloudformation").create_stack(StackName="alive", TemplateBody=json.dumps(template))["StackId"]
    )


def test_clone_of_a_gone_stack_is_deleted_instances_first(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    orphan = make_clone(cfn, world, source)
    cfn.forget_stack()  # the stack is gone

    first = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE)
    world.settle()
    second = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE)
    world.settle()

    assert [o.cluster_id for o in first.plan.orphans] == [orphan]
    assert "no longer exists" in first.plan.orphans[0].reason
    assert first.deleting == (orphan,) and second.deleting == (orphan,)
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}


def test_clone_of_a_live_stack_retained_or_young_clone_is_kept(
    cfn: FakeCloudFormation, response_server: Any, world: AwsGaps, source: Source
) -> None:
    alive = FakeCloudFormation(response_server, cfn.handler, stack="alive", world=cfn.world)
    alive.stack_id = live_stack_id()
    kept_alive = make_clone(alive, world, source)
    settle(alive, kept_alive)
    retained = make_clone(cfn, world, source, Tags=[{"Key": "aurora-clone-retain", "Value": "true"}])
    cfn.forget_stack()

    def names_the_clone(pairs: Any) -> dict[tuple[str, str], str | None]:
        return {pair: kept_alive for pair in pairs}  # what the live stack's Custom::AuroraClone resource names

    result = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE, resources=names_the_clone)
    young = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), resources=names_the_clone)  # grace: one hour

    assert result.plan.orphans == () and young.plan.orphans == ()
    assert any(retained in line for line in result.plan.kept)
    assert {kept_alive, retained, source.identifier} <= cluster_ids()


def test_dry_run_deletes_nothing(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> None:
    orphan = make_clone(cfn, world, source)
    cfn.forget_stack()

    result = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE, dry_run=True)

    assert [o.cluster_id for o in result.plan.orphans] == [orphan] and result.deleting == ()
    assert orphan in cluster_ids()


def test_scheduled_function_sweeps_with_its_settings(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    orphan = make_clone(cfn, world, source)
    cfn.forget_stack()
    monkeypatch.setenv("SWEEP_GRACE", "PT0S")

    summary = maintenance.handler({}, LambdaContext(function_name="aurora-clone-pool"))

    assert summary["sweep"]["deleting"] == [orphan]
    assert (
        boto3.client("rds").describe_db_instances(Filters=[{"Name": "db-cluster-id", "Values": [orphan]}])[
            "DBInstances"
        ][0]["DBInstanceStatus"]
        == "deleting"
    )


def test_cli_list_shows_clones_and_sweep_dry_run_names_orphans(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, capsys: pytest.CaptureFixture[str]
) -> None:
    orphan = make_clone(cfn, world, source)
    cfn.forget_stack()

    assert cli_main(["list"]) == 0
    listing = capsys.readouterr().out
    assert cli_main(["sweep", "--dry-run", "--grace", "PT0S"]) == 0
    swept = capsys.readouterr().out

    assert orphan in listing and "integration-env" in listing and source.identifier in listing
    assert f"would delete: {orphan}" in swept
    assert orphan in cluster_ids()


def test_clone_its_live_stack_does_not_name_is_swept_unless_a_pending_request_owns_it(
    cfn: FakeCloudFormation, response_server: Any, world: AwsGaps, source: Source
) -> None:
    # A Create whose answer never reached CloudFormation: the live stack has no such resource (moto's stack
    # holds only a topic), so DescribeStackResource says it does not exist.
    alive = FakeCloudFormation(response_server, cfn.handler, stack="alive", world=cfn.world)
    alive.stack_id = live_stack_id()
    unnamed = make_clone(alive, world, source)
    pending = alive.send(alive.event("Create", {"SourceClusterId": source.identifier}, logical_id="Other"))
    (still_making,) = cluster_ids() - {source.identifier, unnamed}
    settle(alive, None, "UPDATE_COMPLETE")  # between operations: the resource names no clone

    result = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE)
    world.settle()
    sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE)  # instances first, then the cluster
    world.settle()

    assert [o.cluster_id for o in result.plan.orphans] == [unnamed]
    assert "no pending request owns it" in result.plan.orphans[0].reason
    assert unnamed not in cluster_ids() and still_making in cluster_ids()
    assert alive.answer(pending) is None
