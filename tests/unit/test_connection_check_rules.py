"""The connection check's decisions and messages (aurora_clone.connection_check), without AWS."""

from __future__ import annotations

import pytest

from aurora_clone.clone_state import ClusterView
from aurora_clone.connection_check import (
    PATIENCE_SECONDS,
    ProbeRequest,
    ProbeResult,
    judge,
    probe_request,
)
from aurora_clone.settings import settings

CLONE = ClusterView(
    identifier="it-testdatabase-1a2b",
    status="available",
    engine="aurora-postgresql",
    endpoint="it-testdatabase-1a2b.cluster-x.eu-west-1.rds.amazonaws.com",
    port=5432,
    vpc_security_group_ids=("sg-111", "sg-222"),
    subnet_group="tests-subnets",
    master_user_secret_arn="arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!cluster-1",
)
REFUSED = ProbeResult(False, "tcp", "Connection refused")


def test_a_reachable_clone_proceeds() -> None:
    assert judge(ProbeResult(True, "tls", "TLS handshake done"), CLONE, None, 1000.0).action == "proceed"


def test_the_first_failure_starts_the_patience_and_looks_again() -> None:
    verdict = judge(REFUSED, CLONE, None, 1000.0)

    assert verdict.action == "retry" and verdict.unreachable_since == 1000.0


def test_a_failure_within_the_patience_keeps_its_start() -> None:
    verdict = judge(REFUSED, CLONE, 1000.0, 1000.0 + PATIENCE_SECONDS - 1)

    assert verdict.action == "retry" and verdict.unreachable_since == 1000.0


def test_past_the_patience_it_fails_naming_the_security_groups_and_subnet_group() -> None:
    verdict = judge(REFUSED, CLONE, 1000.0, 1000.0 + PATIENCE_SECONDS)

    assert verdict.action == "fail"
    assert "no TCP connection to it-testdatabase-1a2b.cluster-x.eu-west-1.rds.amazonaws.com:5432" in verdict.reason
    assert "(Connection refused)" in verdict.reason
    assert "security groups (sg-111, sg-222) must allow port 5432" in verdict.reason
    assert "subnet group (tests-subnets)" in verdict.reason
    assert f"tried for {int(PATIENCE_SECONDS)} seconds" in verdict.reason


@pytest.mark.parametrize(
    ("stage", "words"),
    [
        ("tls", "no TLS handshake"),
        ("login", "could not log in"),
        ("query", "SELECT 1 failed"),
        ("probe", "failed"),
        ("prepare", "the prepare script failed"),
    ],
)
def test_each_stage_is_said_in_words(stage: str, words: str) -> None:
    verdict = judge(ProbeResult.from_payload({"reachable": False, "stage": stage, "detail": "x"}), CLONE, 0.0, 1e9)

    assert words in verdict.reason


def test_the_probe_is_asked_about_the_clone_by_its_identifier_only() -> None:
    request = probe_request(CLONE)

    assert request == ProbeRequest(CLONE.identifier)
    assert request.to_event() == {"cluster": CLONE.identifier}
    assert ProbeRequest.from_event(request.to_event()) == request


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        {},
        {"cluster": ""},
        {"cluster": 5},
        {"cluster": "-not-an-identifier"},
        {"host": "h", "port": 5432, "engine": "aurora-mysql"},
        {"cluster": "aurora-clone-it-1a2b", "host": "10.0.0.9"},
        {"cluster": "aurora-clone-it-1a2b", "secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:x"},
    ],
)
def test_a_malformed_probe_request_is_refused(event: object) -> None:
    with pytest.raises(ValueError):
        ProbeRequest.from_event(event)


@pytest.mark.parametrize("payload", [None, "yes", {"reachable": "yes"}, {"stage": "tcp"}])
def test_an_answer_that_is_not_a_result_counts_as_a_failed_probe(payload: object) -> None:
    result = ProbeResult.from_payload(payload)

    assert not result.reachable and result.stage == "probe"


def test_the_check_is_configured_by_its_function_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONNECTION_CHECK_FUNCTION", " ")
    assert settings.connection_check_function is None
    monkeypatch.setenv("CONNECTION_CHECK_FUNCTION", "aurora-clone-ConnectionCheckFunction-1")
    assert settings.connection_check_function == "aurora-clone-ConnectionCheckFunction-1"
