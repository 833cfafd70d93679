"""Deterministic names: clone and instance identifiers, request tokens.

RDS identifiers are 1-63 letters, digits and hyphens, first a letter, no two consecutive hyphens and
no trailing hyphen, stored lower-case. Everything derived here obeys that, so a re-delivered request
computes the same names and a different request different ones.
"""

from __future__ import annotations

import hashlib
import re

MAX_IDENTIFIER = 63
# Every cluster and instance the tool makes starts with the prefix (settings.cluster_id_prefix), so IAM can
# scope the roles by ARN: no tag anyone writes widens what they may change or delete.
DEFAULT_CLUSTER_ID_PREFIX = "aurora-clone-"
_PREFIX = re.compile(r"[a-z](?!.*--)[a-z0-9-]{0,18}-")

_IDENTIFIER = re.compile(r"[A-Za-z](?!.*--)[A-Za-z0-9-]{0,62}(?<!-)")
_NOT_ALLOWED = re.compile(r"[^a-z0-9]+")


def is_valid_identifier(text: str) -> bool:
    """True when ``text`` is a valid RDS DB cluster or instance identifier.

    >>> is_valid_identifier("prod-db"), is_valid_identifier("1db"), is_valid_identifier("a--b")
    (True, False, False)
    """
    return bool(_IDENTIFIER.fullmatch(text))


def is_valid_prefix(text: str) -> bool:
    """True for a usable identifier prefix: a letter first, a hyphen last, 2-20 characters.

    >>> is_valid_prefix("aurora-clone-"), is_valid_prefix("ac"), is_valid_prefix("a--")
    (True, False, False)
    """
    return bool(_PREFIX.fullmatch(text))


def has_prefix(identifier: str, prefix: str) -> bool:
    """True when ``identifier`` (any case) is one the tool may make under ``prefix``."""
    return identifier.lower().startswith(prefix) and len(identifier) > len(prefix)


def short_hash(*parts: str, length: int = 8) -> str:
    """A stable hex digest of ``parts`` (not a secret, just a compact fingerprint)."""
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:length]


def request_token(stack_id: str, request_id: str, logical_id: str) -> str:
    """Identifies one CloudFormation request: StackId + RequestId (+ the resource it is for)."""
    return short_hash(stack_id, request_id, logical_id, length=12)


def not_created_id(stack_id: str, request_id: str, logical_id: str) -> str:
    """The PhysicalResourceId of a Create that made nothing: never a valid RDS identifier, so the
    Delete that follows a failed Create cannot reach any cluster."""
    return f"aurora-clone:not-created:{request_token(stack_id, request_id, logical_id)}"


def stack_name(stack_id: str) -> str:
    """``arn:aws:cloudformation:r:a:stack/NAME/guid`` -> NAME (the id itself when it is not an ARN)."""
    parts = stack_id.split("/")
    return parts[1] if len(parts) >= 3 else stack_id


def _slug(text: str) -> str:
    return _NOT_ALLOWED.sub("-", text.lower()).strip("-")


def derive_cluster_id(stack_id: str, logical_id: str, token: str, prefix: str = DEFAULT_CLUSTER_ID_PREFIX) -> str:
    """The default clone identifier: ``<prefix><stack>-<logical>-<token[:8]>``, shortened to fit.

    >>> derive_cluster_id("arn:aws:cloudformation:us-east-1:1:stack/My_Stack/x", "Db", "0123456789ab")
    'aurora-clone-my-stack-db-01234567'
    """
    suffix = token[:8]
    # Leave room for instance suffixes ("-16") so instance ids stay readable.
    room = MAX_IDENTIFIER - 4 - len(suffix) - 1 - len(prefix)
    stem = "-".join(part for part in (_slug(stack_name(stack_id)), _slug(logical_id)) if part)
    stem = stem[:room].rstrip("-")
    return f"{prefix}{stem}-{suffix}" if stem else f"{prefix}{suffix}"


def instance_id(cluster_id: str, number: int) -> str:
    """The identifier of the clone's ``number``-th instance (1 is the writer).

    >>> instance_id("my-clone", 2)
    'my-clone-2'
    """
    suffix = f"-{number}"
    if len(cluster_id) + len(suffix) <= MAX_IDENTIFIER:
        return cluster_id + suffix
    # Truncating alone could make two long cluster ids share instance ids; the hash keeps them apart.
    stem = cluster_id[: MAX_IDENTIFIER - len(suffix) - 7].rstrip("-")
    return f"{stem}-{short_hash(cluster_id, length=6)}{suffix}"


def instance_number(cluster_id: str, identifier: str) -> int | None:
    """The inverse of :func:`instance_id`: the number, or None for an instance not named by this tool."""
    for number in range(1, 100):
        if instance_id(cluster_id, number) == identifier:
            return number
    return None


def final_snapshot_id(cluster_id: str, token: str) -> str:
    """The final snapshot a Delete with SnapshotOnDelete asks RDS for: ``<cluster id>-final-<token[:8]>``.

    Cluster snapshot identifiers are 1-255 letters, digits and hyphens, first a letter, without two
    consecutive hyphens or a trailing one; a valid cluster identifier and a hex token keep it so. The same
    Delete (re-delivered) names the same snapshot; another Delete of the same clone another one.

    >>> final_snapshot_id("my-clone", "0123456789ab")
    'my-clone-final-01234567'
    """
    return f"{cluster_id}-final-{token[:8]}"
