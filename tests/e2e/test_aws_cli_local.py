"""The AWS CLI against the local world, as a user runs it with the environment the world gives
(``client_env()``): ``aws cloudformation deploy`` (create, then no changes, with and without
``--no-fail-on-empty-changeset``), ``describe-stacks``, ``create-stack``, ``delete-stack`` and the waits.

``aws cloudformation wait`` uses botocore's waiters, which look every 30 s: the tests give the CLI the same
waiters looking every second (``AWS_DATA_PATH`` takes precedence over botocore's own data). ``deploy``
waits for its stack with a 30 s delay of its own making, so its first create takes some 30 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import botocore.session
import pytest

from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
AWS = Path(sys.executable).with_name("aws")
TEMPLATE = textwrap.dedent(
    """\
    Parameters:
      Purpose:
        Type: String
    Resources:
      Database:
        Type: Custom::AuroraClone
        Properties:
          ServiceToken: !ImportValue aurora-clone-ServiceToken
          SourceClusterId: prod-db
          Tags:
            - Key: purpose
              Value: !Ref Purpose
    Outputs:
      ClusterId:
        Value: !GetAtt Database.ClusterId
    """
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSession]:
    with LocalSession(str(ROOT / "template.yaml"), time_scale=0.002, printer=lambda _line: None) as session:
        session.world.create_source_cluster("prod-db")
        yield session


@pytest.fixture(scope="module")
def aws_environment(local: LocalSession, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The world's environment, no user configuration, and CloudFormation's waiters looking every second."""
    data = tmp_path_factory.mktemp("aws-data")
    waiters = (
        botocore.session.get_session().get_component("data_loader").load_service_model("cloudformation", "waiters-2")
    )
    for waiter in waiters["waiters"].values():
        waiter["delay"] = 1
    version = data / "cloudformation" / "2010-05-15"
    version.mkdir(parents=True)
    (version / "waiters-2.json").write_text(json.dumps(waiters))
    environment = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    return {
        **environment,
        **local.world.client_env(),
        "AWS_DATA_PATH": str(data),
        "AWS_CONFIG_FILE": str(data / "no-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(data / "no-credentials"),
    }


def next_real_second() -> None:
    """Return once the real clock's whole second has changed. `aws cloudformation deploy` names its change
    set after it (awscli-cloudformation-package-deploy-<int(time.time())>), and an empty change set keeps its
    name, as on AWS; locally two deploys can start within one second, which on AWS they never do."""
    started = int(time.time())
    while int(time.time()) == started:
        time.sleep(0.05)


def aws(environment: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AWS), "cloudformation", *arguments], env=environment, capture_output=True, text=True, timeout=180
    )


def test_deploy_creates_the_stack_then_reports_no_changes_as_on_aws(
    local: LocalSession, aws_environment: dict[str, str], tmp_path: Path
) -> None:
    template = tmp_path / "clone.yaml"
    template.write_text(TEMPLATE)
    deploy = ("deploy", "--template-file", str(template), "--stack-name", "cli-deploy")

    created = aws(aws_environment, *deploy, "--parameter-overrides", "Purpose=cli")

    assert created.returncode == 0, created.stdout + created.stderr
    assert "Successfully created/updated stack - cli-deploy" in created.stdout
    described = aws(aws_environment, "describe-stacks", "--stack-name", "cli-deploy")
    assert described.returncode == 0, described.stderr
    (stack,) = json.loads(described.stdout)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    assert stack["Parameters"] == [{"ParameterKey": "Purpose", "ParameterValue": "cli"}]
    clone_id = stack["Outputs"][0]["OutputValue"]
    assert local.cloudformation.stack("cli-deploy").resources["Database"].physical_id == clone_id

    unchanged = aws(aws_environment, *deploy)  # Purpose: UsePreviousValue, as deploy sends it
    next_real_second()
    tolerated = aws(aws_environment, *deploy, "--no-fail-on-empty-changeset")

    assert unchanged.returncode != 0
    assert "No changes to deploy. Stack cli-deploy is up to date" in unchanged.stderr
    assert tolerated.returncode == 0, tolerated.stderr
    assert "No changes to deploy. Stack cli-deploy is up to date" in tolerated.stdout
    assert local.cloudformation.stack("cli-deploy").status == "CREATE_COMPLETE"

    deleted = aws(aws_environment, "delete-stack", "--stack-name", "cli-deploy")
    waited = aws(aws_environment, "wait", "stack-delete-complete", "--stack-name", "cli-deploy")

    assert (deleted.returncode, waited.returncode) == (0, 0), deleted.stderr + waited.stderr
    gone = aws(aws_environment, "describe-stacks", "--stack-name", "cli-deploy")
    assert gone.returncode != 0
    assert "Stack with id cli-deploy does not exist" in gone.stderr
    clusters = local.world.client("rds").describe_db_clusters()["DBClusters"]
    assert clone_id not in [cluster["DBClusterIdentifier"] for cluster in clusters]


def test_wait_commands_return_once_the_stack_has_been_created_and_deleted(
    local: LocalSession, aws_environment: dict[str, str], tmp_path: Path
) -> None:
    template = tmp_path / "clone.yaml"
    template.write_text(TEMPLATE)

    created = aws(
        aws_environment,
        "create-stack",
        "--stack-name",
        "cli-wait",
        "--template-body",
        f"file://{template}",
        "--parameters",
        "ParameterKey=Purpose,ParameterValue=wait",
    )
    waited = aws(aws_environment, "wait", "stack-create-complete", "--stack-name", "cli-wait")

    assert created.returncode == 0, created.stderr
    stack_id = json.loads(created.stdout)["StackId"]
    assert waited.returncode == 0, waited.stderr
    assert local.cloudformation.stack(stack_id).status == "CREATE_COMPLETE"

    deleted = aws(aws_environment, "delete-stack", "--stack-name", "cli-wait")
    waited = aws(aws_environment, "wait", "stack-delete-complete", "--stack-name", "cli-wait")

    assert (deleted.returncode, waited.returncode) == (0, 0), deleted.stderr + waited.stderr
    by_id = aws(aws_environment, "describe-stacks", "--stack-name", stack_id)
    assert json.loads(by_id.stdout)["Stacks"][0]["StackStatus"] == "DELETE_COMPLETE"
