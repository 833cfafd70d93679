"""The one gateway to RDS: every call the project makes, clusters read into plain views, errors in words.

Its client is built by ``aws_clients`` (adaptive retries: RDS allows 12 requests/s per account and
Region, shared by everything in it, so a throttled call waits and tries again instead of failing the stack).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from aurora_clone import clock as process_clock
from aurora_clone.aws_clients import aws_client
from aurora_clone.aws_errors import error_code, error_message, is_transient
from aurora_clone.clone_state import ClusterView, InstanceView
from aurora_clone.pool.model import ClusterFacts, Snapshot

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

# Error codes -> what they mean for the user. ``{target}`` is the identifier the call was about.
_ERROR_TEXT = {
    "DBClusterNotFoundFault": "DB cluster '{target}' does not exist.",
    "DBClusterAlreadyExistsFault": "A DB cluster named '{target}' already exists.",
    "DBClusterQuotaExceededFault": "The account's DB cluster quota is used up; delete unused clusters or "
    "ask AWS for a higher quota.",
    "InvalidDBClusterStateFault": "DB cluster '{target}' is not in a state that allows this right now.",
    "InsufficientDBClusterCapacityFault": "RDS has no capacity for '{target}' in this Availability Zone "
    "right now; try another instance class or later.",
    "KMSKeyNotAccessibleFault": "The KMS key of '{target}' cannot be used by RDS; check the key policy.",
    "InvalidRestoreFault": "RDS cannot clone into '{target}' from this source (invalid restore).",
    "DBInstanceNotFound": "DB instance '{target}' does not exist.",
    "DBInstanceAlreadyExists": "A DB instance named '{target}' already exists.",
    "InvalidDBInstanceState": "DB instance '{target}' is not in a state that allows this right now.",
    "DBSubnetGroupNotFoundFault": "The DB subnet group does not exist: {message}",
    "DBClusterParameterGroupNotFound": "The DB cluster parameter group does not exist: {message}",
    "DBParameterGroupNotFound": "The DB parameter group does not exist: {message}",
    "InvalidVPCNetworkStateFault": "The clone's network is not valid (subnet group or security groups): {message}",
    "InvalidSubnet": "The clone's subnet group is not valid in this VPC: {message}",
    "StorageQuotaExceeded": "The account's RDS storage quota is used up.",
    "InstanceQuotaExceeded": "The account's DB instance quota is used up.",
    "InsufficientDBInstanceCapacity": "RDS has no capacity for this instance class right now.",
    "DBClusterSnapshotAlreadyExistsFault": "A DB cluster snapshot with the final snapshot's name already exists: "
    "{message}",
    "SnapshotQuotaExceeded": "The account's DB snapshot quota is used up, so no final snapshot of '{target}' can be "
    "taken; delete old snapshots or ask AWS for a higher quota.",
    "AccessDenied": "The function's role may not do this: {message}",
    "AccessDeniedException": "The function's role may not do this: {message}",
}

# Codes that, for a step already under way, mean "look again": RDS is busy with the resource, or
# another invocation of this request got there first (a poll completed from outside, a re-delivery).
LOOK_AGAIN_CODES = frozenset(
    {
        "InvalidDBClusterStateFault",
        "InvalidDBInstanceState",
        "DBInstanceAlreadyExists",
        "DBInstanceNotFound",
        "DBClusterNotFoundFault",
    }
)


class RdsError(Exception):
    """An RDS call failed; ``str()`` is a sentence for the user, ``code`` the AWS error code.

    ``transient``: throttled, a server fault or a timeout that outlasted the client's retries; the request
    is tried again at its next wake-up instead of failing.
    """

    def __init__(self, code: str, text: str, *, transient: bool = False) -> None:
        self.code = code
        self.transient = transient
        super().__init__(text)

    @property
    def look_again(self) -> bool:
        return self.code in LOOK_AGAIN_CODES


def _translate(error: Exception, target: str) -> RdsError:
    if isinstance(error, ClientError):
        code = error_code(error) or "Unknown"
        template = _ERROR_TEXT.get(code, "RDS refused the request for '{target}': {code}: {message}")
        text = template.format(target=target, code=code, message=error_message(error))
        return RdsError(code, text, transient=is_transient(error))
    return RdsError("ConnectionError", f"Could not reach RDS for '{target}': {error}", transient=True)


def _tags(items: list[Any] | None) -> dict[str, str]:
    return {tag["Key"]: tag.get("Value", "") for tag in items or []}


def _aware(moment: Any) -> datetime | None:
    """A datetime from a response, in UTC (botocore gives aware ones; a naive one is taken as UTC)."""
    if not isinstance(moment, datetime):
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class RdsGateway:
    """Every RDS call the project makes. Methods take and return plain values."""

    def __init__(self, client: RDSClient | None = None) -> None:
        self._client = client or aws_client("rds")
        self._orderable_classes: dict[tuple[str, str], frozenset[str]] = {}

    def _call(self, target: str, operation: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client, operation)(**kwargs)
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, target) from error

    def describe_cluster(self, identifier: str, *, shared: bool = False) -> ClusterView | None:
        """The cluster with its instances, or None when RDS does not list it.

        ``shared``: ``identifier`` is the ARN of a cluster shared from another account (AWS RAM). Its
        instances are not visible from this account, so only their number is known (``member_count``).
        """
        extra = {"IncludeShared": True} if shared else {}
        try:
            response = self._call(identifier, "describe_db_clusters", DBClusterIdentifier=identifier, **extra)
        except RdsError as error:
            if error.code == "DBClusterNotFoundFault":
                return None
            raise
        clusters = response.get("DBClusters", [])
        if not clusters:
            return None
        raw = clusters[0]
        members = raw.get("DBClusterMembers", [])
        writers = {m["DBInstanceIdentifier"] for m in members if m.get("IsClusterWriter")}
        # A cluster without members has no instances to describe: one call saved on every look at a clone
        # that is still being restored or whose instances are gone.
        instances = (
            ()
            if shared or not members
            else tuple(self._instance_view(item, writers) for item in self._instances_of(raw["DBClusterIdentifier"]))
        )
        scaling = raw.get("ServerlessV2ScalingConfiguration") or {}
        secret = raw.get("MasterUserSecret") or {}
        return ClusterView(
            identifier=raw["DBClusterIdentifier"],
            status=raw.get("Status", ""),
            engine=raw.get("Engine", ""),
            engine_version=raw.get("EngineVersion", ""),
            arn=raw.get("DBClusterArn", ""),
            resource_id=raw.get("DbClusterResourceId", ""),
            endpoint=raw.get("Endpoint", ""),
            reader_endpoint=raw.get("ReaderEndpoint", ""),
            port=int(raw.get("Port") or 0),
            vpc_security_group_ids=tuple(g["VpcSecurityGroupId"] for g in raw.get("VpcSecurityGroups", [])),
            parameter_group=raw.get("DBClusterParameterGroup"),
            subnet_group=raw.get("DBSubnetGroup"),
            deletion_protection=bool(raw.get("DeletionProtection", False)),
            tags=_tags(raw.get("TagList")),
            instances=instances,
            created=_aware(raw.get("ClusterCreateTime")),
            backtrack_window=int(raw.get("BacktrackWindow") or 0),
            earliest_backtrack_time=_aware(raw.get("EarliestBacktrackTime")),
            serverless_v2_capacity=(
                (float(scaling["MinCapacity"]), float(scaling["MaxCapacity"]))
                if scaling.get("MinCapacity") is not None and scaling.get("MaxCapacity") is not None
                else None
            ),
            iam_database_authentication=bool(raw.get("IAMDatabaseAuthenticationEnabled", False)),
            master_user_secret_arn=secret.get("SecretArn", ""),
            master_user_secret_kms_key_id=secret.get("KmsKeyId") or None,
            storage_encrypted=bool(raw.get("StorageEncrypted", False)),
            kms_key_id=raw.get("KmsKeyId") or None,
            member_count=len(members),
        )

    def _instances_of(self, cluster_id: str) -> list[Any]:
        paginator = self._client.get_paginator("describe_db_instances")
        pages = paginator.paginate(Filters=[{"Name": "db-cluster-id", "Values": [cluster_id]}])
        try:
            return [item for page in pages for item in page.get("DBInstances", [])]
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, cluster_id) from error

    @staticmethod
    def _instance_view(raw: Mapping[str, Any], writers: set[str]) -> InstanceView:
        groups = raw.get("DBParameterGroups") or [{}]
        return InstanceView(
            identifier=raw["DBInstanceIdentifier"],
            status=raw.get("DBInstanceStatus", ""),
            instance_class=raw.get("DBInstanceClass", ""),
            arn=raw.get("DBInstanceArn", ""),
            parameter_group=groups[0].get("DBParameterGroupName"),
            pending_class=raw.get("PendingModifiedValues", {}).get("DBInstanceClass"),
            is_writer=raw["DBInstanceIdentifier"] in writers,
            tags=_tags(raw.get("TagList")),
        )

    def orderable_instance_classes(self, engine: str, version: str) -> frozenset[str]:
        """The DB instance classes RDS offers for ``engine`` at ``version``; empty when it lists none.

        Read once per engine and version for the gateway's life (one warm Lambda environment): what RDS
        offers changes rarely, and a template is checked against it at every Create.
        """
        key = (engine, version)
        if key not in self._orderable_classes:
            paginator = self._client.get_paginator("describe_orderable_db_instance_options")
            pages = paginator.paginate(
                Engine=engine, EngineVersion=version, PaginationConfig={"PageSize": 1000}
            )  # 1000: RDS's largest page, so one call for a version's whole offer
            try:
                options = [item for page in pages for item in page.get("OrderableDBInstanceOptions", [])]
            except (ClientError, BotoCoreError) as error:
                raise _translate(error, f"{engine} {version}") from error
            self._orderable_classes[key] = frozenset(option["DBInstanceClass"] for option in options)
        return self._orderable_classes[key]

    def parameter_group_family(self, name: str, *, cluster: bool) -> str | None:
        """The family of the DB cluster parameter group (``cluster``) or DB parameter group ``name``; None when
        no such group exists."""
        operation, argument, result = (
            ("describe_db_cluster_parameter_groups", "DBClusterParameterGroupName", "DBClusterParameterGroups")
            if cluster
            else ("describe_db_parameter_groups", "DBParameterGroupName", "DBParameterGroups")
        )
        try:
            groups = self._call(name, operation, **{argument: name}).get(result, [])
        except RdsError as error:
            if error.code in ("DBParameterGroupNotFound", "DBClusterParameterGroupNotFound"):
                return None
            raise
        return str(groups[0].get("DBParameterGroupFamily", "")) or None if groups else None

    def list_clusters(self) -> Snapshot:
        """Every cluster in the account and Region, as the clone-slot and pool decisions see them."""
        paginator = self._client.get_paginator("describe_db_clusters")
        try:
            raw_clusters = [item for page in paginator.paginate() for item in page.get("DBClusters", [])]
        except (ClientError, BotoCoreError) as error:
            raise _translate(error, "the account's DB clusters") from error
        return Snapshot(
            tuple(
                ClusterFacts(
                    identifier=raw["DBClusterIdentifier"],
                    status=raw.get("Status", ""),
                    engine=raw.get("Engine", ""),
                    clone_group_id=raw.get("CloneGroupId") or None,
                    created=raw.get("ClusterCreateTime") or process_clock.utcnow(),
                    tags=_tags(raw.get("TagList")),
                    instance_count=len(raw.get("DBClusterMembers", [])),
                )
                for raw in raw_clusters
            )
        )

    def restore_clone(
        self,
        *,
        cluster_id: str,
        source: str,
        tags: Mapping[str, str],
        subnet_group: str | None,
        security_groups: tuple[str, ...] | None,
        cluster_parameter_group: str | None,
        port: int | None,
        full_copy: bool = False,
        kms_key_id: str | None = None,
        backtrack_window: int | None = None,
        serverless_v2_capacity: tuple[float, float] | None = None,
        iam_database_authentication: bool = False,
    ) -> None:
        """A copy-on-write clone of ``source`` (or a full copy), at its latest restorable time.

        REFERENCE (Aurora clones): without ``RestoreType=copy-on-write`` the restore is a full copy, and
        ``RestoreToTime`` cannot be combined with copy-on-write, hence ``UseLatestRestorableTime``.
        ``source`` may be the ARN of a cluster shared from another account. Settings left out get RDS's
        defaults (no backtracking, no IAM database authentication, the source's KMS key).
        """
        optional = {
            "DBSubnetGroupName": subnet_group,
            "VpcSecurityGroupIds": list(security_groups) if security_groups else None,
            "DBClusterParameterGroupName": cluster_parameter_group,
            "Port": port,
            "KmsKeyId": kms_key_id,
            "BacktrackWindow": backtrack_window or None,
            "ServerlessV2ScalingConfiguration": (
                {"MinCapacity": serverless_v2_capacity[0], "MaxCapacity": serverless_v2_capacity[1]}
                if serverless_v2_capacity is not None
                else None
            ),
            "EnableIAMDatabaseAuthentication": True if iam_database_authentication else None,
        }
        self._call(
            cluster_id,
            "restore_db_cluster_to_point_in_time",
            DBClusterIdentifier=cluster_id,
            SourceDBClusterIdentifier=source,
            RestoreType="full-copy" if full_copy else "copy-on-write",
            UseLatestRestorableTime=True,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
            **{key: value for key, value in optional.items() if value is not None},
        )

    def create_instance(
        self,
        *,
        instance_id: str,
        cluster_id: str,
        engine: str,
        instance_class: str,
        parameter_group: str | None,
        tags: Mapping[str, str],
    ) -> None:
        extra = {"DBParameterGroupName": parameter_group} if parameter_group else {}
        self._call(
            instance_id,
            "create_db_instance",
            DBInstanceIdentifier=instance_id,
            DBClusterIdentifier=cluster_id,
            Engine=engine,
            DBInstanceClass=instance_class,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
            **extra,
        )

    def modify_cluster(
        self,
        cluster_id: str,
        *,
        port: int | None,
        security_groups: tuple[str, ...] | None,
        parameter_group: str | None,
        backtrack_window: int | None = None,
        serverless_v2_capacity: tuple[float, float] | None = None,
        iam_database_authentication: bool | None = None,
        manage_master_user_password: bool | None = None,
        master_user_secret_kms_key_id: str | None = None,
        deletion_protection: bool | None = None,
    ) -> None:
        """Change what is given, at once; None leaves a setting as it is.

        ``manage_master_user_password`` is only ever True: RDS then makes the clone's own master password
        in a Secrets Manager secret it manages (encrypted with ``master_user_secret_kms_key_id``, or
        aws/secretsmanager), and deletes that secret with the cluster.
        """
        optional = {
            "Port": port,
            "VpcSecurityGroupIds": list(security_groups) if security_groups is not None else None,
            "DBClusterParameterGroupName": parameter_group,
            "BacktrackWindow": backtrack_window,
            "ServerlessV2ScalingConfiguration": (
                {"MinCapacity": serverless_v2_capacity[0], "MaxCapacity": serverless_v2_capacity[1]}
                if serverless_v2_capacity is not None
                else None
            ),
            "EnableIAMDatabaseAuthentication": iam_database_authentication,
            "ManageMasterUserPassword": manage_master_user_password,
            "MasterUserSecretKmsKeyId": master_user_secret_kms_key_id if manage_master_user_password else None,
            "DeletionProtection": deletion_protection,
        }
        self._call(
            cluster_id,
            "modify_db_cluster",
            DBClusterIdentifier=cluster_id,
            ApplyImmediately=True,
            **{key: value for key, value in optional.items() if value is not None},
        )

    def backtrack_cluster(self, cluster_id: str, to: datetime, *, to_earliest: bool = False) -> None:
        """Rewind the cluster to ``to`` (REFERENCE: Backtrack); it is ``backtracking`` until done.

        ``to_earliest`` lets RDS use the earliest time it can when ``to`` is before it (for a clone, its
        creation).
        """
        self._call(
            cluster_id,
            "backtrack_db_cluster",
            DBClusterIdentifier=cluster_id,
            BacktrackTo=to,
            UseEarliestTimeOnPointInTimeUnavailable=to_earliest,
        )

    def modify_instance(self, instance_id: str, *, instance_class: str | None, parameter_group: str | None) -> None:
        optional = {"DBInstanceClass": instance_class, "DBParameterGroupName": parameter_group}
        self._call(
            instance_id,
            "modify_db_instance",
            DBInstanceIdentifier=instance_id,
            ApplyImmediately=True,
            **{key: value for key, value in optional.items() if value is not None},
        )

    def delete_instance(self, instance_id: str) -> None:
        self._call(instance_id, "delete_db_instance", DBInstanceIdentifier=instance_id, SkipFinalSnapshot=True)

    def delete_cluster(self, cluster_id: str, final_snapshot: str | None = None) -> None:
        """Delete the cluster (its instances must be gone or going); with ``final_snapshot``, RDS first
        takes a manual cluster snapshot of that name, which stays until someone deletes it."""
        if final_snapshot:
            self._call(
                cluster_id,
                "delete_db_cluster",
                DBClusterIdentifier=cluster_id,
                SkipFinalSnapshot=False,
                FinalDBSnapshotIdentifier=final_snapshot,
            )
        else:
            self._call(cluster_id, "delete_db_cluster", DBClusterIdentifier=cluster_id, SkipFinalSnapshot=True)

    def add_tags(self, arn: str, tags: Mapping[str, str]) -> None:
        self._call(
            arn,
            "add_tags_to_resource",
            ResourceName=arn,
            Tags=[{"Key": key, "Value": value} for key, value in tags.items()],
        )

    def remove_tags(self, arn: str, keys: tuple[str, ...]) -> None:
        self._call(arn, "remove_tags_from_resource", ResourceName=arn, TagKeys=list(keys))
