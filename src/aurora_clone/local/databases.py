"""``LocalDatabases``: the local world's clusters with real database servers behind their endpoints.

Installed over ``RdsRules`` (its patches of moto wrap the rules' own), while a world that asks for real servers
runs (``LocalAws(real_databases=True)``):

- a new Aurora PostgreSQL cluster (``CreateDBCluster``, and ``LocalAws.create_source_cluster``) gets an empty
  server whose master user and password are the cluster's;
- a restore (``RestoreDBClusterToPointInTime``: a copy-on-write clone or a full copy) of a cluster with a
  server gets a server holding a copy of the source's data as it was when the restore was asked for: the
  copy is made before the restore is answered, so a write to the source after the answer is never in the
  clone, and neither sees the other's writes from then on. The master user and password are the source's,
  as on RDS; with ``ManageMasterUserPassword``, the password of the clone's secret in Secrets Manager;
- ``ModifyDBCluster`` of the port moves the server (a restart), of the master password or the managed secret
  changes the master user's password;
- a cluster that is gone (its ``deleting`` stage over) has its server stopped and its files removed, within
  ``REAP_SECONDS``; leaving the world stops every server and removes every file.

The cluster's ``Endpoint`` and ``ReaderEndpoint``, and its instances' ``Endpoint.Address``, are the server's
loopback address (the reader endpoint answers from the same server: there are no replicas), and its ``Port``
the server's port. Aurora MySQL clusters get a server only where ``mysqld`` or ``mariadbd`` is on PATH; other
clusters, and every cluster whose server could not be made, stay metadata only (the reason is logged, and
``why_no_server`` says it).

Process work (initializing, copying, starting, stopping) never runs with moto's ``LOCK`` held: the patched
methods only decide and record it, and it is carried out when the request is answered (``settle``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from unittest import mock

from moto.rds.models import DBCluster, DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

from aurora_clone.local import database_plan as plan
from aurora_clone.local.auto_pause import AutoPause
from aurora_clone.local.database_servers import (
    AddressInUseError,
    Credentials,
    DatabaseServers,
    RunningServer,
    ServerError,
    free_port,
)
from aurora_clone.local.moto_lock import LOCK
from aurora_clone.local.rds_lifecycle import cluster_members

LOGGER = logging.getLogger(__name__)

REAP_SECONDS = 0.05  # how soon a gone cluster's server is stopped
ADDRESS_TRIES = 3  # an address taken between choosing it and the server's start (by another world) is retried
FAILED = "failed"
ADDRESS_ATTRIBUTE = "_aurora_local_address"  # on a moto cluster: the address its server listens on

_restoring = threading.local()  # set while a restore makes its cluster, which is not a new empty one


@dataclass
class _Pending:
    """Process work decided under moto's lock, carried out when the request is answered."""

    cluster: Any  # moto's DBCluster
    cluster_id: str
    engine: str
    port: int
    credentials: Credentials
    source_id: str | None = None  # a copy of this cluster's server; None: a new, empty server
    reconfigure: bool = False  # the server exists: move it to ``port`` and give it ``credentials``


