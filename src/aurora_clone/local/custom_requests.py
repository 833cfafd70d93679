"""How the local CloudFormation drives custom resources (``Custom::*``, ``AWS::CloudFormation::CustomResource``):
each request is an event sent by invoking the ServiceToken's function asynchronously, with a pre-signed S3 PUT
URL (SigV4, served over HTTPS by the world's S3) as ResponseURL; the answer is read back from S3, waiting at
most the resource's ServiceTimeout in world time, and checked as CloudFormation checks it.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import boto3
from botocore.config import Config
from moto.backends import get_backend

from aurora_clone.local.stacks import (
    Lambdas,
    LocalStack,
    ResourceFailedError,
    StackResource,
    World,
    cloudformation_strings,
    generated_name,
)

MAX_RESPONSE_BYTES = 4096  # CloudFormation's limit for a custom resource's answer
MAX_PHYSICAL_ID = 1024
DEFAULT_SERVICE_TIMEOUT = 3600
RESPONSE_URL_EXPIRES = 7200


class CustomResources:
    """Custom resources: requests through the ServiceToken's function, answers through S3 (in ``bucket``).

    ``lock`` is the local CloudFormation's: it guards the stacks' records, and the bucket's creation.
    """

    def __init__(self, world: World, lambdas: Lambdas, lock: threading.RLock) -> None:
        self._world = world
        self._lambdas = lambdas
        self._lock = lock
        self.bucket = f"cloudformation-custom-resource-response-{world.region.replace('-', '')}"
        self._bucket_ready = False
        env = world.client_env()
        self._s3 = boto3.client(
            "s3",
            region_name=world.region,
            endpoint_url=world.endpoint_url,
            verify=world.ca_bundle,
            aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
            # SigV4 and path-style, as CloudFormation's ResponseURLs are; a bucket subdomain of localhost
            # would not resolve.
            config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
        )

    def create(self, stack: LocalStack, resource: StackResource, properties: dict[str, Any]) -> tuple[str, Any]:
        return self._request(stack, "Create", resource, properties)

    def update(
        self, stack: LocalStack, resource: StackResource, properties: dict[str, Any], old: dict[str, Any]
    ) -> tuple[str, Any]:
        if properties.get("ServiceToken") != old.get("ServiceToken"):
            raise ResourceFailedError("Modifying service token is not allowed.", request_sent=False)
        return self._request(stack, "Update", resource, properties, old)

    def delete(self, stack: LocalStack, resource: StackResource) -> None:
        self._request(stack, "Delete", resource, resource.properties)

    def _request(
        self,
        stack: LocalStack,
        request_type: str,
        resource: StackResource,
        properties: dict[str, Any],
        old_properties: dict[str, Any] | None = None,
    ) -> tuple[str, Any]:
        """Send one request to the ServiceToken's function and wait for its answer in S3."""
        token = properties.get("ServiceToken")
        if not isinstance(token, str) or not token:
            raise ResourceFailedError("ServiceToken must be the ARN of a function", request_sent=False)
        if not self._lambdas.is_registered(token):
            raise ResourceFailedError(f"Invalid service token: no local function {token}", request_sent=False)
        timeout = _service_timeout(properties.get("ServiceTimeout"))
        request_id = str(uuid.uuid4())
        key = f"{quote(stack.stack_id, safe='')}|{resource.logical_id}|{request_id}"
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": token,
            "ResponseURL": self._response_url(key),
            "StackId": stack.stack_id,
            "RequestId": request_id,
            "ResourceType": resource.resource_type,
            "LogicalResourceId": resource.logical_id,
            "ResourceProperties": cloudformation_strings(properties),
        }
        if request_type != "Create":
            event["PhysicalResourceId"] = resource.physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = cloudformation_strings(old_properties)
        self._lambdas.invoke_async(token, event)
        body = self._await_answer(key, timeout)
        if body is None:
            # The rollback Delete after an unanswered Create needs an id: CloudFormation sends one it made up.
            fallback_id = resource.physical_id or generated_name(stack.name, resource.logical_id, 64)
            raise ResourceFailedError(
                "CloudFormation did not receive a response from your Custom Resource. "
                f"Please check your logs for requestId [{request_id}].",
                fallback_id,
            )
        answer = _parse_answer(body, event)
        physical_id = str(answer.get("PhysicalResourceId") or "")
        if answer["Status"] == "FAILED":
            raise ResourceFailedError(
                "Received response status [FAILED] from custom resource. Message returned: "
                f"{answer.get('Reason', '')} (RequestId: {request_id})",
                physical_id or resource.physical_id,
            )
        with self._lock:
            resource.answer_object = key
        return physical_id, dict(answer.get("Data") or {})

    def _response_url(self, key: str) -> str:
        with self._lock:
            if not self._bucket_ready:
                with contextlib.suppress(self._s3.exceptions.BucketAlreadyOwnedByYou):
                    self._s3.create_bucket(Bucket=self.bucket)
                self._bucket_ready = True
        url: str = self._s3.generate_presigned_url(
            "put_object", Params={"Bucket": self.bucket, "Key": key}, ExpiresIn=RESPONSE_URL_EXPIRES
        )
        return url

    def _await_answer(self, key: str, timeout_world_seconds: float) -> bytes | None:
        """The answer's body once it is in S3, or None after the timeout (world time)."""
        deadline = self._world.world_time() + timeout_world_seconds
        # Looked up in this process, so a short interval costs nothing and adds little to the measured latency.
        interval = min(max(self._world.to_real(0.1), 0.01), 0.05)
        while True:
            if self._answer_present(key):
                try:
                    body: bytes = self._s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    return body
                except self._s3.exceptions.NoSuchKey:
                    pass
            if self._world.world_time() >= deadline:
                return None
            time.sleep(interval)

    def _answer_present(self, key: str) -> bool:
        """Whether the answer has landed, looked up in moto's S3 in this process (no request per check)."""
        try:
            bucket = get_backend("s3")[self._world.account_id]["aws"].buckets.get(self.bucket)
        except (KeyError, AttributeError):  # moto's internals moved: ask S3 itself every time
            return True
        return bucket is not None and key in bucket.keys


