"""The local CloudFormation's template handling: parsing, parameters, intrinsics, conditions, order, outputs."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local.template import (
    NO_VALUE,
    AttributeNotFoundError,
    StackContext,
    TemplateError,
    active_resources,
    check_outputs,
    creation_order,
    dependencies,
    evaluate_conditions,
    import_names,
    load_template,
    parse_template,
    plain,
    resolve,
    resolve_outputs,
    resolve_parameters,
)

REPO = Path(__file__).resolve().parents[2]
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/my-stack/0a1b2c3d-0000-1111-2222-333344445555"

CONTEXT = StackContext(
    stack_name="my-stack",
    stack_id=STACK_ID,
    region="us-east-1",
    account_id="123456789012",
    parameters={"Env": "test", "Subnets": ["subnet-a", "subnet-b"], "Size": "2"},
    physical_ids={"Database": "my-stack-database-1a2b", "Role": "my-stack-Role-ABC"},
    attributes={"Database": {"Endpoint": "db.example.com", "Port": "3306"}, "Role": {"Arn": "arn:aws:iam::1:role/r"}},
    exports={"fn-ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:fn"},
    conditions={"IsTest": True, "IsProd": False},
    mappings={"Sizes": {"test": {"Class": "db.r6g.large"}}},
)


def template_with(resources: dict[str, Any], **sections: Any) -> dict[str, Any]:
    return {"Resources": resources, **sections}


def custom(properties: dict[str, Any] | None = None, **attributes: Any) -> dict[str, Any]:
    return {"Type": "Custom::Thing", "Properties": properties or {}, **attributes}


# -- parsing ------------------------------------------------------------------------------------------------

SHORT_FORMS = """
Resources:
  Thing:
    Type: Custom::Thing
    Properties:
      Ref: !Ref Env
      Sub: !Sub ${AWS::StackName}-x
      SubList: !Sub [ "${A}", { A: !Ref Env } ]
      GetAttDotted: !GetAtt Database.Endpoint
      GetAttList: !GetAtt [Database, Port]
      Import: !ImportValue
        Fn::Sub: ${Env}-token
      Join: !Join [",", [a, b]]
      Select: !Select [1, !Split [",", "a,b"]]
      If: !If [IsTest, small, large]
      Number: 3600
      Flag: true
