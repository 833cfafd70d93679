"""PrepareScript through the request engine: the Create answers only once the in-VPC function's run of the
script says it succeeded, with PreparedWith; a run that fails, or says nothing within the function's timeout,
fails the request; an Update runs the script again only when its URI changes; a template the function stack
cannot serve is refused at once, before anything is made."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone import handler as handler_module
from aurora_clone.connection_check import PREPARE_LIMIT_SECONDS, ProbeRequest, ProbeResult
from aurora_clone.engine import RequestEngine
from aurora_clone.rds import RdsGateway
from aurora_clone.request_record import PreparationState, token_of
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.wake_queue import WakeUpQueue
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids
from tests.moto_gaps import AwsGaps

SCRIPT = "s3://masking-scripts/orders/mask.sql"
RAN = f"{SCRIPT}?versionId=v1"
REACHED = ProbeResult(True, "query", "logged in as the master user; SELECT 1 returned 1")


class InVpcFunction:
    """The connection check's function as the clone function sees it: probes reach; a prepare run is started
    and, when ``finish`` is called, ends as the test says, written in the request table as the function does."""

    def __init__(self) -> None:
        self.started: list[ProbeRequest] = []

    def probe(self, request: ProbeRequest) -> ProbeResult:
        return REACHED

    def start_prepare(self, request: ProbeRequest) -> None:
        self.started.append(request)
        RequestStore().start_preparation(request.cluster, request.prepare, 0.0)

    def finish(self, state: PreparationState, detail: str, ran: str = RAN) -> None:
        request = self.started[-1]
        assert RequestStore().finish_preparation(request.cluster, request.prepare, state, detail, ran)


def engine_with(
    monkeypatch: pytest.MonkeyPatch, clock: FakeClock, function: InVpcFunction | None, locations: str = ""
) -> None:
    monkeypatch.setenv("PREPARE_SCRIPT_LOCATIONS", locations or "arn:aws:s3:::masking-scripts/*")

    def engine() -> RequestEngine:
        def clone_resource(hooks: EngineHooks) -> CloneResource:
            return CloneResource(RdsGateway(), clock, hooks=hooks, prober=function, run_clock=clock)

        return RequestEngine(clone_resource, RequestStore(), WakeUpQueue(), clock=clock, run_clock=clock)

    monkeypatch.setattr(handler_module, "engine", engine)


def props(source: Source, **extra: str) -> dict[str, Any]:
    return {"SourceClusterId": source.identifier, "ManageMasterUserPassword": "true", "PrepareScript": SCRIPT, **extra}


def run_until_started(cfn: FakeCloudFormation, function: InVpcFunction, runs: int = 1) -> None:
    """Step until the function was asked for ``runs`` prepare runs in all."""
    for _ in range(30):
        if len(function.started) >= runs:
            return
        cfn.step()
    raise AssertionError("the prepare script was never started")


@pytest.fixture
def started(
    cfn: FakeCloudFormation, source: Source, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> tuple[InVpcFunction, Any]:
    """A Create with PrepareScript sent, its clone made and its script started: the function, the request."""
    function = InVpcFunction()
    engine_with(monkeypatch, clock, function)
    sent = cfn.send(cfn.event("Create", props(source)))
    run_until_started(cfn, function)
    return function, sent


def test_a_create_answers_once_the_script_succeeded_with_what_ran(
    cfn: FakeCloudFormation, source: Source, started: tuple[InVpcFunction, Any]
) -> None:
    function, sent = started
    for _ in range(3):
        cfn.step()
    assert cfn.answer(sent) is None, "answered while the script was still running"
    function.finish("done", "2 statements in 0.4 s")
    answer = cfn.run(sent)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["Data"]["PreparedWith"] == RAN
    # Started once, for this request's clone, by the request's token: the function reads the script itself.
    assert len(function.started) == 1
    assert function.started[0].cluster == answer["PhysicalResourceId"]
    assert function.started[0].to_event() == {"cluster": answer["PhysicalResourceId"], "prepare": token_of(sent.event)}

    # The same script again (unchanged, only spaced differently): an Update runs nothing, and still says what ran.
    update = cfn.run(
        cfn.send(
            cfn.event(
                "Update",
                props(source, PrepareScript=f" {SCRIPT} "),
                physical_id=answer["PhysicalResourceId"],
                old_properties=props(source),
            )
        )
    )
    assert update["Status"] == "SUCCESS", update.get("Reason")
    assert update["Data"]["PreparedWith"] == RAN
    assert len(function.started) == 1

    # A new version: it runs again.
    newer = cfn.send(
        cfn.event(
            "Update",
            props(source, PrepareScript=f"{SCRIPT}?versionId=v2"),
            physical_id=answer["PhysicalResourceId"],
            old_properties=props(source),
        )
    )
    run_until_started(cfn, function, runs=2)
    assert len(function.started) == 2
    function.finish("done", "2 statements in 0.4 s", f"{SCRIPT}?versionId=v2")
    assert cfn.run(newer)["Data"]["PreparedWith"] == f"{SCRIPT}?versionId=v2"


def test_a_failed_run_fails_the_create_with_the_function_s_words_and_the_rollback_removes_the_clone(
    cfn: FakeCloudFormation, source: Source, started: tuple[InVpcFunction, Any]
) -> None:
    function, sent = started

    function.finish("failed", f"the prepare script {RAN} failed: statement 2 (line 4) failed: boom (SQLSTATE 22P02)")
    answer = cfn.run(sent)

    assert answer["Status"] == "FAILED"
    assert answer["Reason"] == f"The prepare script {RAN} failed: statement 2 (line 4) failed: boom (SQLSTATE 22P02)."
    clone = answer["PhysicalResourceId"]
    rollback = cfn.run(cfn.send(cfn.event("Delete", props(source), physical_id=clone)))
    assert rollback["Status"] == "SUCCESS", rollback.get("Reason")
    assert clone not in cluster_ids()


def test_a_run_that_says_nothing_within_the_function_s_timeout_fails_the_create(
    cfn: FakeCloudFormation, world: AwsGaps, clock: FakeClock, started: tuple[InVpcFunction, Any]
) -> None:
    _, sent = started

    def later() -> None:
        world.advance()
        clock.advance(PREPARE_LIMIT_SECONDS / 5)

    answer = cfn.run(sent, later, max_rounds=20)

    assert answer["Status"] == "FAILED"
    assert f"The prepare script {SCRIPT} gave no result within {PREPARE_LIMIT_SECONDS:.0f} s" in answer["Reason"]


@pytest.mark.parametrize(
    ("function", "locations", "extra", "said"),
    [
        (None, "", {}, "PrepareScript is run by the connection check's function in your tests' VPC"),
        (InVpcFunction, "arn:aws:s3:::other-bucket/*", {}, "its PrepareScriptLocations: arn:aws:s3:::other-bucket/*"),
        (InVpcFunction, "", {"ManageMasterUserPassword": "false"}, "set ManageMasterUserPassword to true"),
    ],
    ids=["no connection check", "outside the locations", "no managed secret"],
)
def test_a_template_the_function_stack_cannot_serve_is_refused_at_once_and_nothing_is_made(
    cfn: FakeCloudFormation,
    world: AwsGaps,
    source: Source,
    clock: FakeClock,
    monkeypatch: pytest.MonkeyPatch,
    function: type[InVpcFunction] | None,
    locations: str,
    extra: dict[str, str],
    said: str,
) -> None:
    engine_with(monkeypatch, clock, function() if function else None, locations)
    before = cluster_ids()

    answer = cfn.run(cfn.send(cfn.event("Create", props(source, **extra))))

    assert answer["Status"] == "FAILED"
    assert said in answer["Reason"]
    assert cluster_ids() == before
