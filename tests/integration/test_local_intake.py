"""The local CloudFormation confirms its own custom resource requests as AWS's does: while each request is
in flight, its API's DescribeStacks and DescribeStackResource show the stack in the middle of the operation,
the resource of its type and the PhysicalResourceId the request names (or none), and the ResponseURL is in
the response bucket at the world's endpoint. Every request of a create, an update in place, a replacement
and its cleanup, a failed create's rollback, the rollback after a Create it gave up on, an update's
rollback and the removal of what it added, and a delete is confirmed by aurora_clone.intake.

The provider is a stand-in for the function: it asks the world's CloudFormation API what the function asks,
then answers as the resource's ``Answer`` property says.
"""

from __future__ import annotations

import json
import ssl
import threading
import urllib.request
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.intake import request_confirmation_problem, response_url_problem
from aurora_clone.local.cloudformation import LocalCloudFormation
from aurora_clone.local.cloudformation_api import CloudFormationApi
from aurora_clone.local.world import LocalAws
from aurora_clone.stacks import describe_request_resource

PROVIDER = "arn:aws:lambda:us-east-1:123456789012:function:provider"


class ConfirmingProvider:
    """The Lambdas the local CloudFormation invokes: one function, which confirms each request as the function
    does, records what it saw, then answers (``Answer``: ``SUCCESS:<id>``, ``FAILED``, ``NONE``)."""

    def __init__(self, world: LocalAws) -> None:
        self.world = world
        self.seen: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="provider")
        self._tls = ssl.create_default_context(cafile=world.ca_bundle)

    def register(self, function_name: str, *args: Any, **kwargs: Any) -> str:
        return PROVIDER

    def unregister(self, function_name_or_arn: str) -> None:
        pass

    def is_registered(self, function_name_or_arn: str) -> bool:
        return function_name_or_arn == PROVIDER

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Future[None]:
        return self._pool.submit(self._handle, dict(event))

    def _handle(self, event: dict[str, Any]) -> None:
        stack, resource = describe_request_resource(
            event["StackId"], event["LogicalResourceId"], client=self.world.client("cloudformation")
        )
        problem = response_url_problem(event["ResponseURL"], self.world.region, self.world.endpoint_url)
        problem = problem or request_confirmation_problem(event, stack, resource, PROVIDER)
        with self._lock:
            self.seen.append(
                {
                    "request": (event["RequestType"], event["LogicalResourceId"], event.get("PhysicalResourceId")),
                    "stack": stack and stack["status"],
                    "resource": resource,
                    "problem": problem,
                }
            )
        answer = str(event["ResourceProperties"].get("Answer", "SUCCESS:x"))
        if event["RequestType"] == "Delete":
            answer = f"SUCCESS:{event['PhysicalResourceId']}"
        if answer == "NONE":
            return
        status, _, rest = answer.partition(":")
        physical_id = rest.split(":")[0]
        body = {
            "Status": status,
            "Reason": "as the template says",
            "PhysicalResourceId": physical_id or event.get("PhysicalResourceId") or "failed-id",
            "StackId": event["StackId"],
            "RequestId": event["RequestId"],
            "LogicalResourceId": event["LogicalResourceId"],
        }
        request = urllib.request.Request(
            event["ResponseURL"], data=json.dumps(body).encode(), method="PUT", headers={"Content-Type": ""}
        )
        with urllib.request.urlopen(request, timeout=10, context=self._tls):
            pass

    def requests(self) -> list[tuple[str, str, str | None]]:
        with self._lock:
            return [seen["request"] for seen in self.seen]

    def problems(self) -> list[Any]:
        with self._lock:
            return [
                (seen["request"], seen["problem"], seen["stack"], seen["resource"])
                for seen in self.seen
                if seen["problem"]
            ]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@pytest.fixture(scope="module")
def local() -> Iterator[tuple[LocalCloudFormation, ConfirmingProvider]]:
    with LocalAws(time_scale=0.005) as world:
        provider = ConfirmingProvider(world)
        cloudformation = LocalCloudFormation(world, provider, printer=lambda _line: None)
        world.put_in_front(CloudFormationApi(cloudformation, world).in_front_of)
        yield cloudformation, provider
        provider.close()


