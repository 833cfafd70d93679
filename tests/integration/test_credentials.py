"""The clone's own access and encryption: a managed master secret, IAM database authentication, Serverless v2
capacities, a KMS key of its own, and sources given as ARNs (another Region, another account)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import boto3
import pytest

from aurora_clone import handler as handler_module
from aurora_clone.clone_state import ClusterView
from aurora_clone.rds import RdsGateway
from tests.cloudformation import ACCOUNT, FakeCloudFormation
from tests.conftest import Source, cluster_ids, describe_cluster, engine_for, instance_ids, make_source
from tests.moto_gaps import AwsGaps

OTHER_ACCOUNT = "210987654321"


@pytest.fixture
def rds_calls_of() -> Iterator[dict[str, list[dict[str, Any]]]]:
    """The exact parameters of every restore and cluster modification the handler sends, by operation."""
    calls: dict[str, list[dict[str, Any]]] = {"RestoreDBClusterToPointInTime": [], "ModifyDBCluster": []}
    boto3.setup_default_session()
    assert boto3.DEFAULT_SESSION is not None
    for operation, recorded in calls.items():
        boto3.DEFAULT_SESSION.events.register(
            f"provide-client-params.rds.{operation}",
            lambda params, recorded=recorded, **_: recorded.append(dict(params)),
        )
    yield calls


def converge(cfn: FakeCloudFormation, world: AwsGaps, event: dict[str, Any]) -> dict[str, Any]:
    return cfn.run(cfn.send(event), world.advance)


def created(cfn: FakeCloudFormation, world: AwsGaps, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    answer = converge(cfn, world, cfn.event("Create", properties))
    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    return answer["PhysicalResourceId"], answer


def kms_key() -> str:
    key: str = boto3.client("kms").create_key(Description="clone key")["KeyMetadata"]["Arn"]
    return key


def encrypted_source(world: AwsGaps, key: str, identifier: str = "secure-db") -> str:
    return make_source(world, identifier, StorageEncrypted=True, KmsKeyId=key).identifier


def secret_names() -> set[str]:
    return {secret["Name"] for secret in boto3.client("secretsmanager").list_secrets()["SecretList"]}


# --- managed master password ---------------------------------------------------------------------------------------


def test_create_with_managed_password_answers_secret_arn_and_delete_takes_secret(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    properties = {"SourceClusterId": source.identifier, "ManageMasterUserPassword": "true"}
    clone_id, answer = created(cfn, world, properties)

    secret = describe_cluster(clone_id)["MasterUserSecret"]  # type: ignore[index]
    assert answer["Data"]["MasterUserSecretArn"] == secret["SecretArn"]
    assert secret["SecretArn"].startswith(f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds!cluster-")
    assert "ManageMasterUserPassword" not in rds_calls_of["RestoreDBClusterToPointInTime"][0]  # not a restore option
    assert [call.get("ManageMasterUserPassword") for call in rds_calls_of["ModifyDBCluster"]] == [True]
    assert describe_cluster(source.identifier).get("MasterUserSecret") is None  # type: ignore[union-attr]
    assert len(secret_names()) == 1

    deleted = converge(cfn, world, cfn.event("Delete", properties, physical_id=clone_id))

    assert deleted["Status"] == "SUCCESS"
    assert secret_names() == set(), "the managed secret goes with the clone"


def test_create_with_managed_password_uses_given_kms_key_for_secret(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    key = kms_key()
    properties = {
        "SourceClusterId": source.identifier,
        "ManageMasterUserPassword": "true",
        "MasterUserSecretKmsKeyId": key,
    }

    clone_id, _ = created(cfn, world, properties)

    assert describe_cluster(clone_id)["MasterUserSecret"]["KmsKeyId"] == key  # type: ignore[index]
    assert rds_calls_of["ModifyDBCluster"][0]["MasterUserSecretKmsKeyId"] == key


def test_create_without_managed_password_answers_empty_secret_arn(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    _, answer = created(cfn, world, {"SourceClusterId": source.identifier})

    assert answer["Data"]["MasterUserSecretArn"] == ""
    assert world.rds_calls["ModifyDBCluster"] == 0


def test_update_turning_managed_password_on_keeps_clone_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    old = {"SourceClusterId": source.identifier}
    clone_id, _ = created(cfn, world, old)

    answer = converge(
        cfn,
        world,
        cfn.event("Update", {**old, "ManageMasterUserPassword": "true"}, physical_id=clone_id, old_properties=old),
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert answer["Data"]["MasterUserSecretArn"] == describe_cluster(clone_id)["MasterUserSecret"]["SecretArn"]  # type: ignore[index]


def test_update_turning_managed_password_off_replaces_clone(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    old = {"SourceClusterId": source.identifier, "ManageMasterUserPassword": "true"}
    clone_id, _ = created(cfn, world, old)

    answer = converge(
        cfn,
        world,
        cfn.event("Update", {**old, "ManageMasterUserPassword": "false"}, physical_id=clone_id, old_properties=old),
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] != clone_id, "RDS needs a new password to stop managing it: a new clone"
    assert answer["Data"]["MasterUserSecretArn"] == ""


# --- IAM database authentication -----------------------------------------------------------------------------------


def test_create_with_iam_authentication_passes_it_to_restore(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    clone_id, _ = created(cfn, world, {"SourceClusterId": source.identifier, "EnableIAMDatabaseAuthentication": "true"})

    assert rds_calls_of["RestoreDBClusterToPointInTime"][0]["EnableIAMDatabaseAuthentication"] is True
    assert describe_cluster(clone_id)["IAMDatabaseAuthenticationEnabled"] is True  # type: ignore[index]
    assert rds_calls_of["ModifyDBCluster"] == []


def test_update_of_iam_authentication_modifies_in_place(
    cfn: FakeCloudFormation,
    world: AwsGaps,
    source: Source,
    rds_calls_of: dict[str, list[dict[str, Any]]],
) -> None:
    old = {"SourceClusterId": source.identifier, "EnableIAMDatabaseAuthentication": "true"}
    clone_id, _ = created(cfn, world, old)
    new = {"SourceClusterId": source.identifier}  # removed: back to RDS's default, off

    answer = converge(cfn, world, cfn.event("Update", new, physical_id=clone_id, old_properties=old))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert describe_cluster(clone_id)["IAMDatabaseAuthenticationEnabled"] is False  # type: ignore[index]
    assert [call.get("EnableIAMDatabaseAuthentication") for call in rds_calls_of["ModifyDBCluster"]] == [False]


# --- Serverless v2 -------------------------------------------------------------------------------------------------


def test_create_serverless_clone_restores_with_capacities_and_serverless_instance(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    properties = {
        "SourceClusterId": source.identifier,
        "InstanceClass": "db.serverless",
        "ServerlessV2MinCapacity": "0.5",
        "ServerlessV2MaxCapacity": "8",
    }

    clone_id, answer = created(cfn, world, properties)

    restore = rds_calls_of["RestoreDBClusterToPointInTime"][0]
    assert restore["ServerlessV2ScalingConfiguration"] == {"MinCapacity": 0.5, "MaxCapacity": 8.0}
    assert describe_cluster(clone_id)["ServerlessV2ScalingConfiguration"] == {  # type: ignore[index]
        "MinCapacity": 0.5,
        "MaxCapacity": 8.0,
    }
    writer = boto3.client("rds").describe_db_instances(DBInstanceIdentifier=answer["Data"]["InstanceIds"])
    assert writer["DBInstances"][0]["DBInstanceClass"] == "db.serverless"


def test_update_of_serverless_capacities_modifies_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    old = {
        "SourceClusterId": source.identifier,
        "InstanceClass": "db.serverless",
        "ServerlessV2MinCapacity": "0.5",
        "ServerlessV2MaxCapacity": "8",
    }
    clone_id, _ = created(cfn, world, old)
    new = {**old, "ServerlessV2MinCapacity": "2", "ServerlessV2MaxCapacity": "16.5"}

    sent = cfn.send(cfn.event("Update", new, physical_id=clone_id, old_properties=old))
    assert describe_cluster(clone_id)["Status"] == "modifying"  # type: ignore[index]
    assert cfn.answer(sent) is None
    answer = cfn.run(sent, world.advance)

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert describe_cluster(clone_id)["ServerlessV2ScalingConfiguration"] == {  # type: ignore[index]
        "MinCapacity": 2.0,
        "MaxCapacity": 16.5,
    }
    assert [call["ServerlessV2ScalingConfiguration"] for call in rds_calls_of["ModifyDBCluster"]] == [
        {"MinCapacity": 2.0, "MaxCapacity": 16.5}
    ]
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 1


def test_create_serverless_without_capacities_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    answer = cfn.answer(
        cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "InstanceClass": "db.serverless"}))
    )

    assert answer is not None and answer["Status"] == "FAILED"
    assert "ServerlessV2MinCapacity" in answer["Reason"] and "ServerlessV2MaxCapacity" in answer["Reason"]
    assert cluster_ids() == {source.identifier}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0


# --- KMS key -------------------------------------------------------------------------------------------------------


def test_create_with_kms_key_restores_with_it(
    cfn: FakeCloudFormation, world: AwsGaps, rds_calls_of: dict[str, list[dict[str, Any]]]
) -> None:
    source = encrypted_source(world, kms_key())
    own_key = kms_key()

    clone_id, _ = created(cfn, world, {"SourceClusterId": source, "KmsKeyId": own_key})

    assert rds_calls_of["RestoreDBClusterToPointInTime"][0]["KmsKeyId"] == own_key
    assert describe_cluster(clone_id)["KmsKeyId"] == own_key  # type: ignore[index]


def test_update_of_kms_key_replaces_clone(cfn: FakeCloudFormation, world: AwsGaps) -> None:
    source = encrypted_source(world, kms_key())
    old = {"SourceClusterId": source, "KmsKeyId": kms_key()}
    clone_id, _ = created(cfn, world, old)
    new = {**old, "KmsKeyId": kms_key()}

    answer = converge(cfn, world, cfn.event("Update", new, physical_id=clone_id, old_properties=old))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] != clone_id
    assert describe_cluster(answer["PhysicalResourceId"])["KmsKeyId"] == new["KmsKeyId"]  # type: ignore[index]


def test_update_of_kms_key_to_the_clones_own_key_id_keeps_it_in_place(cfn: FakeCloudFormation, world: AwsGaps) -> None:
    source = encrypted_source(world, kms_key())
    key_arn = kms_key()
    old = {"SourceClusterId": source, "KmsKeyId": key_arn}
    clone_id, _ = created(cfn, world, old)
    new = {**old, "KmsKeyId": key_arn.split("/")[-1]}  # the same key, by its id

    answer = converge(cfn, world, cfn.event("Update", new, physical_id=clone_id, old_properties=old))

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id


def test_create_with_kms_key_of_unencrypted_source_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": source.identifier, "KmsKeyId": kms_key()})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "KmsKeyId" in answer["Reason"] and "not encrypted" in answer["Reason"]
    assert cluster_ids() == {source.identifier}


# --- sources by ARN --------------------------------------------------------------------------------------------------


def test_create_from_source_arn_in_other_region_fails_before_any_call(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    arn = f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:{source.identifier}"
    calls_before = sum(world.rds_calls.values())

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": arn})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "eu-west-1" in answer["Reason"] and "us-east-1" in answer["Reason"]
    assert sum(world.rds_calls.values()) == calls_before
    assert cluster_ids() == {source.identifier}


def test_create_from_other_account_source_without_instance_class_fails_before_any_call(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    arn = f"arn:aws:rds:us-east-1:{OTHER_ACCOUNT}:cluster:{source.identifier}"
    calls_before = sum(world.rds_calls.values())

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": arn})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "InstanceClass is required" in answer["Reason"]
    assert sum(world.rds_calls.values()) == calls_before


def test_create_from_unshared_other_account_source_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, source: Source
) -> None:
    # A cluster of the same name exists here: the ARN of another account must not be taken for it.
    arn = f"arn:aws:rds:us-east-1:{OTHER_ACCOUNT}:cluster:{source.identifier}"

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": arn, "InstanceClass": "db.r6g.large"})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "not shared with this account" in answer["Reason"]
    assert cluster_ids() == {source.identifier}
    assert instance_ids() == {source.writer}
    assert world.rds_calls["RestoreDBClusterToPointInTime"] == 0


# --- a cluster shared from another account (AWS RAM), played by a cluster of this account --------------------------

SHARED_ARN = f"arn:aws:rds:us-east-1:{OTHER_ACCOUNT}:cluster:shared-prod"


class SharedSourceGateway(RdsGateway):
    """RDS as seen from an account the cluster ``shared-prod`` of another account is shared with: moto has one
    account, so a local cluster stands for it. Describing it by ARN needs ``shared``; its instances are not
    visible; the restore is asked for with the ARN, as RDS requires, and recorded."""

    def __init__(self, stand_in: str, default_key: bool = False) -> None:
        super().__init__()
        self.stand_in = stand_in
        self.default_key = default_key
        self.restored_from: list[str] = []

    def describe_cluster(self, identifier: str, *, shared: bool = False) -> ClusterView | None:
        if identifier != SHARED_ARN:
            return super().describe_cluster(identifier, shared=shared)
        assert shared, "a cluster of another account is described with IncludeShared"
        view = super().describe_cluster(self.stand_in)
        assert view is not None
        view = replace(view, identifier="shared-prod", arn=SHARED_ARN, instances=())
        return replace(view, storage_encrypted=True, kms_key_id="alias/aws/rds") if self.default_key else view

    def restore_clone(self, **kwargs: Any) -> None:
        self.restored_from.append(kwargs["source"])
        super().restore_clone(
            **{**kwargs, "source": self.stand_in if kwargs["source"] == SHARED_ARN else kwargs["source"]}
        )


@pytest.fixture
def shared_gateway(world: AwsGaps, source: Source, clock: Any, monkeypatch: pytest.MonkeyPatch) -> SharedSourceGateway:
    gateway = SharedSourceGateway(source.identifier)
    monkeypatch.setattr(handler_module, "engine", lambda: engine_for(clock, gateway))
    return gateway


def test_create_from_shared_source_restores_by_arn_and_records_it(
    cfn: FakeCloudFormation,
    world: AwsGaps,
    rds_calls_of: dict[str, list[dict[str, Any]]],  # before the gateway: its client must see the recording
    shared_gateway: SharedSourceGateway,
) -> None:
    clone_id, answer = created(cfn, world, {"SourceClusterId": SHARED_ARN, "InstanceClass": "db.r6g.large"})

    assert shared_gateway.restored_from == [SHARED_ARN]
    restore = rds_calls_of["RestoreDBClusterToPointInTime"][0]
    assert restore["RestoreType"] == "copy-on-write"
    assert "DBClusterParameterGroupName" not in restore, "another account's parameter group means nothing here"
    assert "VpcSecurityGroupIds" not in restore
    tags = {tag["Key"]: tag["Value"] for tag in describe_cluster(clone_id)["TagList"]}  # type: ignore[index]
    assert tags["aurora-clone:source-cluster"] == tags["aurora-clone:cloned-from"] == SHARED_ARN
    assert answer["Data"]["SourceClusterId"] == SHARED_ARN


def test_update_of_shared_source_clone_stays_in_place(
    cfn: FakeCloudFormation, world: AwsGaps, shared_gateway: SharedSourceGateway
) -> None:
    old = {"SourceClusterId": SHARED_ARN, "InstanceClass": "db.r6g.large"}
    clone_id, _ = created(cfn, world, old)

    answer = converge(
        cfn, world, cfn.event("Update", {**old, "InstanceCount": "2"}, physical_id=clone_id, old_properties=old)
    )

    assert answer["Status"] == "SUCCESS", answer.get("Reason")
    assert answer["PhysicalResourceId"] == clone_id
    assert shared_gateway.restored_from == [SHARED_ARN]


def test_second_clone_of_shared_source_in_account_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, shared_gateway: SharedSourceGateway, response_server: Any
) -> None:
    properties = {"SourceClusterId": SHARED_ARN, "InstanceClass": "db.r6g.large"}
    first, _ = created(cfn, world, properties)
    before = cluster_ids()
    other_stack = FakeCloudFormation(response_server, cfn.handler, stack="other-env", world=cfn.world)

    answer = other_stack.answer(other_stack.send(other_stack.event("Create", properties)))

    assert answer is not None and answer["Status"] == "FAILED"
    assert first in answer["Reason"] and "one clone" in answer["Reason"]
    assert cluster_ids() == before


def test_create_from_shared_source_with_default_key_fails_and_creates_nothing(
    cfn: FakeCloudFormation, world: AwsGaps, shared_gateway: SharedSourceGateway, source: Source
) -> None:
    shared_gateway.default_key = True

    answer = cfn.answer(cfn.send(cfn.event("Create", {"SourceClusterId": SHARED_ARN, "InstanceClass": "db.r6g.large"})))

    assert answer is not None and answer["Status"] == "FAILED"
    assert "aws/rds" in answer["Reason"] and "customer managed key" in answer["Reason"]
    assert cluster_ids() == {source.identifier}
    assert shared_gateway.restored_from == []


def test_update_replacing_shared_source_clone_fails_and_keeps_it(
    cfn: FakeCloudFormation, world: AwsGaps, shared_gateway: SharedSourceGateway
) -> None:
    old = {"SourceClusterId": SHARED_ARN, "InstanceClass": "db.r6g.large"}
    clone_id, _ = created(cfn, world, old)
    before = cluster_ids()

    answer = converge(
        cfn,
        world,
        cfn.event("Update", {**old, "ClusterId": "aurora-clone-renamed"}, physical_id=clone_id, old_properties=old),
    )

    assert answer["Status"] == "FAILED"
    assert answer["PhysicalResourceId"] == clone_id
    assert "one clone" in answer["Reason"] and clone_id in answer["Reason"]
    assert cluster_ids() == before
