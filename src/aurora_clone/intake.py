"""Whether a CloudFormation request is CloudFormation's. Pure: plain data in, a sentence out (None: it is).

Anyone allowed ``lambda:InvokeFunction`` can send the function an event shaped like CloudFormation's, so a
request is only a claim until two things confirm it:

- its ResponseURL (``response_url_problem``): the answer carries the clone's endpoint and secret ARN, so it
  goes only to CloudFormation's response bucket for the function's Region, over HTTPS. The bucket is
  ``cloudformation-custom-resource-response-<Region without dashes>`` (AWS's VPC endpoint guide); the hosts
  are the S3 forms ResponseURLs are seen with: ``<bucket>.s3.amazonaws.com``,
  ``<bucket>.s3.<region>.amazonaws.com``, ``<bucket>.s3-<region>.amazonaws.com`` (``.amazonaws.com.cn``
  with only the ``s3.<region>`` form in the China Regions), and the path-style forms of the same
  endpoints. In a local world the bucket is served at a configured endpoint (``RESPONSE_ENDPOINT``): then
  the URL must be at that endpoint, in that bucket. The endpoint is where the bucket is, not a way around
  the check.
- CloudFormation's own record (``request_confirmation_problem``, over what DescribeStacks and
  DescribeStackResource say): the stack exists under that id and is in the middle of an operation that
  sends such a request (a Delete only while the stack is deleted, rolled back or cleaned up, never while
  a clone is being created); it has the logical resource, of the request's type, which is this tool's
  (``Custom::AuroraClone``, or another custom type whose ServiceToken is this function); and an Update or a
  Delete names the PhysicalResourceId CloudFormation has for it. In a cleanup phase, CloudFormation deletes
  the old copy of a replaced resource, whose id its record no longer names, or a resource the update
  removed (its record then shows it being deleted).

A request that is not confirmed is logged and ignored by the engine: no record, no AWS call, no answer.

>>> url = "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/arn%3Aaws%3A...?X-Amz-Signature=s"
>>> response_url_problem(url, "us-east-1", None) is None
True
>>> response_url_problem("https://attacker.example/r", "us-east-1", None)
"The ResponseURL's host attacker.example is not CloudFormation's response bucket for us-east-1."
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import SplitResult, unquote, urlsplit

RESPONSE_BUCKET_PREFIX = "cloudformation-custom-resource-response-"
CLONE_TYPE = "Custom::AuroraClone"
GENERIC_CUSTOM_TYPE = "AWS::CloudFormation::CustomResource"
CUSTOM_TYPE_PREFIX = "Custom::"

# The stack statuses in which CloudFormation sends each request type (the CloudFormation User Guide's stack
# status codes): a request at any other time is not CloudFormation's, whatever else it names.
REQUEST_STATUSES: Mapping[str, frozenset[str]] = {
    # A resource of a new stack, or one an update adds (or replaces, when its type changes).
    "Create": frozenset({"CREATE_IN_PROGRESS", "UPDATE_IN_PROGRESS"}),
    # An update, or the Update that rolls a failed one back.
    "Update": frozenset({"UPDATE_IN_PROGRESS", "UPDATE_ROLLBACK_IN_PROGRESS"}),
    # The stack's deletion, a failed creation's rollback, and the cleanups: the old resources after an
    # update, the new ones after its rollback.
    "Delete": frozenset(
        {
            "DELETE_IN_PROGRESS",
            "ROLLBACK_IN_PROGRESS",
            "UPDATE_COMPLETE_CLEANUP_IN_PROGRESS",
            "UPDATE_ROLLBACK_COMPLETE_CLEANUP_IN_PROGRESS",
        }
    ),
}
CLEANUP_SUFFIX = "_CLEANUP_IN_PROGRESS"
BEING_DELETED = "DELETE_IN_PROGRESS"

_HTTPS_PORT = 443
_HTTP_PORT = 80


def response_bucket(region: str) -> str:
    """CloudFormation's response bucket of ``region``.

    >>> response_bucket("eu-west-1"), response_bucket("cn-north-1")
    ('cloudformation-custom-resource-response-euwest1', 'cloudformation-custom-resource-response-cnnorth1')
    """
    return RESPONSE_BUCKET_PREFIX + region.replace("-", "")


def _s3_hosts(region: str) -> tuple[str, ...]:
    """The S3 endpoints (path style) that serve ``region``'s buckets; the bucket's subdomain of each is its
    virtual-hosted form."""
    if region.startswith("cn-"):
        return (f"s3.{region}.amazonaws.com.cn",)
    return ("s3.amazonaws.com", f"s3.{region}.amazonaws.com", f"s3-{region}.amazonaws.com")


def response_url_problem(url: str, region: str, endpoint: str | None) -> str | None:
    """Why ``url`` is not a ResponseURL of CloudFormation's response bucket for ``region`` (None: it is).
    With ``endpoint`` (a local world's S3), the bucket is there instead. The sentence never repeats the URL's
    path or query (its signature is a credential).

    >>> bucket = response_bucket("eu-west-1")
    >>> hosts = [f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.eu-west-1.amazonaws.com",
    ...          f"{bucket}.s3-eu-west-1.amazonaws.com", f"s3.eu-west-1.amazonaws.com/{bucket}",
    ...          f"{bucket}.s3.us-east-1.amazonaws.com"]
    >>> [response_url_problem(f"https://{host}/k", "eu-west-1", None) is None for host in hosts]
    [True, True, True, True, False]
    >>> response_url_problem(f"http://{bucket}.s3.amazonaws.com/k", "eu-west-1", None)
    'The ResponseURL is not https.'
    >>> response_url_problem(f"https://localhost:4566/{bucket}/k?X-Amz-Signature=s", "eu-west-1", "https://localhost:4566")
    >>> response_url_problem("https://localhost:4566/other-bucket/k", "eu-west-1", "https://localhost:4566")
    "The ResponseURL is not in CloudFormation's response bucket cloudformation-custom-resource-response-euwest1 at https://localhost:4566."
    """
    if not region:
        return "The function's Region is not known, so its response bucket is not either."
    parts = _parts(url)
    if isinstance(parts, str):
        return parts
    host, port = parts.hostname or "", parts.port
    bucket = response_bucket(region)
    in_bucket = parts.path.startswith(f"/{bucket}/") and len(parts.path) > len(bucket) + 2
    if endpoint:
        at = urlsplit(endpoint)
        if (parts.scheme, host, _port(parts.scheme, port)) != (at.scheme, at.hostname or "", _port(at.scheme, at.port)):
            return f"The ResponseURL is not at the response endpoint {at.scheme}://{at.netloc}."
        if not in_bucket:
            return f"The ResponseURL is not in CloudFormation's response bucket {bucket} at {at.scheme}://{at.netloc}."
        return None
    if parts.scheme != "https":
        return "The ResponseURL is not https."
    if port not in (None, _HTTPS_PORT):
        return f"The ResponseURL names port {port}, not HTTPS's 443."
    s3_hosts = _s3_hosts(region)
    if host in {f"{bucket}.{s3}" for s3 in s3_hosts}:
        return None if len(parts.path) > 1 else "The ResponseURL names no object in the response bucket."
    if host in s3_hosts:
        return None if in_bucket else f"The ResponseURL is not in CloudFormation's response bucket {bucket}."
    return f"The ResponseURL's host {host or '(none)'} is not CloudFormation's response bucket for {region}."


def _parts(url: str) -> SplitResult | str:
    """``url`` split, or why it is not a URL that every parser reads alike (the answer's PUT included)."""
    if not isinstance(url, str) or not url:
        return "The request has no ResponseURL."
    if any(ord(character) <= 0x20 or ord(character) == 0x7F or character == "\\" for character in url):
        return "The ResponseURL has a space, a control character or a backslash."
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "The ResponseURL is not a URL."
    if "@" in parts.netloc:
        return "The ResponseURL has a user name or password in it."
    if parts.fragment:
        return "The ResponseURL has a fragment."
    segments = unquote(parts.path).split("/")
    if "." in segments or ".." in segments:
        return "The ResponseURL's path has '.' or '..' segments."
    return parts


def _port(scheme: str, port: int | None) -> int | None:
    if port is not None:
        return port
    return {"https": _HTTPS_PORT, "http": _HTTP_PORT}.get(scheme)


def unqualified_function_arn(arn: str) -> str:
    """A Lambda function's ARN without its version or alias.

    >>> unqualified_function_arn("arn:aws:lambda:us-east-1:123456789012:function:aurora-clone:live")
    'arn:aws:lambda:us-east-1:123456789012:function:aurora-clone'
    """
    return ":".join(arn.split(":")[:7])


def function_region(arn: str) -> str:
    """The Region a Lambda function ARN names ('' when it is not one).

    >>> function_region("arn:aws:lambda:eu-west-1:123456789012:function:aurora-clone")
    'eu-west-1'
    """
    parts = arn.split(":")
    return parts[3] if len(parts) >= 7 and parts[2] == "lambda" else ""


def request_confirmation_problem(
    event: Mapping[str, Any],
    stack: Mapping[str, Any] | None,
    resource: Mapping[str, Any] | None,
    function_arn: str,
) -> str | None:
    """Why CloudFormation's record does not confirm ``event`` (None: it does).

    ``stack``: ``{"id", "status"}`` as DescribeStacks gives them for the event's StackId, None when there is no
    such stack. ``resource``: ``{"type", "physical_id", "status"}`` as DescribeStackResource gives them for
    its LogicalResourceId, None when the stack has no such resource. ``function_arn``: this function's.

    >>> event = {"RequestType": "Delete", "StackId": "arn:aws:cloudformation:us-east-1:1:stack/qa/x",
    ...          "LogicalResourceId": "Db", "ResourceType": "Custom::AuroraClone", "PhysicalResourceId": "qa-db"}
    >>> stack = {"id": event["StackId"], "status": "DELETE_IN_PROGRESS"}
    >>> request_confirmation_problem(event, stack, {"type": "Custom::AuroraClone", "physical_id": "qa-db"}, "")
    >>> request_confirmation_problem(event, stack, {"type": "Custom::AuroraClone", "physical_id": "qa-db-2"}, "")
    "The request names PhysicalResourceId 'qa-db', and CloudFormation's resource Db of stack qa is 'qa-db-2'."
    >>> request_confirmation_problem(event, None, None, "")
    'CloudFormation has no stack arn:aws:cloudformation:us-east-1:1:stack/qa/x.'
    """
    stack_id = str(event.get("StackId", ""))
    logical_id = str(event.get("LogicalResourceId", ""))
    request_type = str(event.get("RequestType", ""))
    if stack is None:
        return f"CloudFormation has no stack {stack_id}."
    name = _stack_name(stack_id)
    if stack.get("id") != stack_id:
        return f"The request's StackId is not the id of stack {name}: CloudFormation sends the stack's ARN."
    status = str(stack.get("status") or "")
    wanted = REQUEST_STATUSES.get(request_type, frozenset())
    if status not in wanted:
        return f"Stack {name} is {status}, and CloudFormation sends a {request_type} only in {_either(wanted)}."
    if resource is None:
        return f"Stack {name} has no resource {logical_id}."
    resource_type = str(resource.get("type") or "")
    if resource_type != event.get("ResourceType"):
        return f"Resource {logical_id} of stack {name} is of type {resource_type}, not {event.get('ResourceType')}."
    if resource_type != CLONE_TYPE:
        if resource_type != GENERIC_CUSTOM_TYPE and not resource_type.startswith(CUSTOM_TYPE_PREFIX):
            return f"Resource {logical_id} of stack {name} is a {resource_type}, not a custom resource."
        token = event.get("ServiceToken") or (event.get("ResourceProperties") or {}).get("ServiceToken")
        if not function_arn or unqualified_function_arn(str(token or "")) != unqualified_function_arn(function_arn):
            return (
                f"Resource {logical_id} of stack {name} is a {resource_type} whose ServiceToken is not this function."
            )
    if request_type == "Create":
        return None
    return _physical_id_problem(event, status, resource, f"resource {logical_id} of stack {name}")


def _physical_id_problem(event: Mapping[str, Any], status: str, resource: Mapping[str, Any], what: str) -> str | None:
    given = str(event.get("PhysicalResourceId") or "")
    known = str(resource.get("physical_id") or "")
    if event.get("RequestType") == "Delete":
        if not known:
            return None  # the Delete after a Create that never answered: CloudFormation's record has no id
        if status.endswith(CLEANUP_SUFFIX):
            if given != known:
                return None  # the old copy of a replaced resource, which the record no longer names
            if resource.get("status") == BEING_DELETED:
                return None  # a resource the update removed
            return f"The request deletes '{given}', which CloudFormation's {what} still names and is not deleting."
    if given != known:
        return f"The request names PhysicalResourceId '{given}', and CloudFormation's {what} is '{known}'."
    return None


def _stack_name(stack_id: str) -> str:
    """The name in a stack ARN (``arn:...:stack/<name>/<uuid>``), or the id itself."""
    parts = stack_id.split("/")
    return parts[1] if len(parts) == 3 and parts[0].endswith(":stack") else stack_id


def _either(statuses: frozenset[str]) -> str:
    return " or ".join(sorted(statuses))
