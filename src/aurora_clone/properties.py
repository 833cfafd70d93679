"""The resource's properties: parsed from CloudFormation's strings into a frozen object, or refused.

CloudFormation sends every scalar as a string ("2", "true"), so values are converted here, once.
Every error names the property it is about, and all errors are reported together.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aurora_clone.naming import is_valid_identifier
from aurora_clone.ownership import TAG_PREFIX
from aurora_clone.pool.select import DEFAULT_MAX_COPY_AGE
from aurora_clone.timespec import parse_duration, parse_timestamp

# Keys CloudFormation itself adds to ResourceProperties.
CLOUDFORMATION_KEYS = frozenset({"ServiceToken", "ServiceTimeout"})

MAX_SERVICE_TIMEOUT_SECONDS = 3600  # CloudFormation's default and maximum for custom resources.
MAX_INSTANCES = 16  # Aurora: one writer and up to 15 readers.
MAX_USER_TAGS = 42  # RDS allows 50 tags per resource; this tool writes up to 8 of its own.

_ARN = re.compile(r"^arn:aws[a-z-]*:rds:[a-z0-9-]+:\d{12}:cluster:(?P<id>[^:]+)$")
_INSTANCE_CLASS = re.compile(r"^db\.(serverless|[a-z0-9-]+\.[a-z0-9]+)$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # int() would also take "1_0" and non-ASCII digits
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")


class PropertiesError(ValueError):
    """The template's properties are invalid; ``problems`` holds one sentence per problem."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("Invalid properties: " + " ".join(problems))


@dataclass(frozen=True)
class CloneProperties:
    """What the template asks for, validated. ``None`` means "not set: use the default"."""

    source_cluster_id: str
    cluster_id: str | None = None
    instance_class: str | None = None
    instance_count: int = 1
    db_subnet_group_name: str | None = None
    vpc_security_group_ids: tuple[str, ...] | None = None
    db_cluster_parameter_group_name: str | None = None
    db_parameter_group_name: str | None = None
    port: int | None = None
    tags: tuple[tuple[str, str], ...] = ()
    copy_ok: bool = False
    max_copy_age: timedelta = DEFAULT_MAX_COPY_AGE
    copy_created_since: datetime | None = None
    purge_obsolete_copies: bool = False
    service_timeout: int = MAX_SERVICE_TIMEOUT_SECONDS

    @property
    def source_identifier(self) -> str:
        """The source's cluster identifier, also when it was given as an ARN."""
        match = _ARN.match(self.source_cluster_id)
        return match.group("id").lower() if match else self.source_cluster_id


def parse_properties(raw: Mapping[str, Any]) -> CloneProperties:
    """Validate ``ResourceProperties`` and convert CloudFormation's strings.

    >>> parse_properties({"ServiceToken": "arn:...", "SourceClusterId": "prod", "InstanceCount": "2"}).instance_count
    2
    """
    problems: list[str] = []
    reader = _Reader(raw, problems)
    unknown = sorted(set(raw) - set(_PARSERS) - CLOUDFORMATION_KEYS)
    for name in unknown:
        problems.append(f"Unknown property '{name}' (properties are case-sensitive).")
    values = {field: parse(reader, name) for name, (field, parse) in _PARSERS.items()}
    values["service_timeout"] = reader.integer(
        "ServiceTimeout", 1, MAX_SERVICE_TIMEOUT_SECONDS, default=MAX_SERVICE_TIMEOUT_SECONDS
    )
    if problems:
        raise PropertiesError(problems)
    return CloneProperties(**values)


