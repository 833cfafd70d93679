"""The shipped Custom::AuroraClone schema says what the function accepts: the same names, values and bounds.

Each property's verdict comes from the cfn-lint rule (``property_problems``, which reads the schema) and from
``parse_properties`` (the function's own check), and the two must agree, so neither can drift from the other.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from aurora_clone.clone_state import ClusterView
from aurora_clone.lint import SCHEMA_FILE
from aurora_clone.lint.custom_aurora_clone import property_problems
from aurora_clone.properties import KNOWN_PROPERTIES, MAX_USER_TAGS, PropertiesError, parse_properties
from aurora_clone.resource import attributes

SCHEMA: dict[str, Any] = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
BASE = {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:aurora-clone", "SourceClusterId": "prod-db"}
# What a property needs beside it to be valid at all (checked by parse_properties as combinations).
COMPANIONS: dict[str, dict[str, Any]] = {
    "BacktrackTo": {"BacktrackWindow": "3600"},
    "MasterUserSecretKmsKeyId": {"ManageMasterUserPassword": "true"},
    "PrepareScript": {"ManageMasterUserPassword": "true"},
    "ServerlessV2MinCapacity": {"ServerlessV2MaxCapacity": "256"},
    "ServerlessV2MaxCapacity": {"ServerlessV2MinCapacity": "0"},
}
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
# Values to try per property, good and bad; each is judged by both the schema and the function.
SAMPLES: dict[str, list[Any]] = {
    # Its type is cfn-lint's own check (tests/integration/test_lint_templates.py), its range this schema's.
    "ServiceTimeout": [60, "3600", 3601, "0", " 60 "],
    "SourceClusterId": [
        "prod-db",
        "Prod-DB",
        "arn:aws:rds:eu-west-1:123456789012:cluster:prod-db",
        "arn:aws:rds:eu-west-1:1234:cluster:prod-db",
        "1prod",
        "prod--db",
        "prod-",
        "a" * 63,
        "a" * 64,
    ],
    "ClusterId": ["my-clone", "My-Clone", "my_clone", "-clone", "a" * 64, "clone-", None, ["my-clone"]],
    "InstanceClass": ["db.r6g.large", "db.serverless", "r6g.large", "db.r6g", "db.R6G.large"],
    "InstanceCount": [1, "16", 0, 17, "two", True, " 2 ", None, "0" * 70 + "2"],
    "DBSubnetGroupName": ["default", "my subnets.1", "-bad", "x" * 255, "x" * 256, "a/b"],
    "VpcSecurityGroupIds": [
        ["sg-0123456789abcdef0"],
        "sg-01234567,sg-0123456789abcdef0",
        "sg-01234567, sg-89abcdef",
        [],
        ["sg-xyz"],
        "sg-1",
        [1],
        {"Id": "sg-01234567"},
    ],
    "DBClusterParameterGroupName": ["default.aurora-mysql8.0", "bad!"],
    "DBParameterGroupName": ["default.aurora-mysql8.0", "_bad"],
    "Port": [3306, "5432", 1149, "65536", "port"],
    "Tags": [
        [{"Key": "Purpose", "Value": "test"}],
        [{"Key": "Only"}],
        [{"Key": "n", "Value": 1}],
        [{"Key": "aws:x", "Value": "v"}],
        [{"Key": "Aurora-Clone:stack", "Value": "v"}],
        [{"Key": "", "Value": "v"}],
        [{"Key": "k" * 129, "Value": "v"}],
        [{"Key": "k", "Value": "v" * 257}],
        [{"Key": "k", "Vaule": "v"}],
        [{"Value": "v"}],
        [{"Key": "rds:x", "Value": "v"}],
        [{"Key": " k ", "Value": " v "}],
        [{"Key": "Größe", "Value": "a b_c.d:e/f=g+h-i@j"}],
        [{"Key": "k", "Value": "semi;colon"}],
        [{"Key": "k", "Value": "tab\there"}],
        [{"Key": "k", "Value": True}],
        [{"Key": "k", "Value": None}],
        [{"Key": f"k{n}", "Value": "v"} for n in range(MAX_USER_TAGS)],
        [{"Key": f"k{n}", "Value": "v"} for n in range(MAX_USER_TAGS + 1)],
        "Purpose=test",
        ["Purpose"],
    ],
    "CopyOk": [True, False, "true", "FALSE", "yes", 1],
    "MaxCopyAge": ["P3D", "PT12H", "P1DT6H30M", "P2W", "p3d", "P1M", "P0D", "PT0S", "P", "PT", "3 days", "PT1.5H"],
    "CopyCreatedSince": [
        "2026-11-22T08:00:00Z",
        "2026-11-22T09:00:00+01:00",
        "2026-11-22T08:00:00.123Z",
        "2026-11-22T08:00Z",
        "2026-11-22T08:00:00",
        "2026-11-22",
        "2026-13-22T08:00:00Z",
        "yesterday",
    ],
    "PurgeObsoleteCopies": ["true", "True", "no"],
    "BacktrackWindow": [0, "259200", 259201, -1, "a day"],
    "BacktrackTo": ["2026-11-22T08:00:00Z", "2026-11-22 08:00:00+00:00", "08:00"],
    "ManageMasterUserPassword": ["true", False, "on"],
    "MasterUserSecretKmsKeyId": [
        KEY_ID,
        "alias/my-key",
        f"arn:aws:kms:us-east-1:123456789012:key/{KEY_ID}",
        "arn:aws:kms:us-east-1:123456789012:alias/my-key",
        "mrk-" + "0" * 32,
        "my-key",
    ],
    "EnableIAMDatabaseAuthentication": ["false", "maybe"],
    "ServerlessV2MinCapacity": [0, "0.5", 8.5, "256", 0.25, "256.5", "-1", "eight"],
    "ServerlessV2MaxCapacity": [1, "1.5", 256, 0.5, "257", "8.3"],
    "KmsKeyId": [KEY_ID, "alias/aws/rds", "key"],
    "SnapshotOnDelete": ["true", "nope"],
    "WaitForDeletion": ["false", False, "True", "later"],
    "DeletionProtection": [True, "TRUE", "1"],
    "WarmPool": ["ci", "qa-2", "a" * 20, "a" * 21, "CI", "1ci", ""],
    "PrepareScript": [
        "s3://masking/mask.sql",
        "s3://masking-scripts/prod db/mask.sql?versionId=3Lg.x",
        "https://masking.s3.amazonaws.com/mask.sql",
        "s3://Masking/mask.sql",
        "s3://masking",
        "s3://masking/mask.sql?acl=public",
        "s3://masking/mask.sql?versionId=",
        "",
    ],
}


def _schema_accepts(name: str, value: Any) -> bool:
    given = {**BASE, **COMPANIONS.get(name, {}), name: value}
    return not list(property_problems(given, []))


def _function_accepts(name: str, value: Any) -> bool:
    given = {**BASE, **COMPANIONS.get(name, {}), name: value}
    try:
        parse_properties(given)
    except PropertiesError:
        return False
    return True


def test_schema_properties_areExactlyThoseTheFunctionAccepts() -> None:
    assert set(SCHEMA["properties"]) == KNOWN_PROPERTIES


def test_schema_readOnlyProperties_areTheAttributesTheFunctionReturns() -> None:
    returned = attributes(ClusterView("clone", "available", "aurora-mysql"), "prod-db")
    listed = [pointer.removeprefix("/properties/") for pointer in SCHEMA["readOnlyProperties"]]
    assert sorted(listed) == sorted(returned)


def test_schema_required_isServiceTokenAndWhatTheFunctionRequires() -> None:
    with pytest.raises(PropertiesError) as refused:
        parse_properties({"ServiceToken": BASE["ServiceToken"]})
    assert [problem.split()[0] for problem in refused.value.problems] == ["SourceClusterId"]
    parse_properties({"SourceClusterId": "prod-db"})  # nothing else is required
    assert SCHEMA["required"] == ["ServiceToken", "SourceClusterId"]


def test_schema_isAValidDraft7SchemaForCustomAuroraClone() -> None:
    jsonschema.Draft7Validator.check_schema(SCHEMA)
    assert SCHEMA["typeName"] == "Custom::AuroraClone"
    assert SCHEMA["additionalProperties"] is False


def test_samples_coverEveryPropertyButTheServiceToken() -> None:
    assert set(SAMPLES) == set(SCHEMA["properties"]) - {"ServiceToken"}


@pytest.mark.parametrize(
    ("name", "value"), [(name, value) for name, values in SAMPLES.items() for value in values], ids=repr
)
def test_schema_verdict_isTheFunctionsVerdict(name: str, value: Any) -> None:
    assert _schema_accepts(name, value) == _function_accepts(name, value)


def _bounded() -> list[tuple[str, float, float]]:
    return [
        (name, schema["minimum"], schema["maximum"])
        for name, schema in SCHEMA["properties"].items()
        if "minimum" in schema or "maximum" in schema
    ]


def test_tags_maxItems_isTheFunctionsTagLimit() -> None:
    assert SCHEMA["properties"]["Tags"]["maxItems"] == MAX_USER_TAGS


def test_bounds_areGivenForEveryNumberProperty() -> None:
    numbers = {
        name
        for name, schema in SCHEMA["properties"].items()
        if isinstance(schema.get("type"), list) and {"integer", "number"} & set(schema["type"])
    }
    assert {name for name, _, _ in _bounded()} == numbers


@pytest.mark.parametrize(("name", "low", "high"), _bounded(), ids=lambda item: str(item))
def test_bounds_areTheFunctionsBounds_asNumbersAndAsStrings(name: str, low: float, high: float) -> None:
    step = 1 if "integer" in SCHEMA["properties"][name]["type"] else 0.5
    for value, accepted in ((low, True), (high, True), (low - step, False), (high + step, False)):
        for given in (value, f"{value:g}"):
            assert _function_accepts(name, given) is accepted, (name, given)
            assert _schema_accepts(name, given) is accepted, (name, given)


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ({"BacktrackTo": "2026-11-22T08:00:00Z"}, "BacktrackWindow"),
        ({"MasterUserSecretKmsKeyId": KEY_ID}, "ManageMasterUserPassword"),
        ({"ServerlessV2MinCapacity": "0.5"}, "ServerlessV2MaxCapacity"),
        ({"ServerlessV2MaxCapacity": "8"}, "ServerlessV2MinCapacity"),
    ],
)
def test_dependencies_refuseWhatTheFunctionRefuses(given: dict[str, str], missing: str) -> None:
    with pytest.raises(PropertiesError):
        parse_properties({**BASE, **given})
    problems = [message for _, message in property_problems({**BASE, **given}, [])]
    assert len(problems) == 1
    assert missing in problems[0]


def test_intrinsicFunctions_areLeftToCfnLint() -> None:
    given = {
        **BASE,
        "SourceClusterId": {"Ref": "Source"},
        "InstanceCount": {"Fn::Select": [0, ["2"]]},
        "Tags": [{"Key": "Stack", "Value": {"Ref": "AWS::StackName"}}, {"Fn::If": ["c", {"Key": "a"}, "x"]}],
        "VpcSecurityGroupIds": {"Fn::Split": [",", {"Ref": "Groups"}]},
        "Port": {"Fn::If": ["HasPort", {"Ref": "Port"}, {"Ref": "AWS::NoValue"}]},
    }
    assert list(property_problems(given, [])) == []


def test_eachBranchOfAnFnIf_isChecked() -> None:
    given = {**BASE, "InstanceCount": {"Fn::If": ["Big", 40, 2]}}
    problems = list(property_problems(given, ["Resources", "Db", "Properties"]))
    assert [path for path, _ in problems] == [["Resources", "Db", "Properties", "InstanceCount", "Fn::If", 1]]
    assert "InstanceCount" in problems[0][1]


def test_theLambdaHandler_importsNeitherTheRulesNorCfnLint() -> None:
    code = (
        "import sys, aurora_clone.handler\n"
        "print([m for m in sys.modules if m.startswith(('aurora_clone.lint', 'cfnlint', 'jsonschema'))])\n"
    )
    environment = {**os.environ, "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1"}
    result = subprocess.run(
        [sys.executable, "-c", code], env=environment, capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"
