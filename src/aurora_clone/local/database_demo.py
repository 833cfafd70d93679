"""The demo's look inside the clone: connect from the stack's outputs, as an integration test would, and show
that the clone holds the source's data and then goes its own way; after the delete, that its server is gone;
and that a clone with a prepare script has its customers' emails masked while the source keeps the real ones.

A pure-Python client (pg8000), so the demo needs nothing but Python.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Callable, Mapping
from typing import Any

from aurora_clone.local.database_plan import DEFAULT_DATABASE
from aurora_clone.local.world import LocalAws

CONNECT_SECONDS = 10.0
CLONE_ONLY_ID = 100  # the row the demo writes in the clone
GONE_SECONDS = 10.0  # real seconds a deleted clone's server has to stop (it takes well under one)


def _connect(address: str, port: int, user: str, password: str) -> Any:
    import pg8000.native

    return pg8000.native.Connection(
        user, host=address, port=port, password=password, database=DEFAULT_DATABASE, timeout=CONNECT_SECONDS
    )


def show_clone_is_a_copy(
    world: LocalAws, outputs: Mapping[str, str], source_id: str, user: str, password: str, say: Callable[[str], None]
) -> bool:
    """Read the source's rows in the clone, write a row in the clone and show the source does not have it.
    True when all of that held (or when the source has no real server here, which is said); False otherwise."""
    source = world.databases.server(source_id) if world.databases is not None else None
    if source is None:
        reason = world.databases.describe(source_id, "aurora-postgresql") if world.databases is not None else ""
        say(f"  (skipped: {reason or 'this world runs no real database servers'})")
        return True
    endpoint, port = outputs["Endpoint"], int(outputs["Port"])
    say(f"  connecting to the clone at {endpoint}:{port} as {user}, the source's master user")
    clone = _connect(endpoint, port, user, password)
    original = _connect(source.address, source.port, user, password)
    try:
        rows = clone.run("SELECT id, name FROM customers ORDER BY id")
        say(f"  customers in the clone, copied from the source: {', '.join(name for _id, name in rows)}")
        clone.run(
            "INSERT INTO customers (id, name, email) VALUES (:id, 'Only In The Clone', 'clone@example.com')",
            id=CLONE_ONLY_ID,
        )
        in_clone = clone.run("SELECT count(*) FROM customers WHERE id = :id", id=CLONE_ONLY_ID)[0][0]
        in_source = original.run("SELECT count(*) FROM customers WHERE id = :id", id=CLONE_ONLY_ID)[0][0]
        say(f"  wrote customer {CLONE_ONLY_ID} in the clone: {in_clone} row there, {in_source} in the source")
    finally:
        clone.close()
        original.close()
    copied = len(rows) > 0
    if in_clone == 1 and in_source == 0 and copied:
        say("  the clone is a copy of the source's data, and its writes stay in the clone")
        return True
    return False


def show_masked(world: LocalAws, outputs: Mapping[str, str], source_id: str, say: Callable[[str], None]) -> bool:
    """Read the customers' emails in the clone (logged in with its managed secret, from the outputs) and in the
    source: True when every email of the clone differs from the source's (or when there is no real server)."""
    source = world.databases.server(source_id) if world.databases is not None else None
    if source is None:
        say("  (skipped: this world runs no real database servers)")
        return True
    secret = world.client("secretsmanager").get_secret_value(SecretId=outputs["MasterUserSecretArn"])
    login = json.loads(secret["SecretString"])
    clone = _connect(outputs["Endpoint"], int(outputs["Port"]), login["username"], login["password"])
    original = _connect(source.address, source.port, source.credentials.user, source.credentials.password)
    try:
        masked = [row[0] for row in clone.run("SELECT email FROM customers ORDER BY id")]
        real = [row[0] for row in original.run("SELECT email FROM customers ORDER BY id")]
    finally:
        clone.close()
        original.close()
    say(f"  emails in the clone: {', '.join(masked)}")
    say(f"  emails in the source: {', '.join(real)}")
    return bool(masked) and len(masked) == len(real) and not set(masked) & set(real)


def port_answers(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=CONNECT_SECONDS):
            return True
    except OSError:
        return False


def show_server_gone(world: LocalAws, outputs: Mapping[str, str], source_id: str, say: Callable[[str], None]) -> bool:
    """Whether the deleted clone's server is gone: its endpoint's port no longer answers (said either way)."""
    if world.databases is None or world.databases.server(source_id) is None:
        return True  # no real servers here: nothing to show
    endpoint, port = outputs["Endpoint"], int(outputs["Port"])
    gone = world.wait_until(lambda: not port_answers(endpoint, port), world_seconds=GONE_SECONDS / world.time_scale)
    say(f"  the clone's server at {endpoint}:{port} {'no longer answers' if gone else 'STILL ANSWERS'}")
    return gone
