"""Plain data: what RDS reports about a clone, and what the resource wants it to be."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any


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

    @property
    def writer(self) -> InstanceView | None:
        return next((instance for instance in self.instances if instance.is_writer), None)


@dataclass(frozen=True)
class DesiredClone:
    """The clone a request asks for, with every default resolved (see changes.resolve_desired)."""

    cluster_id: str
    instance_class: str
    instance_count: int
    db_parameter_group: str | None = None
    port: int | None = None
    vpc_security_group_ids: tuple[str, ...] | None = None
    cluster_parameter_group: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DesiredClone:
        values = dict(data)
        if values.get("vpc_security_group_ids") is not None:
            values["vpc_security_group_ids"] = tuple(values["vpc_security_group_ids"])
        return cls(**values)
