"""The CloudFormation API at the local world's endpoint, driven with boto3 as a user drives CloudFormation:
stacks and change sets run by the local CloudFormation (clones made by the real function), seen through
DescribeStacks, events, resources, templates and exports, and waited for with botocore's waiters.

One session (time scale 0.002: a clone takes about 1.5 s of real time) serves the module; every test makes
its own stacks and deletes them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, WaiterError

from aurora_clone.local.session import LocalSession
from aurora_clone.local.stacks import NoChangesError, StackError

REPO = Path(__file__).resolve().parents[2]
FUNCTION_TEMPLATE = REPO / "template.yaml"
SOURCE = "prod-db"
FAST = {"Delay": 0.2, "MaxAttempts": 150}  # the waiters' own acceptors, looking every 0.2 s for up to 30 s
EMPTY_CHANGE_SET = (
    "The submitted information didn't contain changes. Submit different information to create a change set."
)
TEMPLATE = textwrap.dedent(
    """\
    Description: A clone for the API tests
    Parameters:
      Purpose:
        Type: String
      Colour:
        Type: String
        Default: blue
      Secret:
        Type: String
        NoEcho: true
        Default: hidden
    Resources:
      Database:
        Type: Custom::AuroraClone
        Metadata:
          Owner: team-a
        Properties:
          ServiceToken: !ImportValue aurora-clone-ServiceToken
          SourceClusterId: prod-db
          Tags:
            - Key: purpose
              Value: !Ref Purpose
            - Key: colour
              Value: !Ref Colour
    Outputs:
      ClusterId:
        Description: the clone's identifier
        Value: !GetAtt Database.ClusterId
        Export:
          Name: !Sub ${AWS::StackName}-ClusterId
    """
)
REFUSED_TEMPLATE = textwrap.dedent(
    """\
    Resources:
      Database:
        Type: Custom::AuroraClone
        Properties:
          ServiceToken: !ImportValue aurora-clone-ServiceToken
          SourceClusterId: prod-db
          Colour: blue
    """
)


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSession]:
    with LocalSession(str(FUNCTION_TEMPLATE), time_scale=0.002, printer=lambda _line: None) as session:
        session.world.create_source_cluster(SOURCE)
        yield session


@pytest.fixture
def cfn(local: LocalSession) -> Any:
    return local.world.client("cloudformation")


def parameters(**values: str) -> list[dict[str, Any]]:
    return [{"ParameterKey": key, "ParameterValue": value} for key, value in values.items()]


def described(cfn: Any, name: str) -> dict[str, Any]:
    (stack,) = cfn.describe_stacks(StackName=name)["Stacks"]
    return dict(stack)


def error_of(call: Any, **arguments: Any) -> tuple[str, str, int]:
    """The error code, message and HTTP status of a call that must fail."""
    with pytest.raises(ClientError) as caught:
        call(**arguments)
    response = caught.value.response
    return response["Error"]["Code"], response["Error"]["Message"], response["ResponseMetadata"]["HTTPStatusCode"]


def cluster_ids(local: LocalSession) -> set[str]:
    return {c["DBClusterIdentifier"] for c in local.world.client("rds").describe_db_clusters()["DBClusters"]}


# -- the function stack -----------------------------------------------------------------------------------------


def test_function_stack_is_described_with_its_outputs_exports_resources_and_template(
    local: LocalSession, cfn: Any
) -> None:
    stacks = {stack["StackName"]: stack for stack in cfn.describe_stacks()["Stacks"]}
    function_stack = stacks["aurora-clone"]

    assert function_stack["StackStatus"] == "CREATE_COMPLETE"
    assert function_stack["StackId"] == local.cloudformation.stack("aurora-clone").stack_id
    outputs = {output["OutputKey"]: output for output in function_stack["Outputs"]}
    service_token = local.cloudformation.stack("aurora-clone").outputs["ServiceToken"]
    assert outputs["ServiceToken"]["OutputValue"] == service_token
    assert outputs["ServiceToken"]["ExportName"] == "aurora-clone-ServiceToken"
    assert "ExportName" not in outputs["RequestTableName"]
    assert {"Name": "aurora-clone-ServiceToken", "Value": service_token} in [
        {"Name": export["Name"], "Value": export["Value"]} for export in cfn.list_exports()["Exports"]
    ]
    summaries = {
        item["LogicalResourceId"]: item
        for item in cfn.list_stack_resources(StackName="aurora-clone")["StackResourceSummaries"]
    }
    function_name = summaries["Function"]["PhysicalResourceId"]
    assert summaries["Function"]["ResourceType"] == "AWS::Serverless::Function"
    assert local.world.client("lambda").get_function(FunctionName=function_name)["Configuration"]["FunctionArn"] == (
        service_token
    )
    detail = cfn.describe_stack_resource(StackName=function_stack["StackId"], LogicalResourceId="RequestTable")
    assert detail["StackResourceDetail"]["PhysicalResourceId"] == outputs["RequestTableName"]["OutputValue"]
    assert cfn.get_template(StackName="aurora-clone")["TemplateBody"] == FUNCTION_TEMPLATE.read_text()
    summary = cfn.get_template_summary(StackName="aurora-clone")
    assert summary["DeclaredTransforms"] == ["AWS::Serverless-2016-10-31"]
    assert "CAPABILITY_AUTO_EXPAND" in summary["Capabilities"]


# -- a stack's life -------------------------------------------------------------------------------------------


def test_stack_is_created_updated_and_deleted_in_the_background_and_stays_visible_by_id(
    local: LocalSession, cfn: Any
) -> None:
    created = cfn.create_stack(
        StackName="api-life",
        TemplateBody=TEMPLATE,
        Parameters=parameters(Purpose="demo", Colour="red"),
        Tags=[{"Key": "team", "Value": "a"}],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack_id = created["StackId"]

    assert described(cfn, "api-life")["StackStatus"] == "CREATE_IN_PROGRESS"  # the clone takes ~1.5 s
    assert error_of(cfn.update_stack, StackName="api-life", TemplateBody=TEMPLATE) == (
        "ValidationError",
        f"Stack:{stack_id} is in CREATE_IN_PROGRESS state and can not be updated.",
        400,
    )
    cfn.get_waiter("stack_create_complete").wait(StackName="api-life", WaiterConfig=FAST)

    stack = described(cfn, stack_id)
    clone_id = stack["Outputs"][0]["OutputValue"]
    assert (stack["StackName"], stack["StackStatus"], stack["Description"]) == (
        "api-life",
        "CREATE_COMPLETE",
        "A clone for the API tests",
    )
    assert stack["Parameters"] == parameters(Purpose="demo", Colour="red", Secret="****")
    assert stack["Outputs"] == [
        {
            "OutputKey": "ClusterId",
            "OutputValue": clone_id,
            "Description": "the clone's identifier",
            "ExportName": "api-life-ClusterId",
        }
    ]
    assert (stack["Tags"], stack["Capabilities"]) == ([{"Key": "team", "Value": "a"}], ["CAPABILITY_IAM"])
    assert clone_id in cluster_ids(local)
    events = cfn.describe_stack_events(StackName="api-life")["StackEvents"]
    assert [(e["LogicalResourceId"], e["ResourceStatus"]) for e in reversed(events)] == [
        ("api-life", "CREATE_IN_PROGRESS"),
        ("Database", "CREATE_IN_PROGRESS"),
        ("Database", "CREATE_COMPLETE"),
        ("api-life", "CREATE_COMPLETE"),
    ]
    assert events[0]["PhysicalResourceId"] == stack_id and events[1]["PhysicalResourceId"] == clone_id
    assert events[0]["Timestamp"] >= events[-1]["Timestamp"] >= stack["CreationTime"]
    assert len({event["EventId"] for event in events}) == 4
    detail = cfn.describe_stack_resource(StackName="api-life", LogicalResourceId="Database")["StackResourceDetail"]
    assert (detail["PhysicalResourceId"], detail["ResourceType"], detail["ResourceStatus"]) == (
        clone_id,
        "Custom::AuroraClone",
        "CREATE_COMPLETE",
    )
    assert detail["Metadata"] == '{"Owner": "team-a"}'
    (resource,) = cfn.describe_stack_resources(PhysicalResourceId=clone_id)["StackResources"]
    assert (resource["StackId"], resource["LogicalResourceId"]) == (stack_id, "Database")
    assert cfn.get_template(StackName="api-life")["TemplateBody"] == TEMPLATE
    assert {"ExportingStackId": stack_id, "Name": "api-life-ClusterId", "Value": clone_id} in cfn.list_exports()[
        "Exports"
    ]

    # UpdateStack as on AWS: a parameter left out takes its Default, UsePreviousValue keeps the value.
    cfn.update_stack(
        StackName="api-life",
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": "Purpose", "UsePreviousValue": True}],
    )
    assert described(cfn, "api-life")["StackStatus"] == "UPDATE_IN_PROGRESS"
    cfn.get_waiter("stack_update_complete").wait(StackName="api-life", WaiterConfig=FAST)
    updated = described(cfn, "api-life")
    assert updated["StackStatus"] == "UPDATE_COMPLETE"
    assert updated["Parameters"] == parameters(Purpose="demo", Colour="blue", Secret="****")
    assert updated["LastUpdatedTime"] >= stack["CreationTime"]
    assert updated["Tags"] == [{"Key": "team", "Value": "a"}]  # no Tags given: kept
    clone = local.world.client("rds").describe_db_clusters(DBClusterIdentifier=clone_id)["DBClusters"][0]
    assert {"Key": "colour", "Value": "blue"} in clone["TagList"]
    assert error_of(
        cfn.update_stack,
        StackName="api-life",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": name, "UsePreviousValue": True} for name in ("Purpose", "Colour", "Secret")],
    ) == ("ValidationError", "No updates are to be performed.", 400)

    cfn.delete_stack(StackName="api-life")
    cfn.get_waiter("stack_delete_complete").wait(StackName="api-life", WaiterConfig=FAST)

    assert error_of(cfn.describe_stacks, StackName="api-life") == (
        "ValidationError",
        "Stack with id api-life does not exist",
        400,
    )
    deleted = described(cfn, stack_id)
    assert (deleted["StackStatus"], deleted["DeletionTime"] >= updated["LastUpdatedTime"]) == ("DELETE_COMPLETE", True)
    assert stack_id not in [stack["StackId"] for stack in cfn.describe_stacks()["Stacks"]]
    listed = cfn.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])["StackSummaries"]
    assert [(s["StackName"], s["StackStatus"]) for s in listed if s["StackId"] == stack_id] == [
        ("api-life", "DELETE_COMPLETE")
    ]
    assert "api-life-ClusterId" not in [export["Name"] for export in cfn.list_exports()["Exports"]]
    assert clone_id not in cluster_ids(local)
    cfn.delete_stack(StackName="api-life")  # a stack that does not exist: nothing to do, no error


def test_failed_create_rolls_back_and_the_create_waiter_reports_it(cfn: Any) -> None:
    stack_id = cfn.create_stack(StackName="api-refused", TemplateBody=REFUSED_TEMPLATE)["StackId"]

    with pytest.raises(WaiterError, match="ROLLBACK_COMPLETE"):
        cfn.get_waiter("stack_create_complete").wait(StackName="api-refused", WaiterConfig=FAST)

    assert described(cfn, "api-refused")["StackStatus"] == "ROLLBACK_COMPLETE"
    events = cfn.describe_stack_events(StackName=stack_id)["StackEvents"]
    rollback = next(e for e in events if e["ResourceStatus"] == "ROLLBACK_IN_PROGRESS")
    assert rollback["ResourceStatusReason"].startswith("The following resource(s) failed to create: [Database].")
    failure = next(e for e in events if e["ResourceStatus"] == "CREATE_FAILED")
    assert failure["ResourceStatusReason"].startswith("Received response status [FAILED] from custom resource.")
    assert "Colour" in failure["ResourceStatusReason"]
    cfn.delete_stack(StackName="api-refused")
    cfn.get_waiter("stack_delete_complete").wait(StackName="api-refused", WaiterConfig=FAST)
    assert described(cfn, stack_id)["StackStatus"] == "DELETE_COMPLETE"


def test_refusals_are_cloudformation_errors(local: LocalSession, cfn: Any, tmp_path: Path) -> None:
    assert error_of(cfn.describe_stacks, StackName="nowhere") == (
        "ValidationError",
        "Stack with id nowhere does not exist",
        400,
    )
    assert error_of(cfn.describe_stack_resource, StackName="aurora-clone", LogicalResourceId="Nothing") == (
        "ValidationError",
        "Resource Nothing does not exist for stack aurora-clone",
        400,
    )
    assert error_of(cfn.create_stack, StackName="aurora-clone", TemplateBody=TEMPLATE) == (
        "AlreadyExistsException",
        "Stack [aurora-clone] already exists",
        400,
    )
    assert error_of(cfn.create_stack, StackName="api-missing", TemplateBody=TEMPLATE) == (
        "ValidationError",
        "Parameters: [Purpose] must have values",
        400,
    )
    code, message, _ = error_of(cfn.create_stack, StackName="api-broken", TemplateBody="Resources: [")
    assert (code, message.startswith("Template format error")) == ("ValidationError", True)
    assert error_of(cfn.create_stack, StackName="api-no-template") == (
        "ValidationError",
        "Either Template URL or Template Body must be specified.",
        400,
    )
    assert error_of(cfn.create_stack, StackName="api-keep", TemplateBody=TEMPLATE, DisableRollback=True) == (
        "ValidationError",
        "DisableRollback=True is not supported by the local CloudFormation",
        400,
    )
    code, message, _ = error_of(cfn.describe_stack_set, StackSetName="anything")
    assert (code, message) == ("InvalidAction", "DescribeStackSet is not supported by the local CloudFormation")
    assert {stack.name for stack in local.cloudformation.every_stack()}.isdisjoint(
        {"api-missing", "api-broken", "api-no-template", "api-keep"}
    )


def test_template_url_names_an_object_of_the_worlds_s3(local: LocalSession, cfn: Any) -> None:
    s3 = local.world.client("s3")
    s3.create_bucket(Bucket="templates")
    s3.put_object(Bucket="templates", Key="clone.yaml", Body=TEMPLATE.encode())

    validated = cfn.validate_template(TemplateURL=f"{local.world.endpoint_url}/templates/clone.yaml")

    assert validated["Description"] == "A clone for the API tests"
    assert [(p["ParameterKey"], p.get("DefaultValue"), p["NoEcho"]) for p in validated["Parameters"]] == [
        ("Purpose", None, False),
        ("Colour", "blue", False),
        ("Secret", "hidden", True),
    ]
    assert validated["Capabilities"] == []
    code, message, _ = error_of(cfn.validate_template, TemplateURL=f"{local.world.endpoint_url}/templates/none.yaml")
    assert (code, "TemplateURL must name an object" in message) == ("ValidationError", True)


# -- change sets ----------------------------------------------------------------------------------------------


def test_change_sets_create_the_stack_from_review_then_update_it_and_an_empty_one_fails(
    local: LocalSession, cfn: Any
) -> None:
    created = cfn.create_change_set(
        StackName="api-changes",
        ChangeSetName="first",
        ChangeSetType="CREATE",
        TemplateBody=TEMPLATE,
        Parameters=parameters(Purpose="review"),
    )

    assert described(cfn, "api-changes")["StackStatus"] == "REVIEW_IN_PROGRESS"
    cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=created["Id"], WaiterConfig=FAST)
    first = cfn.describe_change_set(ChangeSetName="first", StackName="api-changes")
    assert (first["ChangeSetId"], first["StackId"], first["ExecutionStatus"]) == (
        created["Id"],
        created["StackId"],
        "AVAILABLE",
    )
    assert [(c["ResourceChange"]["Action"], c["ResourceChange"]["LogicalResourceId"]) for c in first["Changes"]] == [
        ("Add", "Database")
    ]
    assert first["Parameters"] == parameters(Purpose="review", Colour="blue", Secret="****")

    cfn.execute_change_set(ChangeSetName=created["Id"])
    cfn.get_waiter("stack_create_complete").wait(StackName="api-changes", WaiterConfig=FAST)

    stack = described(cfn, "api-changes")
    assert (stack["StackId"], stack["StackStatus"], stack["ChangeSetId"]) == (
        created["StackId"],
        "CREATE_COMPLETE",
        created["Id"],
    )
    assert cfn.describe_change_set(ChangeSetName=created["Id"])["ExecutionStatus"] == "EXECUTE_COMPLETE"
    clone_id = stack["Outputs"][0]["OutputValue"]

    same = cfn.create_change_set(
        StackName="api-changes",
        ChangeSetName="same",
        UsePreviousTemplate=True,
        Parameters=[{"ParameterKey": name, "UsePreviousValue": True} for name in ("Purpose", "Colour", "Secret")],
    )
    with pytest.raises(WaiterError) as empty:
        cfn.get_waiter("change_set_create_complete").wait(ChangeSetName=same["Id"], WaiterConfig=FAST)
    answer: dict[str, Any] = dict(empty.value.last_response)
    assert (answer["Status"], answer["StatusReason"], answer["ExecutionStatus"]) == (
        "FAILED",
        EMPTY_CHANGE_SET,
        "UNAVAILABLE",
    )
    assert error_of(cfn.execute_change_set, ChangeSetName=same["Id"])[0] == "InvalidChangeSetStatus"

    green = cfn.create_change_set(
        StackName="api-changes",
        ChangeSetName="green",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "Purpose", "UsePreviousValue": True}, *parameters(Colour="green")],
    )
    # A change set not executed holds its name; an executed one ("first") does not.
    busy = error_of(
        cfn.create_change_set,
        StackName="api-changes",
        ChangeSetName="green",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "Purpose", "UsePreviousValue": True}, *parameters(Colour="red")],
    )
    assert busy[0] == "AlreadyExistsException"
    (change,) = cfn.describe_change_set(ChangeSetName=green["Id"])["Changes"]
    assert (change["ResourceChange"]["Action"], change["ResourceChange"]["PhysicalResourceId"]) == ("Modify", clone_id)
    assert change["ResourceChange"]["Replacement"] == "Conditional"  # the function decides, by the id it answers
    listed = cfn.list_change_sets(StackName="api-changes")["Summaries"]
    assert [(s["ChangeSetName"], s["Status"]) for s in listed] == [
        ("first", "CREATE_COMPLETE"),
        ("same", "FAILED"),
        ("green", "CREATE_COMPLETE"),
    ]
    cfn.delete_change_set(ChangeSetName="same", StackName="api-changes")
    assert error_of(cfn.describe_change_set, ChangeSetName="same", StackName="api-changes") == (
        "ChangeSetNotFound",
        "ChangeSet [same] does not exist",
        404,
    )

    cfn.execute_change_set(ChangeSetName="green", StackName="api-changes")
    cfn.get_waiter("stack_update_complete").wait(StackName="api-changes", WaiterConfig=FAST)

    assert described(cfn, "api-changes")["Parameters"] == parameters(Purpose="review", Colour="green", Secret="****")
    # Executing a change set removes the stack's other change sets, which no longer apply.
    assert [s["ChangeSetName"] for s in cfn.list_change_sets(StackName="api-changes")["Summaries"]] == ["green"]
    # `aws cloudformation deploy` names change sets after the second: a deploy finished within it may reuse one.
    again = cfn.create_change_set(
        StackName="api-changes",
        ChangeSetName="green",
        TemplateBody=TEMPLATE,
        Parameters=[{"ParameterKey": "Purpose", "UsePreviousValue": True}, *parameters(Colour="red")],
    )
    assert again["Id"] != green["Id"]
    assert [s["ChangeSetId"] for s in cfn.list_change_sets(StackName="api-changes")["Summaries"]] == [again["Id"]]
    cfn.delete_stack(StackName="api-changes")
    cfn.get_waiter("stack_delete_complete").wait(StackName="api-changes", WaiterConfig=FAST)
    assert clone_id not in cluster_ids(local)


def test_create_change_set_left_in_review_is_deleted_with_its_stack(cfn: Any) -> None:
    created = cfn.create_change_set(
        StackName="api-review",
        ChangeSetName="never",
        ChangeSetType="CREATE",
        TemplateBody=TEMPLATE,
        Parameters=parameters(Purpose="none"),
    )
    assert error_of(
        cfn.create_change_set,
        StackName="api-review",
        ChangeSetName="never",
        ChangeSetType="CREATE",
        TemplateBody=TEMPLATE,
        Parameters=parameters(Purpose="none"),
    ) == ("AlreadyExistsException", "ChangeSet [never] already exists", 400)

    cfn.delete_stack(StackName="api-review")
    cfn.get_waiter("stack_delete_complete").wait(StackName="api-review", WaiterConfig=FAST)

    assert described(cfn, created["StackId"])["StackStatus"] == "DELETE_COMPLETE"
    assert error_of(cfn.describe_change_set, ChangeSetName=created["Id"])[0] == "ChangeSetNotFound"


# -- what the CLI uses: operations started in the background, their events as they happen -------------------


def test_started_operation_streams_its_events_as_they_happen_and_an_unchanged_update_is_told(
    local: LocalSession, tmp_path: Path
) -> None:
    cloudformation = local.cloudformation
    template = tmp_path / "clone.yaml"
    template.write_text(TEMPLATE)

    operation = cloudformation.start_create_stack("api-stream", TEMPLATE, {"Purpose": "stream"})

    assert not operation.done()
    streamed = [(event.logical_id, event.status) for event in operation.events()]
    assert operation.done() and operation.wait(timeout=0).status == "CREATE_COMPLETE"
    assert streamed == [
        ("api-stream", "CREATE_IN_PROGRESS"),
        ("Database", "CREATE_IN_PROGRESS"),
        ("Database", "CREATE_COMPLETE"),
        ("api-stream", "CREATE_COMPLETE"),
    ]
    with pytest.raises(NoChangesError, match=r"^No updates are to be performed\.$"):
        cloudformation.start_update_stack("api-stream", TEMPLATE, {"Purpose": "stream"})
    with pytest.raises(NoChangesError):
        cloudformation.update_stack("api-stream", str(template))  # parameters not given keep their values

    deleting = cloudformation.start_delete_stack("api-stream")

    assert cloudformation.start_delete_stack("api-stream") is deleting  # a second delete joins the first
    assert [event.status for event in deleting.events() if event.logical_id == "api-stream"] == [
        "DELETE_IN_PROGRESS",
        "DELETE_COMPLETE",
    ]
    assert "api-stream" not in cloudformation.stacks
    stack_id = deleting.stack.stack_id
    assert cloudformation.stack(stack_id).status == "DELETE_COMPLETE"
    with pytest.raises(StackError, match="Stack with id api-stream does not exist"):
        cloudformation.stack("api-stream")
