"""``aurora-clone``: the command line.

``aurora-clone local demo``            the whole lifecycle of the example stack in the embedded world
``aurora-clone local serve``           keep the embedded world up; prints its endpoint
``aurora-clone local up TEMPLATE``     create (or update) a stack in the served world
``aurora-clone local down STACK``      delete it
``aurora-clone pool status SOURCE``    the source and its copies: status, age, data time, clone slots
``aurora-clone pool plan``             what the copy pool's scheduled run would do now, and why
``aurora-clone pool apply``            do it (``--dry-run``: only say it), as the scheduled run does
``aurora-clone lint TEMPLATE...``      cfn-lint with the Custom::AuroraClone rules (cfn-lint's options pass through)

The ``pool`` commands use boto3's default environment: AWS, or the local world with the environment that
``aurora-clone local serve`` prints.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.server
import importlib.metadata
import json
import logging
import os
import signal
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aurora_clone.pool.plan import PoolPolicy

DEFAULT_STATE = Path(os.environ.get("AURORA_CLONE_LOCAL_STATE", Path.home() / ".aurora-clone" / "local.json"))


def _say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _parameters(pairs: Sequence[str]) -> dict[str, str]:
    parameters = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"--param takes KEY=VALUE, got '{pair}'")
        parameters[key] = value
    return parameters


# -- demo -------------------------------------------------------------------------------------------------


def run_demo(function_template: str, example: str, time_scale: float) -> int:
    """Create, update and delete the example stack; show that nothing is left. Exit status 0 on success."""
    from aurora_clone.local.session import LocalSession

    started = time.monotonic()
    _say(f"Starting the emulated AWS (one real second is {1 / time_scale:.0f} emulated seconds)")
    with LocalSession(function_template, time_scale=time_scale, printer=lambda line: print(line, flush=True)) as local:
        print(f"Endpoint: {local.world.endpoint_url}")
        local.world.subscribe(_print_rds_event)
        _say("Creating the source Aurora MySQL cluster 'prod-db' with one writer instance")
        local.world.create_source_cluster("prod-db")
        print("prod-db is available")
        print(f"Function stack '{local.function_stack_name}' deployed from {function_template}")
        cfn = local.cloudformation
        params = {"SourceClusterId": "prod-db", "CloneFunctionStackName": local.function_stack_name}

        _say(f"Creating the example stack from {example}")
        stack = cfn.create_stack("integration-test", example, params)
        if stack.status != "CREATE_COMPLETE":
            return _failed(stack.status)
        for key, value in stack.outputs.items():
            print(f"  {key:10} {value}")

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


def _print_rds_event(event: dict[str, Any]) -> None:
    """RDS's own events, as they reach EventBridge: the progress between stack events."""
    detail = event.get("detail", {})
    if event.get("source") == "aws.rds":
        when = str(detail.get("Date", ""))[11:19]
        print(f"{when}  RDS  {detail.get('SourceIdentifier')}  {detail.get('Message')}", flush=True)


def _failed(what: str) -> int:
    print(f"\nThe demo failed: {what}", file=sys.stderr)
    return 1


# -- serve / up / down ---------------------------------------------------------------------------------


