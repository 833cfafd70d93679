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
MAX_BACKTRACK_WINDOW_SECONDS = 259_200  # 72 hours: RDS's limit for BacktrackWindow.
SERVERLESS_CLASS = "db.serverless"
MAX_ACU = 256.0  # Aurora Serverless v2's largest capacity on recent versions (ServerlessV2ScalingConfiguration)
MIN_MAX_ACU = 1.0  # the smallest MaxCapacity Aurora accepts

_ARN = re.compile(r"^arn:aws[a-z-]*:rds:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):cluster:(?P<id>[^:]+)$")
_INSTANCE_CLASS = re.compile(r"^db\.(serverless|[a-z0-9-]+\.[a-z0-9]+)$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # int() would also take "1_0" and non-ASCII digits
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_CAPACITY = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# A KMS key as RDS takes it: key id, multi-Region key id, alias name, key ARN or alias ARN.
_KMS_KEY = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|mrk-[0-9a-f]{32}"
    r"|alias/[A-Za-z0-9/_-]{1,250}"
    r"|arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250}))$"
)


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
    backtrack_window: int | None = None
    backtrack_to: datetime | None = None
    manage_master_user_password: bool = False
    master_user_secret_kms_key_id: str | None = None
    enable_iam_database_authentication: bool = False
    serverless_v2_min_capacity: float | None = None
    serverless_v2_max_capacity: float | None = None
    kms_key_id: str | None = None
    snapshot_on_delete: bool = False
    deletion_protection: bool = False
    service_timeout: int = MAX_SERVICE_TIMEOUT_SECONDS

    @property
    def source_identifier(self) -> str:
        """The source's cluster identifier, also when it was given as an ARN."""
        match = _ARN.match(self.source_cluster_id)
        return match.group("id").lower() if match else self.source_cluster_id

    @property
    def source_arn(self) -> SourceArn | None:
        """The parts of ``SourceClusterId`` when it is an ARN; None for a plain identifier."""
        match = _ARN.match(self.source_cluster_id)
        if match is None:
            return None
        return SourceArn(match.group("region"), match.group("account"), match.group("id").lower())

    @property
    def source_key(self) -> str:
        """What tells sources apart across accounts: the identifier, or the ARN (its identifier lower-case).

        >>> CloneProperties("arn:aws:rds:us-east-1:210987654321:cluster:Prod-DB").source_key
        'arn:aws:rds:us-east-1:210987654321:cluster:prod-db'
        """
        arn = self.source_arn
        if arn is None:
            return self.source_cluster_id
        return self.source_cluster_id[: -len(arn.identifier)] + arn.identifier

    @property
    def serverless_v2_capacity(self) -> tuple[float, float] | None:
        """``(ServerlessV2MinCapacity, ServerlessV2MaxCapacity)`` when both are set."""
        low, high = self.serverless_v2_min_capacity, self.serverless_v2_max_capacity
        return None if low is None or high is None else (low, high)


@dataclass(frozen=True)
class SourceArn:
    """A source given as ``arn:aws:rds:<region>:<account>:cluster:<identifier>``."""

    region: str
    account: str
    identifier: str


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
    properties = CloneProperties(**values)
    problems.extend(_combination_problems(properties))
    if problems:
        raise PropertiesError(problems)
    return properties


def _combination_problems(properties: CloneProperties) -> list[str]:
    """Properties that are each valid but do not go together."""
    problems = []
    if properties.backtrack_to is not None and not properties.backtrack_window:
        problems.append(
            "BacktrackTo needs BacktrackWindow: backtracking must be turned on when the clone is created "
            f"(BacktrackWindow, in seconds, 1-{MAX_BACKTRACK_WINDOW_SECONDS})."
        )
    if properties.master_user_secret_kms_key_id is not None and not properties.manage_master_user_password:
        problems.append(
            "MasterUserSecretKmsKeyId is the key of the secret made by ManageMasterUserPassword; "
            "set ManageMasterUserPassword to true, or remove MasterUserSecretKmsKeyId."
        )
    low, high = properties.serverless_v2_min_capacity, properties.serverless_v2_max_capacity
    if (low is None) != (high is None):
        given, missing = (
            ("ServerlessV2MinCapacity", "ServerlessV2MaxCapacity")
            if high is None
            else ("ServerlessV2MaxCapacity", "ServerlessV2MinCapacity")
        )
        problems.append(f"{given} needs {missing} too: Aurora Serverless v2 takes both capacities together.")
    elif low is not None and high is not None and low > high:
        problems.append(f"ServerlessV2MinCapacity ({low:g}) must not be more than ServerlessV2MaxCapacity ({high:g}).")
    return problems


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

    def capacity(self, name: str, low: float, zero_ok: bool) -> float | None:
        """Aurora capacity units from ``low`` to 256 in halves (and 0 when ``zero_ok``)."""
        text = self._scalar(name)
        if text is None:
            return None
        if not _CAPACITY.fullmatch(text):
            self.problems.append(f"{name} must be a number of Aurora capacity units such as 0.5 or 8, got '{text}'.")
            return None
        units = float(text)
        if not (low <= units <= MAX_ACU or (zero_ok and units == 0)):
            span = f"from {low:g} to {MAX_ACU:g} capacity units"
            self.problems.append(f"{name} must be {'0, or ' if zero_ok else ''}{span}, got {text}.")
            return None
        if units * 2 != int(units * 2):
            self.problems.append(f"{name} must be a whole or half number of capacity units (8 or 8.5), got {text}.")
            return None
        return units

    def kms_key(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _KMS_KEY.match(text):
            self.problems.append(
                f"{name} '{text}' is not a KMS key: give a key id, a key ARN, an alias (alias/name) or an alias ARN."
            )
            return None
        return text

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


def _backtrack_window(reader: _Reader, name: str) -> int | None:
    window: int | None = reader.integer(name, 0, MAX_BACKTRACK_WINDOW_SECONDS)
    return window


def _min_capacity(reader: _Reader, name: str) -> float | None:
    return reader.capacity(name, 0.5, zero_ok=True)  # 0 where the engine version supports auto-pause


def _max_capacity(reader: _Reader, name: str) -> float | None:
    return reader.capacity(name, MIN_MAX_ACU, zero_ok=False)


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
    "BacktrackWindow": ("backtrack_window", _backtrack_window),
    "BacktrackTo": ("backtrack_to", _Reader.timestamp),
    "ManageMasterUserPassword": ("manage_master_user_password", _flag),
    "MasterUserSecretKmsKeyId": ("master_user_secret_kms_key_id", _Reader.kms_key),
    "EnableIAMDatabaseAuthentication": ("enable_iam_database_authentication", _flag),
    "ServerlessV2MinCapacity": ("serverless_v2_min_capacity", _min_capacity),
    "ServerlessV2MaxCapacity": ("serverless_v2_max_capacity", _max_capacity),
    "KmsKeyId": ("kms_key_id", _Reader.kms_key),
    "SnapshotOnDelete": ("snapshot_on_delete", _flag),
    "DeletionProtection": ("deletion_protection", _flag),
}
