"""The roles of template.yaml, evaluated: what the clone and pool functions may do to RDS, and what they may not.

Tags are not proof of ownership: RDS authorizes the tags of a create call as ``rds:AddTagsToResource`` on the
new resource, and no condition key tells that from tagging an existing cluster, so both roles may add the
ownership tags to an untagged resource. The template scopes every right that tags, changes or deletes to
identifiers starting with ``ClusterIdPrefix``. These tests load the template with the local CloudFormation's
loader, resolve its policies for a stack, and run requests through a small IAM evaluator: the forged ones
(``prod-db`` carrying the tool's tags) must be refused, the tool's own allowed.

The evaluator covers what the template and the README's SCP use: Allow and Deny, Action and Resource with
``*`` and ``?``, and the condition operators StringEquals, StringLike, Null, Bool, ArnLike, ArnNotLike and the
ForAnyValue: set forms. Anything else in a statement raises, so nothing is allowed or denied by being skipped.
Every refusal below is paired with a request the evaluator allows (the same request under a policy that
allows it, or the tool's own resource), so no test passes because the evaluator finds nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.local.template import (
    StackContext,
    active_resources,
    evaluate_conditions,
    load_template,
    resolve,
    resolve_parameters,
)

REPO = Path(__file__).resolve().parents[2]
ACCOUNT, REGION = "111122223333", "us-east-1"
STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/aurora-clone/0a1b2c3d-0000-1111-2222-333344445555"
RDS = f"arn:aws:rds:{REGION}:{ACCOUNT}"
ROLES = ("FunctionRole", "PoolFunctionRole")

MANAGED_BY, COPY_OF, STACK_ID = "aurora-clone:managed-by", "aurora-clone:copy-of", "aurora-clone:stack-id"
OWNED = {MANAGED_BY: "aurora-clone"}
# Every tag either role's conditions look at: a forged cluster carries them all.
ALL_TOOL_TAGS = {MANAGED_BY: "aurora-clone", COPY_OF: "prod-db", STACK_ID: STACK, "aurora-clone:logical-id": "Db"}

ALLOW, DENY, IMPLICIT_DENY = "Allow", "Deny", "ImplicitDeny"


# -- the evaluator --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One authorization: an action on one resource, with the request context's condition keys."""

    action: str
    resource: str
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


