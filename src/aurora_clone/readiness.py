"""When a clone is ready, what to do next to get it there, and how to tear it down.

Pure functions from what RDS reports (``ClusterView``) to the next step. The resource runs them on
every poll, so each answer only depends on the current state: a re-delivered request, a rollback or a
half-finished change all converge the same way.
"""

from __future__ import annotations

from dataclasses import dataclass

from aurora_clone.clone_state import ClusterView, DesiredClone, InstanceView
from aurora_clone.naming import instance_id, instance_number
from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE, Owner

# Statuses from which RDS will not recover by itself (REFERENCE: Aurora cluster statuses).
TERMINAL_STATUSES = frozenset(
    {
        "failed",
        "incompatible-restore",
        "incompatible-parameters",
        "incompatible-network",
        "inaccessible-encryption-credentials",
        "inaccessible-encryption-credentials-recoverable",
        "restore-failed",
        "migration-failed",
    }
)
# Statuses in which RDS accepts a delete; anything else is still changing and is waited for.
DELETABLE_STATUSES = TERMINAL_STATUSES | {"available", "stopped", "storage-full", "insufficient-capacity"}


@dataclass(frozen=True)
class CreateInstance:
    identifier: str
    instance_class: str
    parameter_group: str | None


@dataclass(frozen=True)
class ModifyInstance:
    identifier: str
    instance_class: str | None = None
    parameter_group: str | None = None


@dataclass(frozen=True)
class DeleteInstance:
    identifier: str


@dataclass(frozen=True)
class ModifyCluster:
    port: int | None = None
    vpc_security_group_ids: tuple[str, ...] | None = None
    parameter_group: str | None = None


@dataclass(frozen=True)
class DeleteCluster:
    identifier: str


Action = CreateInstance | ModifyInstance | DeleteInstance | ModifyCluster | DeleteCluster


@dataclass(frozen=True)
class Act:
    """Carry out ``actions`` now, then look again on the next poll."""

    actions: tuple[Action, ...]
    why: str


@dataclass(frozen=True)
class Wait:
    """Nothing to do but wait; ``why`` says for what (it ends up in a timeout's Reason)."""

    why: str


@dataclass(frozen=True)
class Ready:
    """Done."""


@dataclass(frozen=True)
class Broken:
    """The goal can no longer be reached; ``why`` is the Reason CloudFormation shows."""

    why: str


Step = Act | Wait | Ready | Broken


def plan_convergence(desired: DesiredClone, cluster: ClusterView | None) -> Step:
    """The next step towards ``desired``: ready only when the cluster and every instance are.

    >>> plan_convergence(DesiredClone("c", "db.r6g.large", 1), None)
    Broken(why="DB cluster 'c' no longer exists: it was deleted while being created or changed.")
    """
    if cluster is None:
        return Broken(
            f"DB cluster '{desired.cluster_id}' no longer exists: it was deleted while being created or changed."
        )
    if cluster.status in TERMINAL_STATUSES:
        return Broken(f"DB cluster '{cluster.identifier}' is in status '{cluster.status}' and cannot recover.")
    if cluster.status == "deleting":
        return Broken(f"DB cluster '{cluster.identifier}' is being deleted.")
    ours = _instances_by_number(cluster)
    for instance in ours.values():
        if instance.status in TERMINAL_STATUSES:
            return Broken(f"DB instance '{instance.identifier}' is in status '{instance.status}' and cannot recover.")
    if cluster.status != "available":
        return Wait(f"DB cluster '{cluster.identifier}' is '{cluster.status}'")
    cluster_change = _cluster_change(desired, cluster)
    if cluster_change is not None:
        return Act((cluster_change,), f"modifying DB cluster '{cluster.identifier}'")
    actions = _instance_actions(desired, cluster, ours)
    if actions:
        return Act(actions, "adding, resizing or removing instances")
    unsettled = [
        f"'{instance.identifier}' is '{instance.status}'"
        for number, instance in sorted(ours.items())
        if instance.status != "available" or number > desired.instance_count or instance.pending_class
    ]
    if unsettled:
        return Wait("DB instance " + ", ".join(unsettled))
    return Ready()


