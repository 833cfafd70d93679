"""parse_properties for backtrack, credentials, Serverless v2, encryption and teardown: CloudFormation's strings
converted, every bad value or combination refused naming the property."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from aurora_clone.properties import CloneProperties, SourceArn, parse_properties
from tests.unit.properties_helpers import names, problems_of, raw

KEY_ARN = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize(
    ("given", "field", "expected"),
    [
        pytest.param({"BacktrackWindow": "3600"}, "backtrack_window", 3600, id="window"),
        pytest.param({"BacktrackWindow": 0}, "backtrack_window", 0, id="window-zero-number"),
        pytest.param({"BacktrackWindow": "259200"}, "backtrack_window", 259200, id="window-72-hours"),
        pytest.param(
            {"BacktrackWindow": "60", "BacktrackTo": "2026-11-22T11:00:00+01:00"},
            "backtrack_to",
            datetime(2026, 11, 22, 10, tzinfo=UTC),
            id="time-with-offset",
        ),
        pytest.param({"ManageMasterUserPassword": "true"}, "manage_master_user_password", True, id="managed"),
        pytest.param({"ManageMasterUserPassword": True}, "manage_master_user_password", True, id="managed-bool"),
        pytest.param(
            {"ManageMasterUserPassword": "true", "MasterUserSecretKmsKeyId": "alias/secrets"},
            "master_user_secret_kms_key_id",
            "alias/secrets",
            id="secret-key-alias",
        ),
        pytest.param({"EnableIAMDatabaseAuthentication": "TRUE"}, "enable_iam_database_authentication", True, id="iam"),
        pytest.param(
            {"ServerlessV2MinCapacity": "0.5", "ServerlessV2MaxCapacity": "8"},
            "serverless_v2_capacity",
            (0.5, 8.0),
            id="capacities",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "0", "ServerlessV2MaxCapacity": "1"},
            "serverless_v2_capacity",
            (0.0, 1.0),
            id="capacities-auto-pause",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": 4, "ServerlessV2MaxCapacity": 256.0},
            "serverless_v2_capacity",
            (4.0, 256.0),
            id="capacities-numbers",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "8", "ServerlessV2MaxCapacity": "8"},
            "serverless_v2_capacity",
            (8.0, 8.0),
            id="capacities-equal",
        ),
        pytest.param({"KmsKeyId": KEY_ARN}, "kms_key_id", KEY_ARN, id="key-arn"),
        pytest.param(
            {"KmsKeyId": "1234abcd-12ab-34cd-56ef-1234567890ab"},
            "kms_key_id",
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            id="key-id",
        ),
        pytest.param({"KmsKeyId": "mrk-" + "a" * 32}, "kms_key_id", "mrk-" + "a" * 32, id="multi-region-key"),
        pytest.param(
            {"KmsKeyId": "arn:aws:kms:us-east-1:123456789012:alias/clones"},
            "kms_key_id",
            "arn:aws:kms:us-east-1:123456789012:alias/clones",
            id="alias-arn",
        ),
        pytest.param({"SnapshotOnDelete": "true"}, "snapshot_on_delete", True, id="snapshot"),
        pytest.param({"DeletionProtection": "true"}, "deletion_protection", True, id="protection"),
        pytest.param({"DeletionProtection": "false"}, "deletion_protection", False, id="no-protection"),
        pytest.param({"WarmPool": "ci"}, "warm_pool", "ci", id="warm-pool"),
        pytest.param({}, "wait_for_deletion", True, id="wait-for-deletion-default"),
        pytest.param({"WaitForDeletion": "false"}, "wait_for_deletion", False, id="no-wait-for-deletion"),
        pytest.param({"WaitForDeletion": "TRUE"}, "wait_for_deletion", True, id="wait-for-deletion"),
    ],
)
def test_new_property_given_converted(given: dict[str, Any], field: str, expected: Any) -> None:
    assert getattr(parse_properties(raw(**given)), field) == expected


def test_new_properties_unset_defaults() -> None:
    parsed = parse_properties(raw())

    assert parsed.backtrack_window is None and parsed.backtrack_to is None
    assert not parsed.manage_master_user_password and parsed.master_user_secret_kms_key_id is None
    assert not parsed.enable_iam_database_authentication
    assert parsed.serverless_v2_capacity is None
    assert parsed.kms_key_id is None
    assert not parsed.snapshot_on_delete and not parsed.deletion_protection


@pytest.mark.parametrize(
    ("given", "name", "words"),
    [
        pytest.param({"BacktrackWindow": "259201"}, "BacktrackWindow", "between 0 and 259200", id="window-too-long"),
        pytest.param({"BacktrackWindow": "-1"}, "BacktrackWindow", "between 0 and 259200", id="window-negative"),
        pytest.param({"BacktrackWindow": "1h"}, "BacktrackWindow", "whole number", id="window-not-a-number"),
        pytest.param({"BacktrackWindow": "60", "BacktrackTo": "now"}, "BacktrackTo", "ISO-8601", id="time-not-iso"),
        pytest.param(
            {"BacktrackWindow": "60", "BacktrackTo": "2026-11-22T10:00:00"}, "BacktrackTo", "time zone", id="naive"
        ),
        pytest.param({"BacktrackTo": "2026-11-22T10:00:00Z"}, "BacktrackWindow", "needs", id="time-without-window"),
        pytest.param(
            {"BacktrackWindow": "0", "BacktrackTo": "2026-11-22T10:00:00Z"},
            "BacktrackWindow",
            "needs",
            id="time-with-zero-window",
        ),
        pytest.param({"ManageMasterUserPassword": "yes"}, "ManageMasterUserPassword", "true or false", id="flag"),
        pytest.param(
            {"MasterUserSecretKmsKeyId": "alias/secrets"}, "ManageMasterUserPassword", "true", id="key-without-secret"
        ),
        pytest.param(
            {"ManageMasterUserPassword": "true", "MasterUserSecretKmsKeyId": "my key"},
            "MasterUserSecretKmsKeyId",
            "not a KMS key",
            id="secret-key-malformed",
        ),
        pytest.param({"EnableIAMDatabaseAuthentication": "1"}, "EnableIAMDatabaseAuthentication", "true or false"),
        pytest.param(
            {"ServerlessV2MinCapacity": "0.25", "ServerlessV2MaxCapacity": "8"},
            "ServerlessV2MinCapacity",
            "0, or from 0.5 to 256",
            id="min-below-half",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "1.3", "ServerlessV2MaxCapacity": "8"},
            "ServerlessV2MinCapacity",
            "half",
            id="min-not-in-halves",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "0.5", "ServerlessV2MaxCapacity": "256.5"},
            "ServerlessV2MaxCapacity",
            "from 1 to 256",
            id="max-above-256",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "0.5", "ServerlessV2MaxCapacity": "0.5"},
            "ServerlessV2MaxCapacity",
            "from 1 to 256",
            id="max-below-one",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "0.5", "ServerlessV2MaxCapacity": "eight"},
            "ServerlessV2MaxCapacity",
            "capacity units",
            id="max-not-a-number",
        ),
        pytest.param(
            {"ServerlessV2MinCapacity": "16", "ServerlessV2MaxCapacity": "8"},
            "ServerlessV2MinCapacity",
            "must not be more than",
            id="min-above-max",
        ),
        pytest.param({"ServerlessV2MinCapacity": "1"}, "ServerlessV2MaxCapacity", "needs", id="min-alone"),
        pytest.param({"ServerlessV2MaxCapacity": "8"}, "ServerlessV2MinCapacity", "needs", id="max-alone"),
        pytest.param({"KmsKeyId": "aws/rds"}, "KmsKeyId", "not a KMS key", id="alias-without-prefix"),
        pytest.param({"KmsKeyId": ["k"]}, "KmsKeyId", "single value", id="key-list"),
        pytest.param({"SnapshotOnDelete": "always"}, "SnapshotOnDelete", "true or false", id="snapshot-flag"),
        pytest.param({"DeletionProtection": "on"}, "DeletionProtection", "true or false", id="protection-flag"),
        pytest.param({"WaitForDeletion": "no"}, "WaitForDeletion", "true or false", id="wait-flag"),
        pytest.param({"WarmPool": "CI"}, "WarmPool", "not a warm shape's name", id="warm-pool-upper-case"),
        pytest.param({"WarmPool": "a" * 21}, "WarmPool", "1-20 lower-case", id="warm-pool-too-long"),
        pytest.param(
            {"WarmPool": "ci", "ClusterId": "aurora-clone-mine"},
            "ClusterId",
            "WarmPool cannot be used with ClusterId",
            id="warm-pool-with-cluster-id",
        ),
    ],
)
def test_new_property_invalid_refused_naming_it(given: dict[str, Any], name: str, words: str) -> None:
    problems = problems_of(raw(**given))

    assert any(names(problem, name) and words in problem for problem in problems), problems


def test_several_new_problems_reported_together() -> None:
    problems = problems_of(raw(BacktrackWindow="x", KmsKeyId="?", DeletionProtection="maybe"))

    assert len(problems) == 3
    for name in ("BacktrackWindow", "KmsKeyId", "DeletionProtection"):
        assert any(names(problem, name) for problem in problems), name


@pytest.mark.parametrize(
    ("source", "arn", "key"),
    [
        pytest.param("prod-db", None, "prod-db", id="identifier"),
        pytest.param(
            "arn:aws:rds:us-east-1:123456789012:cluster:Prod-DB",
            SourceArn("us-east-1", "123456789012", "prod-db"),
            "arn:aws:rds:us-east-1:123456789012:cluster:prod-db",
            id="arn",
        ),
        pytest.param(
            "arn:aws-cn:rds:cn-north-1:210987654321:cluster:shared",
            SourceArn("cn-north-1", "210987654321", "shared"),
            "arn:aws-cn:rds:cn-north-1:210987654321:cluster:shared",
            id="other-partition",
        ),
    ],
)
def test_source_arn_parts_and_key(source: str, arn: SourceArn | None, key: str) -> None:
    properties = CloneProperties(source)

    assert properties.source_arn == arn
    assert properties.source_key == key
