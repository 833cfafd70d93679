"""cfn-lint rules for ``Custom::AuroraClone``: properties against the shipped schema, attributes in ``Fn::GetAtt``.

cfn-lint loads this file on its own (``cfn-lint --append-rules <this directory>``), so it imports nothing from
the aurora_clone package: the schema is the JSON file beside it. Intrinsic functions and parameters are left
to cfn-lint; a value given by one is not checked here, except that each branch of an ``Fn::If`` is.
"""

from __future__ import annotations

import difflib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, ClassVar

import jsonschema  # type: ignore[import-untyped]  # comes with cfn-lint (through aws-sam-translator)
from cfnlint.rules import CloudFormationLintRule, RuleMatch

RESOURCE_TYPE = "Custom::AuroraClone"
SCHEMA_FILE = Path(__file__).with_name("custom-auroraclone.schema.json")
SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
PROPERTIES: dict[str, dict[str, Any]] = SCHEMA["properties"]
ATTRIBUTES: tuple[str, ...] = tuple(pointer.rsplit("/", 1)[1] for pointer in SCHEMA["readOnlyProperties"])

# cfn-lint's own schema for custom resources requires ServiceToken and checks the types of ServiceToken and
# ServiceTimeout: checking those here too would report one mistake twice.
_LEFT_TO_CFN_LINT: dict[str, set[str]] = {"ServiceToken": {"*"}, "ServiceTimeout": {"type", "pattern"}}
_NO_VALUE = {"Ref": "AWS::NoValue"}
_SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")

CfnPath = list[str | int]  # keys and list positions from the template's root


def _is_function(value: Any) -> bool:
    """True for an intrinsic function or a Ref: ``{"Ref": ...}``, ``{"Fn::...": ...}``."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return False
    key = next(iter(value))
    return isinstance(key, str) and (key == "Ref" or key.startswith("Fn::"))


def _branches(value: Any, path: CfnPath) -> Iterator[tuple[Any, CfnPath]]:
    """The values an ``Fn::If`` can take (nested ones too), each with its path; any other value as it is."""
    if isinstance(value, Mapping) and set(value) == {"Fn::If"}:
        arguments = value["Fn::If"]
        if isinstance(arguments, list) and len(arguments) == 3:
            for position in (1, 2):
                yield from _branches(arguments[position], [*path, "Fn::If", position])
            return
    yield value, path


def _is_set(value: Any) -> bool:
    """Whether a property counts as given: the function treats "" as not set, as CloudFormation does AWS::NoValue."""
    return any(branch != "" and branch != _NO_VALUE for branch, _ in _branches(value, []))


def _skipping_functions(check: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
    def checked(validator: Any, expected: Any, instance: Any, schema: Any) -> Iterator[Any]:
        if _is_function(instance):
            return
        errors = check(validator, expected, instance, schema)
        if errors is not None:
            yield from errors

    return checked


# Draft 7, with every keyword passing over intrinsic functions nested in a value (a tag's !Ref AWS::StackName).
_Validator = jsonschema.validators.extend(
    jsonschema.Draft7Validator,
    {keyword: _skipping_functions(check) for keyword, check in jsonschema.Draft7Validator.VALIDATORS.items()},
)


def _stripped(value: Any) -> Any:
    """Every string in ``value`` without surrounding spaces, as the function reads them."""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return [_stripped(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _stripped(item) for key, item in value.items()}
    return value


def _as_the_function_reads(value: Any, schema: Mapping[str, Any]) -> Any:
    """``value`` stripped, and a number given as a string converted, so that minimum and maximum apply to it."""
    value = _stripped(value)
    types = schema.get("type", [])
    number = "integer" in types or "number" in types
    if (
        number
        and isinstance(value, str)
        and len(value) <= schema.get("maxLength", len(value))
        and re.search(schema.get("pattern", "^$"), value)
    ):
        return int(value) if "integer" in types else float(value)
    return value


def _suggestion(name: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _location(name: str, error: Any) -> str:
    return name + "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error.absolute_path)


def _message(name: str, error: Any) -> str:
    """One sentence naming the property, with what it must be when a pattern or a type was not met."""
    where = _location(name, error)
    description = error.schema.get("description") or PROPERTIES[name].get("description", "")
    if error.validator in ("pattern", "type", "anyOf") and description:
        shown = json.dumps(error.instance, default=str)
        return f"{RESOURCE_TYPE} property {where}: {shown} is not valid. {description}"
    if error.validator == "maxItems":
        return f"{RESOURCE_TYPE} property {where} has {len(error.instance)} items; at most {error.validator_value}."
    return f"{RESOURCE_TYPE} property {where}: {error.message}."


def property_problems(properties: Any, path: CfnPath) -> Iterator[tuple[CfnPath, str]]:
    """Each problem of one resource's ``Properties`` against the schema, as (path, message)."""
    for given, given_path in _branches(properties, path):
        if not isinstance(given, Mapping):
            continue  # an intrinsic function, or not an object: cfn-lint's own rules say so
        present = {name for name, value in given.items() if _is_set(value)}
        for name in SCHEMA["required"]:
            if name not in present and "*" not in _LEFT_TO_CFN_LINT.get(name, set()):
                yield given_path, f"{RESOURCE_TYPE} needs the property {name}."
        for name, needed in SCHEMA["dependencies"].items():
            for other in needed:
                if name in present and other not in present:
                    yield [*given_path, name], f"{RESOURCE_TYPE} property {name} needs {other} too."
        for name, value in given.items():
            if name not in PROPERTIES:
                hint = _suggestion(name, tuple(PROPERTIES))
                yield (
                    [*given_path, name],
                    f"Unknown property {name} of {RESOURCE_TYPE} (property names are case-sensitive{hint}).",
                )
                continue
            yield from _value_problems(name, value, [*given_path, name])


