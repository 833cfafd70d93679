"""``EventBridgePlayer``: EventBridge's delivery to Lambda targets, played for the local Lambda runtime.

moto stores rules and targets but never invokes a Lambda target. The player reads the default bus's rules
from moto's backend in this process (cheaper than the API at a tick of a few milliseconds) and:

- fires schedule rules ``rate(N minute|minutes|hour|hours|day|days)`` every N units of world time, the first
  time one period after it first saw the rule (as EventBridge does), only while the rule is ENABLED;
- fires event-pattern rules on every event put on the default bus (``world.subscribe``) that the rule's
  pattern matches, with moto's own matcher.

Each target whose Arn is a function registered in ``LocalLambda`` is invoked asynchronously with the
target's Input, or else with the scheduled event / the matched event. Deleted rules stop firing at once.

One deliberate difference, for schedule rules only: a target whose previous invocation from the same
schedule is still queued or running is skipped (and counted in ``skipped``). World time runs faster than
the handler's real time, so without this a one-minute schedule would pile up invocations no real deployment
would ever see. Event-pattern rules deliver every matching event, however many are in flight, as
EventBridge does: an event skipped there would be an event lost.

    player = EventBridgePlayer(world, lambdas)
    player.start(); ...; player.stop()
    player.fires["aurora-clone-..."]       # invocations started, by rule name
"""

from __future__ import annotations

import json
import logging
import queue
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol, Self

from moto.backends import get_backend

from aurora_clone import clock as process_clock

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_BUS = "default"
LOGGER = logging.getLogger(__name__)


class World(Protocol):
    """What the player needs of LocalAws."""

    region: str
    account_id: str

    def world_time(self) -> float: ...

    def to_real(self, world_seconds: float) -> float: ...

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> None: ...


class Lambdas(Protocol):
    """What the player needs of LocalLambda."""

    def is_registered(self, function_name_or_arn: str) -> bool: ...

    def invoke_async(self, function_name_or_arn: str, event: dict[str, Any]) -> Future[None]: ...


def rate_seconds(expression: str | None) -> int | None:
    """The period of a ``rate(...)`` schedule in seconds; None for anything else (cron is not played)."""
    match = _RATE.fullmatch(expression.strip()) if expression else None
    if match is None or int(match.group(1)) < 1:
        return None
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2).rstrip("s")]


@dataclass
class _Schedule:
    """When a schedule rule next fires, in world seconds."""

    expression: str
    period: float
    next_fire: float


class EventBridgePlayer:
    """A thread delivering schedule and event-pattern rules of the default bus to local Lambda targets."""

    def __init__(self, world: World, lambdas: Lambdas, *, tick_seconds: float | None = None) -> None:
        self._world = world
        self._lambdas = lambdas
        # A tick of one world second, kept between 10 ms (the thread must not hog the CPU) and 250 ms.
        self._tick = tick_seconds if tick_seconds is not None else min(max(world.to_real(1.0), 0.01), 0.25)
        self._schedules: dict[str, _Schedule] = {}
        self._in_flight: dict[tuple[str, str], Future[None]] = {}
        self._events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscribed = False
        self._lock = threading.Lock()
        self.fires: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    @property
    def fire_count(self) -> int:
        """Invocations started so far, all rules together."""
        with self._lock:
            return sum(self.fires.values())

    def start(self) -> None:
        if self._thread is not None:
            return
        if not self._subscribed:
            self._world.subscribe(self._on_event)
            self._subscribed = True
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="eventbridge-player", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop firing; invocations already started go on in LocalLambda. Events put while stopped are lost."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the loop -----------------------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        """The world's subscriber (no way to unsubscribe): only a running player takes events in."""
        if not self._stop.is_set():
            self._events.put(event)

    def _run(self) -> None:
        while not self._stop.is_set():
            events: list[dict[str, Any]] = []
            try:
                events.append(self._events.get(timeout=self._tick))
                while True:
                    events.append(self._events.get_nowait())
            except queue.Empty:
                pass
            if self._stop.is_set():
                return
            try:
                self._play(events)
            except Exception:  # one bad rule or event must not stop EventBridge for everything else
                LOGGER.exception("EventBridge player step failed")

    def _play(self, events: list[dict[str, Any]]) -> None:
        rules = self._rules()
        for event in events:
            self._deliver(event, rules)
        self._fire_schedules(rules)
        names = {rule.name for rule in rules}
        for key in [key for key in self._in_flight if key[0] not in names]:
            del self._in_flight[key]

    def _rules(self) -> list[Any]:
        """A snapshot of the default bus's rules (moto ``Rule`` objects)."""
        backend = get_backend("events")[self._world.account_id][self._world.region]
        bus = backend.event_buses.get(DEFAULT_BUS)
        if bus is None:
            return []
        for _ in range(5):
            try:
                return list(bus.rules.values())
            except RuntimeError:  # the server thread changed the rules while they were copied
                continue
        return []

    def _fire_schedules(self, rules: list[Any]) -> None:
        now = self._world.world_time()
        seen: set[str] = set()
        for rule in rules:
            period = rate_seconds(rule.scheduled_expression)
            if period is None:
                continue
            seen.add(rule.name)
            schedule = self._schedules.get(rule.name)
            if schedule is None or schedule.expression != rule.scheduled_expression:
                self._schedules[rule.name] = _Schedule(rule.scheduled_expression, period, now + period)
                continue
            if now < schedule.next_fire:
                continue
            while schedule.next_fire <= now:  # a late tick fires once, as a missed period is not replayed
                schedule.next_fire += schedule.period
            if rule.state == "ENABLED":
                self._invoke_targets(rule, self._scheduled_event(rule))
        for name in set(self._schedules) - seen:
            del self._schedules[name]

    def _deliver(self, event: dict[str, Any], rules: list[Any]) -> None:
        for rule in rules:
            pattern = rule.event_pattern
            if rule.scheduled_expression or not pattern.get_pattern() or rule.state != "ENABLED":
                continue
            if pattern.matches_event(event):
                self._invoke_targets(rule, event)

    def _scheduled_event(self, rule: Any) -> dict[str, Any]:
        return {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": "Scheduled Event",
            "source": "aws.events",
            "account": self._world.account_id,
            "time": process_clock.utcnow().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "region": self._world.region,
            "resources": [rule.arn],
            "detail": {},
        }

    def _invoke_targets(self, rule: Any, event: dict[str, Any]) -> None:
        for target in list(rule.targets):
            arn = str(target.get("Arn", ""))
            if not self._lambdas.is_registered(arn):
                continue
            key = (rule.name, str(target.get("Id", "")))
            scheduled = bool(rule.scheduled_expression)
            previous = self._in_flight.get(key) if scheduled else None
            if previous is not None and not previous.done():
                with self._lock:
                    self.skipped[rule.name] += 1
                continue
            try:
                payload = json.loads(target["Input"]) if target.get("Input") else event
            except ValueError:
                LOGGER.warning("Rule %s, target %s: Input is not JSON; not delivered", rule.name, key[1])
                continue
            try:
                invocation = self._lambdas.invoke_async(arn, payload)
            except Exception:  # the function was removed or the runtime closed between the check and the call
                continue
            if scheduled:
                self._in_flight[key] = invocation
            with self._lock:
                self.fires[rule.name] += 1
