"""The poll rule's target Input (a compact request within 8192 characters) and the rule's name."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from aurora_clone.cfn.polling import PollScheduler, PollSchedulingError, poll_input, rule_prefix
from aurora_clone.clone_state import DesiredClone
from aurora_clone.naming import poll_rule_name, poll_rule_prefix, request_token
from aurora_clone.outcome import Job

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/integration-env/0a1b2c3d-0000-1111-2222-333344445555"
RESPONSE_URL = (
    "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/"
    "arn%3Aaws%3Acloudformation%3Aus-east-1%3A123456789012%3Astack/integration-env?X-Amz-Signature=abc"
)
RULE = "aurora-clone-0123456789ab-fedcba987654"
RULE_NAME = re.compile(r"[\.\-_A-Za-z0-9]{1,64}")

JOB = Job(
    kind="converge",
    cluster_id="integration-env-clone-0123abcd",
    deadline=1_800_003_600.0,
    answer_id="integration-env-clone-0123abcd",
    source="prod-db",
    desired=DesiredClone(
        "integration-env-clone-0123abcd",
        "db.r6g.large",
        2,
        db_parameter_group="clone-ipg",
        port=3306,
        vpc_security_group_ids=("sg-11111111", "sg-22222222"),
        cluster_parameter_group="clone-cpg",
    ),
)


def event(request_type: str = "Create", **changes: Any) -> dict[str, Any]:
    request: dict[str, Any] = {
        "RequestType": request_type,
        "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone",
        "ResponseURL": RESPONSE_URL,
        "StackId": STACK_ID,
        "RequestId": "5f0d9a8e-1b2c-4d3e-8f90-a1b2c3d4e5f6",
        "LogicalResourceId": "Clone",
        "ResourceType": "Custom::AuroraClone",
        "ResourceProperties": {
            "ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone",
            "SourceClusterId": "prod-db",
            "Tags": [{"Key": "note", "Value": "property-value-marker"}],
        },
    }
    if request_type == "Update":
        request["PhysicalResourceId"] = "integration-env-clone-0123abcd"
        request["OldResourceProperties"] = {"SourceClusterId": "prod-db", "InstanceCount": "old-property-marker"}
    request.update(changes)
    return request


@pytest.mark.parametrize("request_type", ["Create", "Update", "Delete"])
def test_poll_input_envelope_and_job_carried(request_type: str) -> None:
    sent = event(request_type)

    text = poll_input(sent, JOB, RULE)

    carried = json.loads(text)
    for key in ("RequestType", "ResponseURL", "StackId", "RequestId", "LogicalResourceId"):
        assert carried[key] == sent[key], key
    assert carried["CrHelperPoll"] is True
    assert carried["CrHelperRule"] == RULE
    assert Job.from_dict(carried["AuroraCloneJob"]) == JOB


@pytest.mark.parametrize("request_type", ["Create", "Update"])
def test_poll_input_properties_left_out(request_type: str) -> None:
    text = poll_input(event(request_type), JOB, RULE)

    carried = json.loads(text)
    assert "ResourceProperties" not in carried
    assert "OldResourceProperties" not in carried
    assert "property-value-marker" not in text
    assert "old-property-marker" not in text


def test_poll_input_update_physical_id_carried() -> None:
    carried = json.loads(poll_input(event("Update"), JOB, RULE))

    assert carried["PhysicalResourceId"] == "integration-env-clone-0123abcd"


def test_poll_input_create_no_physical_id() -> None:
    carried = json.loads(poll_input(event("Create"), JOB, RULE))

    assert "PhysicalResourceId" not in carried


def test_poll_input_longest_names_fit() -> None:
    long_stack = f"arn:aws:cloudformation:us-east-1:123456789012:stack/{'s' * 128}/0a1b2c3d-0000-1111-2222-333344445555"
    replacing = Job(
        kind="converge",
        cluster_id="c" * 63,
        deadline=1_800_003_600.123456,
        answer_id="c" * 63,
        source="arn:aws:rds:us-east-1:123456789012:cluster:" + "p" * 63,
        desired=DesiredClone(
            "c" * 63,
            "db.r6g.16xlarge",
            16,
            db_parameter_group="g" * 255,
            port=65535,
            vpc_security_group_ids=tuple(f"sg-{n:017x}" for n in range(5)),
            cluster_parameter_group="h" * 255,
        ),
        replacing="o" * 63,
    )
    sent = event(
        "Update",
        StackId=long_stack,
        LogicalResourceId="L" * 255,
        ResponseURL="https://bucket.s3.amazonaws.com/" + "u" * 1968,
        PhysicalResourceId="o" * 63,
    )
    assert len(sent["ResponseURL"]) == 2000

    text = poll_input(sent, replacing, "r" * 64)

    assert len(text) <= 8192
    assert json.loads(text)["LogicalResourceId"] == "L" * 255


def test_poll_input_too_large_refused() -> None:
    sent = event(ResponseURL="https://bucket.s3.amazonaws.com/" + "u" * 9000)

    with pytest.raises(PollSchedulingError, match="8192"):
        poll_input(sent, JOB, RULE)


# --- rule naming ---------------------------------------------------------------------------------------------------


def test_rule_prefix_unset_default() -> None:
    assert rule_prefix() == "aurora-clone"


@pytest.mark.parametrize(
    "prefix",
    [pytest.param("team-a-clones", id="short"), pytest.param("integration-aurora-clone-poll-rules-01", id="38")],
)
def test_rule_prefix_fitting_accepted(monkeypatch: pytest.MonkeyPatch, prefix: str) -> None:
    monkeypatch.setenv("POLL_RULE_PREFIX", prefix)

    assert rule_prefix() == prefix


def test_rule_prefix_39_chars_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = "integration-aurora-clone-poll-rules-012"
    assert len(prefix) == 39
    monkeypatch.setenv("POLL_RULE_PREFIX", prefix)

    with pytest.raises(PollSchedulingError, match="POLL_RULE_PREFIX"):
        rule_prefix()


def scheduler(prefix: str = "aurora-clone") -> PollScheduler:
    # rule_for only names the rule; the client is never called.
    return PollScheduler(client=object(), prefix=prefix)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "logical_id", [pytest.param("Clone", id="short"), pytest.param("L" * 255, id="logical-id-255")]
)
@pytest.mark.parametrize(
    "prefix",
    [pytest.param("aurora-clone", id="default"), pytest.param("integration-aurora-clone-poll-rules-01", id="38")],
)
def test_rule_for_any_logical_id_fits_eventbridge(prefix: str, logical_id: str) -> None:
    sent = event(LogicalResourceId=logical_id)

    rule = scheduler(prefix).rule_for(sent, JOB)

    assert RULE_NAME.fullmatch(rule), rule
    assert rule.startswith(poll_rule_prefix(prefix, JOB.cluster_id))
    assert rule == poll_rule_name(prefix, JOB.cluster_id, request_token(STACK_ID, sent["RequestId"], logical_id))


def test_rule_for_redelivered_request_same_rule() -> None:
    assert scheduler().rule_for(event(), JOB) == scheduler().rule_for(event(), JOB)


def test_rule_for_other_request_other_rule() -> None:
    first = scheduler().rule_for(event(), JOB)
    second = scheduler().rule_for(event(RequestId="0e9d8c7b-6a5f-4e3d-2c1b-0a9f8e7d6c5b"), JOB)

    assert first != second
