"""The local world's Serverless v2 auto-pause gate: when a cluster counts as paused, and what a session waits."""

from __future__ import annotations

import asyncio

from aurora_clone.local.auto_pause import RESUME_SECONDS, SECONDS_UNTIL_AUTO_PAUSE, AutoPause


class WorldClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.waited: list[float] = []

    def to_real(self, seconds: float) -> float:
        self.waited.append(seconds)
        return 0.0


def gate(clock: WorldClock, pausable: bool = True) -> AutoPause:
    return AutoPause(lambda: pausable, clock=lambda: clock.now, to_real=clock.to_real)


def test_a_session_after_the_idle_time_waits_for_the_resume_and_the_next_does_not() -> None:
    clock = WorldClock()
    paused = gate(clock)
    clock.now = SECONDS_UNTIL_AUTO_PAUSE

    asyncio.run(paused.opening())
    asyncio.run(paused.opening())

    assert clock.waited == [RESUME_SECONDS]
    assert paused.resumes == 1


def test_an_open_session_keeps_it_running_and_its_end_restarts_the_idle_time() -> None:
    clock = WorldClock()
    running = gate(clock)
    asyncio.run(running.opening())
    clock.now = 10 * SECONDS_UNTIL_AUTO_PAUSE

    assert not running.paused(), "paused with a session open"
    running.closed()
    clock.now += SECONDS_UNTIL_AUTO_PAUSE - 1
    assert not running.paused()
    clock.now += 1
    assert running.paused()


def test_a_cluster_that_may_not_pause_never_does() -> None:
    clock = WorldClock()
    provisioned = gate(clock, pausable=False)
    clock.now = 10 * SECONDS_UNTIL_AUTO_PAUSE

    asyncio.run(provisioned.opening())

    assert not provisioned.paused() and clock.waited == [] and provisioned.resumes == 0
