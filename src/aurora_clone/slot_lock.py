"""A per-source lock around "count the free clone slots, then restore", in the function's table.

Without it two stacks created at once could both see the last free slot of a source and both clone
it, and Aurora would silently make the second a full copy (REFERENCE: the 15-clone limit). Taking the
lock is a conditional put (free, or already ours); a lock older than ``stale_after`` seconds (its holder
died) is taken over with a put conditional on the holder and time that were read, so of two callers that
both find it stale, one gets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from aurora_clone.request_store import RequestStore

# How often a waiting caller looks at the lock again: a claim or a restore holds it for a few calls only.
LOOK_AGAIN_SECONDS = 0.2
# A live holder is never taken over: no function of ours that holds the lock runs longer than this
# (template.yaml: Function's Timeout 120, PoolFunction's 300).
STALE_AFTER_SECONDS = 300.0


class SlotLockBusyError(Exception):
    """Another invocation held the source's lock for longer than this one could wait."""


class SlotLock:
    """``with lock.hold("prod-db", token): ...`` runs the block while no one else holds prod-db."""

    def __init__(
        self,
        store: RequestStore | None = None,
        *,
        wait_seconds: float = 20.0,
        stale_after: float = STALE_AFTER_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        elapsed: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store or RequestStore()
        self._wait = wait_seconds
        self._stale_after = stale_after
        self._sleep = sleep
        # A holder lives in real seconds (its invocation's Timeout), so locks are stamped and judged stale on
        # the system clock, even in the local world, whose clock runs hundreds of times faster.
        self._clock = clock
        self._elapsed = elapsed  # the time a waiter spends of its invocation: always the real one

    @contextmanager
    def hold(self, source_id: str, holder: str) -> Iterator[None]:
        name = f"slots/{source_id}"
        self._acquire(name, source_id, holder)
        try:
            yield
        finally:
            self._store.release_lock(name, holder)

    def _acquire(self, name: str, source_id: str, holder: str) -> None:
        give_up = self._elapsed() + self._wait
        keep = self._stale_after * 10
        while True:
            if self._store.take_lock(name, holder, self._clock(), keep):
                return
            seen = self._store.read_lock(name)
            if seen is not None and self._clock() - seen[1] > self._stale_after:
                if self._store.take_over_lock(name, seen, holder, self._clock(), keep):
                    return
                continue  # someone else took it over first: look again
            if self._elapsed() >= give_up:
                raise SlotLockBusyError(
                    f"Another clone of '{source_id}' has been starting for over {self._wait:.0f} s; "
                    "try again in a minute."
                )
            self._sleep(LOOK_AGAIN_SECONDS)
