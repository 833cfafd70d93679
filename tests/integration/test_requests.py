"""Every request is answered: bad input at once, duplicates once, deadlines before CloudFormation's."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aurora_clone import handler as handler_module
from aurora_clone.naming import poll_rule_prefix
from aurora_clone.properties import MAX_USER_TAGS
from tests.cloudformation import FakeCloudFormation, LambdaContext
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
    assert cfn.poll_rules() == []


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
    assert cfn.poll_rules() == []


def test_create_delivered_again_after_success_answers_the_same(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    first = cfn.run(cfn.send(event), world.advance)

    cfn.send(event)

    answers = cfn.answers(cfn.send(event))
    assert answers[-1] == first
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1


def test_create_with_cluster_id_of_foreign_cluster_fails_and_rollback_delete_cannot_reach_it(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    make_source(world, "someone-elses-db")
    properties = {"SourceClusterId": source.identifier, "ClusterId": "someone-elses-db"}

    answer = cfn.answer(cfn.send(cfn.event("Create", properties)))
    assert answer is not None and answer["Status"] == "FAILED"
    assert "someone-elses-db" in answer["Reason"]
    assert answer["PhysicalResourceId"] != "someone-elses-db"

    rollback = cfn.answer(cfn.send(cfn.event("Delete", properties, physical_id=answer["PhysicalResourceId"])))
    assert rollback is not None and rollback["Status"] == "SUCCESS"
    assert "someone-elses-db" in cluster_ids()
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
    assert cfn.poll_rules() == []


def test_request_not_done_before_service_timeout_fails_before_cloudformation_gives_up(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: Any
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "ServiceTimeout": "900"}))
    clock.advance(900 - 91)  # the next poll, a minute on, could still answer in time
    cfn.fire_polls()
    assert cfn.answer(sent) is None
    clock.advance(1)  # now it could not: answer while CloudFormation still listens
    assert cfn.fire_polls() == 1

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert "ServiceTimeout" in answer["Reason"] and "creating" in answer["Reason"]
    assert cfn.poll_rules() == []


def test_poll_completed_from_outside_by_cluster_id_answers_at_once(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    (clone_id,) = cluster_ids() - {source.identifier}
    world.advance()
    events = boto3.client("events")

    def complete_from_outside() -> None:
        """What an RDS event handler would do: find the cluster's pending polls and run them now."""
        for rule in events.list_rules(NamePrefix=poll_rule_prefix("aurora-clone", clone_id))["Rules"]:
            for target in events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                handler_module.handler(json.loads(target["Input"]), LambdaContext())

    complete_from_outside()  # adds the instance
    world.settle()
    complete_from_outside()

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "SUCCESS"
    assert cfn.poll_rules() == []


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


def test_lambda_about_to_time_out_answers_failed_and_stops_polling(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    answered = threading.Event()
    original_poll = handler_module.poll

    def slow_poll(event: dict[str, Any], context: Any) -> Any:
        answered.wait(timeout=30)  # blocks until the timeout timer has answered
        return original_poll(event, context)

    monkeypatch.setattr(handler_module.helper, "_poll_create_func", slow_poll)
    monkeypatch.setattr(cfn.server, "refusals", [])
    original_sender = handler_module.helper._sender

    def sender(url: str, body: dict[str, Any]) -> None:
        original_sender(url, body)
        answered.set()

    monkeypatch.setattr(handler_module.helper, "_sender", sender)
    (rule,) = cfn.poll_rules()
    (target,) = boto3.client("events").list_targets_by_rule(Rule=rule["Name"])["Targets"]

    handler_module.handler(json.loads(target["Input"]), LambdaContext(remaining_millis=1_000))

    answer = cfn.answer(sent)
    assert answer is not None and answer["Status"] == "FAILED"
    assert "time" in answer["Reason"]
    assert cfn.poll_rules() == []
    assert len(cfn.answers(sent)) == 1


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
