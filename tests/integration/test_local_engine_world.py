"""What the request engine stands on in the served world: SQS delays and visibility timeouts in world time,
the queue poller delivering batches as Lambda's event source mappings do, event-pattern rules delivering
every event. (RDS events reaching subscribers late, a few lost and a few twice: test_local_world.py.)

One world (time_scale 0.002: a world minute is 120 ms) and one recording function serve the module. Queues
hide a received message for 300 world seconds unless a test says otherwise: the function runs in real time,
and a shorter timeout could end while the batch is still being handled (as it would on AWS for a function
slower than its queue's timeout), which these tests are not about.
"""

from __future__ import annotations

import hashlib
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local.eventbridge import EventBridgePlayer
from aurora_clone.local.lambda_runtime import LocalLambda
from aurora_clone.local.queue_poller import QueueMapping, QueuePoller, failed_message_ids
from aurora_clone.local.world import LocalAws

TIME_SCALE = 0.002
CONCURRENCY = 2

# Records every SQS record it is given (one file per message and receive) or every other event (one file per
# event id), then: "fail-batch" raises, "fail-item" is reported in batchItemFailures, "slow" (a body or an
# event's detail-type) takes 0.3 s; each invocation's real start and end go to spans.jsonl.
RECORDING_HANDLER = """
import json, os, time

def handler(event, context):
    started = time.monotonic()
    directory = os.environ["RECORD_DIR"]
    failures = []
    records = event.get("Records") or [
        {"messageId": event["id"], "body": json.dumps(event), "attributes": {"ApproximateReceiveCount": "0"}}
    ]
    for record in records:
        name = f"{record['messageId']}-{record['attributes']['ApproximateReceiveCount']}.json"
        # Written whole, then renamed: the test reads the directory while invocations still run.
        with open(os.path.join(directory, name + ".part"), "w") as file:
            json.dump(record, file)
        os.replace(os.path.join(directory, name + ".part"), os.path.join(directory, name))
        if record["body"] == "fail-batch":
            raise RuntimeError("asked to fail the batch")
        if record["body"] == "fail-item":
            failures.append({"itemIdentifier": record["messageId"]})
        if record["body"] == "slow" or event.get("detail-type") == "slow":
            time.sleep(0.3)
    with open(os.path.join(directory, "spans.jsonl"), "a") as file:
        file.write(json.dumps([started, time.monotonic()]) + "\\n")
    return {"batchItemFailures": failures}
"""


@dataclass
class Engine:
    world: LocalAws
    lambdas: LocalLambda
    poller: QueuePoller
    function_arn: str
    records: Path

    def seen(self) -> list[dict[str, Any]]:
        """Every record the function was given, one per message and receive."""
        return [json.loads(path.read_text()) for path in sorted(self.records.glob("*.json"))]

    def bodies(self) -> list[str]:
        return sorted(record["body"] for record in self.seen())

    def spans(self) -> list[tuple[float, float]]:
        path = self.records / "spans.jsonl"
        return [tuple(json.loads(line)) for line in path.read_text().splitlines()] if path.exists() else []

    def queue(self, name: str, *, max_receive_count: int | None = None, visibility_timeout: int = 300) -> Queue:
        sqs = self.world.client("sqs")
        attributes = {"VisibilityTimeout": str(visibility_timeout)}
        dead_letter = None
        if max_receive_count is not None:
            dead_letter = sqs.create_queue(QueueName=f"{name}-dead-letters")["QueueUrl"]
            redrive = {"deadLetterTargetArn": arn_of(sqs, dead_letter), "maxReceiveCount": max_receive_count}
            attributes["RedrivePolicy"] = json.dumps(redrive)
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        return Queue(sqs, url, arn_of(sqs, url), dead_letter)

    def map(self, queue: Queue, *, batch_size: int = 10, report_failures: bool = True) -> QueueMapping:
        mapping = QueueMapping(str(uuid.uuid4()), queue.url, queue.arn, self.function_arn, batch_size, report_failures)
        self.poller.register(mapping)
        return mapping


@dataclass
class Queue:
    sqs: Any
    url: str
    arn: str
    dead_letter: str | None

    def send(self, *bodies: str, delay: int = 0) -> list[str]:
        return [
            self.sqs.send_message(QueueUrl=self.url, MessageBody=body, DelaySeconds=delay)["MessageId"]
            for body in bodies
        ]

    def counts(self, url: str | None = None) -> tuple[int, int, int]:
        """(visible, in flight, delayed)."""
        names = [
            "ApproximateNumberOfMessages",
            "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed",
        ]
        found = self.sqs.get_queue_attributes(QueueUrl=url or self.url, AttributeNames=names)["Attributes"]
        visible, in_flight, delayed = (int(found[name]) for name in names)
        return visible, in_flight, delayed

    def empty(self) -> bool:
        return self.counts() == (0, 0, 0)