def _glob(pattern: str, text: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcards: ``*`` any run of characters, ``?`` any one; nothing else is special."""
    expression = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(expression, text, re.IGNORECASE if ignore_case else 0) is not None


def _listed(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _match_one(operator: str, wanted: str, actual: str) -> bool:
    if operator == "StringEquals":
        return actual == wanted
    if operator in ("StringLike", "ArnLike"):
        return _glob(wanted, actual)
    if operator == "Bool":
        return actual.lower() == wanted.lower()
    raise ValueError(f"condition operator {operator} is not known to this evaluator")


def _condition_holds(operator: str, key: str, wanted: str | Sequence[str], context: Mapping[str, Any]) -> bool:
    values = _listed(wanted)
    if operator == "Null":  # "true": the key is absent; "false": it is present
        (expected,) = values
        return (key not in context) == (expected.lower() == "true")
    if operator.startswith("ForAllValues:"):  # IAM's trap: true when the key is absent
        base = operator.removeprefix("ForAllValues:")
        return key not in context or all(any(_match_one(base, v, a) for v in values) for a in _listed(context[key]))
    if operator.startswith("ForAnyValue:"):
        base = operator.removeprefix("ForAnyValue:")
        return key in context and any(_match_one(base, v, a) for a in _listed(context[key]) for v in values)
    if operator in ("ArnNotLike", "StringNotEquals"):  # negated: true when the key is absent or matches none
        base = {"ArnNotLike": "ArnLike", "StringNotEquals": "StringEquals"}[operator]
        return key not in context or not any(_match_one(base, v, str(context[key])) for v in values)
    if key not in context:
        return False
    actual = context[key]
    if not isinstance(actual, str):
        raise ValueError(f"{key} is multivalued: {operator} needs a ForAnyValue: or ForAllValues: prefix")
    return any(_match_one(operator, v, actual) for v in values)


def _applies(statement: Mapping[str, Any], request: Request) -> bool:
    unknown = set(statement) - {"Sid", "Effect", "Action", "Resource", "Condition"}
    if unknown or statement.get("Effect") not in (ALLOW, DENY):
        raise ValueError(f"statement {statement.get('Sid')}: {sorted(unknown) or statement.get('Effect')} not known")
    if not any(_glob(action, request.action, ignore_case=True) for action in _listed(statement["Action"])):
        return False
    if not any(_glob(resource, request.resource) for resource in _listed(statement["Resource"])):
        return False
    conditions: Mapping[str, Mapping[str, Any]] = statement.get("Condition", {})
    return all(
        _condition_holds(operator, key, wanted, request.context)
        for operator, keys in conditions.items()
        for key, wanted in keys.items()
    )


def evaluate(statements: Sequence[Mapping[str, Any]], request: Request) -> str:
    """IAM's answer for one identity's policies: an explicit Deny wins, else an Allow, else ImplicitDeny."""
    effects = {statement["Effect"] for statement in statements if _applies(statement, request)}
    return DENY if DENY in effects else ALLOW if ALLOW in effects else IMPLICIT_DENY


def evaluate_all(statements: Sequence[Mapping[str, Any]], requests: Sequence[Request]) -> str:
    """One call that RDS authorizes as several requests (a restore: the source, the new cluster, its tags)."""
    answers = [evaluate(statements, request) for request in requests]
    return DENY if DENY in answers else IMPLICIT_DENY if IMPLICIT_DENY in answers else ALLOW


# -- requests, as RDS builds their context ----------------------------------------------------------------


def cluster(name: str) -> str:
    return f"{RDS}:cluster:{name}"


def instance(name: str) -> str:
    return f"{RDS}:db:{name}"


def context(
    resource: str, resource_tags: Mapping[str, str] | None = None, request_tags: Mapping[str, str] | None = None
) -> dict[str, str | list[str]]:
    """The condition keys RDS sets: the resource's tags (``rds:cluster-tag/...`` or ``rds:db-tag/...``, and
    ``aws:ResourceTag/...``) and the request's (``aws:RequestTag/...``, ``rds:req-tag/...``, ``aws:TagKeys``)."""
    parts = resource.split(":")
    kind = parts[5] if len(parts) > 5 else ""
    keys: dict[str, str | list[str]] = {}
    for key, value in (resource_tags or {}).items():
        keys[f"aws:ResourceTag/{key}"] = value
        if kind in ("cluster", "db"):
            keys[f"rds:{kind}-tag/{key}"] = value
    for key, value in (request_tags or {}).items():
        keys[f"aws:RequestTag/{key}"] = value
        keys[f"rds:req-tag/{key}"] = value
    if request_tags:
        keys["aws:TagKeys"] = list(request_tags)
    return keys


def rds(
    action: str,
    resource: str,
    resource_tags: Mapping[str, str] | None = None,
    request_tags: Mapping[str, str] | None = None,
) -> Request:
    return Request(f"rds:{action}", resource, context(resource, resource_tags, request_tags))


# -- the template's roles ---------------------------------------------------------------------------------


class _AnyAttribute(dict[str, str]):
    """Fn::GetAtt of a resource of the stack: any attribute, as a recognisable fake value."""

    def __init__(self, logical_id: str) -> None:
        super().__init__()
        self.logical_id = logical_id

    def __contains__(self, attribute: object) -> bool:
        return True

    def __getitem__(self, attribute: str) -> str:
        if attribute == "Arn":
            return f"arn:aws:test:{REGION}:{ACCOUNT}:{self.logical_id}"
        return f"{self.logical_id}.{attribute}"


