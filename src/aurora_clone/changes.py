"""What an Update changes: which property changes replace the clone, and what the clone should become.

A rollback Update is an ordinary Update with old and new properties swapped, so nothing here looks
at the direction of a change: the new properties, with defaults resolved from the source, are the
goal, and the current clone is moved to it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from aurora_clone.clone_state import ClusterView, DesiredClone
from aurora_clone.ownership import is_ownership_tag
from aurora_clone.properties import CloneProperties

# Changing one of these makes a new clone (RDS cannot change them on an existing cluster).
REPLACING_PROPERTIES: dict[str, Callable[[CloneProperties], str | None]] = {
    "SourceClusterId": lambda p: p.source_identifier,
    "ClusterId": lambda p: p.cluster_id,
    "DBSubnetGroupName": lambda p: p.db_subnet_group_name,
}


@dataclass(frozen=True)
class CurrentClone:
    """What the clone being updated actually is, as far as a replacement is concerned."""

    cluster_id: str
    source: str | None  # the SourceClusterId it was made for (its ownership tag)
    subnet_group: str | None
    data_time: datetime | None = None  # when its data was taken (its data-time tag)


@dataclass(frozen=True)
class UpdateDecision:
    """``replace_because`` lists the replacing properties that changed; empty means in place."""

    replace_because: tuple[str, ...]
    refusal: str | None = None

    @property
    def replaces(self) -> bool:
        return bool(self.replace_because)


def _differs_from_actual(name: str, new: CloneProperties, current: CurrentClone) -> bool | None:
    """Whether ``new`` asks for something other than what the clone is; None when that is unknown."""
    if name == "SourceClusterId":
        return None if current.source is None else new.source_identifier != current.source
    if name == "ClusterId":
        return None if new.cluster_id is None else new.cluster_id != current.cluster_id
    if new.db_subnet_group_name is None or current.subnet_group is None:
        return None
    return new.db_subnet_group_name.lower() != current.subnet_group.lower()


def classify_update(old: CloneProperties | None, new: CloneProperties, current: CurrentClone) -> UpdateDecision:
    """Decide between an in-place change and a replacement.

    A replacing property counts as changed when the template changed it and the clone is not already
    what the new value asks for; ``CopyCreatedSince`` replaces only when it moves past the clone's data
    time. So the rollback of a failed replacement (old and new swapped, the clone
    untouched) changes nothing, and old properties that no longer parse decide nothing. A replacement
    needs a new identifier, so one that would keep an explicit ``ClusterId`` is refused, as CloudFormation
    refuses it for its own custom-named resources.
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
    return UpdateDecision(tuple(changed))


def resolve_desired(
    properties: CloneProperties,
    cluster_id: str,
    source: ClusterView | None,
    current: ClusterView | None = None,
) -> DesiredClone:
    """The clone ``properties`` ask for, with each unset property given its default.

    Defaults come from the source, so a clone behaves like the cluster it copies: the writer's
    instance class and DB parameter group, the cluster's port and cluster parameter group, and its
    security groups when the clone stays in the source's network. When the source is gone (an Update
    long after the clone was made), unset properties keep the clone's current values.

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
    return DesiredClone(
        cluster_id=cluster_id,
        instance_class=instance_class,
        instance_count=properties.instance_count,
        db_parameter_group=properties.db_parameter_group_name or (writer.parameter_group if writer else None),
        port=properties.port or (basis.port if basis is not None and basis.port else None),
        vpc_security_group_ids=groups,
        cluster_parameter_group=properties.db_cluster_parameter_group_name
        or (basis.parameter_group if basis is not None else None),
    )


@dataclass(frozen=True)
class TagChanges:
    add: dict[str, str]
    remove: tuple[str, ...]

    def __bool__(self) -> bool:
        return bool(self.add or self.remove)


def tag_changes(wanted: Mapping[str, str], actual: Mapping[str, str]) -> TagChanges:
    """The user-tag edits that turn ``actual`` into ``wanted``; this tool's own tags are never touched.

    >>> tag_changes({"team": "qa"}, {"team": "dev", "old": "x", "aurora-clone:managed-by": "aurora-clone"})
    TagChanges(add={'team': 'qa'}, remove=('old',))
    """
    add = {key: value for key, value in wanted.items() if actual.get(key) != value}
    remove = tuple(sorted(key for key in actual if key not in wanted and not is_ownership_tag(key)))
    return TagChanges(add, remove)
