"""Credentials, Serverless v2, encryption, sources by ARN and teardown as pure rules: what replaces a clone, the
goal's new settings, the cluster changes that reach it, the teardown's steps, and what a poll carries."""

from __future__ import annotations

import json
import re
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from aurora_clone.changes import (
    CurrentClone,
    arn_account,
    classify_update,
    creation_problems,
    is_shared_source,
    resolve_desired,
    same_kms_key,
    shared_source_problems,
    source_location_problems,
)
from aurora_clone.clone_state import ClusterView, DesiredClone, InstanceView
from aurora_clone.naming import final_snapshot_id, instance_id, is_valid_identifier
from aurora_clone.outcome import Job
from aurora_clone.ownership import Owner
from aurora_clone.properties import CloneProperties
from aurora_clone.readiness import (
    Act,
    Broken,
    DeleteCluster,
    DeleteInstance,
    ModifyCluster,
    Ready,
    Wait,
    plan_convergence,
    plan_teardown,
)

ACCOUNT = "123456789012"
OTHER_ACCOUNT = "210987654321"
KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab"
KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/{KEY_ID}"
OTHER_KEY_ARN = f"arn:aws:kms:us-east-1:{ACCOUNT}:key/99999999-12ab-34cd-56ef-1234567890ab"
SECRET_ARN = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds!cluster-1-abc"
SHARED_ARN = f"arn:aws:rds:us-east-1:{OTHER_ACCOUNT}:cluster:prod-db"
CLONE = "my-clone"
OWNER = Owner(f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/integration-env/0a1b2c3d", "Clone")
OWNED = OWNER.tags("0123456789ab", "prod-db")

BASE = CloneProperties("prod-db")
PLAIN = CurrentClone(
    CLONE, "prod-db", "default", account=ACCOUNT, backtrack_window=0, managed_secret=False, deletion_protection=False
)


def writer(status: str = "available") -> InstanceView:
    return InstanceView(instance_id(CLONE, 1), status, "db.r6g.large", is_writer=True, tags=OWNED)


def cluster(*instances: InstanceView, status: str = "available", **changes: Any) -> ClusterView:
    view = ClusterView(
        CLONE, status, "aurora-mysql", arn=f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:{CLONE}", tags=OWNED
    )
    return replace(view, instances=instances, **changes)


def goal(**changes: Any) -> DesiredClone:
    return DesiredClone(CLONE, "db.r6g.large", 1, **changes)


# --- classify_update: the new replacing properties -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "current", "replaced"),
    [
        pytest.param(BASE, replace(BASE, kms_key_id=KEY_ARN), replace(PLAIN, kms_key_id=OTHER_KEY_ARN), True, id="key"),
        pytest.param(BASE, replace(BASE, kms_key_id=KEY_ID), replace(PLAIN, kms_key_id=KEY_ARN), False, id="key-same"),
        pytest.param(
            replace(BASE, kms_key_id=KEY_ARN),
            replace(BASE, kms_key_id="alias/other"),
            replace(PLAIN, kms_key_id=KEY_ARN),
            True,
            id="key-to-alias-template-changed",
        ),
        pytest.param(
            replace(BASE, kms_key_id="alias/x"), replace(BASE, kms_key_id="alias/x"), PLAIN, False, id="key-unchanged"
        ),
        pytest.param(BASE, replace(BASE, backtrack_window=3600), PLAIN, True, id="window-on-clone-without"),
        pytest.param(
            replace(BASE, backtrack_window=3600),
            replace(BASE, backtrack_window=7200),
            replace(PLAIN, backtrack_window=3600),
            False,
            id="window-changed",
        ),
        pytest.param(
            replace(BASE, backtrack_window=3600),
            replace(BASE, backtrack_window=0),
            replace(PLAIN, backtrack_window=3600),
            False,
            id="window-turned-off",
        ),
        pytest.param(BASE, replace(BASE, manage_master_user_password=True), PLAIN, False, id="secret-turned-on"),
        pytest.param(
            replace(BASE, manage_master_user_password=True),
            BASE,
            replace(PLAIN, managed_secret=True),
            True,
            id="secret-turned-off",
        ),
        pytest.param(
            BASE,
            replace(BASE, manage_master_user_password=True, master_user_secret_kms_key_id=KEY_ARN),
            PLAIN,
            False,
            id="secret-with-key-turned-on",
        ),
        pytest.param(
            replace(BASE, manage_master_user_password=True, master_user_secret_kms_key_id=OTHER_KEY_ARN),
            replace(BASE, manage_master_user_password=True, master_user_secret_kms_key_id=KEY_ARN),
            replace(PLAIN, managed_secret=True, secret_kms_key_id=OTHER_KEY_ARN),
            True,
            id="secret-key-changed",
        ),
        pytest.param(BASE, replace(BASE, serverless_v2_min_capacity=1, serverless_v2_max_capacity=8), PLAIN, False),
        pytest.param(BASE, replace(BASE, enable_iam_database_authentication=True), PLAIN, False, id="iam"),
        pytest.param(BASE, replace(BASE, deletion_protection=True), PLAIN, False, id="protection"),
        pytest.param(BASE, replace(BASE, snapshot_on_delete=True), PLAIN, False, id="snapshot-on-delete"),
        pytest.param(
            BASE,
            replace(BASE, source_cluster_id=f"arn:aws:rds:us-east-1:{OTHER_ACCOUNT}:cluster:prod-db"),
            PLAIN,
            True,
            id="same-name-other-account",
        ),
        pytest.param(
            replace(BASE, source_cluster_id=SHARED_ARN),
            replace(BASE, source_cluster_id=SHARED_ARN.replace("prod-db", "Prod-DB")),
            replace(PLAIN, source=SHARED_ARN),
            False,
            id="shared-arn-other-case",
        ),
    ],
)
def test_classify_new_properties(
    old: CloneProperties, new: CloneProperties, current: CurrentClone, replaced: bool
) -> None:
    assert classify_update(old, new, current).replaces is replaced