def plan_teardown(cluster: ClusterView | None, owner: Owner) -> Step:
    """The next step in deleting an owned clone: its instances first, then the cluster itself."""
    if cluster is None:
        return Ready()
    if cluster.deletion_protection:
        return Broken(
            f"DB cluster '{cluster.identifier}' has deletion protection on. Turn it off first "
            "(aws rds modify-db-cluster --no-deletion-protection), then delete again."
        )
    foreign = [instance.identifier for instance in cluster.instances if not owner.owns(instance.tags)]
    if foreign:
        return Broken(
            f"DB cluster '{cluster.identifier}' has instances this resource did not create "
            f"({', '.join(foreign)}); delete them, then delete the stack again."
        )
    return _delete_step(cluster)


def plan_copy_teardown(cluster: ClusterView) -> Step:
    """The next step in deleting a pool copy this tool made: its own instances first, then the cluster."""
    if cluster.deletion_protection:
        return Broken(f"DB cluster '{cluster.identifier}' has deletion protection on; it is left alone.")
    owned = all(instance.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE for instance in cluster.instances)
    if not owned:
        return Broken(f"DB cluster '{cluster.identifier}' has instances this tool did not create; it is left alone.")
    return _delete_step(cluster)


def _delete_step(cluster: ClusterView) -> Step:
    if cluster.instances:
        doomed = tuple(
            DeleteInstance(instance.identifier)
            for instance in cluster.instances
            if instance.status in DELETABLE_STATUSES
        )
        if doomed:
            return Act(doomed, f"deleting the instances of DB cluster '{cluster.identifier}'")
        states = ", ".join(f"'{i.identifier}' is '{i.status}'" for i in cluster.instances)
        return Wait(f"DB instance {states}")
    if cluster.status in DELETABLE_STATUSES:
        return Act((DeleteCluster(cluster.identifier),), f"deleting DB cluster '{cluster.identifier}'")
    return Wait(f"DB cluster '{cluster.identifier}' is '{cluster.status}'")


def _instances_by_number(cluster: ClusterView) -> dict[int, InstanceView]:
    """The cluster's instances named by this tool, by number; others are left alone."""
    numbered = {}
    for instance in cluster.instances:
        number = instance_number(cluster.identifier, instance.identifier)
        if number is not None:
            numbered[number] = instance
    return numbered


def _cluster_change(desired: DesiredClone, cluster: ClusterView) -> ModifyCluster | None:
    port = desired.port if desired.port is not None and desired.port != cluster.port else None
    groups = desired.vpc_security_group_ids
    if groups is not None and sorted(groups) == sorted(cluster.vpc_security_group_ids):
        groups = None
    parameter_group = desired.cluster_parameter_group
    if parameter_group == cluster.parameter_group:
        parameter_group = None
    if port is None and groups is None and parameter_group is None:
        return None
    return ModifyCluster(port=port, vpc_security_group_ids=groups, parameter_group=parameter_group)


def _instance_actions(desired: DesiredClone, cluster: ClusterView, ours: dict[int, InstanceView]) -> tuple[Action, ...]:
    actions: list[Action] = []
    for number in range(1, desired.instance_count + 1):
        instance = ours.get(number)
        if instance is None:
            actions.append(
                CreateInstance(
                    instance_id(cluster.identifier, number), desired.instance_class, desired.db_parameter_group
                )
            )
            continue
        if instance.status != "available":
            continue
        wanted_class = desired.instance_class
        resize = instance.instance_class != wanted_class and instance.pending_class != wanted_class
        regroup = desired.db_parameter_group not in (None, instance.parameter_group)
        if resize or regroup:
            actions.append(
                ModifyInstance(
                    instance.identifier,
                    instance_class=wanted_class if resize else None,
                    parameter_group=desired.db_parameter_group if regroup else None,
                )
            )
    for number, instance in sorted(ours.items()):
        if number > desired.instance_count and instance.status in DELETABLE_STATUSES:
            actions.append(DeleteInstance(instance.identifier))
    return tuple(actions)
