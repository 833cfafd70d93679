"""The CloudFormation API at the local world's endpoint, answered from ``LocalCloudFormation``.

``CloudFormationApi(cloudformation, world).in_front_of(app)`` is a WSGI app that answers the requests signed
for CloudFormation (the SigV4 credential scope ``.../cloudformation/aws4_request``, which is how moto's
dispatcher tells services apart too) and hands every other request to ``app`` (moto). ``LocalSession`` puts
it in front of moto with ``LocalAws.put_in_front``, so ``aws cloudformation ...``, boto3 and its waiters see
the local stacks, the function stack included.

The query protocol is read and written from botocore's own model of the service: a request arrives as the
dict boto3 was given (``{"StackName": ..., "Parameters": [{"ParameterKey": ...}]}``) and an answer is the
dict boto3 returns, written as CloudFormation's XML. Refusals are CloudFormation's ``ErrorResponse``s
(``ValidationError`` with CloudFormation's wording, ``AlreadyExistsException``, ``ChangeSetNotFound``...).

Create, update, delete and change set execution run in the background, as on AWS; change sets are complete
(or FAILED, when they change nothing) as soon as they are created. Everything is answered in one page.
Accepted and ignored, as they change nothing here: RoleARN, NotificationARNs, TimeoutInMinutes, stack
policies, RollbackConfiguration, ClientRequestToken, ResourceTypes. Refused with a ValidationError: options
that would change what happens (``DisableRollback``, ``OnFailure`` other than ROLLBACK, ``RetainResources``,
imports, nested change sets, termination protection).
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import http
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Protocol
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree.ElementTree import Element, SubElement, tostring

import botocore.session
from botocore.exceptions import ClientError
from botocore.model import ListShape, MapShape, OperationModel, ServiceModel, Shape, StructureShape

from aurora_clone.local.cloudformation import LocalCloudFormation
from aurora_clone.local.stacks import (
    AlreadyExistsError,
    ChangeSet,
    ChangeSetNotFoundError,
    ChangeSetStatusError,
    LocalStack,
    StackError,
    StackNotFoundError,
)
from aurora_clone.local.template import (
    ParameterValue,
    TemplateError,
    check_outputs,
    dependencies,
    parse_template,
)

NAMESPACE = "http://cloudformation.amazonaws.com/doc/2010-05-15/"
XML_DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'
_SIGNED_FOR_CLOUDFORMATION = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/cloudformation/aws4_request")
NOT_CHECKED = "NOT_CHECKED"  # drift is never detected here
IAM_TYPES = frozenset(
    {
        "AWS::IAM::AccessKey",
        "AWS::IAM::Group",
        "AWS::IAM::InstanceProfile",
        "AWS::IAM::ManagedPolicy",
        "AWS::IAM::Policy",
        "AWS::IAM::Role",
        "AWS::IAM::RolePolicy",
        "AWS::IAM::User",
        "AWS::IAM::UserToGroupAddition",
    }
)
IAM_NAMES = frozenset({"RoleName", "UserName", "GroupName", "ManagedPolicyName", "InstanceProfileName"})

LOGGER = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class World(Protocol):
    """What the API needs of LocalAws: its S3, where a TemplateURL points."""

    def client(self, service: str) -> Any: ...


class ApiError(Exception):
    """A refusal, answered as CloudFormation's ErrorResponse."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@functools.cache
def service_model() -> ServiceModel:
    return botocore.session.get_session().get_service_model("cloudformation")


def is_cloudformation_request(environ: Mapping[str, Any]) -> bool:
    """Whether the request is signed for CloudFormation (header, or a pre-signed query string)."""
    if _SIGNED_FOR_CLOUDFORMATION.search(str(environ.get("HTTP_AUTHORIZATION", ""))):
        return True
    credential = parse_qs(str(environ.get("QUERY_STRING", ""))).get("X-Amz-Credential", [""])[-1]
    return credential.endswith("/cloudformation/aws4_request")


# -- the query protocol -----------------------------------------------------------------------------------