def test_classify_replacement_of_protected_clone_refused() -> None:
    decision = classify_update(
        BASE, replace(BASE, source_cluster_id="other-db"), replace(PLAIN, deletion_protection=True)
    )

    assert decision.replaces
    assert decision.refusal is not None
    assert "DeletionProtection set to false" in decision.refusal
    assert CLONE in decision.refusal


def test_classify_in_place_change_of_protected_clone_allowed() -> None:
    decision = classify_update(BASE, replace(BASE, instance_count=2), replace(PLAIN, deletion_protection=True))

    assert not decision.replaces and decision.refusal is None


def test_current_clone_of_cluster_view() -> None:
    view = cluster(
        storage_encrypted=True,
        kms_key_id=KEY_ARN,
        backtrack_window=60,
        master_user_secret_arn=SECRET_ARN,
        master_user_secret_kms_key_id=OTHER_KEY_ARN,
        deletion_protection=True,
        subnet_group="subnets",
    )

    current = CurrentClone.of(view, "prod-db", None)

    assert current == CurrentClone(
        CLONE,
        "prod-db",
        "subnets",
        account=ACCOUNT,
        kms_key_id=KEY_ARN,
        backtrack_window=60,
        managed_secret=True,
        secret_kms_key_id=OTHER_KEY_ARN,
        deletion_protection=True,
    )


@pytest.mark.parametrize(
    ("given", "actual", "same"),
    [
        pytest.param(KEY_ID, KEY_ARN, True, id="id-of-arn"),
        pytest.param(KEY_ARN, KEY_ARN, True, id="arn"),
        pytest.param(KEY_ID.upper(), KEY_ARN, True, id="case"),
        pytest.param(KEY_ARN, OTHER_KEY_ARN, False, id="other"),
        pytest.param("alias/clones", KEY_ARN, None, id="alias-unknown"),
    ],
)
def test_same_kms_key(given: str, actual: str, same: bool | None) -> None:
    assert same_kms_key(given, actual) is same


@pytest.mark.parametrize(
    ("arn", "account"),
    [
        pytest.param(f"arn:aws:cloudformation:us-east-1:{ACCOUNT}:stack/s/1", ACCOUNT, id="stack"),
        pytest.param("integration-env", None, id="not-an-arn"),
        pytest.param("", None, id="empty"),
    ],
)
def test_arn_account(arn: str, account: str | None) -> None:
    assert arn_account(arn) == account


# --- resolve_desired: the new settings -----------------------------------------------------------------------------

SOURCE = ClusterView(
    "prod-db",
    "available",
    "aurora-mysql",
    port=3306,
    instances=(InstanceView("prod-db-writer", "available", "db.r6g.large", is_writer=True),),
)


