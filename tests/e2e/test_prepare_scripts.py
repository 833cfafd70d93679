"""Prepare scripts end to end in the local world: a stack's clone has its customers' emails masked by a script
in S3 before the stack goes green, while the source keeps the real ones; a script that fails half-way or
cannot be split fails the stack with the statement's number and line and no row value, and its clone goes;
an Update that changes the script's version runs it again; one that does not, runs nothing."""

from __future__ import annotations

import json
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.database_session import Endpoint, open_session
from aurora_clone.local.session import LocalSession
from aurora_clone.local.world import SOURCE_MASTER_USERNAME
from aurora_clone.prepare_script import split_statements
from tests.e2e.test_connection_check_local import CHECKED, FUNCTION_TEMPLATE, invoke, probe_function
from tests.local_databases import connect

SOURCE = "orders-db"
BUCKET = "masking-scripts"
PREPARED = {**CHECKED, "PrepareScriptLocations": f"arn:aws:s3:::{BUCKET}/*"}
MASK = """\
-- Every customer gets an address of their own that reaches no one.
UPDATE customers
   SET email = 'customer-' || id || '@example.invalid';
UPDATE customers SET name = 'Customer ' || id;
"""
STACK_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Script:
    Type: String
Resources:
  TestDatabase:
    Type: Custom::AuroraClone
    Properties:
      ServiceToken: !ImportValue aurora-clone-ServiceToken
      SourceClusterId: orders-db
      ManageMasterUserPassword: true
      PrepareScript: !Ref Script
Outputs:
  Endpoint:
    Value: !GetAtt TestDatabase.Endpoint
  Port:
    Value: !GetAtt TestDatabase.Port
  ClusterId:
    Value: !GetAtt TestDatabase.ClusterId
  PreparedWith:
    Value: !GetAtt TestDatabase.PreparedWith
  Secret:
    Value: !GetAtt TestDatabase.MasterUserSecretArn
"""


@pytest.fixture(scope="module")
def local() -> Iterator[LocalSession]:
    with LocalSession(
        FUNCTION_TEMPLATE,
        time_scale=0.005,
        printer=lambda _line: None,
        function_parameters=PREPARED,
        real_databases=True,
    ) as session:
        session.world.create_source_cluster(SOURCE, engine="aurora-postgresql")
        s3 = session.world.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        yield session


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = Path(tmp_path_factory.mktemp("prepare")) / "prepared.yaml"
    path.write_text(STACK_TEMPLATE)
    return str(path)


def put_script(local: LocalSession, key: str, text: str) -> str:
    """Store a script; its version id."""
    answer = local.world.client("s3").put_object(Bucket=BUCKET, Key=key, Body=text.encode())
    return str(answer["VersionId"])


def rows(local: LocalSession, outputs: dict[str, str], statement: str) -> list[list[Any]]:
    """``statement``'s rows in the stack's clone, logged in as a test would: with the clone's managed secret."""
    secret = local.world.client("secretsmanager").get_secret_value(SecretId=outputs["Secret"])
    password = json.loads(secret["SecretString"])["password"]
    db = connect(outputs["Endpoint"], outputs["Port"], SOURCE_MASTER_USERNAME, password)
    try:
        return [list(row) for row in db.run(statement) or []]
    finally:
        db.close()


def source_emails(local: LocalSession) -> list[str]:
    databases = local.world.databases
    assert databases is not None
    source = databases.server(SOURCE)
    assert source is not None
    db = connect(source.address, source.port, source.credentials.user, source.credentials.password)
    try:
        return [row[0] for row in db.run("SELECT email FROM customers ORDER BY id")]
    finally:
        db.close()


