"""Asks the copy pool function to run one pool now (an asynchronous invoke, ``{"refill": "<source>"}``): a
claimed warm clone is replaced within a minute, not at the next scheduled run."""

from __future__ import annotations

from aurora_clone.aws_clients import LambdaFunction


class PoolWaker:
    """``wake(source_id)``: the pool function runs the pool of ``source_id``. AWS errors are raised; the
    caller logs them (the scheduled run still refills)."""

    def __init__(self, function_name: str) -> None:
        self.function = LambdaFunction(function_name)

    def wake(self, source_id: str) -> None:
        self.function.invoke({"refill": source_id}, wait=False)