def serve(function_template: str, time_scale: float, sources: Sequence[str], state_file: Path) -> int:
    """Keep the world up until interrupted; ``up`` and ``down`` reach it through a loopback control port."""
    from aurora_clone.local.session import LocalSession

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalSession(function_template, time_scale=time_scale, printer=lambda line: print(line, flush=True)) as local:
        for source in sources:
            local.world.create_source_cluster(source)
        control = _control_server(local)
        threading.Thread(target=control.serve_forever, name="local-control", daemon=True).start()
        state_file.parent.mkdir(parents=True, exist_ok=True)
        state_file.write_text(json.dumps({"control": f"http://127.0.0.1:{control.server_address[1]}"}))
        print(f"The emulated AWS is up at {local.world.endpoint_url} (sources: {', '.join(sources) or 'none'}).")
        print("Point the AWS CLI or your own tests at it with:")
        for key, value in local.world.client_env().items():
            print(f"  export {key}={value}")
        print("Then: aurora-clone local up TEMPLATE --param KEY=VALUE ...   (Ctrl-C stops the world)", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            control.shutdown()
            state_file.unlink(missing_ok=True)
    return 0


def _control_server(local: Any) -> http.server.ThreadingHTTPServer:
    class Control(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.end_headers()

            def write(line: str) -> None:
                self.wfile.write((line + "\n").encode())
                self.wfile.flush()

            local.add_sink(write)
            try:
                stack = _operate(local.cloudformation, self.path, request)
                for key, value in stack.outputs.items():
                    write(f"  {key:10} {value}")
                write(f"RESULT {stack.status}")
            except Exception as error:  # the client shows it; the world keeps serving
                write(f"ERROR {error}")
            finally:
                local.remove_sink(write)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return http.server.ThreadingHTTPServer(("127.0.0.1", 0), Control)


def _operate(cloudformation: Any, path: str, request: dict[str, Any]) -> Any:
    if path == "/up":
        name, template, parameters = request["stack"], request["template"], request["parameters"]
        if name in cloudformation.stacks:
            return cloudformation.update_stack(name, template, parameters)
        return cloudformation.create_stack(name, template, parameters)
    if path == "/down":
        return cloudformation.delete_stack(request["stack"])
    raise ValueError(f"unknown control command {path}")


def _control(state_file: Path, command: str, request: dict[str, Any]) -> Iterator[str]:
    if not state_file.exists():
        raise SystemExit("No local world is running: start one with `aurora-clone local serve` first.")
    control = json.loads(state_file.read_text())["control"]
    call = urllib.request.Request(f"{control}/{command}", data=json.dumps(request).encode(), method="POST")
    try:
        with urllib.request.urlopen(call) as answer:
            for raw in answer:
                yield raw.decode().rstrip("\n")
    except OSError as error:
        raise SystemExit(f"The local world at {control} does not answer ({error}); is `local serve` running?") from None


def _stream(lines: Iterator[str], good: Callable[[str], bool]) -> int:
    status = 1
    for line in lines:
        if line.startswith("RESULT "):
            status = 0 if good(line.removeprefix("RESULT ")) else 1
            print(f"Stack status: {line.removeprefix('RESULT ')}")
        elif line.startswith("ERROR "):
            print(line.removeprefix("ERROR "), file=sys.stderr)
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
    from aurora_clone.settings import clone_slot_limit

    if given is None:
        return clone_slot_limit()
    if not 1 <= given <= 15:
        raise SystemExit(f"--slot-limit must be from 1 to 15, got {given}")
    return given


def pool_status(source_id: str, slot_limit: int) -> int:
    """The source and its copies as a table, with the clone slots each has used and left."""
    from aurora_clone.pool.runner import gather
    from aurora_clone.pool.slots import free_slots, slots_used
    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.timespec import format_duration, format_timestamp

    try:
        snapshot = gather(RdsGateway())
    except RdsError as error:
        print(error, file=sys.stderr)
        return 1
    now = datetime.now(UTC)
    source = snapshot.get(source_id)
    members = [(source, "source")] if source is not None else []
    members += [(copy, "copy") for copy in snapshot.copies_of(source_id)]
    if not members:
        print(f"No DB cluster '{source_id}' and no copies of it in this account and Region.", file=sys.stderr)
        return 1
    header = ("CLUSTER", "ROLE", "STATUS", "INSTANCES", "AGE", "DATA TIME", "SLOTS USED", "FREE")
    rows = [header]
    free_now = 0
    for cluster, role in members:
        used = slots_used(cluster, snapshot)
        free = free_slots(cluster, snapshot, slot_limit)
        if cluster.accepts_clones:
            free_now += free
        age = max(timedelta(0), now - cluster.created) // timedelta(minutes=1) * timedelta(minutes=1)
        rows.append(
            (
                cluster.identifier,
                role,
                cluster.status,
                "?" if cluster.instance_count is None else str(cluster.instance_count),
                format_duration(age),
                "live" if role == "source" else format_timestamp(cluster.data_time),
                f"{used}/{slot_limit}",
                str(free),
            )
        )
    _print_table(rows)
    if source is None:
        print(f"\nThe source '{source_id}' does not exist; its copies are listed.")
    print(f"\nClone slots free now: {free_now} (on clusters that are available with an instance).")
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


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[column]) for row in rows) for column in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def list_clones() -> int:
    """Every clone this tool made in the account and Region: source, stack, age, status, endpoint."""
    from aurora_clone.naming import stack_name
    from aurora_clone.ownership import CLONED_FROM_TAG, LOGICAL_ID_TAG, SOURCE_TAG, STACK_ID_TAG
    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.timespec import format_duration

    rds = RdsGateway()
    try:
        clones = [c for c in rds.list_clusters() if c.made_by_tool and c.tags.get(STACK_ID_TAG)]
        endpoints = {
            c.identifier: (view.endpoint if (view := rds.describe_cluster(c.identifier)) else "") for c in clones
        }
    except RdsError as error:
        print(error, file=sys.stderr)
        return 1
    now = datetime.now(UTC)
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
    return 0