def test_the_clone_answers_with_masked_rows_and_the_source_keeps_the_real_ones(
    local: LocalSession, template: str
) -> None:
    version = put_script(local, "orders/mask.sql", MASK)

    stack = local.cloudformation.create_stack("masked", template, {"Script": f"s3://{BUCKET}/orders/mask.sql"})

    assert stack.status == "CREATE_COMPLETE", stack.status_reason
    assert stack.outputs["PreparedWith"] == f"s3://{BUCKET}/orders/mask.sql?versionId={version}"
    assert rows(local, stack.outputs, "SELECT email, name FROM customers ORDER BY id") == [
        ["customer-1@example.invalid", "Customer 1"],
        ["customer-2@example.invalid", "Customer 2"],
        ["customer-3@example.invalid", "Customer 3"],
    ]
    assert source_emails(local) == ["ada@example.com", "grace@example.com", "edsger@example.com"]

    # Same script, same version: the Update runs nothing (a row written since stays as it is).
    rows(local, stack.outputs, "UPDATE customers SET name = 'Written by the tests' WHERE id = 1")
    same = local.cloudformation.update_stack("masked", template, {"Script": f"s3://{BUCKET}/orders/mask.sql "})
    assert same.status == "UPDATE_COMPLETE", same.status_reason
    assert rows(local, same.outputs, "SELECT name FROM customers WHERE id = 1") == [["Written by the tests"]]
    assert same.outputs["PreparedWith"] == stack.outputs["PreparedWith"]

    # A new version, named: it runs.
    newer = put_script(local, "orders/mask.sql", MASK.replace("Customer ", "Person "))
    changed = local.cloudformation.update_stack(
        "masked", template, {"Script": f"s3://{BUCKET}/orders/mask.sql?versionId={newer}"}
    )
    assert changed.status == "UPDATE_COMPLETE", changed.status_reason
    assert changed.outputs["PreparedWith"] == f"s3://{BUCKET}/orders/mask.sql?versionId={newer}"
    assert rows(local, changed.outputs, "SELECT name FROM customers WHERE id = 1") == [["Person 1"]]

    # Forged invokes of the deployed function, as any principal allowed to invoke it could send them: for the
    # source, and for the clone under a request that is not pending. Neither runs anything.
    rows(local, changed.outputs, "UPDATE customers SET name = 'Written by the tests' WHERE id = 1")
    forged = [
        invoke(local, probe_function(local), {"cluster": SOURCE, "prepare": "0123456789ab"}),
        invoke(local, probe_function(local), {"cluster": changed.outputs["ClusterId"], "prepare": "0123456789ab"}),
    ]
    assert "not a cluster this tool made" in forged[0]["detail"]
    assert "no pending request '0123456789ab'" in forged[1]["detail"]
    assert rows(local, changed.outputs, "SELECT name FROM customers WHERE id = 1") == [["Written by the tests"]]
    assert source_emails(local) == ["ada@example.com", "grace@example.com", "edsger@example.com"]

    assert local.cloudformation.delete_stack("masked").status == "DELETE_COMPLETE"


@pytest.mark.parametrize(
    ("script", "said"),
    [
        (
            # Statement 2 fails on a row's value: the row was masked by statement 1 in the same transaction.
            "UPDATE customers SET email = 'x-' || id || '@example.invalid';\n\n"
            "UPDATE customers SET id = email::integer;\nUPDATE customers SET name = 'never';",
            "statement 2 (line 3) failed: invalid input syntax for type integer (SQLSTATE 22P02)",
        ),
        ("UPDATE customers SET name = 'Customer;\n", "line 1: the ' quote opened here is never closed"),
        ("UPDAT customers SET name = 'x';", 'statement 1 (line 1) failed: syntax error at or near "UPDAT"'),
    ],
    ids=["fails half-way", "cannot be split", "syntax error"],
)
def test_a_failing_script_fails_the_stack_naming_the_statement_and_its_clone_goes(
    local: LocalSession, template: str, script: str, said: str
) -> None:
    put_script(local, "orders/broken.sql", script)

    stack = local.cloudformation.create_stack("broken", template, {"Script": f"s3://{BUCKET}/orders/broken.sql"})

    assert stack.status == "ROLLBACK_COMPLETE", stack.status_reason
    failure = next(event for event in stack.events if event.status == "CREATE_FAILED")
    assert said in failure.reason, failure.reason
    assert "example.com" not in failure.reason and "x-1" not in failure.reason
    assert source_emails(local) == ["ada@example.com", "grace@example.com", "edsger@example.com"]
    assert local.world.wait_until(lambda: not any(local.leftovers().values()), world_seconds=1200), local.leftovers()
    assert local.cloudformation.delete_stack("broken").status == "DELETE_COMPLETE"


def test_a_script_runs_in_one_transaction_and_a_statement_outlasting_its_time_is_stopped(local: LocalSession) -> None:
    # The session the in-VPC function runs scripts with, against the source's real server: TLS verified with
    # the world's CA, as the function verifies RDS's.
    databases = local.world.databases
    assert databases is not None
    server = databases.server(SOURCE)
    assert server is not None
    context = ssl.create_default_context(cafile=local.world.ca_bundle)
    endpoint = Endpoint(server.address, server.port, "aurora-postgresql")
    script = "UPDATE customers SET email = 'gone-' || id || '@example.invalid';\nSELECT pg_sleep(30);\nSELECT 1;"
    session = open_session(endpoint, server.credentials.user, server.credentials.password, context, 40.0)
    try:
        run = session.run_script(split_statements(script, "aurora-postgresql"), lambda: 1.0)
    finally:
        session.close()

    assert not run.ok and run.ran == 1
    assert "statement 2 (line 2) did not finish in time" in run.detail
    # Statement 1 ran, and nothing of it was kept.
    assert source_emails(local) == ["ada@example.com", "grace@example.com", "edsger@example.com"]
