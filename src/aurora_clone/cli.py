"""``aurora-clone``: the command line.

``aurora-clone local demo``            the whole lifecycle of the example stack in the embedded world
``aurora-clone local serve``           keep the embedded world up for other terminals and tools
``aurora-clone local env``             the running world's environment, as export lines
``aurora-clone local up TEMPLATE``     create (or update) a stack in the running world, streaming its events
``aurora-clone local down STACK``      delete it, streaming its events
``aurora-clone list``                  every clone this tool made, with its stack and age
``aurora-clone sweep``                 delete clones no live stack names, as the schedule does
``aurora-clone pool status SOURCE``    the source and its copies: status, age, data time, clone slots
``aurora-clone pool plan``             what the copy pool's scheduled run would do now, and why
``aurora-clone pool apply``            do it (``--dry-run``: only say it), as the scheduled run does
``aurora-clone lint TEMPLATE...``      cfn-lint with the Custom::AuroraClone rules (cfn-lint's options pass through)

Commands that talk to AWS act on the running local world when there is one, else on AWS with boto3's
profile and Region (``--target`` chooses; ``aurora_clone.target``); each says on stderr which it chose.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import importlib.metadata
import json
import logging
import os
import queue
import re
import shlex
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aurora_clone import clock as process_clock
from aurora_clone.aws_errors import error_code, error_message
from aurora_clone.settings import settings
from aurora_clone.target import TARGET_CHOICES

if TYPE_CHECKING:
    from aurora_clone.pool.plan import PoolPolicy
    from aurora_clone.pool_runner import RunResult
    from aurora_clone.request_store import RequestStore

SOURCE_ENGINES = ("aurora-mysql", "aurora-postgresql")
SQL_ENGINES = ("aurora-postgresql",)  # the sources --source-sql is loaded into
DEFAULT_STATE = settings.local_state_file


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _parameters(pairs: Sequence[str], option: str = "--param") -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"{option} takes KEY=VALUE, got '{pair}'")
        parameters[key] = value
    return parameters


# -- demo -------------------------------------------------------------------------------------------------

DEMO_SCRIPTS_BUCKET = "demo-masking-scripts"
# The demo's function stack: the connection check (any ids: loopback is one network) and where prepare scripts
# may be read from.
DEMO_FUNCTION_PARAMETERS = {
    "ConnectionCheckSubnetIds": "subnet-0demo",
    "ConnectionCheckSecurityGroupIds": "sg-0demo",
    "PrepareScriptLocations": f"arn:aws:s3:::{DEMO_SCRIPTS_BUCKET}/*",
}
DEMO_MASKING_SCRIPT = """\
-- Every customer gets an address of their own that reaches no one.
UPDATE customers SET email = 'customer-' || id || '@example.invalid';
"""


def run_demo(function_template: str, example: str, time_scale: float) -> int:
    """Create, update and delete the example stack; show that nothing is left. Exit status 0 on success."""
    from aurora_clone.local import database_demo
    from aurora_clone.local.session import LocalSession
    from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME

    started = time.monotonic()
    _say(f"Starting the emulated AWS (one real second is {1 / time_scale:.0f} emulated seconds)")
    with LocalSession(
        function_template,
        time_scale=time_scale,
        printer=lambda line: print(line, flush=True),
        real_databases=True,
        function_parameters=DEMO_FUNCTION_PARAMETERS,
    ) as local:
        print(f"Endpoint: {local.world.endpoint_url}")
        local.world.subscribe(_print_rds_event)
        # The source is Aurora PostgreSQL with a real server and sample rows, so the clone can be queried.
        _say("Creating the source Aurora PostgreSQL cluster 'prod-db' with one writer instance and a real server")
        local.world.create_source_cluster("prod-db", engine="aurora-postgresql")
        if local.world.databases is not None:
            print(local.world.databases.describe("prod-db", "aurora-postgresql"))
        print("prod-db is available")
        print(f"Function stack '{local.function_stack_name}' deployed from {function_template}")
        cfn = local.cloudformation
        params = {"SourceClusterId": "prod-db", "CloneFunctionStackName": local.function_stack_name}

        _say(f"Creating the example stack from {example}")
        stack = cfn.create_stack("integration-test", example, params)
        if stack.status != "CREATE_COMPLETE":
            return _failed(stack.status)
        for line in output_lines(stack.outputs):
            print(line)
        created = dict(stack.outputs)
        # The clone answers at the outputs' endpoint, with the source's data.
        _say("Connecting to the clone from the stack's outputs (Endpoint, Port)")
        user, password = SOURCE_MASTER_USERNAME, SOURCE_MASTER_PASSWORD
        if not database_demo.show_clone_is_a_copy(local.world, created, "prod-db", user, password, print):
            return _failed("the clone is not a copy of the source of its own")

        _say("Updating it: a bigger instance class (db.r6g.xlarge), in place")
        stack = cfn.update_stack("integration-test", example, {**params, "InstanceClass": "db.r6g.xlarge"})
        if stack.status != "UPDATE_COMPLETE":
            return _failed(stack.status)
        clone = stack.outputs.get("ClusterId", "")
        instances = local.world.client("rds").describe_db_instances(
            Filters=[{"Name": "db-cluster-id", "Values": [clone]}]
        )["DBInstances"]
        for instance in instances:
            print(f"  {instance['DBInstanceIdentifier']}: {instance['DBInstanceClass']}")

        _say("Deleting the example stack")
        stack = cfn.delete_stack("integration-test")
        if stack.status != "DELETE_COMPLETE":
            return _failed(stack.status)
        if not database_demo.show_server_gone(local.world, created, "prod-db", print):
            return _failed("the deleted clone's server still answers")

        masked_example = str(Path(example).with_name("masked-test.yaml"))
        script = f"s3://{DEMO_SCRIPTS_BUCKET}/customers/mask.sql"
        _say(f"Masking the customers' emails before the tests see them: {masked_example}, PrepareScript {script}")
        s3 = local.world.client("s3")
        s3.create_bucket(Bucket=DEMO_SCRIPTS_BUCKET)
        s3.put_object(Bucket=DEMO_SCRIPTS_BUCKET, Key="customers/mask.sql", Body=DEMO_MASKING_SCRIPT.encode())
        stack = cfn.create_stack("masked-test", masked_example, {**params, "PrepareScript": script})
        if stack.status != "CREATE_COMPLETE":
            return _failed(f"{stack.status}: {stack.status_reason}")
        print(f"  PreparedWith {stack.outputs.get('PreparedWith', '')}")
        if not database_demo.show_masked(local.world, dict(stack.outputs), "prod-db", print):
            return _failed("the clone's emails are not masked")
        stack = cfn.delete_stack("masked-test")
        if stack.status != "DELETE_COMPLETE":
            return _failed(stack.status)

        _say("What is left")
        leftovers = local.settled_leftovers(world_seconds=300)
        for kind, names in leftovers.items():
            print(f"  {kind}: {', '.join(names) if names else 'none'}")
        remaining = [c["DBClusterIdentifier"] for c in local.world.client("rds").describe_db_clusters()["DBClusters"]]
        print(f"  clusters in the account: {', '.join(remaining)}")
        if any(leftovers.values()):
            return _failed("something was left behind")
    _say(f"Done in {time.monotonic() - started:.0f} s: created, updated and deleted; nothing left")
    return 0


def output_lines(outputs: Mapping[str, str]) -> list[str]:
    """A stack's outputs, one per line, the values in one column.

    >>> output_lines({"Endpoint": "127.0.0.3", "FromWarmPool": "true"})
    ['  Endpoint     127.0.0.3', '  FromWarmPool true']
    """
    width = max((len(key) for key in outputs), default=0)
    return [f"  {key:{width}} {value}" for key, value in outputs.items()]


def _print_rds_event(event: dict[str, Any]) -> None:
    """RDS's own events, as they reach EventBridge: the progress between stack events."""
    line = _rds_event_line(event)
    if line is not None:
        print(line, flush=True)