class _Reader:
    """Reads one property at a time, appending a sentence to ``problems`` for each bad value."""

    def __init__(self, raw: Mapping[str, Any], problems: list[str]) -> None:
        self.raw = raw
        self.problems = problems

    def _scalar(self, name: str) -> str | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        if isinstance(value, bool | int | float):
            return str(value).lower() if isinstance(value, bool) else str(value)
        if not isinstance(value, str):
            self.problems.append(f"{name} must be a single value, not {type(value).__name__}.")
            return None
        return value.strip()

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> Any:
        text = self._scalar(name)
        if text is None:
            return default
        if not _WHOLE_NUMBER.fullmatch(text):
            self.problems.append(f"{name} must be a whole number, got '{text}'.")
            return default
        number = int(text)
        if not low <= number <= high:
            self.problems.append(f"{name} must be between {low} and {high}, got {number}.")
            return default
        return number

    def boolean(self, name: str) -> bool:
        text = self._scalar(name)
        if text is None:
            return False
        if text.lower() not in ("true", "false"):
            self.problems.append(f"{name} must be true or false, got '{text}'.")
            return False
        return text.lower() == "true"

    def duration(self, name: str) -> timedelta:
        text = self._scalar(name)
        if text is None:
            return DEFAULT_MAX_COPY_AGE
        try:
            return parse_duration(text)
        except ValueError as error:
            self.problems.append(f"{name} {error}")
            return DEFAULT_MAX_COPY_AGE

    def timestamp(self, name: str) -> datetime | None:
        text = self._scalar(name)
        if text is None:
            return None
        try:
            return parse_timestamp(text)
        except ValueError as error:
            self.problems.append(f"{name} {error}")
            return None

    def source(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is None:
            self.problems.append(f"{name} is required: the identifier or ARN of the Aurora cluster to clone.")
            return None
        match = _ARN.match(text)
        identifier = match.group("id") if match else text
        if not is_valid_identifier(identifier):
            self.problems.append(
                f"{name} '{text}' is neither a DB cluster identifier nor a DB cluster ARN "
                "(identifiers are 1-63 letters, digits and hyphens, starting with a letter)."
            )
            return None
        return text if match else text.lower()

    def identifier(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is None:
            return None
        if not is_valid_identifier(text):
            self.problems.append(
                f"{name} '{text}' is not a valid RDS identifier: 1-63 letters, digits and hyphens, "
                "starting with a letter, without two consecutive hyphens or a trailing hyphen."
            )
            return None
        return text.lower()

    def instance_class(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _INSTANCE_CLASS.match(text):
            self.problems.append(f"{name} '{text}' is not a DB instance class such as db.r6g.large.")
            return None
        return text

    def resource_name(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _RESOURCE_NAME.match(text):
            self.problems.append(
                f"{name} '{text}' is not a valid name: up to 255 letters, digits, periods, underscores, "
                "spaces or hyphens."
            )
            return None
        return text

    def security_groups(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if value is None or value == "":
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
            self.problems.append(f"{name} must be a list of security group ids.")
            return None
        groups = tuple(item.strip() for item in items if item.strip())
        if not groups:
            return None  # an empty list (an empty CommaDelimitedList parameter) means "not set"
        bad = [group for group in groups if not _SECURITY_GROUP.match(group)]
        if bad:
            self.problems.append(f"{name} has values that are not security group ids: {', '.join(bad)}.")
            return None
        return groups

    def tags(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.raw.get(name)
        if value is None or value == "":
            return ()
        if not isinstance(value, list):
            self.problems.append(f"{name} must be a list of {{Key, Value}} objects.")
            return ()
        pairs: dict[str, str] = {}
        for position, tag in enumerate(value, start=1):
            if not isinstance(tag, dict) or set(tag) - {"Key", "Value"} or "Key" not in tag:
                self.problems.append(f"{name} entry {position} must be an object with Key and Value.")
                continue
            key, text = str(tag["Key"]), str(tag.get("Value", ""))
            if not 1 <= len(key) <= 128 or len(text) > 256:
                self.problems.append(f"{name} entry {position}: keys are 1-128 and values 0-256 characters.")
            elif key.lower().startswith(("aws:", TAG_PREFIX)):
                self.problems.append(f"{name} key '{key}' is reserved (aws: and {TAG_PREFIX} prefixes).")
            elif key in pairs:
                self.problems.append(f"{name} key '{key}' appears more than once.")
            else:
                pairs[key] = text
        if len(pairs) > MAX_USER_TAGS:
            self.problems.append(f"{name} has {len(pairs)} tags; at most {MAX_USER_TAGS} are allowed.")
        return tuple(pairs.items())


def _flag(reader: _Reader, name: str) -> bool:
    return reader.boolean(name)


def _port(reader: _Reader, name: str) -> int | None:
    port: int | None = reader.integer(name, 1150, 65535)
    return port


def _count(reader: _Reader, name: str) -> int:
    count: int = reader.integer(name, 1, MAX_INSTANCES, default=1)
    return count


# Property name -> (field of CloneProperties, parser). The order is the order problems are reported in.
_PARSERS: dict[str, tuple[str, Any]] = {
    "SourceClusterId": ("source_cluster_id", _Reader.source),
    "ClusterId": ("cluster_id", _Reader.identifier),
    "InstanceClass": ("instance_class", _Reader.instance_class),
    "InstanceCount": ("instance_count", _count),
    "DBSubnetGroupName": ("db_subnet_group_name", _Reader.resource_name),
    "VpcSecurityGroupIds": ("vpc_security_group_ids", _Reader.security_groups),
    "DBClusterParameterGroupName": ("db_cluster_parameter_group_name", _Reader.resource_name),
    "DBParameterGroupName": ("db_parameter_group_name", _Reader.resource_name),
    "Port": ("port", _port),
    "Tags": ("tags", _Reader.tags),
    "CopyOk": ("copy_ok", _flag),
    "MaxCopyAge": ("max_copy_age", _Reader.duration),
    "CopyCreatedSince": ("copy_created_since", _Reader.timestamp),
    "PurgeObsoleteCopies": ("purge_obsolete_copies", _flag),
}