def template(directory: Path, resources: dict[str, str], name: str = "template.yaml") -> str:
    """A template of custom resources, each answering as its ``Answer`` says (``SUCCESS:<id>[:<anything>]``,
    ``FAILED``, ``NONE``: never, and CloudFormation waits only a minute for it)."""
    lines = ["Resources:"]
    for logical_id, answer in resources.items():
        lines += [
            f"  {logical_id}:",
            "    Type: Custom::AuroraClone",
            "    Properties:",
            f"      ServiceToken: {PROVIDER}",
            f'      ServiceTimeout: "{60 if answer == "NONE" else 3600}"',
            f'      Answer: "{answer}"',
        ]
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def test_every_request_of_a_stacks_life_is_confirmed(
    local: tuple[LocalCloudFormation, ConfirmingProvider], tmp_path: Path
) -> None:
    cloudformation, provider = local
    before = len(provider.requests())

    assert cloudformation.create_stack("life", template(tmp_path, {"Db": "SUCCESS:db-1"})).status == "CREATE_COMPLETE"
    in_place = template(tmp_path, {"Db": "SUCCESS:db-1:resized"}, "in-place.yaml")
    assert cloudformation.update_stack("life", in_place).status == "UPDATE_COMPLETE"
    replaced = template(tmp_path, {"Db": "SUCCESS:db-2"}, "replaced.yaml")
    assert cloudformation.update_stack("life", replaced).status == "UPDATE_COMPLETE"
    # An update that adds a resource whose Create fails: rolled back, the added resource deleted.
    failing = template(tmp_path, {"Db": "SUCCESS:db-2", "Extra": "FAILED"}, "failing.yaml")
    assert cloudformation.update_stack("life", failing).status == "UPDATE_ROLLBACK_COMPLETE"
    # An update in place that fails: the rollback Update, old and new properties swapped.
    assert cloudformation.update_stack("life", template(tmp_path, {"Db": "FAILED"}, "bad.yaml")).status == (
        "UPDATE_ROLLBACK_COMPLETE"
    )
    # Removing the resource: its Delete in the cleanup.
    assert cloudformation.update_stack("life", template(tmp_path, {"Other": "SUCCESS:o-1"}, "rm.yaml")).status == (
        "UPDATE_COMPLETE"
    )
    assert cloudformation.delete_stack("life").status == "DELETE_COMPLETE"

    assert provider.requests()[before:] == [
        ("Create", "Db", None),
        ("Update", "Db", "db-1"),
        ("Update", "Db", "db-1"),
        ("Delete", "Db", "db-1"),  # the old copy, in the cleanup
        ("Create", "Extra", None),
        ("Delete", "Extra", "failed-id"),
        ("Update", "Db", "db-2"),
        ("Update", "Db", "db-2"),  # the rollback
        ("Create", "Other", None),
        ("Delete", "Db", "db-2"),  # removed, in the cleanup
        ("Delete", "Other", "o-1"),
    ]
    assert provider.problems() == []


def test_rollbacks_of_failed_and_unanswered_creates_are_confirmed(
    local: tuple[LocalCloudFormation, ConfirmingProvider], tmp_path: Path
) -> None:
    cloudformation, provider = local
    before = len(provider.requests())

    assert cloudformation.create_stack("failed", template(tmp_path, {"Db": "FAILED"})).status == "ROLLBACK_COMPLETE"
    unanswered = cloudformation.create_stack("silent", template(tmp_path, {"Db": "NONE"}, "silent.yaml"))

    assert unanswered.status == "ROLLBACK_COMPLETE"
    requests = provider.requests()[before:]
    assert [(kind, logical_id) for kind, logical_id, _ in requests] == [("Create", "Db"), ("Delete", "Db")] * 2
    assert requests[1][2] == "failed-id" and requests[3][2]  # the failed answer's id; CloudFormation's own
    assert provider.problems() == []