def test_resolve_new_settings_carried() -> None:
    properties = replace(
        BASE,
        backtrack_window=3600,
        backtrack_to=datetime(2026, 11, 22, 10, tzinfo=UTC),
        manage_master_user_password=True,
        master_user_secret_kms_key_id=KEY_ARN,
        enable_iam_database_authentication=True,
        serverless_v2_min_capacity=0.5,
        serverless_v2_max_capacity=8.0,
        deletion_protection=True,
    )

    desired = resolve_desired(properties, CLONE, SOURCE)

    assert desired.backtrack_window == 3600
    assert desired.backtrack_to == "2026-11-22T10:00:00Z"
    assert desired.manage_master_user_password is True
    assert desired.master_user_secret_kms_key_id == KEY_ARN
    assert desired.iam_database_authentication is True
    assert desired.serverless_v2_capacity == (0.5, 8.0)
    assert desired.deletion_protection is True


def test_resolve_unset_new_settings_defaults() -> None:
    desired = resolve_desired(BASE, CLONE, SOURCE)

    assert desired.backtrack_window is None, "an unset window leaves the clone's as it is"
    assert desired.backtrack_to is None
    assert desired.manage_master_user_password is None
    assert desired.iam_database_authentication is False
    assert desired.deletion_protection is False
    assert desired.serverless_v2_capacity is None


@pytest.mark.parametrize(
    ("properties", "source", "expected"),
    [
        pytest.param(
            replace(BASE, instance_class="db.serverless"),
            replace(SOURCE, serverless_v2_capacity=(1.0, 4.0)),
            (1.0, 4.0),
            id="serverless-inherits-source",
        ),
        pytest.param(
            replace(BASE, serverless_v2_min_capacity=2.0, serverless_v2_max_capacity=8.0),
            replace(SOURCE, serverless_v2_capacity=(1.0, 4.0)),
            (2.0, 8.0),
            id="explicit-wins",
        ),
        pytest.param(BASE, replace(SOURCE, serverless_v2_capacity=(1.0, 4.0)), (1.0, 4.0), id="provisioned-inherits"),
    ],
)
def test_resolve_serverless_capacity(
    properties: CloneProperties, source: ClusterView, expected: tuple[float, float]
) -> None:
    assert resolve_desired(properties, CLONE, source).serverless_v2_capacity == expected


def test_resolve_serverless_without_capacities_anywhere_refused() -> None:
    with pytest.raises(ValueError, match="ServerlessV2MinCapacity and ServerlessV2MaxCapacity"):
        resolve_desired(replace(BASE, instance_class="db.serverless"), CLONE, SOURCE)


# --- plan_convergence: cluster settings and deletion protection ----------------------------------------------------


@pytest.mark.parametrize(
    ("desired", "view", "expected"),
    [
        pytest.param(
            goal(serverless_v2_capacity=(2.0, 16.0)),
            cluster(writer(), serverless_v2_capacity=(0.5, 8.0)),
            ModifyCluster(serverless_v2_capacity=(2.0, 16.0)),
            id="capacities",
        ),
        pytest.param(
            goal(serverless_v2_capacity=(0.5, 8.0)),
            cluster(writer()),
            ModifyCluster(serverless_v2_capacity=(0.5, 8.0)),
            id="capacities-added",
        ),
        pytest.param(
            goal(iam_database_authentication=True),
            cluster(writer()),
            ModifyCluster(iam_database_authentication=True),
            id="iam-on",
        ),
        pytest.param(
            goal(iam_database_authentication=False),
            cluster(writer(), iam_database_authentication=True),
            ModifyCluster(iam_database_authentication=False),
            id="iam-off",
        ),
        pytest.param(
            goal(manage_master_user_password=True, master_user_secret_kms_key_id=KEY_ARN),
            cluster(writer()),
            ModifyCluster(manage_master_user_password=True, master_user_secret_kms_key_id=KEY_ARN),
            id="secret-on",
        ),
        pytest.param(
            goal(deletion_protection=False),
            cluster(writer(), deletion_protection=True),
            ModifyCluster(deletion_protection=False),
            id="protection-released-by-update",
        ),
        pytest.param(
            goal(deletion_protection=True),
            cluster(writer()),
            ModifyCluster(deletion_protection=True),
            id="protection-last",
        ),
    ],
)
def test_converge_cluster_setting_modified(desired: DesiredClone, view: ClusterView, expected: ModifyCluster) -> None:
    step = plan_convergence(desired, view)

    assert isinstance(step, Act)
    assert step.actions == (expected,)


