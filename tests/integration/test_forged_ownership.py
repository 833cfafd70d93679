"""Ownership that tags cannot forge: what someone else tags as this tool's is never changed or deleted, and
what the tool made is never left behind by a rollback or lost to the sweep.

Each attack is played as a hostile account member would: the tags are written with RDS's own API by another
principal (a plain boto3 client, not the function), the requests are delivered as CloudFormation delivers
them.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from aurora_clone import sweep_runner
from aurora_clone.cfn.response import put_response
from aurora_clone.engine import RequestEngine
from aurora_clone.ownership import LOGICAL_ID_TAG, MANAGED_BY_TAG, MANAGED_BY_VALUE, STACK_ID_TAG
from aurora_clone.pool.model import COPY_OF_TAG
from aurora_clone.pool.plan import PoolPolicy
from aurora_clone.pool_runner import run_pool
from aurora_clone.rds import RdsGateway
from aurora_clone.request_record import resource_key
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.sweep import plan_sweep
from aurora_clone.wake_queue import WakeUpQueue
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, instance_ids, make_copy
from tests.moto_gaps import AwsGaps

NO_GRACE = timedelta(0)


def arn_of(cluster_id: str) -> str:
    cluster = describe_cluster(cluster_id)
    assert cluster is not None, f"no cluster {cluster_id}"
    return str(cluster["DBClusterArn"])


def tags_of(arn: str) -> dict[str, str]:
    listed = boto3.client("rds").list_tags_for_resource(ResourceName=arn)["TagList"]
    return {tag["Key"]: tag["Value"] for tag in listed}


def forge_ownership(arn: str, stack_id: str, logical_id: str = "TestDatabase") -> None:
    """Another principal, allowed nothing but rds:AddTagsToResource, marks a cluster or instance as a clone."""
    boto3.client("rds").add_tags_to_resource(
        ResourceName=arn,
        Tags=[
            {"Key": MANAGED_BY_TAG, "Value": MANAGED_BY_VALUE},
            {"Key": STACK_ID_TAG, "Value": stack_id},
            {"Key": LOGICAL_ID_TAG, "Value": logical_id},
        ],
    )


@pytest.fixture
def forged_production(source: Source, cfn: FakeCloudFormation) -> Iterator[Source]:
    """Production and its writer, tagged as this resource's clone by someone else."""
    forge_ownership(source.arn, cfn.stack_id)
    writer = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=source.writer)["DBInstances"][0]
    forge_ownership(writer["DBInstanceArn"], cfn.stack_id)
    yield source
    assert describe_cluster(source.identifier) is not None, "production was deleted"
    assert source.writer in instance_ids(), "production's writer was deleted"


def make_clone(cfn: FakeCloudFormation, world: AwsGaps, source: Source, **properties: Any) -> str:
    answer = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, **properties})), world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return str(answer["PhysicalResourceId"])


# -- tags alone do not make a cluster the tool's --------------------------------------------------------


def test_sweep_leaves_a_production_cluster_tagged_with_a_gone_stack_alone(
    cfn: FakeCloudFormation, world: AwsGaps, forged_production: Source
) -> None:
    cfn.forget_stack()  # the stack the forged tags name does not exist

    run = sweep_runner.run_sweep(RdsGateway(), datetime.now(UTC), grace=NO_GRACE)
    world.settle()

    assert run.plan.orphans == () and run.deleting == ()
    assert run.forged == (forged_production.identifier,)
    assert tags_of(forged_production.arn)[MANAGED_BY_TAG] == MANAGED_BY_VALUE  # reported, not even untagged


def test_delete_naming_a_forged_cluster_answers_success_and_deletes_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, forged_production: Source
) -> None:
    before = cluster_ids(), instance_ids()

    answer = cfn.run(cfn.send(cfn.event("Delete", {"SourceClusterId": "x"}, physical_id=forged_production.identifier)))
    world.settle()

    assert answer["Status"] == "SUCCESS"
    assert (cluster_ids(), instance_ids()) == before


def test_in_place_update_of_a_forged_cluster_fails_and_changes_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, forged_production: Source
) -> None:
    tags_before = tags_of(forged_production.arn)
    properties = {"SourceClusterId": forged_production.identifier, "InstanceCount": "2", "Tags": []}

    answer = cfn.run(
        cfn.send(cfn.event("Update", properties, physical_id=forged_production.identifier, old_properties=properties))
    )

    assert answer["Status"] == "FAILED" and "was not created by this resource" in answer["Reason"]
    assert answer["PhysicalResourceId"] == forged_production.identifier
    assert tags_of(forged_production.arn) == tags_before
    assert instance_ids() == {forged_production.writer}


def test_a_forged_copy_is_neither_cloned_from_nor_purged(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    stale = datetime.now(UTC) - timedelta(days=30)
    forged = make_copy(
        source,
        "aurora-clone-planted-copy",
        datetime.now(UTC),
        world,
        {MANAGED_BY_TAG: MANAGED_BY_VALUE, COPY_OF_TAG: source.identifier},
        recorded=False,
    )
    old_forged = make_copy(
        source,
        "aurora-clone-planted-old",
        stale,
        world,
        {MANAGED_BY_TAG: MANAGED_BY_VALUE, COPY_OF_TAG: source.identifier},
        recorded=False,
    )

    clone = make_clone(cfn, world, source, PurgeObsoleteCopies="true", MaxCopyAge="P1D")
    pool = run_pool(
        PoolPolicy(source.identifier, spare_slots=0, max_copy_age=timedelta(days=1)), RdsGateway(), datetime.now(UTC)
    )
    world.settle()

    assert tags_of(arn_of(clone))["aurora-clone:cloned-from"] == source.identifier
    assert {forged, old_forged} <= cluster_ids()
    assert pool.result.deleted == () and pool.result.instances_deleted == ()


# -- what a template and a user keep ------------------------------------------------------------------


def test_an_explicit_cluster_id_without_the_prefix_is_refused_at_once(cfn: FakeCloudFormation, source: Source) -> None:
    before = cluster_ids()

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "ClusterId": "qa-db"})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "ClusterId 'qa-db' must start with 'aurora-clone-'" in answer["Reason"]
    assert cluster_ids() == before


