"""CloudFormation templates for the local CloudFormation: parse, check parameters, order, resolve intrinsics.

Parsing is cfn-lint's (YAML with the short-form tags ``!Ref``, ``!Sub``, ``!GetAtt``... or JSON); its node
types are turned into plain dicts, lists and scalars. Everything else is pure:

    template = parse_template(text)
    parameters = resolve_parameters(template, {"SourceClusterId": "prod-db"})
    context = StackContext("my-stack", stack_id, "us-east-1", "123456789012", parameters, exports=exports)
    for logical_id in creation_order(dependencies(template, template["Resources"])):
        properties = resolve(template["Resources"][logical_id].get("Properties", {}), context)

Supported: ``Ref`` (parameters, pseudo parameters, resources), ``Fn::Sub`` (both forms, ``${!Literal}``),
``Fn::GetAtt`` (list and dotted forms), ``Fn::ImportValue``, ``Fn::Join``, ``Fn::Select``, ``Fn::Split``,
``Fn::If`` with ``Conditions`` (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``),
``Fn::FindInMap``, ``Fn::Base64``, ``Fn::GetAZs``. Error messages follow CloudFormation's wording.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import graphlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfnlint.decode import decode_str

ParameterValue = str | list[str]

PSEUDO_PARAMETERS = frozenset(
    {
        "AWS::AccountId",
        "AWS::NotificationARNs",
        "AWS::NoValue",
        "AWS::Partition",
        "AWS::Region",
        "AWS::StackId",
        "AWS::StackName",
        "AWS::URLSuffix",
    }
)
_SCALAR_TYPES = ("String", "Number")
_LIST_TYPES = ("CommaDelimitedList", "List<String>", "List<Number>")
_SUB_VARIABLE = re.compile(r"\$\{([^}]*)\}")


class TemplateError(Exception):
    """The template or its parameters cannot be used; the message says what and where."""


class AttributeNotFoundError(TemplateError):
    """``Fn::GetAtt`` named an attribute the resource does not have."""

    def __init__(self, logical_id: str, attribute: str) -> None:
        super().__init__(f"Resource {logical_id} has no attribute {attribute}")
        self.logical_id = logical_id
        self.attribute = attribute


class _NoValue:
    """``AWS::NoValue``: removes the property (or list item) it stands for."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


# -- parsing ----------------------------------------------------------------------------------------


def plain(node: Any) -> Any:
    """cfn-lint's nodes (dict, list and str subclasses carrying line marks) as plain Python values."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, str):
        return str(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, datetime.date):  # an unquoted 2010-09-09 is a YAML date
        return node.isoformat()
    return node


def parse_template(text: str, source: str = "template") -> dict[str, Any]:
    """Parse a YAML or JSON template; raise TemplateError with cfn-lint's findings when it cannot."""
    decoded, matches = decode_str(text)
    if decoded is None or matches:
        findings = "; ".join(f"line {match.linenumber}: {match.message}" for match in matches) or "empty"
        raise TemplateError(f"Template format error in {source}: {findings}")
    template = plain(decoded)
    if not isinstance(template, dict):
        raise TemplateError(f"Template format error in {source}: the template is not a map")
    if not isinstance(template.get("Resources"), dict) or not template["Resources"]:
        raise TemplateError(f"Template format error in {source}: at least one Resources member must be defined.")
    for logical_id, resource in template["Resources"].items():
        if not isinstance(resource, dict) or not isinstance(resource.get("Type"), str):
            raise TemplateError(f"Template format error in {source}: resource {logical_id} has no Type")
    return template


def read_template(path: str | Path) -> str:
    """A template file's text."""
    file = Path(path)
    try:
        return file.read_text(encoding="utf-8")
    except OSError as error:
        raise TemplateError(f"Cannot read template {file}: {error.strerror}") from error


def load_template(path: str | Path) -> dict[str, Any]:
    """Read and parse a template file."""
    return parse_template(read_template(path), str(path))


# -- parameters -------------------------------------------------------------------------------------


