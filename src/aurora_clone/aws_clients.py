"""AWS clients as the function builds them: its Region, bounded timeouts, adaptive retries.

Adaptive retries wait and try again on throttling (RDS allows 12 requests/s per account, shared with
everything in it); the timeouts keep one slow call from using up an invocation.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
from botocore.config import Config

from aurora_clone.settings import settings

CLIENT_CONFIG = Config(
    retries={"mode": "adaptive", "max_attempts": 8},
    connect_timeout=5,
    read_timeout=20,
    user_agent_extra="aurora-clone",
)


def aws_client(service: str) -> Any:
    """A client of ``service`` in the function's Region (AWS_REGION)."""
    make: Any = boto3.client  # any service by name; the stubs only type literal names
    return make(service, region_name=settings.region, config=CLIENT_CONFIG)


class LambdaFunction:
    """One Lambda function, invoked with a JSON payload. The client is built at the first invoke, not at
    import or cold start. AWS errors (throttling, 5xx) are raised."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._client: Any = None

    def invoke(self, payload: Any, *, wait: bool) -> Any:
        """Invoke with ``payload``: synchronously when ``wait`` (the answer, with its ``Payload`` stream),
        else asynchronously (Lambda queues the event)."""
        if self._client is None:
            self._client = aws_client("lambda")
        return self._client.invoke(
            FunctionName=self.name,
            InvocationType="RequestResponse" if wait else "Event",
            Payload=json.dumps(payload).encode(),
        )