def sweep(grace: str, dry_run: bool, request_table: str | None = None) -> int:
    """The scheduled sweep, from a laptop: delete clones whose stack is gone, or that a live stack's resource
    does not name and no pending request owns (see aurora_clone.sweep)."""
    from botocore.exceptions import BotoCoreError, ClientError

    from aurora_clone.maintenance import run_sweep
    from aurora_clone.rds import RdsError, RdsGateway
    from aurora_clone.request_store import RequestStore
    from aurora_clone.timespec import parse_duration

    try:
        result = run_sweep(
            RdsGateway(),
            datetime.now(UTC),
            grace=parse_duration(grace, allow_zero=True),
            dry_run=dry_run,
            owner=RequestStore(table=request_table).owner,
            log=_quiet_logger(),
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
    for problem in result.errors:
        print(f"error: {problem}", file=sys.stderr)
    if not result.plan.orphans and not result.plan.kept:
        print("No orphaned clones.")
    return 1 if result.errors else 0


def _load_pools(config: Path | None, parameter: str | None, slot_limit: int) -> tuple[PoolPolicy, ...] | None:
    """The pools of the document (a file or an SSM parameter); None when the parameter does not exist."""
    from aurora_clone.maintenance import DEFAULT_POOL_PARAMETER, PoolDocumentError, read_pool_document
    from aurora_clone.pool.plan import PoolConfigError, parse_pool_config

    if config is not None:
        try:
            document = config.read_text()
        except OSError as error:
            raise SystemExit(f"Cannot read {config}: {error}") from None
    else:
        name = parameter or os.environ.get("POOL_CONFIG_PARAMETER") or DEFAULT_POOL_PARAMETER
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


def pool_run(config: Path | None, parameter: str | None, slot_limit: int, *, apply: bool, dry_run: bool) -> int:
    """``plan`` (nothing changes) or ``apply``: each pool through the scheduled function's own per-pool run."""
    from aurora_clone.maintenance import run_pool
    from aurora_clone.rds import RdsGateway
    from aurora_clone.timespec import format_duration

    policies = _load_pools(config, parameter, slot_limit)
    if not policies:
        if policies is not None:
            print("The document lists no pools.")
        return 0
    rds = RdsGateway()
    log = _quiet_logger()
    now = datetime.now(UTC)
    failed = False
    for policy in policies:
        if not apply or dry_run:
            policy = dataclasses.replace(policy, dry_run=True)
        print(
            f"Pool '{policy.source_id}': keep {policy.spare_slots} clone slots free, copies younger than "
            f"{format_duration(policy.max_copy_age)}{' (dry run)' if policy.dry_run else ''}"
        )
        run = run_pool(policy, rds, now, log)
        if run.plan is not None:
            print("  Found:")
            for finding in run.plan.findings:
                print(f"    {finding}")
            print("  Plan:" if policy.dry_run else "  Actions:")
            for action in run.plan.actions:
                print(f"    {action}")
        result = run.result
        done = [
            ("Copies requested", result.created),
            ("Writers added", result.finished),
            ("Instances being deleted", result.instances_deleted),
            ("Copies being deleted", result.deleted),
        ]
        for label, names in done:
            if names:
                print(f"  {label}: {', '.join(names)}")
        for error in result.errors:
            print(f"  Error: {error}", file=sys.stderr)
        failed = failed or bool(result.errors)
    return 1 if failed else 0


# -- parsing ---------------------------------------------------------------------------------------------


def lint(arguments: Sequence[str]) -> int:
    """cfn-lint over users' templates with the Custom::AuroraClone rules appended; cfn-lint's exit status."""
    from aurora_clone.lint import run_cfn_lint

    return run_cfn_lint(arguments)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aurora-clone", description="Custom::AuroraClone tools.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {importlib.metadata.version('aurora-clone')}")
    commands = parser.add_subparsers(dest="command", required=True)
    lint_command = commands.add_parser(
        "lint",
        help="check templates with cfn-lint and the Custom::AuroraClone rules",
        description="Run cfn-lint with the Custom::AuroraClone rules appended. Every argument goes to cfn-lint: "
        "templates, and any of its options (aurora-clone lint --help shows them).",
    )
    lint_command.add_argument("arguments", nargs=argparse.REMAINDER, metavar="TEMPLATE|CFN-LINT-OPTION")
    local = commands.add_parser("local", help="the embedded AWS world (no AWS account needed)")
    actions = local.add_subparsers(dest="action", required=True)

    def world_options(command: argparse.ArgumentParser, scale: float) -> None:
        command.add_argument("--function-template", default="template.yaml", help="the function stack (SAM)")
        command.add_argument(
            "--time-scale", type=float, default=scale, help=f"real seconds per emulated second (default {scale})"
        )

    demo = actions.add_parser("demo", help="create, update and delete the example stack")
    world_options(demo, 0.005)
    demo.add_argument("--example", default="example/template.yaml")

    serve_command = actions.add_parser("serve", help="keep the emulated AWS up and print its endpoint")
    world_options(serve_command, 0.01)
    serve_command.add_argument(
        "--source-cluster", action="append", default=None, help="source cluster(s) to create (default prod-db)"
    )

    up = actions.add_parser("up", help="create or update a stack in the served world")
    up.add_argument("template")
    up.add_argument("--param", action="append", default=[], metavar="KEY=VALUE")
    up.add_argument("--stack-name", help="default: the template's file name")

    down = actions.add_parser("down", help="delete a stack in the served world")
    down.add_argument("stack")
    for command in (serve_command, up, down):
        command.add_argument("--state-file", type=Path, default=DEFAULT_STATE, help=argparse.SUPPRESS)

    commands.add_parser("list", help="every clone this tool made in the account and Region")
    sweep_command = commands.add_parser("sweep", help="delete clones whose stack is gone (as the schedule does)")
    sweep_command.add_argument("--dry-run", action="store_true", help="say what would be deleted, delete nothing")
    sweep_command.add_argument("--grace", default="PT1H", help="leave clones younger than this (ISO-8601, PT1H)")
    sweep_command.add_argument(
        "--request-table",
        default=None,
        help="the function stack's RequestTableName output (default: $REQUEST_TABLE, else aurora-clone-requests)",
    )

    pool = commands.add_parser("pool", help="the copy pool: status, plan and apply, against AWS or the local world")
    pool_actions = pool.add_subparsers(dest="action", required=True)
    limit_help = "clone slots per cluster (default: CLONE_SLOT_LIMIT or 15)"
    status = pool_actions.add_parser("status", help="the source and its copies, with their clone slots")
    status.add_argument("source", help="the source DB cluster identifier")
    status.add_argument("--slot-limit", type=int, help=limit_help)
    for name, text in (("plan", "what the scheduled run would do now, and why"), ("apply", "do it now")):
        command = pool_actions.add_parser(name, help=text)
        document = command.add_mutually_exclusive_group()
        document.add_argument("--config", type=Path, help="the pool document as a JSON file")
        document.add_argument(
            "--parameter", help="the SSM parameter holding it (default: POOL_CONFIG_PARAMETER or /aurora-clone/pools)"
        )
        command.add_argument("--slot-limit", type=int, help=limit_help)
        if name == "apply":
            command.add_argument("--dry-run", action="store_true", help="say what would be done, change nothing")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    if given[:1] == ["lint"]:  # the rest is cfn-lint's, options first included (argparse would claim those)
        return lint(given[1:])
    args = build_parser().parse_args(given)
    if args.command == "list":
        return list_clones()
    if args.command == "sweep":
        return sweep(args.grace, args.dry_run, args.request_table)
    if args.command == "pool":
        limit = _slot_limit(args.slot_limit)
        if args.action == "status":
            return pool_status(args.source, limit)
        apply = args.action == "apply"
        return pool_run(args.config, args.parameter, limit, apply=apply, dry_run=apply and args.dry_run)
    if args.action == "demo":
        return run_demo(args.function_template, args.example, args.time_scale)
    if args.action == "serve":
        return serve(args.function_template, args.time_scale, args.source_cluster or ["prod-db"], args.state_file)
    if args.action == "up":
        name = args.stack_name or Path(args.template).stem
        request = {"stack": name, "template": str(Path(args.template).resolve()), "parameters": _parameters(args.param)}
        return _stream(_control(args.state_file, "up", request), lambda s: s in ("CREATE_COMPLETE", "UPDATE_COMPLETE"))
    return _stream(_control(args.state_file, "down", {"stack": args.stack}), lambda s: s == "DELETE_COMPLETE")


if __name__ == "__main__":
    sys.exit(main())