def _parameter_kind(name: str, declared_type: str) -> str:
    """'scalar' or 'list'; AWS-specific types (AWS::EC2::VPC::Id, List<AWS::EC2::Subnet::Id>) are strings."""
    if declared_type in _SCALAR_TYPES:
        return "scalar"
    if declared_type in _LIST_TYPES:
        return "list"
    if declared_type.startswith("AWS::SSM::Parameter::"):
        raise TemplateError(f"Parameter '{name}': type {declared_type} is not supported locally")
    if declared_type.startswith("List<AWS::") and declared_type.endswith(">"):
        return "list"
    if declared_type.startswith("AWS::"):
        return "scalar"
    raise TemplateError(f"Template format error: Unrecognized parameter type: {declared_type}")


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_as_text(item) for item in value)
    return str(value)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_parameter(name: str, declaration: Mapping[str, Any], value: str) -> None:
    """Raise TemplateError when ``value`` breaks a constraint of the parameter's declaration."""
    declared_type = str(declaration.get("Type", "String"))
    kind = _parameter_kind(name, declared_type)
    members = [member.strip() for member in value.split(",")] if kind == "list" else [value]
    numeric = declared_type in ("Number", "List<Number>")
    for member in members:
        problem = _constraint_problem(declaration, member, numeric)
        if problem is None:
            continue
        described = declaration.get("ConstraintDescription")
        message = f"failed to satisfy constraint: {described}" if described else problem
        shown = "" if declaration.get("NoEcho") in (True, "true") else f" (value: '{member}')"
        raise TemplateError(f"Parameter '{name}' {message}{shown}")


def _constraint_problem(declaration: Mapping[str, Any], value: str, numeric: bool) -> str | None:
    if numeric and not _is_number(value):
        return "must be a number"
    allowed = declaration.get("AllowedValues")
    if allowed is not None and value not in [_as_text(option) for option in allowed]:
        return "must be one of AllowedValues"
    pattern = declaration.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        return f"must match pattern {pattern}"
    if "MinLength" in declaration and len(value) < int(declaration["MinLength"]):
        return f"must contain at least {declaration['MinLength']} characters"
    if "MaxLength" in declaration and len(value) > int(declaration["MaxLength"]):
        return f"must contain at most {declaration['MaxLength']} characters"
    if numeric and "MinValue" in declaration and float(value) < float(declaration["MinValue"]):
        return f"must be a number not less than {declaration['MinValue']}"
    if numeric and "MaxValue" in declaration and float(value) > float(declaration["MaxValue"]):
        return f"must be a number not greater than {declaration['MaxValue']}"
    return None


def resolve_parameters(
    template: Mapping[str, Any],
    given: Mapping[str, str] | None = None,
    previous: Mapping[str, ParameterValue] | None = None,
) -> dict[str, ParameterValue]:
    """Parameter values: given, else ``previous`` (an update keeps what the stack had, as ``aws cloudformation
    deploy`` does), else the Default.

    List types become lists of strings (members trimmed of spaces, as CloudFormation does); every value is
    checked against the declaration's constraints.
    """
    declarations: Mapping[str, Any] = template.get("Parameters") or {}
    given = given or {}
    previous = previous or {}
    unknown = sorted(set(given) - set(declarations))
    if unknown:
        raise TemplateError(f"Parameters: [{', '.join(unknown)}] do not exist in the template")
    values: dict[str, ParameterValue] = {}
    missing: list[str] = []
    for name, declaration in declarations.items():
        if not isinstance(declaration, dict):
            raise TemplateError(f"Template format error: parameter {name} must be a map")
        if name in given:
            text = _as_text(given[name])
        elif name in previous:
            text = _as_text(previous[name])
        elif "Default" in declaration:
            text = _as_text(declaration["Default"])
        else:
            missing.append(name)
            continue
        _check_parameter(name, declaration, text)
        kind = _parameter_kind(name, str(declaration.get("Type", "String")))
        values[name] = [member.strip() for member in text.split(",")] if kind == "list" else text
    if missing:
        raise TemplateError(f"Parameters: [{', '.join(missing)}] must have values")
    return values


