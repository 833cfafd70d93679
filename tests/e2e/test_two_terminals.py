"""The local world as a new user works in it: ``aurora-clone local serve`` in one terminal, every other
command in a second one, with no pasted exports (a fresh HOME and no AWS settings)."""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
SERVE_SECONDS = 180
COMMAND_SECONDS = 300


def fresh_terminal(home: Path) -> dict[str, str]:
    """A new shell of the same user: PATH and locale, a HOME of its own, nothing of AWS."""
    env = {name: value for name, value in os.environ.items() if not name.startswith(("AWS_", "AURORA_CLONE_"))}
    env["HOME"] = str(home)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["AWS_EC2_METADATA_DISABLED"] = "true"  # no instance metadata to wait for on a laptop
    return env


@dataclass
class Terminal:
    env: dict[str, str]

    def run(self, *command: str, timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout)

    def aurora_clone(self, *args: str, timeout: float = COMMAND_SECONDS) -> subprocess.CompletedProcess[str]:
        return self.run(str(BIN / "aurora-clone"), *args, timeout=timeout)


@dataclass
class Served:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    banner_done: threading.Event = field(default_factory=threading.Event)

    def read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if line.startswith("What happens in the world is shown below"):
                self.banner_done.set()
        self.banner_done.set()

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("home")


