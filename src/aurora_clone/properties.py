"""The resource's properties: parsed from CloudFormation's strings into a frozen object, or refused.

CloudFormation sends every scalar as a string ("2", "true"), so values are converted here, once.
Every error names the property it is about (and the entry, ``Tags[2].Value``), and all errors are
reported together: ``read_properties`` keeps what could be read next to the problems, so the checks that
need the source can still run and be reported in the same answer.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from aurora_clone.naming import is_valid_identifier
from aurora_clone.ownership import TAG_PREFIX
from aurora_clone.pool.select import DEFAULT_MAX_COPY_AGE
from aurora_clone.prepare_script import MAX_KEY_BYTES, ScriptLocation
from aurora_clone.timespec import parse_duration, parse_timestamp

# Keys CloudFormation itself adds to ResourceProperties.
CLOUDFORMATION_KEYS = frozenset({"ServiceToken", "ServiceTimeout"})

MAX_SERVICE_TIMEOUT_SECONDS = 3600  # CloudFormation's default and maximum for custom resources.
MAX_INSTANCES = 16  # Aurora: one writer and up to 15 readers.
RDS_TAGS_PER_RESOURCE = 50  # RDS's limit for tags on one cluster or instance
# The most tags of its own this tool writes on one clone: the five ownership tags, cloned-from, data-time,
# full-copy and backtracked-to (tests/unit/test_property_shapes.py counts them).
OWN_TAGS = 9
MAX_USER_TAGS = RDS_TAGS_PER_RESOURCE - OWN_TAGS
MAX_TAG_KEY_CHARS = 128  # RDS (Tag.Key)
MAX_TAG_VALUE_CHARS = 256  # RDS (Tag.Value)
RESERVED_TAG_PREFIXES = ("aws:", "rds:", TAG_PREFIX)  # AWS's, RDS's (Tag.Key) and this tool's own
# Longer than any valid value of any property (the longest, a KMS alias ARN, is about 300 characters).
MAX_VALUE_CHARS = 512
MAX_SHORT_VALUE_CHARS = 64  # numbers, flags, durations and timestamps are never longer
# Property problems are joined into one Reason, which must leave room in CloudFormation's 4096-byte
# response for the ids it carries (StackId, RequestId, LogicalResourceId, PhysicalResourceId).
REASON_BUDGET_BYTES = 3200
_SHOWN_CHARS = 80  # a value quoted in a problem is cut to this, so many problems still fit the budget
MAX_BACKTRACK_WINDOW_SECONDS = 259_200  # 72 hours: RDS's limit for BacktrackWindow.
SERVERLESS_CLASS = "db.serverless"
MAX_ACU = 256.0  # Aurora Serverless v2's largest capacity on recent versions (ServerlessV2ScalingConfiguration)
MIN_MAX_ACU = 1.0  # the smallest MaxCapacity Aurora accepts

_ARN = re.compile(r"^arn:aws[a-z-]*:rds:(?P<region>[a-z0-9-]+):(?P<account>\d{12}):cluster:(?P<id>[^:]+)$")
_INSTANCE_CLASS = re.compile(r"^db\.(serverless|[a-z0-9-]+\.[a-z0-9]+)$")
_RESOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._ -]{0,254}$")
# RDS tag keys and values: Unicode letters, digits and white space, and _ . : / = + - @ (Tag.Key, Tag.Value).
_TAG_PUNCTUATION = frozenset("_.:/=+-@")
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # int() would also take "1_0" and non-ASCII digits
_SECURITY_GROUP = re.compile(r"^sg-[0-9a-f]{8,17}$")
_WARM_POOL = re.compile(r"^[a-z][a-z0-9-]{0,19}$")  # the name of a warm shape in the pool document
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
    wait_for_deletion: bool = True
    deletion_protection: bool = False
    warm_pool: str | None = None
    prepare_script: ScriptLocation | None = None
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


@dataclass(frozen=True)
class PropertyReading:
    """What could be read of ``ResourceProperties``, and every problem found in them.

    ``properties`` is None only when ``SourceClusterId`` itself is unreadable; otherwise an invalid value
    is left at its default and named in ``invalid``, so checks that involve it can be skipped.
    """

    properties: CloneProperties | None
    problems: tuple[str, ...] = ()
    invalid: frozenset[str] = field(default_factory=frozenset)


def read_properties(raw: Mapping[str, Any]) -> PropertyReading:
    """Validate ``ResourceProperties`` and convert CloudFormation's strings, keeping every problem.

    >>> reading = read_properties({"SourceClusterId": "prod", "InstanceCount": "x", "InstanceClas": "db.t3.medium"})
    >>> reading.properties.source_cluster_id, sorted(reading.invalid), len(reading.problems)
    ('prod', ['InstanceClas', 'InstanceCount'], 2)
    >>> reading.problems[0]
    "Unknown property 'InstanceClas': did you mean 'InstanceClass'?"
    """
    problems: list[str] = []
    reader = _Reader(raw, problems)
    for name in sorted(set(raw) - KNOWN_PROPERTIES, key=str):
        reader.refuse(str(name), _unknown_property(name))
    values = {field_name: parse(reader, name) for name, (field_name, parse) in _PARSERS.items()}
    values["service_timeout"] = reader.integer(
        "ServiceTimeout", 1, MAX_SERVICE_TIMEOUT_SECONDS, default=MAX_SERVICE_TIMEOUT_SECONDS
    )
    if values["source_cluster_id"] is None:
        return PropertyReading(None, tuple(problems), frozenset(reader.invalid))
    properties = CloneProperties(**values)
    problems.extend(_combination_problems(properties, reader.invalid))
    return PropertyReading(properties, tuple(problems), frozenset(reader.invalid))


def parse_properties(raw: Mapping[str, Any]) -> CloneProperties:
    """The properties when every one of them is valid; else ``PropertiesError`` with every problem.

    >>> parse_properties({"ServiceToken": "arn:...", "SourceClusterId": "prod", "InstanceCount": "2"}).instance_count
    2
    """
    reading = read_properties(raw)
    if reading.problems or reading.properties is None:
        raise PropertiesError(list(reading.problems))
    return reading.properties


def refusal_reason(problems: Sequence[str], budget: int = REASON_BUDGET_BYTES) -> str:
    """All ``problems`` in one Reason, numbered, within ``budget`` bytes (UTF-8).

    Should they not all fit, as many whole ones as fit are kept and the rest counted, never cut mid-sentence.

    >>> refusal_reason(["InstanceCount must be a whole number, got 'x'."])
    "InstanceCount must be a whole number, got 'x'."
    >>> refusal_reason(["A is wrong.", "B is wrong."])
    '2 problems, fix them all: (1) A is wrong. (2) B is wrong.'
    """
    if len(problems) == 1:
        return problems[0]
    head = f"{len(problems)} problems, fix them all:"
    kept: list[str] = []
    for number, problem in enumerate(problems, start=1):
        left = len(problems) - number
        tail = f" ... and {left} more, reported once these are fixed." if left else ""
        candidate = " ".join([head, *kept, f"({number}) {problem}"]) + tail
        if len(candidate.encode()) > budget:
            rest = len(problems) - len(kept)
            return " ".join([head, *kept]) + f" ... and {rest} more, reported once these are fixed."
        kept.append(f"({number}) {problem}")
    return " ".join([head, *kept])


def _unknown_property(name: Any) -> str:
    shown = _shown(name)
    lowered = {known.lower(): known for known in KNOWN_PROPERTIES}
    text = str(name)
    guess = lowered.get(text.lower()) or next(iter(difflib.get_close_matches(text, KNOWN_PROPERTIES, n=1)), None)
    if guess is not None:
        return f"Unknown property {shown}: did you mean '{guess}'?"
    return f"Unknown property {shown} (properties are case-sensitive; the README lists them)."


def _combination_problems(properties: CloneProperties, invalid: set[str]) -> list[str]:
    """Properties that are each valid but do not go together (a pair with an invalid member is not judged)."""
    problems = []
    if properties.backtrack_to is not None and not properties.backtrack_window and "BacktrackWindow" not in invalid:
        problems.append(
            "BacktrackTo needs BacktrackWindow: backtracking must be turned on when the clone is created "
            f"(BacktrackWindow, in seconds, 1-{MAX_BACKTRACK_WINDOW_SECONDS})."
        )
    if (
        properties.master_user_secret_kms_key_id is not None
        and not properties.manage_master_user_password
        and "ManageMasterUserPassword" not in invalid
    ):
        problems.append(
            "MasterUserSecretKmsKeyId is the key of the secret made by ManageMasterUserPassword; "
            "set ManageMasterUserPassword to true, or remove MasterUserSecretKmsKeyId."
        )
    if (
        properties.prepare_script is not None
        and not properties.manage_master_user_password
        and "ManageMasterUserPassword" not in invalid
    ):
        problems.append(
            "PrepareScript runs as the clone's master user with the secret RDS manages for it: set "
            "ManageMasterUserPassword to true."
        )
    if properties.warm_pool is not None and properties.cluster_id is not None and "ClusterId" not in invalid:
        problems.append(
            "WarmPool cannot be used with ClusterId: a warm clone already has its name, and renaming a cluster "
            "changes its endpoints and takes minutes. Remove ClusterId to claim a warm clone, or WarmPool to "
            "keep the name."
        )
    low, high = properties.serverless_v2_min_capacity, properties.serverless_v2_max_capacity
    if {"ServerlessV2MinCapacity", "ServerlessV2MaxCapacity"} & invalid:
        return problems
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


def _json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, as a template author knows it."""
    if value is None:
        return "null"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, str):
        return "a string"
    return "true/false" if isinstance(value, bool) else "a number"


