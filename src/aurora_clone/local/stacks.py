"""What the local CloudFormation keeps and shares: stacks (``LocalStack``), their resources, events and change
sets, a running operation (``StackOperation``), the errors it answers with, what a resource provider does and
what it needs of the world.
"""

from __future__ import annotations

import datetime
import secrets
import string
import threading
import uuid
from collections.abc import Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Protocol

from aurora_clone.local.template import Output, ParameterValue

CUSTOM_RESOURCE_TYPE = "AWS::CloudFormation::CustomResource"


class World(Protocol):
    """What the local CloudFormation needs of LocalAws."""

    region: str
    account_id: str
    endpoint_url: str
    ca_bundle: str

    def client_env(self) -> dict[str, str]: ...

    def client(self, service: str) -> Any: ...

    def world_time(self) -> float: ...

    def to_real(self, world_seconds: float) -> float: ...


class Lambdas(Protocol):
    """What the local CloudFormation needs of LocalLambda."""

    def register(
        self,
        function_name: str,
        handler: str = ...,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = ...,
        memory_mb: int = ...,
        *,
        role_arn: str | None = None,
        code_dir: str | None = None,
    ) -> str: ...

    def unregister(self, function_name_or_arn: str) -> None: ...

    def is_registered(self, function_name_or_arn: str) -> bool: ...

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Future[None]: ...


class StackError(Exception):
    """The operation was refused before it started (CloudFormation's ValidationError)."""


class StackNotFoundError(StackError):
    """No stack of that name, or of that stack id."""


class NoChangesError(StackError):
    """An update that would change nothing: the template, parameters and tags are the stack's own."""


class AlreadyExistsError(StackError):
    """A stack, or a stack's change set, of that name exists already (CloudFormation's AlreadyExistsException)."""


class ChangeSetNotFoundError(StackError):
    """No such change set (CloudFormation's ChangeSetNotFound)."""


class ChangeSetStatusError(StackError):
    """The change set cannot be executed or deleted in its status (CloudFormation's InvalidChangeSetStatus)."""


