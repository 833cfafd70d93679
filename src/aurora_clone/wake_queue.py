"""The gateway to the function's wake-up queue (SQS): delayed messages that wake a pending request.

The queue (``WAKE_UP_QUEUE_URL``) is consumed by the function itself through an event source mapping;
a message only names a request (aurora_clone.wake_rules.WakeUp), never what to do with it.
"""

from __future__ import annotations

from typing import Any

from aurora_clone.aws_clients import aws_client
from aurora_clone.settings import settings
from aurora_clone.wake_rules import MAX_DELAY_SECONDS, WakeUp


class WakeUpQueueError(Exception):
    """The function has no wake-up queue configured."""


class WakeUpQueue:
    def __init__(self, client: Any = None, url: str | None = None) -> None:
        self._client = client or aws_client("sqs")
        self._url = url or settings.wake_up_queue_url

    def send(self, wake_up: WakeUp, delay_seconds: int) -> None:
        if not self._url:
            raise WakeUpQueueError("WAKE_UP_QUEUE_URL is not set: the function cannot wake pending requests up.")
        self._client.send_message(
            QueueUrl=self._url,
            MessageBody=wake_up.body(),
            DelaySeconds=max(0, min(MAX_DELAY_SECONDS, int(delay_seconds))),
        )
