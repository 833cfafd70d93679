"""When a clone is ready, what to do next to get it there, and how to tear it down.

Pure functions from what RDS reports (``ClusterView``) to the next step. The resource runs them on
every poll, so each answer only depends on the current state: a re-delivered request, a rollback or a
half-finished change all converge the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from aurora_clone.clone_state import ClusterView, DesiredClone, InstanceView
from aurora_clone.naming import instance_id, instance_number
from aurora_clone.ownership import MANAGED_BY_TAG, MANAGED_BY_VALUE, Owner
from aurora_clone.timespec import format_timestamp, parse_timestamp

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
    """Cluster settings to change; None leaves one as it is."""

    port: int | None = None
    vpc_security_group_ids: tuple[str, ...] | None = None
    parameter_group: str | None = None
    backtrack_window: int | None = None
    serverless_v2_capacity: tuple[float, float] | None = None
    iam_database_authentication: bool | None = None
    manage_master_user_password: bool | None = None  # only ever True: turn the managed secret on
    master_user_secret_kms_key_id: str | None = None
    deletion_protection: bool | None = None


@dataclass(frozen=True)
class Backtrack:
    """Rewind the cluster to ``to`` (a backtrack_mark); ``to_earliest`` when that is before the clone existed."""

    to: str
    to_earliest: bool = False


@dataclass(frozen=True)
class DeleteCluster:
    """Delete the cluster; with ``final_snapshot``, RDS first takes a manual snapshot of that name."""

    identifier: str
    final_snapshot: str | None = None


Action = CreateInstance | ModifyInstance | DeleteInstance | ModifyCluster | Backtrack | DeleteCluster


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


def plan_convergence(desired: DesiredClone, cluster: ClusterView | None, now: datetime | None = None) -> Step:
    """The next step towards ``desired``: ready only when the cluster and every instance are.

    In order: cluster settings, instances, then (everything available) the backtrack to
    ``desired.backtrack_to``, and last deletion protection, so that a clone that never became ready is
    never protected against the delete that follows a failed Create. ``now`` (the function's clock) keeps
    a backtrack to a time still ahead waiting until it has passed.

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
    backtrack = plan_backtrack(desired, cluster, now)
    if backtrack is not None:
        return backtrack
    if desired.deletion_protection and not cluster.deletion_protection:
        return Act((ModifyCluster(deletion_protection=True),), f"protecting DB cluster '{cluster.identifier}'")
    return Ready()


def plan_backtrack(desired: DesiredClone, cluster: ClusterView, now: datetime | None = None) -> Step | None:
    """The backtrack step for an ``available`` clone, or None when none is due.

    A backtrack is due while the clone's backtracked-to tag differs from ``desired.backtrack_to``; the tag is
    written once RDS accepted the backtrack, and the ``backtracking`` status keeps the clone waiting until
    RDS is done. RDS refuses a time still ahead, so that waits; one before the earliest time the clone can
    go back to is refused, except when the window still reaches the clone's creation and the time is before
    it: the clone's data before it existed is its data at creation, so it goes back there.
    """
    if desired.backtrack_to is None or cluster.backtracked_to == desired.backtrack_to:
        return None
    target = parse_timestamp(desired.backtrack_to)
    name = cluster.identifier
    if cluster.backtrack_window <= 0:
        return Broken(
            f"DB cluster '{name}' cannot go back to BacktrackTo {desired.backtrack_to}: backtracking is off for it "
            "(it can only be turned on when a clone is made, with BacktrackWindow)."
        )
    if now is not None and target > now:
        return Wait(
            f"BacktrackTo {desired.backtrack_to} is still ahead; DB cluster '{name}' goes back once it has passed"
        )
    earliest = cluster.earliest_backtrack_time
    reaches_creation = earliest is None or cluster.created is None or earliest <= cluster.created
    before_creation = cluster.created is not None and target <= cluster.created
    if earliest is not None and target < earliest and not (before_creation and reaches_creation):
        return Broken(
            f"BacktrackTo {desired.backtrack_to} is before {format_timestamp(earliest)}, the earliest time DB "
            f"cluster '{name}' can go back to (its creation, or BacktrackWindow ago, whichever is later)."
        )
    return Act(
        (Backtrack(desired.backtrack_to, to_earliest=before_creation),),
        f"backtracking DB cluster '{name}' to {desired.backtrack_to}",
    )


def plan_teardown(cluster: ClusterView | None, owner: Owner, final_snapshot: str | None = None) -> Step:
    """The next step in deleting an owned clone: its instances first, then the cluster itself.

    A protected clone is never unprotected here: the answer says how to release it. While the cluster
    is busy (``backtracking``, ``modifying``, ``backing-up``...) nothing is deleted: the teardown waits.
    ``final_snapshot`` names the snapshot RDS takes before deleting the cluster; a cluster in a terminal
    status holds no usable data and is deleted without one.
    """
    if cluster is None:
        return Ready()
    if cluster.deletion_protection:
        return Broken(deletion_protection_reason(cluster.identifier))
    foreign = [instance.identifier for instance in cluster.instances if not owner.owns(instance.tags)]
    if foreign:
        return Broken(
            f"DB cluster '{cluster.identifier}' has instances this resource did not create "
            f"({', '.join(foreign)}); delete them, then delete the stack again."
        )
    snapshot = final_snapshot if cluster.status not in TERMINAL_STATUSES else None
    return _delete_step(cluster, snapshot, with_cluster=True)


def deletion_accepted(cluster: ClusterView | None, carried_out: Act | None = None) -> bool:
    """True once RDS has accepted the deletion of ``cluster`` and each of its instances (irreversible): the
    step just ``carried_out`` asked for the cluster's deletion, or the cluster is ``deleting`` with every
    instance ``deleting``. What ``WaitForDeletion: false`` answers on.

    >>> deletion_accepted(ClusterView("c", "deleting", "aurora-postgresql"))
    True
    >>> deletion_accepted(ClusterView("c", "available", "aurora-postgresql"))
    False
    """
    if carried_out is not None and any(isinstance(action, DeleteCluster) for action in carried_out.actions):
        return True
    return (
        cluster is not None
        and cluster.status == "deleting"
        and all(instance.status == "deleting" for instance in cluster.instances)
    )


def deletion_protection_reason(cluster_id: str) -> str:
    """Why a protected clone was not deleted, and how its owner releases it."""
    return (
        f"DB cluster '{cluster_id}' has deletion protection on (DeletionProtection: true), so it was not deleted; "
        "this resource never turns the protection off by itself. To release it, update the stack with "
        "DeletionProtection set to false, then delete the stack again. A stack that can no longer be updated "
        "(DELETE_FAILED) needs the protection turned off on the cluster itself "
        f"(aws rds modify-db-cluster --db-cluster-identifier {cluster_id} --no-deletion-protection "
        "--apply-immediately) before the delete is retried."
    )


def plan_copy_teardown(cluster: ClusterView) -> Step:
    """The next step in deleting a pool copy this tool made: its own instances first, then the cluster."""
    if cluster.deletion_protection:
        return Broken(f"DB cluster '{cluster.identifier}' has deletion protection on; it is left alone.")
    owned = all(instance.tags.get(MANAGED_BY_TAG) == MANAGED_BY_VALUE for instance in cluster.instances)
    if not owned:
        return Broken(f"DB cluster '{cluster.identifier}' has instances this tool did not create; it is left alone.")
    return _delete_step(cluster)


def _delete_step(cluster: ClusterView, final_snapshot: str | None = None, *, with_cluster: bool = False) -> Step:
    """Instances first, then the cluster. ``with_cluster``: the cluster is deleted in the same step once every
    instance is being deleted (RDS accepts that: it refuses only instances that are not ``deleting``), which
    saves a round of waiting for the instances to go."""
    if cluster.status not in DELETABLE_STATUSES and cluster.status != "deleting":
        return Wait(f"DB cluster '{cluster.identifier}' is '{cluster.status}'")
    if cluster.instances:
        doomed = tuple(
            DeleteInstance(instance.identifier)
            for instance in cluster.instances
            if instance.status in DELETABLE_STATUSES
        )
        all_going = all(i.status in DELETABLE_STATUSES or i.status == "deleting" for i in cluster.instances)
        if with_cluster and all_going and cluster.status in DELETABLE_STATUSES:
            suffix = f" after a final snapshot '{final_snapshot}'" if final_snapshot else ""
            return Act(
                (*doomed, DeleteCluster(cluster.identifier, final_snapshot)),
                f"deleting DB cluster '{cluster.identifier}' and its instances{suffix}",
            )
        if doomed:
            return Act(doomed, f"deleting the instances of DB cluster '{cluster.identifier}'")
        states = ", ".join(f"'{i.identifier}' is '{i.status}'" for i in cluster.instances)
        return Wait(f"DB instance {states}")
    if cluster.status in DELETABLE_STATUSES:
        return Act(
            (DeleteCluster(cluster.identifier, final_snapshot),),
            f"deleting DB cluster '{cluster.identifier}'"
            + (f" after a final snapshot '{final_snapshot}'" if final_snapshot else ""),
        )
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
    window = desired.backtrack_window
    # A window can be changed, or set to 0, only on a clone made with one (changes.classify_update replaces
    # a clone without one): RDS cannot turn backtracking on later.
    if window is None or window == cluster.backtrack_window or cluster.backtrack_window == 0:
        window = None
    capacity = desired.serverless_v2_capacity
    if capacity is not None and tuple(float(units) for units in capacity) == cluster.serverless_v2_capacity:
        capacity = None
    iam = desired.iam_database_authentication
    if iam is not None and iam == cluster.iam_database_authentication:
        iam = None
    manage = True if desired.manage_master_user_password and not cluster.master_user_secret_arn else None
    # Protection is turned on last (plan_convergence); turning it off is an explicit Update, done now.
    unprotect = False if desired.deletion_protection is False and cluster.deletion_protection else None
    change = ModifyCluster(
        port=port,
        vpc_security_group_ids=groups,
        parameter_group=parameter_group,
        backtrack_window=window,
        serverless_v2_capacity=capacity,
        iam_database_authentication=iam,
        manage_master_user_password=manage,
        master_user_secret_kms_key_id=desired.master_user_secret_kms_key_id if manage else None,
        deletion_protection=unprotect,
    )
    return None if change == ModifyCluster() else change


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