# -- resolution -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StackContext:
    """What intrinsic functions can see: the stack, its parameters, its resources so far, the exports."""

    stack_name: str
    stack_id: str
    region: str
    account_id: str
    parameters: Mapping[str, ParameterValue]
    physical_ids: Mapping[str, str] = field(default_factory=dict)
    attributes: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    exports: Mapping[str, str] = field(default_factory=dict)
    conditions: Mapping[str, bool] = field(default_factory=dict)
    mappings: Mapping[str, Any] = field(default_factory=dict)

    def pseudo_parameter(self, name: str) -> Any:
        partition = "aws-cn" if self.region.startswith("cn-") else "aws"
        values: dict[str, Any] = {
            "AWS::AccountId": self.account_id,
            "AWS::NotificationARNs": [],
            "AWS::NoValue": NO_VALUE,
            "AWS::Partition": partition,
            "AWS::Region": self.region,
            "AWS::StackId": self.stack_id,
            "AWS::StackName": self.stack_name,
            "AWS::URLSuffix": "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com",
        }
        return values[name]


def _ref(name: Any, context: StackContext) -> Any:
    if not isinstance(name, str):
        raise TemplateError(f"Template error: Ref takes a name, not {name!r}")
    if name in PSEUDO_PARAMETERS:
        return context.pseudo_parameter(name)
    if name in context.parameters:
        return context.parameters[name]
    if name in context.physical_ids:
        return context.physical_ids[name]
    raise TemplateError(f"Template format error: Unresolved resource dependencies [{name}] in the template")


def _get_att(logical_id: str, attribute: str, context: StackContext) -> Any:
    if logical_id not in context.attributes and logical_id not in context.physical_ids:
        raise TemplateError(f"Template error: instance of Fn::GetAtt references undefined resource {logical_id}")
    attributes = context.attributes.get(logical_id, {})
    if attribute not in attributes:
        raise AttributeNotFoundError(logical_id, attribute)
    return attributes[attribute]


def _get_att_target(argument: Any, context: StackContext) -> tuple[str, str]:
    if isinstance(argument, str) and "." in argument:
        logical_id, attribute = argument.split(".", 1)
        return logical_id, attribute
    if isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str):
        attribute = resolve(argument[1], context)
        if isinstance(attribute, str):
            return argument[0], attribute
    raise TemplateError(
        f"Template error: Fn::GetAtt needs [LogicalId, Attribute] or 'LogicalId.Attribute', not {argument!r}"
    )


def _text(value: Any, function: str) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise TemplateError(f"Template error: {function} needs a string here, not {value!r}")


def _sub_parts(argument: Any) -> tuple[str, dict[str, Any]]:
    if isinstance(argument, str):
        return argument, {}
    if isinstance(argument, list) and len(argument) == 2:
        text, variables = argument
        if isinstance(text, str) and isinstance(variables, dict):
            return text, variables
    raise TemplateError(f"Template error: Fn::Sub needs a string or [string, {{variables}}], not {argument!r}")


def _sub(argument: Any, context: StackContext) -> str:
    text, declared = _sub_parts(argument)
    variables = {name: resolve(value, context) for name, value in declared.items()}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name in variables:
            return _text(variables[name], "Fn::Sub")
        if name in PSEUDO_PARAMETERS or name in context.parameters or name in context.physical_ids:
            value = _ref(name, context)
            return ",".join(value) if isinstance(value, list) else _text(value, "Fn::Sub")
        if "." in name:
            logical_id, attribute = name.split(".", 1)
            return _text(_get_att(logical_id, attribute, context), "Fn::Sub")
        raise TemplateError(f"Template format error: Unresolved resource dependencies [{name}] in Fn::Sub")

    return _SUB_VARIABLE.sub(replace, text)


