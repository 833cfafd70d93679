"""EventBridge rules of the local world: the limits real EventBridge enforces and moto does not, and the
default bus's events handed on. Installed with the RDS rules (``RdsRules`` calls
``install_eventbridge_rules``).

- ``PutRule`` (and the ``Rule`` of ``PutTargets``) checks the rule name (at most 64 characters of
  ``[.\\-_A-Za-z0-9]``); ``PutTargets`` checks ``Input`` is at most 8192 characters (both
  ``ValidationException``).
- **300 rules per event bus** (REFERENCE, "Waking a request up again"): ``PutRule`` of a new rule on a bus
  that already has ``RULES_PER_BUS`` rules answers ``LimitExceededException``; updating an existing rule is
  still allowed.
- Rules without a pattern receive no bus events, and targets moto cannot deliver to (Lambda, ...) are
  skipped instead of failing the whole ``PutEvents``.
- ``PutEvents`` on the default bus is handed to ``notify``, as the RDS events are.
"""

from __future__ import annotations

import copy
import datetime
import json
import re
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any
from unittest import mock

from moto.core.exceptions import JsonRESTError
from moto.events.exceptions import ValidationException
from moto.events.models import EventsBackend, Rule

from aurora_clone.local import events as rds_events
from aurora_clone.local.moto_lock import LOCK, locked
from aurora_clone.local.pace import Pace

RULE_NAME_MAX_LENGTH = 64
RULE_NAME_PATTERN = r"[\.\-_A-Za-z0-9]+"
TARGET_INPUT_MAX_LENGTH = 8192
RULES_PER_BUS = 300
RULE_LIMIT_MESSAGE = "The requested resource exceeds the maximum number allowed."


def install_eventbridge_rules(stack: ExitStack, pace: Pace, notify: Callable[[dict[str, Any]], None] | None) -> None:
    """Install the rules until ``stack`` closes. See the module docstring."""

    def wrap(owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
        stack.enter_context(mock.patch.object(owner, name, wrapper(getattr(owner, name))))

    wrap(EventsBackend, "put_rule", locked(_put_rule))
    wrap(EventsBackend, "put_targets", locked(_put_targets))
    wrap(EventsBackend, "remove_targets", locked(_unchanged))
    wrap(EventsBackend, "delete_rule", locked(_unchanged))
    wrap(EventsBackend, "put_events", _handing_on_default_bus_events(pace, notify))
    wrap(Rule, "send_to_targets", _send_to_deliverable_targets)
    # Outside the name check: a new rule on a full bus is refused for the quota whatever its name.
    wrap(EventsBackend, "put_rule", _within_rule_quota)


def _unchanged(original: Callable[..., Any]) -> Callable[..., Any]:
    return original


def _validation_error(violations: list[str]) -> ValidationException:
    count = len(violations)
    noun = "validation error" if count == 1 else "validation errors"
    return ValidationException(f"{count} {noun} detected: " + "; ".join(violations))


def _rule_name_violations(name: str, field: str) -> list[str]:
    violations = []
    if len(name) > RULE_NAME_MAX_LENGTH:
        violations.append(
            f"Value '{name}' at '{field}' failed to satisfy constraint: "
            f"Member must have length less than or equal to {RULE_NAME_MAX_LENGTH}"
        )
    if not re.fullmatch(RULE_NAME_PATTERN, name):
        violations.append(
            f"Value '{name}' at '{field}' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {RULE_NAME_PATTERN}"
        )
    return violations


def _put_rule(original: Callable[..., Rule]) -> Callable[..., Rule]:
    def put_rule(backend: EventsBackend, name: str, *args: Any, **kwargs: Any) -> Rule:
        violations = _rule_name_violations(name, "name")
        if violations:
            raise _validation_error(violations)
        return original(backend, name, *args, **kwargs)

    return put_rule


def _within_rule_quota(original: Callable[..., Any]) -> Callable[..., Any]:
    # moto's put_rule(name, description=None, event_bus_arn=None, ...); ``original`` may be another rule's
    # wrapper taking (*args, **kwargs), so the arguments are read by moto's order, not by its signature.
    def put_rule(backend: EventsBackend, *args: Any, **kwargs: Any) -> Any:
        name = args[0] if args else kwargs.get("name")
        bus_arn = args[2] if len(args) > 2 else kwargs.get("event_bus_arn")
        bus = backend.event_buses.get(backend._normalize_event_bus_arn(bus_arn))
        if bus is not None and name not in bus.rules and len(bus.rules) >= RULES_PER_BUS:
            raise JsonRESTError("LimitExceededException", RULE_LIMIT_MESSAGE)
        return original(backend, *args, **kwargs)

    return put_rule


def _put_targets(original: Callable[..., None]) -> Callable[..., None]:
    def put_targets(
        backend: EventsBackend, name: str, event_bus_arn: str | None, targets: list[dict[str, Any]]
    ) -> None:
        violations = _rule_name_violations(name, "rule")
        for position, target in enumerate(targets, start=1):
            text = target.get("Input")
            if text is not None and len(text) > TARGET_INPUT_MAX_LENGTH:
                violations.append(
                    f"Value '{text}' at 'targets.{position}.member.input' failed to satisfy constraint: "
                    f"Member must have length less than or equal to {TARGET_INPUT_MAX_LENGTH}"
                )
        if violations:
            raise _validation_error(violations)
        original(backend, name, event_bus_arn, targets)

    return put_targets


def _send_to_deliverable_targets(original: Callable[..., None]) -> Callable[..., None]:
    def send_to_targets(rule: Rule, event: Any, transform_input: bool = True) -> None:
        if rule.scheduled_expression and not rule.event_pattern.get_pattern():
            return  # a schedule, not a pattern: bus events never reach it
        targets = [target for target in rule.targets if rds_events.deliverable(target["Arn"])]
        if len(targets) == len(rule.targets):
            original(rule, event, transform_input)
        elif targets:
            single = copy.copy(rule)
            single.targets = targets
            original(single, event, transform_input)

    return send_to_targets


def _handing_on_default_bus_events(
    pace: Pace, notify: Callable[[dict[str, Any]], None] | None
) -> Callable[[Callable[..., list[dict[str, Any]]]], Callable[..., list[dict[str, Any]]]]:
    def wrapper(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., list[dict[str, Any]]]:
        def put_events(backend: EventsBackend, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
            with LOCK:
                results = original(backend, entries)
                if notify is not None:
                    for entry, result in zip(entries, results, strict=False):
                        if "EventId" in result and _is_default_bus(entry.get("EventBusName")):
                            notify(_bus_event(pace, backend, entry, result["EventId"]))
                return results

        return put_events

    return wrapper


def _bus_event(pace: Pace, backend: EventsBackend, entry: Mapping[str, Any], event_id: str) -> dict[str, Any]:
    when = pace.wall_at(pace.now())
    given = entry.get("Time")
    if isinstance(given, datetime.datetime):
        when = given
    elif isinstance(given, int | float):
        when = datetime.datetime.fromtimestamp(given, datetime.UTC)
    return {
        "version": "0",
        "id": event_id,
        "detail-type": entry["DetailType"],
        "source": entry["Source"],
        "account": backend.account_id,
        "time": rds_events.event_time(when),
        "region": backend.region_name,
        "resources": list(entry.get("Resources") or []),
        "detail": json.loads(entry["Detail"]),
    }


def _is_default_bus(name: str | None) -> bool:
    return name is None or name == "" or name == "default" or name.endswith(":event-bus/default")
