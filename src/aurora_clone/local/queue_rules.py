"""SQS rules of the local world, installed beside the RDS rules (``RdsRules`` calls ``install_queue_rules``).

- **SQS time is the pace's**: moto's SQS reads the time in one place (``unix_time_millis`` and
  ``unix_time`` in ``moto.sqs.models``): sent timestamps, ``DelaySeconds``, visibility timeouts, first
  receive timestamps, retention. Here that time is the world's:

  - with ``WorldPace``, the world's date (its epoch plus world seconds), so a message delayed 30 s stays
    hidden for 30 world seconds, however fast the world runs;
  - with ``ManualPace``, each manual step is ``MANUAL_STEP_SECONDS`` (10**6 s), so every delay (at most
    900 s) and every visibility timeout (at most 12 h) ends at the next ``advance()`` and never before it.
    Within a step the clock follows real time for at most 999 ms, so a visibility timeout of 0 still ends
    at once. Retention and long polling stay in real time there (no message expires during a test).
    moto measures ChangeMessageVisibility's 12-hour limit from the sent timestamp, so there it refuses a
    message sent in an earlier step.

- **Event source mappings are the queue poller's**: moto's ``Queue.add_message`` hands every new
  message to the queue's Lambda event source mappings itself, at once, through a Docker Lambda. Here a
  queue never holds a mapping (moto's Lambda keeps them for ``GetEventSourceMapping`` and
  ``ListEventSourceMappings``), and ``aurora_clone.local.queue_poller`` delivers, as Lambda's pollers do.
"""

from __future__ import annotations

import datetime
import threading
import time
from contextlib import ExitStack
from typing import Any, Protocol
from unittest import mock

import moto.sqs.models as sqs_models

MANUAL_STEP_SECONDS = 10**6
MANUAL_DRIFT_MS = 999.0  # how far the manual clock follows real time within one step


class Pace(Protocol):
    """What the SQS clock needs of a pace (``aurora_clone.local.pace``)."""

    def now(self) -> float: ...

    def wall_at(self, moment: float) -> datetime.datetime: ...


class SqsClock(Protocol):
    def millis(self) -> float: ...

    def seconds(self) -> float: ...


class PaceClock:
    """The world's date in Unix time, as the pace gives it (a ``WorldPace``: the world clock)."""

    def __init__(self, pace: Pace) -> None:
        self._pace = pace

    def seconds(self) -> float:
        return self._pace.wall_at(self._pace.now()).timestamp()

    def millis(self) -> float:
        return self.seconds() * 1000.0


class ManualClock:
    """``MANUAL_STEP_SECONDS`` per step of a manual pace, plus up to ``MANUAL_DRIFT_MS`` of real time in a step."""

    def __init__(self, pace: Pace) -> None:
        self._pace = pace
        self._epoch_ms = time.time() * 1000.0
        self._lock = threading.Lock()
        self._step = pace.now()
        self._step_began = time.monotonic()

    def millis(self) -> float:
        with self._lock:
            step = self._pace.now()
            if step != self._step:
                self._step, self._step_began = step, time.monotonic()
            drift = min(MANUAL_DRIFT_MS, (time.monotonic() - self._step_began) * 1000.0)
        return self._epoch_ms + step * MANUAL_STEP_SECONDS * 1000.0 + drift

    def seconds(self) -> float:
        return self.millis() / 1000.0


def install_queue_rules(stack: ExitStack, pace: Pace, *, manual: bool) -> None:
    """Install the rules until ``stack`` closes; ``manual``: ``pace`` is a ManualPace. See the module docstring."""
    clock: SqsClock = ManualClock(pace) if manual else PaceClock(pace)
    stack.enter_context(mock.patch.object(sqs_models, "unix_time_millis", lambda *_: clock.millis()))
    if not manual:
        stack.enter_context(mock.patch.object(sqs_models, "unix_time", lambda *_: clock.seconds()))
    # A class-level property hides the instance attribute moto's Queue and Lambda write: reads get an empty
    # dict, writes go nowhere, so add_message never dispatches to a mapping.
    stack.enter_context(
        mock.patch.object(
            sqs_models.Queue, "lambda_event_source_mappings", property(_no_mappings, _drop_mappings), create=True
        )
    )


def _no_mappings(_queue: Any) -> dict[str, Any]:
    return {}


def _drop_mappings(_queue: Any, _value: Any) -> None:
    pass