def _value_problems(name: str, value: Any, path: CfnPath) -> Iterator[tuple[CfnPath, str]]:
    schema = PROPERTIES[name]
    skipped = _LEFT_TO_CFN_LINT.get(name, set())
    if "*" in skipped:
        return
    for branch, branch_path in _branches(value, path):
        if branch == "" or _is_function(branch):
            continue
        errors = [
            error
            for error in _Validator(schema).iter_errors(_as_the_function_reads(branch, schema))
            if error.validator not in skipped
        ]
        by_place: dict[tuple[Any, ...], list[Any]] = defaultdict(list)
        for error in errors:
            by_place[tuple(error.absolute_path)].append(error)
        for place, found in by_place.items():
            error = jsonschema.exceptions.best_match(found)
            yield [*branch_path, *place], _message(name, error)


def clone_resources(cfn: Any) -> dict[str, Any]:
    resources: dict[str, Any] = cfn.get_resources([RESOURCE_TYPE])
    return resources


class AuroraCloneProperties(CloudFormationLintRule):  # type: ignore[misc]  # cfn-lint is untyped
    """Every Custom::AuroraClone resource's properties against the schema."""

    id = "E9101"
    shortdesc = "Custom::AuroraClone properties"
    description = (
        "Custom::AuroraClone properties are known, of the right type, in range and complete, "
        "as the aurora-clone function accepts them"
    )
    tags: ClassVar[list[str]] = ["resources", "aurora-clone"]

    def match(self, cfn: Any) -> list[Any]:
        matches: list[Any] = []
        seen: set[tuple[tuple[str | int, ...], str]] = set()
        for logical_id, resource in clone_resources(cfn).items():
            properties = resource.get("Properties", {}) if isinstance(resource, Mapping) else {}
            for path, message in property_problems(properties, ["Resources", logical_id, "Properties"]):
                if (tuple(path), message) not in seen:  # the same value in both branches of an Fn::If
                    seen.add((tuple(path), message))
                    matches.append(RuleMatch(path, f"{logical_id}: {message}"))
        return matches


class AuroraCloneAttributes(CloudFormationLintRule):  # type: ignore[misc]  # cfn-lint is untyped
    """Every Fn::GetAtt (and ${Resource.Attribute} in Fn::Sub) of a Custom::AuroraClone names one of its
    attributes."""

    id = "E9102"
    shortdesc = "Custom::AuroraClone attributes"
    description = "Fn::GetAtt and Fn::Sub name only attributes that Custom::AuroraClone returns"
    tags: ClassVar[list[str]] = ["functions", "aurora-clone"]

    def match(self, cfn: Any) -> list[Any]:
        clones = set(clone_resources(cfn))
        matches: list[Any] = []
        for path in cfn.search_deep_keys("Fn::GetAtt"):
            where, value = path[:-1], path[-1]
            if isinstance(value, str):
                resource, _, attribute = value.partition(".")
            elif isinstance(value, list) and len(value) == 2:
                resource, attribute = value
            else:
                continue
            if resource in clones and isinstance(attribute, str):
                matches.extend(self._check(resource, attribute, where))
        for path in cfn.search_deep_keys("Fn::Sub"):
            where, value = path[:-1], path[-1]
            text, variables = (value[0], value[1]) if isinstance(value, list) and len(value) == 2 else (value, {})
            if not isinstance(text, str):
                continue
            for variable in _SUB_VARIABLE.findall(text):
                resource, dot, attribute = variable.partition(".")
                if dot and resource in clones and not (isinstance(variables, Mapping) and variable in variables):
                    matches.extend(self._check(resource, attribute, where))
        return matches

    @staticmethod
    def _check(resource: str, attribute: str, path: CfnPath) -> list[Any]:
        if attribute in ATTRIBUTES:
            return []
        hint = _suggestion(attribute, ATTRIBUTES)
        return [
            RuleMatch(
                path,
                f"{resource} ({RESOURCE_TYPE}) has no attribute {attribute}{hint or '.'} "
                f"Attributes: {', '.join(ATTRIBUTES)}.",
            )
        ]
