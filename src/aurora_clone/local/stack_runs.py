"""``StackRuns``: the work of the local CloudFormation's operations, each on a thread of its own: resources
created, updated, rolled back and deleted in dependency order (concurrently where independent), outputs and
exports published, every step recorded as a stack event. ``LocalCloudFormation``, built on it, starts them.

Lifecycles follow CloudFormation: a failed create rolls back (Delete for every resource created or
attempted, with the PhysicalResourceId of its answer); an update replaces a resource whose answer carries a
new PhysicalResourceId and deletes the old one in the cleanup phase; a failed update rolls back (a swapped
Update to each resource updated in place or whose update failed, replacements and new resources deleted);
``DeletionPolicy: Retain`` and ``UpdateReplacePolicy: Retain`` are honoured. Stack events go to ``printer``
as they happen::

    12:00:01  my-stack  TestDatabase  Custom::AuroraClone  CREATE_IN_PROGRESS
"""

from __future__ import annotations

import datetime
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from aurora_clone import clock as process_clock
from aurora_clone.local.custom_requests import CustomResources
from aurora_clone.local.stack_exports import StackExports
from aurora_clone.local.stack_plans import Plan
from aurora_clone.local.stacks import (
    ChangeSet,
    Lambdas,
    LocalStack,
    ResourceFailedError,
    ResourceProvider,
    StackEvent,
    StackResource,
    World,
    is_custom_type,
)
from aurora_clone.local.template import (
    AttributeNotFoundError,
    StackContext,
    TemplateError,
    active_resources,
    creation_order,
    dependencies,
    resolve,
)

STACK_TYPE = "AWS::CloudFormation::Stack"


