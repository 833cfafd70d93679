"""The optional connection check: SUCCESS only once the probe reaches the clone; an unreachable clone fails,
naming its security groups and subnet group, and its Create's rollback removes it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from aurora_clone import handler as handler_module
from aurora_clone.connection_check import PATIENCE_SECONDS, ProbeRequest, ProbeResult
from aurora_clone.engine import RequestEngine
from aurora_clone.rds import RdsGateway
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.wake_queue import WakeUpQueue
from tests.cloudformation import FakeCloudFormation
from tests.conftest import FakeClock, Source, cluster_ids
from tests.moto_gaps import AwsGaps

UNREACHABLE = ProbeResult(False, "tcp", "no answer within 4 seconds")
REACHED = ProbeResult(True, "query", "logged in as the master user; SELECT 1 returned 1")


class ScriptedProbe:
    """Answers with ``answer(request)``, and remembers what it was asked to reach."""

    def __init__(self, answer: Callable[[ProbeRequest], ProbeResult]) -> None:
        self.answer = answer
        self.asked: list[ProbeRequest] = []

    def probe(self, request: ProbeRequest) -> ProbeResult:
        self.asked.append(request)
        return self.answer(request)

    def start_prepare(self, request: ProbeRequest) -> None:
        raise AssertionError(f"no prepare script was asked for, yet one was started: {request}")


def with_probe(monkeypatch: pytest.MonkeyPatch, clock: FakeClock, probe: ScriptedProbe) -> None:
    """The handler's engine as the function builds it when CONNECTION_CHECK_FUNCTION is set."""

    def engine() -> RequestEngine:
        def clone_resource(hooks: EngineHooks) -> CloneResource:
            return CloneResource(RdsGateway(), clock, hooks=hooks, prober=probe)

        return RequestEngine(clone_resource, RequestStore(), WakeUpQueue(), clock=clock, run_clock=clock)

    monkeypatch.setattr(handler_module, "engine", engine)


def test_a_create_answers_only_once_the_probe_reaches_the_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    reachable = {"now": False}
    probe = ScriptedProbe(lambda _request: REACHED if reachable["now"] else UNREACHABLE)
    with_probe(monkeypatch, clock, probe)
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))

    for _ in range(20):  # RDS makes the clone and its writer available; the probe cannot reach it yet
        if probe.asked:
            break
        cfn.step()
    assert probe.asked, "the probe was never asked"
    cfn.step()
    assert cfn.answer(sent) is None, "answered while the clone could not be reached"
    reachable["now"] = True
    answer = cfn.run(sent)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    # The probe is asked about the clone by its identifier only: it reads the endpoint and secret from RDS.
    assert probe.asked[-1] == ProbeRequest(answer["PhysicalResourceId"])
    assert probe.asked[-1].to_event() == {"cluster": answer["PhysicalResourceId"]}
    assert cfn.nothing_left()


def test_a_clone_the_probe_never_reaches_fails_naming_its_network_and_is_removed_by_the_rollback(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    probe = ScriptedProbe(lambda _request: UNREACHABLE)
    with_probe(monkeypatch, clock, probe)
    sent = cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier}))

    def advance() -> None:
        world.advance()
        if probe.asked:
            clock.advance(PATIENCE_SECONDS / 4)

    answer = cfn.run(sent, advance, max_rounds=40)

    assert answer["Status"] == "FAILED"
    clone = answer["PhysicalResourceId"]
    reason = answer["Reason"]
    assert f"The clone '{clone}' is available but the connection check cannot reach it" in reason
    assert "no TCP connection" in reason and "security groups (" in reason and "subnet group (" in reason
    assert 2 <= len(probe.asked) <= 6, "looked again for its patience, then gave up"
    # CloudFormation's rollback deletes what the failed Create made.
    rollback = cfn.run(cfn.send(cfn.event("Delete", {"SourceClusterId": source.identifier}, physical_id=clone)))
    assert rollback["Status"] == "SUCCESS", rollback.get("Reason")
    assert clone not in cluster_ids()
