"""plan_convergence and plan_teardown: the next step from what RDS reports, and nothing else."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from aurora_clone.clone_state import ClusterView, DesiredClone, InstanceView
from aurora_clone.naming import instance_id
from aurora_clone.ownership import Owner
from aurora_clone.readiness import (
    Act,
    Broken,
    CreateInstance,
    DeleteCluster,
    DeleteInstance,
    ModifyCluster,
    ModifyInstance,
    Ready,
    Wait,
    plan_convergence,
    plan_teardown,
)

CLUSTER_ID = "my-clone"
LARGE, XLARGE = "db.r6g.large", "db.r6g.xlarge"
GROUPS = ("sg-11111111", "sg-22222222")
OWNER = Owner("arn:aws:cloudformation:us-east-1:123456789012:stack/integration-env/0a1b2c3d", "Clone")
OWNED = OWNER.tags("0123456789ab", "prod-db")
OTHER_OWNER = Owner("arn:aws:cloudformation:us-east-1:123456789012:stack/other-env/9f8e7d6c", "Clone")

# Cluster statuses RDS does not recover from by itself (REFERENCE: "Terminal or stuck cluster statuses").
TERMINAL = [
    "failed",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-failed",
    "migration-failed",
]


def desired(count: int = 2, **changes: Any) -> DesiredClone:
    goal = DesiredClone(
        cluster_id=CLUSTER_ID,
        instance_class=LARGE,
        instance_count=count,
        db_parameter_group="clone-ipg",
        port=3306,
        vpc_security_group_ids=GROUPS,
        cluster_parameter_group="clone-cpg",
    )
    return replace(goal, **changes)


def instance(number: int, status: str = "available", cluster_id: str = CLUSTER_ID, **changes: Any) -> InstanceView:
    view = InstanceView(
        identifier=instance_id(cluster_id, number),
        status=status,
        instance_class=LARGE,
        parameter_group="clone-ipg",
        is_writer=number == 1,
        tags=OWNED,
    )
    return replace(view, **changes)


def cluster(*instances: InstanceView, status: str = "available", **changes: Any) -> ClusterView:
    view = ClusterView(
        identifier=CLUSTER_ID,
        status=status,
        engine="aurora-mysql",
        port=3306,
        vpc_security_group_ids=GROUPS,
        parameter_group="clone-cpg",
        tags=OWNED,
        instances=instances,
    )
    return replace(view, **changes)


# --- convergence ---------------------------------------------------------------------------------------------------


def test_converge_cluster_missing_broken() -> None:
    step = plan_convergence(desired(), None)

    assert isinstance(step, Broken)
    assert CLUSTER_ID in step.why


@pytest.mark.parametrize("status", TERMINAL)
def test_converge_cluster_terminal_broken(status: str) -> None:
    step = plan_convergence(desired(), cluster(instance(1), instance(2), status=status))

    assert isinstance(step, Broken)
    assert f"'{status}'" in step.why
    assert CLUSTER_ID in step.why


@pytest.mark.parametrize("status", ["failed", "incompatible-parameters"])
def test_converge_instance_terminal_broken(status: str) -> None:
    step = plan_convergence(desired(), cluster(instance(1), instance(2, status)))

    assert isinstance(step, Broken)
    assert instance_id(CLUSTER_ID, 2) in step.why
    assert f"'{status}'" in step.why


@pytest.mark.parametrize("status", ["creating", "modifying", "backing-up"])
def test_converge_cluster_changing_waits(status: str) -> None:
    step = plan_convergence(desired(), cluster(status=status))

    assert isinstance(step, Wait)
    assert status in step.why


@pytest.mark.parametrize("count", [1, 2, 3])
@pytest.mark.parametrize("cluster_id", [pytest.param(CLUSTER_ID, id="short"), pytest.param("c" * 63, id="63")])
def test_converge_no_instances_creates_each(count: int, cluster_id: str) -> None:
    goal = desired(count, cluster_id=cluster_id)

    step = plan_convergence(goal, cluster(identifier=cluster_id))

    assert isinstance(step, Act)
    assert step.actions == tuple(
        CreateInstance(instance_id(cluster_id, number), LARGE, "clone-ipg") for number in range(1, count + 1)
    )


def test_converge_some_instances_missing_creates_only_missing() -> None:
    step = plan_convergence(desired(3), cluster(instance(1), instance(3, "creating")))

    assert isinstance(step, Act)
    assert step.actions == (CreateInstance(instance_id(CLUSTER_ID, 2), LARGE, "clone-ipg"),)


def test_converge_no_parameter_group_created_without() -> None:
    step = plan_convergence(desired(1, db_parameter_group=None), cluster())

    assert isinstance(step, Act)
    assert step.actions == (CreateInstance(instance_id(CLUSTER_ID, 1), LARGE, None),)


@pytest.mark.parametrize("status", ["creating", "configuring-enhanced-monitoring", "modifying", "rebooting"])
def test_converge_instance_not_available_waits(status: str) -> None:
    step = plan_convergence(desired(2), cluster(instance(1), instance(2, status)))

    assert isinstance(step, Wait)
    assert instance_id(CLUSTER_ID, 2) in step.why
    assert status in step.why


@pytest.mark.parametrize("count", [1, 2, 3])
def test_converge_all_available_ready(count: int) -> None:
    instances = [instance(number) for number in range(1, count + 1)]

    assert plan_convergence(desired(count), cluster(*instances)) == Ready()


def test_converge_security_groups_other_order_ready() -> None:
    view = cluster(instance(1), instance(2), vpc_security_group_ids=tuple(reversed(GROUPS)))

    assert plan_convergence(desired(2), view) == Ready()


def test_converge_unset_settings_ready() -> None:
    """Nothing resolved for port, groups or parameter groups: whatever the cluster has is fine."""
    goal = desired(2, port=None, vpc_security_group_ids=None, cluster_parameter_group=None, db_parameter_group=None)

    view = cluster(instance(1, parameter_group="x"), instance(2), port=5432, parameter_group="y")

    assert plan_convergence(goal, view) == Ready()


@pytest.mark.parametrize(
    ("instance_changes", "expected"),
    [
        pytest.param(
            {"instance_class": XLARGE},
            ModifyInstance(instance_id(CLUSTER_ID, 2), instance_class=LARGE),
            id="class",
        ),
        pytest.param(
            {"parameter_group": "old-ipg"},
            ModifyInstance(instance_id(CLUSTER_ID, 2), parameter_group="clone-ipg"),
            id="parameter-group",
        ),
        pytest.param(
            {"instance_class": XLARGE, "parameter_group": "old-ipg"},
            ModifyInstance(instance_id(CLUSTER_ID, 2), instance_class=LARGE, parameter_group="clone-ipg"),
            id="both",
        ),
        pytest.param(
            {"instance_class": XLARGE, "pending_class": "db.r6g.2xlarge"},
            ModifyInstance(instance_id(CLUSTER_ID, 2), instance_class=LARGE),
            id="class-pending-other",
        ),
    ],
)
def test_converge_instance_differs_modified(instance_changes: dict[str, Any], expected: ModifyInstance) -> None:
    step = plan_convergence(desired(2), cluster(instance(1), instance(2, **instance_changes)))

    assert isinstance(step, Act)
    assert step.actions == (expected,)


def test_converge_class_pending_waits() -> None:
    """The resize was asked for and RDS accepted it: asking again would only fail; wait for it."""
    view = cluster(instance(1), instance(2, instance_class=XLARGE, pending_class=LARGE))

    step = plan_convergence(desired(2), view)

    assert isinstance(step, Wait)
    assert instance_id(CLUSTER_ID, 2) in step.why


@pytest.mark.parametrize(
    ("count", "present", "removed"),
    [
        pytest.param(1, 3, [2, 3], id="3-to-1"),
        pytest.param(2, 4, [3, 4], id="4-to-2"),
        pytest.param(1, 2, [2], id="2-to-1"),
    ],
)
def test_converge_count_reduced_highest_deleted(count: int, present: int, removed: list[int]) -> None:
    view = cluster(*(instance(number) for number in range(1, present + 1)))

    step = plan_convergence(desired(count), view)

    assert isinstance(step, Act)
    assert step.actions == tuple(DeleteInstance(instance_id(CLUSTER_ID, number)) for number in removed)


def test_converge_surplus_instance_deleting_waits() -> None:
    step = plan_convergence(desired(1), cluster(instance(1), instance(2, "deleting")))

    assert isinstance(step, Wait)
    assert instance_id(CLUSTER_ID, 2) in step.why


@pytest.mark.parametrize(
    ("cluster_changes", "expected"),
    [
        pytest.param({"port": 3307}, ModifyCluster(port=3306), id="port"),
        pytest.param(
            {"vpc_security_group_ids": ("sg-11111111",)},
            ModifyCluster(vpc_security_group_ids=GROUPS),
            id="security-groups",
        ),
        pytest.param({"vpc_security_group_ids": ()}, ModifyCluster(vpc_security_group_ids=GROUPS), id="no-groups"),
        pytest.param({"parameter_group": "old-cpg"}, ModifyCluster(parameter_group="clone-cpg"), id="parameter-group"),
        pytest.param(
            {"port": 3307, "parameter_group": "old-cpg"},
            ModifyCluster(port=3306, parameter_group="clone-cpg"),
            id="port-and-parameter-group",
        ),
    ],
)
def test_converge_cluster_setting_differs_only_changes_modified(
    cluster_changes: dict[str, Any], expected: ModifyCluster
) -> None:
    step = plan_convergence(desired(2), cluster(instance(1), instance(2), **cluster_changes))

    assert isinstance(step, Act)
    assert step.actions == (expected,)


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param(InstanceView("manual-reader", "creating", XLARGE), id="creating"),
        pytest.param(InstanceView("manual-reader", "available", XLARGE, parameter_group="other"), id="other-class"),
        pytest.param(InstanceView("manual-reader", "failed", LARGE), id="failed"),
        pytest.param(InstanceView(instance_id("other-clone", 3), "available", LARGE), id="other-clusters-name"),
    ],
)
def test_converge_foreign_instance_ignored(foreign: InstanceView) -> None:
    assert plan_convergence(desired(2), cluster(instance(1), foreign, instance(2))) == Ready()


def test_converge_foreign_instance_not_counted() -> None:
    view = cluster(instance(1), InstanceView("manual-reader", "available", LARGE))

    step = plan_convergence(desired(2), view)

    assert isinstance(step, Act)
    assert step.actions == (CreateInstance(instance_id(CLUSTER_ID, 2), LARGE, "clone-ipg"),)


# --- teardown ------------------------------------------------------------------------------------------------------


def test_teardown_cluster_gone_ready() -> None:
    assert plan_teardown(None, OWNER) == Ready()


def test_teardown_deletion_protection_broken() -> None:
    step = plan_teardown(cluster(instance(1), deletion_protection=True), OWNER)

    assert isinstance(step, Broken)
    assert CLUSTER_ID in step.why
    assert "deletion protection" in step.why


@pytest.mark.parametrize(
    "foreign",
    [
        pytest.param(InstanceView("manual-reader", "available", LARGE), id="untagged"),
        pytest.param(
            InstanceView("manual-reader", "available", LARGE, tags=OTHER_OWNER.tags("fedcba987654", "prod-db")),
            id="other-stacks",
        ),
        pytest.param(InstanceView("manual-reader", "available", LARGE, tags={"team": "payments"}), id="user-tags-only"),
    ],
)
def test_teardown_foreign_instance_broken(foreign: InstanceView) -> None:
    step = plan_teardown(cluster(instance(1), foreign), OWNER)

    assert isinstance(step, Broken)
    assert "manual-reader" in step.why
    assert instance_id(CLUSTER_ID, 1) not in step.why


@pytest.mark.parametrize("count", [1, 3])
def test_teardown_owned_instances_deleted(count: int) -> None:
    view = cluster(*(instance(number) for number in range(1, count + 1)))

    step = plan_teardown(view, OWNER)

    assert isinstance(step, Act)
    instances = tuple(DeleteInstance(instance_id(CLUSTER_ID, number)) for number in range(1, count + 1))
    assert step.actions == (*instances, DeleteCluster(CLUSTER_ID)), "the cluster goes in the same step"


def test_teardown_with_final_snapshot_deletes_instances_and_cluster_with_its_snapshot() -> None:
    step = plan_teardown(cluster(instance(1)), OWNER, final_snapshot="snap")

    assert isinstance(step, Act)
    assert step.actions == (DeleteInstance(instance_id(CLUSTER_ID, 1)), DeleteCluster(CLUSTER_ID, "snap"))


def test_teardown_instances_already_deleting_cluster_deleted() -> None:
    step = plan_teardown(cluster(instance(1, "deleting"), instance(2, "deleting")), OWNER)

    assert isinstance(step, Act)
    assert step.actions == (DeleteCluster(CLUSTER_ID),)


def test_teardown_available_deleted_creating_left() -> None:
    step = plan_teardown(cluster(instance(1), instance(2, "creating")), OWNER)

    assert isinstance(step, Act)
    assert step.actions == (DeleteInstance(instance_id(CLUSTER_ID, 1)),)


@pytest.mark.parametrize("status", ["creating", "modifying"])
def test_teardown_instance_changing_waits(status: str) -> None:
    step = plan_teardown(cluster(instance(1, status)), OWNER)

    assert isinstance(step, Wait)
    assert instance_id(CLUSTER_ID, 1) in step.why


@pytest.mark.parametrize("status", ["available", "stopped", "failed", "incompatible-network"])
def test_teardown_no_instances_cluster_deleted(status: str) -> None:
    step = plan_teardown(cluster(status=status), OWNER)

    assert isinstance(step, Act)
    assert step.actions == (DeleteCluster(CLUSTER_ID),)


@pytest.mark.parametrize("status", ["deleting", "creating", "modifying"])
def test_teardown_no_instances_cluster_changing_waits(status: str) -> None:
    step = plan_teardown(cluster(status=status), OWNER)

    assert isinstance(step, Wait)
    assert status in step.why
