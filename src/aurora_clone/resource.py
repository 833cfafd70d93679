"""Create, update, delete and poll a clone, as short steps over the RDS gateway and the pure decisions.

Each public method returns an ``Outcome``: Done (answer SUCCESS), Failed (answer FAILED) or Pending
(poll the returned ``Job`` again). Nothing here knows about crhelper or EventBridge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone.changes import CurrentClone, classify_update, resolve_desired, tag_changes
from aurora_clone.clone_state import ClusterView, DesiredClone
from aurora_clone.logs import SERVICE
from aurora_clone.naming import (
    derive_cluster_id,
    instance_number,
    is_valid_identifier,
    not_created_id,
    request_token,
)
from aurora_clone.outcome import Done, Failed, Job, Outcome, Pending
from aurora_clone.ownership import REQUEST_TAG, SOURCE_TAG, Owner
from aurora_clone.properties import (
    MAX_SERVICE_TIMEOUT_SECONDS,
    CloneProperties,
    PropertiesError,
    parse_properties,
)
from aurora_clone.rds import RdsError, RdsGateway
from aurora_clone.readiness import (
    Act,
    Action,
    Broken,
    CreateInstance,
    DeleteCluster,
    DeleteInstance,
    ModifyCluster,
    ModifyInstance,
    Ready,
    Step,
    Wait,
    plan_convergence,
    plan_teardown,
)

logger = Logger(service=SERVICE, child=True)


@dataclass(frozen=True)
class Request:
    """The parts of a CloudFormation request the resource uses."""

    request_type: str
    stack_id: str
    request_id: str
    logical_id: str
    properties: Mapping[str, Any]
    physical_id: str | None = None
    old_properties: Mapping[str, Any] | None = None

    @property
    def owner(self) -> Owner:
        return Owner(self.stack_id, self.logical_id)

    @property
    def token(self) -> str:
        return request_token(self.stack_id, self.request_id, self.logical_id)

    @property
    def not_created_id(self) -> str:
        return not_created_id(self.stack_id, self.request_id, self.logical_id)

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> Request:
        return cls(
            request_type=event["RequestType"],
            stack_id=event["StackId"],
            request_id=event["RequestId"],
            logical_id=event["LogicalResourceId"],
            properties=event.get("ResourceProperties") or {},
            physical_id=event.get("PhysicalResourceId") or None,
            old_properties=event.get("OldResourceProperties"),
        )


def service_timeout(raw: Mapping[str, Any]) -> int:
    """The request's ServiceTimeout in seconds (CloudFormation's default when unset or unreadable)."""
    try:
        seconds = int(str(raw.get("ServiceTimeout", MAX_SERVICE_TIMEOUT_SECONDS)))
    except ValueError:
        return MAX_SERVICE_TIMEOUT_SECONDS
    return min(max(seconds, 1), MAX_SERVICE_TIMEOUT_SECONDS)


class CloneResource:
    """The Custom::AuroraClone lifecycle."""

    def __init__(self, rds: RdsGateway, clock: Callable[[], float] = time.time) -> None:
        self.rds = rds
        self.clock = clock

    # -- Create ---------------------------------------------------------------------------------------

    def create(self, request: Request) -> Outcome:
        try:
            properties = parse_properties(request.properties)
        except PropertiesError as error:
            return Failed(str(error), request.not_created_id)
        cluster_id = properties.cluster_id or derive_cluster_id(request.stack_id, request.logical_id, request.token)
        return self._make_clone(request, properties, cluster_id, replacing=None)

    def _make_clone(
        self, request: Request, properties: CloneProperties, cluster_id: str, replacing: str | None
    ) -> Outcome:
        """Restore a clone into ``cluster_id`` (or adopt it when this very request made it already)."""
        failed_id = replacing or request.not_created_id
        try:
            source = self.rds.describe_cluster(properties.source_cluster_id)
            if source is None:
                return Failed(
                    f"SourceClusterId '{properties.source_cluster_id}' does not exist in this account and Region.",
                    failed_id,
                )
            problem = _source_problem(properties.source_cluster_id, source)
            if problem is not None:
                return Failed(problem, failed_id)
            desired = resolve_desired(properties, cluster_id, source)
            job = Job(
                "converge",
                cluster_id,
                deadline=self.clock() + service_timeout(request.properties),
                answer_id=cluster_id,
                source=source.identifier,
                desired=desired,
                replacing=replacing,
            )
            existing = self.rds.describe_cluster(cluster_id)
            if existing is None:
                tags = {**dict(properties.tags), **request.owner.tags(request.token, source.identifier)}
                try:
                    self._restore(desired, properties, tags)
                except RdsError as error:
                    if error.code != "DBClusterAlreadyExistsFault":
                        raise
                    existing = self.rds.describe_cluster(cluster_id)  # lost a race: judge the winner
            if existing is not None and not self._made_by(request, existing):
                return Failed(
                    f"ClusterId '{cluster_id}' already exists and was not created by this resource; "
                    "choose another ClusterId or remove it to get a generated one.",
                    failed_id,
                )
        except (RdsError, ValueError) as error:
            return Failed(str(error), failed_id)
        logger.info("Clone requested", extra={"cluster": cluster_id, "source": source.identifier})
        return self.poll(job, request)

    @staticmethod
    def _made_by(request: Request, cluster: ClusterView) -> bool:
        return request.owner.owns(cluster.tags) and cluster.tags.get(REQUEST_TAG) == request.token

    def _restore(self, desired: DesiredClone, properties: CloneProperties, tags: dict[str, str]) -> None:
        self.rds.restore_clone(
            cluster_id=desired.cluster_id,
            source=properties.source_cluster_id,
            tags=tags,
            subnet_group=properties.db_subnet_group_name,
            security_groups=desired.vpc_security_group_ids,
            cluster_parameter_group=desired.cluster_parameter_group,
            port=desired.port,
        )

    # -- Update ---------------------------------------------------------------------------------------

    def update(self, request: Request) -> Outcome:
        current_id = request.physical_id or ""
        try:
            new = parse_properties(request.properties)
        except PropertiesError as error:
            return Failed(str(error), current_id)
        try:
            old: CloneProperties | None = parse_properties(request.old_properties or {})
        except PropertiesError:
            old = None  # unreadable old properties (a rollback of a refused update): judge by the clone itself
        replacement_id = new.cluster_id or derive_cluster_id(request.stack_id, request.logical_id, request.token)
        try:
            current = self.rds.describe_cluster(current_id) if is_valid_identifier(current_id) else None
            if current is None:
                # Deleted outside CloudFormation: make it again rather than leave the stack stuck.
                return self._make_clone(request, new, replacement_id, replacing=current_id)
            if not request.owner.owns(current.tags):
                return Failed(f"DB cluster '{current_id}' was not created by this resource.", current_id)
            decision = classify_update(
                old, new, CurrentClone(current_id, current.tags.get(SOURCE_TAG), current.subnet_group)
            )
            if decision.refusal:
                return Failed(decision.refusal, current_id)
            if decision.replaces:
                return self._make_clone(request, new, replacement_id, replacing=current_id)
            source = self.rds.describe_cluster(new.source_cluster_id)
            desired = resolve_desired(new, current_id, source, current)
            self._retag(current, dict(new.tags))
        except (RdsError, ValueError) as error:
            return Failed(str(error), current_id)
        job = Job(
            "converge",
            current_id,
            deadline=self.clock() + service_timeout(request.properties),
            answer_id=current_id,
            source=current.tags.get(SOURCE_TAG, new.source_identifier),
            desired=desired,
        )
        return self.poll(job, request)

    def _retag(self, cluster: ClusterView, wanted: dict[str, str]) -> None:
        """Bring the user tags of the cluster and of each of its instances to ``wanted``."""
        targets = [(cluster.arn, cluster.tags)] + [(i.arn, i.tags) for i in cluster.instances]
        for arn, actual in targets:
            changes = tag_changes(wanted, actual)
            if changes.add:
                self.rds.add_tags(arn, changes.add)
            if changes.remove:
                self.rds.remove_tags(arn, changes.remove)

    # -- Delete ---------------------------------------------------------------------------------------

    def delete(self, request: Request) -> Outcome:
        physical_id = request.physical_id or request.not_created_id
        if not is_valid_identifier(physical_id):
            logger.info("Nothing to delete: the id names no cluster", extra={"physical_id": physical_id})
            return Done(physical_id)
        try:
            cluster = self.rds.describe_cluster(physical_id)
        except RdsError as error:
            return Failed(str(error), physical_id)
        if cluster is None:
            logger.info("Nothing to delete: the cluster is already gone", extra={"cluster": physical_id})
            return Done(physical_id)
        if not request.owner.owns(cluster.tags):
            logger.info("Left alone: not created by this resource", extra={"cluster": physical_id})
            return Done(physical_id)
        job = Job(
            "teardown",
            physical_id,
            deadline=self.clock() + service_timeout(request.properties),
            answer_id=physical_id,
        )
        return self.poll(job, request)

    # -- Poll -----------------------------------------------------------------------------------------

    def poll(self, job: Job, request: Request) -> Outcome:
        """Look at the cluster once, take the next step, and say whether the request is finished."""
        try:
            cluster = self.rds.describe_cluster(job.cluster_id)
            if job.kind == "teardown":
                step = plan_teardown(cluster, request.owner)
            elif job.desired is not None:
                step = plan_convergence(job.desired, cluster)
            else:
                raise ValueError("a converge job without a goal")
            if isinstance(step, Act) and cluster is not None:
                step = self._carry_out(step, cluster)
        except (RdsError, ValueError) as error:
            step = Broken(str(error))
        return self._answer(job, step, cluster if isinstance(step, Ready) else None)

    def _carry_out(self, step: Act, cluster: ClusterView) -> Step:
        for action in step.actions:
            try:
                self._run(action, cluster)
            except RdsError as error:
                if error.look_again:
                    return Wait(f"{step.why}: RDS says not yet ({error})")
                raise
        return Wait(step.why)

    def _run(self, action: Action, cluster: ClusterView) -> None:
        logger.info("RDS action", extra={"action": type(action).__name__, "cluster": cluster.identifier})
        match action:
            case CreateInstance(identifier, instance_class, parameter_group):
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
            case ModifyCluster(port, groups, parameter_group):
                self.rds.modify_cluster(
                    cluster.identifier, port=port, security_groups=groups, parameter_group=parameter_group
                )
            case DeleteCluster(identifier):
                self.rds.delete_cluster(identifier)

    def _answer(self, job: Job, step: Step, cluster: ClusterView | None) -> Outcome:
        match step:
            case Ready() if job.kind == "teardown":
                if job.failure:
                    return Failed(job.failure, job.answer_id)
                return Done(job.answer_id)
            case Ready():
                assert cluster is not None
                return Done(job.answer_id, attributes(cluster, job.source))
            case Broken(why) if job.kind == "converge" and job.replacing is not None:
                return Pending(job.discard(why), f"deleting the failed replacement clone '{job.cluster_id}'")
            case Broken(why):
                if job.failure:
                    why = f"{job.failure} The failed replacement clone '{job.cluster_id}' remains: {why}"
                return Failed(why, job.answer_id)
            case Wait(why) | Act(why=why):
                return Pending(job, why)
        raise AssertionError(f"unhandled step {step}")


def _source_problem(name: str, source: ClusterView) -> str | None:
    """Why ``source`` cannot be cloned now, in the user's words; None when it can."""
    if not source.engine.startswith("aurora"):
        return f"SourceClusterId '{name}' is a {source.engine} cluster; only Aurora clusters can be cloned."
    if source.status != "available":
        return f"SourceClusterId '{name}' is '{source.status}'; it must be 'available' to be cloned."
    if not source.instances:
        return f"SourceClusterId '{name}' has no DB instance; Aurora clones a cluster only when it has one."
    return None


def attributes(cluster: ClusterView, source: str) -> dict[str, str]:
    """The Fn::GetAtt attributes of a ready clone."""
    numbered = sorted(
        (number, instance.identifier)
        for instance in cluster.instances
        if (number := instance_number(cluster.identifier, instance.identifier)) is not None
    )
    return {
        "Endpoint": cluster.endpoint,
        "ReaderEndpoint": cluster.reader_endpoint,
        "Port": str(cluster.port),
        "ClusterId": cluster.identifier,
        "ClusterArn": cluster.arn,
        "ClusterResourceId": cluster.resource_id,
        "Engine": cluster.engine,
        "EngineVersion": cluster.engine_version,
        "SourceClusterId": source,
        "InstanceIds": ",".join(identifier for _, identifier in numbered),
    }