@pytest.fixture(scope="module")
def served(home: Path) -> Iterator[Served]:
    """Terminal 1: the world, with a MySQL and a PostgreSQL source."""
    process = subprocess.Popen(
        [
            str(BIN / "aurora-clone"),
            *("local", "serve", "--time-scale", "0.002"),
            *("--source-cluster", "prod-db", "--source-cluster", "pg-db:aurora-postgresql"),
        ],
        cwd=ROOT,
        env=fresh_terminal(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    world = Served(process)
    threading.Thread(target=world.read, daemon=True).start()
    try:
        assert world.banner_done.wait(SERVE_SECONDS), world.log
        assert process.poll() is None, world.log
        yield world
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)  # Ctrl-C
            process.wait(timeout=60)


@pytest.fixture(scope="module")
def terminal(home: Path, served: Served) -> Terminal:
    """Terminal 2, opened after the world is up."""
    return Terminal(fresh_terminal(home))


@pytest.fixture(scope="module")
def mysql_stack(terminal: Terminal) -> subprocess.CompletedProcess[str]:
    return terminal.aurora_clone(
        "local", "up", "example/template.yaml", "--stack-name", "it-mysql", "--param", "SourceClusterId=prod-db"
    )


def exported(terminal: Terminal) -> dict[str, str]:
    """What ``eval "$(aurora-clone local env)"`` puts in the shell."""
    printed = terminal.aurora_clone("local", "env")
    assert printed.returncode == 0, printed.stderr
    pairs = [shlex.split(line.removeprefix("export "))[0] for line in printed.stdout.splitlines()]
    return dict(pair.split("=", 1) for pair in pairs)


def test_the_serve_terminal_says_how_to_use_the_world(served: Served) -> None:
    assert re.search(r"The emulated AWS is up at https://localhost:\d+", served.log)
    assert "prod-db (aurora-mysql), pg-db (aurora-postgresql)" in served.log
    assert 'eval "$(aurora-clone local env)"' in served.log


def test_commands_find_the_world_without_exports_and_say_so(terminal: Terminal) -> None:
    listed = terminal.aurora_clone("list")

    assert listed.returncode == 0, listed.stderr
    assert "acting on the local world at https://localhost:" in listed.stderr
    assert "0 clone(s)." in listed.stdout or "clone(s)." in listed.stdout


def test_up_streams_stack_and_rds_events_as_they_happen_then_the_outputs(
    mysql_stack: subprocess.CompletedProcess[str],
) -> None:
    assert mysql_stack.returncode == 0, mysql_stack.stdout + mysql_stack.stderr
    lines = mysql_stack.stdout.splitlines()
    rds = [n for n, line in enumerate(lines) if "  RDS  " in line]
    done = next(n for n, line in enumerate(lines) if "TestDatabase" in line and "CREATE_COMPLETE" in line)
    assert rds and rds[0] < done, "RDS events come between the stack's events"
    assert re.match(r"\d\d:\d\d:\d\d  it-mysql  it-mysql  AWS::CloudFormation::Stack  CREATE_IN_PROGRESS", lines[0])
    assert any(line.strip().startswith("Endpoint ") for line in lines)
    assert lines[-1] == "Stack status: CREATE_COMPLETE"


def test_an_update_that_changes_nothing_fails_unless_told_otherwise(
    terminal: Terminal, mysql_stack: subprocess.CompletedProcess[str]
) -> None:
    args = ("local", "up", "example/template.yaml", "--stack-name", "it-mysql", "--param", "SourceClusterId=prod-db")

    strict = terminal.aurora_clone(*args)
    lenient = terminal.aurora_clone(*args, "--no-fail-on-empty-changeset")

    assert strict.returncode == 1 and "No changes to deploy" in strict.stdout
    assert lenient.returncode == 0 and "No changes to deploy" in lenient.stdout


def test_ages_are_world_time_and_printed_as_iso_8601(
    terminal: Terminal, mysql_stack: subprocess.CompletedProcess[str]
) -> None:
    clone = next(line for line in mysql_stack.stdout.splitlines() if line.strip().startswith("ClusterId")).split()[1]

    listed = terminal.aurora_clone("list")
    status = terminal.aurora_clone("pool", "status", "prod-db")

    row = next(line for line in listed.stdout.splitlines() if line.startswith(clone))
    # A clone and its instance take about 12 emulated minutes to be ready: its age is at least that.
    age = re.search(r"\bP(?:T(?:(\d+)H)?(?:(\d+)M)?)\b", row)
    assert age is not None and age.group(0) != "PT0S", row
    assert int(age.group(1) or 0) * 60 + int(age.group(2) or 0) >= 10, row
    assert status.returncode == 0, status.stderr
    assert re.search(rf"^{clone}\s+copy|^prod-db\s+source\s+available\s+1\s+P", status.stdout, re.MULTILINE)


def test_the_sweep_leaves_a_live_stack_s_clone_alone(
    terminal: Terminal, mysql_stack: subprocess.CompletedProcess[str]
) -> None:
    clone = next(line for line in mysql_stack.stdout.splitlines() if line.strip().startswith("ClusterId")).split()[1]

    swept = terminal.aurora_clone("sweep", "--dry-run", "--grace", "PT0S")

    assert swept.returncode == 0, swept.stdout + swept.stderr
    assert f"would delete: {clone}" not in swept.stdout


def test_the_printed_environment_works_for_boto3_and_the_aws_cli(
    terminal: Terminal, mysql_stack: subprocess.CompletedProcess[str]
) -> None:
    env = {**terminal.env, **exported(terminal)}
    shell = Terminal(env)

    described = shell.run("aws", "cloudformation", "describe-stacks", "--stack-name", "it-mysql")
    # The AWS CLI v1 sends rds (in us-east-1) and sqs to fixed endpoints unless --endpoint-url is given.
    clusters = shell.run("aws", "rds", "describe-db-clusters", "--endpoint-url", env["AWS_ENDPOINT_URL"])
    tables = shell.run("aws", "dynamodb", "list-tables")

    assert described.returncode == 0 and "CREATE_COMPLETE" in described.stdout, described.stderr
    assert clusters.returncode == 0 and "prod-db" in clusters.stdout, clusters.stderr
    assert tables.returncode == 0 and "TableNames" in tables.stdout, tables.stderr
    # boto3 takes everything from the environment, as a user's own tests would.
    script = (
        "import boto3\n"
        "print(len(boto3.client('sqs').list_queues()['QueueUrls']), len(boto3.client('events').list_rules()['Rules']),"
        " len(boto3.client('lambda').list_functions()['Functions']),"
        " len(boto3.client('rds').describe_db_clusters()['DBClusters']),"
        " boto3.client('cloudformation').describe_stacks(StackName='it-mysql')['Stacks'][0]['StackStatus'])\n"
    )
    from_boto3 = shell.run(sys.executable, "-c", script)
    assert from_boto3.returncode == 0, from_boto3.stderr
    queues, rules, functions, clusters_seen, status = from_boto3.stdout.split()
    assert min(int(queues), int(rules), int(functions), int(clusters_seen)) > 0 and status == "CREATE_COMPLETE"


def test_a_postgresql_source_is_cloned_like_a_mysql_one(terminal: Terminal) -> None:
    created = terminal.aurora_clone(
        "local", "up", "example/template.yaml", "--stack-name", "it-pg", "--param", "SourceClusterId=pg-db"
    )
    deleted = terminal.aurora_clone("local", "down", "it-pg")

    assert created.returncode == 0, created.stdout + created.stderr
    assert any(line.split() == ["Port", "5432"] for line in created.stdout.splitlines()), created.stdout
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr


def test_down_streams_the_deletion_and_prints_no_outputs(
    terminal: Terminal, mysql_stack: subprocess.CompletedProcess[str], served: Served
) -> None:
    deleted = terminal.aurora_clone("local", "down", "it-mysql")

    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert "DELETE_IN_PROGRESS" in deleted.stdout and "  RDS  " in deleted.stdout
    assert deleted.stdout.splitlines()[-1] == "Stack status: DELETE_COMPLETE"
    assert "Endpoint" not in deleted.stdout
    # The first terminal showed it all too: the world's log.
    assert "it-mysql  TestDatabase  Custom::AuroraClone  DELETE_COMPLETE" in served.log
    assert "  RDS  " in served.log


def test_once_the_world_is_stopped_commands_say_what_is_missing_in_one_line(
    home: Path, served: Served, terminal: Terminal
) -> None:
    served.process.send_signal(signal.SIGINT)
    assert served.process.wait(timeout=60) == 0
    assert not (home / ".aurora-clone" / "local.json").exists()

    listed = terminal.aurora_clone("list", "--target", "local")
    up = terminal.aurora_clone("local", "up", "example/template.yaml")
    on_aws = terminal.aurora_clone("list")

    for result in (listed, up, on_aws):
        assert result.returncode != 0
        assert "Traceback" not in result.stderr
    assert "No local world is running" in listed.stderr and "aurora-clone local serve" in up.stderr
    assert "No AWS Region" in on_aws.stderr and len(on_aws.stderr.strip().splitlines()) == 1