class StackRuns:
    """The stacks, their change sets and resource providers, and the work of their operations (see the module
    docstring); the base of ``LocalCloudFormation``."""

    def __init__(self, world: World, lambdas: Lambdas, printer: Callable[[str], None]) -> None:
        self._world = world
        self._printer = printer
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)  # notified at every event recorded
        self._stacks: dict[str, LocalStack] = {}
        self._deleted: dict[str, LocalStack] = {}  # by stack id: DescribeStacks and ListStacks still show them
        self._change_sets: dict[str, ChangeSet] = {}  # by change set id
        self._providers: dict[str, dict[str, ResourceProvider]] = {}
        self._custom = CustomResources(world, lambdas, self._lock)
        self._exports = StackExports(self._stacks, self._lock)

    # -- create ---------------------------------------------------------------------------------------------

    def _run_create(self, stack: LocalStack, plan: Plan) -> None:
        failed = _run_graph(plan.order, plan.needs, lambda logical_id: self._create_resource(stack, plan, logical_id))
        reason = f"The following resource(s) failed to create: [{', '.join(failed)}]. " if failed else ""
        reason = reason or self._publish_outputs(stack)
        if not reason:
            self._stack_status(stack, "CREATE_COMPLETE")
            return
        self._stack_status(stack, "ROLLBACK_IN_PROGRESS", f"{reason}Rollback requested by user.")
        with self._lock:
            attempted = {key: resource for key, resource in stack.resources.items() if resource.physical_id}
            for logical_id in set(stack.resources) - set(attempted):
                stack.resources.pop(logical_id)  # never reached its function: nothing to delete
        failed_deletes = self._delete_resources(stack, attempted, plan.needs)
        if failed_deletes:
            self._stack_status(
                stack, "ROLLBACK_FAILED", f"The following resource(s) failed to delete: [{', '.join(failed_deletes)}]. "
            )
        else:
            self._stack_status(stack, "ROLLBACK_COMPLETE")

    def _create_resource(self, stack: LocalStack, plan: Plan, logical_id: str) -> bool:
        definition = plan.resources[logical_id]
        resource = StackResource(
            logical_id,
            definition["Type"],
            deletion_policy=str(definition.get("DeletionPolicy", "Delete")),
            update_replace_policy=str(definition.get("UpdateReplacePolicy", "Delete")),
        )
        with self._lock:
            stack.resources[logical_id] = resource
        try:
            properties = self._resolve(stack, definition.get("Properties") or {})
            resource.properties = properties
            self._resource_status(stack, resource, "CREATE_IN_PROGRESS")
            physical_id, attributes = self._provider(stack, resource).create(stack, resource, properties)
        except ResourceFailedError as error:
            with self._lock:
                resource.physical_id = error.physical_id
            self._resource_status(stack, resource, "CREATE_FAILED", error.reason)
            return False
        except Exception as error:  # an AWS error of a native resource fails that resource, as in CloudFormation
            self._resource_status(stack, resource, "CREATE_FAILED", str(error))
            return False
        with self._lock:
            resource.physical_id, resource.attributes = physical_id, dict(attributes)
        self._resource_status(stack, resource, "CREATE_COMPLETE")
        return True

    # -- update ---------------------------------------------------------------------------------------------

    def _run_update(self, stack: LocalStack, before: LocalStack, plan: Plan) -> None:
        journal = _UpdateJournal()
        failed = _run_graph(
            plan.order, plan.needs, lambda logical_id: self._update_resource(stack, plan, logical_id, journal)
        )
        reason = ""
        if failed:
            verb = "update" if any(logical_id in before.resources for logical_id in failed) else "create"
            reason = f"The following resource(s) failed to {verb}: [{', '.join(failed)}]. "
        reason = reason or self._exports.users(
            stack, self._exports.changed(before, stack, self._context(stack)), updating=True
        )
        reason = reason or self._publish_outputs(stack)
        if not reason:
            self._finish_update(stack, before, plan, journal)
        else:
            self._roll_back_update(stack, before, plan, journal, reason)

    def _update_resource(self, stack: LocalStack, plan: Plan, logical_id: str, journal: _UpdateJournal) -> bool:
        with self._lock:
            resource = stack.resources.get(logical_id)
        if resource is None:
            created = self._create_resource(stack, plan, logical_id)
            with self._lock:
                journal.created.append(logical_id)
            return created
        try:
            properties = self._resolve(stack, plan.resources[logical_id].get("Properties") or {})
        except ResourceFailedError as error:
            self._resource_status(stack, resource, "UPDATE_FAILED", error.reason)
            return False
        with self._lock:
            resource.deletion_policy = str(plan.resources[logical_id].get("DeletionPolicy", "Delete"))
            resource.update_replace_policy = str(plan.resources[logical_id].get("UpdateReplacePolicy", "Delete"))
        if properties == resource.properties:
            return True
        self._resource_status(stack, resource, "UPDATE_IN_PROGRESS")
        try:
            physical_id, attributes = self._provider(stack, resource).update(
                stack, resource, properties, resource.properties
            )
        except ResourceFailedError as error:
            if error.request_sent:
                with self._lock:
                    journal.attempted[logical_id] = properties
            self._resource_status(stack, resource, "UPDATE_FAILED", error.reason)
            return False
        except Exception as error:  # an AWS error of a native resource fails that resource
            self._resource_status(stack, resource, "UPDATE_FAILED", str(error))
            return False
        with self._lock:
            if physical_id != resource.physical_id:
                journal.replaced[logical_id] = replace(resource)
                resource = replace(resource)
                stack.resources[logical_id] = resource
            else:
                journal.attempted[logical_id] = properties
            resource.physical_id, resource.properties, resource.attributes = physical_id, properties, dict(attributes)
        self._resource_status(stack, resource, "UPDATE_COMPLETE")
        return True

    def _finish_update(self, stack: LocalStack, before: LocalStack, plan: Plan, journal: _UpdateJournal) -> None:
        self._stack_status(stack, "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS")
        old_needs = dependencies(before.template, active_resources(before.template, before.conditions))
        removed = {key: resource for key, resource in stack.resources.items() if key not in plan.resources}
        self._delete_resources(stack, removed, old_needs)
        # The old copies of replaced resources: never in stack.resources again, Delete with their old ids.
        replaced = {
            key: replace(old, deletion_policy=old.update_replace_policy) for key, old in journal.replaced.items()
        }
        self._delete_resources(stack, replaced, plan.needs, keep_records=True)
        self._stack_status(stack, "UPDATE_COMPLETE")

    def _roll_back_update(
        self, stack: LocalStack, before: LocalStack, plan: Plan, journal: _UpdateJournal, reason: str
    ) -> None:
        self._stack_status(stack, "UPDATE_ROLLBACK_IN_PROGRESS", reason)
        with self._lock:
            stack.template, stack.parameters, stack.conditions = before.template, before.parameters, before.conditions
            stack.imports, stack.tags, stack.capabilities = before.imports, before.tags, before.capabilities
            stack.template_body, stack.description = before.template_body, before.description
        obsolete: dict[str, StackResource] = {}
        # A replacement is undone by going back to the old resource, which cleanup never reached; the new one
        # is deleted (CloudFormation sends its Delete with the new PhysicalResourceId).
        for logical_id, old in journal.replaced.items():
            with self._lock:
                obsolete[logical_id] = stack.resources[logical_id]
                stack.resources[logical_id] = old
            self._resource_status(stack, old, "UPDATE_COMPLETE")
        # Resources the update added stay in the stack's record until their Delete is over (DescribeStackResource
        # shows them being deleted, as the function confirms a Delete by it); one never created leaves now.
        added: list[str] = []
        for logical_id in journal.created:
            with self._lock:
                created = stack.resources[logical_id]
                if not created.physical_id:
                    stack.resources.pop(logical_id)
                    continue
            obsolete[logical_id] = created
            added.append(logical_id)
        # Resources changed in place, and those whose Update was sent but failed, get an ordinary Update back
        # to the old properties (old and new swapped), in the old template's order.
        old_needs = dependencies(before.template, active_resources(before.template, before.conditions))
        to_revert = [logical_id for logical_id in old_needs if logical_id in journal.attempted]
        failed = _run_graph(
            to_revert,
            old_needs,
            lambda logical_id: self._revert_resource(stack, before, logical_id, journal, obsolete),
            stop_on_failure=False,
        )
        if failed:
            self._stack_status(
                stack, "UPDATE_ROLLBACK_FAILED", f"The following resource(s) failed to update: [{', '.join(failed)}]. "
            )
            return
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS")
        self._delete_resources(stack, obsolete, {**old_needs, **plan.needs}, keep_records=True)
        with self._lock:
            for logical_id in added:
                stack.resources.pop(logical_id, None)
        with self._lock:
            stack.outputs, stack.output_details, stack.exports = before.outputs, before.output_details, before.exports
        self._stack_status(stack, "UPDATE_ROLLBACK_COMPLETE")

    def _revert_resource(
        self,
        stack: LocalStack,
        before: LocalStack,
        logical_id: str,
        journal: _UpdateJournal,
        obsolete: dict[str, StackResource],
    ) -> bool:
        with self._lock:
            resource = stack.resources[logical_id]
        old_properties = before.resources[logical_id].properties
        self._resource_status(stack, resource, "UPDATE_IN_PROGRESS")
        try:
            physical_id, attributes = self._provider(stack, resource).update(
                stack, resource, old_properties, journal.attempted[logical_id]
            )
        except Exception as error:  # a failed rollback step fails the rollback (UPDATE_ROLLBACK_FAILED)
            self._resource_status(stack, resource, "UPDATE_FAILED", getattr(error, "reason", str(error)))
            return False
        with self._lock:
            if physical_id != resource.physical_id:
                obsolete[logical_id] = replace(resource)
                resource = replace(resource)
                stack.resources[logical_id] = resource
            resource.physical_id, resource.properties, resource.attributes = (
                physical_id,
                old_properties,
                dict(attributes),
            )
        self._resource_status(stack, resource, "UPDATE_COMPLETE")
        return True

    # -- delete ---------------------------------------------------------------------------------------------

    def _run_delete(self, stack: LocalStack) -> None:
        users = self._exports.users(stack, set(stack.exports))
        if users:
            self._stack_status(stack, "DELETE_FAILED", users)
            return
        template = stack.template  # a stack still in REVIEW_IN_PROGRESS has none
        needs = dependencies(template, active_resources(template, stack.conditions)) if template else {}
        failed = self._delete_resources(stack, dict(stack.resources), needs)
        if failed:
            self._stack_status(
                stack, "DELETE_FAILED", f"The following resource(s) failed to delete: [{', '.join(failed)}]. "
            )
            return
        with self._lock:  # gone by name and deleted by id at once, as DescribeStacks sees it
            stack.exports, stack.deleted_at = {}, self._now()
            self._stacks.pop(stack.name, None)
            self._providers.pop(stack.name, None)
            self._deleted[stack.stack_id] = stack
            for change_set in [c for c in self._change_sets.values() if c.stack_id == stack.stack_id]:
                self._change_sets.pop(change_set.change_set_id)
            self._stack_status(stack, "DELETE_COMPLETE")

    def _delete_resources(
        self,
        stack: LocalStack,
        resources: Mapping[str, StackResource],
        needs: Mapping[str, set[str]],
        *,
        keep_records: bool = False,
    ) -> list[str]:
        """Delete ``resources`` (dependents first), concurrently where independent; returns the failed ids.

        Deleted (or retained) resources leave ``stack.resources`` unless ``keep_records`` (copies that the
        stack no longer lists: replaced or rolled-back resources).
        """
        names = set(resources)
        dependents = {name: {other for other in names if name in needs.get(other, set())} for name in names}
        order = list(reversed(creation_order({name: needs.get(name, set()) & names for name in names})))

        def delete(logical_id: str) -> bool:
            resource = resources[logical_id]
            if resource.deletion_policy == "Retain":
                self._resource_status(stack, resource, "DELETE_SKIPPED")
            elif resource.physical_id:
                self._resource_status(stack, resource, "DELETE_IN_PROGRESS")
                try:
                    self._provider(stack, resource).delete(stack, resource)
                except Exception as error:  # reported as DELETE_FAILED with the reason, as CloudFormation does
                    self._resource_status(stack, resource, "DELETE_FAILED", getattr(error, "reason", str(error)))
                    return False
                self._resource_status(stack, resource, "DELETE_COMPLETE")
            if not keep_records:
                with self._lock:
                    stack.resources.pop(logical_id, None)
            return True

        return _run_graph(order, dependents, delete, stop_on_failure=False)

    # -- shared steps -------------------------------------------------------------------------------------

    def _provider(self, stack: LocalStack, resource: StackResource) -> ResourceProvider:
        if is_custom_type(resource.resource_type):
            return self._custom
        with self._lock:
            return self._providers[stack.name][resource.resource_type]

    def _context(self, stack: LocalStack) -> StackContext:
        with self._lock:
            return StackContext(
                stack.name,
                stack.stack_id,
                self._world.region,
                self._world.account_id,
                dict(stack.parameters),
                {key: resource.physical_id for key, resource in stack.resources.items() if resource.physical_id},
                {key: dict(resource.attributes) for key, resource in stack.resources.items() if resource.physical_id},
                self._exports.values(),
                dict(stack.conditions),
                stack.template.get("Mappings") or {},
            )

    def _resolve(self, stack: LocalStack, value: Any) -> Any:
        """``value`` resolved in the stack's current context; failures as CloudFormation words them."""
        try:
            return resolve(value, self._context(stack))
        except AttributeNotFoundError as error:
            raise ResourceFailedError(self._attribute_error(stack, error), request_sent=False) from None
        except TemplateError as error:
            raise ResourceFailedError(str(error), request_sent=False) from None

    def _attribute_error(self, stack: LocalStack, error: AttributeNotFoundError) -> str:
        resource = stack.resources.get(error.logical_id)
        if resource is not None and is_custom_type(resource.resource_type):
            return (
                f"CustomResource attribute error: Vendor response doesn't contain {error.attribute} key in object "
                f"{resource.answer_object} in S3 bucket {self._custom.bucket}"
            )
        return (
            f"Template error: resource {error.logical_id} does not support attribute type {error.attribute} "
            "in Fn::GetAtt"
        )

    def _publish_outputs(self, stack: LocalStack) -> str:
        """Resolve the outputs and record them and their exports; the failure reason, or ''."""
        return self._exports.publish(stack, self._context(stack), lambda error: self._attribute_error(stack, error))

    # -- events -------------------------------------------------------------------------------------------

    def _now(self) -> datetime.datetime:
        """The world's date (the process reads the world's clock while the world runs), in UTC."""
        return process_clock.utcnow()

    def _record(self, stack: LocalStack, event: StackEvent) -> None:
        with self._lock:
            stack.events.append(event)
            self._changed.notify_all()
            self._printer(event.line())

    def _stack_status(self, stack: LocalStack, status: str, reason: str = "") -> None:
        with self._lock:
            stack.status, stack.status_reason = status, reason
            self._record(
                stack, StackEvent(self._now(), stack.name, stack.name, stack.stack_id, STACK_TYPE, status, reason)
            )

    def _resource_status(self, stack: LocalStack, resource: StackResource, status: str, reason: str = "") -> None:
        with self._lock:
            resource.status, resource.status_reason = status, reason
            event = StackEvent(
                self._now(),
                stack.name,
                resource.logical_id,
                resource.physical_id,
                resource.resource_type,
                status,
                reason,
            )
            resource.updated_at = event.timestamp
            self._record(stack, event)


