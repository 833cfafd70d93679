"""Every template mistake RDS would refuse later is refused in the first invocation, all in one Reason, and
nothing is made; a valid template costs at most one extra describe call per engine and version."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws

from aurora_clone.local.orderable import DEFAULT_ENGINE_VERSIONS
from aurora_clone.outcome import Failed, Pending
from aurora_clone.properties import REASON_BUDGET_BYTES
from aurora_clone.rds import RdsGateway
from aurora_clone.resource import CloneResource, Request
from tests.cloudformation import ACCOUNT, REGION, make_engine_resources
from tests.conftest import FakeClock, cluster_ids, instance_ids, make_source
from tests.moto_gaps import AwsGaps

STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/refusals/0a1b2c3d"
SERVICE_TOKEN = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:aurora-clone"
CHECK_CALLS = ("DescribeOrderableDBInstanceOptions", "DescribeDBClusterParameterGroups", "DescribeDBParameterGroups")


class NoLock:
    """The slot lock, held at once: these tests are about what comes before it."""

    @contextmanager
    def hold(self, _source: str, _token: str) -> Iterator[None]:
        yield


@pytest.fixture
def gaps(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> Iterator[AwsGaps]:
    with mock_aws(), AwsGaps() as world:
        for name, value in make_engine_resources().items():
            monkeypatch.setenv(name, value)  # the ledger the resource records its clones in
        yield world


def resource(clock: FakeClock) -> CloneResource:
    return CloneResource(RdsGateway(), clock, slot_lock=NoLock())  # type: ignore[arg-type]


def create(properties: dict[str, Any], request_id: str = "r-1", logical_id: str = "TestDatabase") -> Request:
    return Request(
        "Create", STACK_ID, request_id, logical_id, {"ServiceToken": SERVICE_TOKEN, **properties}, None, None
    )


def refused(outcome: object) -> str:
    assert isinstance(outcome, Failed), outcome
    assert len(outcome.reason.encode()) <= REASON_BUDGET_BYTES
    return outcome.reason


def test_unoffered_instance_class_refused_before_restore_with_nearest_classes(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps)
    before = (cluster_ids(), instance_ids())

    reason = refused(resource(clock).create(create({"SourceClusterId": "prod-db", "InstanceClass": "db.r6g.huge"})))

    assert "InstanceClass 'db.r6g.huge' is not offered" in reason
    assert DEFAULT_ENGINE_VERSIONS["aurora-mysql"] in reason
    assert "Nearest offered: db.r6g." in reason
    assert gaps.rds_calls["RestoreDBClusterToPointInTime"] == 0
    assert (cluster_ids(), instance_ids()) == before


def test_serverless_on_engine_version_without_it_refused(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps, EngineVersion="5.7.mysql_aurora.2.12.1")

    reason = refused(
        resource(clock).create(
            create(
                {
                    "SourceClusterId": "prod-db",
                    "InstanceClass": "db.serverless",
                    "ServerlessV2MinCapacity": "0.5",
                    "ServerlessV2MaxCapacity": "8",
                }
            )
        )
    )

    assert "InstanceClass db.serverless (Aurora Serverless v2) is not offered" in reason
    assert "5.7.mysql_aurora.2.12.1" in reason
    assert "such as db.r6g.large" in reason
    assert gaps.rds_calls["RestoreDBClusterToPointInTime"] == 0


def test_parameter_group_of_another_family_or_missing_refused(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps)
    boto3.client("rds").create_db_cluster_parameter_group(
        DBClusterParameterGroupName="old-mysql", DBParameterGroupFamily="aurora-mysql5.7", Description="5.7"
    )

    reason = refused(
        resource(clock).create(
            create(
                {
                    "SourceClusterId": "prod-db",
                    "DBClusterParameterGroupName": "old-mysql",
                    "DBParameterGroupName": "no-such-group",
                }
            )
        )
    )

    assert "DBClusterParameterGroupName 'old-mysql' is a DB cluster parameter group of family aurora-mysql5.7" in reason
    assert "takes family aurora-mysql8.0" in reason
    assert "DBParameterGroupName 'no-such-group': the DB parameter group does not exist" in reason
    assert gaps.rds_calls["RestoreDBClusterToPointInTime"] == 0


def test_property_and_source_problems_reported_together_in_one_answer(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps, engine="aurora-postgresql")

    reason = refused(
        resource(clock).create(
            create(
                {
                    "SourceClusterId": "prod-db",
                    "InstanceClas": "db.r6g.large",
                    "InstanceClass": "db.r6g.huge",
                    "BacktrackWindow": "3600",
                    "Tags": [{"Key": "team", "Value": {"name": "qa"}}, {"Key": ["env"], "Value": "ci"}],
                }
            )
        )
    )

    assert reason.startswith("5 problems, fix them all:")
    assert "Unknown property 'InstanceClas': did you mean 'InstanceClass'?" in reason
    assert "Tags[0].Value must be a single value (a string), not an object." in reason
    assert "Tags[1].Key must be a single value (a string), not a list." in reason
    assert "BacktrackWindow and BacktrackTo work only for Aurora MySQL" in reason
    assert "InstanceClass 'db.r6g.huge' is not offered by RDS for aurora-postgresql" in reason
    assert gaps.rds_calls["RestoreDBClusterToPointInTime"] == 0
    assert cluster_ids() == {"prod-db"}


def test_invalid_source_id_still_reports_every_other_problem(gaps: AwsGaps, clock: FakeClock) -> None:
    reason = refused(
        resource(clock).create(create({"SourceClusterId": ["prod-db"], "InstanceCount": "two", "Port": "80"}))
    )

    assert "SourceClusterId must be a single value (a string), not a list." in reason
    assert "InstanceCount must be a whole number, got 'two'." in reason
    assert "Port must be between 1150 and 65535, got 80." in reason
    assert sum(gaps.rds_calls.values()) == 0


def test_missing_source_reported_with_property_problems(gaps: AwsGaps, clock: FakeClock) -> None:
    reason = refused(resource(clock).create(create({"SourceClusterId": "no-such-db", "CopyOk": "yes"})))

    assert "CopyOk must be true or false, got 'yes'." in reason
    assert "SourceClusterId 'no-such-db' does not exist in this account and Region." in reason


def test_many_problems_fit_one_reason_and_are_counted(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps)
    tags = [{"Key": f"key-{n}!", "Value": "x" * 300} for n in range(60)]

    reason = refused(resource(clock).create(create({"SourceClusterId": "prod-db", "Tags": tags})))

    assert reason.startswith("120 problems, fix them all: (1) Tags[0].Key 'key-0!' has '!'")
    assert reason.endswith("more, reported once these are fixed.")


def test_valid_template_costs_one_orderable_read_per_engine_version_while_warm(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps)
    make_source(gaps, "other-db")
    warm = resource(clock)
    calls_before = sum(gaps.rds_calls.values())

    first = warm.create(create({"SourceClusterId": "prod-db", "InstanceClass": "db.r7g.xlarge"}, "r-1", "First"))
    second = warm.create(create({"SourceClusterId": "other-db"}, "r-2", "Second"))

    assert isinstance(first, Pending) and isinstance(second, Pending)
    assert {name: gaps.rds_calls[name] for name in CHECK_CALLS} == {
        "DescribeOrderableDBInstanceOptions": 1,  # both sources run the same engine version
        "DescribeDBClusterParameterGroups": 0,
        "DescribeDBParameterGroups": 0,
    }
    assert sum(gaps.rds_calls.values()) - calls_before > 0


def test_orderable_read_failing_judges_nothing(
    gaps: AwsGaps, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_source(gaps)
    warm = resource(clock)

    def denied(_engine: str, _version: str) -> frozenset[str]:
        from aurora_clone.rds import RdsError

        raise RdsError("AccessDenied", "The function's role may not do this.")

    monkeypatch.setattr(warm.rds, "orderable_instance_classes", denied)

    assert isinstance(warm.create(create({"SourceClusterId": "prod-db", "InstanceClass": "db.r6g.xlarge"})), Pending)


def test_update_to_unoffered_class_refused_and_clone_kept(gaps: AwsGaps, clock: FakeClock) -> None:
    make_source(gaps)
    warm = resource(clock)
    made = warm.create(create({"SourceClusterId": "prod-db"}))
    assert isinstance(made, Pending)
    clone = made.job.cluster_id
    gaps.settle()

    outcome = warm.update(
        Request(
            "Update",
            STACK_ID,
            "r-2",
            "TestDatabase",
            {"ServiceToken": SERVICE_TOKEN, "SourceClusterId": "prod-db", "InstanceClass": "db.r6g.mega"},
            clone,
            {"ServiceToken": SERVICE_TOKEN, "SourceClusterId": "prod-db"},
        )
    )

    reason = refused(outcome)
    assert "InstanceClass 'db.r6g.mega' is not offered by RDS for aurora-mysql" in reason
    assert f"the clone '{clone}'" in reason
    assert gaps.rds_calls["ModifyDBInstance"] == 0
    assert clone in cluster_ids()


def test_emulation_refuses_unoffered_class_at_create_db_instance(gaps: AwsGaps) -> None:
    rds = boto3.client("rds")
    rds.create_db_cluster(
        DBClusterIdentifier="old",
        Engine="aurora-mysql",
        EngineVersion="5.7.mysql_aurora.2.12.1",
        MasterUsername="admin",
        MasterUserPassword="production-secret-1",
    )
    gaps.settle()

    with pytest.raises(rds.exceptions.ClientError) as raised:
        rds.create_db_instance(
            DBInstanceIdentifier="old-1",
            DBClusterIdentifier="old",
            Engine="aurora-mysql",
            DBInstanceClass="db.serverless",
        )

    assert raised.value.response["Error"]["Code"] == "InvalidParameterCombination"
    assert "DBInstanceClass=db.serverless, Engine=aurora-mysql, EngineVersion=5.7.mysql_aurora.2.12.1" in str(
        raised.value
    )
    assert "old-1" not in instance_ids()


def test_emulation_answers_orderable_options_from_its_table(gaps: AwsGaps) -> None:
    rds = boto3.client("rds")
    version = DEFAULT_ENGINE_VERSIONS["aurora-postgresql"]

    options = rds.describe_orderable_db_instance_options(Engine="aurora-postgresql", EngineVersion=version)

    classes = {option["DBInstanceClass"] for option in options["OrderableDBInstanceOptions"]}
    assert {"db.serverless", "db.r7g.large", "db.t4g.medium", "db.x2g.16xlarge"} <= classes
    assert {option["EngineVersion"] for option in options["OrderableDBInstanceOptions"]} == {version}
    assert rds.describe_orderable_db_instance_options(Engine="aurora-postgresql", EngineVersion="11.21")[
        "OrderableDBInstanceOptions"
    ]
    assert "db.serverless" not in {
        option["DBInstanceClass"]
        for option in rds.describe_orderable_db_instance_options(Engine="aurora-postgresql", EngineVersion="11.21")[
            "OrderableDBInstanceOptions"
        ]
    }
