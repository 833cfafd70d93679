"""A per-source lock around "count the free clone slots, then restore", in SSM Parameter Store.

Without it two stacks created at once could both see the last free slot of a source and both clone
it, and Aurora would silently make the second a full copy (REFERENCE: the 15-clone limit). A
``PutParameter`` without ``Overwrite`` succeeds for exactly one caller, which makes it a lock; a lock
older than ``stale_after`` seconds (its holder died) is broken.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

DEFAULT_PREFIX = "/aurora-clone/slot-locks/"


class SlotLockBusyError(Exception):
    """Another invocation held the source's lock for longer than this one could wait."""


class SlotLock:
    """``with lock.hold("prod-db", token): ...`` runs the block while no one else holds prod-db."""

    def __init__(
        self,
        client: Any = None,
        *,
        prefix: str | None = None,
        wait_seconds: float = 20.0,
        stale_after: float = 120.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client or boto3.client(
            "ssm",
            region_name=os.environ.get("AWS_REGION"),
            config=Config(retries={"mode": "adaptive", "max_attempts": 8}, connect_timeout=5, read_timeout=10),
        )
        self._prefix = prefix or os.environ.get("SLOT_LOCK_PREFIX") or DEFAULT_PREFIX
        self._wait = wait_seconds
        self._stale_after = stale_after
        self._sleep = sleep
        self._clock = clock

    @contextmanager
    def hold(self, source_id: str, holder: str) -> Iterator[None]:
        name = f"{self._prefix}{source_id}"
        self._acquire(name, source_id, holder)
        try:
            yield
        finally:
            self._release(name, holder)

    def _acquire(self, name: str, source_id: str, holder: str) -> None:
        give_up = self._clock() + self._wait
        while True:
            value = json.dumps({"holder": holder, "since": self._clock()})
            try:
                self._client.put_parameter(Name=name, Value=value, Type="String", Overwrite=False)
                return
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ParameterAlreadyExists":
                    raise
            current = self._read(name)
            if current is not None and current.get("holder") == holder:
                return  # a re-delivered request already holds it
            if current is None or self._clock() - float(current.get("since", 0)) > self._stale_after:
                self._delete(name)  # its holder died (or it just went): take it over on the next try
                continue
            if self._clock() >= give_up:
                raise SlotLockBusyError(
                    f"Another clone of '{source_id}' has been starting for over {self._wait:.0f} s; "
                    "try again in a minute."
                )
            self._sleep(0.5)

    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            text = self._client.get_parameter(Name=name)["Parameter"]["Value"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return None
            raise
        try:
            value = json.loads(text)
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}

    def _release(self, name: str, holder: str) -> None:
        current = self._read(name)
        if current is not None and current.get("holder") == holder:
            self._delete(name)

    def _delete(self, name: str) -> None:
        try:
            self._client.delete_parameter(Name=name)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