@cache
def role_statements(
    role: str, prefix: str = "aurora-clone-", connection_check: bool = True, prepare_locations: str = ""
) -> list[dict[str, Any]]:
    """Every statement of the role's inline policies and of the AWS::IAM::RolePolicy resources naming it."""
    template = load_template(REPO / "template.yaml")
    given = {"ClusterIdPrefix": prefix}
    if connection_check:
        given |= {"ConnectionCheckSubnetIds": "subnet-1", "ConnectionCheckSecurityGroupIds": "sg-1"}
    if prepare_locations:
        given |= {"PrepareScriptLocations": prepare_locations}
    parameters = resolve_parameters(template, given)
    base = StackContext("aurora-clone", STACK, REGION, ACCOUNT, parameters)
    conditions = evaluate_conditions(template, base)
    resources = active_resources(template, conditions)
    stack = StackContext(
        "aurora-clone",
        STACK,
        REGION,
        ACCOUNT,
        parameters,
        physical_ids={logical_id: logical_id for logical_id in resources},
        attributes={logical_id: _AnyAttribute(logical_id) for logical_id in resources},
        conditions=conditions,
    )
    documents: list[dict[str, Any]] = []
    for logical_id, resource in resources.items():
        properties = resolve(resource.get("Properties", {}), stack)
        if resource["Type"] == "AWS::IAM::Role" and logical_id == role:
            documents += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        elif resource["Type"] == "AWS::IAM::RolePolicy" and properties["RoleName"] == role:
            documents.append(properties["PolicyDocument"])
    statements = [statement for document in documents for statement in document["Statement"]]
    assert statements, f"no policy of {role} found in template.yaml"
    return statements


def sids(role: str) -> set[str]:
    return {statement.get("Sid", "") for statement in role_statements(role)}


PERMISSIVE = [{"Effect": ALLOW, "Action": "*", "Resource": "*"}]


# -- the evaluator's own examples ----------------------------------------------------------------------------

EXAMPLE = [
    {
        "Sid": "DeleteTagged",
        "Effect": ALLOW,
        "Action": "rds:Delete*",
        "Resource": f"{RDS}:cluster:team-?-*",
        "Condition": {"StringEquals": {"rds:cluster-tag/owner": "me"}},
    },
    {
        "Sid": "TagIfKeyGiven",
        "Effect": ALLOW,
        "Action": "rds:AddTagsToResource",
        "Resource": "*",
        "Condition": {"Null": {"aws:RequestTag/owner": "false"}, "Bool": {"aws:SecureTransport": "true"}},
    },
    {
        "Sid": "NeverTheKeep",
        "Effect": DENY,
        "Action": "rds:*",
        "Resource": "*",
        "Condition": {"ForAnyValue:StringLike": {"aws:TagKeys": "keep*"}},
    },
]


def test_evaluator_allows_what_a_statement_matches_and_nothing_else() -> None:
    tagged = {"owner": "me"}
    assert evaluate(EXAMPLE, rds("DeleteDBCluster", cluster("team-a-db"), tagged)) == ALLOW
    any_case = rds("DeleteDBCluster", cluster("team-a-db"), tagged)
    assert evaluate(EXAMPLE, Request("RDS:deletedbcluster", any_case.resource, any_case.context)) == ALLOW
    assert evaluate(EXAMPLE, rds("DeleteDBCluster", cluster("team-a-db"), {"owner": "you"})) == IMPLICIT_DENY
    assert evaluate(EXAMPLE, rds("DeleteDBCluster", cluster("team-a-db"))) == IMPLICIT_DENY  # no tag: no match
    assert evaluate(EXAMPLE, rds("DeleteDBCluster", cluster("team-ab-db"), tagged)) == IMPLICIT_DENY  # ? is one
    assert evaluate(EXAMPLE, rds("DeleteDBCluster", cluster("Team-a-db"), tagged)) == IMPLICIT_DENY  # ARN case
    assert evaluate(EXAMPLE, rds("ModifyDBCluster", cluster("team-a-db"), tagged)) == IMPLICIT_DENY
    assert evaluate(EXAMPLE, rds("DeleteDBInstance", instance("team-a-db"), {"owner": "me"})) == IMPLICIT_DENY


def test_evaluator_reads_null_bool_and_set_conditions_and_lets_deny_win() -> None:
    keys = {"aws:RequestTag/owner": "me", "aws:SecureTransport": "true"}
    secure = Request("rds:AddTagsToResource", cluster("x"), keys)
    assert evaluate(EXAMPLE, secure) == ALLOW
    assert evaluate(EXAMPLE, Request(secure.action, secure.resource, {"aws:SecureTransport": "true"})) == IMPLICIT_DENY
    insecure = {**secure.context, "aws:SecureTransport": "false"}
    assert evaluate(EXAMPLE, Request(secure.action, secure.resource, insecure)) == IMPLICIT_DENY
    kept = {**secure.context, "aws:TagKeys": ["owner", "keep-me"]}
    assert evaluate(EXAMPLE, Request(secure.action, secure.resource, kept)) == DENY
    assert evaluate(EXAMPLE, Request(secure.action, secure.resource, {**kept, "aws:TagKeys": ["owner"]})) == ALLOW
    assert evaluate([], secure) == IMPLICIT_DENY and evaluate(PERMISSIVE, secure) == ALLOW


