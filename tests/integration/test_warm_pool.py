"""Warm clones: the pool keeps clones of a shape ready, a Create with WarmPool claims one and answers at once,
its pool is woken to refill, and every race (two claims, a claim against a pool run) gives each clone one owner.

Requests are delivered as CloudFormation delivers them; the pool runs as the scheduled function runs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from aurora_clone import cli
from aurora_clone import handler as handler_module
from aurora_clone.engine import RequestEngine
from aurora_clone.maintenance import Asked, pools_asked_for
from aurora_clone.ownership import FROM_WARM_POOL_TAG, STACK_ID_TAG, WARM_POOL_TAG
from aurora_clone.pool.model import DATA_TIME_TAG
from aurora_clone.pool.plan import PoolPolicy
from aurora_clone.pool.warm import DEFAULT_WARM_MAX_AGE, WarmShape, plan_warm
from aurora_clone.pool_runner import (
    PoolRun,
    carry_out_warm,
    gather,
    retire_warm_clones,
    run_pool,
    warm_members,
)
from aurora_clone.pool_runner import logger as pool_logger
from aurora_clone.pool_waker import PoolWaker
from aurora_clone.properties import CloneProperties
from aurora_clone.rds import RdsGateway
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.wake_queue import WakeUpQueue
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, instance_ids
from tests.moto_gaps import AwsGaps

SHAPE = "ci"


class RecordingWaker(PoolWaker):
    """The pool function's invoke, recorded instead of sent."""

    def __init__(self) -> None:
        super().__init__("pool-function")
        self.woken: list[str] = []

    def wake(self, source_id: str) -> None:
        self.woken.append(source_id)


@pytest.fixture
def waker(world: AwsGaps, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> RecordingWaker:
    recording = RecordingWaker()

    def engine() -> RequestEngine:
        def clone_resource(hooks: EngineHooks) -> CloneResource:
            return CloneResource(RdsGateway(), clock, hooks=hooks, pool_waker=recording)

        return RequestEngine(clone_resource, RequestStore(), WakeUpQueue(), clock=clock, run_clock=clock)

    monkeypatch.setattr(handler_module, "engine", engine)
    return recording


def policy_of(source: Source, count: int = 2, **properties: Any) -> PoolPolicy:
    shape = WarmShape(SHAPE, count, DEFAULT_WARM_MAX_AGE, CloneProperties(source.identifier, **properties))
    return PoolPolicy(source.identifier, spare_slots=0, warm=(shape,))


def run(policy: PoolPolicy, now: datetime | None = None) -> PoolRun:
    return run_pool(policy, RdsGateway(), now or datetime.now(UTC))


def fill(policy: PoolPolicy, world: AwsGaps, now: datetime | None = None) -> list[str]:
    """Pool runs (each followed by RDS's next step) until every warm clone of the shape is ready."""
    for _ in range(12):
        done = run(policy, now)
        assert done.result.errors == (), done.result.errors
        if len(done.result.warm_ready) == policy.warm[0].count:
            return sorted(done.result.warm_ready)
        world.advance()
    raise AssertionError("the warm pool never filled")


def tags_of(cluster_id: str) -> dict[str, str]:
    cluster = describe_cluster(cluster_id)
    assert cluster is not None, cluster_id
    return {tag["Key"]: tag["Value"] for tag in cluster["TagList"]}


def create(cfn: FakeCloudFormation, source: Source, logical_id: str = "TestDatabase", **properties: Any) -> Any:
    return cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, **properties}, logical_id=logical_id))


@pytest.fixture
def warm(world: AwsGaps, source: Source) -> Iterator[list[str]]:
    yield fill(policy_of(source), world)


# -- the pool keeps them ready --------------------------------------------------------------------------------------