def _shown(value: Any) -> str:
    """``value`` quoted for a problem, cut to a readable length (a value may be long, or a secret's neighbour)."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    if len(text) > _SHOWN_CHARS:
        text = text[: _SHOWN_CHARS - 3] + "..."
    return "'" + text.encode("unicode_escape").decode("ascii") + "'"


def _control_character(text: str) -> int | None:
    """Where ``text`` has a control or format character (never valid in any property), or None."""
    return next((i for i, char in enumerate(text) if unicodedata.category(char) in ("Cc", "Cf")), None)


def _tag_text_problem(text: str) -> str | None:
    """Why RDS would refuse ``text`` as a tag key or value; None when it takes it."""
    for char in text:
        if unicodedata.category(char)[0] not in "LZN" and char not in _TAG_PUNCTUATION:
            return (
                f"has {_shown(char)}, which RDS does not take in tags (letters, digits, spaces and "
                "_ . : / = + - @ only)"
            )
    return None


class _Reader:
    """Reads one property at a time, appending a sentence to ``problems`` for each bad value."""

    def __init__(self, raw: Mapping[str, Any], problems: list[str]) -> None:
        self.raw = raw
        self.problems = problems
        self.invalid: set[str] = set()

    def refuse(self, name: str, problem: str) -> None:
        self.problems.append(problem)
        self.invalid.add(name)

    def _text(self, where: str, value: Any, max_chars: int) -> str | None:
        """A scalar as text (numbers and true/false as CloudFormation writes them), or None after a problem."""
        if isinstance(value, bool):
            return str(value).lower()
        if isinstance(value, int | float):
            return str(value)
        if not isinstance(value, str):
            self.problems.append(f"{where} must be a single value (a string), not {_json_type(value)}.")
            return None
        position = _control_character(value)
        if position is not None:
            self.problems.append(
                f"{where} has a control character at position {position + 1} ({_shown(value[position])}); "
                "remove it (a stray tab or line break in the template?)."
            )
            return None
        if len(value) > max_chars:
            self.problems.append(
                f"{where} is {len(value)} characters long, more than any valid value ({max_chars}): {_shown(value)}."
            )
            return None
        return value.strip()

    def _scalar(self, name: str, max_chars: int = MAX_VALUE_CHARS) -> str | None:
        """The property's text; None when it is not set (absent or empty) or after a problem."""
        if name not in self.raw or self.raw[name] == "":
            return None
        found = len(self.problems)
        text = self._text(name, self.raw[name], max_chars)
        if len(self.problems) > found:
            self.invalid.add(name)
        return text

    def integer(self, name: str, low: int, high: int, default: int | None = None) -> Any:
        text = self._scalar(name, MAX_SHORT_VALUE_CHARS)
        if text is None:
            return default
        if not _WHOLE_NUMBER.fullmatch(text):
            self.refuse(name, f"{name} must be a whole number, got {_shown(text)}.")
            return default
        number = int(text)
        if not low <= number <= high:
            self.refuse(name, f"{name} must be between {low} and {high}, got {number}.")
            return default
        return number

    def boolean(self, name: str, default: bool = False) -> bool:
        text = self._scalar(name, MAX_SHORT_VALUE_CHARS)
        if text is None:
            return default
        if text.lower() not in ("true", "false"):
            self.refuse(name, f"{name} must be true or false, got {_shown(text)}.")
            return False
        return text.lower() == "true"

    def duration(self, name: str) -> timedelta:
        text = self._scalar(name, MAX_SHORT_VALUE_CHARS)
        if text is None:
            return DEFAULT_MAX_COPY_AGE
        try:
            return parse_duration(text)
        except ValueError as error:
            self.refuse(name, f"{name} {error}")
            return DEFAULT_MAX_COPY_AGE

    def timestamp(self, name: str) -> datetime | None:
        text = self._scalar(name, MAX_SHORT_VALUE_CHARS)
        if text is None:
            return None
        try:
            return parse_timestamp(text)
        except ValueError as error:
            self.refuse(name, f"{name} {error}")
            return None

    def capacity(self, name: str, low: float, zero_ok: bool) -> float | None:
        """Aurora capacity units from ``low`` to 256 in halves (and 0 when ``zero_ok``)."""
        text = self._scalar(name, MAX_SHORT_VALUE_CHARS)
        if text is None:
            return None
        if not _CAPACITY.fullmatch(text):
            self.refuse(name, f"{name} must be a number of Aurora capacity units such as 0.5 or 8, got {_shown(text)}.")
            return None
        units = float(text)
        if not (low <= units <= MAX_ACU or (zero_ok and units == 0)):
            span = f"from {low:g} to {MAX_ACU:g} capacity units"
            self.refuse(name, f"{name} must be {'0, or ' if zero_ok else ''}{span}, got {text}.")
            return None
        if units * 2 != int(units * 2):
            self.refuse(name, f"{name} must be a whole or half number of capacity units (8 or 8.5), got {text}.")
            return None
        return units

    def kms_key(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _KMS_KEY.match(text):
            self.refuse(
                name,
                f"{name} {_shown(text)} is not a KMS key: give a key id, a key ARN, an alias (alias/name) or an "
                "alias ARN.",
            )
            return None
        return text

    def source(self, name: str) -> str | None:
        if name in self.raw and self.raw[name] is None:
            self.refuse(name, f"{name} must be the identifier or ARN of the Aurora cluster to clone, not null.")
            return None
        text = self._scalar(name)
        if text is None:
            if name not in self.invalid:
                self.refuse(name, f"{name} is required: the identifier or ARN of the Aurora cluster to clone.")
            return None
        match = _ARN.match(text)
        identifier = match.group("id") if match else text
        if not is_valid_identifier(identifier):
            self.refuse(
                name,
                f"{name} {_shown(text)} is neither a DB cluster identifier nor a DB cluster ARN "
                "(identifiers are 1-63 letters, digits and hyphens, starting with a letter).",
            )
            return None
        return text if match else text.lower()

    def identifier(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is None:
            return None
        if not is_valid_identifier(text):
            self.refuse(
                name,
                f"{name} {_shown(text)} is not a valid RDS identifier: 1-63 letters, digits and hyphens, "
                "starting with a letter, without two consecutive hyphens or a trailing hyphen.",
            )
            return None
        return text.lower()

    def instance_class(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _INSTANCE_CLASS.match(text):
            self.refuse(name, f"{name} {_shown(text)} is not a DB instance class such as db.r6g.large.")
            return None
        return text

    def warm_pool(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _WARM_POOL.match(text):
            self.refuse(
                name,
                f"{name} {_shown(text)} is not a warm shape's name: 1-20 lower-case letters, digits and hyphens, "
                "starting with a letter (the name in the pool document's warm list).",
            )
            return None
        return text

    def script_location(self, name: str) -> ScriptLocation | None:
        text = self._scalar(name, MAX_KEY_BYTES + 200)  # the key, the bucket and a version id
        if text is None:
            return None
        try:
            return ScriptLocation.parse(text)
        except ValueError as error:
            self.refuse(name, f"{name} {_shown(text)} {error}.")
            return None

    def resource_name(self, name: str) -> str | None:
        text = self._scalar(name)
        if text is not None and not _RESOURCE_NAME.match(text):
            self.refuse(
                name,
                f"{name} {_shown(text)} is not a valid name: up to 255 letters, digits, periods, underscores, "
                "spaces or hyphens.",
            )
            return None
        return text

    def security_groups(self, name: str) -> tuple[str, ...] | None:
        value = self.raw.get(name)
        if name not in self.raw or value == "":
            return None
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list):
            self.refuse(name, f"{name} must be a list of security group ids, not {_json_type(value)}.")
            return None
        found = len(self.problems)
        texts = [self._text(f"{name}[{index}]", item, MAX_SHORT_VALUE_CHARS) for index, item in enumerate(items)]
        if len(self.problems) > found:
            self.invalid.add(name)
            return None
        groups = tuple(text for text in texts if text)
        if not groups:
            return None  # an empty list (an empty CommaDelimitedList parameter) means "not set"
        bad = [group for group in groups if not _SECURITY_GROUP.match(group)]
        if bad:
            self.refuse(
                name,
                f"{name} has values that are not security group ids (sg-...): {', '.join(map(_shown, bad[:5]))}.",
            )
            return None
        return groups

    def tags(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self.raw.get(name)
        if name not in self.raw or value == "":
            return ()
        if not isinstance(value, list):
            self.refuse(name, f"{name} must be a list of {{Key, Value}} objects, not {_json_type(value)}.")
            return ()
        found = len(self.problems)
        pairs: dict[str, str] = {}
        first_at: dict[str, int] = {}
        for index, tag in enumerate(value):
            entry = self._tag(f"{name}[{index}]", tag)
            if entry is None:
                continue
            key, text = entry
            if key in pairs:
                self.problems.append(
                    f"{name}[{index}].Key {_shown(key)} appears more than once (also {name}[{first_at[key]}])."
                )
                continue
            pairs[key], first_at[key] = text, index
        if len(pairs) > MAX_USER_TAGS:
            self.problems.append(
                f"{name} has {len(pairs)} tags; at most {MAX_USER_TAGS}: RDS allows {RDS_TAGS_PER_RESOURCE} per "
                f"cluster or instance, and this tool writes up to {OWN_TAGS} of its own."
            )
        if len(self.problems) > found:
            self.invalid.add(name)
        return tuple(pairs.items())

    def _tag(self, where: str, tag: Any) -> tuple[str, str] | None:
        """One ``{Key, Value}`` entry, or None after its problems."""
        if not isinstance(tag, Mapping):
            self.problems.append(f"{where} must be an object with Key and Value, not {_json_type(tag)}.")
            return None
        found = len(self.problems)
        for extra in sorted(set(tag) - {"Key", "Value"}, key=str):
            guess = difflib.get_close_matches(str(extra).capitalize(), ["Key", "Value"], n=1)
            hint = f": did you mean '{guess[0]}'?" if guess else " (a tag has Key and Value only)."
            self.problems.append(f"{where} has an unknown field {_shown(extra)}{hint}")
        if "Key" not in tag:
            self.problems.append(f"{where}.Key is required.")
            return None
        key = self._text(f"{where}.Key", tag["Key"], MAX_VALUE_CHARS)
        text = self._text(f"{where}.Value", tag.get("Value", ""), MAX_VALUE_CHARS)
        if key is not None:
            key_problem = _tag_text_problem(key)
            if not 1 <= len(key) <= MAX_TAG_KEY_CHARS:
                self.problems.append(f"{where}.Key must be 1-{MAX_TAG_KEY_CHARS} characters, got {len(key)}.")
            elif key.lower().startswith(RESERVED_TAG_PREFIXES):
                self.problems.append(
                    f"{where}.Key {_shown(key)} is reserved: keys starting with aws: or rds: are AWS's, and "
                    f"{TAG_PREFIX} this tool's own."
                )
            elif key_problem is not None:
                self.problems.append(f"{where}.Key {_shown(key)} {key_problem}.")
        if text is not None:
            value_problem = _tag_text_problem(text)
            if len(text) > MAX_TAG_VALUE_CHARS:
                self.problems.append(
                    f"{where}.Value must be at most {MAX_TAG_VALUE_CHARS} characters, got {len(text)}."
                )
            elif value_problem is not None:
                self.problems.append(f"{where}.Value {_shown(text)} {value_problem}.")
        if len(self.problems) > found or key is None or text is None:
            return None
        return key, text


def _flag(reader: _Reader, name: str) -> bool:
    return reader.boolean(name)


def _flag_on(reader: _Reader, name: str) -> bool:
    """A flag that is true unless set to false."""
    return reader.boolean(name, default=True)


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
    "WaitForDeletion": ("wait_for_deletion", _flag_on),
    "DeletionProtection": ("deletion_protection", _flag),
    "WarmPool": ("warm_pool", _Reader.warm_pool),
    "PrepareScript": ("prepare_script", _Reader.script_location),
}
KNOWN_PROPERTIES = frozenset(_PARSERS) | CLOUDFORMATION_KEYS
