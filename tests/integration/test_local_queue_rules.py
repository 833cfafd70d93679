"""The SQS rules of ``aurora_clone.local.queue_rules`` and the EventBridge ones of ``eventbridge_rules``,
in-process with a ManualPace: every SQS delay and visibility timeout ends at the next step, moto's queues
never deliver to event source mappings themselves, and a bus holds at most 300 rules."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from aurora_clone.local.eventbridge_rules import RULES_PER_BUS
from aurora_clone.local.pace import ManualPace
from aurora_clone.local.rds_rules import RdsRules

REGION = "us-east-1"


@pytest.fixture
def pace() -> Iterator[ManualPace]:
    manual = ManualPace()
    with mock_aws(), RdsRules(manual):
        yield manual


def client(service: str) -> Any:
    make_client: Any = boto3.client
    return make_client(service, region_name=REGION)


def receive(sqs: Any, url: str, **options: Any) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"], **options
    ).get("Messages", [])
    return messages


def test_delay_of_a_message_ends_at_the_next_step_and_not_before(pace: ManualPace) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="wake-ups")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="longest", DelaySeconds=900)
    sqs.send_message(QueueUrl=url, MessageBody="shortest", DelaySeconds=1)
    sqs.send_message(QueueUrl=url, MessageBody="at once")

    first = [message["Body"] for message in receive(sqs, url, VisibilityTimeout=0)]
    pace.advance()
    second = sorted(message["Body"] for message in receive(sqs, url))

    assert first == ["at once"]
    assert second == ["at once", "longest", "shortest"]


def test_visibility_timeout_ends_at_the_next_step_and_a_zero_one_at_once(pace: ManualPace) -> None:
    sqs = client("sqs")
    url = sqs.create_queue(QueueName="wake-ups", Attributes={"VisibilityTimeout": "43200"})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="wake")

    (taken,) = receive(sqs, url)
    hidden = receive(sqs, url)
    pace.advance()
    (again,) = receive(sqs, url)
    sqs.send_message(QueueUrl=url, MessageBody="handed back")
    (handed_back,) = receive(sqs, url)
    sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=handed_back["ReceiptHandle"], VisibilityTimeout=0)
    (at_once,) = receive(sqs, url)

    assert hidden == []
    assert taken["MessageId"] == again["MessageId"]
    assert again["Attributes"]["ApproximateReceiveCount"] == "2"
    assert at_once["MessageId"] == handed_back["MessageId"]


def test_message_goes_to_dead_letter_queue_after_max_receive_count_in_steps(pace: ManualPace) -> None:
    sqs = client("sqs")
    dead_letter = sqs.create_queue(QueueName="dead-letters")["QueueUrl"]
    dead_letter_arn = sqs.get_queue_attributes(QueueUrl=dead_letter, AttributeNames=["QueueArn"])["Attributes"]
    redrive = json.dumps({"deadLetterTargetArn": dead_letter_arn["QueueArn"], "maxReceiveCount": 2})
    url = sqs.create_queue(QueueName="wake-ups", Attributes={"RedrivePolicy": redrive})["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="keeps failing")

    received = []
    for _ in range(3):
        received.append(len(receive(sqs, url)))
        pace.advance()

    assert received == [1, 1, 0]
    assert [message["Body"] for message in receive(sqs, dead_letter)] == ["keeps failing"]


def test_queue_does_not_deliver_to_its_event_source_mapping_itself(pace: ManualPace) -> None:
    sqs, lambda_client, iam = client("sqs"), client("lambda"), client("iam")
    url = sqs.create_queue(QueueName="wake-ups")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    trust = {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:*"}]}
    role = iam.create_role(RoleName="function", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("index.py", "def handler(event, context):\n    return None\n")
    lambda_client.create_function(
        FunctionName="function",
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": archive.getvalue()},
    )
    mapping = lambda_client.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="function", BatchSize=10)

    sqs.send_message(QueueUrl=url, MessageBody="for the poller")

    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"  # still there: only the queue poller delivers
    listed = lambda_client.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert [found["UUID"] for found in listed] == [mapping["UUID"]]


def test_rule_beyond_300_on_a_bus_raises_limit_exceeded(pace: ManualPace) -> None:
    events = client("events")
    for number in range(RULES_PER_BUS):
        events.put_rule(Name=f"rule-{number}", ScheduleExpression="rate(1 day)")

    with pytest.raises(ClientError) as refused:
        events.put_rule(Name="one-too-many", ScheduleExpression="rate(1 day)")
    events.put_rule(Name="rule-0", ScheduleExpression="rate(2 days)")  # changing an existing rule is no new rule
    events.delete_rule(Name="rule-1")
    events.put_rule(Name="in-the-freed-place", ScheduleExpression="rate(1 day)")

    assert refused.value.response["Error"]["Code"] == "LimitExceededException"
    names = [rule["Name"] for page in events.get_paginator("list_rules").paginate() for rule in page["Rules"]]
    assert len(names) == RULES_PER_BUS and "one-too-many" not in names and "in-the-freed-place" in names
    events.create_event_bus(Name="other")
    other = events.put_rule(Name="one-too-many", EventBusName="other", EventPattern=json.dumps({"source": ["x"]}))
    assert other["RuleArn"].endswith("rule/other/one-too-many")  # each bus has a quota of its own
