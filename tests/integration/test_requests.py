"""Every request is answered: bad input at once, duplicates once, deadlines before CloudFormation's."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aurora_clone import handler as handler_module
from aurora_clone.properties import MAX_USER_TAGS
from aurora_clone.rds import RdsGateway
from aurora_clone.wake_rules import START_GRACE_SECONDS
from tests.cloudformation import FakeCloudFormation
from tests.conftest import Source, cluster_ids, make_source
from tests.moto_gaps import AwsGaps

BAD_PROPERTIES = {
    "unknown-property": ({"SourceClusterId": "prod-db", "InstanceTyp": "db.r6g.large"}, "InstanceTyp"),
    "missing-source": ({"InstanceCount": "1"}, "SourceClusterId"),
    "source-not-found": ({"SourceClusterId": "no-such-cluster"}, "no-such-cluster"),
    "count-not-a-number": ({"SourceClusterId": "prod-db", "InstanceCount": "two"}, "InstanceCount"),
    "count-too-high": ({"SourceClusterId": "prod-db", "InstanceCount": "17"}, "InstanceCount"),
    "port-out-of-range": ({"SourceClusterId": "prod-db", "Port": "80"}, "Port"),
    "bad-cluster-id": ({"SourceClusterId": "prod-db", "ClusterId": "1-bad--id-"}, "ClusterId"),
    "bad-instance-class": ({"SourceClusterId": "prod-db", "InstanceClass": "large"}, "InstanceClass"),
    "reserved-tag": (
        {"SourceClusterId": "prod-db", "Tags": [{"Key": "aurora-clone:stack-id", "Value": "x"}]},
        "Tags",
    ),
    "tags-not-a-list": ({"SourceClusterId": "prod-db", "Tags": "env=qa"}, "Tags"),
    "bad-security-group": ({"SourceClusterId": "prod-db", "VpcSecurityGroupIds": ["default"]}, "VpcSecurityGroupIds"),
    "service-timeout-too-long": ({"SourceClusterId": "prod-db", "ServiceTimeout": "7200"}, "ServiceTimeout"),
}


@pytest.mark.parametrize("properties,named", BAD_PROPERTIES.values(), ids=BAD_PROPERTIES.keys())
def test_create_with_bad_input_fails_in_first_invocation_naming_property_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, properties: dict[str, Any], named: str
) -> None:
    sent = cfn.send(cfn.event("Create", properties))

    answer = cfn.answer(sent)
    assert answer is not None, "bad input must be answered in the first invocation"
    assert answer["Status"] == "FAILED"
    assert named in answer["Reason"]
    assert answer["PhysicalResourceId"] and answer["PhysicalResourceId"] not in cluster_ids()
    assert cluster_ids() == {source.identifier}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0
    assert cfn.nothing_left()


def test_create_from_source_without_instances_fails_at_once(cfn: FakeCloudFormation, world: AwsGaps) -> None:
    boto3.client("rds").create_db_cluster(
        DBClusterIdentifier="empty-db", Engine="aurora-postgresql", MasterUsername="u", MasterUserPassword="p4ssw0rd!"
    )
    world.settle()

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": "empty-db"})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "empty-db" in answer["Reason"] and "instance" in answer["Reason"]
    assert cluster_ids() == {"empty-db"}


def test_create_from_source_not_available_fails_at_once(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    world.set_cluster_status(source.identifier, "modifying")

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "'modifying'" in answer["Reason"]


def test_create_delivered_twice_makes_one_clone_and_gives_same_answer(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    first = cfn.send(event)
    world.advance()
    second = cfn.send(event)  # the same StackId and RequestId, again
    cfn.run(first, world.advance)

    answers = cfn.answers(first)
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1
    assert len(cluster_ids()) == 2
    assert {a["Status"] for a in answers} == {"SUCCESS"}
    assert len({json.dumps(a, sort_keys=True) for a in answers}) == 1
    assert second.key == first.key
    assert cfn.nothing_left()


def test_create_delivered_again_after_its_answer_is_not_answered_again(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    first = cfn.run(cfn.send(event), world.advance)

    cfn.send(event)

    answers = cfn.answers(cfn.send(event))
    assert answers == [first]
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1


def test_create_with_cluster_id_of_foreign_cluster_fails_and_rollback_delete_cannot_reach_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    make_source(world, "aurora-clone-someone-elses-db")
    properties = {"SourceClusterId": source.identifier, "ClusterId": "aurora-clone-someone-elses-db"}

    answer = cfn.answer(cfn.send(cfn.event("Create", properties)))
    assert answer is not None and answer["Status"] == "FAILED"
    assert "someone-elses-db" in answer["Reason"]
    assert answer["PhysicalResourceId"] != "aurora-clone-someone-elses-db"

    rollback = cfn.answer(cfn.send(cfn.event("Delete", properties, physical_id=answer["PhysicalResourceId"])))
    assert rollback is not None and rollback["Status"] == "SUCCESS"
    assert "aurora-clone-someone-elses-db" in cluster_ids()
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0


def test_create_with_long_logical_id_and_many_large_tags_stays_within_eventbridge_limits(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    tags = [{"Key": f"k{n:02d}" + "k" * 125, "Value": "v" * 256} for n in range(MAX_USER_TAGS)]
    logical_id = "Db" + "x" * 253

    answer = cfn.run(
        cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "Tags": tags}, logical_id=logical_id)),
        world.advance,
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert len(answer["PhysicalResourceId"]) <= 63
    assert cfn.nothing_left()


def test_request_not_done_before_service_timeout_fails_before_cloudformation_gives_up_with_the_clone_id(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: Any
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "ServiceTimeout": "900"}))
    (clone_id,) = cluster_ids() - {source.identifier}
    clock.advance(900 - 16)  # the last look before the answer's margin: still time
    cfn.step()
    assert cfn.answer(sent) is None
    clock.advance(1)  # now nothing could look again and answer in time: answer while CloudFormation listens
    cfn.step()

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert "ServiceTimeout" in answer["Reason"]
    assert answer["PhysicalResourceId"] == clone_id, "the rollback Delete must find and remove the clone"
    assert cfn.nothing_left()


def test_answer_refused_by_cloudformation_endpoint_is_retried(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("aurora_clone.cfn.response.time.sleep", lambda _seconds: None)
    cfn.server.refusals.extend([500, 503])

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": "no-such-cluster"})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert [entry[0].split("?")[0] for entry in cfn.server.raw[-3:]] == [
        f"/cloudformation-custom-resource-response-useast1/{answer['RequestId']}"
    ] * 3


class LambdaStopped(BaseException):
    """What the runtime does to an invocation that runs out of time: it ends, whatever it was doing."""


def test_lambda_stopped_mid_create_leaves_the_request_to_its_next_wake_up(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch, clock: Any
) -> None:
    original = RdsGateway.restore_clone

    def restore_then_stop(self: RdsGateway, **kwargs: Any) -> None:
        original(self, **kwargs)
        raise LambdaStopped

    monkeypatch.setattr(RdsGateway, "restore_clone", restore_then_stop)
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    with pytest.raises(LambdaStopped):
        cfn.send(event)
    monkeypatch.setattr(RdsGateway, "restore_clone", original)
    cfn.step()  # a wake-up while the stopped invocation could still be running: it only keeps the chain going
    assert cfn.answer(cfn.sent(event)) is None
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1
    clock.advance(START_GRACE_SECONDS)  # past the function's timeout: the first step is over, whatever it did

    answer = cfn.run(cfn.sent(event), world.advance)

    assert answer["Status"] == "SUCCESS"
    assert answer["PhysicalResourceId"] in cluster_ids()
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1
    assert len(cfn.answers(cfn.sent(event))) == 1
    assert cfn.nothing_left()


def test_lifecycle_leaves_no_rules_targets_or_lambda_permissions(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, function: str
) -> None:
    properties = {"SourceClusterId": source.identifier}
    created = cfn.run(cfn.send(cfn.event("Create", properties)), world.advance)
    updated = cfn.run(
        cfn.send(
            cfn.event(
                "Update",
                {**properties, "InstanceCount": "2"},
                physical_id=created["PhysicalResourceId"],
                old_properties=properties,
            )
        ),
        world.advance,
    )
    cfn.run(cfn.send(cfn.event("Delete", properties, physical_id=updated["PhysicalResourceId"])), world.advance)

    assert boto3.client("events").list_rules()["Rules"] == []
    with pytest.raises(boto3.client("lambda").exceptions.ResourceNotFoundException):
        boto3.client("lambda").get_policy(FunctionName=function)
    assert cluster_ids() == {source.identifier}


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """Everything the function logs, formatted by its Powertools JSON formatter."""
    stream = io.StringIO()
    capture = logging.StreamHandler(stream)
    capture.setFormatter(handler_module.logger.registered_formatter)
    service_logger = logging.getLogger(handler_module.logger.name)
    service_logger.addHandler(capture)
    yield stream
    service_logger.removeHandler(capture)


def test_logs_and_answers_never_hold_response_url_signature_or_passwords(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, json_logs: io.StringIO
) -> None:
    ok = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    cfn.run(ok, world.advance)
    bad = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "MasterUserPassword": "hunter2-secret"}))

    output = json_logs.getvalue()
    signatures = [e["ResponseURL"].split("X-Amz-Signature=")[1] for e in (ok.event, bad.event)]
    assert output.count('"level":"INFO"') > 3, "logs are JSON at INFO"
    for signature in signatures:
        assert signature not in output
    assert "hunter2-secret" not in output
    answer = cfn.answer(bad)
    assert answer is not None and "MasterUserPassword" in answer["Reason"]
    assert all("hunter2-secret" not in body.decode() for _, _, body in cfn.server.raw)
    assert all(len(body) <= 4096 for _, _, body in cfn.server.raw)
    assert all(headers.get("Content-Type", "") == "" for _, headers, _ in cfn.server.raw)