def test_a_pool_run_makes_its_warm_clones_records_them_and_a_second_run_adds_nothing(
    world: AwsGaps, source: Source, warm: list[str]
) -> None:
    again = run(policy_of(source))
    records = RequestStore().made_many(warm)

    assert len(warm) == 2 and all(name.startswith("aurora-clone-prod-db-warm-ci-") for name in warm)
    assert {tags_of(name)[WARM_POOL_TAG] for name in warm} == {SHAPE}
    assert {records[name].made_for for name in warm} == {"warm"}
    assert all(records[name].instances for name in warm), "each warm clone's instance is recorded"
    assert again.result.warm_made == () and sorted(again.result.warm_ready) == warm
    assert STACK_ID_TAG not in tags_of(warm[0]), "a warm clone belongs to no stack, so the sweep never sees it"


def test_warm_clones_of_a_pool_no_longer_in_the_document_are_deleted(
    world: AwsGaps, source: Source, warm: list[str]
) -> None:
    for _ in range(6):
        retire_warm_clones((), RdsGateway(), datetime.now(UTC))
        world.advance()

    assert not set(warm) & cluster_ids()
    assert not any(name.startswith("aurora-clone-prod-db-warm-") for name in instance_ids())


def test_pool_apply_of_a_document_without_pools_retires_every_warm_clone(
    world: AwsGaps, source: Source, warm: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    empty = tmp_path / "pools.json"
    empty.write_text('{"pools": []}')

    for _ in range(4):
        assert cli.main(["pool", "apply", "--config", str(empty)]) == 0
        world.advance()

    assert "Warm clones being deleted" in capsys.readouterr().out
    assert not set(warm) & cluster_ids()


def test_a_warm_clone_older_than_max_age_is_replaced(world: AwsGaps, source: Source, warm: list[str]) -> None:
    later = datetime.now(UTC) + DEFAULT_WARM_MAX_AGE + timedelta(minutes=5)

    replaced = run(policy_of(source), later)
    for _ in range(6):
        world.advance()
        run(policy_of(source), later)

    assert len(replaced.result.warm_made) == 2
    assert not set(warm) & cluster_ids()
    assert len(gather(RdsGateway(), RequestStore()).warm_clones_of(source.identifier)) == 2


# -- claiming one ---------------------------------------------------------------------------------------------------


def test_a_create_with_warm_pool_claims_a_ready_clone_answers_at_once_and_wakes_its_pool(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    answer = cfn.answer(create(cfn, source, WarmPool=SHAPE))

    assert answer is not None and answer["Status"] == "SUCCESS", answer
    claimed = answer["PhysicalResourceId"]
    tags = tags_of(claimed)
    assert claimed in warm
    assert answer["Data"]["FromWarmPool"] == "true"
    assert answer["Data"]["DataTimestamp"] == tags[DATA_TIME_TAG]
    assert tags[STACK_ID_TAG] == cfn.stack_id and tags[FROM_WARM_POOL_TAG] == SHAPE and WARM_POOL_TAG not in tags
    made = RequestStore().made(claimed)
    assert made is not None and made.is_clone_of(cfn.stack_id, "TestDatabase")
    assert waker.woken == [source.identifier]


def test_a_claimed_clone_is_deleted_with_its_stack_and_never_goes_back_to_the_pool(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    claimed = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)["PhysicalResourceId"]
    instances = {name for name in instance_ids() if name.startswith(claimed)}
    assert claimed in warm and instances

    deleted = cfn.run(
        cfn.send(cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=claimed)), world.advance
    )
    world.settle()

    assert deleted["Status"] == "SUCCESS", deleted
    assert claimed not in cluster_ids() and not instances & instance_ids()
    assert RequestStore().made(claimed) is None
    assert [m.cluster_id for m in warm_members(source.identifier, gather(RdsGateway(), RequestStore()))] == [
        name for name in warm if name != claimed
    ]


def test_the_pool_refills_after_a_claim(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)

    refilled = run(policy_of(source))

    assert len(refilled.result.warm_made) == 1
    assert pools_asked_for({"refill": waker.woken[0]}) == Asked(sweep=False, only=source.identifier)


def test_a_paused_serverless_shape_is_claimed_and_the_claim_sets_the_resources_capacities(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, waker: RecordingWaker
) -> None:
    paused = {"instance_class": "db.serverless", "serverless_v2_min_capacity": 0, "serverless_v2_max_capacity": 4}
    (warm_id,) = fill(policy_of(source, count=1, **paused), world)
    before = describe_cluster(warm_id)
    assert before is not None and before["ServerlessV2ScalingConfiguration"]["MinCapacity"] == 0

    answer = cfn.run(
        create(
            cfn,
            source,
            WarmPool=SHAPE,
            InstanceClass="db.serverless",
            ServerlessV2MinCapacity="0.5",
            ServerlessV2MaxCapacity="8",
        ),
        world.advance,
    )

    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] == warm_id and answer["Data"]["FromWarmPool"] == "true"
    after = describe_cluster(warm_id)
    assert after is not None
    assert after["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8.0}


def test_an_empty_warm_pool_falls_back_to_a_cold_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, waker: RecordingWaker
) -> None:
    answer = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)

    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["FromWarmPool"] == "false"
    assert waker.woken == []