def test_evaluator_refuses_what_it_does_not_know() -> None:
    unknown_operator = [{"Effect": ALLOW, "Action": "*", "Resource": "*", "Condition": {"DateLessThan": {"k": "1"}}}]
    with pytest.raises(ValueError, match="DateLessThan"):
        evaluate(unknown_operator, Request("rds:X", "*", {"k": "1"}))
    with pytest.raises(ValueError, match="NotResource"):
        evaluate([{"Effect": ALLOW, "Action": "*", "NotResource": "x", "Resource": "*"}], Request("rds:X", "y"))
    with pytest.raises(ValueError, match="multivalued"):
        evaluate([{**EXAMPLE[2], "Condition": {"StringLike": {"aws:TagKeys": "keep*"}}}], rds("X", "*", {}, {"k": "v"}))


def test_tagging_on_create_scoped_by_tags_alone_lets_a_role_claim_any_cluster() -> None:
    """The shape these tests guard against (the template before the prefix): the evaluator finds the hole."""
    by_tags_alone = [
        {
            "Effect": ALLOW,
            "Action": "rds:AddTagsToResource",
            "Resource": f"{RDS}:cluster:*",
            "Condition": {"StringEquals": {"aws:RequestTag/aurora-clone:managed-by": "aurora-clone"}},
        },
        {
            "Effect": ALLOW,
            "Action": "rds:DeleteDBCluster",
            "Resource": f"{RDS}:cluster:*",
            "Condition": {"StringEquals": {"rds:cluster-tag/aurora-clone:managed-by": "aurora-clone"}},
        },
    ]
    assert evaluate(by_tags_alone, rds("AddTagsToResource", cluster("prod-db"), request_tags=OWNED)) == ALLOW
    assert evaluate(by_tags_alone, rds("DeleteDBCluster", cluster("prod-db"), OWNED)) == ALLOW
    for role in ROLES:
        claim = rds("AddTagsToResource", cluster("prod-db"), request_tags=OWNED)
        assert evaluate(role_statements(role), claim) != ALLOW


# -- the template ------------------------------------------------------------------------------------------


def test_both_roles_policies_are_found_with_the_statements_these_tests_rely_on() -> None:
    assert {"TagOnCreate", "ManageOwnClusters", "ManageOwnInstances", "KeepOwnershipTag", "RequestRecords"} <= sids(
        "FunctionRole"
    )
    assert {"TagOnCreate", "DeleteOwnCopies", "SweepOrphanedClones", "LedgerAndCloneOwners"} <= sids("PoolFunctionRole")
    scoped = [s for s in role_statements("FunctionRole") if s.get("Sid") == "ManageOwnClusters"]
    assert [s["Resource"] for s in scoped] == [f"{RDS}:cluster:aurora-clone-*"]  # !Sub resolved with the prefix


