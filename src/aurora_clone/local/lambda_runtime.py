"""``LocalLambda``: runs registered functions' real handlers in warm worker processes, against the world.

Each function gets a pool of execution environments (``python -m aurora_clone.local.worker``) that grows
on demand up to ``concurrency``; an environment imports the handler once and serves one invocation at a
time, like Lambda's. A worker's environment is a minimal base (PATH, HOME, LANG, PYTHONPATH), the
world's client environment (endpoint, CA bundle, fake keys, Region; for the connection check also
``RDS_CA_BUNDLE``, the world's CA), the function's Environment variables and the variables Lambda sets,
so the handler talks to the world over HTTPS exactly as it talks to AWS. An invocation that runs past
the function's timeout has its worker killed and replaced.

    with LocalAws() as world, LocalLambda(world) as lambdas:
        arn = lambdas.register("aurora-clone", environment={"REQUEST_TABLE": "aurora-clone-requests"})
        lambdas.invoke(arn, event)              # synchronous: the handler's result; raises FunctionError
        lambdas.invoke_async(arn, event)        # queued, like InvocationType=Event
        lambdas.stats["aurora-clone"].billed_ms

Functions are also created in the world's Lambda (a dummy zip with the same Role, Handler, Runtime and
Environment), so ``get_function`` and resource policies work there. Worker output goes to ``log_sink``
(function name, line), never to the terminal unless asked.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import IO, Any, Protocol, Self

DEFAULT_HANDLER = "aurora_clone.handler.handler"
# The connection check's handler: it verifies a clone's TLS certificate against RDS_CA_BUNDLE, which here is
# the world's CA (the local clusters' endpoints present certificates of it, as RDS's present RDS's).
CONNECTION_CHECK_HANDLER = "aurora_clone.probe.handler"
DEFAULT_CONCURRENCY = 4
RUNTIME = "python3.13"
INIT_TIMEOUT_SECONDS = 30.0  # Lambda allows 10 s of init; a cold Python import on a busy machine needs more
_BASE_VARIABLES = ("PATH", "HOME", "LANG", "PYTHONPATH")
_LAMBDA_TRUST = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
_LAMBDA_TRUST_POLICY = json.dumps({"Version": "2012-10-17", "Statement": [_LAMBDA_TRUST]})

LogSink = Callable[[str, str], None]


class World(Protocol):
    """What LocalLambda needs of LocalAws."""

    region: str
    account_id: str
    ca_bundle: str

    def client_env(self) -> dict[str, str]: ...

    def client(self, service: str) -> Any: ...


class LambdaError(Exception):
    """A function cannot be registered or found."""


class FunctionError(Exception):
    """An invocation ended in an error: the handler raised, the runtime could not start, or it timed out."""

    def __init__(self, function_name: str, error_type: str, message: str) -> None:
        super().__init__(f"{function_name}: {error_type}: {message}")
        self.function_name = function_name
        self.error_type = error_type
        self.message = message


@dataclass(frozen=True)
class FunctionConfig:
    """A registered function, as Lambda would describe it."""

    name: str
    arn: str
    handler: str
    environment: Mapping[str, str]
    timeout_seconds: int
    memory_mb: int
    code_dir: str | None = None


@dataclass
class FunctionStats:
    """Per-function counters: invocations, errors, timeouts, billed time (each invocation rounded up to 1 ms)."""

    invocations: int = 0
    errors: int = 0
    timeouts: int = 0
    billed_ms: int = 0
    cold_starts: int = 0


class _WorkerGoneError(Exception):
    """The worker process ended or stopped answering."""


@dataclass(eq=False)  # identity, not value: workers live in sets
class _Worker:
    """One execution environment: a worker process and the threads reading its output."""

    process: subprocess.Popen[bytes]
    replies: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)

    @classmethod
    def start(cls, command: list[str], env: dict[str, str], name: str, sink: LogSink) -> _Worker:
        process = subprocess.Popen(
            command, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        worker = cls(process)
        assert process.stdout is not None and process.stderr is not None
        threading.Thread(target=worker._read_replies, args=(process.stdout,), daemon=True).start()
        threading.Thread(target=_forward_logs, args=(process.stderr, name, sink), daemon=True).start()
        return worker

    def _read_replies(self, stream: IO[bytes]) -> None:
        for line in stream:
            try:
                self.replies.put(json.loads(line))
            except ValueError:
                continue  # nothing but the protocol is written there; a torn line means the process died
        self.replies.put(None)

    def receive(self, timeout: float) -> dict[str, Any]:
        try:
            reply = self.replies.get(timeout=timeout)
        except queue.Empty:
            raise _WorkerGoneError("timed out") from None
        if reply is None:
            raise _WorkerGoneError(f"exited with status {self.process.wait()}")
        return reply

    def send(self, message: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        try:
            self.process.stdin.write((json.dumps(message) + "\n").encode())
            self.process.stdin.flush()
        except (BrokenPipeError, OSError) as error:
            raise _WorkerGoneError(f"cannot be reached: {error}") from error

    def stop(self, grace_seconds: float = 2.0) -> None:
        """End the worker: EOF on stdin lets it finish, a kill follows if it does not."""
        if self.process.stdin is not None and not self.process.stdin.closed:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=grace_seconds)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def _forward_logs(stream: IO[bytes], name: str, sink: LogSink) -> None:
    for raw in stream:
        _log(sink, name, raw.decode("utf-8", "replace").rstrip("\n"))


def _log(sink: LogSink, name: str, line: str) -> None:
    """Hand a line to the sink; a failing sink must not stop a worker (its stderr pipe would fill up)."""
    with contextlib.suppress(Exception):  # the logs are best effort, the invocation is not
        sink(name, line)


def _discard(_name: str, _line: str) -> None:
    """The default log sink: Lambda's logs go to CloudWatch, not to whoever started the world."""