def test_an_in_place_update_keeps_tags_set_by_hand(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> None:
    properties = {"SourceClusterId": source.identifier, "Tags": [{"Key": "team", "Value": "qa"}]}
    clone = make_clone(cfn, world, source, Tags=properties["Tags"])
    arn = arn_of(clone)
    boto3.client("rds").add_tags_to_resource(
        ResourceName=arn, Tags=[{"Key": "aurora-clone-retain", "Value": "true"}, {"Key": "cost-center", "Value": "7"}]
    )
    changed = {"SourceClusterId": source.identifier, "Tags": [{"Key": "team", "Value": "payments-qa"}]}

    answer = cfn.run(
        cfn.send(cfn.event("Update", changed, physical_id=clone, old_properties=properties)), world.advance
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    tags = tags_of(arn)
    assert tags["team"] == "payments-qa"
    assert tags["aurora-clone-retain"] == "true" and tags["cost-center"] == "7"


def test_the_sweep_waits_while_the_stack_is_updating() -> None:
    from aurora_clone.pool.model import ClusterFacts, Snapshot

    stack = "arn:aws:cloudformation:us-east-1:123456789012:stack/qa/x"
    tags = {MANAGED_BY_TAG: MANAGED_BY_VALUE, STACK_ID_TAG: stack, LOGICAL_ID_TAG: "Db"}
    old = ClusterFacts("aurora-clone-old", "available", "aurora-mysql", "g", datetime(2026, 1, 1, tzinfo=UTC), tags)
    snapshot = Snapshot((old,))
    now = datetime(2026, 1, 2, tzinfo=UTC)
    names_new = {(stack, "Db"): "aurora-clone-new"}

    for status in ("UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS", "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"):
        plan = plan_sweep(snapshot, {stack: status}, now, NO_GRACE, resource_ids=names_new)
        assert plan.orphans == () and any(status in line for line in plan.kept)
    settled = plan_sweep(snapshot, {stack: "UPDATE_COMPLETE"}, now, NO_GRACE, resource_ids=names_new)
    assert [orphan.cluster_id for orphan in settled.orphans] == ["aurora-clone-old"]  # the check can say yes


# -- nothing a rollback leaves behind ---------------------------------------------------------------


def test_a_rollback_delete_after_a_late_success_deletes_the_clone_cloudformation_never_took(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    clone = make_clone(cfn, world, source)  # SUCCESS was PUT, after CloudFormation stopped waiting
    made_up = f"{cfn.stack_name}-TestDatabase-ABCDEF123456"  # the id CloudFormation made for its rollback

    answer = cfn.run(
        cfn.send(
            cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=made_up),
            stack_status="ROLLBACK_IN_PROGRESS",
        ),
        world.advance,
    )
    world.settle()

    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] == made_up
    assert clone not in cluster_ids()
    assert cluster_ids() == {source.identifier}


def test_a_rollback_delete_during_the_creates_restore_deletes_what_it_makes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    create = cfn.event("Create", {"SourceClusterId": source.identifier})
    rollback = cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id="CloudFormationsOwnId")
    restore = RdsGateway.restore_clone
    rolled_back: list[str] = []

    def restore_then_roll_back(self: RdsGateway, **options: Any) -> None:
        restore(self, **options)
        if not rolled_back:  # CloudFormation gives up while the Create's first step is still in RDS
            rolled_back.append(options["cluster_id"])
            cfn.send(rollback, stack_status="ROLLBACK_IN_PROGRESS")

    monkeypatch.setattr(RdsGateway, "restore_clone", restore_then_roll_back)
    cfn.send(create)
    answer = cfn.run(cfn.sent(rollback), world.advance)
    world.settle()

    assert rolled_back and answer["Status"] == "SUCCESS"
    assert cluster_ids() == {source.identifier}


def test_the_clone_keeps_its_owner_until_the_answer_is_put(
    world: AwsGaps, cfn: FakeCloudFormation, clock: FakeClock, source: Source
) -> None:
    store = RequestStore()
    owners_during_put: list[str | None] = []

    def sender(url: str, body: dict[str, Any]) -> None:
        owners_during_put.append(store.owner(str(body["PhysicalResourceId"])))
        put_response(url, body)

    def clone_resource(hooks: EngineHooks) -> CloneResource:
        return CloneResource(RdsGateway(), clock, hooks=hooks)

    engine = RequestEngine(clone_resource, store, WakeUpQueue(), clock=clock, run_clock=clock, sender=sender)
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    cfn.hold(event)
    engine.on_request(event, "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone")
    for _ in range(20):
        if owners_during_put:
            break
        world.advance()
        for rds_event in world.take_rds_events():
            engine.on_rds_event(rds_event)

    answer = cfn.answer(cfn.sent(event))
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert owners_during_put and owners_during_put[0] is not None  # a sweep meanwhile sees it owned
    assert store.owner(str(answer["PhysicalResourceId"])) is None  # released once PUT
    assert store.unanswered_clones(resource_key(cfn.stack_id, "TestDatabase"))  # still findable: see above
