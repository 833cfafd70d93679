"""What an Update changes: which property changes replace the clone, and what the clone should become.

A rollback Update is an ordinary Update with old and new properties swapped, so nothing here looks
at the direction of a change: the new properties, with defaults resolved from the source, are the
goal, and the current clone is moved to it.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from aurora_clone.clone_state import ClusterView, DesiredClone, backtrack_mark
from aurora_clone.ownership import is_ownership_tag
from aurora_clone.properties import SERVERLESS_CLASS, CloneProperties
from aurora_clone.timespec import format_timestamp

BACKTRACK_ENGINE = "aurora-mysql"  # REFERENCE (Backtrack): Aurora MySQL only
DEFAULT_RDS_KEY_ALIAS = "alias/aws/rds"

# Changing one of these makes a new clone (RDS cannot change them on an existing cluster). BacktrackWindow
# replaces only a clone made without backtracking (RDS cannot turn it on later), ManageMasterUserPassword
# only when turned off (RDS would need a new password), MasterUserSecretKmsKeyId only once the secret exists.
REPLACING_PROPERTIES: dict[str, Callable[[CloneProperties], object]] = {
    "SourceClusterId": lambda p: p.source_key,
    "ClusterId": lambda p: p.cluster_id,
    "DBSubnetGroupName": lambda p: p.db_subnet_group_name,
    "KmsKeyId": lambda p: p.kms_key_id,
    "BacktrackWindow": lambda p: p.backtrack_window,
    "ManageMasterUserPassword": lambda p: p.manage_master_user_password,
    "MasterUserSecretKmsKeyId": lambda p: p.master_user_secret_kms_key_id,
}


@dataclass(frozen=True)
class CurrentClone:
    """What the clone being updated actually is, as far as a replacement is concerned (None: not known)."""

    cluster_id: str
    source: str | None  # the SourceClusterId it was made for (its ownership tag)
    subnet_group: str | None
    data_time: datetime | None = None  # when its data was taken (its data-time tag)
    account: str | None = None  # the account it lives in (from its ARN)
    kms_key_id: str | None = None
    backtrack_window: int | None = None
    managed_secret: bool | None = None  # whether RDS manages its master password
    secret_kms_key_id: str | None = None
    deletion_protection: bool = False

    @classmethod
    def of(cls, cluster: ClusterView, source: str | None, data_time: datetime | None) -> CurrentClone:
        """The facts a replacement decision needs, from what RDS reports."""
        return cls(
            cluster_id=cluster.identifier,
            source=source,
            subnet_group=cluster.subnet_group,
            data_time=data_time,
            account=arn_account(cluster.arn),
            kms_key_id=cluster.kms_key_id if cluster.storage_encrypted else None,
            backtrack_window=cluster.backtrack_window,
            managed_secret=bool(cluster.master_user_secret_arn),
            secret_kms_key_id=cluster.master_user_secret_kms_key_id,
            deletion_protection=cluster.deletion_protection,
        )


@dataclass(frozen=True)
class UpdateDecision:
    """``replace_because`` lists the replacing properties that changed; empty means in place."""

    replace_because: tuple[str, ...]
    refusal: str | None = None

    @property
    def replaces(self) -> bool:
        return bool(self.replace_because)


def arn_account(arn: str) -> str | None:
    """The account of an ARN (``arn:partition:service:region:account:...``), None when there is none."""
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[0] == "arn" and parts[4] else None


def same_kms_key(given: str, actual: str) -> bool | None:
    """Whether the key ``given`` in a template is ``actual`` (a key ARN, as RDS reports it); None when an
    alias is given, which only KMS could resolve.

    >>> same_kms_key("1234abcd-12ab-34cd-56ef-1234567890ab",
    ...     "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab")
    True
    """
    if "alias/" in given:
        return True if given == actual else None
    return given.split("/")[-1].lower() == actual.split("/")[-1].lower()


def _source_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if current.source is None:
        return None
    arn = new.source_arn
    foreign = arn is not None and current.account is not None and arn.account != current.account
    wanted = new.source_key if foreign else new.source_identifier
    return wanted != current.source


def _subnet_group_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if new.db_subnet_group_name is None or current.subnet_group is None:
        return None
    return new.db_subnet_group_name.lower() != current.subnet_group.lower()


def _kms_key_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if new.kms_key_id is None or current.kms_key_id is None:
        return None
    same = same_kms_key(new.kms_key_id, current.kms_key_id)
    return None if same is None else not same


def _backtrack_window_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if current.backtrack_window is None:
        return None
    return bool(new.backtrack_window) and current.backtrack_window == 0  # RDS cannot turn backtracking on later


def _managed_secret_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if current.managed_secret is None:
        return None
    return current.managed_secret and not new.manage_master_user_password  # turning it on is done in place


def _secret_key_differs(new: CloneProperties, current: CurrentClone) -> bool | None:
    if current.managed_secret is False:
        return False  # the key goes with turning the managed secret on, in place
    if new.master_user_secret_kms_key_id is None or current.secret_kms_key_id is None:
        return None
    same = same_kms_key(new.master_user_secret_kms_key_id, current.secret_kms_key_id)
    return None if same is None else not same


_ACTUAL: dict[str, Callable[[CloneProperties, CurrentClone], bool | None]] = {
    "SourceClusterId": _source_differs,
    "ClusterId": lambda new, current: None if new.cluster_id is None else new.cluster_id != current.cluster_id,
    "DBSubnetGroupName": _subnet_group_differs,
    "KmsKeyId": _kms_key_differs,
    "BacktrackWindow": _backtrack_window_differs,
    "ManageMasterUserPassword": _managed_secret_differs,
    "MasterUserSecretKmsKeyId": _secret_key_differs,
}


def _differs_from_actual(name: str, new: CloneProperties, current: CurrentClone) -> bool | None:
    """Whether ``new`` asks for something other than what the clone is; None when that is unknown."""
    return _ACTUAL[name](new, current)


def classify_update(old: CloneProperties | None, new: CloneProperties, current: CurrentClone) -> UpdateDecision:
    """Decide between an in-place change and a replacement.

    A replacing property counts as changed when the template changed it and the clone is not already
    what the new value asks for; ``CopyCreatedSince`` replaces only when it moves past the clone's data
    time. So the rollback of a failed replacement (old and new swapped, the clone
    untouched) changes nothing, and old properties that no longer parse decide nothing. A replacement
    needs a new identifier, so one that would keep an explicit ``ClusterId`` is refused, as CloudFormation
    refuses it for its own custom-named resources; and one of a clone with deletion protection is refused,
    as CloudFormation's cleanup could not delete the old clone.
    """
    changed = []
    for name, value in REPLACING_PROPERTIES.items():
        template_changed = old is None or value(old) != value(new)
        actual = _differs_from_actual(name, new, current)
        if template_changed and (actual if actual is not None else old is not None):
            changed.append(name)
    since, data_time = new.copy_created_since, current.data_time
    if since is not None and data_time is not None and since > data_time:
        changed.append("CopyCreatedSince")  # the clone's data is older than now asked for: fresher data
    if changed and new.cluster_id == current.cluster_id:
        return UpdateDecision(
            tuple(changed),
            refusal=(
                f"Changing {', '.join(changed)} replaces the clone, and the replacement cannot keep "
                f"ClusterId '{new.cluster_id}' while the old clone exists. "
                "Give ClusterId a new value (or remove it), then update the stack again."
            ),
        )
    if changed and current.deletion_protection:
        return UpdateDecision(
            tuple(changed),
            refusal=(
                f"Changing {', '.join(changed)} replaces the clone, and the current clone '{current.cluster_id}' "
                "has deletion protection on, so it could not be deleted afterwards. Update the stack with "
                "DeletionProtection set to false first, then make this change."
            ),
        )
    return UpdateDecision(tuple(changed))


def resolve_desired(
    properties: CloneProperties,
    cluster_id: str,
    source: ClusterView | None,
    current: ClusterView | None = None,
) -> DesiredClone:
    """The clone ``properties`` ask for, with each unset property given its default.

    Defaults come from the source, so a clone behaves like the cluster it copies: the writer's
    instance class and DB parameter group, the cluster's port and cluster parameter group, its
    security groups when the clone stays in the source's network, and its Serverless v2 capacities.
    When the source is gone (an Update long after the clone was made), unset properties keep the
    clone's current values. An unset BacktrackWindow leaves the clone's window as it is (0 turns
    backtracking off, for good).

    >>> src = ClusterView("prod", "available", "aurora-mysql", port=3306, parameter_group="pg")
    >>> resolve_desired(CloneProperties("prod", instance_class="db.r6g.large"), "c", src).port
    3306
    """
    basis = source if source is not None else current
    writer = basis.writer if basis is not None else None
    same_network = properties.db_subnet_group_name is None
    groups = properties.vpc_security_group_ids
    if groups is None and same_network and basis is not None and basis.vpc_security_group_ids:
        groups = basis.vpc_security_group_ids
    instance_class = properties.instance_class or (writer.instance_class if writer else None)
    if instance_class is None:
        raise ValueError("InstanceClass is not set and the source cluster has no writer instance to copy it from.")
    capacity = properties.serverless_v2_capacity or (basis.serverless_v2_capacity if basis is not None else None)
    if instance_class == SERVERLESS_CLASS and capacity is None:
        raise ValueError(
            f"InstanceClass {SERVERLESS_CLASS} needs ServerlessV2MinCapacity and ServerlessV2MaxCapacity: "
            "the source has no Serverless v2 capacities to take them from."
        )
    return DesiredClone(
        cluster_id=cluster_id,
        instance_class=instance_class,
        instance_count=properties.instance_count,
        db_parameter_group=properties.db_parameter_group_name or (writer.parameter_group if writer else None),
        port=properties.port or (basis.port if basis is not None and basis.port else None),
        vpc_security_group_ids=groups,
        cluster_parameter_group=properties.db_cluster_parameter_group_name
        or (basis.parameter_group if basis is not None else None),
        backtrack_window=properties.backtrack_window,
        backtrack_to=backtrack_mark(properties.backtrack_to) if properties.backtrack_to is not None else None,
        serverless_v2_capacity=capacity,
        iam_database_authentication=properties.enable_iam_database_authentication,
        manage_master_user_password=True if properties.manage_master_user_password else None,
        master_user_secret_kms_key_id=properties.master_user_secret_kms_key_id,
        deletion_protection=properties.deletion_protection,
    )


# -- what a request may ask of its source and its clone, checked before anything is made ----------------------------


def source_location_problems(properties: CloneProperties, region: str | None, account: str | None) -> list[str]:
    """What is wrong with where ``SourceClusterId`` is, from its ARN alone (no call needed).

    REFERENCE (Aurora clones): same Region only; a cluster of another account is cloned through AWS RAM
    by its ARN. Its instances are not visible from this account, so the instance class cannot come from
    its writer.

    >>> source_location_problems(CloneProperties("arn:aws:rds:eu-west-1:123456789012:cluster:prod"),
    ...     "us-east-1", "123456789012")[0][:60]
    "SourceClusterId 'arn:aws:rds:eu-west-1:123456789012:cluster:"
    """
    arn = properties.source_arn
    if arn is None:
        return []
    problems = []
    if region and arn.region != region:
        problems.append(
            f"SourceClusterId '{properties.source_cluster_id}' is in Region {arn.region}, and this function runs "
            f"in {region}: Aurora clones only within one Region. Use a function deployed in {arn.region}."
        )
    if account and arn.account != account and properties.instance_class is None:
        problems.append(
            "InstanceClass is required when SourceClusterId is a cluster of another account: its instances "
            "are not visible from this one, so their class cannot be copied."
        )
    return problems


def is_shared_source(properties: CloneProperties, account: str | None) -> bool:
    """True when ``SourceClusterId`` is the ARN of a cluster in another account (shared through AWS RAM)."""
    arn = properties.source_arn
    return arn is not None and account is not None and arn.account != account


def shared_source_problems(properties: CloneProperties, source: ClusterView) -> list[str]:
    """What keeps a cluster shared from another account from being cloned here, as far as it shows.

    REFERENCE (Aurora clones): a cross-account clone is not possible with the default RDS KMS key. RDS
    reports the key by its ARN, which names the alias only when it was given so; a key ARN that is the
    default key is refused by RDS itself when restoring (the error is explained then).
    """
    key = source.kms_key_id or ""
    if source.storage_encrypted and (key == DEFAULT_RDS_KEY_ALIAS or key.endswith(":" + DEFAULT_RDS_KEY_ALIAS)):
        return [
            f"SourceClusterId '{properties.source_cluster_id}' is encrypted with its account's default RDS key "
            "(aws/rds), which cannot be shared, so RDS cannot clone it into another account. Its owner must "
            "encrypt it with a customer managed key and share that key with this account."
        ]
    return []


def creation_problems(properties: CloneProperties, source: ClusterView, now: datetime, deadline: datetime) -> list[str]:
    """What a new clone of ``source`` cannot be, in the user's words; empty when it can be made.

    REFERENCE (Backtrack): Aurora MySQL only, turned on when the clone is created, and a clone cannot go
    back before it was created. So at creation BacktrackTo must be ``now`` or later (the clone goes back
    to it once ready and once it has passed), and no later than the request's deadline.
    """
    problems = []
    name = properties.source_cluster_id
    wants_backtrack = bool(properties.backtrack_window) or properties.backtrack_to is not None
    if wants_backtrack and source.engine != BACKTRACK_ENGINE:
        problems.append(
            f"BacktrackWindow and BacktrackTo work only for Aurora MySQL, and SourceClusterId '{name}' is "
            f"{source.engine}; remove them."
        )
    target = properties.backtrack_to
    if target is not None and target < now:
        problems.append(
            f"BacktrackTo {backtrack_mark(target)} is before this clone exists (it is being made now, "
            f"{format_timestamp(now)}), and a clone, a replacing one too, can only go back to its own creation or "
            "later. Make the clone without BacktrackTo, then set BacktrackTo in an update to rewind it to a time "
            "after its creation."
        )
    elif target is not None and target > deadline:
        problems.append(
            f"BacktrackTo {backtrack_mark(target)} is after {format_timestamp(deadline)}, when this request "
            "must be answered (ServiceTimeout); RDS cannot go back to a time that has not come."
        )
    if properties.kms_key_id is not None and not source.storage_encrypted:
        problems.append(
            f"KmsKeyId is set, but SourceClusterId '{name}' is not encrypted, and RDS cannot encrypt a clone "
            "of an unencrypted cluster; remove KmsKeyId."
        )
    return problems


def backtrack_update_problem(properties: CloneProperties, cluster: ClusterView, now: datetime) -> str | None:
    """Why the clone cannot go back to the new BacktrackTo; None when it can, or when no backtrack is due.

    A BacktrackTo the clone was already rewound to asks for nothing, however old it has become.
    """
    target = properties.backtrack_to
    if target is None or backtrack_mark(target) == cluster.backtracked_to:
        return None
    mark = backtrack_mark(target)
    if cluster.engine != BACKTRACK_ENGINE:
        return (
            f"BacktrackTo {mark}: backtracking works only for Aurora MySQL, and DB cluster '{cluster.identifier}' "
            f"is {cluster.engine}."
        )
    if cluster.backtrack_window <= 0:
        return (
            f"DB cluster '{cluster.identifier}' was made without backtracking, so it cannot go back to "
            f"BacktrackTo {mark}; RDS turns backtracking on only when a clone is made."
        )
    if target > now:
        return f"BacktrackTo {mark} is in the future ({format_timestamp(now)} now); a backtrack can only go back."
    earliest = cluster.earliest_backtrack_time
    if earliest is not None and target < earliest:
        return (
            f"BacktrackTo {mark} is before {backtrack_mark(earliest)}, the earliest time DB cluster "
            f"'{cluster.identifier}' can go back to (its creation, or BacktrackWindow ago, whichever is later)."
        )
    return None


@dataclass(frozen=True)
class TagChanges:
    add: dict[str, str]
    remove: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def tag_changes(wanted: Mapping[str, str], actual: Mapping[str, str], previous: Mapping[str, str]) -> TagChanges:
    """The tag edits that bring what the template sets (``wanted``) onto ``actual``: a tag the ``previous``
    template set and this one does not is removed; a tag set by hand (``aurora-clone-retain`` among them) and
    this tool's own are never touched.

    >>> actual = {"team": "dev", "old": "x", "mine": "y", "aurora-clone:managed-by": "a"}
    >>> tag_changes({"team": "qa"}, actual, {"old": "x"})
    TagChanges(add={'team': 'qa'}, remove=('old',))
    """
    add = {key: value for key, value in wanted.items() if actual.get(key) != value}
    remove = tuple(sorted(key for key in actual if key in previous and key not in wanted and not is_ownership_tag(key)))
    return TagChanges(add, remove)


# -- what RDS offers for the engine version, checked before the restore ----------------------------------------------
# RDS checks an instance class and a DB parameter group only at CreateDBInstance, after the restore made the
# cluster: a mistake there would cost minutes and a rollback. So they are checked against the engine version
# first, from what RDS describes.

CLUSTER_PARAMETER_GROUP = "DBClusterParameterGroupName"
INSTANCE_PARAMETER_GROUP = "DBParameterGroupName"


@dataclass(frozen=True)
class EngineOffer:
    """What RDS says about one cluster's engine version, as far as it was read for the checks.

    ``instance_classes`` (DescribeOrderableDBInstanceOptions) is None when not read, and empty when RDS lists
    nothing for the version (then nothing is judged by it). ``parameter_group_families`` maps a given
    parameter group property to its group's family, or to None when the group does not exist.
    """

    instance_classes: frozenset[str] | None = None
    parameter_group_families: Mapping[str, str | None] = field(default_factory=dict)


def parameter_group_family(engine: str, version: str) -> str | None:
    """The parameter group family of an Aurora engine version (DescribeDBEngineVersions' DBParameterGroupFamily):
    MySQL's major.minor, PostgreSQL's major from 10 on; None for an engine this does not know.

    >>> parameter_group_family("aurora-mysql", "8.0.mysql_aurora.3.05.2")
    'aurora-mysql8.0'
    >>> [parameter_group_family("aurora-postgresql", version) for version in ("15.4", "9.6.22")]
    ['aurora-postgresql15', 'aurora-postgresql9.6']
    """
    parts = version.split(".")
    if len(parts) < 2 or not (parts[0].isdigit() and parts[1].isdigit()):
        return None
    if engine in ("aurora-mysql", "aurora"):
        return f"{engine}{parts[0]}.{parts[1]}"
    if engine == "aurora-postgresql":
        return f"{engine}{parts[0]}" if int(parts[0]) >= 10 else f"{engine}{parts[0]}.{parts[1]}"
    return None


def nearest_instance_classes(wanted: str, offered: frozenset[str], count: int = 3) -> list[str]:
    """The offered classes closest to ``wanted``: the same family first, then the same size, then by spelling.

    >>> nearest_instance_classes("db.r6g.huge", frozenset({"db.r6g.large", "db.r6g.xlarge", "db.t3.medium"}), 2)
    ['db.r6g.large', 'db.r6g.xlarge']
    >>> nearest_instance_classes("db.r6g.4xlarge", frozenset({"db.r6g.large", "db.r6g.xlarge", "db.r6g.8xlarge"}), 2)
    ['db.r6g.8xlarge', 'db.r6g.xlarge']
    >>> nearest_instance_classes("db.r9g.large", frozenset({"db.r6g.large", "db.r6g.xlarge", "db.t3.medium"}), 1)
    ['db.r6g.large']
    """
    family, _, size = wanted.rpartition(".")
    wanted_units = _size_units(size)

    def rank(candidate: str) -> tuple[bool, bool, float, float, str]:
        other_family, _, other_size = candidate.rpartition(".")
        units = _size_units(other_size)
        distance = abs(math.log2(units / wanted_units)) if units and wanted_units else math.inf
        similarity = difflib.SequenceMatcher(None, wanted, candidate).ratio()
        return (other_family != family, other_size != size, distance, -similarity, candidate)

    return sorted(offered, key=rank)[:count]


_NAMED_SIZES = {"micro": 0.25, "small": 0.5, "medium": 1.0, "large": 2.0, "xlarge": 4.0}


def _size_units(size: str) -> float | None:
    """How big an instance size is, in large halves (``4xlarge`` is 16); None for a size this does not know."""
    if size in _NAMED_SIZES:
        return _NAMED_SIZES[size]
    count = size.removesuffix("xlarge")
    return 4.0 * int(count) if count != size and count.isdigit() else None


def engine_problems(
    properties: CloneProperties,
    cluster: ClusterView,
    offer: EngineOffer,
    subject: str,
    *,
    default_class: str | None = None,
    invalid: frozenset[str] = frozenset(),
) -> list[str]:
    """What RDS would refuse only after the restore, judged against ``cluster``'s engine version (the source's
    at Create, the clone's at Update); ``subject`` names that cluster for the user. ``default_class`` is the
    class the clone gets when InstanceClass is not given (the source writer's, which RDS may have stopped
    offering for new instances).

    REFERENCE (what moto gets wrong): RDS refuses an instance class the engine version does not offer with
    InvalidParameterCombination at CreateDBInstance. Serverless v2 is the class db.serverless, offered only
    from some versions on, and needs the cluster's capacities. A parameter group must be of the version's family.
    """
    problems = []
    engine, version = cluster.engine, cluster.engine_version
    offered = offer.instance_classes
    wanted = properties.instance_class
    resolved_class = wanted or default_class
    if wanted is None and default_class is not None and offered and default_class not in offered:
        problems.append(
            f"The writer of {subject} runs {default_class}, which RDS no longer offers for new instances of "
            f"{engine} {version}, so the clone cannot copy it: set InstanceClass, such as "
            f"{', '.join(nearest_instance_classes(default_class, offered - {SERVERLESS_CLASS}))}."
        )
    elif wanted is not None and offered and wanted not in offered:
        if wanted == SERVERLESS_CLASS:
            like = cluster.writer.instance_class if cluster.writer is not None else "db.r6g.large"
            nearest = nearest_instance_classes(like, offered)
            problems.append(
                f"InstanceClass {SERVERLESS_CLASS} (Aurora Serverless v2) is not offered for {engine} {version}, the "
                f"engine version of {subject}: Serverless v2 needs a newer engine version. Give a provisioned class "
                f"such as {', '.join(nearest)}."
            )
        else:
            nearest = nearest_instance_classes(wanted, offered - {SERVERLESS_CLASS})
            problems.append(
                f"InstanceClass '{wanted}' is not offered by RDS for {engine} {version}, the engine version of "
                f"{subject} (RDS would refuse the instance only after making the cluster). Nearest offered: "
                f"{', '.join(nearest)}."
            )
    capacity_given_wrong = bool({"ServerlessV2MinCapacity", "ServerlessV2MaxCapacity"} & invalid)
    has_capacity = properties.serverless_v2_capacity is not None or cluster.serverless_v2_capacity is not None
    if resolved_class == SERVERLESS_CLASS and not has_capacity and not capacity_given_wrong:
        problems.append(
            f"InstanceClass {SERVERLESS_CLASS} needs ServerlessV2MinCapacity and ServerlessV2MaxCapacity: "
            f"{subject} has no Serverless v2 capacities to take them from."
        )
    expected = parameter_group_family(engine, version)
    for name, family in offer.parameter_group_families.items():
        group = getattr(properties, _GROUP_FIELDS[name])
        kind = "DB cluster parameter group" if name == CLUSTER_PARAMETER_GROUP else "DB parameter group"
        if family is None:
            problems.append(
                f"{name} '{group}': the {kind} does not exist in this account and Region. Create it (family "
                f"{expected or 'of ' + engine + ' ' + version}), or remove {name} to use the source's."
            )
        elif expected is not None and family != expected:
            problems.append(
                f"{name} '{group}' is a {kind} of family {family}, and {subject} runs {engine} {version}, which takes "
                f"family {expected}. Give a group of family {expected}, or remove {name} to use the source's."
            )
    return problems


_GROUP_FIELDS = {
    CLUSTER_PARAMETER_GROUP: "db_cluster_parameter_group_name",
    INSTANCE_PARAMETER_GROUP: "db_parameter_group_name",
}
