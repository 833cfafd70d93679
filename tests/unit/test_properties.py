"""parse_properties: CloudFormation's strings converted once, every bad value refused by name."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone.properties import MAX_USER_TAGS, CloneProperties, PropertiesError, parse_properties
from tests.unit.properties_helpers import SERVICE_TOKEN, SOURCE_ARN, names, problems_of, raw


def tags(count: int) -> list[dict[str, str]]:
    return [{"Key": f"key-{n}", "Value": f"value-{n}"} for n in range(count)]


def test_only_source_given_defaults_applied() -> None:
    parsed = parse_properties(raw())

    assert parsed == CloneProperties(source_cluster_id="prod-db")
    assert parsed.instance_count == 1  # one writer
    assert parsed.service_timeout == 3600  # CloudFormation's default wait for a custom resource
    assert parsed.tags == ()
    assert parsed.cluster_id is None
    assert parsed.port is None


@pytest.mark.parametrize(
    ("name", "value", "field", "expected"),
    [
        pytest.param("InstanceCount", "2", "instance_count", 2, id="count-string"),
        pytest.param("InstanceCount", 2, "instance_count", 2, id="count-number"),
        pytest.param("InstanceCount", " 3 ", "instance_count", 3, id="count-padded"),
        pytest.param("InstanceCount", "1", "instance_count", 1, id="count-low-bound"),
        pytest.param("InstanceCount", "16", "instance_count", 16, id="count-writer-and-15-readers"),
        pytest.param("Port", "3307", "port", 3307, id="port-string"),
        pytest.param("Port", 3307, "port", 3307, id="port-number"),
        pytest.param("Port", "1150", "port", 1150, id="port-low-bound"),
        pytest.param("Port", "65535", "port", 65535, id="port-high-bound"),
        pytest.param("ServiceTimeout", "60", "service_timeout", 60, id="timeout-string"),
        pytest.param("ServiceTimeout", 1, "service_timeout", 1, id="timeout-low-bound"),
        pytest.param("ServiceTimeout", "3600", "service_timeout", 3600, id="timeout-high-bound"),
        pytest.param("ClusterId", "My-Clone", "cluster_id", "my-clone", id="cluster-id-lower-cased"),
        pytest.param("ClusterId", "A" + "b" * 62, "cluster_id", "a" + "b" * 62, id="cluster-id-63-chars"),
        pytest.param("ClusterId", "c", "cluster_id", "c", id="cluster-id-one-letter"),
        pytest.param("SourceClusterId", "Prod-DB", "source_cluster_id", "prod-db", id="source-id-lower-cased"),
        pytest.param("InstanceClass", "db.r6g.large", "instance_class", "db.r6g.large", id="class-provisioned"),
        pytest.param("InstanceClass", "db.r7g.16xlarge", "instance_class", "db.r7g.16xlarge", id="class-large-size"),
        pytest.param("InstanceClass", "db.serverless", "instance_class", "db.serverless", id="class-serverless"),
        pytest.param(
            "VpcSecurityGroupIds",
            ["sg-12345678", "sg-0123456789abcdef0"],
            "vpc_security_group_ids",
            ("sg-12345678", "sg-0123456789abcdef0"),
            id="groups-list",
        ),
        pytest.param(
            "VpcSecurityGroupIds",
            "sg-12345678, sg-0123456789abcdef0",
            "vpc_security_group_ids",
            ("sg-12345678", "sg-0123456789abcdef0"),
            id="groups-comma-string",
        ),
        pytest.param("DBSubnetGroupName", "clone-subnets", "db_subnet_group_name", "clone-subnets", id="subnet-group"),
        pytest.param(
            "DBClusterParameterGroupName",
            "default.aurora-mysql8.0",
            "db_cluster_parameter_group_name",
            "default.aurora-mysql8.0",
            id="cluster-parameter-group-default-name",
        ),
        pytest.param(
            "Tags",
            [{"Key": "team", "Value": "payments"}, {"Key": "env", "Value": ""}],
            "tags",
            (("team", "payments"), ("env", "")),
            id="tags-list",
        ),
        pytest.param(
            "Tags",
            tags(MAX_USER_TAGS),
            "tags",
            tuple((f"key-{n}", f"value-{n}") for n in range(MAX_USER_TAGS)),
            id="tags-at-limit-fit",
        ),
        pytest.param(
            "Tags",
            [{"Key": "k" * 128, "Value": "v" * 256}],
            "tags",
            (("k" * 128, "v" * 256),),
            id="tags-longest-key-and-value",
        ),
    ],
)
def test_valid_value_converted(name: str, value: Any, field: str, expected: Any) -> None:
    parsed = parse_properties(raw(**{name: value}))

    assert getattr(parsed, field) == expected


def test_cloudformation_keys_accepted() -> None:
    parsed = parse_properties({"ServiceToken": SERVICE_TOKEN, "ServiceTimeout": "900", "SourceClusterId": "prod-db"})

    assert parsed.service_timeout == 900
    assert parsed.source_cluster_id == "prod-db"


@pytest.mark.parametrize(
    ("source", "identifier"),
    [
        pytest.param(SOURCE_ARN, "prod-db", id="arn"),
        pytest.param("arn:aws-cn:rds:cn-north-1:123456789012:cluster:prod-db", "prod-db", id="arn-other-partition"),
        pytest.param("prod-db", "prod-db", id="identifier"),
    ],
)
def test_source_given_identifier_extracted(source: str, identifier: str) -> None:
    parsed = parse_properties(raw(SourceClusterId=source))

    assert parsed.source_cluster_id == source  # an ARN is kept whole: cross-account clones need it
    assert parsed.source_identifier == identifier


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param({"ServiceToken": SERVICE_TOKEN}, id="absent"),
        pytest.param({"ServiceToken": SERVICE_TOKEN, "SourceClusterId": ""}, id="empty"),
    ],
)
def test_missing_source_refused(properties: dict[str, Any]) -> None:
    problems = problems_of(properties)

    assert len(problems) == 1
    assert "SourceClusterId" in problems[0]
    assert "required" in problems[0]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("SourceClusterId", "not a cluster!", id="source-text"),
        pytest.param("SourceClusterId", "1prod", id="source-digit-first"),
        pytest.param("SourceClusterId", "arn:aws:rds:us-east-1:123456789012:cluster:prod--db", id="source-arn-bad-id"),
        pytest.param("SourceClusterId", "arn:aws:rds:us-east-1:123456789012:db:prod-db", id="source-instance-arn"),
        pytest.param("ClusterId", "1clone", id="cluster-id-digit-first"),
        pytest.param("ClusterId", "my--clone", id="cluster-id-double-hyphen"),
        pytest.param("ClusterId", "my-clone-", id="cluster-id-trailing-hyphen"),
        pytest.param("ClusterId", "a" * 64, id="cluster-id-64-chars"),
        pytest.param("ClusterId", "my_clone", id="cluster-id-underscore"),
        pytest.param("ClusterId", ["my-clone"], id="cluster-id-list"),
        pytest.param("InstanceCount", "0", id="count-zero"),
        pytest.param("InstanceCount", "17", id="count-above-aurora-limit"),
        pytest.param("InstanceCount", "abc", id="count-text"),
        pytest.param("InstanceCount", "1.5", id="count-fraction"),
        pytest.param("Port", "80", id="port-below-aurora-range"),
        pytest.param("Port", "x", id="port-text"),
        pytest.param("Port", "65536", id="port-above-range"),
        pytest.param("InstanceClass", "r6g.large", id="class-without-db-prefix"),
        pytest.param("InstanceClass", "db.r6g", id="class-without-size"),
        pytest.param("InstanceClass", "large", id="class-word"),
        pytest.param("VpcSecurityGroupIds", "sg-xyz", id="groups-bad-id"),
        pytest.param("VpcSecurityGroupIds", ["sg-12345678", "web-servers"], id="groups-one-bad"),
        pytest.param("VpcSecurityGroupIds", [1, 2], id="groups-not-strings"),
        pytest.param("DBSubnetGroupName", "subnets/a", id="subnet-group-slash"),
        pytest.param("Tags", "team=payments", id="tags-not-a-list"),
        pytest.param("Tags", {"team": "payments"}, id="tags-map"),
        pytest.param("Tags", [{"Key": "aws:cloudformation:stack-name", "Value": "x"}], id="tags-aws-prefix"),
        pytest.param("Tags", [{"Key": "AWS:owner", "Value": "x"}], id="tags-aws-prefix-upper"),
        pytest.param("Tags", [{"Key": "aurora-clone:managed-by", "Value": "me"}], id="tags-own-prefix"),
        pytest.param("Tags", [{"Key": "team", "Value": "a"}, {"Key": "team", "Value": "b"}], id="tags-duplicate-key"),
        pytest.param("Tags", tags(MAX_USER_TAGS + 1), id="tags-over-limit"),
        pytest.param("Tags", [{"Key": "k" * 129, "Value": "v"}], id="tags-key-129"),
        pytest.param("Tags", [{"Key": "k", "Value": "v" * 257}], id="tags-value-257"),
        pytest.param("Tags", [{"Key": "", "Value": "v"}], id="tags-empty-key"),
        pytest.param("Tags", [{"Value": "v"}], id="tags-no-key"),
        pytest.param("Tags", [{"Key": "k", "Value": "v", "Extra": "x"}], id="tags-extra-field"),
        pytest.param("ServiceTimeout", "0", id="timeout-zero"),
        pytest.param("ServiceTimeout", "3601", id="timeout-above-cloudformation-max"),
    ],
)
def test_invalid_value_refused_by_name(name: str, value: Any) -> None:
    problems = problems_of(raw(**{name: value}))

    assert len(problems) == 1, problems
    assert names(problems[0], name)


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("InstanceCout", id="misspelt"),
        pytest.param("instanceCount", id="wrong-case"),
        pytest.param("Engine", id="not-supported"),
    ],
)
def test_unknown_property_refused_by_name(name: str) -> None:
    problems = problems_of(raw(**{name: "2"}))

    assert len(problems) == 1
    assert f"'{name}'" in problems[0]


def test_unknown_secret_property_value_kept_out_of_error() -> None:
    with pytest.raises(PropertiesError) as raised:
        parse_properties(raw(MasterUserPassword="hunter2"))

    error = raised.value
    assert "MasterUserPassword" in str(error)
    assert "hunter2" not in str(error)
    assert "hunter2" not in repr(error)
    assert not any("hunter2" in problem for problem in error.problems)


def test_several_problems_reported_together() -> None:
    with pytest.raises(PropertiesError) as raised:
        parse_properties(
            {
                "ServiceToken": SERVICE_TOKEN,
                "ClusterId": "1clone",
                "InstanceCount": "0",
                "Port": "80",
                "Tags": [{"Key": "aws:x", "Value": "y"}],
                "Colour": "blue",
            }
        )

    problems = raised.value.problems
    expected = ["Colour", "SourceClusterId", "ClusterId", "InstanceCount", "Port", "Tags"]
    assert len(problems) == len(expected)
    for name in expected:
        assert sum(names(problem, name) for problem in problems) == 1, name
    assert all(problem in str(raised.value) for problem in problems)


@pytest.mark.parametrize(
    "value",
    [
        pytest.param([], id="empty-list"),
        pytest.param([""], id="empty-comma-delimited-parameter"),
        pytest.param(" , ", id="blank-comma-string"),
    ],
)
def test_empty_security_groups_treated_as_unset(value: Any) -> None:
    assert parse_properties(raw(VpcSecurityGroupIds=value)).vpc_security_group_ids is None


@pytest.mark.parametrize(
    "text", ["1_0", "\uff11\uff16", "2.0", " "], ids=["underscore", "full-width", "decimal", "blank"]
)
def test_instance_count_not_plain_ascii_digits_refused(text: str) -> None:
    with pytest.raises(PropertiesError, match="InstanceCount"):
        parse_properties(raw(InstanceCount=text))