def read_query(shape: Shape, form: Mapping[str, str], prefix: str = "") -> Any:
    """The value of ``shape`` at ``prefix`` of a query-protocol form (``Parameters.member.1.ParameterKey``),
    as boto3 would have been given it; None when absent."""
    if isinstance(shape, StructureShape):
        found = {}
        for name, member in shape.members.items():
            key = member.serialization.get("name", name)
            value = read_query(member, form, f"{prefix}.{key}" if prefix else key)
            if value is not None:
                found[name] = value
        return found if found or not prefix else None
    if isinstance(shape, ListShape):
        if form.get(prefix) == "":
            return []  # how an empty list is sent
        item_name = shape.member.serialization.get("name", "member")
        items: list[Any] = []
        while (item := read_query(shape.member, form, f"{prefix}.{item_name}.{len(items) + 1}")) is not None:
            items.append(item)
        return items or None
    if isinstance(shape, MapShape):
        entries: dict[str, Any] = {}
        while (key := form.get(f"{prefix}.entry.{len(entries) + 1}.key")) is not None:
            entries[key] = read_query(shape.value, form, f"{prefix}.entry.{len(entries) + 1}.value")
        return entries or None
    text = form.get(prefix)
    if text is None:
        return None
    try:
        if shape.type_name == "boolean":
            return text.lower() == "true"
        if shape.type_name in ("integer", "long"):
            return int(text)
        if shape.type_name in ("double", "float"):
            return float(text)
    except ValueError:
        raise ApiError("ValidationError", f"Invalid value for {prefix}: {text}") from None
    return text


def write_xml(shape: Shape, value: Any, element: Element) -> None:
    """Write ``value`` (the dict boto3 would return) into ``element`` as the query protocol's XML."""
    if isinstance(shape, StructureShape):
        unknown = sorted(set(value) - set(shape.members))
        if unknown:
            raise ValueError(f"{shape.name} has no members {unknown}")
        for name, member in shape.members.items():
            if value.get(name) is not None:
                write_xml(member, value[name], SubElement(element, member.serialization.get("name", name)))
    elif isinstance(shape, ListShape):
        item_name = shape.member.serialization.get("name", "member")
        for item in value:
            write_xml(shape.member, item, SubElement(element, item_name))
    elif isinstance(shape, MapShape):
        for key, item in value.items():
            entry = SubElement(element, "entry")
            SubElement(entry, "key").text = str(key)
            write_xml(shape.value, item, SubElement(entry, "value"))
    elif shape.type_name == "timestamp":
        element.text = _timestamp(value)
    elif shape.type_name == "boolean":
        element.text = "true" if value else "false"
    else:
        element.text = str(value)


