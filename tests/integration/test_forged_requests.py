"""Forged requests: anyone allowed lambda:InvokeFunction can send CloudFormation-shaped events. Only those
CloudFormation confirms (its response bucket as ResponseURL; its record of the stack and resource) are
acted on. Every forgery here is ignored: no cluster made or deleted, no RDS call, no answer PUT anywhere,
no request record written.
"""

from __future__ import annotations

import io
import logging
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from aurora_clone import handler as handler_module
from tests.cloudformation import ACCOUNT, REGION, REQUEST_TABLE, FakeCloudFormation
from tests.conftest import Source
from tests.moto_gaps import AwsGaps


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


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The hosts of every URL the function opens (its answers' PUTs), wherever they point."""
    hosts: list[str] = []
    real_urlopen = urllib.request.urlopen

    def recording(request: Any, *args: Any, **kwargs: Any) -> Any:
        hosts.append(request.host if isinstance(request, urllib.request.Request) else str(request))
        return real_urlopen(request, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", recording)
    return hosts


def state() -> dict[str, Any]:
    """What a forgery must not change: the clusters and instances (with statuses), the request table."""
    rds = boto3.client("rds")
    items = boto3.client("dynamodb").scan(TableName=REQUEST_TABLE)["Items"]
    return {
        "clusters": sorted((c["DBClusterIdentifier"], c["Status"]) for c in rds.describe_db_clusters()["DBClusters"]),
        "instances": sorted(
            (i["DBInstanceIdentifier"], i["DBInstanceStatus"]) for i in rds.describe_db_instances()["DBInstances"]
        ),
        "records": sorted((i["pk"]["S"], i["sk"]["S"], i.get("version", {}).get("N")) for i in items),
    }


class Unchanged:
    """Takes the state, the RDS calls and the answers PUT before a forgery, to compare after it."""

    def __init__(self, cfn: FakeCloudFormation, world: AwsGaps, opened: list[str]) -> None:
        self.cfn, self.world, self.opened = cfn, world, opened
        self.state = state()
        self.rds_calls = dict(world.rds_calls)
        self.puts = len(cfn.server.raw)
        self.opens = len(opened)

    def check(self) -> None:
        assert dict(self.world.rds_calls) == self.rds_calls, "an RDS call was made"  # before state() makes some
        assert state() == self.state
        assert len(self.cfn.server.raw) == self.puts, "an answer was PUT to the response bucket"
        assert self.opened[self.opens :] == [], "an answer was PUT somewhere"


def make_clone(cfn: FakeCloudFormation, world: AwsGaps, source: Source) -> str:
    answer = cfn.run(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier})), world.advance)
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    clone_id = str(answer["PhysicalResourceId"])
    # Once the answer arrived, CloudFormation's record shows the stack at rest and the resource's id.
    cfn.world.hold_custom_resource(cfn.stack_id, "CREATE_COMPLETE", "TestDatabase", "Custom::AuroraClone", clone_id)
    return clone_id


@pytest.mark.parametrize(
    "response_url",
    [
        "http://attacker.example/collect",
        "https://attacker.example/collect",
        "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/key",  # AWS's, not this world's
        "https://localhost:1/cloudformation-custom-resource-response-useast1/key",
    ],
    ids=["http-attacker", "https-attacker", "aws-bucket-outside-the-world", "other-port"],
)
def test_create_with_a_response_url_not_cloudformations_clones_nothing_and_puts_nothing(
    cfn: FakeCloudFormation,
    world: AwsGaps,
    source: Source,
    opened: list[str],
    json_logs: io.StringIO,
    response_url: str,
) -> None:
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    event["ResponseURL"] = response_url
    cfn.hold(event)  # everything else is as CloudFormation's record shows it: only the ResponseURL is forged
    unchanged = Unchanged(cfn, world, opened)

    cfn.invoke(event)
    cfn.step()

    unchanged.check()
    logged = json_logs.getvalue()
    assert "Ignored a request CloudFormation does not confirm" in logged
    assert "ResponseURL" in logged and response_url not in logged


