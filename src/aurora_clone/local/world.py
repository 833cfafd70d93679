"""``LocalAws``: moto as a real HTTPS server on a free loopback port, with its gaps closed, in world time.

Every AWS service moto emulates is served on one endpoint (``endpoint_url``) with a self-signed
certificate (``ca_bundle``); ``client_env()`` is the environment a process needs to use it exactly as it
would use AWS (boto3 reads ``AWS_ENDPOINT_URL`` and ``AWS_CA_BUNDLE``; ``SSL_CERT_FILE`` makes the
pre-signed S3 URLs trusted by plain HTTPS clients too). The same certificate is the CA of the real database
servers' endpoints (``issue_certificate``): the world's RDS CA bundle, which the local Lambda runtime gives the
connection check as ``RDS_CA_BUNDLE``.

The rules of ``aurora_clone.local.rds_rules`` are installed with a ``WorldPace``: a ticker thread ends
every RDS stage (``creating``, ``backing-up``, ``modifying``, ``deleting``, ``backtracking``, ...) when its
duration has passed in world time, which runs ``1 / time_scale`` times faster than real time::

    with LocalAws(time_scale=0.001) as world:
        source_arn = world.create_source_cluster("prod")          # available at once
        rds = world.client("rds")
        rds.restore_db_cluster_to_point_in_time(DBClusterIdentifier="clone", SourceDBClusterIdentifier="prod",
                                                RestoreType="copy-on-write", UseLatestRestorableTime=True)
        world.wait_until(lambda: world.transitional().get("clone") is None, world_seconds=900)

Events put on a default bus (the RDS events of every stage change, and ``PutEvents``) reach moto's rules
and every callback given to ``subscribe``; callbacks run one at a time on a thread of their own. RDS events
reach the callbacks as ``event_delivery`` says (``EventDelivery``): at once by default here; late, a few
lost, a few twice, and so sometimes out of order, as on AWS, when asked (``LocalSession`` asks).
``event_counts`` counts the RDS events: ``delivered`` (every copy handed over), ``lost``, ``duplicated``.

moto keeps its state in process-wide backends: leaving the world resets them, so a world never sees a
previous one's resources, and it must not be entered while ``mock_aws`` is in use in the same process.
"""

from __future__ import annotations

import collections
import contextlib
import datetime
import heapq
import ipaddress
import itertools
import logging
import math
import os
import queue
import random
import socket
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from moto.core.base_backend import BackendDict
from moto.core.model_instances import reset_model_data
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.rds.models import rds_backends
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from aurora_clone import clock as process_clock
from aurora_clone.changes import parameter_group_family
from aurora_clone.local.database_plan import MYSQL_ENGINE, MYSQL_SAMPLE_SQL, SAMPLE_SQL
from aurora_clone.local.database_servers import DatabaseServers
from aurora_clone.local.databases import LocalDatabases
from aurora_clone.local.moto_lock import LOCK
from aurora_clone.local.pace import Durations, WorldPace
from aurora_clone.local.rds_rules import RdsRules
from aurora_clone.local.throttling import Throttling

REGION = "us-east-1"
DEFAULT_ACCOUNT_ID = "123456789012"
TICK_SECONDS = 0.005  # real seconds between two looks at the RDS stages
POLL_SECONDS = 0.01  # real seconds between two looks in wait_until
SERVER_POLL_SECONDS = 0.02  # how soon the server notices it is asked to stop
DISPATCHER_NAME = "local-aws-events"
JOIN_SECONDS = 10.0
SOURCE_MASTER_USERNAME = "admin"
SOURCE_MASTER_PASSWORD = "source-password-1"

LOGGER = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost, valid for a day; also the CA of ``issue_certificate``."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    names = [x509.DNSName("localhost"), x509.DNSName("*.localhost")]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        # A CA too (it signs the local clusters' endpoint certificates, issue_certificate): with the key usage
        # and key identifier that strict verification (Python 3.13's default) requires of one.
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "localhost.pem", directory / "localhost.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


