"""Which invocation is which, what a wake-up may say, when a request is looked at next: pure decisions."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone.clone_state import ClusterView, InstanceView
from aurora_clone.wake_rules import (
    ANSWER_MARGIN_SECONDS,
    FALLBACK_SECONDS,
    LAST_STAGE_SECONDS,
    RdsHint,
    WakeUp,
    describe_lags,
    fallback_delay,
    invocation_kind,
    next_look_interval,
    out_of_time,
    parse_rds_event,
    parse_wake_up,
)

REQUEST = {
    "RequestType": "Create",
    "ResponseURL": "https://example.invalid/response",
    "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/s/1",
    "RequestId": "r",
    "LogicalResourceId": "Db",
}
RDS_EVENT = {
    "source": "aws.rds",
    "detail-type": "RDS DB Instance Event",
    "detail": {"EventID": "RDS-EVENT-0002", "SourceType": "DB_INSTANCE", "SourceIdentifier": "qa-db-1"},
}


@pytest.mark.parametrize(
    "event,kind",
    [
        (REQUEST, "cloudformation"),
        ({**REQUEST, "RequestType": "Poll"}, "other"),
        ({**REQUEST, "ResponseURL": ""}, "other"),
        ({k: v for k, v in REQUEST.items() if k != "StackId"}, "other"),
        ({"Records": [{"eventSource": "aws:sqs", "body": "{}"}]}, "wake-ups"),
        ({"Records": [{"eventSource": "aws:sns"}]}, "other"),
        ({"Records": []}, "other"),
        (RDS_EVENT, "rds-event"),
        ({**RDS_EVENT, "source": "aws.ec2"}, "other"),
        ({**RDS_EVENT, "detail-type": "RDS DB Snapshot Event"}, "other"),
        ({}, "other"),
        ([], "other"),
        (None, "other"),
        ("Create", "other"),
    ],
)
def test_invocation_kind_by_shape(event: Any, kind: str) -> None:
    assert invocation_kind(event) == kind


TOKEN = "0123456789ab"
WAKE = "f" * 32


@pytest.mark.parametrize(
    "body,expected",
    [
        (WakeUp(TOKEN, WAKE).body(), WakeUp(TOKEN, WAKE)),
        (WakeUp(TOKEN).body(), WakeUp(TOKEN)),
        ('{"request": "0123456789ab", "wake": "' + WAKE + '", "job": {"cluster_id": "victim"}}', None),
        ('{"request": "0123456789ab", "recheck": true, "cluster_id": "victim"}', None),
        ('{"request": "0123456789ab"}', None),
        ('{"request": "0123456789ab", "recheck": false}', None),
        ('{"request": "0123456789AB", "recheck": true}', None),
        ('{"request": "0123456789ab", "wake": "short"}', None),
        ('{"request": 12, "recheck": true}', None),
        ("[1, 2]", None),
        ("not json", None),
        (None, None),
    ],
)
def test_parse_wake_up_accepts_only_identifiers(body: Any, expected: WakeUp | None) -> None:
    assert parse_wake_up(body) == expected


def test_parse_rds_event_reads_the_hint_and_lowers_the_identifier() -> None:
    event = {**RDS_EVENT, "detail": {**RDS_EVENT["detail"], "SourceIdentifier": "QA-DB-1"}}  # type: ignore[dict-item]

    assert parse_rds_event(event) == RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-1")
    assert parse_rds_event({"detail": {"EventID": "RDS-EVENT-0002"}}) is None
    assert parse_rds_event({"detail": "x"}) is None


@pytest.mark.parametrize(
    "hint,candidates",
    [
        (RdsHint("RDS-EVENT-0170", "CLUSTER", "qa-db"), ("qa-db",)),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-1"), ("qa-db",)),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-12"), ("qa-db",)),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "prod-db-writer"), ()),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-0"), ()),
        (RdsHint("RDS-EVENT-0002", "SNAPSHOT", "qa-db-1"), ()),
    ],
)
def test_cluster_candidates_of_an_event(hint: RdsHint, candidates: tuple[str, ...]) -> None:
    assert hint.cluster_candidates() == candidates


def cluster(status: str = "available", *instances: tuple[str, str]) -> ClusterView:
    return ClusterView(
        "qa-db", status, "aurora-mysql", instances=tuple(InstanceView(i, s, "db.r6g.large") for i, s in instances)
    )


@pytest.mark.parametrize(
    "hint,seen,lags",
    [
        (RdsHint("RDS-EVENT-0170", "CLUSTER", "qa-db"), cluster("creating"), True),
        (RdsHint("RDS-EVENT-0170", "CLUSTER", "qa-db"), cluster("backing-up"), False),
        (RdsHint("RDS-EVENT-0171", "CLUSTER", "qa-db"), cluster("deleting"), True),
        (RdsHint("RDS-EVENT-0171", "CLUSTER", "qa-db"), None, False),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-1"), cluster("available", ("qa-db-1", "backing-up")), True),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-1"), cluster("available", ("qa-db-1", "creating")), True),
        (RdsHint("RDS-EVENT-0002", "DB_INSTANCE", "qa-db-1"), cluster("available", ("qa-db-1", "available")), False),
        (RdsHint("RDS-EVENT-0003", "DB_INSTANCE", "qa-db-1"), cluster("deleting", ("qa-db-1", "deleting")), True),
        (RdsHint("RDS-EVENT-0003", "DB_INSTANCE", "qa-db-1"), cluster("deleting"), False),
        (RdsHint("RDS-EVENT-0014", "DB_INSTANCE", "qa-db-1"), cluster("available", ("qa-db-1", "modifying")), True),
        (RdsHint("RDS-EVENT-0001", "DB_INSTANCE", "qa-db-1"), cluster("available", ("qa-db-1", "creating")), False),
    ],
)
def test_describe_lags_when_it_still_shows_what_the_event_says_was_left(
    hint: RdsHint, seen: ClusterView | None, lags: bool
) -> None:
    assert describe_lags(hint, seen) is lags


def test_fallback_comes_every_interval_and_last_just_before_the_answer_margin() -> None:
    deadline = 1000.0
    assert fallback_delay(0, deadline) == FALLBACK_SECONDS
    assert fallback_delay(deadline - ANSWER_MARGIN_SECONDS - 10.5, deadline) == 10
    assert fallback_delay(deadline - ANSWER_MARGIN_SECONDS - 0.5, deadline) == 1
    assert fallback_delay(deadline, deadline) == 1


def test_out_of_time_only_inside_the_answer_margin() -> None:
    assert not out_of_time(1000 - ANSWER_MARGIN_SECONDS - 0.001, 1000)
    assert out_of_time(1000 - ANSWER_MARGIN_SECONDS, 1000)


@pytest.mark.parametrize(
    "kind,seen,interval",
    [
        ("teardown", cluster("deleting", ("qa-db-1", "deleting")), LAST_STAGE_SECONDS),
        ("teardown", cluster("available", ("qa-db-1", "available")), FALLBACK_SECONDS),
        ("teardown", None, FALLBACK_SECONDS),
        ("converge", cluster("available", ("qa-db-1", "backing-up")), LAST_STAGE_SECONDS),
        ("converge", cluster("available", ("qa-db-1", "available"), ("qa-db-2", "modifying")), LAST_STAGE_SECONDS),
        ("converge", cluster("available", ("qa-db-1", "creating")), FALLBACK_SECONDS),
        ("converge", cluster("available", ("qa-db-1", "backing-up"), ("qa-db-2", "creating")), FALLBACK_SECONDS),
        ("converge", cluster("available"), FALLBACK_SECONDS),
        ("converge", cluster("backing-up"), FALLBACK_SECONDS),
    ],
)
def test_next_look_sooner_only_while_the_last_stage_is_under_way(
    kind: str, seen: ClusterView | None, interval: int
) -> None:
    assert next_look_interval(kind, seen) == interval
