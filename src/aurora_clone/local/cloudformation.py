"""``LocalCloudFormation``: the lifecycle of stacks deployed into the embedded AWS world, as CloudFormation runs it.

Two kinds of stack: ``deploy_function_stack`` deploys the SAM function stack, its AWS resources made with the
world's APIs (``native_resources``); ``create_stack`` / ``update_stack`` / ``delete_stack`` run stacks of
custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``), each request sent to the
ServiceToken's function and answered through S3 (``custom_requests``). What is checked before an operation
starts is ``stack_plans``'; what it then does, on a thread of its own, ``stack_runs``' (creates, updates,
rollbacks and deletes, as CloudFormation runs them); outputs and exports are ``stack_exports``'.

Every operation runs in the background, as CloudFormation's API calls do: ``start_create_stack``,
``start_update_stack``, ``start_delete_stack`` and ``execute_change_set`` check what CloudFormation checks
before it answers (raising ``StackError`` or ``TemplateError``; ``NoChangesError`` for an update that
changes nothing), put the stack in its ``*_IN_PROGRESS`` status and return a ``StackOperation``, whose
``events()`` yields the stack's events as they happen and whose ``wait()`` returns the stack once the
operation has ended. ``create_stack``, ``update_stack``, ``delete_stack`` and ``deploy_function_stack`` are
those operations, waited for. Change sets (``create_change_set``) follow CloudFormation: a CREATE change set
makes the stack exist in ``REVIEW_IN_PROGRESS``; one that changes nothing ends ``FAILED``. A deleted stack
stays visible by its stack id (``DELETE_COMPLETE``), as on AWS. ``aurora_clone.local.cloudformation_api``
serves all this as the CloudFormation API at the world's endpoint.

Where CloudFormation's exact behaviour is unknown, choices are stated next to the code.
"""

from __future__ import annotations

import copy
import re
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence

from aurora_clone.local.native_resources import NATIVE_TYPES, NativeResources, Pollers
from aurora_clone.local.stack_plans import Plan, StackPlanner, parse_stack_template, plan_changes, unchanged
from aurora_clone.local.stack_runs import StackRuns
from aurora_clone.local.stacks import (
    AlreadyExistsError,
    ChangeSet,
    ChangeSetNotFoundError,
    ChangeSetStatusError,
    Lambdas,
    LocalStack,
    NoChangesError,
    ResourceProvider,
    StackError,
    StackNotFoundError,
    StackOperation,
    World,
)
from aurora_clone.local.template import read_template

_STACK_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
_CHANGE_SET_NAME = re.compile(r"[A-Za-z][A-Za-z0-9-]{0,127}")
# CloudFormation's reason for a change set that changes nothing, which `aws cloudformation deploy` looks for.
EMPTY_CHANGE_SET = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)
# Where a stack ends when its operation fails unexpectedly, by the status it had reached.
_FAILED_STATUS = {
    "CREATE_IN_PROGRESS": "CREATE_FAILED",
    "ROLLBACK_IN_PROGRESS": "ROLLBACK_FAILED",
    "DELETE_IN_PROGRESS": "DELETE_FAILED",
    "UPDATE_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS": "UPDATE_ROLLBACK_FAILED",
}


_EXECUTED = frozenset({"EXECUTE_COMPLETE", "EXECUTE_FAILED"})


