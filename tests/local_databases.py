"""Helpers for tests of the local world's real database servers: a client, the port, the processes."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable, Iterable
from typing import Any

import pg8000.native

from aurora_clone.local.world import LocalAws

CONNECT_SECONDS = 5.0


def connect(address: str, port: int | str, user: str, password: str) -> pg8000.native.Connection:
    """A PostgreSQL connection to the default database, as a user's test makes it from a stack's outputs."""
    return pg8000.native.Connection(
        user, host=address, port=int(port), password=password, database="postgres", timeout=CONNECT_SECONDS
    )


def describe(world: LocalAws, identifier: str) -> dict[str, Any]:
    """The cluster as DescribeDBClusters shows it."""
    clusters: list[dict[str, Any]] = world.client("rds").describe_db_clusters(DBClusterIdentifier=identifier)[
        "DBClusters"
    ]
    return clusters[0]


def port_answers(address: str, port: int | str) -> bool:
    """Whether something accepts TCP connections at ``address``:``port``."""
    try:
        with socket.create_connection((address, int(port)), timeout=CONNECT_SECONDS):
            return True
    except OSError:
        return False


def process_tree(pid: int) -> set[int]:
    """``pid`` and every process below it, as ``ps`` lists them now."""
    listed = subprocess.run(["ps", "-eo", "pid=,ppid="], capture_output=True, text=True, check=True).stdout
    children: dict[int, list[int]] = {}
    for line in listed.splitlines():
        child, parent = (int(field) for field in line.split())
        children.setdefault(parent, []).append(child)
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return tree


def running(pids: Iterable[int]) -> set[int]:
    """Those of ``pids`` that ``ps`` still lists as live processes (zombies are not)."""
    listed = subprocess.run(["ps", "-eo", "pid=,stat="], capture_output=True, text=True, check=True).stdout
    live = {int(pid) for pid, stat in (line.split() for line in listed.splitlines()) if not stat.startswith("Z")}
    return live & set(pids) - {os.getpid()}


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> bool:
    """Look at ``condition`` every 10 ms until it holds or ``seconds`` have passed; whether it held."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return condition()
        time.sleep(0.01)
    return True