def _timestamp(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def _document(root: Element, request_id: str) -> bytes:
    meta = SubElement(root, "ResponseMetadata")
    SubElement(meta, "RequestId").text = request_id
    return XML_DECLARATION + bytes(tostring(root, encoding="utf-8"))


def _error_document(error: ApiError, request_id: str) -> bytes:
    root = Element("ErrorResponse", xmlns=NAMESPACE)
    detail = SubElement(root, "Error")
    SubElement(detail, "Type").text = "Sender" if error.status < 500 else "Receiver"
    SubElement(detail, "Code").text = error.code
    SubElement(detail, "Message").text = error.message
    SubElement(root, "RequestId").text = request_id
    return XML_DECLARATION + bytes(tostring(root, encoding="utf-8"))


# -- the API ------------------------------------------------------------------------------------------------


class CloudFormationApi:
    """CloudFormation's actions over a LocalCloudFormation: ``handle`` takes and gives boto3's dicts."""

    def __init__(self, cloudformation: LocalCloudFormation, world: World) -> None:
        self._cfn = cloudformation
        self._world = world
        self._actions: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "CreateStack": self._create_stack,
            "UpdateStack": self._update_stack,
            "DeleteStack": self._delete_stack,
            "DescribeStacks": self._describe_stacks,
            "ListStacks": self._list_stacks,
            "DescribeStackEvents": self._describe_stack_events,
            "DescribeStackResource": self._describe_stack_resource,
            "DescribeStackResources": self._describe_stack_resources,
            "ListStackResources": self._list_stack_resources,
            "GetTemplate": self._get_template,
            "GetTemplateSummary": self._get_template_summary,
            "ValidateTemplate": self._validate_template,
            "ListExports": self._list_exports,
            "CreateChangeSet": self._create_change_set,
            "DescribeChangeSet": self._describe_change_set,
            "ExecuteChangeSet": self._execute_change_set,
            "DeleteChangeSet": self._delete_change_set,
            "ListChangeSets": self._list_change_sets,
        }

    def in_front_of(self, app: WsgiApp) -> WsgiApp:
        """A WSGI app answering CloudFormation's requests, and handing the others to ``app``."""

        def serve(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
            if not is_cloudformation_request(environ):
                return app(environ, start_response)
            status, body = self.respond(_form(environ))
            phrase = http.HTTPStatus(status).phrase
            start_response(
                f"{status} {phrase}",
                [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))],
            )
            return [body]

        return serve

    def respond(self, form: Mapping[str, str]) -> tuple[int, bytes]:
        """The HTTP status and XML body answering one query-protocol request."""
        request_id = str(uuid.uuid4())
        action = form.get("Action", "")
        try:
            operation = self._operation(action)
            request = read_query(operation.input_shape, form) if operation.input_shape is not None else {}
            _check_required(operation, request)
            result = self.handle(action, request)
            root = Element(f"{action}Response", xmlns=NAMESPACE)
            shape = operation.output_shape
            if shape is not None:
                wrapper = SubElement(root, shape.serialization.get("resultWrapper", f"{action}Result"))
                write_xml(shape, result, wrapper)
        except ApiError as error:
            return error.status, _error_document(error, request_id)
        except Exception as error:  # a fault of this emulation: answered as AWS answers its own faults
            LOGGER.exception("CloudFormation %s failed", action)
            return 500, _error_document(ApiError("InternalFailure", str(error), 500), request_id)
        return 200, _document(root, request_id)

    def handle(self, action: str, request: dict[str, Any]) -> dict[str, Any]:
        """Run one action: ``request`` and the answer as boto3 gives and returns them."""
        try:
            return self._actions[action](request)
        except AlreadyExistsError as error:
            raise ApiError("AlreadyExistsException", str(error)) from None
        except ChangeSetNotFoundError as error:
            raise ApiError("ChangeSetNotFound", str(error), 404) from None
        except ChangeSetStatusError as error:
            raise ApiError("InvalidChangeSetStatus", str(error)) from None
        except (StackError, TemplateError) as error:
            raise ApiError("ValidationError", str(error)) from None

    def _operation(self, action: str) -> OperationModel:
        if action not in self._actions:
            known = action in service_model().operation_names
            detail = "is not supported by the local CloudFormation" if known else "is not a CloudFormation action"
            raise ApiError("InvalidAction", f"{action or 'A request without an Action'} {detail}")
        return service_model().operation_model(action)

    # -- stacks ---------------------------------------------------------------------------------------------

    def _create_stack(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse(request, CREATE_REFUSALS)
        given, use_previous = _parameters(request)
        if use_previous:
            raise ApiError(
                "ValidationError",
                f"Invalid input for parameter key {use_previous[0]}. "
                "Cannot specify usePreviousValue as true for non-existent stack",
            )
        operation = self._cfn.start_create_stack(
            request["StackName"],
            self._template(request),
            given,
            tags=_tags(request),
            capabilities=request.get("Capabilities", []),
        )
        return {"StackId": operation.stack.stack_id}

    def _update_stack(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse(request, UPDATE_REFUSALS)
        given, use_previous = _parameters(request)
        operation = self._cfn.start_update_stack(
            request["StackName"],
            None if request.get("UsePreviousTemplate") else self._template(request),
            given,
            use_previous=use_previous,
            tags=_tags(request),
            capabilities=request.get("Capabilities"),
        )
        return {"StackId": operation.stack.stack_id}

    def _delete_stack(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse(request, DELETE_REFUSALS)
        with contextlib.suppress(StackNotFoundError):  # deleting a stack that does not exist succeeds, as on AWS
            self._cfn.start_delete_stack(request["StackName"])
        return {}

    def _describe_stacks(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("StackName"):
            stacks = [self._cfn.view(request["StackName"])]
        else:
            stacks = [stack for stack in reversed(self._cfn.every_stack()) if stack.status != "DELETE_COMPLETE"]
        return {"Stacks": [_stack(stack) for stack in stacks]}

    def _list_stacks(self, request: dict[str, Any]) -> dict[str, Any]:
        wanted = set(request.get("StackStatusFilter") or [])
        summaries = [
            _without_none(
                {
                    "StackId": stack.stack_id,
                    "StackName": stack.name,
                    "TemplateDescription": stack.description or None,
                    "CreationTime": stack.created_at,
                    "LastUpdatedTime": stack.updated_at,
                    "DeletionTime": stack.deleted_at,
                    "StackStatus": stack.status,
                    "StackStatusReason": stack.status_reason or None,
                    "DriftInformation": {"StackDriftStatus": NOT_CHECKED},
                }
            )
            for stack in reversed(self._cfn.every_stack())
            if not wanted or stack.status in wanted
        ]
        return {"StackSummaries": summaries}

    def _describe_stack_events(self, request: dict[str, Any]) -> dict[str, Any]:
        stack = self._cfn.view(request["StackName"])
        events = [
            _without_none(
                {
                    "StackId": stack.stack_id,
                    "EventId": event.event_id,
                    "StackName": stack.name,
                    "LogicalResourceId": event.logical_id,
                    "PhysicalResourceId": event.physical_id or None,
                    "ResourceType": event.resource_type,
                    "Timestamp": event.timestamp,
                    "ResourceStatus": event.status,
                    "ResourceStatusReason": event.reason or None,
                }
            )
            for event in reversed(stack.events)  # newest first, as CloudFormation lists them
        ]
        return {"StackEvents": events}

    def _describe_stack_resource(self, request: dict[str, Any]) -> dict[str, Any]:
        stack = self._cfn.view(request["StackName"])
        logical_id = request["LogicalResourceId"]
        if logical_id not in stack.resources:
            raise ApiError("ValidationError", f"Resource {logical_id} does not exist for stack {request['StackName']}")
        resource = _resource(stack, logical_id, "LastUpdatedTimestamp")
        metadata = (stack.template.get("Resources", {}).get(logical_id) or {}).get("Metadata")
        resource["Metadata"] = json.dumps(metadata) if metadata is not None else None
        return {"StackResourceDetail": _without_none(resource)}

    def _describe_stack_resources(self, request: dict[str, Any]) -> dict[str, Any]:
        physical_id = request.get("PhysicalResourceId")
        if request.get("StackName"):
            stack = self._cfn.view(request["StackName"])
        elif physical_id:
            owners = [
                stack
                for stack in self._cfn.every_stack()
                if stack.status != "DELETE_COMPLETE"
                and any(resource.physical_id == physical_id for resource in stack.resources.values())
            ]
            if not owners:
                raise ApiError("ValidationError", f"Stack for {physical_id} does not exist")
            stack = owners[-1]
        else:
            raise ApiError("ValidationError", "Either StackName or PhysicalResourceId must be specified.")
        resources = [
            _without_none(_resource(stack, logical_id, "Timestamp"))
            for logical_id, resource in stack.resources.items()
            if request.get("LogicalResourceId") in (None, logical_id)
            and (physical_id is None or resource.physical_id == physical_id)
        ]
        return {"StackResources": resources}

    def _list_stack_resources(self, request: dict[str, Any]) -> dict[str, Any]:
        stack = self._cfn.view(request["StackName"])
        summaries = []
        for logical_id in stack.resources:
            resource = _resource(stack, logical_id, "LastUpdatedTimestamp")
            del resource["StackName"], resource["StackId"]
            summaries.append(_without_none(resource))
        return {"StackResourceSummaries": summaries}

    def _get_template(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("ChangeSetName"):
            body = self._cfn.change_set(request["ChangeSetName"], request.get("StackName")).template_body
        elif request.get("StackName"):
            body = self._cfn.view(request["StackName"]).template_body
        else:
            raise ApiError("ValidationError", "Either StackName or ChangeSetName must be specified.")
        # No transform runs locally: the processed template is the original.
        return {"TemplateBody": body, "StagesAvailable": ["Original", "Processed"]}

    def _get_template_summary(self, request: dict[str, Any]) -> dict[str, Any]:
        if request.get("StackName"):
            template = self._cfn.view(request["StackName"]).template
        else:
            template = parse_template(self._template(request))
        parameters = [
            _without_none(
                {
                    "ParameterKey": name,
                    "DefaultValue": _text(declaration["Default"]) if "Default" in declaration else None,
                    "ParameterType": str(declaration.get("Type", "String")),
                    "NoEcho": _no_echo(declaration),
                    "Description": declaration.get("Description"),
                    "ParameterConstraints": {"AllowedValues": [_text(value) for value in declaration["AllowedValues"]]}
                    if "AllowedValues" in declaration
                    else {},
                }
            )
            for name, declaration in (template.get("Parameters") or {}).items()
        ]
        metadata = template.get("Metadata")
        return _without_none(
            {
                "Parameters": parameters,
                "Description": template.get("Description"),
                **_capabilities(template),
                "ResourceTypes": sorted({resource["Type"] for resource in template["Resources"].values()}),
                "Version": template.get("AWSTemplateFormatVersion"),
                "Metadata": json.dumps(metadata) if metadata is not None else None,
                "DeclaredTransforms": _transforms(template),
            }
        )

    def _validate_template(self, request: dict[str, Any]) -> dict[str, Any]:
        template = parse_template(self._template(request))
        dependencies(template, template["Resources"])
        check_outputs(template)
        parameters = [
            _without_none(
                {
                    "ParameterKey": name,
                    "DefaultValue": _text(declaration["Default"]) if "Default" in declaration else None,
                    "NoEcho": _no_echo(declaration),
                    "Description": declaration.get("Description"),
                }
            )
            for name, declaration in (template.get("Parameters") or {}).items()
        ]
        return _without_none(
            {
                "Parameters": parameters,
                "Description": template.get("Description"),
                **_capabilities(template),
                "DeclaredTransforms": _transforms(template),
            }
        )

    def _list_exports(self, request: dict[str, Any]) -> dict[str, Any]:
        exports = [
            {"ExportingStackId": stack.stack_id, "Name": name, "Value": value}
            for stack in self._cfn.every_stack()
            if stack.status != "DELETE_COMPLETE"
            for name, value in stack.exports.items()
        ]
        return {"Exports": exports}

    # -- change sets ----------------------------------------------------------------------------------------

    def _create_change_set(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse(request, CHANGE_SET_REFUSALS)
        kind = request.get("ChangeSetType", "UPDATE")
        given, use_previous = _parameters(request)
        if kind == "CREATE" and use_previous:
            raise ApiError(
                "ValidationError",
                f"Invalid input for parameter key {use_previous[0]}. "
                "Cannot specify usePreviousValue as true for non-existent stack",
            )
        change_set = self._cfn.create_change_set(
            request["StackName"],
            request["ChangeSetName"],
            kind,
            None if request.get("UsePreviousTemplate") else self._template(request),
            given,
            use_previous=use_previous,
            tags=_tags(request),
            capabilities=request.get("Capabilities", []),
            description=request.get("Description", ""),
        )
        return {"Id": change_set.change_set_id, "StackId": change_set.stack_id}

    def _describe_change_set(self, request: dict[str, Any]) -> dict[str, Any]:
        change_set = self._cfn.change_set(request["ChangeSetName"], request.get("StackName"))
        declarations = parse_template(change_set.template_body).get("Parameters") or {}
        changes = [
            {
                "Type": "Resource",
                "ResourceChange": _without_none(
                    {
                        "Action": change.action,
                        "LogicalResourceId": change.logical_id,
                        "PhysicalResourceId": change.physical_id or None,
                        "ResourceType": change.resource_type,
                        "Replacement": change.replacement or None,
                        "Scope": ["Properties"] if change.action == "Modify" else [],
                        "Details": [],
                    }
                ),
            }
            for change in change_set.changes
        ]
        return _without_none(
            {
                **_change_set_summary(change_set),
                "Parameters": _parameter_list(change_set.parameters, declarations),
                "NotificationARNs": [],
                "Capabilities": change_set.capabilities,
                "Tags": [{"Key": key, "Value": value} for key, value in (change_set.tags or {}).items()],
                "Changes": changes,
            }
        )

    def _execute_change_set(self, request: dict[str, Any]) -> dict[str, Any]:
        _refuse(request, EXECUTE_REFUSALS)
        self._cfn.execute_change_set(request["ChangeSetName"], request.get("StackName"))
        return {}

    def _delete_change_set(self, request: dict[str, Any]) -> dict[str, Any]:
        self._cfn.delete_change_set(request["ChangeSetName"], request.get("StackName"))
        return {}

    def _list_change_sets(self, request: dict[str, Any]) -> dict[str, Any]:
        summaries = [
            _without_none(_change_set_summary(change_set)) for change_set in self._cfn.change_sets(request["StackName"])
        ]
        return {"Summaries": summaries}

    # -- templates ------------------------------------------------------------------------------------------

    def _template(self, request: Mapping[str, Any]) -> str:
        """The template's text: TemplateBody, or the object of the world's S3 that TemplateURL names."""
        if "TemplateBody" in request:
            return str(request["TemplateBody"])
        if "TemplateURL" not in request:
            raise ApiError("ValidationError", "Either Template URL or Template Body must be specified.")
        url = urlsplit(str(request["TemplateURL"]))
        host, path = url.hostname or "", unquote(url.path).lstrip("/")
        if ".s3" in host and not host.startswith("s3"):  # virtual-hosted: https://bucket.s3.amazonaws.com/key
            bucket, key = host.split(".s3", 1)[0], path
        else:  # path-style, as `aws cloudformation deploy --s3-bucket` gives it: https://host/bucket/key
            bucket, _, key = path.partition("/")
        version = parse_qs(url.query).get("versionId", [None])[-1]
        s3 = self._world.client("s3")
        try:
            found = s3.get_object(Bucket=bucket, Key=key, **({"VersionId": version} if version else {}))
        except (ClientError, ValueError):
            raise ApiError(
                "ValidationError", f"TemplateURL must name an object in the local world's S3: {url.geturl()}"
            ) from None
        return bytes(found["Body"].read()).decode("utf-8")


# Options that would change what happens, which the local CloudFormation does not do: refused, not ignored.
Refusals = Mapping[str, Callable[[Any], bool]]
CREATE_REFUSALS: Refusals = {
    "DisableRollback": lambda value: value is True,
    "OnFailure": lambda value: value != "ROLLBACK",
    "EnableTerminationProtection": lambda value: value is True,
    "RetainExceptOnCreate": lambda value: value is True,
}
UPDATE_REFUSALS: Refusals = {
    "DisableRollback": lambda value: value is True,
    "RetainExceptOnCreate": lambda value: value is True,
}
DELETE_REFUSALS: Refusals = {
    "RetainResources": lambda value: bool(value),
    "DeletionMode": lambda value: value != "STANDARD",
}
CHANGE_SET_REFUSALS: Refusals = {
    "ResourcesToImport": lambda value: bool(value),
    "IncludeNestedStacks": lambda value: value is True,
    "ImportExistingResources": lambda value: value is True,
    "OnStackFailure": lambda value: value != "ROLLBACK",
    "DeploymentMode": lambda value: True,
}
EXECUTE_REFUSALS: Refusals = {
    "DisableRollback": lambda value: value is True,
    "RetainExceptOnCreate": lambda value: value is True,
}


def _refuse(request: Mapping[str, Any], refusals: Refusals) -> None:
    for name, refused in refusals.items():
        if name in request and refused(request[name]):
            raise ApiError("ValidationError", f"{name}={request[name]} is not supported by the local CloudFormation")


def _check_required(operation: OperationModel, request: Mapping[str, Any]) -> None:
    shape = operation.input_shape
    missing = [name for name in (shape.required_members if shape is not None else []) if name not in request]
    if missing:
        raise ApiError(
            "ValidationError",
            f"1 validation error detected: Value null at '{missing[0][0].lower()}{missing[0][1:]}' "
            "failed to satisfy constraint: Member must not be null",
        )


def _form(environ: Mapping[str, Any]) -> dict[str, str]:
    """The query string and the form-encoded body, one value per name (the last)."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length).decode("utf-8") if length else ""
    fields = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
    fields.update(parse_qs(body, keep_blank_values=True))
    return {name: values[-1] for name, values in fields.items()}


def _parameters(request: Mapping[str, Any]) -> tuple[dict[str, str], list[str]]:
    """The parameter values given, and the names marked UsePreviousValue."""
    given: dict[str, str] = {}
    use_previous: list[str] = []
    for parameter in request.get("Parameters") or []:
        key = parameter.get("ParameterKey", "")
        if parameter.get("UsePreviousValue"):
            use_previous.append(key)
        else:
            given[key] = parameter.get("ParameterValue", "")
    return given, use_previous


def _tags(request: Mapping[str, Any]) -> dict[str, str] | None:
    if "Tags" not in request:
        return None
    return {tag.get("Key", ""): tag.get("Value", "") for tag in request["Tags"]}


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(_text(item) for item in value)
    return str(value)


def _no_echo(declaration: Mapping[str, Any]) -> bool:
    return str(declaration.get("NoEcho", "false")).lower() == "true"


def _parameter_list(parameters: Mapping[str, ParameterValue], declarations: Mapping[str, Any]) -> list[dict[str, str]]:
    """Parameters as DescribeStacks shows them: NoEcho values masked."""
    return [
        {
            "ParameterKey": name,
            "ParameterValue": "****" if _no_echo(declarations.get(name) or {}) else _text(value),
        }
        for name, value in parameters.items()
    ]


def _transforms(template: Mapping[str, Any]) -> list[str]:
    transforms = template.get("Transform") or []
    return [transforms] if isinstance(transforms, str) else list(transforms)


def _capabilities(template: Mapping[str, Any]) -> dict[str, Any]:
    """The capabilities CloudFormation would ask for (IAM resources, named ones, transforms), and why."""
    iam = [
        (logical_id, resource)
        for logical_id, resource in template["Resources"].items()
        if resource.get("Type") in IAM_TYPES
    ]
    capabilities = []
    if iam:
        named = any(set(resource.get("Properties") or {}) & IAM_NAMES for _, resource in iam)
        capabilities.append("CAPABILITY_NAMED_IAM" if named else "CAPABILITY_IAM")
    if _transforms(template):
        capabilities.append("CAPABILITY_AUTO_EXPAND")
    if not capabilities:
        return {"Capabilities": []}
    reason = f"The following resource(s) require capabilities: [{', '.join(sorted({r['Type'] for _, r in iam}))}]"
    return {"Capabilities": capabilities, "CapabilitiesReason": reason if iam else None}


def _stack(stack: LocalStack) -> dict[str, Any]:
    """A stack as DescribeStacks gives it."""
    outputs = [
        _without_none(
            {
                "OutputKey": name,
                "OutputValue": output.value,
                "Description": output.description or None,
                "ExportName": output.export_name,
            }
        )
        for name, output in stack.output_details.items()
    ]
    return _without_none(
        {
            "StackId": stack.stack_id,
            "StackName": stack.name,
            "ChangeSetId": stack.change_set_id or None,
            "Description": stack.description or None,
            "Parameters": _parameter_list(stack.parameters, stack.template.get("Parameters") or {}),
            "CreationTime": stack.created_at,
            "LastUpdatedTime": stack.updated_at,
            "DeletionTime": stack.deleted_at,
            "StackStatus": stack.status,
            "StackStatusReason": stack.status_reason or None,
            "DisableRollback": False,
            "NotificationARNs": [],
            "Capabilities": stack.capabilities,
            "Outputs": outputs,
            "Tags": [{"Key": key, "Value": value} for key, value in stack.tags.items()],
            "EnableTerminationProtection": False,
            "DriftInformation": {"StackDriftStatus": NOT_CHECKED},
        }
    )


def _resource(stack: LocalStack, logical_id: str, time_key: str) -> dict[str, Any]:
    """A resource as DescribeStackResources gives it, its time under ``time_key`` (each action names it its way)."""
    resource = stack.resources[logical_id]
    return {
        "StackName": stack.name,
        "StackId": stack.stack_id,
        "LogicalResourceId": logical_id,
        "PhysicalResourceId": resource.physical_id or None,
        "ResourceType": resource.resource_type,
        time_key: resource.updated_at or stack.created_at,
        "ResourceStatus": resource.status,
        "ResourceStatusReason": resource.status_reason or None,
        "DriftInformation": {"StackResourceDriftStatus": NOT_CHECKED},
    }


def _change_set_summary(change_set: ChangeSet) -> dict[str, Any]:
    return {
        "StackId": change_set.stack_id,
        "StackName": change_set.stack_name,
        "ChangeSetId": change_set.change_set_id,
        "ChangeSetName": change_set.name,
        "ExecutionStatus": change_set.execution_status,
        "Status": change_set.status,
        "StatusReason": change_set.status_reason or None,
        "CreationTime": change_set.created_at,
        "Description": change_set.description or None,
        "IncludeNestedStacks": False,
    }


def _without_none(value: dict[str, Any]) -> dict[str, Any]:
    return {key: item for key, item in value.items() if item is not None}
