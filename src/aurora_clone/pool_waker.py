"""Asks the copy pool function to run one pool now (an asynchronous invoke, ``{"refill": "<source>"}``): a
claimed warm clone is replaced within a minute, not at the next scheduled run."""

from __future__ import annotations

import json
from typing import Any

from aurora_clone.aws_clients import aws_client


class PoolWaker:
    """``wake(source_id)``: the pool function runs the pool of ``source_id``. AWS errors are raised; the
    caller logs them (the scheduled run still refills)."""

    def __init__(self, function_name: str) -> None:
        self.function_name = function_name
        self._client: Any = None  # built at the first wake, not at import or cold start

    def wake(self, source_id: str) -> None:
        if self._client is None:
            self._client = aws_client("lambda")
        self._client.invoke(
            FunctionName=self.function_name,
            InvocationType="Event",
            Payload=json.dumps({"refill": source_id}).encode(),
        )