# What each role may do to the tool's own (prefixed, tagged) clusters and instances, and how: the request's
# tags for a creation, the resource's tags otherwise. A row absent here is a right the role never has.
FUNCTION_RIGHTS: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("AddTagsToResource", "cluster", {}, OWNED),  # the tags of the restore that makes the clone
    ("AddTagsToResource", "db", {}, OWNED),  # the tags of CreateDBInstance
    ("AddTagsToResource", "cluster", OWNED, {"aurora-clone:request": "abc"}),  # an Update's tag edits
    ("AddTagsToResource", "db", OWNED, {"team": "a"}),
    ("RemoveTagsFromResource", "cluster", OWNED, {"team": ""}),
    ("RemoveTagsFromResource", "db", OWNED, {"team": ""}),
    ("ModifyDBCluster", "cluster", OWNED, {}),
    ("DeleteDBCluster", "cluster", OWNED, {}),
    ("BacktrackDBCluster", "cluster", OWNED, {}),
    ("CreateDBClusterSnapshot", "cluster", OWNED, {}),  # the final snapshot of SnapshotOnDelete
    ("ModifyDBInstance", "db", OWNED, {}),
    ("DeleteDBInstance", "db", OWNED, {}),
    ("CreateDBInstance", "db", {}, OWNED),
    ("CreateDBInstance", "cluster", OWNED, OWNED),  # the cluster the new instance joins
]
COPY = {MANAGED_BY: "aurora-clone", COPY_OF: "prod-db"}
POOL_RIGHTS: list[tuple[str, str, dict[str, str], dict[str, str]]] = [
    ("AddTagsToResource", "cluster", {}, COPY),
    ("AddTagsToResource", "db", {}, COPY),
    ("CreateDBInstance", "db", {}, COPY),
    ("CreateDBInstance", "cluster", COPY, COPY),
    ("DeleteDBCluster", "cluster", COPY, {}),  # its copies
    ("DeleteDBInstance", "db", COPY, {}),
    ("DeleteDBCluster", "cluster", {MANAGED_BY: "aurora-clone", STACK_ID: STACK}, {}),  # the sweep
    ("DeleteDBInstance", "db", {MANAGED_BY: "aurora-clone", STACK_ID: STACK}, {}),
]
RIGHTS = {"FunctionRole": FUNCTION_RIGHTS, "PoolFunctionRole": POOL_RIGHTS}
MUTATIONS = [
    ("AddTagsToResource", "cluster"),
    ("AddTagsToResource", "db"),
    ("RemoveTagsFromResource", "cluster"),
    ("RemoveTagsFromResource", "db"),
    ("ModifyDBCluster", "cluster"),
    ("DeleteDBCluster", "cluster"),
    ("BacktrackDBCluster", "cluster"),
    ("CreateDBClusterSnapshot", "cluster"),
    ("ModifyDBInstance", "db"),
    ("DeleteDBInstance", "db"),
    ("CreateDBInstance", "db"),
    ("CreateDBInstance", "cluster"),
]


def arn(kind: str, name: str) -> str:
    return cluster(name) if kind == "cluster" else instance(name)


def rights_cases() -> Iterator[Any]:
    for role, rights in RIGHTS.items():
        for action, kind, resource_tags, request_tags in rights:
            yield pytest.param(role, action, kind, resource_tags, request_tags, id=f"{role}-{action}-{kind}")


@pytest.mark.parametrize(("role", "action", "kind", "resource_tags", "request_tags"), list(rights_cases()))
def test_a_role_may_act_on_the_tools_own_prefixed_resources_but_on_nothing_outside_the_prefix(
    role: str, action: str, kind: str, resource_tags: dict[str, str], request_tags: dict[str, str]
) -> None:
    statements = role_statements(role)
    own = rds(action, arn(kind, "aurora-clone-stack-db-1a2b3c4d"), resource_tags, request_tags)
    assert evaluate(statements, own) == ALLOW
    # The same request on production, whatever the tags: refused, with or without the prefix-like look.
    for name in ("prod-db", "aurora-clonedb", "my-aurora-clone-db", "Aurora-Clone-db"):
        forged = rds(action, arn(kind, name), {**ALL_TOOL_TAGS, **resource_tags}, request_tags)
        assert evaluate(statements, forged) != ALLOW, name
    # Without the tags the conditions ask for, the tool's own prefix is not enough either.
    assert evaluate(statements, rds(action, own.resource)) != ALLOW


def mutation_cases() -> Iterator[Any]:
    for role in ROLES:
        for action, kind in MUTATIONS:
            yield pytest.param(role, action, kind, id=f"{role}-{action}-{kind}")


@pytest.mark.parametrize(("role", "action", "kind"), list(mutation_cases()))
def test_no_role_can_tag_change_or_delete_a_resource_outside_the_prefix_whatever_the_tags(
    role: str, action: str, kind: str
) -> None:
    statements = role_statements(role)
    tag_sets: list[dict[str, str]] = [{}, OWNED, COPY, ALL_TOOL_TAGS]
    for resource_tags in tag_sets:
        for request_tags in tag_sets:
            for name in ("prod-db", "prod-db-writer"):
                forged = rds(action, arn(kind, name), resource_tags, request_tags)
                assert evaluate(PERMISSIVE, forged) == ALLOW  # a well-formed request, which a wider policy allows
                assert evaluate(statements, forged) != ALLOW, (name, resource_tags, request_tags)


