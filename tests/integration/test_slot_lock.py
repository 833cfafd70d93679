"""The per-source slot lock in the request table: one holder at a time; a dead holder's lock is taken over by
exactly one of the callers that find it stale."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from aurora_clone import clock as process_clock
from aurora_clone.clock import WorldClock
from aurora_clone.local.template import load_template
from aurora_clone.request_store import RequestStore
from aurora_clone.slot_lock import STALE_AFTER_SECONDS, SlotLock, SlotLockBusyError
from tests.conftest import FakeClock
from tests.moto_gaps import AwsGaps

ROOT = Path(__file__).resolve().parents[2]
STALE_AFTER = 120.0


def lock(clock: FakeClock, wait_seconds: float = 0.0) -> SlotLock:
    return SlotLock(
        RequestStore(),
        wait_seconds=wait_seconds,
        stale_after=STALE_AFTER,
        clock=clock,
        elapsed=clock,
        sleep=clock.advance,
    )


def test_second_holder_waits_then_gives_up_while_the_first_holds(world: AwsGaps, clock: FakeClock) -> None:
    with (
        lock(clock).hold("prod-db", "request-a"),
        pytest.raises(SlotLockBusyError, match="prod-db"),
        lock(clock, wait_seconds=5).hold("prod-db", "request-b"),
    ):
        pass


def test_a_waiter_waits_its_real_seconds_however_fast_the_world_clock_runs(world: AwsGaps, clock: FakeClock) -> None:
    # In the local world a real second is hundreds of world seconds; the wait spends real invocation time.
    real = FakeClock()
    store = RequestStore()
    assert store.take_lock("slots/prod-db", "request-a", clock.now, keep_seconds=3600)

    def sleep(seconds: float) -> None:
        real.advance(seconds)
        clock.advance(seconds * 200)
        if real.now - 1_800_000_000.0 >= 2:
            store.release_lock("slots/prod-db", "request-a")  # the holder finishes after 2 real seconds

    waiter = SlotLock(store, wait_seconds=5, stale_after=10**9, clock=clock, elapsed=real, sleep=sleep)
    with waiter.hold("prod-db", "request-b"):
        assert store.read_lock("slots/prod-db") == ("request-b", clock.now)
    assert 2 <= real.now - 1_800_000_000.0 < 5


def test_lock_is_free_again_once_released_and_other_sources_are_apart(world: AwsGaps, clock: FakeClock) -> None:
    with lock(clock).hold("prod-db", "request-a"), lock(clock).hold("other-db", "request-b"):
        pass
    with lock(clock).hold("prod-db", "request-c"):
        assert RequestStore().read_lock("slots/prod-db") == ("request-c", clock.now)


def test_same_holder_takes_it_again_a_redelivered_request(world: AwsGaps, clock: FakeClock) -> None:
    with lock(clock).hold("prod-db", "request-a"), lock(clock).hold("prod-db", "request-a"):
        pass


def test_two_callers_finding_a_lock_stale_only_one_takes_it_over(world: AwsGaps, clock: FakeClock) -> None:
    store = RequestStore()
    assert store.take_lock("slots/prod-db", "dead-holder", clock.now, keep_seconds=3600)
    clock.advance(STALE_AFTER + 1)
    seen_by_a = store.read_lock("slots/prod-db")
    seen_by_b = store.read_lock("slots/prod-db")
    assert seen_by_a is not None and seen_by_a == seen_by_b

    took_a = store.take_over_lock("slots/prod-db", seen_by_a, "request-a", clock.now, keep_seconds=3600)
    took_b = store.take_over_lock("slots/prod-db", seen_by_b, "request-b", clock.now, keep_seconds=3600)

    assert (took_a, took_b) == (True, False)
    assert store.read_lock("slots/prod-db") == ("request-a", clock.now)


def test_concurrent_holders_never_overlap(world: AwsGaps) -> None:
    inside: list[str] = []
    overlaps: list[tuple[str, ...]] = []
    guard = threading.Lock()

    def hold(holder: str) -> None:
        with SlotLock(RequestStore(), wait_seconds=30).hold("prod-db", holder):
            with guard:
                inside.append(holder)
                if len(inside) > 1:
                    overlaps.append(tuple(inside))
            with guard:
                inside.remove(holder)

    threads = [threading.Thread(target=hold, args=(f"request-{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert overlaps == []
    assert RequestStore().read_lock("slots/prod-db") is None


def test_a_live_holder_is_not_taken_over_however_fast_the_world_clock_runs(world: AwsGaps) -> None:
    # The local world's clock runs hundreds of times faster than a holder lives: judged on the world's clock, a
    # holder a fraction of a real second into its restore looked dead, and two stacks took the last slot.
    world_clock = WorldClock(epoch=time.time(), scale=1e-6)  # 300 s of the world pass in 0.3 ms
    with process_clock.using(world_clock.now):
        holder, waiter = SlotLock(RequestStore()), SlotLock(RequestStore(), wait_seconds=0.5)
        with holder.hold("prod-db", "request-a"):
            assert world_clock.now() - time.time() > STALE_AFTER_SECONDS * 10
            with pytest.raises(SlotLockBusyError), waiter.hold("prod-db", "request-b"):
                pass
            seen = RequestStore().read_lock("slots/prod-db")
        assert seen is not None and seen[0] == "request-a"
        assert abs(seen[1] - time.time()) < 60, "stamped on the system clock"


def test_no_function_holding_the_lock_outlives_its_staleness() -> None:
    template = load_template(ROOT / "template.yaml")
    timeouts = {name: template["Resources"][name]["Properties"]["Timeout"] for name in ("Function", "PoolFunction")}
    assert max(timeouts.values()) <= STALE_AFTER_SECONDS, timeouts