def arn_of(sqs: Any, url: str) -> str:
    return str(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    code, records = tmp_path_factory.mktemp("code"), tmp_path_factory.mktemp("records")
    (code / "recording.py").write_text(RECORDING_HANDLER)
    with (
        LocalAws(time_scale=TIME_SCALE) as world,
        LocalLambda(world, concurrency=CONCURRENCY) as lambdas,
        QueuePoller(world, lambdas) as poller,
    ):
        arn = lambdas.register("recording", "recording.handler", {"RECORD_DIR": str(records)}, code_dir=str(code))
        yield Engine(world, lambdas, poller, arn, records)


@pytest.fixture(autouse=True)
def fresh_records(engine: Engine) -> None:
    for path in engine.records.iterdir():
        path.unlink()


# -- SQS in world time ----------------------------------------------------------------------------------


def test_delayed_message_stays_hidden_until_its_delay_passes_in_world_time(engine: Engine) -> None:
    queue = engine.queue("delayed")
    sent_at = engine.world.world_time()
    (message_id,) = queue.send("wake", delay=60)
    received: list[tuple[float, str]] = []

    def arrived() -> bool:
        for message in queue.sqs.receive_message(QueueUrl=queue.url).get("Messages", []):
            received.append((engine.world.world_time(), message["MessageId"]))
        return bool(received)

    assert queue.counts() == (0, 0, 1)
    assert engine.world.wait_until(arrived, world_seconds=300)
    ((arrived_at, arrived_id),) = received
    assert arrived_id == message_id
    assert 60 <= arrived_at - sent_at < 200


def test_received_message_comes_back_after_its_visibility_timeout_in_world_time(engine: Engine) -> None:
    queue = engine.queue("invisible", visibility_timeout=45)
    queue.send("wake")
    taken_at = engine.world.world_time()  # before the receive: its visibility timeout starts inside the call
    (taken,) = queue.sqs.receive_message(QueueUrl=queue.url)["Messages"]
    returned: list[float] = []

    def back() -> bool:
        if queue.sqs.receive_message(QueueUrl=queue.url).get("Messages"):
            returned.append(engine.world.world_time())
        return bool(returned)

    assert taken["Body"] == "wake" and queue.counts() == (0, 1, 0)
    assert engine.world.wait_until(back, world_seconds=300)
    assert 45 <= returned[0] - taken_at < 200


# -- the queue poller -----------------------------------------------------------------------------------


def test_poller_invokes_with_lambdas_sqs_event_and_deletes_a_successful_batch(engine: Engine) -> None:
    queue = engine.queue("succeeds")
    ids = queue.send("one", "two", "three")
    mapping = engine.map(queue)

    assert engine.world.wait_until(lambda: len(engine.seen()) == 3 and queue.empty(), world_seconds=600)
    assert engine.poller.stats[mapping.mapping_id].deleted == 3
    record = next(record for record in engine.seen() if record["body"] == "one")
    assert set(record) == {
        "messageId",
        "receiptHandle",
        "body",
        "attributes",
        "messageAttributes",
        "md5OfBody",
        "eventSource",
        "eventSourceARN",
        "awsRegion",
    }
    assert record["messageId"] == ids[0]
    assert set(record["attributes"]) == {
        "ApproximateReceiveCount",
        "SentTimestamp",
        "SenderId",
        "ApproximateFirstReceiveTimestamp",
    }
    assert record["attributes"]["ApproximateReceiveCount"] == "1"
    assert record["md5OfBody"] == hashlib.md5(b"one").hexdigest()  # SQS's own checksum
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", queue.arn, "us-east-1")
    assert record["messageAttributes"] == {}
    engine.poller.unregister(mapping.mapping_id)


def test_poller_keeps_reported_item_failures_until_they_go_to_the_dead_letter_queue(engine: Engine) -> None:
    queue = engine.queue("partly", max_receive_count=2)
    assert queue.dead_letter is not None
    queue.send("fine", "fail-item")
    mapping = engine.map(queue)

    assert engine.world.wait_until(lambda: queue.counts(queue.dead_letter)[0] == 1, world_seconds=5000)
    assert queue.empty()
    (dead,) = queue.sqs.receive_message(QueueUrl=queue.dead_letter)["Messages"]
    assert dead["Body"] == "fail-item"
    receives = sorted(r["attributes"]["ApproximateReceiveCount"] for r in engine.seen() if r["body"] == "fail-item")
    assert receives == ["1", "2"]  # handed back once, after its visibility timeout
    assert [r["body"] for r in engine.seen()].count("fine") == 1  # deleted after the first batch
    stats = engine.poller.stats[mapping.mapping_id]
    assert (stats.deleted, stats.returned, stats.partial_batches, stats.failed_batches) == (1, 2, 2, 0)
    engine.poller.unregister(mapping.mapping_id)


def test_poller_deletes_nothing_of_a_failed_invocation(engine: Engine) -> None:
    queue = engine.queue("fails", max_receive_count=2)
    assert queue.dead_letter is not None
    queue.send("fine", "fail-batch")
    mapping = engine.map(queue)

    assert engine.world.wait_until(lambda: queue.counts(queue.dead_letter)[0] == 2, world_seconds=5000)
    stats = engine.poller.stats[mapping.mapping_id]
    assert (stats.deleted, stats.failed_batches) == (0, 2)  # the good message shared the failed batch's fate
    assert engine.lambdas.stats["recording"].errors >= 2
    engine.poller.unregister(mapping.mapping_id)


def test_poller_runs_batches_at_once_up_to_the_functions_concurrency(engine: Engine) -> None:
    queue = engine.queue("busy")
    queue.send(*["slow"] * 6)
    mapping = engine.map(queue, batch_size=1)

    assert engine.world.wait_until(lambda: len(engine.spans()) == 6 and queue.empty(), world_seconds=10000)
    spans = engine.spans()
    overlapping = max(sum(start <= moment < end for start, end in spans) for moment, _ in spans)
    assert overlapping == CONCURRENCY
    engine.poller.unregister(mapping.mapping_id)


def test_stopped_poller_leaves_no_thread_and_receives_no_more(engine: Engine) -> None:
    before = set(threading.enumerate())
    queue = engine.queue("stopping")
    poller = QueuePoller(engine.world, engine.lambdas)
    poller.start()
    mapping = QueueMapping(str(uuid.uuid4()), queue.url, queue.arn, engine.function_arn)
    poller.register(mapping)
    queue.send("before the stop")
    assert engine.world.wait_until(lambda: poller.stats[mapping.mapping_id].deleted == 1, world_seconds=5000)

    poller.stop()
    queue.send("after the stop")

    started = set(threading.enumerate()) - before
    assert [thread.name for thread in started if thread.name.startswith("queue-poller")] == []
    assert engine.world.wait_until(lambda: queue.counts() != (1, 0, 0), world_seconds=300) is False
    assert engine.bodies() == ["before the stop"]


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        pytest.param(None, set(), id="no-response"),
        pytest.param({}, set(), id="empty"),
        pytest.param({"batchItemFailures": None}, set(), id="null-list"),
        pytest.param({"batchItemFailures": []}, set(), id="empty-list"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "b"}]}, {"b"}, id="one-item"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, None, id="empty-identifier"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": None}]}, None, id="null-identifier"),
        pytest.param({"batchItemFailures": [{"id": "b"}]}, None, id="wrong-key"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "z"}]}, None, id="not-in-batch"),
        pytest.param("done", None, id="not-an-object"),
    ],
)
def test_batch_item_failures_follow_lambdas_rules(response: Any, failed: set[str] | None) -> None:
    assert failed_message_ids(response, ["a", "b"]) == failed


# -- EventBridge: pattern rules deliver every event -----------------------------------------------------


def test_pattern_rule_delivers_every_event_while_earlier_ones_still_run(engine: Engine) -> None:
    events = engine.world.client("events")
    events.put_rule(Name="every-event", EventPattern=json.dumps({"source": ["test.burst"]}))
    events.put_targets(Rule="every-event", Targets=[{"Id": "recording", "Arn": engine.function_arn}])
    with EventBridgePlayer(engine.world, engine.lambdas) as player:
        for number in range(5):
            events.put_events(
                Entries=[{"Source": "test.burst", "DetailType": "slow", "Detail": json.dumps({"n": number})}]
            )

        assert engine.world.wait_until(lambda: len(engine.seen()) == 5, world_seconds=10000)
    events.remove_targets(Rule="every-event", Ids=["recording"])
    events.delete_rule(Name="every-event")

    assert (player.fires["every-event"], player.skipped["every-event"]) == (5, 0)
    delivered = sorted(json.loads(record["body"])["detail"]["n"] for record in engine.seen())
    assert delivered == [0, 1, 2, 3, 4]