def test_another_prefix_moves_every_right_with_it() -> None:
    for role in ROLES:
        statements = role_statements(role, prefix="team-a-clone-")
        assert evaluate(statements, rds("DeleteDBCluster", cluster("team-a-clone-x"), ALL_TOOL_TAGS)) == ALLOW
        assert evaluate(statements, rds("DeleteDBCluster", cluster("aurora-clone-x"), ALL_TOOL_TAGS)) != ALLOW
        assert evaluate(statements, rds("AddTagsToResource", cluster("aurora-clone-x"), {}, COPY)) != ALLOW


def restore(role: str, source: str, target: str, tags: Mapping[str, str]) -> str:
    """RestoreDBClusterToPointInTime as RDS authorizes it: on the source, on the new cluster, and the new
    cluster's tags as rds:AddTagsToResource on it."""
    statements = role_statements(role)
    requests = [
        rds("RestoreDBClusterToPointInTime", cluster(source), {"team": "prod"}, tags),
        rds("RestoreDBClusterToPointInTime", cluster(target), {}, tags),
        rds("AddTagsToResource", cluster(target), {}, tags),
    ]
    return evaluate_all(statements, requests)


def test_a_restore_from_any_source_is_allowed_into_the_prefix_only_and_only_with_the_tools_tags() -> None:
    assert restore("FunctionRole", "prod-db", "aurora-clone-stack-db-1a2b3c4d", OWNED) == ALLOW
    assert restore("FunctionRole", "prod-db", "prod-db-2", OWNED) != ALLOW  # the new cluster's tags are refused
    assert restore("FunctionRole", "prod-db", "aurora-clone-stack-db-1a2b3c4d", {"team": "a"}) != ALLOW
    assert restore("PoolFunctionRole", "prod-db", "aurora-clone-prod-db-copy-202601010000-1", COPY) == ALLOW
    assert restore("PoolFunctionRole", "prod-db", "prod-db-copy", COPY) != ALLOW
    assert restore("PoolFunctionRole", "prod-db", "aurora-clone-prod-db-copy-202601010000-1", OWNED) != ALLOW


def test_the_pool_deletes_a_stacks_clone_only_as_the_sweep_does_never_a_clone_without_an_owner_or_copy_tag() -> None:
    pool = role_statements("PoolFunctionRole")
    clone, writer = cluster("aurora-clone-stack-db-1a2b3c4d"), instance("aurora-clone-stack-db-1a2b3c4d-1")
    for resource in (clone, writer):
        action = "DeleteDBCluster" if resource == clone else "DeleteDBInstance"
        assert evaluate(pool, rds(action, resource, OWNED)) == IMPLICIT_DENY  # no copy-of, no stack-id
        assert evaluate(pool, rds(action, resource, {**OWNED, STACK_ID: STACK})) == ALLOW  # the sweep
        assert evaluate(pool, rds(action, resource, COPY)) == ALLOW  # a copy
        assert evaluate(pool, rds(action, resource, {COPY_OF: "prod-db", STACK_ID: STACK})) == IMPLICIT_DENY
    for action in ("ModifyDBCluster", "BacktrackDBCluster", "RemoveTagsFromResource", "CreateDBClusterSnapshot"):
        assert evaluate(pool, rds(action, clone, ALL_TOOL_TAGS)) == IMPLICIT_DENY
        assert evaluate(role_statements("FunctionRole"), rds(action, clone, OWNED, {"team": ""})) == ALLOW
    # Tagging at creation needs the copy-of tag in the request: the pool makes copies, nothing else.
    assert evaluate(pool, rds("AddTagsToResource", clone, {}, OWNED)) == IMPLICIT_DENY
    assert evaluate(pool, rds("AddTagsToResource", clone, {}, COPY)) == ALLOW


