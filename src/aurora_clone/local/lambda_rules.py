"""Lambda rules of the local world: the resource policy limits real Lambda enforces and moto does not.
Installed with the RDS rules (``RdsRules`` calls ``install_lambda_rules``).

``AddPermission`` raises ``PolicyLengthExceededException`` when the function's resource policy would exceed
20 KB, and ``ResourceConflictException`` for a statement id already in the policy.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any
from unittest import mock

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaFunction
from moto.awslambda.policy import Policy

LAMBDA_POLICY_MAX_BYTES = 20480


def install_lambda_rules(stack: ExitStack) -> None:
    """Install the rules until ``stack`` closes. See the module docstring."""
    stack.enter_context(mock.patch.object(Policy, "add_statement", _add_statement(Policy.add_statement)))


def _add_statement(original: Callable[..., tuple[Any, str]]) -> Callable[..., tuple[Any, str]]:
    def add_statement(policy: Policy, raw: str, qualifier: str | None = None) -> tuple[Any, str]:
        if not isinstance(policy.parent, LambdaFunction):
            return original(policy, raw, qualifier)
        statement_id = json.loads(raw).get("StatementId")
        if statement_id is not None and any(s.get("Sid") == statement_id for s in policy.statements):
            conflict = LambdaClientError(
                "ResourceConflictException",
                f"The statement id ({statement_id}) provided already exists. "
                "Please provide a new statement id, or remove the existing statement.",
            )
            conflict.code = 409
            raise conflict
        revision = policy.revision
        added = original(policy, raw, qualifier)
        document = json.dumps(policy.get_policy()["Policy"], separators=(",", ":"))
        size = len(document.encode("utf-8"))
        if size > LAMBDA_POLICY_MAX_BYTES:
            policy.statements.pop()
            policy.revision = revision
            raise LambdaClientError(
                "PolicyLengthExceededException",
                f"The final policy size ({size}) is bigger than the limit ({LAMBDA_POLICY_MAX_BYTES}).",
            )
        return added

    return add_statement
