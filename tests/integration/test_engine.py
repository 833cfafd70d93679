"""The request engine driven as CloudFormation, RDS, EventBridge and a hostile account member drive it:
events late, lost, duplicated or out of order; stale and forged wake-ups; faults where botocore sees real
error answers; an answer CloudFormation refuses."""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from typing import Any

import boto3
import pytest
from botocore.config import Config

from aurora_clone import handler as handler_module
from aurora_clone.engine import RequestEngine
from aurora_clone.naming import request_token
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource
from aurora_clone.wake_queue import WakeUpQueue
from aurora_clone.wake_rules import START_GRACE_SECONDS
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids, describe_cluster, instance_ids
from tests.moto_gaps import AwsGaps


def record_of(cfn: FakeCloudFormation, event: dict[str, Any]) -> dict[str, Any]:
    token = request_token(event["StackId"], event["RequestId"], event["LogicalResourceId"])
    item = boto3.client("dynamodb").get_item(
        TableName="aurora-clone-requests", Key={"pk": {"S": f"request#{token}"}, "sk": {"S": "request"}}
    )["Item"]
    return {"token": token, "wake": item.get("wake", {}).get("S", ""), "state": item["state"]["S"]}


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": f"m{n}", "receiptHandle": f"r{n}", "body": body, "eventSource": "aws:sqs"}
            for n, body in enumerate(bodies)
        ]
    }


def shape_of(cluster_id: str) -> tuple[Any, ...]:
    cluster = describe_cluster(cluster_id) or {}
    members = sorted(m["DBInstanceIdentifier"] for m in cluster.get("DBClusterMembers", []))
    classes = sorted((i["DBInstanceIdentifier"], i["DBInstanceClass"]) for i in all_instances())
    return cluster.get("Status"), cluster.get("Port"), members, classes


def all_instances() -> list[Mapping[str, Any]]:
    return list(boto3.client("rds").describe_db_instances()["DBInstances"])


def until_instance_added(cfn: FakeCloudFormation, world: AwsGaps) -> None:
    for _ in range(10):
        if any(i.endswith("-1") for i in instance_ids()):
            return
        cfn.step()
    raise AssertionError("no instance was added")