def _join(argument: Any, context: StackContext) -> str:
    if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
        raise TemplateError(f"Template error: Fn::Join needs [delimiter, [values]], not {argument!r}")
    values = resolve(argument[1], context)
    if not isinstance(values, list):
        raise TemplateError(f"Template error: Fn::Join needs a list of values, not {values!r}")
    return argument[0].join(_text(value, "Fn::Join") for value in values if value is not NO_VALUE)


def _select(argument: Any, context: StackContext) -> Any:
    if not (isinstance(argument, list) and len(argument) == 2):
        raise TemplateError(f"Template error: Fn::Select needs [index, [values]], not {argument!r}")
    index, values = resolve(argument[0], context), resolve(argument[1], context)
    if not isinstance(values, list):
        raise TemplateError(f"Template error: Fn::Select needs a list of values, not {values!r}")
    try:
        position = int(index)
    except (TypeError, ValueError):
        raise TemplateError(f"Template error: Fn::Select index {index!r} is not a number") from None
    if not 0 <= position < len(values):
        raise TemplateError(f"Template error: Fn::Select cannot select nonexistent value at index {position}")
    return values[position]


def _split(argument: Any, context: StackContext) -> list[str]:
    if not (isinstance(argument, list) and len(argument) == 2 and isinstance(argument[0], str)):
        raise TemplateError(f"Template error: Fn::Split needs [delimiter, string], not {argument!r}")
    source = resolve(argument[1], context)
    return _text(source, "Fn::Split").split(argument[0])


def _if(argument: Any, context: StackContext) -> Any:
    if not (isinstance(argument, list) and len(argument) == 3 and isinstance(argument[0], str)):
        raise TemplateError(
            f"Template error: Fn::If needs [condition, value if true, value if false], not {argument!r}"
        )
    if argument[0] not in context.conditions:
        raise TemplateError(f"Template format error: Unresolved condition dependency {argument[0]} in Fn::If")
    return resolve(argument[1] if context.conditions[argument[0]] else argument[2], context)


def _import_value(argument: Any, context: StackContext) -> str:
    name = _text(resolve(argument, context), "Fn::ImportValue")
    if name not in context.exports:
        raise TemplateError(f"No export named {name} found.")
    return context.exports[name]


def _find_in_map(argument: Any, context: StackContext) -> Any:
    if not (isinstance(argument, list) and len(argument) == 3):
        raise TemplateError(f"Template error: Fn::FindInMap needs [map, key, key], not {argument!r}")
    map_name, top, second = (_text(resolve(item, context), "Fn::FindInMap") for item in argument)
    try:
        return context.mappings[map_name][top][second]
    except (KeyError, TypeError):
        raise TemplateError(f"Template error: Unable to get mapping for {map_name}::{top}::{second}") from None


def _intrinsic(function: str, argument: Any, context: StackContext) -> Any:
    if function == "Ref":
        return _ref(argument, context)
    if function == "Fn::GetAtt":
        return _get_att(*_get_att_target(argument, context), context)
    if function == "Fn::Sub":
        return _sub(argument, context)
    if function == "Fn::Join":
        return _join(argument, context)
    if function == "Fn::Select":
        return _select(argument, context)
    if function == "Fn::Split":
        return _split(argument, context)
    if function == "Fn::If":
        return _if(argument, context)
    if function == "Fn::ImportValue":
        return _import_value(argument, context)
    if function == "Fn::FindInMap":
        return _find_in_map(argument, context)
    if function == "Fn::Base64":
        return base64.b64encode(_text(resolve(argument, context), "Fn::Base64").encode()).decode()
    if function == "Fn::GetAZs":
        return [f"{context.region}{zone}" for zone in "abc"]
    raise TemplateError(f"Template error: {function} is not supported locally")


def _intrinsic_name(value: Mapping[str, Any]) -> str | None:
    if len(value) == 1:
        (key,) = value
        if key == "Ref" or key.startswith("Fn::"):
            return key
    return None