def _rds_event_line(event: dict[str, Any]) -> str | None:
    """``HH:MM:SS  RDS  <source>  <message>`` (world time, UTC, like stack events); None for other events."""
    if event.get("source") != "aws.rds":
        return None
    detail = event.get("detail", {})
    when = str(detail.get("Date", ""))[11:19]
    return f"{when}  RDS  {detail.get('SourceIdentifier')}  {detail.get('Message')}"


def _failed(what: str) -> int:
    print(f"\nThe demo failed: {what}", file=sys.stderr)
    return 1


# -- serve / up / down ---------------------------------------------------------------------------------


def serve(
    function_template: str,
    time_scale: float,
    sources: Sequence[str],
    state_file: Path,
    source_sql: Path | None = None,
    function_parameters: Mapping[str, str] | None = None,
) -> int:
    """Keep the world up until interrupted; the other commands find it through ``state_file``. ``source_sql`` is
    loaded into each Aurora PostgreSQL source's real server (default: a small sample); ``function_parameters``
    are the function stack's parameters (the connection check's, PrepareScriptLocations)."""
    from aurora_clone.local.database_servers import ServerError
    from aurora_clone.local.session import LocalSession
    from aurora_clone.target import LocalWorld, running_world

    running = running_world(state_file)
    if running is not None:
        print(
            f"A local world is already running at {running.endpoint_url} (process {running.pid}); "
            "stop it first (Ctrl-C in its terminal).",
            file=sys.stderr,
        )
        return 1
    wanted = [_source_cluster(text) for text in sources]
    try:
        sql = source_sql.read_text() if source_sql is not None else None
    except OSError as error:
        raise SystemExit(f"Cannot read --source-sql {source_sql}: {error.strerror}") from None
    stop = threading.Event()
    for stop_signal in (signal.SIGTERM, signal.SIGINT):  # SIGINT too: a shell may start it with SIGINT ignored
        signal.signal(stop_signal, lambda *_: stop.set())
    with LocalSession(
        function_template,
        time_scale=time_scale,
        printer=lambda line: print(line, flush=True),
        real_databases=True,
        function_parameters=dict(function_parameters or {}),
    ) as local:
        for identifier, engine in wanted:
            try:
                local.world.create_source_cluster(identifier, engine=engine, sql=sql if engine in SQL_ENGINES else None)
            except ServerError as error:
                print(f"The source cluster {identifier}: {error}", file=sys.stderr)
                return 1
        local.world.subscribe(_print_rds_event)
        control = _control_server(local)
        threading.Thread(target=control.serve_forever, name="local-control", daemon=True).start()
        function_stack = local.function_stack
        LocalWorld(
            endpoint_url=local.world.endpoint_url,
            control_url=f"http://127.0.0.1:{control.server_address[1]}",
            environment=local.world.client_env(),
            pid=os.getpid(),
            function_stack=local.function_stack_name,
            outputs=dict(function_stack.outputs) if function_stack is not None else {},
        ).write(state_file)
        names = ", ".join(f"{identifier} ({engine})" for identifier, engine in wanted) or "none"
        print(f"The emulated AWS is up at {local.world.endpoint_url}, Region {local.world.region}.")
        print(f"One real second is {1 / time_scale:.0f} emulated seconds; world time now {_world_now()}.")
        print(f"Source clusters: {names}. Function stack: {local.function_stack_name}.")
        if local.world.databases is not None:  # one line per source: its server, or why none
            for identifier, engine in wanted:
                print(f"  {local.world.databases.describe(identifier, engine)}")
        # The first source whose database answers (when one does) makes the friendliest first stack.
        answering = [i for i, _ in wanted if local.world.databases is not None and local.world.databases.server(i)]
        first = (answering or [identifier for identifier, _ in wanted] or ["SOURCE"])[0]
        print("In another terminal, aurora-clone finds this world by itself:")
        print(f"  aurora-clone local up example/template.yaml --stack-name it --param SourceClusterId={first}")
        print("  aurora-clone list")
        print("  aurora-clone local down it")
        print('For the AWS CLI, boto3 or your own tests: eval "$(aurora-clone local env)", which exports:')
        for key, value in local.world.client_env().items():
            print(f"  export {key}={shlex.quote(value)}")
        print("What happens in the world is shown below (Ctrl-C stops it).", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            control.shutdown()
            described = LocalWorld.read(state_file)
            if described is not None and described.pid == os.getpid():  # not another world's file
                state_file.unlink(missing_ok=True)
    return 0


def _source_cluster(text: str) -> tuple[str, str]:
    """``ID`` or ``ID:ENGINE`` (``aurora-mysql``, the default, or ``aurora-postgresql``)."""
    identifier, _, engine = text.partition(":")
    engine = engine or "aurora-mysql"
    if engine not in SOURCE_ENGINES:
        raise SystemExit(f"--source-cluster {text}: the engine must be one of {', '.join(SOURCE_ENGINES)}")
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(-[A-Za-z0-9]+)*", identifier) or len(identifier) > 63:
        raise SystemExit(
            f"--source-cluster {text}: '{identifier}' is not a DB cluster identifier (1-63 letters, digits and "
            "hyphens, starting with a letter, no two hyphens in a row, not ending with one)"
        )
    return identifier, engine


def _world_now() -> str:
    from aurora_clone.timespec import format_timestamp

    return format_timestamp(process_clock.utcnow())


def print_environment(state_file: Path) -> int:
    """The running world's client environment as ``export`` lines, for ``eval "$(aurora-clone local env)"``."""
    from aurora_clone.target import START_HINT, running_world

    world = running_world(state_file)
    if world is None:
        print(f"No local world is running: {START_HINT}.", file=sys.stderr)
        return 1
    for key, value in world.environment.items():
        print(f"export {key}={shlex.quote(value)}")
    return 0


def _control_server(local: Any) -> http.server.ThreadingHTTPServer:
    class Control(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()
            try:
                for line in _operate(local, self.path, request):
                    self.wfile.write((line + "\n").encode())
                    self.wfile.flush()
            except ConnectionError:
                pass  # the client went away (Ctrl-C); the operation goes on in the world, as on AWS
            except Exception as error:  # the client shows it; the world keeps serving
                self.wfile.write(f"ERROR {error}\nEXIT 1\n".encode())

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)


def _operate(local: Any, path: str, request: dict[str, Any]) -> Iterator[str]:
    """Start the stack operation, then its stack events and its clones' RDS events as they happen, its
    outputs (not for a delete) and status, and last ``EXIT <status>``."""
    from aurora_clone.local.stacks import NoChangesError

    cloudformation = local.cloudformation
    name = request["stack"]
    if path == "/up":
        body, source, parameters = request["template_body"], request["template"], request["parameters"]
        try:
            if name in cloudformation.stacks:
                operation = cloudformation.start_update_stack(name, body, parameters, source=source)
            else:
                operation = cloudformation.start_create_stack(name, body, parameters, source=source)
        except NoChangesError:
            yield f"No changes to deploy: the stack {name} is up to date (same template and parameters)."
            yield f"EXIT {0 if request.get('no_fail_on_empty_changeset') else 1}"
            return
        succeeded: tuple[str, ...] = ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    elif path == "/down":
        operation = cloudformation.start_delete_stack(name)
        succeeded = ("DELETE_COMPLETE",)
    else:
        raise ValueError(f"unknown control command {path}")
    lines: queue.SimpleQueue[str | None] = queue.SimpleQueue()
    rds_events = _rds_events_of(local.world, operation.stack.stack_id, lines.put)
    local.world.subscribe(rds_events)

    def follow() -> None:
        for event in operation.events():
            lines.put(event.line())
        lines.put(None)

    threading.Thread(target=follow, name=f"follow-{name}", daemon=True).start()
    try:
        while (line := lines.get()) is not None:
            yield line
    finally:
        local.world.unsubscribe(rds_events)
    stack = operation.wait()
    if path == "/up" and stack.status in succeeded:
        yield from output_lines(stack.outputs)
    reason = f" ({stack.status_reason})" if stack.status not in succeeded and stack.status_reason else ""
    yield f"Stack status: {stack.status}{reason}"
    yield f"EXIT {0 if stack.status in succeeded else 1}"


def _rds_events_of(world: Any, stack_id: str, send: Callable[[str], None]) -> Callable[[dict[str, Any]], None]:
    """A subscriber that sends the lines of RDS events about the clusters and instances of ``stack_id``:
    those that exist now (a deleted one's last events come when its tags can no longer be read) and those
    whose tags name the stack when their first event comes."""
    from aurora_clone.ownership import STACK_ID_TAG

    rds = world.client("rds")

    def of_the_stack(tags: list[dict[str, str]]) -> bool:
        return any(tag["Key"] == STACK_ID_TAG and tag["Value"] == stack_id for tag in tags)

    known = {c["DBClusterArn"] for c in rds.describe_db_clusters()["DBClusters"] if of_the_stack(c["TagList"])}
    known |= {i["DBInstanceArn"] for i in rds.describe_db_instances()["DBInstances"] if of_the_stack(i["TagList"])}

    def relay(event: dict[str, Any]) -> None:
        line = _rds_event_line(event)
        if line is None or not event.get("resources"):
            return
        arn = event["resources"][0]
        if arn not in known:
            try:
                tags = rds.list_tags_for_resource(ResourceName=arn)["TagList"]
            except Exception:  # gone before its first event reached us: not one of the stack's
                return
            if not of_the_stack(tags):
                return
            known.add(arn)
        send(line)

    return relay


def _control(state_file: Path, command: str, request: dict[str, Any]) -> Iterator[str]:
    from aurora_clone.target import START_HINT, running_world

    world = running_world(state_file)
    if world is None:
        raise SystemExit(f"No local world is running: {START_HINT}.")
    print(f"aurora-clone: acting on {world.description}", file=sys.stderr, flush=True)
    call = urllib.request.Request(f"{world.control_url}/{command}", data=json.dumps(request).encode(), method="POST")
    try:
        with urllib.request.urlopen(call) as answer:
            for raw in answer:
                yield raw.decode().rstrip("\n")
    except OSError as error:
        raise SystemExit(
            f"The local world stopped answering ({error}); is `aurora-clone local serve` running?"
        ) from None


def _stream(lines: Iterator[str]) -> int:
    """Print what the world sends as it comes; its last line, ``EXIT <status>``, is the exit status."""
    status = 1
    for line in lines:
        if line.startswith("EXIT "):
            status = int(line.removeprefix("EXIT "))
        elif line.startswith("ERROR "):
            print(line.removeprefix("ERROR "), file=sys.stderr, flush=True)
        else:
            print(line, flush=True)
    return status


# -- pool -----------------------------------------------------------------------------------------------


def _quiet_logger() -> logging.Logger:
    """The pool's log lines are for CloudWatch; on a terminal the printed plan and results say it all."""
    log = logging.getLogger("aurora_clone.cli.pool")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
    log.propagate = False
    return log


def _slot_limit(given: int | None) -> int:
    if given is None:
        return settings.clone_slot_limit
    if not 1 <= given <= 15:
        raise SystemExit(f"--slot-limit must be from 1 to 15, got {given}")
    return given


def pool_status(source_id: str, slot_limit: int, store: RequestStore) -> int:
    """The source and its copies as a table, with the clone slots each has used and left."""
    from aurora_clone.ownership import FROM_WARM_POOL_TAG, SOURCE_TAG
    from aurora_clone.pool.slots import free_slots, slots_used
    from aurora_clone.pool_runner import gather
    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.timespec import format_duration, format_timestamp

    try:
        snapshot = gather(RdsGateway(), store)
    except RdsError as error:
        print(error, file=sys.stderr)
        return 1
    now = process_clock.utcnow()
    source = snapshot.get(source_id)
    members = [(source, "source")] if source is not None else []
    members += [(copy, "copy") for copy in snapshot.copies_of(source_id)]
    members += [(warm, f"warm {warm.warm_pool}") for warm in snapshot.warm_clones_of(source_id)]
    if not members:
        print(f"No DB cluster '{source_id}' and no copies of it in this account and Region.", file=sys.stderr)
        return 1
    header = ("CLUSTER", "ROLE", "STATUS", "INSTANCES", "AGE", "DATA TIME", "SLOTS USED", "FREE")
    rows = [header]
    free_now = 0
    for cluster, role in members:
        used = slots_used(cluster, snapshot)
        free = free_slots(cluster, snapshot, slot_limit)
        clone_source = role in ("source", "copy")  # a warm clone is in its source's family, never cloned itself
        if cluster.accepts_clones and clone_source:
            free_now += free
        age = max(timedelta(0), now - cluster.created) // timedelta(minutes=1) * timedelta(minutes=1)
        rows.append(
            (
                cluster.identifier,
                role,
                cluster.status,
                "?" if cluster.instance_count is None else str(cluster.instance_count),
                format_duration(age),
                "live" if role == "source" else format_timestamp(cluster.data_time),  # warm: its data's time
                f"{used}/{slot_limit}" if clone_source else "-",
                str(free) if clone_source else "-",
            )
        )
    _print_table(rows)
    if source is None:
        print(f"\nThe source '{source_id}' does not exist; its copies are listed.")
    print(f"\nClone slots free now: {free_now} (on clusters that are available with an instance).")
    warm = snapshot.warm_clones_of(source_id)
    kept = _warm_counts(source_id, slot_limit)
    for shape in sorted({cluster.warm_pool or "" for cluster in warm} | set(kept)):
        of_shape = [cluster for cluster in warm if cluster.warm_pool == shape]
        ready = sum(1 for cluster in of_shape if cluster.accepts_clones)
        fill = f"{ready} of {kept[shape]} ready" if shape in kept else f"{ready} ready, no longer in the pool document"
        print(f"Warm pool '{shape}': {fill} ({len(of_shape)} unclaimed warm clone(s), those not ready being made).")
    claimed = [
        cluster.identifier
        for cluster in snapshot
        if cluster.tags.get(FROM_WARM_POOL_TAG) and cluster.tags.get(SOURCE_TAG, "").lower() == source_id.lower()
    ]
    if claimed:
        print(f"Claimed from warm pools, now stacks' clones: {', '.join(sorted(claimed))}")
    ignored = [
        cluster.identifier
        for cluster in snapshot
        if (cluster.copy_of or "").lower() == source_id.lower() and not cluster.made_by_tool
    ]
    if ignored:
        print(
            f"Tagged as copies of '{source_id}' but not made by this tool (never used or deleted): {', '.join(ignored)}"
        )
    return 0


def _warm_counts(source_id: str, slot_limit: int) -> dict[str, int]:
    """The warm shapes the stored pool document keeps for ``source_id``: name -> count; empty when it cannot
    be read (status still shows what exists)."""
    from aurora_clone.pool.plan import PoolConfigError, parse_pool_config
    from aurora_clone.pool_runner import PoolDocumentError, read_pool_document

    try:
        stored = read_pool_document(settings.pool_config_parameter)
        policies = parse_pool_config(stored, slot_limit=slot_limit) if stored is not None else ()
    except (PoolDocumentError, PoolConfigError):
        return {}
    return {
        shape.name: shape.count
        for policy in policies
        if policy.source_id.lower() == source_id.lower()
        for shape in policy.warm
    }


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def list_clones(store: RequestStore) -> int:
    """Every clone this tool made in the account and Region: source, stack, age, status, endpoint."""
    from aurora_clone.ledger import trusted_clusters
    from aurora_clone.naming import stack_name
    from aurora_clone.ownership import CLONED_FROM_TAG, LOGICAL_ID_TAG, SOURCE_TAG, STACK_ID_TAG
    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.timespec import format_duration

    rds = RdsGateway()
    try:
        seen = trusted_clusters(rds, store, _quiet_logger())
        clones = [c for c in seen.snapshot if c.made_by_tool and c.tags.get(STACK_ID_TAG)]
        endpoints = {
            c.identifier: (view.endpoint if (view := rds.describe_cluster(c.identifier)) else "") for c in clones
        }
    except RdsError as error:
        print(error, file=sys.stderr)
        return 1
    now = process_clock.utcnow()
    rows = [("CLONE", "SOURCE", "CLONED FROM", "STACK", "RESOURCE", "AGE", "STATUS", "ENDPOINT")]
    for clone in sorted(clones, key=lambda c: c.created):
        age = max(timedelta(0), now - clone.created) // timedelta(minutes=1) * timedelta(minutes=1)
        rows.append(
            (
                clone.identifier,
                clone.tags.get(SOURCE_TAG, ""),
                clone.tags.get(CLONED_FROM_TAG, ""),
                stack_name(clone.tags[STACK_ID_TAG]),
                clone.tags.get(LOGICAL_ID_TAG, ""),
                format_duration(age),
                clone.status,
                endpoints.get(clone.identifier, ""),
            )
        )
    _print_table(rows)
    print(f"\n{len(clones)} clone(s).")
    if seen.forged:
        print(
            f"Tagged as this tool's, but not recorded as made by it (never changed or deleted by it): "
            f"{', '.join(seen.forged)}"
        )
    return 0


def sweep(grace: str, dry_run: bool, store: RequestStore) -> int:
    """The scheduled sweep, from a laptop: delete clones whose stack is gone, or that a live stack's resource
    does not name and no pending request owns (see aurora_clone.sweep)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.sweep_runner import run_sweep
    from aurora_clone.timespec import parse_duration

    try:
        result = run_sweep(
            RdsGateway(),
            process_clock.utcnow(),
            grace=parse_duration(grace, allow_zero=True),
            dry_run=dry_run,
            log=_quiet_logger(),
            store=store,
        )
    except (RdsError, ValueError) as error:
        print(error, file=sys.stderr)
        return 1
    except (ClientError, BotoCoreError) as error:
        print(f"Could not read what the sweep needs (stacks, or the request table): {error}", file=sys.stderr)
        return 1
    for orphan in result.plan.orphans:
        verb = "would delete" if dry_run else ("deleting" if orphan.cluster_id in result.deleting else "not deleted")
        print(f"{verb}: {orphan.cluster_id}: {orphan.reason}")
    for line in result.plan.kept:
        print(f"kept: {line}")
    for cluster_id in result.forged:
        print(f"unrecorded: {cluster_id}: tagged as this tool's, but the tool has no record of making it; left alone")
    for problem in result.errors:
        print(f"error: {problem}", file=sys.stderr)
    if not result.plan.orphans and not result.plan.kept and not result.forged:
        print("No orphaned clones.")
    return 1 if result.errors else 0


def _load_pools(config: Path | None, parameter: str | None, slot_limit: int) -> tuple[PoolPolicy, ...] | None:
    """The pools of the document (a file or an SSM parameter); None when the parameter does not exist."""
    from aurora_clone.pool.plan import PoolConfigError, parse_pool_config
    from aurora_clone.pool_runner import PoolDocumentError, read_pool_document

    if config is not None:
        try:
            document = config.read_text()
        except OSError as error:
            raise SystemExit(f"Cannot read {config}: {error}") from None
    else:
        name = parameter or settings.pool_config_parameter
        try:
            stored = read_pool_document(name)
        except PoolDocumentError as error:
            raise SystemExit(str(error)) from None
        if stored is None:
            print(f"No SSM parameter '{name}': no pools.")
            return None
        document = stored
    try:
        return parse_pool_config(document, slot_limit=slot_limit)
    except PoolConfigError as error:
        raise SystemExit(
            "\n".join(["Invalid pool document:", *(f"  {problem}" for problem in error.problems)])
        ) from None


def pool_run(
    config: Path | None, parameter: str | None, slot_limit: int, store: RequestStore, *, apply: bool, dry_run: bool
) -> int:
    """``plan`` (nothing changes) or ``apply``: each pool through the scheduled function's own per-pool run."""
    from aurora_clone.pool_runner import retire_warm_clones, run_pool
    from aurora_clone.rds import RdsGateway
    from aurora_clone.timespec import format_duration

    policies = _load_pools(config, parameter, slot_limit)
    if policies is None:
        return 0
    if not policies:
        print("The document lists no pools.")
    rds = RdsGateway()
    log = _quiet_logger()
    now = process_clock.utcnow()
    failed = False
    for policy in policies:
        if not apply or dry_run:
            policy = dataclasses.replace(policy, dry_run=True)
        print(
            f"Pool '{policy.source_id}': keep {policy.spare_slots} clone slots free, copies younger than "
            f"{format_duration(policy.max_copy_age)}{' (dry run)' if policy.dry_run else ''}"
        )
        run = run_pool(policy, rds, now, log, store)
        if run.plan is not None:
            print("  Found:")
            for finding in run.plan.findings:
                print(f"    {finding}")
            for finding in run.warm.findings if run.warm else ():
                print(f"    {finding}")
            print("  Plan:" if policy.dry_run else "  Actions:")
            for action in (*run.plan.actions, *(run.warm.actions if run.warm else ())):
                print(f"    {action}")
        failed = _print_done(run.result) or failed
    if apply and not dry_run:
        # Warm clones belong to their pool: those of a source no longer in the document go.
        failed = _print_done(retire_warm_clones(policies, rds, now, log, store)) or failed
    return 1 if failed else 0


def pool_put(config: Path, parameter: str | None, slot_limit: int) -> int:
    """Check the pool document in ``config`` and store it in the SSM parameter the pool function reads (its
    schedule, the warm upkeep and the refills after claims): nothing is stored when it has a problem."""
    from aurora_clone.aws_clients import aws_client

    _load_pools(config, None, slot_limit)  # exits with every problem of an invalid document
    name = parameter or settings.pool_config_parameter
    aws_client("ssm").put_parameter(Name=name, Value=config.read_text(), Type="String", Overwrite=True)
    print(f"Stored the pool document in the SSM parameter '{name}'; the pool function reads it at its next run.")
    return 0


def _print_done(result: RunResult) -> bool:
    """What a pool run did, a line per kind; True when something failed."""
    done = [
        ("Copies requested", result.created),
        ("Writers added", result.finished),
        ("Instances being deleted", result.instances_deleted),
        ("Copies being deleted", result.deleted),
        ("Warm clones requested", result.warm_made),
        ("Warm clones ready", result.warm_ready),
        ("Warm clones being deleted", result.warm_deleted),
    ]
    for label, names in done:
        if names:
            print(f"  {label}: {', '.join(names)}")
    for error in result.errors:
        print(f"  Error: {error}", file=sys.stderr)
    return bool(result.errors)


# -- parsing ---------------------------------------------------------------------------------------------


def lint(arguments: Sequence[str]) -> int:
    """cfn-lint over users' templates with the Custom::AuroraClone rules appended; cfn-lint's exit status."""
    from aurora_clone.lint import run_cfn_lint

    return run_cfn_lint(arguments)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora-clone", description="Custom::AuroraClone tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('aurora-clone')}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    lint_command = commands.add_parser(
        "lint",
        help="check templates with cfn-lint and the Custom::AuroraClone rules",
        description="Run cfn-lint with the Custom::AuroraClone rules appended. Every argument goes to cfn-lint: "
        "templates, and any of its options (aurora-clone lint --help shows them).",
    )
    lint_command.add_argument(
        "arguments", nargs=argparse.REMAINDER, metavar="TEMPLATE|CFN-LINT-OPTION", help="passed to cfn-lint"
    )

    # Every command that talks to AWS: where it acts, and the (hidden) state file of `local serve`.
    target = argparse.ArgumentParser(add_help=False)
    target.add_argument(
        "--target",
        choices=TARGET_CHOICES,
        default="auto",
        help="where to act: the running local world (local), AWS with boto3's profile and Region (aws), or auto: "
        "AWS_ENDPOINT_URL if set, else the local world if one is running, else AWS (default: auto)",
    )
    target.add_argument("--state-file", type=Path, default=DEFAULT_STATE, help=argparse.SUPPRESS)
    target.add_argument(
        "--request-table",
        default=None,
        help="the function stack's request table: the record of what the tool made, and the pending requests "
        "(default: $REQUEST_TABLE, else the RequestTableName output of --function-stack)",
    )
    target.add_argument(
        "--function-stack",
        default="aurora-clone",
        help="the function stack whose RequestTableName output names the table (default: aurora-clone)",
    )
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument("--state-file", type=Path, default=DEFAULT_STATE, help=argparse.SUPPRESS)

    local = commands.add_parser("local", help="the embedded AWS world (no AWS account needed)")
    actions = local.add_subparsers(dest="action", required=True, metavar="ACTION")

    def world_options(command: argparse.ArgumentParser, scale: float) -> None:
        command.add_argument(
            "--function-template",
            default="template.yaml",
            help="the function stack's template (SAM), deployed into the world first (default: template.yaml)",
        )
        command.add_argument(
            "--time-scale",
            type=float,
            default=scale,
            help=f"real seconds per emulated second: {scale} makes one real second {1 / scale:.0f} emulated "
            f"seconds (default: {scale})",
        )

    demo = actions.add_parser("demo", help="create, update and delete the example stack, then show what is left")
    world_options(demo, 0.005)
    demo.add_argument(
        "--example",
        default="example/template.yaml",
        help="the stack template to run through (default: example/template.yaml)",
    )

    serve_command = actions.add_parser(
        "serve", help="keep the emulated AWS up for other terminals and tools", parents=[state]
    )
    world_options(serve_command, 0.01)
    serve_command.add_argument(
        "--source-cluster",
        action="append",
        default=None,
        metavar="ID[:ENGINE]",
        help="a source cluster to create, available with one writer instance; ENGINE is aurora-mysql or "
        "aurora-postgresql (default engine: aurora-mysql); repeat for more (default: prod-db)",
    )
    serve_command.add_argument(
        "--source-sql",
        type=Path,
        metavar="FILE",
        help="a SQL file loaded into each Aurora PostgreSQL source cluster's real PostgreSQL server, as its master "
        "user (default: a customers table with three rows)",
    )
    serve_command.add_argument(
        "--function-parameter",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter of the function stack (template.yaml), such as ConnectionCheckSubnetIds=subnet-0a (any "
        "ids: loopback is one network) or PrepareScriptLocations=arn:aws:s3:::scripts/*; repeat for more "
        "(default: none, the template's defaults)",
    )
    actions.add_parser(
        "env",
        help="print the running world's environment as export lines",
        description='Print export lines for the AWS CLI, boto3 and SDKs: eval "$(aurora-clone local env)".',
        parents=[state],
    )

    up = actions.add_parser(
        "up",
        help="create a stack in the running world, or update it; stream its events until it is done",
        parents=[state],
    )
    up.add_argument("template", help="the stack's template file")
    up.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter; repeat for more (default: the template's defaults)",
    )
    up.add_argument("--stack-name", help="the stack's name (default: the template's file name without extension)")
    up.add_argument(
        "--no-fail-on-empty-changeset",
        action="store_true",
        help="exit 0 when an update changes nothing, as `aws cloudformation deploy` does (default: exit 1)",
    )

    down = actions.add_parser(
        "down", help="delete a stack in the running world; stream its events until it is gone", parents=[state]
    )
    down.add_argument("stack", help="the stack's name")

    commands.add_parser(
        "list", help="every clone this tool made in the account and Region, with its stack and age", parents=[target]
    )
    sweep_command = commands.add_parser(
        "sweep",
        help="delete clones whose stack is gone or no longer names them, as the schedule does",
        parents=[target],
    )
    sweep_command.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    sweep_command.add_argument(
        "--grace",
        default="PT1H",
        help="leave clones younger than this, an ISO-8601 duration such as PT30M (default: PT1H)",
    )

    pool = commands.add_parser("pool", help="the copy pool: status, plan and apply, against AWS or the local world")
    pool_actions = pool.add_subparsers(dest="action", required=True, metavar="ACTION")
    limit_help = "clone slots per cluster, 1-15 (default: $CLONE_SLOT_LIMIT, else 15)"
    status = pool_actions.add_parser(
        "status", help="the source and its copies, with their clone slots", parents=[target]
    )
    status.add_argument("source", help="the source DB cluster identifier")
    status.add_argument("--slot-limit", type=int, help=limit_help)
    for name, text in (("plan", "what the scheduled run would do now, and why"), ("apply", "do it now")):
        command = pool_actions.add_parser(name, help=text, parents=[target])
        document = command.add_mutually_exclusive_group()
        document.add_argument("--config", type=Path, help="the pool document as a JSON file (default: --parameter)")
        document.add_argument(
            "--parameter",
            help="the SSM parameter holding the pool document "
            "(default: $POOL_CONFIG_PARAMETER, else /aurora-clone/pools)",
        )
        command.add_argument("--slot-limit", type=int, help=limit_help)
        if name == "apply":
            command.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    put = pool_actions.add_parser(
        "put", help="check a pool document and store it in the SSM parameter the pool function reads", parents=[target]
    )
    put.add_argument(
        "--config", type=Path, required=True, help="the pool document as a JSON file (required, no default)"
    )
    put.add_argument(
        "--parameter",
        help="the SSM parameter to store it in (default: $POOL_CONFIG_PARAMETER, else /aurora-clone/pools)",
    )
    put.add_argument("--slot-limit", type=int, help=limit_help)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["lint"]:  # the rest is cfn-lint's, options first included (argparse would claim those)
        return lint(given[1:])
    args = build_parser().parse_args(given)
    try:
        return _run(args)
    except KeyboardInterrupt:
        return 130
    except Exception as error:
        message = _user_error(error)
        if message is None:
            raise
        print(f"aurora-clone: {message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace) -> int:
    if args.command == "local":
        return _run_local(args)
    from aurora_clone.target import choose_target

    target = choose_target(args.target, args.state_file)
    target.apply()
    print(f"aurora-clone: acting on {target.description}", file=sys.stderr)
    from aurora_clone.request_store import RequestStore

    if args.command == "pool" and args.action == "put":  # SSM only: no table needed
        return pool_put(args.config, args.parameter, _slot_limit(args.slot_limit))
    # The table holds the tool's record of what it made: every command below reads it.
    table = args.request_table or settings.request_table_given or _request_table(args.function_stack, target)
    store = RequestStore(table=table)
    if args.command == "list":
        return list_clones(store)
    if args.command == "sweep":
        return sweep(args.grace, args.dry_run, store)
    limit = _slot_limit(args.slot_limit)
    if args.action == "status":
        return pool_status(args.source, limit, store)
    apply = args.action == "apply"
    return pool_run(args.config, args.parameter, limit, store, apply=apply, dry_run=apply and args.dry_run)


def _run_local(args: argparse.Namespace) -> int:
    if args.action == "demo":
        return run_demo(args.function_template, args.example, args.time_scale)
    if args.action == "serve":
        sources = args.source_cluster or ["prod-db"]
        return serve(
            args.function_template,
            args.time_scale,
            sources,
            args.state_file,
            args.source_sql,
            _parameters(args.function_parameter, "--function-parameter"),
        )
    if args.action == "env":
        return print_environment(args.state_file)
    if args.action == "up":
        name = args.stack_name or Path(args.template).stem
        try:
            body = Path(args.template).read_text()
        except OSError as error:
            raise SystemExit(f"Cannot read the template {args.template}: {error.strerror}") from None
        request = {
            "stack": name,
            "template": args.template,
            "template_body": body,
            "parameters": _parameters(args.param),
            "no_fail_on_empty_changeset": args.no_fail_on_empty_changeset,
        }
        return _stream(_control(args.state_file, "up", request))
    return _stream(_control(args.state_file, "down", {"stack": args.stack}))


def _request_table(function_stack: str, target: Any) -> str:
    """The RequestTableName output of the function stack: from the running world's state, else from
    CloudFormation."""
    if target.world is not None and target.world.function_stack == function_stack:
        table = target.world.outputs.get("RequestTableName")
        if table:
            return str(table)
    from aurora_clone.aws_clients import aws_client

    stacks = aws_client("cloudformation").describe_stacks(StackName=function_stack)["Stacks"]
    outputs = {output["OutputKey"]: output["OutputValue"] for output in stacks[0].get("Outputs", [])}
    if "RequestTableName" not in outputs:
        raise SystemExit(
            f"The stack '{function_stack}' has no RequestTableName output: give --request-table or --function-stack."
        )
    return str(outputs["RequestTableName"])


def _user_error(error: Exception) -> str | None:
    """One line for a mistake or a missing piece a user can fix; None for a bug (shown with its traceback)."""
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    from aurora_clone.target import START_HINT, TargetError

    if isinstance(error, TargetError):
        return str(error)
    if isinstance(error, NoRegionError):
        return f"No AWS Region: set AWS_DEFAULT_REGION (or a profile's region), or {START_HINT}."
    if isinstance(error, NoCredentialsError):
        return f"No AWS credentials: configure a profile (aws configure), or {START_HINT}."
    if isinstance(error, EndpointConnectionError):
        return (
            f"Cannot reach {error.kwargs.get('endpoint_url', 'the endpoint')}: is the local world (or the network) up?"
        )
    if isinstance(error, ClientError):
        return f"{error_code(error) or 'Error'}: {error_message(error) or error}"
    if isinstance(error, BotoCoreError):
        return str(error)
    return None


if __name__ == "__main__":
    sys.exit(main())