class LocalDatabases:
    """Real servers for the world's clusters while entered (see the module doc)."""

    def __init__(
        self,
        servers: DatabaseServers | None = None,
        *,
        clock: Callable[[], float] | None = None,
        to_real: Callable[[float], float] | None = None,
    ) -> None:
        self.servers = servers if servers is not None else DatabaseServers()
        # Auto-pause, when the world gives its clock (world seconds) and time scale: see ``auto_pause``.
        self.pauses: dict[str, AutoPause] = {}
        if clock is not None and to_real is not None:
            world_clock, scale = clock, to_real
            self.servers.gate_for = lambda cluster_id: self.pauses.setdefault(
                cluster_id, AutoPause(lambda: _may_pause(cluster_id), clock=world_clock, to_real=scale)
            )
        self._pending = threading.local()
        self._tokens: dict[str, object] = {}  # cluster id -> the token on the moto cluster its server serves
        self._tokens_lock = threading.Lock()
        self._stack: ExitStack | None = None
        self._stop = threading.Event()
        self._reaper: threading.Thread | None = None

    # -- life -----------------------------------------------------------------------------------------

    def __enter__(self) -> LocalDatabases:
        stack = ExitStack()
        try:
            stack.enter_context(self.servers)
            self._install(stack)
        except BaseException:
            stack.close()
            raise
        self._stack = stack
        self._stop.clear()
        self._reaper = threading.Thread(target=self._reap_forever, name="local-databases-reaper", daemon=True)
        self._reaper.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop.set()
        if self._reaper is not None:
            self._reaper.join()
            self._reaper = None
        stack, self._stack = self._stack, None
        if stack is not None:
            with LOCK:
                stack.close()  # the patches go, then every server and its files

    # -- what a user of the world asks ----------------------------------------------------------------

    def server(self, cluster_id: str) -> RunningServer | None:
        """The cluster's running server, or None (metadata only, or gone)."""
        return self.servers.server(cluster_id)

    def why_no_server(self, engine: str) -> str | None:
        """Why clusters of ``engine`` get no server here; None when they do."""
        return self.servers.why_no_server(engine)

    def describe(self, cluster_id: str, engine: str) -> str:
        """One line: the cluster's server and how to reach it, or why it has none."""
        server = self.server(cluster_id)
        if server is not None:
            return (
                f"{cluster_id}: a real {self.servers.version(server.engine)} server at {server.address}:"
                f"{server.port}, master user {server.credentials.user} (password {server.credentials.password})"
            )
        reason = self.why_no_server(engine) or "its server could not be started (see the log)"
        return f"{cluster_id}: metadata only, no server behind its endpoint: {reason}"

    def load_sql(self, cluster_id: str, sql: str) -> None:
        """Run a SQL script in the cluster's default database as its master user (ServerError if it fails)."""
        self.servers.load_sql(cluster_id, sql)

    def settle(self) -> None:
        """Carry out the process work this thread's requests decided; a failure marks the cluster ``failed``."""
        pending: list[_Pending] = getattr(self._pending, "items", [])
        self._pending.items = []
        for item in pending:
            try:
                self._carry_out(item)
            except Exception as error:  # a server that fails must not fail the RDS answer: the cluster says it
                if isinstance(error, ServerError):
                    LOGGER.error("the server of %s could not be made or changed: %s", item.cluster_id, error)
                else:
                    LOGGER.exception("the server of %s could not be made or changed", item.cluster_id)
                with LOCK:
                    item.cluster.status = FAILED

    # -- the patches ----------------------------------------------------------------------------------

    def _install(self, stack: ExitStack) -> None:
        def wrap(owner: type, name: str, wrapper: Callable[[Any], Any]) -> None:
            stack.enter_context(mock.patch.object(owner, name, wrapper(getattr(owner, name))))

        wrap(RDSBackend, "create_db_cluster", self._create_db_cluster)
        wrap(RDSBackend, "restore_db_cluster_to_point_in_time", self._restore_db_cluster_to_point_in_time)
        wrap(RDSBackend, "modify_db_cluster", self._modify_db_cluster)
        wrap(RDSResponse, "call_action", self._call_action)
        wrap(DBCluster, "endpoint", _local_address_or)
        wrap(DBCluster, "reader_endpoint", _local_address_or)
        wrap(DBInstance, "endpoint", _instance_endpoint)

    def _call_action(self, original: Callable[[RDSResponse], Any]) -> Callable[[RDSResponse], Any]:
        def call_action(response: RDSResponse) -> Any:
            try:
                return original(response)
            finally:
                self.settle()  # before the answer: a restore's copy is of the source as it was when asked

        return call_action

    def _create_db_cluster(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def create_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> Any:
            with LOCK:
                cluster = original(backend, kwargs)
                if not getattr(_restoring, "active", False):
                    self._plan(cluster, source_id=None)
                return cluster

        return create_db_cluster

    def _restore_db_cluster_to_point_in_time(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def restore_db_cluster_to_point_in_time(backend: RDSBackend, *args: Any, **kwargs: Any) -> Any:
            with LOCK:
                _restoring.active = True
                try:
                    cluster = original(backend, *args, **kwargs)
                finally:
                    _restoring.active = False
                source_id = kwargs["source_db_cluster_identifier"] if len(args) < 2 else args[1]
                source = backend.describe_db_clusters(db_cluster_identifier=source_id)[0]
                if self.servers.server(source.db_cluster_identifier) is not None:
                    self._plan(cluster, source_id=source.db_cluster_identifier)
                return cluster

        return restore_db_cluster_to_point_in_time

    def _modify_db_cluster(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def modify_db_cluster(backend: RDSBackend, kwargs: dict[str, Any]) -> Any:
            with LOCK:
                modified = original(backend, kwargs)
                cluster = backend.clusters.get(modified.db_cluster_identifier, modified)
                server = self.servers.server(cluster.db_cluster_identifier)
                if server is not None and self._serves(cluster):
                    credentials = _credentials(cluster)
                    if cluster.port != server.port or credentials != server.credentials:
                        moved = _Pending(cluster, server.cluster_id, server.engine, cluster.port, credentials)
                        moved.reconfigure = True
                        self._queue(moved)
                return modified

        return modify_db_cluster

    # -- deciding (under LOCK) and carrying out (outside it) --------------------------------------------

    def _plan(self, cluster: Any, source_id: str | None) -> None:
        """Record the server ``cluster`` gets, if any, and give it its address now (Describe shows it)."""
        engine = str(cluster.engine)
        cluster_id = str(cluster.db_cluster_identifier)
        reason = self.servers.why_no_server(engine)
        if reason is not None:
            LOGGER.debug("%s stays metadata only: %s", cluster_id, reason)
            return
        token = object()
        cluster.__dict__["_aurora_server_token"] = token
        with self._tokens_lock:
            self._tokens[cluster_id] = token
        self._queue(
            _Pending(cluster, cluster_id, engine, int(cluster.port), _credentials(cluster), source_id=source_id)
        )

    def _queue(self, item: _Pending) -> None:
        if not hasattr(self._pending, "items"):
            self._pending.items = []
        self._pending.items.append(item)

    def _serves(self, cluster: Any) -> bool:
        with self._tokens_lock:
            token = self._tokens.get(cluster.db_cluster_identifier)
        return token is not None and cluster.__dict__.get("_aurora_server_token") is token

    def _carry_out(self, item: _Pending) -> None:
        if item.reconfigure:
            self.servers.reconfigure(item.cluster_id, item.port, item.credentials)
            return
        port = item.port
        for _attempt in range(ADDRESS_TRIES):
            address = self.servers.reserve_address(port)
            if address is None and item.source_id is None:
                # Taken on every loopback address (a server of another program on all addresses): a new
                # cluster can have any port, as RDS gives one; a clone keeps its source's.
                port = free_port(f"127.0.0.{plan.FIRST_ADDRESS}")
                address = self.servers.reserve_address(port)
            if address is None:
                raise ServerError(f"port {port} is taken on every loopback address")
            with LOCK:
                item.cluster.__dict__[ADDRESS_ATTRIBUTE] = address
                item.cluster.port = port
            try:
                if item.source_id is None:
                    self.servers.create(item.cluster_id, item.engine, address, port, item.credentials)
                else:
                    self.servers.clone(item.source_id, item.cluster_id, address, port, item.credentials)
                return
            except AddressInUseError as error:
                LOGGER.info("%s:%s was taken as %s's server started: %s", address, port, item.cluster_id, error)
            finally:
                if self.servers.server(item.cluster_id) is None:
                    self.servers.release_address(address, port)
        raise ServerError(f"no free loopback address for port {port} after {ADDRESS_TRIES} tries")

    # -- clusters that are gone -------------------------------------------------------------------------

    def _reap_forever(self) -> None:
        while not self._stop.wait(REAP_SECONDS):
            try:
                self.reap()
            except Exception:  # keep reaping; the failure is in the log
                LOGGER.exception("reaping the servers of deleted clusters failed")

    def reap(self) -> None:
        """Stop the servers (and remove the files) of clusters moto no longer has."""
        with LOCK:
            alive = {
                cluster.db_cluster_identifier: cluster.__dict__.get("_aurora_server_token") for cluster in _clusters()
            }
        with self._tokens_lock:
            gone = [
                cluster_id
                for cluster_id, token in self._tokens.items()
                if alive.get(cluster_id) is not token or token is None
            ]
            for cluster_id in gone:
                del self._tokens[cluster_id]
        for cluster_id in gone:
            self.servers.stop(cluster_id)


def _may_pause(cluster_id: str) -> bool:
    """Whether Aurora would pause the cluster when idle: ServerlessV2MinCapacity 0 and its writer (every
    instance) Serverless v2."""
    with LOCK:
        for _account, _region, backend in list(rds_backends.iter_backends()):
            cluster = backend.clusters.get(cluster_id)
            if cluster is None:
                continue
            scaling = cluster.__dict__.get("serverless_v2_scaling_configuration") or {}
            instances = cluster_members(backend, cluster)
            return (
                float(scaling.get("MinCapacity", -1)) == 0
                and bool(instances)
                and all(instance.db_instance_class == "db.serverless" for instance in instances)
            )
    return False


def _clusters() -> Iterator[Any]:
    for _account, _region, backend in list(rds_backends.iter_backends()):
        yield from list(backend.clusters.values())


def _credentials(cluster: Any) -> Credentials:
    """The master user and the password that works for it: the managed secret's, when the cluster has one."""
    user = str(cluster.master_username or "")
    secret = cluster.__dict__.get("master_user_secret")
    if cluster.__dict__.get("manage_master_user_password") and secret is not None:
        with contextlib.suppress(ValueError, KeyError, TypeError):
            return Credentials(user, str(json.loads(secret.secret.secret_string)["password"]))
    return Credentials(user, str(cluster.__dict__.get("_master_user_password") or ""))


def _local_address_or(original: property) -> property:
    """A cluster endpoint property answering the server's address for a cluster that has a server."""

    def endpoint(cluster: Any) -> str:
        address = cluster.__dict__.get(ADDRESS_ATTRIBUTE)
        return str(address) if address else str(original.fget(cluster))  # type: ignore[misc]

    return property(endpoint)


def _instance_endpoint(original: property) -> property:
    """An instance's ``Endpoint``: its cluster's server's address and port, when the cluster has a server."""

    def endpoint(instance: Any) -> dict[str, Any]:
        cluster = instance.__dict__.get("cluster")
        address = cluster.__dict__.get(ADDRESS_ATTRIBUTE) if cluster is not None else None
        if address:
            return {"Address": address, "Port": cluster.port}
        return dict(original.fget(instance))  # type: ignore[misc]

    return property(endpoint)