def resolve(value: Any, context: StackContext) -> Any:
    """``value`` with every intrinsic function evaluated; ``AWS::NoValue`` removes keys and list items."""
    if isinstance(value, dict):
        function = _intrinsic_name(value)
        if function is not None:
            return _intrinsic(function, value[function], context)
        resolved = {key: resolve(item, context) for key, item in value.items()}
        return {key: item for key, item in resolved.items() if item is not NO_VALUE}
    if isinstance(value, list):
        items = [resolve(item, context) for item in value]
        return [item for item in items if item is not NO_VALUE]
    return value


# -- conditions -------------------------------------------------------------------------------------


def _condition(value: Any, context: StackContext, declared: Mapping[str, Any], seen: tuple[str, ...]) -> bool:
    if isinstance(value, dict) and len(value) == 1:
        ((function, argument),) = value.items()
        if function == "Condition":
            return _named_condition(str(argument), context, declared, seen)
        if function == "Fn::Equals" and isinstance(argument, list) and len(argument) == 2:
            left, right = (resolve(item, context) for item in argument)
            return _as_text(left) == _as_text(right)
        if function == "Fn::Not" and isinstance(argument, list) and len(argument) == 1:
            return not _condition(argument[0], context, declared, seen)
        if function in ("Fn::And", "Fn::Or") and isinstance(argument, list) and 2 <= len(argument) <= 10:
            results = [_condition(item, context, declared, seen) for item in argument]
            return all(results) if function == "Fn::And" else any(results)
    raise TemplateError(f"Template error: cannot evaluate condition {value!r}")


def _named_condition(name: str, context: StackContext, declared: Mapping[str, Any], seen: tuple[str, ...]) -> bool:
    if name in seen:
        raise TemplateError(f"Template error: circular condition dependency: {' -> '.join((*seen, name))}")
    if name not in declared:
        raise TemplateError(f"Template format error: Unresolved condition dependency {name}")
    return _condition(declared[name], context, declared, (*seen, name))


def evaluate_conditions(template: Mapping[str, Any], context: StackContext) -> dict[str, bool]:
    """Every condition of the template's Conditions section (only parameters and pseudo parameters count)."""
    declared: Mapping[str, Any] = template.get("Conditions") or {}
    return {name: _named_condition(name, context, declared, ()) for name in declared}


def active_resources(template: Mapping[str, Any], conditions: Mapping[str, bool]) -> dict[str, dict[str, Any]]:
    """The resources whose Condition (if any) holds, in template order."""
    resources: dict[str, dict[str, Any]] = {}
    for logical_id, resource in template["Resources"].items():
        condition = resource.get("Condition")
        if condition is not None and condition not in conditions:
            raise TemplateError(f"Template format error: Unresolved condition dependency {condition} in {logical_id}")
        if condition is None or conditions[condition]:
            resources[logical_id] = resource
    return resources


# -- dependencies -----------------------------------------------------------------------------------


def referenced_names(value: Any) -> set[str]:
    """Every name that ``Ref``, ``Fn::GetAtt`` and ``Fn::Sub`` in ``value`` point at (resources, parameters...)."""
    names: set[str] = set()
    if isinstance(value, list):
        for item in value:
            names |= referenced_names(item)
    elif isinstance(value, dict):
        function = _intrinsic_name(value)
        argument = value[function] if function else None
        if function == "Ref" and isinstance(argument, str):
            names.add(argument)
        elif function == "Fn::GetAtt":
            if isinstance(argument, str):
                names.add(argument.split(".", 1)[0])
            elif isinstance(argument, list) and argument and isinstance(argument[0], str):
                names.add(argument[0])
                names |= referenced_names(argument[1:])
        elif function == "Fn::Sub":
            text, variables = _sub_parts(argument)
            for match in _SUB_VARIABLE.finditer(text):
                name = match.group(1)
                if not name.startswith("!") and name not in variables:
                    names.add(name.split(".", 1)[0])
            names |= referenced_names(list(variables.values()))
        else:
            for item in value.values():
                names |= referenced_names(item)
    return names