def issue_certificate(directory: Path, authority: tuple[Path, Path], host: str) -> tuple[Path, Path]:
    """A server certificate for ``host`` (an IP address or a DNS name) signed by ``authority`` (the certificate
    and key ``write_certificate`` made), valid for a day: what a local cluster's endpoint presents, as RDS's
    endpoints present certificates of RDS's CA. Written to ``directory`` as server.pem and server.key."""
    issuer_cert = x509.load_pem_x509_certificate(authority[0].read_bytes())
    issuer_key = serialization.load_pem_private_key(authority[1].read_bytes(), password=None)
    assert isinstance(issuer_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    try:
        name: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        name = x509.DNSName(host)
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
        .issuer_name(issuer_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([name]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .sign(issuer_key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.pem", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.touch(mode=0o600)
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@dataclass(frozen=True)
class EventDelivery:
    """How RDS events reach the subscribers (the EventBridge player): best effort, as on AWS (REFERENCE, "RDS
    events on EventBridge": late or missing). Each event is late by a lognormal lag of median ``lag_median``
    world seconds (spread ``lag_sigma``, so a few take several times as long), ``loss`` of them never arrive
    and ``duplicate`` arrive twice (each copy with a lag of its own), so some arrive out of order. Drawn with
    ``random.Random(seed)``; without a seed, the world's. Other events (``PutEvents``) arrive at once.

    ``describe_lag``: RDS is eventually consistent, so Describe calls show the status an event announces up
    to this many world seconds after the stage ended (``RdsRules``' describe lag)."""

    lag_median: float = 1.0
    lag_sigma: float = 0.8
    loss: float = 0.03
    duplicate: float = 0.02
    seed: int | None = None
    describe_lag: float = 2.0

    def __post_init__(self) -> None:
        if self.lag_median < 0 or self.lag_sigma < 0 or self.describe_lag < 0:
            raise ValueError("lag_median, lag_sigma and describe_lag must not be negative")
        if not (0 <= self.loss <= 1 and 0 <= self.duplicate <= 1):
            raise ValueError("loss and duplicate are fractions from 0 to 1")

    @property
    def immediate(self) -> bool:
        return self.lag_median == 0 and self.loss == 0 and self.duplicate == 0

    def lag(self, rng: random.Random) -> float:
        """One event's lag in world seconds: lognormal, median ``lag_median``."""
        return self.lag_median * math.exp(rng.gauss(0.0, self.lag_sigma)) if self.lag_median > 0 else 0.0

    def arrivals(self, rng: random.Random) -> list[float]:
        """The lags of an event's copies that arrive: none when it is lost, two when it is duplicated."""
        if rng.random() < self.loss:
            return []
        copies = 2 if rng.random() < self.duplicate else 1
        return [self.lag(rng) for _ in range(copies)]


IMMEDIATE_DELIVERY = EventDelivery(lag_median=0.0, loss=0.0, duplicate=0.0, describe_lag=0.0)


class _QuietHandler(WSGIRequestHandler):  # type: ignore[misc]  # werkzeug is not followed
    """werkzeug's handler without the access log line per request."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _Server(ThreadedWSGIServer):  # type: ignore[misc]  # werkzeug is not followed
    """A threaded WSGI server that knows its connection threads, to close and join them when it stops."""

    def __init__(self, app: Any, ssl_context: tuple[str, str]) -> None:
        super().__init__("127.0.0.1", 0, app, _QuietHandler, False, ssl_context)
        self._connections: dict[threading.Thread, Any] = {}
        self._connections_lock = threading.Lock()
        self._closing = False

    def process_request(self, request: Any, client_address: Any) -> None:
        # werkzeug writes the headers and the body apart: without this, Nagle's algorithm holds the body
        # back until the connection closes, some 10 ms later.
        with contextlib.suppress(OSError):
            request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        thread = threading.Thread(
            target=self._serve_connection, args=(request, client_address), name="local-aws-connection", daemon=True
        )
        with self._connections_lock:
            if self._closing:
                self.shutdown_request(request)
                return
            self._connections[thread] = request
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(threading.current_thread(), None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not self._closing:
            super().handle_error(request, client_address)

    def close_connections(self, timeout: float) -> None:
        """Cut every open (kept-alive) connection and wait for its thread."""
        with self._connections_lock:
            self._closing = True
            connections = list(self._connections.items())
        for _thread, request in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                request.shutdown(socket.SHUT_RDWR)
        for thread, _request in connections:
            thread.join(timeout)


class LocalAws:
    """The emulated AWS, started on enter and stopped (server, threads, files, moto's state) on exit.

    ``seed`` draws every stage's duration at random around its base (``Durations.draw``) with
    ``random.Random(seed)``; without it every stage lasts exactly its base duration. ``event_delivery``
    says how RDS events reach the subscribers (default: at once, every one, in order).

    ``real_databases``: Aurora PostgreSQL clusters (and Aurora MySQL ones where mysqld or mariadbd is on
    PATH) run a real server behind their endpoint, clones a copy of their source's data (``databases``, an
    ``aurora_clone.local.databases.LocalDatabases``); off by default: metadata only, and faster.
    """

    def __init__(
        self,
        *,
        time_scale: float = 0.01,
        durations: Durations | None = None,
        throttling: Throttling | None = None,
        seed: int | None = None,
        event_delivery: EventDelivery = IMMEDIATE_DELIVERY,
        real_databases: bool = False,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self.real_databases = real_databases
        self.databases: LocalDatabases | None = None
        self.time_scale = time_scale
        self.durations = durations if durations is not None else Durations()
        self.throttling = throttling
        self.seed = seed
        self.event_delivery = event_delivery
        self.event_counts: collections.Counter[str] = collections.Counter()
        self.region = REGION
        self.account_id = os.environ.get("MOTO_ACCOUNT_ID", DEFAULT_ACCOUNT_ID)
        self.endpoint_url = ""
        self.ca_bundle = ""
        self.rds_calls: collections.Counter[str] = collections.Counter()
        self._pace = WorldPace(time_scale)
        self._rules: RdsRules | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._server: _Server | None = None
        self._serving = False
        self._threads: list[threading.Thread] = []
        self._stop = threading.Event()
        self._callbacks: list[Callable[[dict[str, Any]], None]] = []
        self._watchers: list[Callable[[dict[str, Any]], None]] = []
        self._callbacks_lock = threading.Lock()
        self._outbox: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._moto: WsgiApp = DomainDispatcherApplication(create_backend_app)
        self._app = self._moto  # moto, and what put_in_front adds

    # -- life -----------------------------------------------------------------------------------------

    def __enter__(self) -> LocalAws:
        if self._rules is not None:
            raise RuntimeError("this LocalAws is already running")
        self._stop.clear()
        self._pace = WorldPace(self.time_scale)
        process_clock.use(self._pace.clock.now)  # this process reads the world's time while the world runs
        rng = random.Random(self.seed) if self.seed is not None else None
        rules = RdsRules(
            self._pace,
            durations=self.durations,
            rng=rng,
            throttling=self.throttling,
            notify=self._outbox.put,
            describe_lag=self.event_delivery.describe_lag,
        )
        rules.rds_calls = self.rds_calls
        try:
            rules.__enter__()
            self._rules = rules
            self._directory = tempfile.TemporaryDirectory(prefix="aurora-clone-local-")
            cert, key = write_certificate(Path(self._directory.name))
            self.ca_bundle = str(cert)
            if self.real_databases:  # its patches wrap the rules': entered after them, left before
                # Each server's endpoint presents a certificate of the world's CA (ca_bundle) for its address,
                # as RDS's present one of RDS's CAs: the connection check verifies it (RDS_CA_BUNDLE).
                authority = (cert, key)
                servers = DatabaseServers(
                    issue_certificate=lambda where, host: issue_certificate(where, authority, host)
                )
                self.databases = LocalDatabases(servers, clock=self.world_time, to_real=self.to_real).__enter__()
            self._app = self._moto  # a run starts with moto alone: middleware belongs to the run that added it
            self._server = _Server(self._serve, (str(cert), str(key)))
            self.endpoint_url = f"https://localhost:{self._server.server_address[1]}"
            server = self._server
            self._start(lambda: server.serve_forever(poll_interval=SERVER_POLL_SECONDS), "local-aws-server")
            self._serving = True
            self._start(self._tick_forever, "local-aws-ticker")
            self._start(self._dispatch_forever, DISPATCHER_NAME)
        except BaseException:
            self._stop_everything()
            raise
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._stop_everything()

    # -- in front of moto (LocalSession answers CloudFormation's API from its own stacks) ---------------

    def put_in_front(self, middleware: Callable[[WsgiApp], WsgiApp]) -> None:
        """Serve every request with ``middleware(app)`` from now on, ``app`` being what served them so far
        (moto, at first); the middleware answers the requests it claims and hands the others to ``app``."""
        self._app = middleware(self._app)

    def _serve(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return self._app(environ, start_response)

    def _start(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _stop_everything(self) -> None:
        """Stop the server and the ticker, then let the events already sent reach the subscribers."""
        self._stop.set()
        if self._server is not None:
            if self._serving:
                self._server.shutdown()
            self._server.close_connections(JOIN_SECONDS)
            self._server.server_close()
        self._serving = False
        for thread in self._threads:
            if thread.name != DISPATCHER_NAME:
                thread.join(JOIN_SECONDS)
        self._outbox.put(None)  # after everything that could send an event has stopped
        for thread in self._threads:
            thread.join(JOIN_SECONDS)
        self._threads = []
        self._server = None
        if self.databases is not None:  # every server stopped, every file removed
            self.databases.__exit__(None, None, None)
            self.databases = None
        if self._rules is not None:  # this world ran: its rules and moto's state go
            self._rules.__exit__(None, None, None)
            self._rules = None
            with LOCK:
                BackendDict.reset()
                reset_model_data()
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None
        self._outbox = queue.SimpleQueue()
        process_clock.use(time.time)

    def _tick_forever(self) -> None:
        while not self._stop.wait(TICK_SECONDS):
            rules = self._rules
            if rules is None:
                continue
            try:
                rules.tick()
            except Exception:  # keep the world turning; the failure is in the log
                LOGGER.exception("tick failed")

    def _dispatch_forever(self) -> None:
        """Hand events to the subscribers when due; a time-ordered heap holds the late ones, so a late event
        never holds back the others. At the end, whatever is still due is handed over at once."""
        outbox = self._outbox
        delivery = self.event_delivery
        seed = delivery.seed if delivery.seed is not None else self.seed
        rng = random.Random(seed)
        due: list[tuple[float, int, dict[str, Any]]] = []  # (world time it arrives, order sent, event)
        order = itertools.count()
        while True:
            wait = self.to_real(due[0][0] - self.world_time()) if due else None
            try:
                event = outbox.get(timeout=max(0.0, wait)) if wait is not None else outbox.get()
            except queue.Empty:
                pass
            else:
                if event is None:
                    while due:
                        self._hand_over(heapq.heappop(due)[2])
                    return
                self._watch(event)
                for lag in self._lags(event, delivery, rng):
                    heapq.heappush(due, (self.world_time() + lag, next(order), event))
            while due and due[0][0] <= self.world_time():
                self._hand_over(heapq.heappop(due)[2])

    def _lags(self, event: dict[str, Any], delivery: EventDelivery, rng: random.Random) -> list[float]:
        """When each copy of ``event`` arrives, in world seconds from now: none when it is lost."""
        if delivery.immediate or event.get("source") != "aws.rds":
            return [0.0]
        lags = delivery.arrivals(rng)
        if not lags:
            self.event_counts["lost"] += 1
            detail = event.get("detail") or {}
            LOGGER.info("RDS event lost on its way: %s %s", detail.get("EventID"), detail.get("SourceIdentifier"))
        self.event_counts["duplicated"] += max(0, len(lags) - 1)
        return lags

    def _watch(self, event: dict[str, Any]) -> None:
        with self._callbacks_lock:
            watchers = list(self._watchers)
        _call_each(watchers, event, "event watcher")

    def _hand_over(self, event: dict[str, Any]) -> None:
        if event.get("source") == "aws.rds":
            self.event_counts["delivered"] += 1
        with self._callbacks_lock:
            callbacks = list(self._callbacks)
        _call_each(callbacks, event, "event subscriber")

    # -- clients --------------------------------------------------------------------------------------

    @property
    def throttled(self) -> int:
        """RDS requests answered ``ThrottlingException`` so far."""
        return self._rules.throttled if self._rules is not None else 0

    def client_env(self) -> dict[str, str]:
        """Environment variables that point an AWS SDK (and plain HTTPS) at this world."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            process_clock.WORLD_CLOCK_VARIABLE: self.clock.encode(),
        }

    def client(self, service: str, **options: Any) -> Any:
        """A boto3 client of ``service`` for this world (``options`` as for ``boto3.client``, e.g. ``config``)."""
        make_client: Any = boto3.client  # any service by name; the stubs only type literal names
        return make_client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            verify=self.ca_bundle,
            aws_access_key_id="local",
            aws_secret_access_key="local",
            **options,
        )

    # -- time -----------------------------------------------------------------------------------------

    @property
    def clock(self) -> process_clock.WorldClock:
        """The world's clock: what every part of the world, and the CLI talking to it, reads as the time."""
        return self._pace.clock

    def world_time_at(self, moment: datetime.datetime) -> float:
        """The world time (emulated seconds since the start) of a world date, such as an RDS event's ``Date``."""
        return (moment - self._pace.wall_at(0.0)).total_seconds()

    def world_time(self) -> float:
        """Emulated seconds since the world started (real seconds divided by the time scale)."""
        return self._pace.now()

    def to_real(self, world_seconds: float) -> float:
        return world_seconds * self.time_scale

    def wait_until(self, predicate: Callable[[], bool], world_seconds: float) -> bool:
        """Look at ``predicate`` every 10 ms of real time until it holds or ``world_seconds`` have passed."""
        deadline = time.monotonic() + self.to_real(world_seconds)
        while True:
            if predicate():
                return True
            if time.monotonic() >= deadline:
                return bool(predicate())
            time.sleep(POLL_SECONDS)

    # -- events and RDS -------------------------------------------------------------------------------

    def watch_rds_events(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with every event as it is sent, before the delivery's lag or loss (for measuring)."""
        with self._callbacks_lock:
            self._watchers.append(callback)

    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with every event put on a default bus from now on (RDS events, ``PutEvents``)."""
        with self._callbacks_lock:
            self._callbacks.append(callback)

    def unsubscribe(self, callback: Callable[[dict[str, Any]], None]) -> None:
        """Stop calling ``callback`` (given to ``subscribe``)."""
        with self._callbacks_lock:
            self._callbacks.remove(callback)

    def transitional(self) -> dict[str, str]:
        """Identifiers of the clusters and instances in a transitional status, mapped to that status."""
        if self._rules is None:
            return {}
        return self._rules.transitional()

    def create_source_cluster(
        self,
        identifier: str,
        engine: str = "aurora-mysql",
        instance_class: str = "db.r6g.large",
        backtrack_window: int = 0,
        sql: str | None = None,
    ) -> str:
        """An ``available`` cluster with one ``available`` writer ``<identifier>-writer``, made at once; its ARN.

        Made inside the world, so it sends no request (``rds_calls`` stays as it is) and no event. With real
        databases, its server is started before this returns, holding ``sql`` (run as its master user) or,
        without it, a small sample: a ``customers`` table with three rows.
        """
        if self._rules is None:
            raise RuntimeError("the world is not running")
        with LOCK:
            backend = rds_backends[self.account_id][self.region]
            cluster = backend.create_db_cluster(
                {
                    "db_cluster_identifier": identifier,
                    "engine": engine,
                    "master_username": SOURCE_MASTER_USERNAME,
                    "master_user_password": SOURCE_MASTER_PASSWORD,
                    "backtrack_window": backtrack_window,
                }
            )
            cluster.status = "available"
            # moto names "default.aurora8.0" whatever the engine; RDS names the engine version's family.
            family = parameter_group_family(engine, cluster.engine_version)
            if family is not None:
                cluster.parameter_group = f"default.{family}"
            writer = backend.create_db_instance(
                {
                    "db_instance_identifier": f"{identifier}-writer",
                    "db_cluster_identifier": cluster.db_cluster_identifier,
                    "engine": engine,
                    "db_instance_class": instance_class,
                }
            )
            writer.status = "available"
            arn: str = cluster.db_cluster_arn
        if self.databases is not None:
            self.databases.settle()
            if self.databases.server(identifier) is not None:
                sample = MYSQL_SAMPLE_SQL if engine == MYSQL_ENGINE else SAMPLE_SQL
                self.databases.load_sql(identifier, sample if sql is None else sql)
        return arn


def _call_each(callbacks: list[Callable[[dict[str, Any]], None]], event: dict[str, Any], what: str) -> None:
    """Hand ``event`` to each callback; one that fails is logged and the others still get it."""
    for callback in callbacks:
        try:
            callback(event)
        except Exception:
            LOGGER.exception("%s failed", what)
