"""Plain data: what RDS reports about a clone, and what the resource wants it to be."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aurora_clone.ownership import TAG_PREFIX

# Written on a clone once RDS accepted a backtrack: the BacktrackTo it was rewound to (see backtrack_mark).
# A poll that finds it equal to the goal knows the backtrack was asked for, and does not ask again.
BACKTRACKED_TO_TAG = f"{TAG_PREFIX}backtracked-to"


def backtrack_mark(moment: datetime) -> str:
    """``moment`` in UTC as written in the backtracked-to tag and the BacktrackedTo attribute.

    Whole seconds are written as such; a fraction is kept, so two BacktrackTo values that differ by less
    than a second are still two different rewinds.

    >>> from datetime import timedelta, timezone
    >>> backtrack_mark(datetime(2026, 11, 22, 11, 0, tzinfo=timezone(timedelta(hours=1))))
    '2026-11-22T10:00:00Z'
    >>> backtrack_mark(datetime(2026, 11, 22, 10, 0, 0, 250000, tzinfo=UTC))
    '2026-11-22T10:00:00.250000Z'
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment.isoformat()} has no time zone.")
    utc = moment.astimezone(UTC)
    text = utc.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{utc.microsecond:06d}Z" if utc.microsecond else f"{text}Z"


@dataclass(frozen=True)
class InstanceView:
    """One DB instance as RDS describes it."""

    identifier: str
    status: str
    instance_class: str
    arn: str = ""
    parameter_group: str | None = None
    pending_class: str | None = None
    is_writer: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterView:
    """One DB cluster as RDS describes it, with its instances."""

    identifier: str
    status: str
    engine: str
    engine_version: str = ""
    arn: str = ""
    resource_id: str = ""
    endpoint: str = ""
    reader_endpoint: str = ""
    port: int = 0
    vpc_security_group_ids: tuple[str, ...] = ()
    parameter_group: str | None = None
    subnet_group: str | None = None
    deletion_protection: bool = False
    tags: Mapping[str, str] = field(default_factory=dict)
    instances: tuple[InstanceView, ...] = ()
    created: datetime | None = None  # ClusterCreateTime
    backtrack_window: int = 0  # seconds; 0 when backtracking is off
    earliest_backtrack_time: datetime | None = None  # reported while backtracking is on
    serverless_v2_capacity: tuple[float, float] | None = None  # (MinCapacity, MaxCapacity)
    iam_database_authentication: bool = False
    master_user_secret_arn: str = ""  # the RDS-managed secret's ARN, "" when the password is not managed
    master_user_secret_kms_key_id: str | None = None
    storage_encrypted: bool = False
    kms_key_id: str | None = None
    member_count: int = 0  # DBClusterMembers: the instances RDS counts, also for a cluster of another account

    @property
    def writer(self) -> InstanceView | None:
        return next((instance for instance in self.instances if instance.is_writer), None)

    @property
    def backtracked_to(self) -> str:
        """The BacktrackTo this clone was last rewound to (its mark), "" when never."""
        return self.tags.get(BACKTRACKED_TO_TAG, "")


@dataclass(frozen=True)
class DesiredClone:
    """The clone a request asks for, with every default resolved (see changes.resolve_desired).

    The settings after ``cluster_parameter_group`` are None in a goal that does not care about them (a
    job written before they existed, say): None is "leave as it is".
    """

    cluster_id: str
    instance_class: str
    instance_count: int
    db_parameter_group: str | None = None
    port: int | None = None
    vpc_security_group_ids: tuple[str, ...] | None = None
    cluster_parameter_group: str | None = None
    backtrack_window: int | None = None
    backtrack_to: str | None = None  # a backtrack_mark
    serverless_v2_capacity: tuple[float, float] | None = None
    iam_database_authentication: bool | None = None
    manage_master_user_password: bool | None = None  # True: the clone must have a managed secret
    master_user_secret_kms_key_id: str | None = None
    deletion_protection: bool | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DesiredClone:
        values = dict(data)
        for key in ("vpc_security_group_ids", "serverless_v2_capacity"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)