def dependencies(template: Mapping[str, Any], resources: Mapping[str, Mapping[str, Any]]) -> dict[str, set[str]]:
    """For each resource, the resources it needs first (Ref, GetAtt, Sub, DependsOn).

    Raises TemplateError for a name that is neither a parameter, a pseudo parameter nor a resource.
    """
    parameters = set(template.get("Parameters") or {})
    all_resources = set(template["Resources"])
    needs: dict[str, set[str]] = {}
    for logical_id, resource in resources.items():
        body = {key: item for key, item in resource.items() if key not in ("DependsOn", "Condition", "Type")}
        names = referenced_names(body)
        depends_on = resource.get("DependsOn", [])
        explicit = {depends_on} if isinstance(depends_on, str) else set(depends_on)
        unknown = sorted((names - parameters - PSEUDO_PARAMETERS - all_resources) | (explicit - all_resources))
        if unknown:
            raise TemplateError(
                f"Template format error: Unresolved resource dependencies [{', '.join(unknown)}] "
                f"in the Resources block of the template (resource {logical_id})"
            )
        needs[logical_id] = ((names & all_resources) | explicit) & set(resources)
    return needs


def creation_order(needs: Mapping[str, set[str]]) -> list[str]:
    """A topological order of ``needs`` (from ``dependencies``: every id it names is one of its keys).

    Resources come in waves, each wave the resources whose needs are all placed, in template order.
    """
    position = {logical_id: index for index, logical_id in enumerate(needs)}
    sorter = graphlib.TopologicalSorter(needs)
    with contextlib.suppress(graphlib.CycleError):  # the sorter still orders what the cycle does not block
        sorter.prepare()
    order: list[str] = []
    while sorter.is_active():
        wave = sorted(sorter.get_ready(), key=position.__getitem__)
        order.extend(wave)
        sorter.done(*wave)
    if len(order) < len(needs):  # named: every resource left unordered, the cycle and what waits on it
        remaining = sorted(set(needs) - set(order))
        raise TemplateError(f"Circular dependency between resources: [{', '.join(remaining)}]")
    return order


def import_names(template: Mapping[str, Any], context: StackContext) -> set[str]:
    """The export names the template imports (``Fn::ImportValue`` arguments, resolved)."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if _intrinsic_name(value) == "Fn::ImportValue":
                found.add(_text(resolve(value["Fn::ImportValue"], context), "Fn::ImportValue"))
                return
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(template.get("Resources"))
    walk(template.get("Outputs"))
    return found


# -- outputs ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Output:
    """A resolved output: its value as CloudFormation shows it, and its export name if exported."""

    value: str
    export_name: str | None = None
    description: str = ""


def check_outputs(template: Mapping[str, Any]) -> None:
    """Raise TemplateError for an output naming something that is not in the template."""
    parameters = set(template.get("Parameters") or {})
    known = parameters | PSEUDO_PARAMETERS | set(template["Resources"])
    for name, output in (template.get("Outputs") or {}).items():
        if not isinstance(output, dict) or "Value" not in output:
            raise TemplateError(f"Template format error: Every Outputs member must contain a Value object ({name})")
        unknown = sorted(referenced_names(output) - known)
        if unknown:
            raise TemplateError(
                f"Template format error: Unresolved resource dependencies [{', '.join(unknown)}] "
                "in the Outputs block of the template"
            )


def resolve_outputs(template: Mapping[str, Any], context: StackContext) -> dict[str, Output]:
    """The template's outputs whose Condition holds, resolved; lists are shown comma-separated."""
    outputs: dict[str, Output] = {}
    for name, output in (template.get("Outputs") or {}).items():
        condition = output.get("Condition")
        if condition is not None and not context.conditions.get(condition, False):
            continue
        value = resolve(output["Value"], context)
        export = output.get("Export")
        export_name = _text(resolve(export["Name"], context), "Export") if isinstance(export, dict) else None
        text = (
            ",".join(_text(item, "Outputs") for item in value) if isinstance(value, list) else _text(value, "Outputs")
        )
        outputs[name] = Output(text, export_name, str(output.get("Description", "")))
    return outputs