def test_the_ownership_tag_can_never_be_removed_and_groups_never_stand_in_for_a_cluster() -> None:
    function = role_statements("FunctionRole")
    own = cluster("aurora-clone-stack-db-1a2b3c4d")
    assert evaluate(function, rds("RemoveTagsFromResource", own, OWNED, {MANAGED_BY: ""})) == DENY
    assert evaluate(function, rds("RemoveTagsFromResource", own, OWNED, {"aurora-clone:request": ""})) == ALLOW
    # ModifyDBCluster on parameter and option groups (RDS authorizes the groups a modify names) is no right on
    # a cluster: the cluster itself must pass the prefix and the tag.
    assert evaluate(function, rds("ModifyDBCluster", f"{RDS}:cluster-pg:my-params", {})) == ALLOW
    assert evaluate(function, rds("ModifyDBCluster", cluster("prod-db"), ALL_TOOL_TAGS)) == IMPLICIT_DENY
    # The final snapshot: only under the prefix, named <clone>-final-<hash>.
    final = f"{RDS}:cluster-snapshot:aurora-clone-stack-db-1a2b3c4d-final-01234567"
    assert evaluate(function, rds("CreateDBClusterSnapshot", final)) == ALLOW
    assert evaluate(function, rds("DeleteDBCluster", final)) == ALLOW
    elsewhere = f"{RDS}:cluster-snapshot:prod-db-final-01234567"
    assert evaluate(function, rds("CreateDBClusterSnapshot", elsewhere)) != ALLOW


def test_each_role_uses_its_own_table_queues_and_reads_cloudformation_only() -> None:
    function, pool = role_statements("FunctionRole"), role_statements("PoolFunctionRole")
    table = "arn:aws:test:us-east-1:111122223333:RequestTable"
    other_table = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/other"
    for action in ("GetItem", "BatchGetItem", "PutItem", "UpdateItem", "DeleteItem"):
        for statements in (function, pool):
            assert evaluate(statements, Request(f"dynamodb:{action}", table)) == ALLOW
            assert evaluate(statements, Request(f"dynamodb:{action}", other_table)) == IMPLICIT_DENY
    assert evaluate(pool, Request("dynamodb:Query", table)) == IMPLICIT_DENY
    queues = {name: f"arn:aws:test:{REGION}:{ACCOUNT}:{name}" for name in ("WakeUpQueue", "FailedInvocationQueue")}
    for queue in queues.values():
        assert evaluate(function, Request("sqs:SendMessage", queue)) == ALLOW
    assert evaluate(function, Request("sqs:ReceiveMessage", queues["FailedInvocationQueue"])) == IMPLICIT_DENY
    assert evaluate(pool, Request("sqs:SendMessage", queues["FailedInvocationQueue"])) == IMPLICIT_DENY
    for statements in (function, pool):
        for action in ("DescribeStacks", "DescribeStackResource"):
            assert evaluate(statements, Request(f"cloudformation:{action}", STACK)) == ALLOW
        for action in ("DeleteStack", "UpdateStack", "SignalResource"):
            assert evaluate(statements, Request(f"cloudformation:{action}", STACK)) == IMPLICIT_DENY


# -- the SCP of the README ---------------------------------------------------------------------------------


def readme_scp() -> list[dict[str, Any]]:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    iam = text[text.index("\n## IAM\n") : text.index("\n## How it works\n")]
    (block,) = [b for b in re.findall(r"```json\n(.*?)```", iam, re.DOTALL) if "ReserveAuroraCloneTagKeys" in b]
    statements: list[dict[str, Any]] = json.loads(block)["Statement"]
    return statements


FUNCTION_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aurora-clone-FunctionRole-AbC123dEf456"
POOL_ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/aurora-clone-PoolFunctionRole-Xy7Z8w9V0u1T"
SOMEONE = f"arn:aws:iam::{ACCOUNT}:role/Developer"


def as_principal(request: Request, principal: str) -> Request:
    return Request(request.action, request.resource, {**request.context, "aws:PrincipalArn": principal})