def test_a_shape_mismatch_falls_back_to_a_cold_clone_and_leaves_the_warm_ones(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    answer = cfn.run(create(cfn, source, WarmPool=SHAPE, InstanceCount="2"), world.advance)

    assert answer["Status"] == "SUCCESS", answer
    assert answer["Data"]["FromWarmPool"] == "false" and answer["PhysicalResourceId"] not in warm
    assert all(tags_of(name).get(WARM_POOL_TAG) == SHAPE for name in warm)


def test_warm_pool_with_an_explicit_cluster_id_is_refused_at_once_and_nothing_is_made(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    before = cluster_ids()

    answer = cfn.answer(create(cfn, source, WarmPool=SHAPE, ClusterId="aurora-clone-mine"))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "WarmPool cannot be used with ClusterId" in answer["Reason"]
    assert cluster_ids() == before and all(tags_of(name).get(WARM_POOL_TAG) == SHAPE for name in warm)


def test_two_creates_racing_for_the_last_warm_clone_get_one_each_way(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, waker: RecordingWaker, monkeypatch: pytest.MonkeyPatch
) -> None:
    (last,) = fill(policy_of(source, count=1), world)
    claim = RequestStore.claim_warm

    def another_request_first(store: RequestStore, cluster_id: str, shape: str, mine: MadeRecord) -> bool:
        # Between this request's choice and its write, another request's write lands.
        monkeypatch.setattr(RequestStore, "claim_warm", claim)
        other = MadeRecord(cluster_id, "clone", request="other", stack_id="other-stack", logical_id="Db", made_at=1)
        assert claim(store, cluster_id, shape, other)
        return claim(store, cluster_id, shape, mine)

    monkeypatch.setattr(RequestStore, "claim_warm", another_request_first)
    answer = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)

    made = RequestStore().made(last)
    assert answer["Status"] == "SUCCESS", answer
    assert answer["PhysicalResourceId"] != last and answer["Data"]["FromWarmPool"] == "false"
    assert made is not None and made.request == "other", "the warm clone has exactly one owner"


def test_a_claim_is_safe_against_a_pool_run_planned_before_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    now = datetime.now(UTC) + DEFAULT_WARM_MAX_AGE + timedelta(minutes=1)
    policy = policy_of(source)
    members = warm_members(source.identifier, gather(RdsGateway(), RequestStore()))
    stale = plan_warm(policy, members, now, free_now=10)  # both are old: both to be deleted
    claimed = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)["PhysicalResourceId"]

    result = carry_out_warm(policy, stale, members, RdsGateway(), now, pool_logger, RequestStore())

    assert set(stale.to_delete) == set(warm)
    kept = describe_cluster(claimed)
    assert kept is not None and kept["Status"] == "available"
    assert {name for name in instance_ids() if name.startswith(claimed)}, "the stack's clone keeps its instance"
    assert any(claimed in error for error in result.errors), result.errors


