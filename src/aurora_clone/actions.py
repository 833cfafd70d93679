"""The one executor of readiness actions: each ``readiness.Action`` as the RDS calls it stands for.

The resource (a request's clone), the copy pool and the sweep all carry out what the pure decisions in
``readiness`` plan through here, so an action means the same wherever it was planned, and none is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_lambda_powertools import Logger

from aurora_clone.clone_state import BACKTRACKED_TO_TAG, ClusterView, DesiredClone
from aurora_clone.logs import SERVICE
from aurora_clone.properties import CloneProperties
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import (
    Act,
    Action,
    Backtrack,
    CreateInstance,
    DeleteCluster,
    DeleteInstance,
    ModifyCluster,
    ModifyInstance,
    Step,
    Wait,
    plan_copy_teardown,
)
from aurora_clone.request_store import RequestStore
from aurora_clone.timespec import parse_timestamp

logger = Logger(service=SERVICE, child=True)


class NotRecordedError(RdsError):
    """The tool has no record of making the cluster or instance an action is for: nothing is done to it."""

    def __init__(self, text: str) -> None:
        super().__init__("NotRecordedByAuroraClone", text)


class ActionExecutor:
    """Carries out planned steps through the RDS gateway, on clusters the tool's ledger names only.

    Before any action the ledger (``store.made``) must name the cluster; an instance is recorded there before
    it is created, and only recorded instances are changed or deleted; a cluster whose deletion RDS accepted
    leaves the ledger. So no planned step, wherever it was planned, acts on a cluster someone tagged.
    """

    def __init__(self, rds: RdsGateway, store: RequestStore) -> None:
        self.rds = rds
        self.store = store

    def carry_out(self, step: Act, cluster: ClusterView) -> Act | Wait:
        """Every action of ``step`` on ``cluster``, in order: ``step`` itself once RDS accepted them all, or a
        ``Wait`` when RDS said "not yet" (busy, or another invocation got there first): the next look plans
        again from what RDS shows then. Any other refusal is raised (``RdsError``)."""
        for action in step.actions:
            try:
                self.run(action, cluster)
            except RdsError as error:
                if error.look_again:
                    return Wait(f"{step.why}: RDS says not yet ({error})")
                raise
        return step

    def restore(
        self,
        desired: DesiredClone,
        properties: CloneProperties,
        *,
        source: str,
        tags: Mapping[str, str],
        full_copy: bool = False,
    ) -> None:
        """Restore ``desired.cluster_id`` from ``source`` with what is set at creation only: a stack's clone and a
        warm clone are made alike. The caller has recorded the cluster in the ledger first."""
        self.rds.restore_clone(
            cluster_id=desired.cluster_id,
            source=source,
            tags=tags,
            subnet_group=properties.db_subnet_group_name,
            security_groups=desired.vpc_security_group_ids,
            cluster_parameter_group=desired.cluster_parameter_group,
            port=desired.port,
            full_copy=full_copy,
            kms_key_id=properties.kms_key_id,
            backtrack_window=properties.backtrack_window,
            serverless_v2_capacity=desired.serverless_v2_capacity,
            iam_database_authentication=properties.enable_iam_database_authentication,
        )

    def tear_down(self, cluster: ClusterView) -> Step:
        """One step of deleting a cluster this tool made, without waiting: its instances, or then the
        cluster (``readiness.plan_copy_teardown``). Returns the step taken, or why nothing was."""
        step = plan_copy_teardown(cluster)
        return self.carry_out(step, cluster) if isinstance(step, Act) else step

    def run(self, action: Action, cluster: ClusterView) -> None:
        """One action on ``cluster`` (the cluster the action belongs to, as last described)."""
        logger.info("RDS action", extra={"action": type(action).__name__, "cluster": cluster.identifier})
        made = self.store.made(cluster.identifier)
        if made is None:
            raise NotRecordedError(
                f"DB cluster '{cluster.identifier}' carries this tool's tags, but the tool has no record of making "
                "it: it is left alone."
            )
        match action:
            case ModifyInstance(identifier) | DeleteInstance(identifier) if identifier.lower() not in made.instances:
                raise NotRecordedError(
                    f"DB instance '{identifier}' of the clone '{cluster.identifier}' was not created by this tool: "
                    "it is left alone."
                )
        match action:
            case CreateInstance(identifier, instance_class, parameter_group):
                if not self.store.record_instance(cluster.identifier, identifier):
                    raise NotRecordedError(f"DB cluster '{cluster.identifier}' is not recorded as made by this tool.")
                self.rds.create_instance(
                    instance_id=identifier,
                    cluster_id=cluster.identifier,
                    engine=cluster.engine,
                    instance_class=instance_class,
                    parameter_group=parameter_group,
                    tags=cluster.tags,
                )
            case ModifyInstance(identifier, instance_class, parameter_group):
                self.rds.modify_instance(identifier, instance_class=instance_class, parameter_group=parameter_group)
            case DeleteInstance(identifier):
                self.rds.delete_instance(identifier)
            case ModifyCluster() as change:
                self.rds.modify_cluster(
                    cluster.identifier,
                    port=change.port,
                    security_groups=change.vpc_security_group_ids,
                    parameter_group=change.parameter_group,
                    backtrack_window=change.backtrack_window,
                    serverless_v2_capacity=change.serverless_v2_capacity,
                    iam_database_authentication=change.iam_database_authentication,
                    manage_master_user_password=change.manage_master_user_password,
                    master_user_secret_kms_key_id=change.master_user_secret_kms_key_id,
                    deletion_protection=change.deletion_protection,
                )
            case Backtrack(to, to_earliest):
                self.rds.backtrack_cluster(cluster.identifier, parse_timestamp(to), to_earliest=to_earliest)
                # Written once RDS accepted it: later looks see it asked for and wait for 'backtracking' to end.
                self.rds.add_tags(cluster.arn, {BACKTRACKED_TO_TAG: to})
                logger.info("Backtrack requested", extra={"cluster": cluster.identifier, "to": to})
            case DeleteCluster(identifier, final_snapshot):
                self.rds.delete_cluster(identifier, final_snapshot)
                self.store.forget_made(identifier)
                if final_snapshot:
                    logger.info("Final snapshot requested", extra={"cluster": identifier, "snapshot": final_snapshot})
