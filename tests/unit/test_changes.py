"""Updates: which changes replace the clone, the goal with defaults from the source, and user-tag edits."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from aurora_clone.changes import CurrentClone, classify_update, resolve_desired, tag_changes
from aurora_clone.clone_state import ClusterView, DesiredClone, InstanceView
from aurora_clone.ownership import Owner
from aurora_clone.properties import CloneProperties

SOURCE_ARN = "arn:aws:rds:us-east-1:123456789012:cluster:prod-db"
CURRENT_ID = "integration-env-clone-0123abcd"  # a derived id: no explicit ClusterId
OWNER_TAGS = Owner("arn:aws:cloudformation:us-east-1:123456789012:stack/integration-env/0a1b2c3d", "Clone").tags(
    "0123456789ab", "prod-db"
)

BASE = CloneProperties(source_cluster_id="prod-db")
# The clone being updated: made from prod-db, in the source's subnet group, under a derived id.
AS_IS = CurrentClone(CURRENT_ID, source="prod-db", subnet_group="source-subnets")
NAMED = CurrentClone("named-clone", source="prod-db", subnet_group="source-subnets")

SOURCE = ClusterView(
    identifier="prod-db",
    status="available",
    engine="aurora-mysql",
    port=3306,
    vpc_security_group_ids=("sg-aaaaaaaa", "sg-bbbbbbbb"),
    parameter_group="source-cpg",
    subnet_group="source-subnets",
    # The reader comes first: the writer is found by its role, not by its position.
    instances=(
        InstanceView("prod-db-reader", "available", "db.r6g.xlarge", parameter_group="reader-ipg"),
        InstanceView("prod-db-writer", "available", "db.r6g.large", parameter_group="writer-ipg", is_writer=True),
    ),
)

CURRENT = ClusterView(
    identifier=CURRENT_ID,
    status="available",
    engine="aurora-mysql",
    port=3310,
    vpc_security_group_ids=("sg-cccccccc",),
    parameter_group="clone-cpg",
    subnet_group="clone-subnets",
    instances=(
        InstanceView(CURRENT_ID + "-1", "available", "db.t4g.medium", parameter_group="clone-ipg", is_writer=True),
    ),
)


# --- classify_update -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "old", "new"),
    [
        pytest.param("SourceClusterId", BASE, replace(BASE, source_cluster_id="other-db"), id="source"),
        pytest.param(
            "SourceClusterId",
            BASE,
            replace(BASE, source_cluster_id="arn:aws:rds:us-east-1:123456789012:cluster:other-db"),
            id="source-arn-of-other",
        ),
        pytest.param("ClusterId", BASE, replace(BASE, cluster_id="named-clone"), id="cluster-id-set"),
        pytest.param("ClusterId", replace(BASE, cluster_id="named-clone"), BASE, id="cluster-id-removed"),
        pytest.param(
            "ClusterId", replace(BASE, cluster_id="named-clone"), replace(BASE, cluster_id="renamed"), id="cluster-id"
        ),
        pytest.param("DBSubnetGroupName", BASE, replace(BASE, db_subnet_group_name="other"), id="subnet-group-set"),
        pytest.param(
            "DBSubnetGroupName",
            replace(BASE, db_subnet_group_name="one"),
            replace(BASE, db_subnet_group_name="two"),
            id="subnet-group",
        ),
    ],
)
def test_classify_replacing_property_changed_replaces(name: str, old: CloneProperties, new: CloneProperties) -> None:
    decision = classify_update(old, new, AS_IS)

    assert decision.replaces
    assert decision.replace_because == (name,)
    assert decision.refusal is None


def test_classify_all_replacing_properties_changed_all_named() -> None:
    new = CloneProperties(source_cluster_id="other-db", cluster_id="renamed", db_subnet_group_name="other")

    decision = classify_update(BASE, new, AS_IS)

    assert set(decision.replace_because) == {"SourceClusterId", "ClusterId", "DBSubnetGroupName"}


@pytest.mark.parametrize(
    ("old", "new"),
    [
        pytest.param("prod-db", SOURCE_ARN, id="identifier-to-arn"),
        pytest.param(SOURCE_ARN, "prod-db", id="arn-to-identifier"),
        pytest.param("prod-db", "arn:aws:rds:us-east-1:123456789012:cluster:Prod-DB", id="upper-case-arn"),
    ],
)
def test_classify_same_source_other_form_in_place(old: str, new: str) -> None:
    decision = classify_update(replace(BASE, source_cluster_id=old), replace(BASE, source_cluster_id=new), AS_IS)

    assert not decision.replaces
    assert decision.replace_because == ()


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"instance_class": "db.r6g.xlarge"}, id="instance-class"),
        pytest.param({"instance_count": 3}, id="instance-count"),
        pytest.param({"port": 3307}, id="port"),
        pytest.param({"vpc_security_group_ids": ("sg-12345678",)}, id="security-groups"),
        pytest.param({"db_cluster_parameter_group_name": "other-cpg"}, id="cluster-parameter-group"),
        pytest.param({"db_parameter_group_name": "other-ipg"}, id="parameter-group"),
        pytest.param({"tags": (("team", "qa"),)}, id="tags"),
        pytest.param({"service_timeout": 600}, id="service-timeout"),
        pytest.param({}, id="nothing"),
    ],
)
def test_classify_other_property_changed_in_place(changes: dict[str, Any]) -> None:
    decision = classify_update(BASE, replace(BASE, **changes), AS_IS)

    assert not decision.replaces
    assert decision.replace_because == ()
    assert decision.refusal is None


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"source_cluster_id": "other-db"}, id="source"),
        pytest.param({"db_subnet_group_name": "other"}, id="subnet-group"),
    ],
)
def test_classify_replacement_keeping_cluster_id_refused(changes: dict[str, Any]) -> None:
    old = replace(BASE, cluster_id="named-clone")
    new = replace(old, **changes)

    decision = classify_update(old, new, NAMED)

    assert decision.replaces
    assert decision.refusal is not None
    assert "ClusterId" in decision.refusal
    assert "named-clone" in decision.refusal


def test_classify_rollback_of_failed_replacement_in_place() -> None:
    failed = replace(BASE, source_cluster_id="missing-db")  # the update that failed: the clone was never replaced

    decision = classify_update(failed, BASE, AS_IS)  # the rollback: old and new swapped

    assert not decision.replaces


@pytest.mark.parametrize(
    ("new", "replaces"),
    [
        pytest.param(BASE, False, id="same-as-clone"),
        pytest.param(replace(BASE, db_subnet_group_name="source-subnets"), False, id="same-subnet-group-named"),
        pytest.param(replace(BASE, source_cluster_id="other-db"), True, id="other-source"),
        pytest.param(replace(BASE, cluster_id="renamed"), True, id="other-cluster-id"),
        pytest.param(replace(BASE, db_subnet_group_name="other"), True, id="other-subnet-group"),
    ],
)
def test_classify_unreadable_old_properties_judged_by_clone(new: CloneProperties, replaces: bool) -> None:
    assert classify_update(None, new, AS_IS).replaces is replaces


def test_classify_replacement_with_new_cluster_id_not_refused() -> None:
    old = replace(BASE, cluster_id="named-clone")
    new = replace(BASE, cluster_id="renamed-clone", source_cluster_id="other-db")

    decision = classify_update(old, new, NAMED)

    assert decision.replace_because == ("SourceClusterId", "ClusterId")
    assert decision.refusal is None


# --- resolve_desired -----------------------------------------------------------------------------------------------


def test_resolve_unset_properties_source_defaults() -> None:
    goal = resolve_desired(BASE, "my-clone", SOURCE)

    assert goal == DesiredClone(
        cluster_id="my-clone",
        instance_class="db.r6g.large",  # the writer's, not the reader's
        instance_count=1,
        db_parameter_group="writer-ipg",
        port=3306,
        vpc_security_group_ids=("sg-aaaaaaaa", "sg-bbbbbbbb"),
        cluster_parameter_group="source-cpg",
        iam_database_authentication=False,  # RDS's default for a clone: off
        deletion_protection=False,
    )


def test_resolve_explicit_properties_win() -> None:
    properties = CloneProperties(
        source_cluster_id="prod-db",
        instance_class="db.r7g.xlarge",
        instance_count=3,
        vpc_security_group_ids=("sg-12345678",),
        db_cluster_parameter_group_name="my-cpg",
        db_parameter_group_name="my-ipg",
        port=3307,
    )

    goal = resolve_desired(properties, "my-clone", SOURCE, CURRENT)

    assert goal == DesiredClone(
        cluster_id="my-clone",
        instance_class="db.r7g.xlarge",
        instance_count=3,
        db_parameter_group="my-ipg",
        port=3307,
        vpc_security_group_ids=("sg-12345678",),
        cluster_parameter_group="my-cpg",
        iam_database_authentication=False,
        deletion_protection=False,
    )


def test_resolve_other_network_source_groups_not_copied() -> None:
    """Security groups belong to a VPC: the source's mean nothing in another subnet group's network."""
    goal = resolve_desired(replace(BASE, db_subnet_group_name="other-vpc-subnets"), "my-clone", SOURCE)

    assert goal.vpc_security_group_ids is None
    assert goal.instance_class == "db.r6g.large"
    assert goal.port == 3306


def test_resolve_other_network_explicit_groups_kept() -> None:
    properties = replace(BASE, db_subnet_group_name="other-vpc-subnets", vpc_security_group_ids=("sg-12345678",))

    goal = resolve_desired(properties, "my-clone", SOURCE)

    assert goal.vpc_security_group_ids == ("sg-12345678",)


def test_resolve_source_gone_current_values_kept() -> None:
    goal = resolve_desired(BASE, CURRENT_ID, None, CURRENT)

    assert goal == DesiredClone(
        cluster_id=CURRENT_ID,
        instance_class="db.t4g.medium",
        instance_count=1,
        db_parameter_group="clone-ipg",
        port=3310,
        vpc_security_group_ids=("sg-cccccccc",),
        cluster_parameter_group="clone-cpg",
        iam_database_authentication=False,
        deletion_protection=False,
    )


def test_resolve_source_present_source_preferred_to_current() -> None:
    goal = resolve_desired(BASE, CURRENT_ID, SOURCE, CURRENT)

    assert goal.instance_class == "db.r6g.large"
    assert goal.port == 3306
    assert goal.cluster_parameter_group == "source-cpg"


def test_resolve_nothing_known_only_explicit_values() -> None:
    goal = resolve_desired(replace(BASE, instance_class="db.r6g.large"), "my-clone", None, None)

    assert goal == DesiredClone(
        "my-clone", "db.r6g.large", 1, iam_database_authentication=False, deletion_protection=False
    )


@pytest.mark.parametrize(
    ("source", "current"),
    [
        pytest.param(replace(SOURCE, instances=()), None, id="source-without-instances"),
        pytest.param(replace(SOURCE, instances=SOURCE.instances[:1]), None, id="source-with-reader-only"),
        pytest.param(None, None, id="nothing-known"),
        pytest.param(None, replace(CURRENT, instances=()), id="current-without-instances"),
    ],
)
def test_resolve_no_writer_no_class_refused(source: ClusterView | None, current: ClusterView | None) -> None:
    with pytest.raises(ValueError, match="InstanceClass"):
        resolve_desired(BASE, "my-clone", source, current)


def test_resolve_no_writer_explicit_class_accepted() -> None:
    goal = resolve_desired(replace(BASE, instance_class="db.r6g.large"), "my-clone", replace(SOURCE, instances=()))

    assert goal.instance_class == "db.r6g.large"
    assert goal.db_parameter_group is None
    assert goal.port == 3306


# --- tag_changes ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "actual", "previous", "add", "remove"),
    [
        pytest.param({"team": "qa"}, {}, {}, {"team": "qa"}, (), id="added"),
        pytest.param({"team": "qa"}, {"team": "dev"}, {"team": "dev"}, {"team": "qa"}, (), id="overwritten"),
        pytest.param({}, {"old": "x"}, {"old": "x"}, {}, ("old",), id="removed"),
        pytest.param(
            {"b": "1"},
            {"c": "2", "a": "3", "b": "1"},
            {"a": "3", "c": "2"},
            {},
            ("a", "c"),
            id="removed-sorted-kept-untouched",
        ),
        pytest.param({"team": "qa"}, {"team": "qa"}, {"team": "qa"}, {}, (), id="unchanged"),
        pytest.param({}, dict(OWNER_TAGS), {}, {}, (), id="ownership-tags-kept"),
        pytest.param(
            {"team": "qa"},
            {**OWNER_TAGS, "team": "dev", "old": "x"},
            {"team": "dev", "old": "x"},
            {"team": "qa"},
            ("old",),
            id="ownership-tags-kept-among-edits",
        ),
        pytest.param({}, {"aurora-clone-retain": "true"}, {}, {}, (), id="retain-set-by-hand-kept"),
        pytest.param({"team": "qa"}, {"team": "qa", "cost": "x"}, {"team": "qa"}, {}, (), id="hand-set-tag-kept"),
        pytest.param(
            {},
            {"aurora-clone-retain": "true"},
            {"aurora-clone-retain": "true"},
            {},
            ("aurora-clone-retain",),
            id="retain-the-template-set-and-dropped-removed",
        ),
    ],
)
def test_tag_changes_edits_computed(
    wanted: dict[str, str],
    actual: dict[str, str],
    previous: dict[str, str],
    add: dict[str, str],
    remove: tuple[str, ...],
) -> None:
    changes = tag_changes(wanted, actual, previous)

    assert changes.add == add
    assert changes.remove == remove
    assert bool(changes) is bool(add or remove)
    assert not any(key.startswith("aurora-clone:") for key in changes.remove)