"""


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param("Ref", {"Ref": "Env"}, id="Ref"),
        pytest.param("Sub", {"Fn::Sub": "${AWS::StackName}-x"}, id="Sub"),
        pytest.param("SubList", {"Fn::Sub": ["${A}", {"A": {"Ref": "Env"}}]}, id="Sub-with-variables"),
        pytest.param("GetAttDotted", {"Fn::GetAtt": ["Database", "Endpoint"]}, id="GetAtt-dotted"),
        pytest.param("GetAttList", {"Fn::GetAtt": ["Database", "Port"]}, id="GetAtt-list"),
        pytest.param("Import", {"Fn::ImportValue": {"Fn::Sub": "${Env}-token"}}, id="ImportValue"),
        pytest.param("Join", {"Fn::Join": [",", ["a", "b"]]}, id="Join"),
        pytest.param("Select", {"Fn::Select": [1, {"Fn::Split": [",", "a,b"]}]}, id="Select-Split"),
        pytest.param("If", {"Fn::If": ["IsTest", "small", "large"]}, id="If"),
        pytest.param("Number", 3600, id="number-stays-number"),
        pytest.param("Flag", True, id="boolean-stays-boolean"),
    ],
)
def test_parse_template_expands_short_forms(key: str, expected: Any) -> None:
    properties = parse_template(SHORT_FORMS)["Resources"]["Thing"]["Properties"]

    assert properties[key] == expected


def test_parse_template_gives_plain_types() -> None:
    def node_types(value: Any) -> set[type]:
        if isinstance(value, dict):
            return {type(value), *map(type, value)}.union(*(node_types(item) for item in value.values()))
        if isinstance(value, list):
            return {type(value)}.union(*(node_types(item) for item in value))
        return {type(value)}

    assert node_types(parse_template(SHORT_FORMS)) <= {dict, list, str, int, bool}


def test_parse_template_reads_json() -> None:
    text = '{"Resources": {"Thing": {"Type": "Custom::Thing", "Properties": {"Name": {"Ref": "AWS::StackName"}}}}}'

    assert parse_template(text)["Resources"]["Thing"]["Properties"] == {"Name": {"Ref": "AWS::StackName"}}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("Resources: [unclosed", "Template format error", id="yaml-syntax"),
        pytest.param("Description: nothing", "at least one Resources member", id="no-resources"),
        pytest.param("Resources:\n  Thing:\n    Properties: {}\n", "resource Thing has no Type", id="no-type"),
    ],
)
def test_parse_template_rejects_broken_templates(text: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        parse_template(text)


def test_plain_turns_dates_into_text() -> None:
    assert plain({"AWSTemplateFormatVersion": datetime.date(2010, 9, 9)}) == {"AWSTemplateFormatVersion": "2010-09-09"}


def test_load_template_names_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="Cannot read template"):
        load_template(tmp_path / "missing.yaml")


# -- parameters ---------------------------------------------------------------------------------------------

PARAMETERS: dict[str, Any] = {
    "Name": {"Type": "String", "MinLength": 1, "MaxLength": 5},
    "Prefix": {"Type": "String", "Default": "app", "AllowedPattern": "^[a-z]+$"},
    "Retention": {"Type": "Number", "Default": 30, "AllowedValues": [1, 7, 30]},
    "Count": {"Type": "Number", "Default": "2", "MinValue": 1, "MaxValue": 16},
    "Subnets": {"Type": "CommaDelimitedList", "Default": "a, b"},
    "Ports": {"Type": "List<Number>", "Default": "80,443"},
    "Vpc": {"Type": "AWS::EC2::VPC::Id", "Default": "vpc-1"},
    "Class": {
        "Type": "String",
        "Default": "db.r6g.large",
        "AllowedPattern": "^db\\..+$",
        "ConstraintDescription": "a DB class",
    },
    "Secret": {"Type": "String", "Default": "s3cret", "NoEcho": True, "MinLength": 3},
}


@pytest.mark.parametrize(
    ("given", "name", "expected"),
    [
        pytest.param({"Name": "x"}, "Prefix", "app", id="default"),
        pytest.param({"Name": "x", "Prefix": "web"}, "Prefix", "web", id="override"),
        pytest.param({"Name": "x"}, "Retention", "30", id="numeric-default-as-text"),
        pytest.param({"Name": "x", "Retention": "7"}, "Retention", "7", id="allowed-value"),
        pytest.param({"Name": "x"}, "Subnets", ["a", "b"], id="comma-delimited-list-trimmed"),
        pytest.param({"Name": "x"}, "Ports", ["80", "443"], id="list-of-numbers"),
        pytest.param({"Name": "x"}, "Vpc", "vpc-1", id="aws-specific-type-is-text"),
        pytest.param({"Name": "abcde"}, "Name", "abcde", id="max-length-inclusive"),
    ],
)
def test_resolve_parameters_values(given: dict[str, str], name: str, expected: Any) -> None:
    assert resolve_parameters({"Parameters": PARAMETERS}, given)[name] == expected


@pytest.mark.parametrize(
    ("given", "message"),
    [
        pytest.param({}, r"Parameters: \[Name\] must have values", id="missing-required"),
        pytest.param({"Name": "x", "Nope": "1"}, r"Parameters: \[Nope\] do not exist in the template", id="unknown"),
        pytest.param({"Name": ""}, "'Name' must contain at least 1 characters", id="min-length"),
        pytest.param({"Name": "abcdef"}, "'Name' must contain at most 5 characters", id="max-length"),
        pytest.param({"Name": "x", "Prefix": "Web"}, r"'Prefix' must match pattern \^\[a-z\]\+\$", id="pattern"),
        pytest.param({"Name": "x", "Retention": "5"}, "'Retention' must be one of AllowedValues", id="allowed"),
        pytest.param({"Name": "x", "Count": "two"}, "'Count' must be a number", id="number"),
        pytest.param({"Name": "x", "Count": "0"}, "'Count' must be a number not less than 1", id="min-value"),
        pytest.param({"Name": "x", "Count": "17"}, "'Count' must be a number not greater than 16", id="max-value"),
        pytest.param({"Name": "x", "Ports": "80,http"}, "'Ports' must be a number", id="list-member-number"),
        pytest.param(
            {"Name": "x", "Class": "r6g"}, "'Class' failed to satisfy constraint: a DB class", id="constraint-text"
        ),
    ],
)
def test_resolve_parameters_rejects(given: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolve_parameters({"Parameters": PARAMETERS}, given)


def test_resolve_parameters_shows_the_value_but_not_a_no_echo_one() -> None:
    with pytest.raises(TemplateError, match=r"\(value: 'Web'\)"):
        resolve_parameters({"Parameters": PARAMETERS}, {"Name": "x", "Prefix": "Web"})
    with pytest.raises(TemplateError) as refused:
        resolve_parameters({"Parameters": PARAMETERS}, {"Name": "x", "Secret": "ab"})
    assert "ab" not in str(refused.value).replace("Secret", "")


def test_resolve_parameters_keeps_previous_values_before_defaults() -> None:
    values = resolve_parameters(
        {"Parameters": PARAMETERS}, {"Count": "3"}, previous={"Name": "old", "Prefix": "web", "Count": "1"}
    )

    assert (values["Name"], values["Prefix"], values["Count"], values["Retention"]) == ("old", "web", "3", "30")


@pytest.mark.parametrize(
    ("declared_type", "message"),
    [
        pytest.param("AWS::SSM::Parameter::Value<String>", "not supported locally", id="ssm"),
        pytest.param("Strin", "Unrecognized parameter type: Strin", id="typo"),
    ],
)
def test_resolve_parameters_rejects_types(declared_type: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolve_parameters({"Parameters": {"P": {"Type": declared_type, "Default": "x"}}})


# -- intrinsic functions ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        pytest.param({"Ref": "Env"}, "test", id="Ref-parameter"),
        pytest.param({"Ref": "Subnets"}, ["subnet-a", "subnet-b"], id="Ref-list-parameter"),
        pytest.param({"Ref": "Database"}, "my-stack-database-1a2b", id="Ref-resource"),
        pytest.param({"Ref": "AWS::StackName"}, "my-stack", id="StackName"),
        pytest.param({"Ref": "AWS::StackId"}, STACK_ID, id="StackId"),
        pytest.param({"Ref": "AWS::Region"}, "us-east-1", id="Region"),
        pytest.param({"Ref": "AWS::AccountId"}, "123456789012", id="AccountId"),
        pytest.param({"Ref": "AWS::Partition"}, "aws", id="Partition"),
        pytest.param({"Ref": "AWS::URLSuffix"}, "amazonaws.com", id="URLSuffix"),
        pytest.param({"Fn::Sub": "${AWS::StackName}-${Env}"}, "my-stack-test", id="Sub-parameters"),
        pytest.param({"Fn::Sub": "${Database.Endpoint}:${Database.Port}"}, "db.example.com:3306", id="Sub-GetAtt"),
        pytest.param({"Fn::Sub": "${Database}"}, "my-stack-database-1a2b", id="Sub-resource"),
        pytest.param({"Fn::Sub": "${!Literal}-${Env}"}, "${Literal}-test", id="Sub-literal"),
        pytest.param({"Fn::Sub": "${Subnets}"}, "subnet-a,subnet-b", id="Sub-list-parameter"),
        pytest.param({"Fn::Sub": ["${Env}-${X}", {"Env": "over", "X": {"Ref": "Size"}}]}, "over-2", id="Sub-variables"),
        pytest.param({"Fn::GetAtt": ["Database", "Endpoint"]}, "db.example.com", id="GetAtt-list"),
        pytest.param({"Fn::GetAtt": "Role.Arn"}, "arn:aws:iam::1:role/r", id="GetAtt-dotted"),
        pytest.param({"Fn::GetAtt": ["Database", {"Fn::Join": ["", ["Po", "rt"]]}]}, "3306", id="GetAtt-computed"),
        pytest.param(
            {"Fn::ImportValue": {"Fn::Sub": "fn-ServiceToken"}}, CONTEXT.exports["fn-ServiceToken"], id="Import"
        ),
        pytest.param({"Fn::Join": ["-", ["a", {"Ref": "Env"}, 3]]}, "a-test-3", id="Join"),
        pytest.param({"Fn::Join": [",", {"Ref": "Subnets"}]}, "subnet-a,subnet-b", id="Join-list-parameter"),
        pytest.param({"Fn::Select": ["1", {"Ref": "Subnets"}]}, "subnet-b", id="Select-text-index"),
        pytest.param({"Fn::Split": ["|", "a|b|c"]}, ["a", "b", "c"], id="Split"),
        pytest.param({"Fn::Select": [2, {"Fn::Split": ["|", "a|b|c"]}]}, "c", id="Select-Split"),
        pytest.param({"Fn::If": ["IsTest", "small", "large"]}, "small", id="If-true"),
        pytest.param({"Fn::If": ["IsProd", "small", "large"]}, "large", id="If-false"),
        pytest.param({"Fn::FindInMap": ["Sizes", {"Ref": "Env"}, "Class"]}, "db.r6g.large", id="FindInMap"),
        pytest.param({"Fn::Base64": "hi"}, "aGk=", id="Base64"),
        pytest.param({"Fn::GetAZs": ""}, ["us-east-1a", "us-east-1b", "us-east-1c"], id="GetAZs"),
        pytest.param({"A": {"Fn::If": ["IsProd", "x", {"Ref": "AWS::NoValue"}]}, "B": 1}, {"B": 1}, id="NoValue-key"),
        pytest.param(["a", {"Ref": "AWS::NoValue"}, "b"], ["a", "b"], id="NoValue-item"),
        pytest.param({"Deep": [{"Key": {"Ref": "Env"}}]}, {"Deep": [{"Key": "test"}]}, id="nested"),
        pytest.param({"Count": 2, "On": True}, {"Count": 2, "On": True}, id="scalars-kept"),
    ],
)
def test_resolve(expression: Any, expected: Any) -> None:
    assert resolve(expression, CONTEXT) == expected


def test_resolve_ref_no_value_alone_is_no_value() -> None:
    assert resolve({"Ref": "AWS::NoValue"}, CONTEXT) is NO_VALUE


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        pytest.param({"Ref": "Nothing"}, r"Unresolved resource dependencies \[Nothing\]", id="Ref-unknown"),
        pytest.param({"Fn::Sub": "${Nothing}"}, r"Unresolved resource dependencies \[Nothing\]", id="Sub-unknown"),
        pytest.param({"Fn::GetAtt": ["Ghost", "Arn"]}, "references undefined resource Ghost", id="GetAtt-unknown"),
        pytest.param({"Fn::ImportValue": "nope"}, "No export named nope found.", id="Import-missing"),
        pytest.param({"Fn::Select": [5, ["a"]]}, "nonexistent value at index 5", id="Select-range"),
        pytest.param({"Fn::Select": ["x", ["a"]]}, "index 'x' is not a number", id="Select-index"),
        pytest.param({"Fn::Join": [",", "ab"]}, "needs a list of values", id="Join-not-list"),
        pytest.param({"Fn::If": ["Unknown", 1, 2]}, "Unresolved condition dependency Unknown", id="If-unknown"),
        pytest.param({"Fn::FindInMap": ["Sizes", "prod", "Class"]}, "Unable to get mapping", id="FindInMap-miss"),
        pytest.param({"Fn::Cidr": ["10.0.0.0/16", 2, 8]}, "Fn::Cidr is not supported locally", id="unsupported"),
        pytest.param({"Fn::Sub": 3}, "Fn::Sub needs a string", id="Sub-shape"),
        pytest.param({"Fn::Sub": "${Subnets.x}"}, "undefined resource Subnets", id="Sub-dot-param"),
    ],
)
def test_resolve_rejects(expression: Any, message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        resolve(expression, CONTEXT)


def test_resolve_names_the_missing_attribute() -> None:
    with pytest.raises(AttributeNotFoundError) as missing:
        resolve({"Fn::GetAtt": ["Database", "ReaderEndpoint"]}, CONTEXT)

    assert (missing.value.logical_id, missing.value.attribute) == ("Database", "ReaderEndpoint")


# -- conditions ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        pytest.param({"Fn::Equals": [{"Ref": "Env"}, "test"]}, True, id="Equals"),
        pytest.param({"Fn::Equals": [{"Ref": "Size"}, 2]}, True, id="Equals-as-text"),
        pytest.param({"Fn::Not": [{"Fn::Equals": [{"Ref": "Env"}, "test"]}]}, False, id="Not"),
        pytest.param({"Fn::And": [{"Condition": "Base"}, {"Fn::Equals": ["a", "b"]}]}, False, id="And"),
        pytest.param({"Fn::Or": [{"Condition": "Base"}, {"Fn::Equals": ["a", "b"]}]}, True, id="Or"),
    ],
)
def test_evaluate_conditions(condition: Any, expected: bool) -> None:
    template = {"Conditions": {"Base": {"Fn::Equals": ["x", "x"]}, "Checked": condition}}

    assert evaluate_conditions(template, CONTEXT)["Checked"] is expected


def test_evaluate_conditions_rejects_a_cycle() -> None:
    template = {"Conditions": {"A": {"Condition": "B"}, "B": {"Condition": "A"}}}

    with pytest.raises(TemplateError, match="circular condition"):
        evaluate_conditions(template, CONTEXT)


def test_active_resources_leaves_out_false_conditions() -> None:
    template = template_with({"Always": custom(), "OnlyProd": custom(Condition="IsProd")})

    assert list(active_resources(template, {"IsProd": False})) == ["Always"]


# -- dependencies and order ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "extra", "expected"),
    [
        pytest.param({"X": {"Ref": "A"}}, {}, {"A"}, id="Ref"),
        pytest.param({"X": {"Fn::GetAtt": ["A", "Arn"]}}, {}, {"A"}, id="GetAtt"),
        pytest.param({"X": {"Fn::GetAtt": "A.Arn"}}, {}, {"A"}, id="GetAtt-dotted"),
        pytest.param({"X": {"Fn::Sub": "${A}-${C.Port}-${Env}"}}, {}, {"A", "C"}, id="Sub"),
        pytest.param({"X": {"Fn::Sub": ["${A}", {"A": "literal"}]}}, {}, set(), id="Sub-variable-shadows"),
        pytest.param({"X": {"Fn::Sub": ["${V}", {"V": {"Ref": "C"}}]}}, {}, {"C"}, id="Sub-variable-value"),
        pytest.param({"X": {"Fn::Sub": "${!A}"}}, {}, set(), id="Sub-literal"),
        pytest.param({}, {"DependsOn": "A"}, {"A"}, id="DependsOn-text"),
        pytest.param({}, {"DependsOn": ["A", "C"]}, {"A", "C"}, id="DependsOn-list"),
        pytest.param({"X": {"Ref": "AWS::Region"}, "Y": {"Ref": "Env"}}, {}, set(), id="parameters-not-resources"),
    ],
)
def test_dependencies(properties: dict[str, Any], extra: dict[str, Any], expected: set[str]) -> None:
    template = template_with(
        {"A": custom(), "C": custom(), "B": custom(properties, **extra)}, Parameters={"Env": {"Type": "String"}}
    )

    assert dependencies(template, template["Resources"])["B"] == expected


def test_dependencies_rejects_unknown_names() -> None:
    template = template_with({"B": custom({"X": {"Ref": "Ghost"}})})

    with pytest.raises(TemplateError, match=r"Unresolved resource dependencies \[Ghost\] in the Resources block"):
        dependencies(template, template["Resources"])


@pytest.mark.parametrize(
    ("needs", "expected"),
    [
        pytest.param({"A": set(), "B": set()}, ["A", "B"], id="independent-in-template-order"),
        pytest.param({"B": {"A"}, "A": set()}, ["A", "B"], id="dependency-first"),
        pytest.param({"C": {"B"}, "B": {"A"}, "A": set(), "D": set()}, ["A", "D", "B", "C"], id="chain"),
    ],
)
def test_creation_order(needs: dict[str, set[str]], expected: list[str]) -> None:
    assert creation_order(needs) == expected


def test_creation_order_rejects_a_cycle() -> None:
    with pytest.raises(TemplateError, match=r"Circular dependency between resources: \[A, B\]"):
        creation_order({"A": {"B"}, "B": {"A"}, "C": set()})


@pytest.mark.parametrize("checked", [False, True], ids=["without connection check", "with connection check"])
def test_function_stack_template_order(checked: bool) -> None:
    template = load_template(REPO / "template.yaml")
    resources = active_resources(template, {"HasConnectionCheck": checked, "CanPrepare": checked})

    order = creation_order(dependencies(template, resources))

    assert order.index("LogGroup") < order.index("FunctionRole") < order.index("Function")
    assert order.index("RequestTable") < order.index("RequestEnginePolicy") < order.index("WakeUpMapping")
    assert order.index("WakeUpDeadLetterQueue") < order.index("WakeUpQueue") < order.index("WakeUpMapping")
    assert order.index("Function") < order.index("RdsEventRule") < order.index("RdsEventPermission")
    assert ("ConnectionCheckFunction" in order) is checked
    if checked:
        assert order.index("ConnectionCheckRole") < order.index("ConnectionCheckFunction") < order.index("Function")


# -- outputs and imports ------------------------------------------------------------------------------------


def test_resolve_outputs() -> None:
    outputs = {
        "Endpoint": {
            "Value": {"Fn::GetAtt": ["Database", "Endpoint"]},
            "Export": {"Name": {"Fn::Sub": "${AWS::StackName}-Endpoint"}},
        },
        "Subnets": {"Value": {"Ref": "Subnets"}, "Description": "the subnets"},
        "ProdOnly": {"Value": "x", "Condition": "IsProd"},
    }

    resolved = resolve_outputs(template_with({"Database": custom()}, Outputs=outputs), CONTEXT)

    assert resolved["Endpoint"].value == "db.example.com"
    assert resolved["Endpoint"].export_name == "my-stack-Endpoint"
    assert (resolved["Subnets"].value, resolved["Subnets"].export_name) == ("subnet-a,subnet-b", None)
    assert resolved["Subnets"].description == "the subnets"
    assert "ProdOnly" not in resolved


@pytest.mark.parametrize(
    ("output", "message"),
    [
        pytest.param({"Value": {"Ref": "Ghost"}}, r"\[Ghost\] in the Outputs block", id="unknown-reference"),
        pytest.param({"Description": "no value"}, "must contain a Value", id="no-value"),
    ],
)
def test_check_outputs_rejects(output: dict[str, Any], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        check_outputs(template_with({"Database": custom()}, Outputs={"Broken": output}))


def test_import_names() -> None:
    template = template_with(
        {"Database": custom({"ServiceToken": {"Fn::ImportValue": {"Fn::Sub": "${Env}-token"}}})},
        Outputs={"Other": {"Value": {"Fn::ImportValue": "shared-vpc"}}},
    )

    assert import_names(template, CONTEXT) == {"test-token", "shared-vpc"}


def test_example_stack_resolves_like_cloudformation() -> None:
    template = load_template(REPO / "example" / "template.yaml")
    parameters = resolve_parameters(template, {"SourceClusterId": "prod-db"})
    context = StackContext(
        "integration",
        STACK_ID,
        "us-east-1",
        "123456789012",
        parameters,
        exports={"aurora-clone-ServiceToken": "arn:fn"},
    )

    properties = resolve(template["Resources"]["TestDatabase"]["Properties"], context)

    assert properties == {
        "ServiceToken": "arn:fn",
        "ServiceTimeout": 3600,
        "SourceClusterId": "prod-db",
        "InstanceClass": "db.r6g.large",
        "WarmPool": "",
        "WaitForDeletion": "true",
        "Tags": [{"Key": "Purpose", "Value": "integration-test"}, {"Key": "Stack", "Value": "integration"}],
    }
