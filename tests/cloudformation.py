"""CloudFormation's side of a custom resource, played for tests.

``ResponseServer`` is the pre-signed S3 URL: an HTTPS server on loopback (a self-signed certificate the
handler trusts through SSL_CERT_FILE) that records every PUT and can be told to refuse some.
``FakeCloudFormation`` sends CloudFormation-shaped events to the real handler, fires the poll rules the
handler created (reading their targets from EventBridge), and reads the answer back from the server.
"""

from __future__ import annotations

import http.server
import json
import ssl
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "aurora-clone"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
RULE_PREFIX = "aurora-clone-"


class ResponseServer:
    """Records the answers PUT to it, by path, like the S3 bucket behind a ResponseURL."""

    def __init__(self, cert: Path, key: Path) -> None:
        self.answers: dict[str, list[dict[str, Any]]] = {}
        self.raw: list[tuple[str, dict[str, str], bytes]] = []
        self.refusals: list[int] = []  # HTTP statuses to answer with, one per PUT, before accepting
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                server.raw.append((self.path, dict(self.headers), body))
                status = server.refusals.pop(0) if server.refusals else 200
                if status == 200:
                    server.answers.setdefault(self.path.split("?")[0], []).append(json.loads(body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._httpd.socket = context.wrap_socket(self._httpd.socket, server_side=True)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def url_for(self, key: str) -> str:
        # Shaped like a pre-signed S3 URL: the signature is a credential and must never be logged.
        return (
            f"https://localhost:{self.port}/cloudformation-custom-resource-response-useast1/{key}"
            "?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20261122T000000Z&X-Amz-SignedHeaders=host"
            f"&X-Amz-Expires=7200&X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature={uuid.uuid4().hex * 2}"
        )

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@dataclass
class LambdaContext:
    function_name: str = FUNCTION_NAME
    invoked_function_arn: str = FUNCTION_ARN
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    remaining_millis: int = 120_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_millis


@dataclass
class Sent:
    """One request CloudFormation sent, and where its answer lands."""

    event: dict[str, Any]
    key: str


class FakeCloudFormation:
    """Sends requests like CloudFormation does and plays EventBridge for the poll rules."""

    def __init__(self, server: ResponseServer, handler: Callable[[dict[str, Any], Any], None], stack: str) -> None:
        self.server = server
        self.handler = handler
        self.stack_id = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/{uuid.uuid4()}"
        self.events = boto3.client("events", region_name=REGION)

    # -- requests -----------------------------------------------------------------------------------

    def event(
        self,
        request_type: str,
        properties: dict[str, Any],
        logical_id: str = "TestDatabase",
        physical_id: str | None = None,
        old_properties: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": FUNCTION_ARN,
            "ResponseURL": self.server.url_for(request_id),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": "Custom::AuroraClone",
            "ResourceProperties": {"ServiceToken": FUNCTION_ARN, **properties},
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = {"ServiceToken": FUNCTION_ARN, **old_properties}
        return event

    def send(self, event: dict[str, Any]) -> Sent:
        self.handler(json.loads(json.dumps(event)), LambdaContext())
        return Sent(event, event["RequestId"])

    def answers(self, sent: Sent) -> list[dict[str, Any]]:
        return self.server.answers.get(f"/cloudformation-custom-resource-response-useast1/{sent.key}", [])

    def answer(self, sent: Sent) -> dict[str, Any] | None:
        answers = self.answers(sent)
        return answers[-1] if answers else None

    # -- EventBridge ----------------------------------------------------------------------------------

    def poll_rules(self) -> list[dict[str, Any]]:
        return self.events.list_rules(NamePrefix=RULE_PREFIX)["Rules"]

    def fire_polls(self) -> int:
        """Invoke the function once for every target of every poll rule, as EventBridge would."""
        fired = 0
        for rule in self.poll_rules():
            assert rule["ScheduleExpression"] == "rate(1 minute)"
            for target in self.events.list_targets_by_rule(Rule=rule["Name"])["Targets"]:
                assert target["Arn"] == FUNCTION_ARN
                self.handler(json.loads(target["Input"]), LambdaContext())
                fired += 1
        return fired

    def run(self, sent: Sent, advance: Callable[[], None], max_rounds: int = 20) -> dict[str, Any]:
        """Let RDS move one step and fire the polls, until the request is answered."""
        for _ in range(max_rounds):
            answer = self.answer(sent)
            if answer is not None:
                return answer
            advance()
            self.fire_polls()
        answer = self.answer(sent)
        assert answer is not None, f"no answer after {max_rounds} polls"
        return answer
