"""The in-VPC function's prepare run (``probe.prepare``) against forged and repeated invokes: it runs only the
script the pending request's own job names, only in the cluster that request acts on, only once; anything
else reads no script and no secret. A script it cannot read or split ends the run with a sentence saying so."""

from __future__ import annotations

import pytest

from aurora_clone.clone_state import ClusterView
from aurora_clone.connection_check import ProbeRequest
from aurora_clone.outcome import Job
from aurora_clone.prepare_script import ScriptLocation
from aurora_clone.probe import prepare
from aurora_clone.request_record import MadeRecord, RequestRecord
from aurora_clone.request_store import RequestStore
from tests.moto_gaps import AwsGaps

CLONE, OTHER = "aurora-clone-it-1a2b", "aurora-clone-other-3c4d"
TOKEN, OTHER_TOKEN = "0123456789ab", "ba9876543210"
SCRIPT = "s3://masking-scripts/mask.sql"


class Untouchable:
    """Stands for S3, Secrets Manager and RDS: records any use, which the forged invokes must not make."""

    def __init__(self, body: bytes = b"UPDATE customers SET email = 'x';") -> None:
        self.used: list[str] = []
        self.body = body

    def read_object(self, location: ScriptLocation) -> tuple[bytes, str, str]:
        self.used.append(f"s3:{location.uri}")
        return self.body, "v1", '"etag"'

    def read_secret(self, arn: str) -> tuple[str, str]:
        self.used.append(f"secret:{arn}")
        raise AssertionError("no login may be tried in these tests")

    def describe_cluster(self, identifier: str) -> ClusterView:
        self.used.append(f"rds:{identifier}")
        return ClusterView(
            identifier,
            "available",
            "aurora-postgresql",
            endpoint=f"{identifier}.cluster-x.rds.amazonaws.com",
            port=5432,
            master_user_secret_arn="arn:aws:secretsmanager:us-east-1:111122223333:secret:rds!cluster-x",
        )


def pending(store: RequestStore, token: str, cluster: str, script: str = SCRIPT, state: str = "pending") -> None:
    """A request whose job acts on ``cluster`` and names ``script``, in ``state``."""
    record = RequestRecord(token, {"RequestType": "Create"}, deadline=4e9)
    store.open(record, 0.0)
    job = Job("converge", cluster, deadline=4e9, answer_id=cluster, prepare=script)
    assert store.update(record, {"job": job, "state": state})


def run(request: ProbeRequest, aws: Untouchable) -> str:
    result = prepare(
        request,
        seconds_left=lambda: 60.0,
        clusters=aws,
        read_secret=aws.read_secret,
        read_object=aws.read_object,
    )
    assert not result.reachable
    return result.detail


@pytest.fixture
def store(world: AwsGaps) -> RequestStore:
    store = RequestStore()
    for cluster in (CLONE, OTHER):
        assert store.record_made(MadeRecord(cluster, "clone", request="r", stack_id="s", logical_id="l")) is None
    return store


def test_a_cluster_the_tool_did_not_make_gets_nothing_run(store: RequestStore) -> None:
    aws = Untouchable()
    pending(store, TOKEN, "prod-db")

    said = run(ProbeRequest("prod-db", prepare=TOKEN), aws)

    assert "not a cluster this tool made" in said
    assert aws.used == []
    assert store.preparation("prod-db") is None


@pytest.mark.parametrize(
    ("cluster", "state"),
    [(OTHER, "pending"), (CLONE, "answered")],
    ids=["another cluster's request", "an answered request"],
)
def test_a_request_that_does_not_prepare_this_cluster_now_gets_nothing_run(
    store: RequestStore, cluster: str, state: str
) -> None:
    aws = Untouchable()
    pending(store, TOKEN, cluster, state=state)

    said = run(ProbeRequest(CLONE, prepare=TOKEN), aws)

    assert f"no pending request '{TOKEN}' asks to prepare '{CLONE}'" in said
    assert aws.used == []
    assert store.preparation(CLONE) is None


def test_a_token_no_request_has_gets_nothing_run(store: RequestStore) -> None:
    aws = Untouchable()

    assert "no pending request" in run(ProbeRequest(CLONE, prepare=OTHER_TOKEN), aws)
    assert aws.used == []


def test_a_second_invoke_for_the_same_request_runs_nothing(store: RequestStore) -> None:
    aws = Untouchable()
    pending(store, TOKEN, CLONE)
    assert store.start_preparation(CLONE, TOKEN, 0.0)  # the first invoke's run

    said = run(ProbeRequest(CLONE, prepare=TOKEN), aws)

    assert "started before: it runs once" in said
    assert aws.used == []
    run_record = store.preparation(CLONE)
    assert run_record is not None and run_record.state == "running"


@pytest.mark.parametrize(
    ("body", "said"),
    [
        (b"UPDATE customers SET email = 'open", "cannot be split into statements: line 1: the ' quote opened"),
        (b"-- nothing but a comment\n", "has no statement"),
        (b"\xff\xfe not text", "is not UTF-8 text"),
    ],
)
def test_a_script_that_cannot_run_ends_the_run_saying_why_without_a_login(
    store: RequestStore, body: bytes, said: str
) -> None:
    aws = Untouchable(body)
    pending(store, TOKEN, CLONE)

    detail = run(ProbeRequest(CLONE, prepare=TOKEN), aws)

    assert said in detail
    assert not [use for use in aws.used if use.startswith("secret:")], "the secret was read"
    run_record = store.preparation(CLONE)
    assert run_record is not None and run_record.state == "failed" and said in run_record.detail
    assert run_record.prepared_with == "s3://masking-scripts/mask.sql?versionId=v1"


def test_forged_invoke_shapes_are_refused_before_anything_is_read() -> None:
    for event in (
        {"cluster": CLONE, "prepare": "s3://evil/drop.sql"},
        {"cluster": CLONE, "prepare": TOKEN, "script": "DROP TABLE customers"},
    ):
        with pytest.raises(ValueError, match=r"prepare request names the request by its token|nothing else"):
            ProbeRequest.from_event(event)