def _service_timeout(value: Any) -> float:
    if value is None:
        return DEFAULT_SERVICE_TIMEOUT
    try:
        seconds = int(str(value))
    except ValueError:
        seconds = 0
    if not 1 <= seconds <= DEFAULT_SERVICE_TIMEOUT:
        raise ResourceFailedError(
            f"ServiceTimeout must be a whole number of seconds from 1 to 3600, not {value!r}", request_sent=False
        )
    return float(seconds)


def _parse_answer(body: bytes, event: Mapping[str, Any]) -> dict[str, Any]:
    """The answer, checked as CloudFormation checks it; ResourceFailedError when it is unusable."""
    if len(body) > MAX_RESPONSE_BYTES:
        raise ResourceFailedError("Response object is too long.")
    try:
        answer = json.loads(body)
    except ValueError:
        raise ResourceFailedError("Invalid response object: the response is not valid JSON") from None
    if not isinstance(answer, dict) or answer.get("Status") not in ("SUCCESS", "FAILED"):
        raise ResourceFailedError("Invalid response object: Status must be SUCCESS or FAILED")
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        if answer.get(key) != event[key]:
            raise ResourceFailedError(f"Invalid response object: {key} does not match the request")
    physical_id = answer.get("PhysicalResourceId")
    if answer["Status"] == "SUCCESS" and (
        not isinstance(physical_id, str) or not physical_id or len(physical_id) > MAX_PHYSICAL_ID
    ):
        raise ResourceFailedError("Invalid PhysicalResourceId")
    if answer.get("Data") is not None and not isinstance(answer["Data"], dict):
        raise ResourceFailedError("Invalid response object: Data must be a map")
    return answer