def test_rds_event_completes_the_create_without_waiting_for_the_fallback(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    until_instance_added(cfn, world)
    world.settle()  # the writer is available now; RDS sent "Finished DB instance backup"

    cfn.deliver_rds_events()  # no wake-up delivered

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert cfn.nothing_left()


def test_every_rds_event_lost_the_fallback_alone_finishes(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    created = cfn.run(cfn.send(cfn.event("Create", properties)), events=False)
    deleted = cfn.run(
        cfn.send(cfn.event("Delete", properties, physical_id=created["PhysicalResourceId"])), events=False
    )

    assert created["Status"] == "SUCCESS" and deleted["Status"] == "SUCCESS"
    assert cluster_ids() == {source.identifier}
    assert cfn.nothing_left()


def test_events_duplicated_out_of_order_and_late_change_nothing_after_the_answer(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    sent = cfn.send(cfn.event("Create", properties))
    seen: list[dict[str, Any]] = []
    while cfn.answer(sent) is None:
        world.advance()
        events = world.take_rds_events()
        seen += events
        cfn.deliver_rds_events(list(reversed(events)) * 2)  # out of order, twice
        cfn.wake_up()
    calls = (
        sum(world.rds_calls.values()) - world.rds_calls["DescribeDBClusters"] - world.rds_calls["DescribeDBInstances"]
    )

    cfn.deliver_rds_events(seen * 2)  # every event again, late

    assert len(cfn.answers(sent)) == 1 and cfn.answer(sent)["Status"] == "SUCCESS"  # type: ignore[index]
    changed = sum(world.rds_calls.values()) - world.rds_calls["DescribeDBClusters"]
    assert changed - world.rds_calls["DescribeDBInstances"] == calls, "a late event acted"
    assert cfn.nothing_left()


def test_event_before_describe_shows_it_brings_a_recheck_not_the_fallback(
    cfn: FakeCloudFormation, source: Source
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    until_instance_added(cfn, cfn.world)
    cfn.world._rules.describe_lag = 1.0  # from now on a stage's end shows to Describe one step late
    cfn.world.advance()  # writer created -> backing-up, shown late
    cfn.world.advance()  # backing-up -> available: RDS-EVENT-0002, Describe still shows backing-up
    for event in cfn.world.take_rds_events():
        cfn.deliver_rds_events([event])
    assert cfn.answer(sent) is None
    assert cfn.queued() == 2, "the fallback and a recheck soon after the event"
    cfn.world.pass_time()  # RDS does not move: what the event said now shows to Describe

    cfn.wake_up()

    assert cfn.answer(sent) is not None and cfn.answer(sent)["Status"] == "SUCCESS"  # type: ignore[index]


def test_late_wake_up_of_an_answered_create_does_not_undo_a_later_update(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier, "InstanceClass": "db.r6g.large"}
    create = cfn.event("Create", properties)
    cfn.send(create)
    create_wake = record_of(cfn, create)
    clone_id = cfn.run(cfn.sent(create))["PhysicalResourceId"]
    bigger = {**properties, "InstanceClass": "db.r6g.xlarge"}
    cfn.run(cfn.send(cfn.event("Update", bigger, physical_id=clone_id, old_properties=properties)))
    modifies = world.rds_calls["ModifyDBInstance"]

    late = cfn.invoke(sqs_event(json.dumps({"request": create_wake["token"], "wake": create_wake["wake"]})))
    cfn.invoke(sqs_event(json.dumps({"request": create_wake["token"], "recheck": True})))
    world.settle()

    assert late == {"batchItemFailures": []}
    assert world.rds_calls["ModifyDBInstance"] == modifies
    classes = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=f"{clone_id}-1")["DBInstances"]
    assert classes[0]["DBInstanceClass"] == "db.r6g.xlarge"
    assert len(cfn.answers(cfn.sent(create))) == 1


def test_forged_wake_ups_and_events_cannot_act_on_another_stacks_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    victim_id = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})))["PhysicalResourceId"]
    before = shape_of(victim_id)
    calls = dict(world.rds_calls)
    forged_job = {"kind": "converge", "cluster_id": victim_id, "desired": {"port": 1234, "instance_count": 3}}

    results = [
        cfn.invoke(sqs_event(json.dumps({"request": "0123456789ab", "wake": "f" * 32, "job": forged_job}))),
        cfn.invoke(sqs_event(json.dumps({"request": "0123456789ab", "recheck": True}))),
        cfn.invoke(sqs_event("not json", "{}", json.dumps({"cluster_id": victim_id}))),
        cfn.invoke(
            {
                "source": "aws.rds",
                "detail-type": "RDS DB Cluster Event",
                "detail": {"EventID": "RDS-EVENT-0170", "SourceType": "CLUSTER", "SourceIdentifier": victim_id},
            }
        ),
        cfn.invoke({"AuroraCloneJob": forged_job, "CrHelperPoll": True}),
        cfn.invoke({}),
    ]

    assert results[:3] == [{"batchItemFailures": []}] * 3 and results[3:] == [None] * 3
    changes = {k: v for k, v in world.rds_calls.items() if not k.startswith("Describe") and v != calls.get(k, 0)}
    assert changes == {}
    assert shape_of(victim_id) == before


def test_stray_event_in_a_warm_function_does_not_reach_the_next_answer(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    first = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": "no-such-cluster"})))
    puts = len(cfn.server.raw)

    cfn.invoke({})
    cfn.invoke({"source": "aws.rds", "detail-type": "RDS DB Cluster Event", "detail": {}})

    assert len(cfn.server.raw) == puts, "a stray event was answered"
    second = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})))
    assert first["Status"] == "FAILED" and second["Status"] == "SUCCESS"