@pytest.mark.parametrize(
    ("desired", "view"),
    [
        pytest.param(goal(serverless_v2_capacity=(0.5, 8.0)), cluster(writer(), serverless_v2_capacity=(0.5, 8.0))),
        pytest.param(goal(serverless_v2_capacity=(1, 8)), cluster(writer(), serverless_v2_capacity=(1.0, 8.0))),
        pytest.param(goal(iam_database_authentication=True), cluster(writer(), iam_database_authentication=True)),
        pytest.param(goal(manage_master_user_password=True), cluster(writer(), master_user_secret_arn=SECRET_ARN)),
        pytest.param(goal(deletion_protection=True), cluster(writer(), deletion_protection=True)),
        pytest.param(goal(), cluster(writer(), deletion_protection=True, iam_database_authentication=True)),
    ],
)
def test_converge_cluster_settings_met_ready(desired: DesiredClone, view: ClusterView) -> None:
    assert plan_convergence(desired, view) == Ready()


def test_converge_protection_waits_for_instances() -> None:
    step = plan_convergence(goal(deletion_protection=True), cluster(writer("creating")))

    assert isinstance(step, Wait)


def test_converge_protection_after_other_changes() -> None:
    step = plan_convergence(goal(deletion_protection=True, port=3307), cluster(writer(), port=3306))

    assert isinstance(step, Act)
    assert step.actions == (ModifyCluster(port=3307),)


# --- plan_teardown -------------------------------------------------------------------------------------------------


def test_teardown_protected_says_how_to_release_and_never_unprotects() -> None:
    step = plan_teardown(cluster(writer(), deletion_protection=True), OWNER)

    assert isinstance(step, Broken)
    assert "DeletionProtection set to false" in step.why
    assert "then delete the stack again" in step.why
    assert "never turns the protection off by itself" in step.why
    assert CLONE in step.why


@pytest.mark.parametrize(
    "status", ["backtracking", "modifying", "backing-up", "upgrading", "resetting-master-credentials"]
)
def test_teardown_cluster_busy_with_instances_waits(status: str) -> None:
    step = plan_teardown(cluster(writer(), status=status), OWNER)

    assert isinstance(step, Wait)
    assert status in step.why


@pytest.mark.parametrize("status", ["backtracking", "modifying"])
def test_teardown_cluster_busy_without_instances_waits(status: str) -> None:
    step = plan_teardown(cluster(status=status), OWNER, "my-clone-final-01234567")

    assert isinstance(step, Wait)


def test_teardown_instances_then_cluster_with_its_final_snapshot() -> None:
    step = plan_teardown(cluster(writer()), OWNER, "my-clone-final-01234567")

    assert isinstance(step, Act)
    assert step.actions == (DeleteInstance(instance_id(CLONE, 1)), DeleteCluster(CLONE, "my-clone-final-01234567"))


@pytest.mark.parametrize(
    ("status", "snapshot"),
    [
        pytest.param("available", "my-clone-final-01234567", id="available"),
        pytest.param("stopped", "my-clone-final-01234567", id="stopped"),
        pytest.param("incompatible-network", None, id="terminal-nothing-to-keep"),
        pytest.param("failed", None, id="failed"),
    ],
)
def test_teardown_cluster_deleted_with_final_snapshot(status: str, snapshot: str | None) -> None:
    step = plan_teardown(cluster(status=status), OWNER, "my-clone-final-01234567")

    assert isinstance(step, Act)
    assert step.actions == (DeleteCluster(CLONE, snapshot),)


def test_teardown_without_final_snapshot_deletes_without() -> None:
    step = plan_teardown(cluster(), OWNER)

    assert isinstance(step, Act)
    assert step.actions == (DeleteCluster(CLONE, None),)


# --- final_snapshot_id ----------------------------------------------------------------------------------------------

SNAPSHOT_ID = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,254}(?<!-)")


@pytest.mark.parametrize("cluster_id", ["c", "my-clone", "c" * 63, "a1-b2-c3"])
def test_final_snapshot_id_valid_and_deterministic(cluster_id: str) -> None:
    name = final_snapshot_id(cluster_id, "0123456789ab")

    assert SNAPSHOT_ID.fullmatch(name), name
    assert name == final_snapshot_id(cluster_id, "0123456789ab")
    assert name != final_snapshot_id(cluster_id, "fedcba987654")
    assert is_valid_identifier(cluster_id) and name.startswith(cluster_id)


# --- Job: what a poll carries --------------------------------------------------------------------------------------

