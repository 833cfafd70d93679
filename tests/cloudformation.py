"""CloudFormation's side of a custom resource, played for tests.

``ResponseServer`` is the pre-signed S3 URL: an HTTPS server on loopback (a self-signed certificate the
handler trusts through SSL_CERT_FILE) that records every PUT and can be told to refuse some.
``FakeCloudFormation`` sends CloudFormation-shaped events to the real handler, plays the function's event
source mapping (wake-up messages from the queue, in batches, deleting what succeeded) and the RDS event rule
(the events RDS sent), and reads the answer back from the server. Its stack is a real one in moto's
CloudFormation: before each request it sends, CloudFormation's record shows the stack in the middle of the
operation and the resource the request is for, so the function can confirm the request, as it must.
``invoke`` sends anything, confirmed by nothing: a forged request.
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

from tests.moto_gaps import AwsGaps

ACCOUNT = "123456789012"
REGION = "us-east-1"
FUNCTION_NAME = "aurora-clone"
FUNCTION_ARN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION_NAME}"
REQUEST_TABLE = "aurora-clone-requests"
WAKE_UP_QUEUE = "aurora-clone-wake-ups"
WAKE_UP_DLQ = "aurora-clone-wake-ups-dlq"
MAX_RECEIVES = 5
# The stack status while CloudFormation sends each request type (a test may give a rollback's instead).
OPERATION_STATUS = {"Create": "CREATE_IN_PROGRESS", "Update": "UPDATE_IN_PROGRESS", "Delete": "DELETE_IN_PROGRESS"}
EMPTY_TEMPLATE = json.dumps({"Resources": {}})


def make_engine_resources() -> dict[str, str]:
    """The function stack's table and queues (as template.yaml declares them), in moto; their settings."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    dynamodb.create_table(
        TableName=REQUEST_TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    )
    sqs = boto3.client("sqs", region_name=REGION)
    dlq = sqs.create_queue(QueueName=WAKE_UP_DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": MAX_RECEIVES})
    queue = sqs.create_queue(
        QueueName=WAKE_UP_QUEUE, Attributes={"VisibilityTimeout": "720", "RedrivePolicy": redrive}
    )["QueueUrl"]
    return {"REQUEST_TABLE": REQUEST_TABLE, "WAKE_UP_QUEUE_URL": queue, "DEAD_LETTER_QUEUE_URL": dlq}


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

    def __init__(
        self, server: ResponseServer, handler: Callable[[dict[str, Any], Any], Any], stack: str, world: AwsGaps
    ) -> None:
        self.server = server
        self.handler = handler
        self.world = world
        self.stack_name = stack
        self._stack_id: str | None = None
        self.cloudformation = boto3.client("cloudformation", region_name=REGION)
        self.events = boto3.client("events", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.queue_url = self.sqs.get_queue_url(QueueName=WAKE_UP_QUEUE)["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    # -- requests -----------------------------------------------------------------------------------

    @property
    def stack_id(self) -> str:
        """The id of the stack in moto's CloudFormation, made (empty) when first needed; a test may set another."""
        if self._stack_id is None:
            made = self.cloudformation.create_stack(StackName=self.stack_name, TemplateBody=EMPTY_TEMPLATE)
            self._stack_id = str(made["StackId"])
        return self._stack_id

    @stack_id.setter
    def stack_id(self, stack_id: str) -> None:
        self._stack_id = stack_id

    def hold(self, event: dict[str, Any], stack_status: str | None = None) -> None:
        """Make CloudFormation's record show what it shows while it waits for ``event``'s answer: its stack
        in ``stack_status`` (the request type's operation by default), its resource of its type, with no
        PhysicalResourceId for a Create and the request's own for an Update or a Delete."""
        request_type = event["RequestType"]
        self.world.hold_custom_resource(
            event["StackId"],
            stack_status or OPERATION_STATUS[request_type],
            event["LogicalResourceId"],
            event["ResourceType"],
            None if request_type == "Create" else event.get("PhysicalResourceId") or None,
        )

    def forget_stack(self) -> None:
        """The stack is gone, long enough that CloudFormation no longer knows its id (DescribeStacks: no such
        stack)."""
        self.world.forget_stack(self.stack_id)

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

    def send(
        self, event: dict[str, Any], context: LambdaContext | None = None, stack_status: str | None = None
    ) -> Sent:
        """Send ``event`` as CloudFormation does, its record showing the operation first (``hold``)."""
        self.hold(event, stack_status)
        self.handler(json.loads(json.dumps(event)), context or LambdaContext())
        return Sent(event, event["RequestId"])

    @staticmethod
    def sent(event: dict[str, Any]) -> Sent:
        """Where the answer to ``event`` lands (for a request whose sending did not return)."""
        return Sent(event, event["RequestId"])

    def answers(self, sent: Sent) -> list[dict[str, Any]]:
        return self.server.answers.get(f"/cloudformation-custom-resource-response-useast1/{sent.key}", [])

    def answer(self, sent: Sent) -> dict[str, Any] | None:
        answers = self.answers(sent)
        return answers[-1] if answers else None

    # -- the function's other inputs ------------------------------------------------------------------

    def invoke(self, event: Any) -> Any:
        """Invoke the function with any event, as Lambda would (JSON in, JSON out)."""
        return self.handler(json.loads(json.dumps(event)), LambdaContext())

    def wake_up(self) -> int:
        """Hand every visible wake-up message to the function in batches of 10, as the event source mapping
        does, deleting the messages it did not report as failed. Returns the invocations made."""
        invocations = 0
        while True:
            messages = self.sqs.receive_message(
                QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"]
            ).get("Messages", [])
            if not messages:
                return invocations
            records = [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": self.queue_arn,
                    "awsRegion": REGION,
                }
                for m in messages
            ]
            result = self.invoke({"Records": records}) or {}
            invocations += 1
            failed = {f["itemIdentifier"] for f in result.get("batchItemFailures", [])}
            for message in messages:
                if message["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def deliver_rds_events(self, events: list[dict[str, Any]] | None = None) -> int:
        """Hand RDS events to the function (by default every event RDS sent since the last delivery)."""
        events = self.world.take_rds_events() if events is None else events
        for event in events:
            self.invoke(event)
        return len(events)

    def step(self, advance: Callable[[], None] | None = None, events: bool = True) -> None:
        """Let RDS move one step (and delays pass), then deliver its events and the wake-ups now due."""
        (advance or self.world.advance)()
        if events:
            self.deliver_rds_events()
        else:
            self.world.take_rds_events()  # lost
        self.wake_up()

    def run(
        self, sent: Sent, advance: Callable[[], None] | None = None, max_rounds: int = 20, events: bool = True
    ) -> dict[str, Any]:
        """Step until the request is answered."""
        for _ in range(max_rounds):
            answer = self.answer(sent)
            if answer is not None:
                return answer
            self.step(advance, events)
        answer = self.answer(sent)
        assert answer is not None, f"no answer after {max_rounds} steps"
        return answer

    def queued(self) -> int:
        """Wake-up messages still in the queue (visible, delayed or being handled)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        attributes = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=names)["Attributes"]
        return sum(int(attributes.get(name, 0)) for name in names)

    def pending_requests(self) -> list[str]:
        items = self.dynamodb.scan(TableName=REQUEST_TABLE)["Items"]
        return [i["pk"]["S"] for i in items if i["sk"]["S"] == "request" and i["state"]["S"] == "pending"]

    def nothing_left(self, rounds: int = 5) -> bool:
        """Once the wake-ups still queued have come (and found nothing to do): no pending request, no
        message, no rule. What a finished request leaves behind is nothing."""
        for _ in range(rounds):
            if not self.queued():
                break
            self.step()
        return not self.pending_requests() and not self.queued() and not self.events.list_rules()["Rules"]