class LocalCloudFormation(StackRuns):
    """Stacks in the embedded world; operations run in the background (``start_*``) or are waited for."""

    def __init__(
        self,
        world: World,
        lambdas: Lambdas,
        printer: Callable[[str], None] = print,
        *,
        poller: Pollers | None = None,
    ) -> None:
        super().__init__(world, lambdas, printer)
        self._lambdas = lambdas
        self._poller = poller
        self._operations: dict[str, StackOperation] = {}  # the last operation of each stack, by stack id
        self._planner = StackPlanner(world.region, world.account_id, self._exports.values)

    # -- queries ----------------------------------------------------------------------------------------

    @property
    def stacks(self) -> dict[str, LocalStack]:
        """The stacks that exist (a deleted stack is gone), by name."""
        with self._lock:
            return dict(self._stacks)

    @property
    def exports(self) -> dict[str, str]:
        """Every export of every stack: name -> value."""
        return self._exports.values()

    def stack(self, name_or_id: str) -> LocalStack:
        """A stack that exists, by name or stack id; a deleted one by its stack id only, as CloudFormation
        finds them."""
        with self._lock:
            found = self._stacks.get(name_or_id)
            if found is None:
                live = (stack for stack in self._stacks.values() if stack.stack_id == name_or_id)
                found = next(live, None) or self._deleted.get(name_or_id)
            if found is None:
                raise StackNotFoundError(f"Stack with id {name_or_id} does not exist")
            return found

    def view(self, name_or_id: str) -> LocalStack:
        """A copy of the stack as it is now, which operations running in the background leave alone."""
        with self._lock:
            return copy.deepcopy(self.stack(name_or_id))

    def every_stack(self) -> list[LocalStack]:
        """Copies of every stack, the deleted ones included (as ListStacks shows them), oldest first."""
        with self._lock:
            stacks = [*self._deleted.values(), *self._stacks.values()]
            return [copy.deepcopy(stack) for stack in sorted(stacks, key=lambda stack: stack.created_at)]

    def change_set(self, name_or_id: str, stack_name: str | None = None) -> ChangeSet:
        """A change set by its id, or by its name and its stack's name or id."""
        with self._lock:
            found = self._change_sets.get(name_or_id)
            if found is None and stack_name is None and not name_or_id.startswith("arn:"):
                raise StackError("StackName must be specified if ChangeSetName is not specified as an ARN.")
            if found is None and stack_name is not None:
                stack_id = self.stack(stack_name).stack_id
                named = (c for c in self._change_sets.values() if c.stack_id == stack_id and c.name == name_or_id)
                found = next(named, None)
            if found is None:
                raise ChangeSetNotFoundError(f"ChangeSet [{name_or_id}] does not exist")
            return found

    def change_sets(self, stack_name: str) -> list[ChangeSet]:
        """The change sets of a stack, oldest first."""
        with self._lock:
            stack_id = self.stack(stack_name).stack_id
            return [change_set for change_set in self._change_sets.values() if change_set.stack_id == stack_id]

    # -- operations ---------------------------------------------------------------------------------------

    def deploy_function_stack(
        self,
        template_path: str,
        stack_name: str,
        parameters: Mapping[str, str] | None = None,
        code_dir: str | None = None,
    ) -> LocalStack:
        """Create the SAM function stack: roles, policies, log group, the function (run by LocalLambda)."""
        providers: dict[str, ResourceProvider] = dict.fromkeys(
            NATIVE_TYPES, NativeResources(self._world, self._lambdas, code_dir, self._poller)
        )
        body = read_template(template_path)
        return self._start_create(stack_name, body, template_path, parameters, providers, function_stack=True).wait()

    def create_stack(self, name: str, template_path: str, parameters: Mapping[str, str] | None = None) -> LocalStack:
        """Create a stack of custom resources; it ends CREATE_COMPLETE or, after a rollback, ROLLBACK_COMPLETE."""
        return self.start_create_stack(name, read_template(template_path), parameters, source=template_path).wait()

    def update_stack(self, name: str, template_path: str, parameters: Mapping[str, str] | None = None) -> LocalStack:
        """Update a stack; parameters not given keep their previous value (new ones take their Default)."""
        return self.start_update_stack(name, read_template(template_path), parameters, source=template_path).wait()

    def delete_stack(self, name: str) -> LocalStack:
        """Delete a stack: resources in reverse dependency order; DELETE_COMPLETE or DELETE_FAILED."""
        return self.start_delete_stack(name).wait()

    def start_create_stack(
        self,
        name: str,
        template_body: str,
        parameters: Mapping[str, str] | None = None,
        *,
        source: str = "template",
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
    ) -> StackOperation:
        """Start creating a stack of custom resources (``source`` names the template in error messages)."""
        return self._start_create(
            name, template_body, source, parameters, {}, function_stack=False, tags=tags, capabilities=capabilities
        )

    def start_update_stack(
        self,
        name: str,
        template_body: str | None,
        parameters: Mapping[str, str] | None = None,
        *,
        use_previous: Collection[str] | None = None,
        source: str = "template",
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] | None = None,
    ) -> StackOperation:
        """Start updating a stack. ``template_body`` None keeps its template. Parameters not given keep their
        previous value; with ``use_previous``, only those named there do and the others take their Default, as
        UpdateStack does. ``tags`` None keeps the stack's tags. NoChangesError when nothing would change."""
        with self._lock:
            stack = self.stack(name)
            plan, body = self._update_plan(stack, template_body, parameters, use_previous, source)
            if unchanged(stack, plan, tags):
                raise NoChangesError("No updates are to be performed.")
            return self._begin_update(stack, plan, body, tags, capabilities)

    def start_delete_stack(self, name: str) -> StackOperation:
        """Start deleting a stack; a stack already being deleted, or deleted, gives the operation that did it."""
        with self._lock:
            stack = self.stack(name)
            running = self._operations.get(stack.stack_id)
            if running is not None and stack.status in ("DELETE_IN_PROGRESS", "DELETE_COMPLETE"):
                return running
            if stack.status.endswith("_IN_PROGRESS") and stack.status != "REVIEW_IN_PROGRESS":
                raise StackError(f"Stack [{stack.stack_id}] cannot be deleted while in status {stack.status}")
            return self._launch(stack, "DELETE_IN_PROGRESS", lambda: self._run_delete(stack))

    # -- change sets ----------------------------------------------------------------------------------------

    def create_change_set(
        self,
        stack_name: str,
        change_set_name: str,
        change_set_type: str,
        template_body: str | None,
        parameters: Mapping[str, str] | None = None,
        *,
        use_previous: Collection[str] | None = None,
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
        description: str = "",
    ) -> ChangeSet:
        """A change set, complete at once (or FAILED when it changes nothing). CREATE makes the stack exist in
        REVIEW_IN_PROGRESS; UPDATE takes parameters as ``start_update_stack`` does."""
        if change_set_type not in ("CREATE", "UPDATE"):
            raise StackError(f"ChangeSetType {change_set_type} is not supported by the local CloudFormation")
        if _CHANGE_SET_NAME.fullmatch(change_set_name) is None:
            raise StackError(
                f"ChangeSet name '{change_set_name}' must start with a letter and hold only letters, digits and "
                "hyphens, at most 128"
            )
        if change_set_type == "CREATE" and template_body is None:
            raise StackError("UsePreviousTemplate cannot be used for a change set of type CREATE")
        with self._lock:
            existing = self._stacks.get(stack_name)
            makes_stack = change_set_type == "CREATE" and existing is None
            if change_set_type == "CREATE":
                if existing is not None and existing.status != "REVIEW_IN_PROGRESS":
                    raise StackError(
                        f"Stack [{stack_name}] already exists and cannot be created again with the changeSet "
                        f"[{change_set_name}]."
                    )
                stack = existing or self._new_stack(stack_name, function_stack=False)
                body = str(template_body)
                plan = self._planner.plan(
                    stack, parse_stack_template(body, "template", function_stack=False), parameters, None, {}
                )
            else:
                try:
                    stack = self.stack(stack_name)
                except StackNotFoundError:
                    raise StackError(f"Stack [{stack_name}] does not exist") from None
                plan, body = self._update_plan(stack, template_body, parameters, use_previous, "template")
            # An executed change set is kept to be described, but no longer holds its name: `aws cloudformation
            # deploy` names its change sets after the second, and here a deploy can finish within one.
            same_name = (
                [] if makes_stack else [c for c in self.change_sets(stack.stack_id) if c.name == change_set_name]
            )
            if any(c.execution_status not in _EXECUTED for c in same_name):
                raise AlreadyExistsError(f"ChangeSet [{change_set_name}] already exists")
            for executed in same_name:
                self._change_sets.pop(executed.change_set_id)
            if makes_stack:
                self._register(stack, {})
                self._stack_status(stack, "REVIEW_IN_PROGRESS", "User Initiated")
            change_set = ChangeSet(
                change_set_name,
                f"arn:aws:cloudformation:{self._world.region}:{self._world.account_id}:changeSet/"
                f"{change_set_name}/{uuid.uuid4()}",
                change_set_type,
                stack.stack_id,
                stack.name,
                self._now(),
                body,
                dict(parameters or {}),
                frozenset(use_previous) if use_previous is not None else None,
                dict(plan.parameters),
                dict(tags) if tags is not None else None,
                list(capabilities),
                description,
            )
            if change_set_type == "UPDATE" and unchanged(stack, plan, tags):
                change_set.status, change_set.status_reason = "FAILED", EMPTY_CHANGE_SET
            else:
                change_set.changes = plan_changes(stack, plan, self._context(stack))
            self._change_sets[change_set.change_set_id] = change_set
            return change_set

    def execute_change_set(self, name_or_id: str, stack_name: str | None = None) -> StackOperation:
        """Start what the change set says; the stack's other change sets go, as they no longer apply."""
        with self._lock:
            change_set = self.change_set(name_or_id, stack_name)
            if change_set.execution_status != "AVAILABLE":
                raise ChangeSetStatusError(
                    f"ChangeSet [{change_set.change_set_id}] cannot be executed in its current execution status of "
                    f"[{change_set.execution_status}]"
                )
            stack = self.stack(change_set.stack_id)
            if change_set.change_set_type == "CREATE":
                template = parse_stack_template(change_set.template_body, "template", function_stack=False)
                plan = self._planner.plan(stack, template, change_set.given, None, {})
                operation = self._begin_create(
                    stack, plan, change_set.template_body, change_set.tags, change_set.capabilities
                )
            else:
                plan, body = self._update_plan(
                    stack, change_set.template_body, change_set.given, change_set.use_previous, "template"
                )
                operation = self._begin_update(stack, plan, body, change_set.tags, change_set.capabilities)
            change_set.execution = operation
            stack.change_set_id = change_set.change_set_id
            for other in [other for other in self._change_sets.values() if other.stack_id == stack.stack_id]:
                if other is not change_set:
                    self._change_sets.pop(other.change_set_id)
            return operation

    def delete_change_set(self, name_or_id: str, stack_name: str | None = None) -> None:
        with self._lock:
            change_set = self.change_set(name_or_id, stack_name)
            if change_set.execution_status == "EXECUTE_IN_PROGRESS":
                raise ChangeSetStatusError(
                    f"ChangeSet [{change_set.change_set_id}] cannot be deleted while in status EXECUTE_IN_PROGRESS"
                )
            self._change_sets.pop(change_set.change_set_id)

    def _new_stack(self, name: str, *, function_stack: bool) -> LocalStack:
        if _STACK_NAME.fullmatch(name) is None:
            raise StackError(f"Stack name '{name}' must start with a letter and hold only letters, digits and hyphens")
        stack_id = f"arn:aws:cloudformation:{self._world.region}:{self._world.account_id}:stack/{name}/{uuid.uuid4()}"
        return LocalStack(name, stack_id, "CREATE_IN_PROGRESS", self._now(), function_stack=function_stack)

    def _register(self, stack: LocalStack, providers: dict[str, ResourceProvider]) -> None:
        with self._lock:
            self._stacks[stack.name] = stack
            self._providers[stack.name] = providers

    def _launch(self, stack: LocalStack, status: str, work: Callable[[], None]) -> StackOperation:
        """Put the stack in ``status`` and run ``work`` on a thread of its own; the caller holds the lock."""
        operation = StackOperation(stack, self._changed)
        self._operations[stack.stack_id] = operation
        self._stack_status(stack, status, "User Initiated")

        def run() -> None:
            try:
                work()
            except Exception as error:  # a stack never stays in progress: it ends failed, saying why
                with self._lock:
                    failed = _FAILED_STATUS.get(stack.status, stack.status)
                self._stack_status(stack, failed, f"Internal failure of the local CloudFormation: {error}")
            finally:
                operation.finish()

        threading.Thread(target=run, name=f"local-cfn-{stack.name}", daemon=True).start()
        return operation

    # -- create ---------------------------------------------------------------------------------------------

    def _start_create(
        self,
        name: str,
        body: str,
        source: str,
        given: Mapping[str, str] | None,
        providers: dict[str, ResourceProvider],
        *,
        function_stack: bool,
        tags: Mapping[str, str] | None = None,
        capabilities: Sequence[str] = (),
    ) -> StackOperation:
        template = parse_stack_template(body, source, function_stack=function_stack)
        with self._lock:
            if name in self._stacks:
                raise AlreadyExistsError(f"Stack [{name}] already exists")
            stack = self._new_stack(name, function_stack=function_stack)
            plan = self._planner.plan(stack, template, given, None, providers)
            self._register(stack, providers)
            return self._begin_create(stack, plan, body, tags, capabilities)

    def _begin_create(
        self,
        stack: LocalStack,
        plan: Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> StackOperation:
        self._adopt(stack, plan, body, tags, capabilities)
        return self._launch(stack, "CREATE_IN_PROGRESS", lambda: self._run_create(stack, plan))

    def _adopt(
        self,
        stack: LocalStack,
        plan: Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> None:
        """The stack takes the plan's template and parameters; tags and capabilities None keep the stack's."""
        with self._lock:
            stack.template, stack.parameters, stack.conditions = plan.template, plan.parameters, plan.conditions
            stack.imports = set(plan.imports)
            stack.template_body, stack.description = body, str(plan.template.get("Description", ""))
            if tags is not None:
                stack.tags = dict(tags)
            if capabilities is not None:
                stack.capabilities = list(capabilities)

    # -- update ---------------------------------------------------------------------------------------------

    def _update_plan(
        self,
        stack: LocalStack,
        body: str | None,
        given: Mapping[str, str] | None,
        use_previous: Collection[str] | None,
        source: str,
    ) -> tuple[Plan, str]:
        """The plan of an update and the template text it applies (``body`` None: the stack's template)."""
        with self._lock:  # a deleted stack has no providers; the planner refuses it for its status
            providers = self._providers.get(stack.name, {})
        return self._planner.update_plan(stack, body, given, use_previous, source, providers)

    def _begin_update(
        self,
        stack: LocalStack,
        plan: Plan,
        body: str,
        tags: Mapping[str, str] | None,
        capabilities: Sequence[str] | None,
    ) -> StackOperation:
        with self._lock:
            before = copy.deepcopy(stack)
            self._adopt(stack, plan, body, tags, capabilities)
            stack.updated_at = self._now()
            return self._launch(stack, "UPDATE_IN_PROGRESS", lambda: self._run_update(stack, before, plan))