def test_overlapping_refills_planned_on_one_snapshot_make_count_and_keep_the_stacks_slots(
    world: AwsGaps, source: Source
) -> None:
    # Every claim wakes a refill: runs overlap, each planned before it holds the slot lock.
    policy = PoolPolicy(source.identifier, spare_slots=11, warm=policy_of(source, count=3).warm)
    now = datetime.now(UTC)
    members = warm_members(source.identifier, gather(RdsGateway(), RequestStore()))
    stale = plan_warm(policy, members, now, free_now=15)

    made = [
        carry_out_warm(policy, stale, members, RdsGateway(), now, pool_logger, RequestStore()).warm_made
        for _ in range(3)
    ]

    assert dict(stale.to_make) == {SHAPE: 3}, "the plan alone would have made 3 on each run"
    assert sum(len(names) for names in made) == 3, made
    assert len([c for c in cluster_ids() if WARM_POOL_TAG in tags_of(c)]) == 3


def test_a_refill_never_takes_the_slots_kept_for_stacks(world: AwsGaps, source: Source) -> None:
    policy = PoolPolicy(source.identifier, spare_slots=13, warm=policy_of(source, count=3).warm)
    now = datetime.now(UTC)
    stale = plan_warm(policy, [], now, free_now=15)  # planned before the source's slots were taken

    result = carry_out_warm(policy, stale, [], RdsGateway(), now, pool_logger, RequestStore())

    # 15 free and 13 kept for stacks: two warm clones, not the three the shape asks for
    assert len(result.warm_made) == 2, result.warm_made
    again = carry_out_warm(policy, stale, [], RdsGateway(), now, pool_logger, RequestStore())
    assert again.warm_made == () and again.errors == ()


def test_a_warm_clone_the_pool_is_deleting_is_not_claimed(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, warm: list[str], waker: RecordingWaker
) -> None:
    later = datetime.now(UTC) + DEFAULT_WARM_MAX_AGE + timedelta(minutes=1)
    retiring = run(PoolPolicy(source.identifier, spare_slots=0), later)  # no shapes: every warm clone goes

    answer = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)

    assert set(retiring.result.instances_deleted) == {f"{name}-1" for name in warm}
    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] not in warm
    assert answer["Data"]["FromWarmPool"] == "false"


def test_a_forged_warm_tag_is_never_claimed_nor_deleted(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, waker: RecordingWaker
) -> None:
    # Someone tags production itself as a warm clone of its own pool.
    boto3.client("rds").add_tags_to_resource(
        ResourceName=source.arn,
        Tags=[
            {"Key": "aurora-clone:managed-by", "Value": "aurora-clone"},
            {"Key": "aurora-clone:source-cluster", "Value": source.identifier},
            {"Key": WARM_POOL_TAG, "Value": SHAPE},
        ],
    )

    for _ in range(3):
        run(PoolPolicy(source.identifier, spare_slots=0))
        world.advance()
    answer = cfn.run(create(cfn, source, WarmPool=SHAPE), world.advance)

    assert answer["Status"] == "SUCCESS" and answer["PhysicalResourceId"] != source.identifier
    assert describe_cluster(source.identifier) is not None and source.writer in instance_ids()


def test_pool_status_counts_free_slots_on_clone_sources_only(
    world: AwsGaps, source: Source, warm: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["pool", "status", source.identifier]) == 0

    lines = capsys.readouterr().out.splitlines()
    rows = {line.split()[0]: line.split() for line in lines if line.split() and line.split()[0] in warm}
    assert {name: row[-2:] for name, row in rows.items()} == {name: ["-", "-"] for name in warm}
    # The two warm clones hold two of the source's slots; they take no clones themselves.
    assert any("Clone slots free now: 13 " in line for line in lines), lines