class ResourceFailedError(Exception):
    """A resource operation failed; ``physical_id`` is the id its answer carried, if any."""

    def __init__(self, reason: str, physical_id: str = "", *, request_sent: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.physical_id = physical_id
        self.request_sent = request_sent


@dataclass(frozen=True)
class StackEvent:
    """One line of a stack's event history."""

    timestamp: datetime.datetime
    stack_name: str
    logical_id: str
    physical_id: str
    resource_type: str
    status: str
    reason: str = ""
    event_id: str = field(default_factory=lambda: str(uuid.uuid4()))

    def line(self) -> str:
        text = f"{self.timestamp:%H:%M:%S}  {self.stack_name}  {self.logical_id}  {self.resource_type}  {self.status}"
        return f"{text}  {self.reason}" if self.reason else text


@dataclass
class StackResource:
    """A resource as the stack knows it: ids, status, the properties last applied, its attributes."""

    logical_id: str
    resource_type: str
    physical_id: str = ""
    status: str = ""
    status_reason: str = ""
    properties: dict[str, Any] = field(default_factory=dict)
    attributes: dict[str, Any] = field(default_factory=dict)
    deletion_policy: str = "Delete"
    update_replace_policy: str = "Delete"
    answer_object: str = ""  # the S3 key of the answer whose Data are the attributes (custom resources)
    updated_at: datetime.datetime | None = None  # the time of its last status


@dataclass
class LocalStack:
    """A stack: its status, resolved outputs, resources and events."""

    name: str
    stack_id: str
    status: str
    created_at: datetime.datetime
    status_reason: str = ""
    parameters: dict[str, ParameterValue] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    output_details: dict[str, Output] = field(default_factory=dict)  # with descriptions and export names
    exports: dict[str, str] = field(default_factory=dict)  # export name -> value
    resources: dict[str, StackResource] = field(default_factory=dict)
    events: list[StackEvent] = field(default_factory=list)
    template: dict[str, Any] = field(default_factory=dict, repr=False)
    conditions: dict[str, bool] = field(default_factory=dict, repr=False)
    imports: set[str] = field(default_factory=set, repr=False)
    function_stack: bool = False
    template_body: str = field(default="", repr=False)  # the template as it was given, for GetTemplate
    description: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    capabilities: list[str] = field(default_factory=list)
    updated_at: datetime.datetime | None = None
    deleted_at: datetime.datetime | None = None
    change_set_id: str = ""  # the change set that last ran on it


@dataclass(frozen=True)
class ResourceChange:
    """One line of a change set: what would happen to a resource."""

    action: str  # Add, Modify, Remove
    logical_id: str
    resource_type: str
    physical_id: str = ""
    replacement: str = ""  # for Modify: True, False or Conditional


@dataclass
class ChangeSet:
    """A change set: what a CREATE or UPDATE would do, kept to be executed (or deleted)."""

    name: str
    change_set_id: str
    change_set_type: str  # CREATE or UPDATE
    stack_id: str
    stack_name: str
    created_at: datetime.datetime
    template_body: str = field(repr=False)
    given: dict[str, str] = field(default_factory=dict)  # the parameter values given
    use_previous: frozenset[str] | None = None  # parameters to keep (None: every one not given)
    parameters: dict[str, ParameterValue] = field(default_factory=dict)  # the values it would apply
    tags: dict[str, str] | None = None
    capabilities: list[str] = field(default_factory=list)
    description: str = ""
    status: str = "CREATE_COMPLETE"  # or FAILED
    status_reason: str = ""
    changes: list[ResourceChange] = field(default_factory=list)
    execution: StackOperation | None = None

    @property
    def execution_status(self) -> str:
        if self.execution is None:
            return "AVAILABLE" if self.status == "CREATE_COMPLETE" else "UNAVAILABLE"
        final = self.execution.final_status
        if final is None:
            return "EXECUTE_IN_PROGRESS"
        return "EXECUTE_COMPLETE" if final in ("CREATE_COMPLETE", "UPDATE_COMPLETE") else "EXECUTE_FAILED"


class StackOperation:
    """A create, update or delete running in the background, as CloudFormation runs them.

    ``events()`` yields the stack's events from the operation's first one, as they happen, and ends with its
    last; ``wait()`` returns the stack once the operation has ended (``final_status`` is then its status).
    """

    def __init__(self, stack: LocalStack, changed: threading.Condition) -> None:
        self.stack = stack
        self.final_status: str | None = None
        self._changed = changed
        self._first = len(stack.events)  # the caller holds the lock and records the first event next
        self._end: int | None = None
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> LocalStack:
        """The stack once the operation has ended; TimeoutError after ``timeout`` real seconds."""
        if not self._done.wait(timeout):
            raise TimeoutError(f"stack {self.stack.name} is still {self.stack.status}")
        return self.stack

    def events(self) -> Iterator[StackEvent]:
        position = self._first
        while True:
            with self._changed:
                while self._end is None and len(self.stack.events) <= position:
                    self._changed.wait()
                finished = self._end is not None
                new = self.stack.events[position : self._end]
            position += len(new)
            yield from new
            if finished:
                return

    def finish(self) -> None:
        """Mark the operation ended (its last event recorded); called once, by the thread that ran it."""
        with self._changed:
            self._end = len(self.stack.events)
            self.final_status = self.stack.status
            self._changed.notify_all()
        self._done.set()


class ResourceProvider(Protocol):
    """Creates, updates and deletes resources of some types; failures raise ResourceFailedError."""

    def create(self, stack: LocalStack, resource: StackResource, properties: dict[str, Any]) -> tuple[str, Any]: ...

    def update(
        self, stack: LocalStack, resource: StackResource, properties: dict[str, Any], old: dict[str, Any]
    ) -> tuple[str, Any]: ...

    def delete(self, stack: LocalStack, resource: StackResource) -> None: ...


def is_custom_type(resource_type: str) -> bool:
    return resource_type == CUSTOM_RESOURCE_TYPE or resource_type.startswith("Custom::")


def cloudformation_strings(value: Any) -> Any:
    """Property values as a custom resource receives them: every scalar a string, lists and maps kept."""
    if isinstance(value, dict):
        return {key: cloudformation_strings(item) for key, item in value.items()}
    if isinstance(value, list):
        return [cloudformation_strings(item) for item in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    return str(value)


def generated_name(stack_name: str, logical_id: str, max_length: int) -> str:
    """A name like CloudFormation generates: ``<stack>-<logical id>-<12 random>``, cut to ``max_length``."""
    suffix = "".join(secrets.choice(string.ascii_uppercase + string.digits) for _ in range(12))
    base = f"{stack_name}-{logical_id}"[: max_length - len(suffix) - 1]
    return f"{base}-{suffix}"