@pytest.mark.parametrize(
    "status,code", [(400, "ThrottlingException"), (500, "InternalFailure"), (503, "ServiceUnavailable")]
)
def test_transient_rds_errors_beyond_the_retries_never_fail_the_request(
    cfn: FakeCloudFormation,
    world: AwsGaps,
    source: Source,
    status: int,
    code: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Fewer tries than the function's 8, so the test does not wait out the backoff; they still run as on AWS.
    fewer = Config(retries={"mode": "adaptive", "max_attempts": 2})
    monkeypatch.setattr("aurora_clone.aws_clients.CLIENT_CONFIG", fewer)
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    world.fail_next("DescribeDBClusters", times=20, status=status, code=code)  # outlasts botocore's retries

    world.advance()
    cfn.deliver_rds_events()
    cfn.wake_up()

    assert cfn.answer(sent) is None, "a transient error must not be answered"
    answer = cfn.run(sent)
    assert answer["Status"] == "SUCCESS"
    assert cfn.nothing_left()


def test_answer_refused_by_cloudformation_then_its_delete_with_a_made_up_id_removes_the_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {"SourceClusterId": source.identifier}
    sent = cfn.send(cfn.event("Create", properties))
    cfn.server.refusals.extend([403])  # the pre-signed URL expired: CloudFormation never gets the answer
    for _ in range(20):
        if not cfn.server.refusals:
            break
        cfn.step()
    assert cfn.answer(sent) is None
    (clone_id,) = cluster_ids() - {source.identifier}

    # CloudFormation's ServiceTimeout passes; its rollback Delete carries an id of its own making.
    delete = cfn.run(cfn.send(cfn.event("Delete", properties, physical_id="integration-env-TestDatabase-X1Y2Z3")))

    assert delete["Status"] == "SUCCESS"
    assert clone_id not in cluster_ids()
    assert cluster_ids() == {source.identifier}
    assert cfn.nothing_left()


def test_transient_error_in_the_first_step_is_started_again_by_the_next_wake_up(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "aurora_clone.aws_clients.CLIENT_CONFIG", Config(retries={"mode": "adaptive", "max_attempts": 2})
    )
    world.fail_next("RestoreDBClusterToPointInTime", times=3, status=503, code="ServiceUnavailable")
    event = cfn.event("Create", {"SourceClusterId": source.identifier})

    with pytest.raises(RdsError):
        cfn.send(event)  # the invocation fails, as Lambda would see it (and retry it)

    answer = cfn.run(cfn.sent(event))
    assert answer["Status"] == "SUCCESS"
    assert len(cluster_ids() - {source.identifier}) == 1
    assert cfn.nothing_left()


def test_every_mistake_of_a_template_is_answered_in_the_first_invocation_and_nothing_is_made(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    properties = {
        "SourceClusterId": source.identifier,
        "InstanceClas": "db.r6g.large",
        "InstanceClass": "db.r6g.huge",
        "Tags": [{"Key": "team", "Value": {"name": "qa"}}],
    }

    sent = cfn.send(cfn.event("Create", properties))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    for named in ("'InstanceClas'", "did you mean 'InstanceClass'", "db.r6g.huge", "Tags[0].Value"):
        assert named in answer["Reason"]
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0
    assert cluster_ids() == {source.identifier}
    assert cfn.nothing_left()


def test_a_first_step_still_running_is_not_started_again_however_far_the_world_clock_ran(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch, clock: FakeClock
) -> None:
    # In the local world the world's clock runs faster than code: the run clock (real time, which the
    # function's Timeout counts) decides whether the invocation that began the first step may still run.
    run_clock = FakeClock()
    monkeypatch.setattr(
        handler_module,
        "engine",
        lambda: RequestEngine(
            lambda hooks: CloneResource(RdsGateway(), clock, hooks=hooks),
            RequestStore(),
            WakeUpQueue(),
            clock=clock,
            run_clock=run_clock,
        ),
    )
    restoring, release = threading.Event(), threading.Event()
    restores: list[str] = []

    def slow_restore(params: dict[str, Any], **_: Any) -> None:
        restores.append(params["DBClusterIdentifier"])
        restoring.set()
        assert release.wait(30), "never released"

    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    boto3.DEFAULT_SESSION.events.register("provide-client-params.rds.RestoreDBClusterToPointInTime", slow_restore)
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    first = threading.Thread(target=cfn.send, args=(event,))
    first.start()
    assert restoring.wait(30)

    clock.advance(START_GRACE_SECONDS * 10)  # the world's clock: far past the grace
    world.pass_time()
    cfn.wake_up()  # the fallback comes while the first step is still in its restore
    release.set()
    first.join(30)
    answer = cfn.run(cfn.sent(event))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert len(restores) == 1, restores
    assert len(cluster_ids() - {source.identifier}) == 1