def test_delete_naming_another_stacks_resource_deletes_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, opened: list[str]
) -> None:
    victim = make_clone(cfn, world, source)
    tags = {
        t["Key"]: t["Value"]
        for t in boto3.client("rds").describe_db_clusters(DBClusterIdentifier=victim)["DBClusters"][0]["TagList"]
    }
    # Read from the clone's tags; the answer to a well-formed ResponseURL of the bucket, under a key of its own.
    forged = cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=victim)
    forged.update(StackId=tags["aurora-clone:stack-id"], LogicalResourceId=tags["aurora-clone:logical-id"])
    unchanged = Unchanged(cfn, world, opened)

    cfn.invoke(forged)  # the victim's stack is at rest: CloudFormation sends no Delete now
    cfn.world.hold_custom_resource(cfn.stack_id, "UPDATE_IN_PROGRESS", "TestDatabase", "Custom::AuroraClone", victim)
    cfn.invoke({**forged, "RequestId": str(uuid.uuid4())})  # nor while it is being updated
    cfn.step()

    unchanged.check()


def test_update_or_delete_of_an_id_cloudformation_does_not_name_touches_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, opened: list[str]
) -> None:
    clone_id = make_clone(cfn, world, source)
    properties = {"SourceClusterId": source.identifier, "InstanceCount": "2"}
    for request_type, status in (("Update", "UPDATE_IN_PROGRESS"), ("Delete", "DELETE_IN_PROGRESS")):
        # CloudFormation is in the middle of its own operation on the resource, whose record names another id.
        cfn.world.hold_custom_resource(cfn.stack_id, status, "TestDatabase", "Custom::AuroraClone", "something-else")
        unchanged = Unchanged(cfn, world, opened)

        cfn.invoke(cfn.event(request_type, properties, physical_id=clone_id, old_properties=properties))
        cfn.step()

        unchanged.check()


def no_such_stack(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    event["StackId"] = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/nowhere/{uuid.uuid4()}"


def stack_at_rest(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    cfn.hold(event, "CREATE_COMPLETE")


def stack_rolling_back(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    cfn.hold(event, "ROLLBACK_IN_PROGRESS")


def logical_id_it_does_not_have(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    cfn.hold(event)
    event["LogicalResourceId"] = "NotInTheTemplate"


def resource_of_another_type(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    cfn.hold({**event, "ResourceType": "AWS::S3::Bucket"})


def stack_given_by_name(cfn: FakeCloudFormation, event: dict[str, Any]) -> None:
    cfn.hold(event)
    event["StackId"] = cfn.stack_name


@pytest.mark.parametrize(
    "forge",
    [
        no_such_stack,
        stack_at_rest,
        stack_rolling_back,
        logical_id_it_does_not_have,
        resource_of_another_type,
        stack_given_by_name,
    ],
)
def test_create_cloudformation_does_not_confirm_clones_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, opened: list[str], forge: Any
) -> None:
    event = cfn.event("Create", {"SourceClusterId": source.identifier})
    forge(cfn, event)
    unchanged = Unchanged(cfn, world, opened)

    cfn.invoke(event)
    cfn.step()

    unchanged.check()


def test_the_same_create_once_cloudformation_confirms_it_is_answered(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    # The control: the checks above fail for what they forge, not for anything else in the event.
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))

    assert cfn.run(sent, world.advance)["Status"] == "SUCCESS"


def test_request_delivered_again_is_not_confirmed_again(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    # CloudFormation confirmed it at its arrival; by the re-delivery its stack may have moved on (here it is
    # gone): the request goes on from its record.
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))
    cfn.forget_stack()

    cfn.invoke(sent.event)

    assert cfn.run(sent, world.advance)["Status"] == "SUCCESS"