class _Pool:
    """The execution environments of one function: idle workers reused, at most ``limit`` in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.idle: list[_Worker] = []
        self.all: set[_Worker] = set()
        self.size = 0  # workers alive or being started
        self.closed = False
        self.condition = threading.Condition()

    def reserve(self) -> _Worker | None:
        """An idle worker, or None when the caller may start a new one; waits while the pool is full."""
        with self.condition:
            while not self.idle and self.size >= self.limit and not self.closed:
                self.condition.wait()
            if self.closed:
                raise LambdaError("the function was removed while the invocation waited")
            if self.idle:
                return self.idle.pop()
            self.size += 1
            return None

    def started(self, worker: _Worker) -> bool:
        """Track a new worker; False when the pool was closed while it started (the caller kills it)."""
        with self.condition:
            if not self.closed:
                self.all.add(worker)
            return not self.closed

    def release(self, worker: _Worker | None, healthy: bool) -> None:
        """Return a worker after an invocation; one that is unhealthy (or late for a closed pool) is killed."""
        with self.condition:
            keep = worker is not None and healthy and not self.closed
            if keep and worker is not None:
                self.idle.append(worker)
            else:
                self.size -= 1
                if worker is not None:
                    self.all.discard(worker)
            self.condition.notify()
        if worker is not None and not keep:
            worker.kill()

    def drain(self) -> list[_Worker]:
        with self.condition:
            self.closed = True
            workers = list(self.all)
            self.idle.clear()
            self.all.clear()
            self.condition.notify_all()
            return workers


def _dummy_code() -> bytes:
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("README.txt", "Runs locally in aurora_clone.local.lambda_runtime; this zip is a placeholder.\n")
    return archive.getvalue()


class LocalLambda:
    """Registered functions and their warm workers; ``close()`` (or leaving the ``with``) stops them all."""

    def __init__(
        self,
        world: World,
        *,
        concurrency: int = DEFAULT_CONCURRENCY,
        log_sink: LogSink | None = None,
        python: str = sys.executable,
    ) -> None:
        self._world = world
        self._concurrency = concurrency
        self._sink = log_sink or _discard
        self._python = python
        self._lock = threading.Lock()
        self._functions: dict[str, FunctionConfig] = {}
        self._pools: dict[str, _Pool] = {}
        self._stats: dict[str, FunctionStats] = {}
        self._queue = ThreadPoolExecutor(max_workers=4 * concurrency, thread_name_prefix="local-lambda-async")
        self._closed = False

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    # -- functions ----------------------------------------------------------------------------------

    def function_arn(self, function_name: str) -> str:
        return f"arn:aws:lambda:{self._world.region}:{self._world.account_id}:function:{function_name}"

    def register(
        self,
        function_name: str,
        handler: str = DEFAULT_HANDLER,
        environment: Mapping[str, str] | None = None,
        timeout_seconds: int = 120,
        memory_mb: int = 256,
        *,
        role_arn: str | None = None,
        code_dir: str | None = None,
    ) -> str:
        """Create the function (locally and in the world's Lambda) and return its ARN.

        ``role_arn`` defaults to a role made for it; ``code_dir`` is put first on the workers' PYTHONPATH
        (Lambda's task root), for code that is not installed in this interpreter.
        """
        if not 1 <= len(function_name) <= 64:
            raise LambdaError(f"Function name '{function_name}' must be 1-64 characters")
        config = FunctionConfig(
            name=function_name,
            arn=self.function_arn(function_name),
            handler=handler,
            environment=dict(environment or {}),
            timeout_seconds=timeout_seconds,
            memory_mb=memory_mb,
            code_dir=code_dir,
        )
        with self._lock:
            if function_name in self._functions:
                raise LambdaError(f"Function already exist: {function_name}")
            self._functions[function_name] = config
            self._pools[function_name] = _Pool(self._concurrency)
            self._stats[function_name] = FunctionStats()
        try:
            self._create_in_world(config, role_arn or self._default_role(function_name))
        except Exception:
            self._forget(function_name)
            raise
        return config.arn

    def _default_role(self, function_name: str) -> str:
        iam = self._world.client("iam")
        name = f"{function_name}-role"[:64]
        try:
            return str(iam.get_role(RoleName=name)["Role"]["Arn"])
        except iam.exceptions.NoSuchEntityException:
            return str(iam.create_role(RoleName=name, AssumeRolePolicyDocument=_LAMBDA_TRUST_POLICY)["Role"]["Arn"])

    def _create_in_world(self, config: FunctionConfig, role_arn: str) -> None:
        self._world.client("lambda").create_function(
            FunctionName=config.name,
            Runtime=RUNTIME,
            Role=role_arn,
            Handler=config.handler,
            Code={"ZipFile": _dummy_code()},
            Timeout=config.timeout_seconds,
            MemorySize=config.memory_mb,
            Environment={"Variables": dict(config.environment)},
        )

    def unregister(self, function_name_or_arn: str) -> None:
        """Delete the function (here and in the world's Lambda) and stop its workers."""
        config = self.config(function_name_or_arn)
        self._forget(config.name)
        client = self._world.client("lambda")
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            client.delete_function(FunctionName=config.name)

    def _forget(self, function_name: str) -> None:
        with self._lock:
            self._functions.pop(function_name, None)
            pool = self._pools.pop(function_name, None)
        if pool is not None:
            for worker in pool.drain():
                worker.stop()

    def is_registered(self, function_name_or_arn: str) -> bool:
        with self._lock:
            return _function_name(function_name_or_arn) in self._functions

    def config(self, function_name_or_arn: str) -> FunctionConfig:
        name = _function_name(function_name_or_arn)
        with self._lock:
            if name not in self._functions:
                raise LambdaError(f"Function not found: {function_name_or_arn}")
            return self._functions[name]

    @property
    def stats(self) -> dict[str, FunctionStats]:
        """A snapshot of every function's counters, by function name."""
        with self._lock:
            return {name: replace(stats) for name, stats in self._stats.items()}

    # -- invocations --------------------------------------------------------------------------------

    @property
    def concurrency(self) -> int:
        """Execution environments per function at most: invocations beyond it wait for one."""
        return self._concurrency

    def invoke(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Any:
        """Run the handler on ``event`` in a warm worker and wait for its result (as JSON gives it back);
        raise FunctionError if it fails."""
        config = self.config(function_name_or_arn)
        with self._lock:
            pool = self._pools.get(config.name)
        if pool is None:
            raise LambdaError(f"Function not found: {function_name_or_arn}")
        payload = json.loads(json.dumps(event))  # only what survives JSON reaches a Lambda handler
        worker = pool.reserve()
        healthy, result, error = False, None, None
        try:
            if worker is None:
                worker = self._start_worker(config)
                if not pool.started(worker):
                    raise LambdaError(f"Function {config.name} was removed while it started")
            healthy, result, error = self._run(config, worker, payload)
        finally:
            pool.release(worker, healthy)
        if error is not None:
            raise error
        return result

    def invoke_async(self, function_name_or_arn: str, event: Mapping[str, Any]) -> Future[None]:
        """Queue an invocation (InvocationType=Event); its error is logged and counted, not raised."""
        config = self.config(function_name_or_arn)

        def run() -> None:
            try:
                self.invoke(config.arn, event)
            except (FunctionError, LambdaError) as error:
                _log(self._sink, config.name, f"[async invocation failed] {error}")

        return self._queue.submit(run)

    def _environment(self, config: FunctionConfig) -> dict[str, str]:
        env = {name: os.environ[name] for name in _BASE_VARIABLES if name in os.environ}
        env.update(self._world.client_env())
        # CloudFormation's response bucket is served at the world's endpoint: the ResponseURLs a function may
        # answer to are there (aurora_clone.intake), not at AWS's. Not in client_env: no SDK reads it.
        if env.get("AWS_ENDPOINT_URL"):
            env["RESPONSE_ENDPOINT"] = env["AWS_ENDPOINT_URL"]
        if config.handler == CONNECTION_CHECK_HANDLER:
            env["RDS_CA_BUNDLE"] = self._world.ca_bundle
        env.update(config.environment)
        if config.code_dir:
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [config.code_dir, env.get("PYTHONPATH")]))
            env["LAMBDA_TASK_ROOT"] = config.code_dir
        env.update(
            {
                "_HANDLER": config.handler,
                "AWS_LAMBDA_FUNCTION_NAME": config.name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{config.name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_EXECUTION_ENV": f"AWS_Lambda_{RUNTIME}",
                "LOCAL_LAMBDA_FUNCTION_ARN": config.arn,
                "PYTHONUNBUFFERED": "1",
                "TZ": ":UTC",
            }
        )
        return env

    def _start_worker(self, config: FunctionConfig) -> _Worker:
        command = [self._python, "-m", "aurora_clone.local.worker"]
        worker = _Worker.start(command, self._environment(config), config.name, self._sink)
        try:
            reply = worker.receive(INIT_TIMEOUT_SECONDS)
        except _WorkerGoneError as error:
            worker.kill()
            raise FunctionError(config.name, "Runtime.InitError", f"the runtime {error} while starting") from None
        if reply.get("type") != "ready":
            worker.kill()
            raise FunctionError(config.name, "Runtime.ImportModuleError", str(reply.get("errorMessage")))
        with self._lock:
            self._stats[config.name].cold_starts += 1
        return worker

    def _run(
        self, config: FunctionConfig, worker: _Worker, event: dict[str, Any]
    ) -> tuple[bool, Any, FunctionError | None]:
        """One invocation: whether the worker may serve another, the handler's result, and the error if any."""
        request_id = str(uuid.uuid4())
        _log(self._sink, config.name, f"START RequestId: {request_id} Version: $LATEST")
        started = time.monotonic()
        timeout_ms = config.timeout_seconds * 1000
        error: FunctionError | None = None
        result: Any = None
        healthy = True
        try:
            worker.send({"request_id": request_id, "timeout_ms": timeout_ms, "event": event})
            reply = worker.receive(config.timeout_seconds)
            if reply.get("type") == "error":
                error = FunctionError(config.name, str(reply.get("errorType")), str(reply.get("errorMessage")))
            else:
                result = reply.get("result")
        except _WorkerGoneError as gone:
            healthy = False
            timed_out = time.monotonic() - started >= config.timeout_seconds
            message = f"Task timed out after {config.timeout_seconds:.2f} seconds" if timed_out else f"worker {gone}"
            error = FunctionError(config.name, "Sandbox.Timedout" if timed_out else "Runtime.ExitError", message)
        duration_ms = (time.monotonic() - started) * 1000
        billed = max(1, math.ceil(duration_ms))
        with self._lock:
            stats = self._stats[config.name]
            stats.invocations += 1
            stats.billed_ms += billed
            stats.errors += error is not None
            stats.timeouts += error is not None and error.error_type == "Sandbox.Timedout"
        _log(self._sink, config.name, f"END RequestId: {request_id}")
        _log(
            self._sink,
            config.name,
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\tBilled Duration: {billed} ms\t"
            f"Memory Size: {config.memory_mb} MB",
        )
        return healthy, result, error

    def close(self) -> None:
        """Cancel queued invocations and stop every worker (an invocation still running ends in an error)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            names = list(self._pools)
        self._queue.shutdown(wait=False, cancel_futures=True)
        for name in names:
            self._forget(name)
        self._queue.shutdown(wait=True)  # invocations still running end as their workers are stopped


def _function_name(function_name_or_arn: str) -> str:
    """``name``, ``arn:...:function:name`` or ``arn:...:function:name:qualifier`` -> ``name``."""
    if function_name_or_arn.startswith("arn:"):
        parts = function_name_or_arn.split(":")
        return parts[6] if len(parts) > 6 else function_name_or_arn
    return function_name_or_arn
