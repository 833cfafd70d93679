"""The connection check against a real database of the local world: a PostgreSQL clone made with a managed
master secret is reached, logged in to with that secret and answers SELECT 1 before its stack goes green."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aurora_clone.local.session import LocalSession
from tests.e2e.test_connection_check_local import CHECKED, FUNCTION_TEMPLATE, probe_function

MANAGED_SECRET_TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Resources:
  TestDatabase:
    Type: Custom::AuroraClone
    Properties:
      ServiceToken: !ImportValue aurora-clone-ServiceToken
      SourceClusterId: orders-db
      ManageMasterUserPassword: true
Outputs:
  Endpoint:
    Value: !GetAtt TestDatabase.Endpoint
  ClusterId:
    Value: !GetAtt TestDatabase.ClusterId
"""


def test_a_real_postgresql_clone_passes_the_check_with_a_login_by_its_managed_secret(tmp_path: Path) -> None:
    template = tmp_path / "managed-secret.yaml"
    template.write_text(MANAGED_SECRET_TEMPLATE)
    with LocalSession(
        FUNCTION_TEMPLATE,
        time_scale=0.005,
        printer=lambda _line: None,
        function_parameters=CHECKED,
        real_databases=True,
    ) as local:
        local.world.create_source_cluster("orders-db", engine="aurora-postgresql")
        probed: list[str] = []
        original = local.lambdas.invoke if local.lambdas is not None else None
        assert original is not None

        def watching(name: str, event: Any) -> Any:
            result = original(name, event)
            if name.endswith(probe_function(local)) or name == probe_function(local):
                probed.append(json.dumps(result))
            return result

        local.lambdas.invoke = watching  # type: ignore[method-assign,union-attr]

        stack = local.cloudformation.create_stack("checked", str(template))

        assert stack.status == "CREATE_COMPLETE", stack.status_reason
        assert any('"reachable": true' in result and "SELECT 1 returned 1" in result for result in probed), probed
        assert local.cloudformation.delete_stack("checked").status == "DELETE_COMPLETE"