@pytest.mark.parametrize(
    "request_",
    [
        rds("AddTagsToResource", cluster("prod-db"), {}, OWNED),
        rds("AddTagsToResource", cluster("aurora-clone-stack-db-1a2b3c4d"), OWNED, {COPY_OF: "prod-db"}),
        rds("RemoveTagsFromResource", cluster("aurora-clone-stack-db-1a2b3c4d"), OWNED, {MANAGED_BY: ""}),
        rds("CreateDBCluster", cluster("aurora-clone-mine"), {}, OWNED),
        rds("RestoreDBClusterToPointInTime", cluster("prod-db"), {}, {"team": "a", STACK_ID: STACK}),
        rds("CreateDBInstance", instance("aurora-clone-mine-1"), {}, OWNED),
    ],
    ids=["tag-prod", "add-copy-of", "strip-owner", "create-tagged", "restore-tagged", "instance-tagged"],
)
def test_the_scp_reserves_the_tool_tag_keys_to_the_two_roles(request_: Request) -> None:
    scp = readme_scp()
    assert evaluate(scp, as_principal(request_, SOMEONE)) == DENY
    for role in (FUNCTION_ROLE_ARN, POOL_ROLE_ARN):
        assert evaluate(scp, as_principal(request_, role)) == IMPLICIT_DENY  # the SCP leaves the roles to IAM


def test_the_scp_leaves_other_tags_and_untagged_calls_alone() -> None:
    scp = readme_scp()
    for request in (
        rds("AddTagsToResource", cluster("prod-db"), {}, {"team": "a"}),
        rds("CreateDBCluster", cluster("prod-db-2"), {}, {"aurora-clone-retain": "true"}),  # not a reserved key
        rds("DeleteDBCluster", cluster("aurora-clone-stack-db-1a2b3c4d"), OWNED),
        rds("CreateDBCluster", cluster("plain")),
    ):
        assert evaluate(scp, as_principal(request, SOMEONE)) == IMPLICIT_DENY
        assert evaluate([*scp, *PERMISSIVE], as_principal(request, SOMEONE)) == ALLOW


# -- the connection check's role, with prepare scripts -------------------------------------------------------

TABLE = f"arn:aws:test:{REGION}:{ACCOUNT}:RequestTable"
SCRIPTS = "arn:aws:s3:::masking-scripts/orders/*"


def table_write(action: str, key: str) -> Request:
    return Request(f"dynamodb:{action}", TABLE, {"dynamodb:LeadingKeys": [key]})


def test_the_check_reads_prepare_scripts_only_where_the_stack_says_and_writes_only_their_run_records() -> None:
    check = role_statements("ConnectionCheckRole", prepare_locations=SCRIPTS)

    assert evaluate(check, Request("s3:GetObject", "arn:aws:s3:::masking-scripts/orders/mask.sql")) == ALLOW
    assert evaluate(check, Request("s3:GetObjectVersion", "arn:aws:s3:::masking-scripts/orders/mask.sql")) == ALLOW
    for denied in (
        Request("s3:GetObject", "arn:aws:s3:::masking-scripts/payroll/dump.sql"),
        Request("s3:GetObject", "arn:aws:s3:::another-bucket/orders/mask.sql"),
        Request("s3:PutObject", "arn:aws:s3:::masking-scripts/orders/mask.sql"),
        Request("s3:ListBucket", "arn:aws:s3:::masking-scripts"),
    ):
        assert evaluate(check, denied) == IMPLICIT_DENY, denied
    assert evaluate(check, table_write("PutItem", "prepared#aurora-clone-it-1a2b")) == ALLOW
    assert evaluate(check, table_write("UpdateItem", "prepared#aurora-clone-it-1a2b")) == ALLOW
    # Not the ledger nor a request record: a forged "made" record would make a cluster the tool's.
    for key in ("made#prod-db", "request#0123456789ab", "lock#slots/prod-db"):
        assert evaluate(check, table_write("PutItem", key)) == IMPLICIT_DENY, key
    assert evaluate(check, table_write("DeleteItem", "prepared#aurora-clone-it-1a2b")) == IMPLICIT_DENY


def test_without_prepare_script_locations_the_check_reads_nothing_in_s3_and_writes_nothing() -> None:
    check = role_statements("ConnectionCheckRole")

    assert evaluate(check, Request("s3:GetObject", "arn:aws:s3:::masking-scripts/orders/mask.sql")) == IMPLICIT_DENY
    assert evaluate(check, table_write("PutItem", "prepared#aurora-clone-it-1a2b")) == IMPLICIT_DENY
