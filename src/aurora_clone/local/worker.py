"""A warm Lambda execution environment: ``python -m aurora_clone.local.worker``, started by ``LocalLambda``.

It imports the handler named by ``_HANDLER`` (``module.function``) once, then serves invocations one at a
time: one JSON request per line on stdin, one JSON reply per line on the protocol stream. The protocol
stream is the process's original stdout; fd 1 is pointed at stderr before the handler is imported, so
whatever the handler (or a library, or a child process) prints lands in the logs and cannot corrupt a
reply.

Request: ``{"request_id": "...", "timeout_ms": 120000, "event": {...}}``.
Replies: ``{"type": "ready"}`` or ``{"type": "init_error", ...}`` once at start, then per request
``{"type": "result", "result": ...}`` or ``{"type": "error", "errorType": ..., "errorMessage": ...}``.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import time
import traceback
from typing import IO, Any

from aurora_clone import clock as process_clock
from aurora_clone.clock import WORLD_CLOCK_VARIABLE, WorldClock


class LambdaContext:
    """The context object of the Python Lambda runtime. The remaining time is counted in real time: code runs
    at the machine's speed whatever the world's scale, so its Timeout is a budget of real seconds."""

    def __init__(self, request_id: str, timeout_ms: int) -> None:
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = os.environ.get("LOCAL_LAMBDA_FUNCTION_ARN", "")
        self.memory_limit_in_mb = int(os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.identity = None
        self.client_context = None
        self._deadline = time.monotonic() + timeout_ms / 1000

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _send(protocol: IO[str], message: dict[str, Any]) -> None:
    protocol.write(json.dumps(message) + "\n")
    protocol.flush()


def _error(kind: str, error: BaseException) -> dict[str, Any]:
    return {
        "type": kind,
        "errorType": type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error),
    }


def main() -> int:
    protocol = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)  # from here on, fd 1 (print, C libraries, child processes) goes to the logs
    sys.stdout = os.fdopen(1, "w", encoding="utf-8", buffering=1, closefd=False)
    world_clock = os.environ.get(WORLD_CLOCK_VARIABLE)
    if world_clock:  # the handler reads the world's time, as everything else in the world does
        process_clock.use(WorldClock.decode(world_clock).now)
    module_name, _, function_name = os.environ.get("_HANDLER", "").rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as error:  # reported to the parent, which fails the invocation as Lambda does
        traceback.print_exc()
        _send(protocol, _error("init_error", error))
        return 1
    _send(protocol, {"type": "ready"})
    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(request["request_id"], int(request["timeout_ms"]))
        try:
            result = handler(request["event"], context)
            reply: dict[str, Any] = {"type": "result", "result": json.loads(json.dumps(result))}
        except Exception as error:  # a handler error is the invocation's result, as in Lambda
            print(f"[ERROR] {type(error).__name__}: {error}", file=sys.stderr)
            traceback.print_exc()
            reply = _error("error", error)
        sys.stdout.flush()
        sys.stderr.flush()
        _send(protocol, reply)
    return 0


if __name__ == "__main__":
    sys.exit(main())
