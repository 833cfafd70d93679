"""Which requests are CloudFormation's: every ResponseURL form accepted or refused, every confirmation case."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone.intake import request_confirmation_problem, response_bucket, response_url_problem
from aurora_clone.settings import Settings

SIGNED = "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Expires=7200&X-Amz-Signature=0123abcd"
KEY = "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/qa/1a2b%7CTestDatabase%7Cc3d4"
USE1 = response_bucket("us-east-1")
EUW1 = response_bucket("eu-west-1")
CNN1 = response_bucket("cn-north-1")


@pytest.mark.parametrize(
    "url,region",
    [
        # Virtual-hosted: seen in CloudFormation's requests (AWS Knowledge Center, GitHub issues and tests).
        (f"https://{USE1}.s3.amazonaws.com/{KEY}{SIGNED}", "us-east-1"),
        (f"https://{USE1}.s3.us-east-1.amazonaws.com/{KEY}{SIGNED}", "us-east-1"),
        (f"https://{EUW1}.s3-eu-west-1.amazonaws.com/{KEY}{SIGNED}", "eu-west-1"),
        (f"https://{EUW1}.s3.eu-west-1.amazonaws.com/{KEY}{SIGNED}", "eu-west-1"),
        (f"https://{EUW1}.s3.amazonaws.com/{KEY}{SIGNED}", "eu-west-1"),
        (f"https://{CNN1}.s3.cn-north-1.amazonaws.com.cn/{KEY}{SIGNED}", "cn-north-1"),
        # Path style, the same endpoints.
        (f"https://s3.amazonaws.com/{USE1}/{KEY}{SIGNED}", "us-east-1"),
        (f"https://s3.eu-west-1.amazonaws.com/{EUW1}/{KEY}{SIGNED}", "eu-west-1"),
        (f"https://s3-eu-west-1.amazonaws.com/{EUW1}/{KEY}{SIGNED}", "eu-west-1"),
        (f"https://s3.cn-north-1.amazonaws.com.cn/{CNN1}/{KEY}{SIGNED}", "cn-north-1"),
        # Case of the scheme and host, and the port HTTPS implies.
        (f"HTTPS://{USE1.upper()}.S3.AMAZONAWS.COM/{KEY}{SIGNED}", "us-east-1"),
        (f"https://{USE1}.s3.amazonaws.com:443/{KEY}{SIGNED}", "us-east-1"),
        # GovCloud: the same forms under amazonaws.com.
        (f"https://{response_bucket('us-gov-west-1')}.s3-us-gov-west-1.amazonaws.com/{KEY}", "us-gov-west-1"),
    ],
)
def test_response_url_of_cloudformations_bucket_is_accepted(url: str, region: str) -> None:
    assert response_url_problem(url, region, None) is None


@pytest.mark.parametrize(
    "url,region,says",
    [
        ("http://attacker.example/answers", "us-east-1", "not https"),
        ("https://attacker.example/answers", "us-east-1", "host attacker.example"),
        (f"http://{USE1}.s3.amazonaws.com/{KEY}", "us-east-1", "not https"),
        (f"https://{USE1}.s3.amazonaws.com:8443/{KEY}", "us-east-1", "port 8443"),
        (f"https://user:pw@{USE1}.s3.amazonaws.com/{KEY}", "us-east-1", "user name or password"),
        (f"https://{USE1}.s3.amazonaws.com@attacker.example/{KEY}", "us-east-1", "user name or password"),
        (f"https://{USE1}.s3.amazonaws.com.attacker.example/{KEY}", "us-east-1", "host"),
        (f"https://{USE1}.attacker.example/{KEY}", "us-east-1", "host"),
        (f"https://{USE1}.s3.amazonaws.com./{KEY}", "us-east-1", "host"),
        (f"https://x{USE1}.s3.amazonaws.com/{KEY}", "us-east-1", "host"),
        (f"https://{USE1}.s3.amazonaws.com/", "us-east-1", "no object"),
        # Another Region's bucket, or this bucket at another Region's endpoint.
        (f"https://{EUW1}.s3.amazonaws.com/{KEY}", "us-east-1", "host"),
        (f"https://{USE1}.s3.eu-west-1.amazonaws.com/{KEY}", "eu-west-1", "host"),
        # Path style: another bucket, or this bucket's name as a prefix of another's.
        (f"https://s3.amazonaws.com/attacker-bucket/{KEY}", "us-east-1", "not in CloudFormation's response bucket"),
        (f"https://s3.amazonaws.com/{USE1}-x/{KEY}", "us-east-1", "not in CloudFormation's response bucket"),
        (f"https://s3.amazonaws.com/{USE1}", "us-east-1", "not in CloudFormation's response bucket"),
        (f"https://s3.amazonaws.com/{USE1}/../attacker-bucket/k", "us-east-1", "'.' or '..'"),
        (f"https://s3.amazonaws.com/{USE1}/%2E%2E/attacker-bucket/k", "us-east-1", "'.' or '..'"),
        # The China Regions: only their own partition's endpoint.
        (f"https://{CNN1}.s3.amazonaws.com/{KEY}", "cn-north-1", "host"),
        (f"https://{CNN1}.s3.cn-north-1.amazonaws.com/{KEY}", "cn-north-1", "host"),
        # What a parser may read differently from the one that sends the answer.
        (f"https://{USE1}.s3.amazonaws.com/{KEY}\nHost: attacker.example", "us-east-1", "control character"),
        (f"https://attacker.example\\@{USE1}.s3.amazonaws.com/{KEY}", "us-east-1", "backslash"),
        (f"https://{USE1}.s3.amazonaws.com /{KEY}", "us-east-1", "space"),
        (f"https://{USE1}.s3.amazonaws.com/{KEY}#x", "us-east-1", "fragment"),
        (f"https://{USE1}.s3.amazonaws.com:99999/{KEY}", "us-east-1", "not a URL"),
        ("", "us-east-1", "no ResponseURL"),
        (f"https://{USE1}.s3.amazonaws.com/{KEY}", "", "Region is not known"),
    ],
)
def test_response_url_elsewhere_is_refused(url: str, region: str, says: str) -> None:
    problem = response_url_problem(url, region, None)
    assert problem is not None and says in problem
    assert "X-Amz-Signature" not in problem and KEY not in problem


ENDPOINT = "https://localhost:4566"


@pytest.mark.parametrize(
    "url,endpoint,accepted",
    [
        (f"https://localhost:4566/{USE1}/{KEY}{SIGNED}", ENDPOINT, True),
        (f"https://LOCALHOST:4566/{USE1}/{KEY}{SIGNED}", ENDPOINT + "/", True),
        (f"https://localhost/{USE1}/{KEY}", "https://localhost:443", True),
        (f"http://localhost:4566/{USE1}/{KEY}", ENDPOINT, False),  # the endpoint's scheme only
        (f"https://localhost:4567/{USE1}/{KEY}", ENDPOINT, False),
        (f"https://127.0.0.1:4566/{USE1}/{KEY}", ENDPOINT, False),
        (f"https://localhost:4566/other-bucket/{KEY}", ENDPOINT, False),
        (f"https://localhost:4566/{EUW1}/{KEY}", ENDPOINT, False),
        (f"https://user@localhost:4566/{USE1}/{KEY}", ENDPOINT, False),
        # A configured endpoint is where the bucket is, not a bypass: AWS's own bucket is not it.
        (f"https://{USE1}.s3.amazonaws.com/{KEY}", ENDPOINT, False),
        ("https://attacker.example/answers", ENDPOINT, False),
    ],
)
def test_response_url_with_an_endpoint_must_be_in_the_bucket_there(url: str, endpoint: str, accepted: bool) -> None:
    assert (response_url_problem(url, "us-east-1", endpoint) is None) is accepted


def test_response_endpoint_is_read_from_its_variable() -> None:
    assert Settings({}).response_endpoint is None
    assert Settings({"RESPONSE_ENDPOINT": " https://localhost:4566 "}).response_endpoint == ENDPOINT


FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone"
STACK = "arn:aws:cloudformation:us-east-1:123456789012:stack/qa/1a2b3c4d"


def request(request_type: str, **changes: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": FUNCTION,
        "StackId": STACK,
        "RequestId": "r-1",
        "LogicalResourceId": "TestDatabase",
        "ResourceType": "Custom::AuroraClone",
        "ResourceProperties": {"ServiceToken": FUNCTION, "SourceClusterId": "prod-db"},
    }
    if request_type != "Create":
        event["PhysicalResourceId"] = "qa-testdatabase-1"
    event.update(changes)
    return event


def stack(status: str, stack_id: str = STACK) -> dict[str, str]:
    return {"id": stack_id, "status": status}


def resource(
    physical_id: str | None = "qa-testdatabase-1", resource_type: str = "Custom::AuroraClone", status: str = ""
) -> dict[str, str | None]:
    return {"type": resource_type, "physical_id": physical_id, "status": status or None}


CONFIRMED = [
    ("create", request("Create"), stack("CREATE_IN_PROGRESS"), resource(None, status="CREATE_IN_PROGRESS")),
    ("create added by an update", request("Create"), stack("UPDATE_IN_PROGRESS"), resource(None)),
    ("update", request("Update"), stack("UPDATE_IN_PROGRESS"), resource()),
    ("rollback update", request("Update"), stack("UPDATE_ROLLBACK_IN_PROGRESS"), resource()),
    ("delete", request("Delete"), stack("DELETE_IN_PROGRESS"), resource()),
    ("create rolled back", request("Delete"), stack("ROLLBACK_IN_PROGRESS"), resource()),
    (
        "delete after a create CloudFormation gave up on, its record without an id",
        request("Delete", PhysicalResourceId="qa-TestDatabase-ABCDEFGH"),
        stack("ROLLBACK_IN_PROGRESS"),
        resource(None),
    ),
    (
        "old copy of a replaced clone, in the cleanup",
        request("Delete", PhysicalResourceId="qa-testdatabase-0"),
        stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        resource(status="UPDATE_COMPLETE"),
    ),
    (
        "new copy of a rolled back replacement, in the rollback's cleanup",
        request("Delete", PhysicalResourceId="qa-testdatabase-2"),
        stack("UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS"),
        resource(status="UPDATE_COMPLETE"),
    ),
    (
        "resource removed by the update, in the cleanup",
        request("Delete"),
        stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        resource(status="DELETE_IN_PROGRESS"),
    ),
    (
        "another custom type whose ServiceToken is this function",
        request("Create", ResourceType="Custom::Database"),
        stack("CREATE_IN_PROGRESS"),
        resource(None, "Custom::Database"),
    ),
    (
        "AWS::CloudFormation::CustomResource, the function's alias as ServiceToken",
        request("Update", ResourceType="AWS::CloudFormation::CustomResource", ServiceToken=f"{FUNCTION}:live"),
        stack("UPDATE_IN_PROGRESS"),
        resource(resource_type="AWS::CloudFormation::CustomResource"),
    ),
]


@pytest.mark.parametrize(
    "event,stack_seen,resource_seen", [case[1:] for case in CONFIRMED], ids=[case[0] for case in CONFIRMED]
)
def test_request_cloudformation_confirms_is_accepted(
    event: dict[str, Any], stack_seen: dict[str, str], resource_seen: dict[str, str | None]
) -> None:
    assert request_confirmation_problem(event, stack_seen, resource_seen, f"{FUNCTION}:$LATEST") is None


REFUSED = [
    ("no such stack", request("Create"), None, None, "has no stack"),
    ("stack given by name", request("Create", StackId="qa"), stack("CREATE_IN_PROGRESS"), resource(None), "ARN"),
    ("stack not in progress", request("Create"), stack("CREATE_COMPLETE"), resource(None), "is CREATE_COMPLETE"),
    ("delete of a stack at rest", request("Delete"), stack("UPDATE_COMPLETE"), resource(), "only in"),
    ("stack deleted", request("Delete"), stack("DELETE_COMPLETE"), resource(), "only in"),
    # While its Create is in flight, the record names no id yet: a Delete then is not CloudFormation's.
    ("delete while creating", request("Delete"), stack("CREATE_IN_PROGRESS"), resource(None), "only in"),
    ("delete while updating", request("Delete"), stack("UPDATE_IN_PROGRESS"), resource(), "only in"),
    (
        "delete during an update's rollback",
        request("Delete"),
        stack("UPDATE_ROLLBACK_IN_PROGRESS"),
        resource(),
        "only in",
    ),
    ("unknown request type", request("Poll"), stack("UPDATE_IN_PROGRESS"), resource(), "only in"),
    ("create while the stack is deleted", request("Create"), stack("DELETE_IN_PROGRESS"), resource(None), "only in"),
    ("update while the stack is created", request("Update"), stack("CREATE_IN_PROGRESS"), resource(), "only in"),
    ("no such logical id", request("Create"), stack("CREATE_IN_PROGRESS"), None, "has no resource TestDatabase"),
    (
        "resource of another type",
        request("Create"),
        stack("CREATE_IN_PROGRESS"),
        resource(None, "AWS::S3::Bucket"),
        "of type AWS::S3::Bucket",
    ),
    (
        "a native type named by the request too",
        request("Create", ResourceType="AWS::S3::Bucket"),
        stack("CREATE_IN_PROGRESS"),
        resource(None, "AWS::S3::Bucket"),
        "not a custom resource",
    ),
    (
        "another custom type for another function",
        request("Create", ResourceType="Custom::Other", ServiceToken=FUNCTION + "-x"),
        stack("CREATE_IN_PROGRESS"),
        resource(None, "Custom::Other"),
        "ServiceToken is not this function",
    ),
    (
        "another custom type, no ServiceToken at all",
        request("Create", ResourceType="Custom::Other", ServiceToken=None, ResourceProperties={}),
        stack("CREATE_IN_PROGRESS"),
        resource(None, "Custom::Other"),
        "ServiceToken is not this function",
    ),
    (
        "update of another id",
        request("Update", PhysicalResourceId="other-clone"),
        stack("UPDATE_IN_PROGRESS"),
        resource(),
        "names PhysicalResourceId 'other-clone'",
    ),
    ("update of a resource without an id", request("Update"), stack("UPDATE_IN_PROGRESS"), resource(None), "is ''"),
    (
        "delete of another id",
        request("Delete", PhysicalResourceId="other-clone"),
        stack("DELETE_IN_PROGRESS"),
        resource(),
        "names PhysicalResourceId 'other-clone'",
    ),
    (
        "delete of the live clone during a cleanup",
        request("Delete"),
        stack("UPDATE_COMPLETE_CLEANUP_IN_PROGRESS"),
        resource(status="UPDATE_COMPLETE"),
        "still names and is not deleting",
    ),
]


@pytest.mark.parametrize(
    "event,stack_seen,resource_seen,says", [case[1:] for case in REFUSED], ids=[case[0] for case in REFUSED]
)
def test_request_cloudformation_does_not_confirm_is_refused(
    event: dict[str, Any], stack_seen: dict[str, str] | None, resource_seen: dict[str, str | None] | None, says: str
) -> None:
    problem = request_confirmation_problem(event, stack_seen, resource_seen, FUNCTION)
    assert problem is not None and says in problem


def test_other_custom_type_without_the_functions_arn_is_refused() -> None:
    event = request("Create", ResourceType="Custom::Database")

    assert request_confirmation_problem(event, stack("CREATE_IN_PROGRESS"), resource(None, "Custom::Database"), "")
