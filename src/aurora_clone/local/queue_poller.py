"""``QueuePoller``: Lambda's SQS event source mappings, played for the local Lambda runtime.

For each registered mapping (the local CloudFormation registers ``AWS::Lambda::EventSourceMapping``), a
thread receives up to ``BatchSize`` messages from the queue through the world's SQS API, so delays,
visibility timeouts and the dead-letter redrive run as SQS runs them (in world time, see
``aurora_clone.local.queue_rules``), and invokes the function synchronously with the event Lambda builds:

    {"Records": [{"messageId": ..., "receiptHandle": ..., "body": ..., "attributes": {
        "ApproximateReceiveCount": "1", "SentTimestamp": ..., "SenderId": ...,
        "ApproximateFirstReceiveTimestamp": ...}, "messageAttributes": {}, "md5OfBody": ...,
        "eventSource": "aws:sqs", "eventSourceARN": ..., "awsRegion": ...}, ...]}

Then, as Lambda does: a successful invocation deletes every message of the batch, except, with
``ReportBatchItemFailures``, the ones its ``batchItemFailures`` name (a response naming a message that is not
in the batch, or an empty or missing ``itemIdentifier``, fails the whole batch); a failed invocation deletes
nothing. What is not deleted comes back after its visibility timeout, and goes to the dead-letter queue once
received ``maxReceiveCount`` times.

Batches run at once on a thread pool, at most the function's concurrency (``LocalLambda.concurrency``, or a
mapping's ``ScalingConfig.MaximumConcurrency`` when lower) per function, so a message is never received only
to wait for an execution environment while its visibility timeout runs.

    poller = QueuePoller(world, lambdas)
    poller.start(); poller.register(mapping); ...; poller.stop()
    poller.stats[mapping.mapping_id].deleted
"""

from __future__ import annotations

import base64
import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Any, Protocol, Self

from moto.sqs.models import sqs_backends

LOGGER = logging.getLogger(__name__)
MAX_BATCH_DELETE = 10  # SQS's DeleteMessageBatch limit
JOIN_SECONDS = 10.0
_EVENT_ATTRIBUTES = (  # the system attributes Lambda puts in a record
    "ApproximateReceiveCount",
    "SentTimestamp",
    "SenderId",
    "ApproximateFirstReceiveTimestamp",
    "SequenceNumber",
    "MessageGroupId",
    "MessageDeduplicationId",
    "AWSTraceHeader",
)


class World(Protocol):
    """What the poller needs of LocalAws."""

    region: str
    account_id: str

    def client(self, service: str) -> Any: ...

    def to_real(self, world_seconds: float) -> float: ...


