"""Shared fixtures: fake credentials, moto with its gaps closed, CloudFormation's side, a source cluster."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws

from aurora_clone import handler as handler_module
from aurora_clone.engine import RequestEngine
from aurora_clone.local.world import write_certificate
from aurora_clone.pool.model import COPY_OF_TAG, DATA_TIME_TAG
from aurora_clone.rds import RdsGateway
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore
from aurora_clone.resource import CloneResource, EngineHooks
from aurora_clone.timespec import format_timestamp
from aurora_clone.wake_queue import WakeUpQueue
from tests.cloudformation import (
    ACCOUNT,
    FUNCTION_NAME,
    REGION,
    FakeCloudFormation,
    ResponseServer,
    make_engine_resources,
)
from tests.moto_gaps import AwsGaps

if TYPE_CHECKING:
    from mypy_boto3_rds.type_defs import TagTypeDef

SOURCE_ID = "prod-db"
SOURCE_INSTANCE = "prod-db-writer"


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "REQUEST_TABLE",
        "WAKE_UP_QUEUE_URL",
        "RESPONSE_ENDPOINT",
    ):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("MOTO_ACCOUNT_ID", ACCOUNT)


@pytest.fixture(scope="session")
def response_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ResponseServer]:
    cert, key = write_certificate(tmp_path_factory.mktemp("tls"))
    previous = os.environ.get("SSL_CERT_FILE")
    os.environ["SSL_CERT_FILE"] = str(cert)  # the handler's HTTPS PUT trusts this server, nothing else
    server = ResponseServer(cert, key)
    yield server
    server.close()
    if previous is None:
        os.environ.pop("SSL_CERT_FILE", None)
    else:
        os.environ["SSL_CERT_FILE"] = previous


class FakeClock:
    """Wall-clock time for the deadline logic, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def engine_for(clock: FakeClock, gateway: RdsGateway | None = None) -> RequestEngine:
    """The handler's engine as the function builds it, on the test's clock (and RDS gateway, if given)."""

    def clone_resource(hooks: EngineHooks) -> CloneResource:
        return CloneResource(gateway or RdsGateway(), clock, hooks=hooks)

    return RequestEngine(clone_resource, RequestStore(), WakeUpQueue(), clock=clock, run_clock=clock)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch, clock: FakeClock) -> Iterator[AwsGaps]:
    """moto, in-process, with the gaps that matter closed, and the function stack's table and queues; the
    handler's clients are built inside it."""
    with mock_aws(), AwsGaps() as gaps:
        for name, value in make_engine_resources().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setattr(handler_module, "engine", lambda: engine_for(clock))
        yield gaps


@pytest.fixture
def cfn(world: AwsGaps, response_server: ResponseServer, monkeypatch: pytest.MonkeyPatch) -> FakeCloudFormation:
    response_server.refusals.clear()
    # CloudFormation's response bucket is served there (the ResponseURLs' endpoint), not at AWS's.
    monkeypatch.setenv("RESPONSE_ENDPOINT", f"https://localhost:{response_server.port}")
    return FakeCloudFormation(response_server, handler_module.handler, stack="integration-env", world=world)


@pytest.fixture
def function(world: AwsGaps) -> str:
    """The function registered in Lambda, so its resource policy can be inspected."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="aurora-clone", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("index.py", "def handler(event, context):\n    return None\n")
    boto3.client("lambda").create_function(
        FunctionName=FUNCTION_NAME,
        Runtime="python3.13",
        Role=role,
        Handler="index.handler",
        Code={"ZipFile": code.getvalue()},
    )
    return FUNCTION_NAME


@dataclass
class Source:
    identifier: str
    arn: str
    writer: str


def make_source(
    world: AwsGaps, identifier: str = SOURCE_ID, engine: str = "aurora-mysql", **cluster_options: Any
) -> Source:
    """A source cluster with one writer instance, both available; ``cluster_options`` go to CreateDBCluster."""
    rds = boto3.client("rds")
    cluster = rds.create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine=engine,
        MasterUsername="admin",
        MasterUserPassword="production-secret-1",
        Tags=[{"Key": "team", "Value": "payments"}],
        **cluster_options,
    )["DBCluster"]
    world.settle()
    rds.create_db_instance(
        DBInstanceIdentifier=f"{identifier}-writer",
        DBClusterIdentifier=identifier,
        Engine=engine,
        DBInstanceClass="db.r6g.large",
    )
    world.settle()
    return Source(identifier, cluster["DBClusterArn"], f"{identifier}-writer")


@pytest.fixture
def source(world: AwsGaps) -> Source:
    return make_source(world)


def describe_cluster(identifier: str) -> Mapping[str, Any] | None:
    try:
        return boto3.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)["DBClusters"][0]
    except boto3.client("rds").exceptions.DBClusterNotFoundFault:
        return None


def cluster_ids() -> set[str]:
    return {c["DBClusterIdentifier"] for c in boto3.client("rds").describe_db_clusters()["DBClusters"]}


def instance_ids() -> set[str]:
    return {i["DBInstanceIdentifier"] for i in boto3.client("rds").describe_db_instances()["DBInstances"]}


def fill_slots(source: str, count: int, world: AwsGaps) -> list[str]:
    """``count`` copy-on-write clones of ``source`` made by someone else, available: slots in use."""
    rds = boto3.client("rds")
    names = [f"other-team-{source}-{n}" for n in range(count)]
    for name in names:
        rds.restore_db_cluster_to_point_in_time(
            DBClusterIdentifier=name,
            SourceDBClusterIdentifier=source,
            RestoreType="copy-on-write",
            UseLatestRestorableTime=True,
        )
    world.settle()
    return names


def make_copy(
    source: Source, name: str, data_time: datetime, world: AwsGaps, tags: dict[str, str], *, recorded: bool = True
) -> str:
    """A full copy of ``source`` with a writer instance ``<name>-1``, both carrying ``tags`` and the data time.
    ``recorded``: the tool's ledger records it as a copy of the source its copy-of tag names (as the pool
    records the copies it makes); else only the tags say so, as when someone else tagged it."""
    rds = boto3.client("rds")
    copy_of = tags.get(COPY_OF_TAG)
    if recorded and copy_of:
        RequestStore().record_made(MadeRecord(name, "copy", source=copy_of, instances=frozenset({f"{name}-1"})))
    tag_list: list[TagTypeDef] = [
        {"Key": key, "Value": value} for key, value in {**tags, DATA_TIME_TAG: format_timestamp(data_time)}.items()
    ]
    rds.restore_db_cluster_to_point_in_time(
        DBClusterIdentifier=name,
        SourceDBClusterIdentifier=source.identifier,
        RestoreType="full-copy",
        UseLatestRestorableTime=True,
        Tags=tag_list,
    )
    world.settle()
    rds.create_db_instance(
        DBInstanceIdentifier=f"{name}-1",
        DBClusterIdentifier=name,
        Engine="aurora-mysql",
        DBInstanceClass="db.r6g.large",
        Tags=tag_list,
    )
    world.settle()
    return name
