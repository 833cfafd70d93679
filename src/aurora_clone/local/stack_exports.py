"""Outputs and exports of the local stacks, kept as CloudFormation keeps them: a stack's outputs are resolved
once its resources are done and its exports recorded (an export name belongs to one stack at a time); an export
another stack imports can be neither deleted nor changed; a template may only import exports that exist.
``Fn::ImportValue`` resolves from ``StackExports.values()``; ListExports answers from each stack's ``exports``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from aurora_clone.local.stacks import LocalStack
from aurora_clone.local.template import AttributeNotFoundError, StackContext, TemplateError, resolve_outputs


class StackExports:
    """The exports of the stacks that exist (``stacks``, by name, read under ``lock``)."""

    def __init__(self, stacks: Mapping[str, LocalStack], lock: threading.RLock) -> None:
        self._stacks = stacks
        self._lock = lock

    def values(self) -> dict[str, str]:
        """Every export of every stack: name -> value."""
        with self._lock:
            return {name: value for stack in self._stacks.values() for name, value in stack.exports.items()}

    def publish(
        self, stack: LocalStack, context: StackContext, attribute_error: Callable[[AttributeNotFoundError], str]
    ) -> str:
        """Resolve the outputs and record them and their exports; the failure reason, or ''."""
        try:
            outputs = resolve_outputs(stack.template, context)
        except AttributeNotFoundError as error:
            return attribute_error(error) + ". "
        except TemplateError as error:
            return f"{error}. "
        exports = {output.export_name: output.value for output in outputs.values() if output.export_name}
        with self._lock:
            for name in exports:
                owner = next(
                    (other for other in self._stacks.values() if name in other.exports and other is not stack), None
                )
                if owner is not None:
                    return f"Export with name {name} is already exported by stack {owner.name}. "
            stack.outputs = {name: output.value for name, output in outputs.items()}
            stack.output_details, stack.exports = outputs, exports
        return ""

    @staticmethod
    def changed(before: LocalStack, stack: LocalStack, context: StackContext) -> set[str]:
        """Exports an update would remove or change (values as they will resolve are checked after outputs)."""
        try:
            outputs = resolve_outputs(stack.template, context)
        except TemplateError:
            return set()  # reported by publish
        after = {output.export_name: output.value for output in outputs.values() if output.export_name}
        return {name for name, value in before.exports.items() if after.get(name) != value}

    def users(self, stack: LocalStack, exports: set[str], *, updating: bool = False) -> str:
        """A reason if another stack imports one of ``exports``, else ''."""
        with self._lock:
            for name in sorted(exports):
                for other in self._stacks.values():
                    if other is not stack and name in other.imports:
                        if updating:
                            return f"Cannot update export {name} as it is in use by {other.name}. "
                        return f"Export {name} cannot be deleted as it is in use by {other.name}"
        return ""


def refuse_missing_imports(imports: set[str], exports: Mapping[str, str]) -> None:
    """TemplateError when the template imports an export that no stack has."""
    missing = sorted(imports - set(exports))
    if missing:
        raise TemplateError(f"No export named {missing[0]} found.")
