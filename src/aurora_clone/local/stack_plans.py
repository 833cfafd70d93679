"""What the local CloudFormation checks before an operation starts, as CloudFormation does before the first
resource event: the template and its transforms, parameters, conditions, the resource types a stack supports,
the resources' dependency order, outputs and imports (a ``Plan``); for an update, whether the stack can be
updated and whether anything would change; for a change set, what would happen to each resource.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aurora_clone.local.stack_exports import refuse_missing_imports
from aurora_clone.local.stacks import LocalStack, ResourceChange, StackError, is_custom_type
from aurora_clone.local.template import (
    ParameterValue,
    StackContext,
    TemplateError,
    active_resources,
    check_outputs,
    creation_order,
    dependencies,
    evaluate_conditions,
    import_names,
    parse_template,
    resolve,
    resolve_parameters,
)

SERVERLESS_TRANSFORM = "AWS::Serverless-2016-10-31"
_UPDATABLE = frozenset({"CREATE_COMPLETE", "UPDATE_COMPLETE", "UPDATE_ROLLBACK_COMPLETE"})


@dataclass(frozen=True)
class Plan:
    """A template checked against a stack: parameters, conditions, active resources and their order."""

    template: dict[str, Any]
    parameters: dict[str, ParameterValue]
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]
    needs: dict[str, set[str]]
    order: list[str]
    imports: set[str]


def parse_stack_template(body: str, source: str, *, function_stack: bool) -> dict[str, Any]:
    """The template, with the transforms a stack may use: the SAM transform in the function stack only."""
    template = parse_template(body, source)
    transforms = template.get("Transform") or []
    if transforms and not function_stack:
        raise TemplateError("Transforms are only supported in the function stack (deploy_function_stack)")
    for transform in [transforms] if isinstance(transforms, str) else transforms:
        if transform != SERVERLESS_TRANSFORM:
            raise TemplateError(f"Transform {transform} is not supported by the local CloudFormation")
    if "Globals" in template:
        raise TemplateError("SAM Globals are not supported by the local CloudFormation; set each property")
    return template


class StackPlanner:
    """Plans for the stacks of one account and region; ``exports`` gives the exports that exist now."""

    def __init__(self, region: str, account_id: str, exports: Callable[[], dict[str, str]]) -> None:
        self._region = region
        self._account_id = account_id
        self._exports = exports

    def plan(
        self,
        stack: LocalStack,
        template: dict[str, Any],
        given: Mapping[str, str] | None,
        previous: Mapping[str, ParameterValue] | None,
        supported: Collection[str],
    ) -> Plan:
        """Everything CloudFormation checks before the first resource event; raises TemplateError.

        ``supported``: the resource types the stack supports besides custom resources.
        """
        parameters = resolve_parameters(template, given, previous)
        context = StackContext(
            stack.name,
            stack.stack_id,
            self._region,
            self._account_id,
            parameters,
            exports=self._exports(),
            mappings=template.get("Mappings") or {},
        )
        conditions = evaluate_conditions(template, context)
        resources = active_resources(template, conditions)
        for logical_id, resource in resources.items():
            kind = resource["Type"]
            if not is_custom_type(kind) and kind not in supported:
                types = "custom resources" + (f" and {', '.join(sorted(supported))}" if supported else "")
                raise TemplateError(
                    f"Resource {logical_id}: type {kind} is not supported by the local CloudFormation "
                    f"(supported in this stack: {types})"
                )
        needs = dependencies(template, resources)
        order = creation_order(needs)
        check_outputs(template)
        imports = import_names(template, replace(context, conditions=conditions))
        refuse_missing_imports(imports, context.exports)
        return Plan(template, parameters, conditions, resources, needs, order, imports)

    def update_plan(
        self,
        stack: LocalStack,
        body: str | None,
        given: Mapping[str, str] | None,
        use_previous: Collection[str] | None,
        source: str,
        supported: Collection[str],
    ) -> tuple[Plan, str]:
        """The plan of an update and the template text it applies (``body`` None: the stack's template)."""
        if stack.status not in _UPDATABLE:
            raise StackError(f"Stack:{stack.stack_id} is in {stack.status} state and can not be updated.")
        new = [name for name in use_previous or () if name not in stack.parameters]
        if new:
            raise StackError(
                f"Invalid input for parameter key {new[0]}. Cannot specify usePreviousValue as true for a parameter "
                "key not in the previous template"
            )
        if body is None:
            body, template = stack.template_body, stack.template
        else:
            template = parse_stack_template(body, source, function_stack=stack.function_stack)
        previous = {
            key: value for key, value in stack.parameters.items() if use_previous is None or key in use_previous
        }
        plan = self.plan(stack, template, given, previous, supported)
        changed_types = sorted(
            logical_id
            for logical_id, definition in plan.resources.items()
            if logical_id in stack.resources and stack.resources[logical_id].resource_type != definition["Type"]
        )
        if changed_types:
            raise TemplateError(
                "Update of resource type is not permitted. The new template modifies resource type of the "
                f"following resources: [{', '.join(changed_types)}]"
            )
        return plan, body


def unchanged(stack: LocalStack, plan: Plan, tags: Mapping[str, str] | None) -> bool:
    """Whether an update to ``plan`` (and ``tags``, None keeping them) would change nothing."""
    same_tags = tags is None or dict(tags) == stack.tags
    return plan.template == stack.template and plan.parameters == stack.parameters and same_tags


def plan_changes(stack: LocalStack, plan: Plan, context: StackContext) -> list[ResourceChange]:
    """What applying ``plan`` would do to the stack's resources (``context``: the stack's as it is now). A
    custom resource's Modify may replace it (its function decides, by the PhysicalResourceId it answers):
    Replacement is Conditional."""
    changes: list[ResourceChange] = []
    context = replace(
        context,
        parameters=dict(plan.parameters),
        conditions=dict(plan.conditions),
        mappings=plan.template.get("Mappings") or {},
    )
    for logical_id in plan.order:
        definition = plan.resources[logical_id]
        resource = stack.resources.get(logical_id)
        if resource is None:
            changes.append(ResourceChange("Add", logical_id, definition["Type"]))
            continue
        try:
            same = resolve(definition.get("Properties") or {}, context) == resource.properties
        except TemplateError:  # it reads an attribute that another change sets: it may change
            same = False
        if not same:
            replacement = "Conditional" if is_custom_type(resource.resource_type) else "Unknown"
            changes.append(
                ResourceChange("Modify", logical_id, resource.resource_type, resource.physical_id, replacement)
            )
    for logical_id, resource in stack.resources.items():
        if logical_id not in plan.resources:
            changes.append(ResourceChange("Remove", logical_id, resource.resource_type, resource.physical_id))
    return changes