@dataclass
class _UpdateJournal:
    """What an update did, for its cleanup or its rollback."""

    created: list[str] = field(default_factory=list)
    attempted: dict[str, dict[str, Any]] = field(default_factory=dict)  # in-place updates sent: new properties
    replaced: dict[str, StackResource] = field(default_factory=dict)  # the old resource of each replacement


def _run_graph(
    order: list[str],
    needs: Mapping[str, set[str]],
    step: Callable[[str], bool],
    *,
    stop_on_failure: bool = True,
) -> list[str]:
    """Run ``step`` for each id once the ids it needs have succeeded; independent ids run concurrently.

    With ``stop_on_failure``, nothing new starts after a failure (what runs ends). Returns the failed ids.
    """
    members = set(order)
    pending = list(order)
    done: set[str] = set()
    failed: list[str] = []
    running: dict[Future[bool], str] = {}
    with ThreadPoolExecutor(max_workers=max(1, len(order)), thread_name_prefix="local-cfn") as pool:
        while pending or running:
            if failed and stop_on_failure:
                pending = []
            for name in [name for name in pending if needs.get(name, set()) & members <= done]:
                pending.remove(name)
                running[pool.submit(step, name)] = name
            if not running:
                break  # what is left waits on something that failed
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                name = running.pop(future)
                try:
                    succeeded = future.result()
                except Exception:  # a step reports its own failure; an escaped error still fails it
                    succeeded = False
                if succeeded:
                    done.add(name)
                else:
                    failed.append(name)
    return failed
