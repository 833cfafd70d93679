"""Aurora Serverless v2 auto-pause for the local world's real database servers.

On AWS an instance of a cluster whose ``ServerlessV2MinCapacity`` is 0 pauses after
``SecondsUntilAutoPause`` (default 300 s) without a connection: no capacity is billed, its status stays
``available``, and the next connection waits while it resumes (about 15 s) before the server answers. Here a
cluster's server gets an ``AutoPause`` gate in front of it (``database_servers.TlsFront``): a session opened
while the cluster is paused waits ``resume_seconds`` of world time, then goes through; one opened while it
runs goes through at once.

    >>> now = [0.0]
    >>> gate = AutoPause(lambda: True, clock=lambda: now[0], to_real=lambda seconds: 0.0)
    >>> gate.paused()          # a new server has had no session yet
    False
    >>> now[0] = 301.0
    >>> gate.paused(), gate.resumes
    (True, 0)
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

SECONDS_UNTIL_AUTO_PAUSE = 300.0  # RDS's default SecondsUntilAutoPause
RESUME_SECONDS = 15.0  # how long a paused instance takes to answer its first connection


class AutoPause:
    """Whether one cluster is paused, and the wait of a session that resumes it.

    ``pausable`` says whether the cluster may pause now (MinCapacity 0, a Serverless v2 instance); ``clock``
    is world seconds, ``to_real`` turns world seconds into real ones (the time scale).
    """

    def __init__(
        self,
        pausable: Callable[[], bool],
        *,
        clock: Callable[[], float],
        to_real: Callable[[float], float],
        idle_seconds: float = SECONDS_UNTIL_AUTO_PAUSE,
        resume_seconds: float = RESUME_SECONDS,
    ) -> None:
        self._pausable = pausable
        self._clock = clock
        self._to_real = to_real
        self.idle_seconds = idle_seconds
        self.resume_seconds = resume_seconds
        self._lock = threading.Lock()
        self._sessions = 0
        self._last_active = clock()
        self.resumes = 0  # sessions that had to resume the cluster

    def paused(self) -> bool:
        """True when the cluster may pause and has had no session for ``idle_seconds``."""
        with self._lock:
            idle = self._sessions == 0 and self._clock() - self._last_active >= self.idle_seconds
        return idle and self._pausable()

    async def opening(self) -> None:
        """A session is opening: wait while a paused cluster resumes, then count it as active."""
        if self.paused():
            with self._lock:
                self.resumes += 1
            await asyncio.sleep(self._to_real(self.resume_seconds))
        with self._lock:
            self._sessions += 1
            self._last_active = self._clock()

    def closed(self) -> None:
        """A session opened through ``opening`` ended: the idle time starts again from now."""
        with self._lock:
            self._sessions = max(0, self._sessions - 1)
            self._last_active = self._clock()