class Lambdas(Protocol):
    """What the poller needs of LocalLambda."""

    @property
    def concurrency(self) -> int: ...

    def is_registered(self, function_name_or_arn: str) -> bool: ...

    def invoke(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Any: ...


@dataclass(frozen=True)
class QueueMapping:
    """An SQS event source mapping, as Lambda's poller needs it."""

    mapping_id: str  # the mapping's UUID
    queue_url: str
    queue_arn: str
    function_arn: str
    batch_size: int = 10
    report_batch_item_failures: bool = False
    enabled: bool = True
    maximum_concurrency: int | None = None


@dataclass
class MappingStats:
    """Per-mapping counters."""

    batches: int = 0  # invocations made
    failed_batches: int = 0  # invocations that ended in an error (or an unusable batch response)
    partial_batches: int = 0  # invocations that reported some messages as failed
    deleted: int = 0  # messages deleted after their invocation
    returned: int = 0  # messages left in the queue, to come back after their visibility timeout


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, from a ReceiveMessage answer's message."""
    attributes = message.get("Attributes") or {}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": {key: str(attributes[key]) for key in _EVENT_ATTRIBUTES if key in attributes},
        "messageAttributes": {
            name: _lambda_message_attribute(value) for name, value in (message.get("MessageAttributes") or {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _lambda_message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    attribute: dict[str, Any] = {"stringListValues": [], "binaryListValues": [], "dataType": value.get("DataType")}
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:  # bytes from boto3; base64 text in Lambda's JSON event
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode("ascii")
    return attribute


def failed_message_ids(response: Any, batch_ids: Sequence[str]) -> set[str] | None:
    """The messages a ReportBatchItemFailures response hands back; None when the whole batch failed.

    Lambda's rules: no response, an empty one, or a null or empty ``batchItemFailures`` is full success; an
    ``itemIdentifier`` that is missing, empty or not a message of the batch (or a response of the wrong
    shape) fails the whole batch.

    >>> failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ["a", "b"])
    {'b'}
    >>> failed_message_ids({"batchItemFailures": [{"itemIdentifier": "z"}]}, ["a", "b"]) is None
    True
    >>> failed_message_ids(None, ["a"])
    set()
    """
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return None
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in batch_ids:
            return None
        failed.add(identifier)
    return failed


class QueuePoller:
    """A thread receiving from the mapped queues and a pool invoking the functions with the batches."""

    def __init__(self, world: World, lambdas: Lambdas, *, tick_seconds: float | None = None) -> None:
        self._world = world
        self._lambdas = lambdas
        # A look at the queues every world second, kept between 10 ms (not to hog the CPU) and 250 ms.
        self._tick = tick_seconds if tick_seconds is not None else min(max(world.to_real(1.0), 0.01), 0.25)
        self._mappings: dict[str, QueueMapping] = {}
        self._stats: dict[str, MappingStats] = {}
        self._in_flight: Counter[str] = Counter()  # batches running, by function ARN
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self._sqs: Any = None

    # -- mappings -------------------------------------------------------------------------------------

    def register(self, mapping: QueueMapping) -> None:
        with self._lock:
            self._mappings[mapping.mapping_id] = mapping
            self._stats.setdefault(mapping.mapping_id, MappingStats())
        self._wake.set()

    def unregister(self, mapping_id: str) -> None:
        """Stop receiving for the mapping; batches already received finish."""
        with self._lock:
            self._mappings.pop(mapping_id, None)

    @property
    def mappings(self) -> dict[str, QueueMapping]:
        with self._lock:
            return dict(self._mappings)

    @property
    def stats(self) -> dict[str, MappingStats]:
        """A snapshot of every mapping's counters, by mapping id (kept after the mapping is removed)."""
        with self._lock:
            return {mapping_id: replace(stats) for mapping_id, stats in self._stats.items()}

    # -- life -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        self._sqs = self._world.client("sqs")
        workers = max(1, 4 * self._lambdas.concurrency)
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="queue-poller-batch")
        self._thread = threading.Thread(target=self._run, name="queue-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop receiving, then wait for the batches being delivered (their invocations end or fail)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(JOIN_SECONDS)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- the loop -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._tick)
            self._wake.clear()
            for mapping in self.mappings.values():
                if self._stop.is_set():
                    return
                try:
                    self._poll(mapping)
                except Exception:  # one broken queue must not stop the others; the message is in the log
                    LOGGER.exception("Receiving for event source mapping %s failed", mapping.mapping_id)

    def _poll(self, mapping: QueueMapping) -> None:
        if not mapping.enabled or not self._lambdas.is_registered(mapping.function_arn):
            return
        limit = min(self._lambdas.concurrency, mapping.maximum_concurrency or self._lambdas.concurrency)
        while not self._stop.is_set() and mapping.mapping_id in self._mappings:
            with self._lock:
                if self._in_flight[mapping.function_arn] >= limit:
                    return
            if not self._may_have_messages(mapping):
                return
            messages = self._sqs.receive_message(
                QueueUrl=mapping.queue_url,
                MaxNumberOfMessages=max(1, min(mapping.batch_size, 10)),
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages:
                return
            pool = self._pool
            if pool is None:
                return
            with self._lock:
                self._in_flight[mapping.function_arn] += 1
            pool.submit(self._deliver, mapping, messages)

    def _may_have_messages(self, mapping: QueueMapping) -> bool:
        """Whether the queue holds a visible message, looked up in moto in this process (no request per tick)."""
        try:
            queue = sqs_backends[self._world.account_id][self._world.region].queues.get(
                mapping.queue_arn.rsplit(":", 1)[-1]
            )
            return queue is not None and bool(queue.messages)
        except (KeyError, AttributeError, RuntimeError):  # moto's internals moved, or changed under us: ask SQS
            return True

    def _deliver(self, mapping: QueueMapping, messages: list[dict[str, Any]]) -> None:
        try:
            self._invoke_and_settle(mapping, messages)
        except Exception:  # the batch stays in the queue and comes back; the reason is in the log
            LOGGER.exception("Delivering a batch of event source mapping %s failed", mapping.mapping_id)
        finally:
            with self._lock:
                self._in_flight[mapping.function_arn] -= 1
            self._wake.set()

    def _invoke_and_settle(self, mapping: QueueMapping, messages: list[dict[str, Any]]) -> None:
        event = {"Records": [lambda_record(message, mapping.queue_arn, self._world.region) for message in messages]}
        ids = [str(message["MessageId"]) for message in messages]
        with self._lock:
            self._stats[mapping.mapping_id].batches += 1
        try:
            response = self._lambdas.invoke(mapping.function_arn, event)
        except Exception as error:  # FunctionError or LambdaError: Lambda deletes nothing of the batch
            LOGGER.info("Batch of %d from %s failed: %s", len(messages), mapping.queue_arn, error)
            failed: set[str] | None = None
        else:
            failed = failed_message_ids(response, ids) if mapping.report_batch_item_failures else set()
        keep = set(ids) if failed is None else failed
        done = [message for message in messages if str(message["MessageId"]) not in keep]
        for start in range(0, len(done), MAX_BATCH_DELETE):
            chunk = done[start : start + MAX_BATCH_DELETE]
            self._sqs.delete_message_batch(
                QueueUrl=mapping.queue_url,
                Entries=[{"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]} for n, m in enumerate(chunk)],
            )
        with self._lock:
            stats = self._stats[mapping.mapping_id]
            stats.deleted += len(done)
            stats.returned += len(messages) - len(done)
            stats.failed_batches += failed is None
            stats.partial_batches += bool(failed)