FULL_GOAL = DesiredClone(
    "c" * 63,
    "db.serverless",
    16,
    db_parameter_group="g" * 255,
    port=65535,
    vpc_security_group_ids=tuple(f"sg-{n:017x}" for n in range(5)),
    cluster_parameter_group="h" * 255,
    backtrack_window=259200,
    backtrack_to="2026-11-22T10:00:00.123456Z",
    serverless_v2_capacity=(0.5, 256.0),
    iam_database_authentication=True,
    manage_master_user_password=True,
    master_user_secret_kms_key_id="arn:aws:kms:us-east-1:123456789012:alias/" + "k" * 250,
    deletion_protection=True,
)


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(Job("converge", "c" * 63, 1.5, "c" * 63, source=SHARED_ARN, desired=FULL_GOAL), id="every-goal"),
        pytest.param(Job("teardown", "c", 1.0, "c", final_snapshot="c-final-01234567"), id="final-snapshot"),
    ],
)
def test_job_with_new_settings_round_trip_through_json(job: Job) -> None:
    text = json.dumps(job.to_dict())

    assert Job.from_dict(json.loads(text)) == job
    assert len(text) < 2500, "the job travels in a rule's Input (at most 8192 characters with the envelope)"


def test_job_discarded_replacement_takes_no_final_snapshot() -> None:
    job = Job("converge", "new", 1.0, "new", desired=goal(), replacing="old", final_snapshot="x-final-1")

    assert job.discard("broken").final_snapshot is None


def test_job_written_before_new_settings_still_read() -> None:
    old = {"kind": "converge", "cluster_id": "c", "deadline": 1.0, "answer_id": "c", "source": "prod-db"}
    old["desired"] = {"cluster_id": "c", "instance_class": "db.r6g.large", "instance_count": 1}

    job = Job.from_dict(old)

    assert job.desired == DesiredClone("c", "db.r6g.large", 1)
    assert job.final_snapshot is None


# --- sources: Region, account, encryption --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "words"),
    [
        pytest.param(
            CloneProperties(f"arn:aws:rds:eu-west-1:{ACCOUNT}:cluster:prod-db"), "Region eu-west-1", id="region"
        ),
        pytest.param(CloneProperties(SHARED_ARN), "InstanceClass is required", id="shared-without-class"),
    ],
)
def test_source_location_refused(properties: CloneProperties, words: str) -> None:
    problems = source_location_problems(properties, "us-east-1", ACCOUNT)

    assert any(words in problem for problem in problems), problems


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param(CloneProperties("prod-db"), id="identifier"),
        pytest.param(CloneProperties(f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:prod-db"), id="own-arn"),
        pytest.param(CloneProperties(SHARED_ARN, instance_class="db.r6g.large"), id="shared-with-class"),
    ],
)
def test_source_location_accepted(properties: CloneProperties) -> None:
    assert source_location_problems(properties, "us-east-1", ACCOUNT) == []


def test_source_location_unknown_region_not_judged() -> None:
    assert source_location_problems(CloneProperties(SHARED_ARN, instance_class="db.r6g.large"), None, None) == []


@pytest.mark.parametrize(
    ("source", "shared"),
    [
        pytest.param("prod-db", False, id="identifier"),
        pytest.param(f"arn:aws:rds:us-east-1:{ACCOUNT}:cluster:prod-db", False, id="own-arn"),
        pytest.param(SHARED_ARN, True, id="other-account"),
    ],
)
def test_is_shared_source(source: str, shared: bool) -> None:
    assert is_shared_source(CloneProperties(source), ACCOUNT) is shared


@pytest.mark.parametrize(
    ("view", "refused"),
    [
        pytest.param(replace(SOURCE, storage_encrypted=True, kms_key_id="alias/aws/rds"), True, id="default-alias"),
        pytest.param(
            replace(SOURCE, storage_encrypted=True, kms_key_id=f"arn:aws:kms:us-east-1:{OTHER_ACCOUNT}:alias/aws/rds"),
            True,
            id="default-alias-arn",
        ),
        pytest.param(replace(SOURCE, storage_encrypted=True, kms_key_id=KEY_ARN), False, id="customer-key"),
        pytest.param(replace(SOURCE, storage_encrypted=False), False, id="unencrypted"),
    ],
)
def test_shared_source_default_key_refused(view: ClusterView, refused: bool) -> None:
    problems = shared_source_problems(CloneProperties(SHARED_ARN), view)

    assert bool(problems) is refused
    assert all("aws/rds" in problem for problem in problems)


@pytest.mark.parametrize(
    ("encrypted", "refused"), [pytest.param(False, True, id="unencrypted"), pytest.param(True, False, id="encrypted")]
)
def test_creation_kms_key_needs_encrypted_source(encrypted: bool, refused: bool) -> None:
    now = datetime(2026, 11, 22, tzinfo=UTC)

    problems = creation_problems(
        replace(BASE, kms_key_id=KEY_ARN), replace(SOURCE, storage_encrypted=encrypted), now, now
    )

    assert bool(problems) is refused
    assert all("KmsKeyId" in problem for problem in problems)
