"""The connection check's function (``aurora_clone.probe.handler``), placed in the tests' VPC.

It is given a cluster's identifier and nothing else (``connection_check.ProbeRequest``), and resolves the
rest itself: it acts only on a cluster the tool's ledger names (``RequestStore.made``), and takes the writer
endpoint, port, engine and RDS-managed secret from RDS (DescribeDBClusters). Then, stage by stage (the
answer, ``ProbeResult``, says the first that failed): a TCP connection; TLS asked for the way the engine's
clients ask (PostgreSQL's SSLRequest, MySQL's SSL request packet after the server's greeting), the server's
certificate verified against RDS's CA bundle for the endpoint's name; with the managed secret, a login as
the master user and ``SELECT 1``.

The secret is read only once the endpoint has shown a certificate RDS's CA issued for it, and it travels
only over such a connection: a server that offers no TLS fails the login without being sent anything, and
PostgreSQL's login is SCRAM only, so the password itself never leaves the function (a server asking for it
in clear text or as an MD5 hash is refused), and the server must prove it knows the password too.
The bundle is ``rds-ca-bundle.pem`` beside this module (AWS's global-bundle.pem), or the file
``RDS_CA_BUNDLE`` names (``settings.rds_ca_bundle``; the local world sets its own CA there).
"""

from __future__ import annotations

import json
import socket
import ssl
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from aurora_clone import clock
from aurora_clone.aws_clients import aws_client
from aurora_clone.clone_state import ClusterView
from aurora_clone.connection_check import ProbeRequest, ProbeResult
from aurora_clone.database_session import Endpoint, LoginRefusedError, open_session
from aurora_clone.prepare_script import (
    MAX_SCRIPT_BYTES,
    ScriptLocation,
    ScriptSyntaxError,
    prepared_with,
    split_statements,
)
from aurora_clone.rds import RdsGateway
from aurora_clone.request_record import MadeRecord, PreparationState, RequestRecord
from aurora_clone.request_store import RequestStore
from aurora_clone.settings import settings

TIMEOUT_SECONDS = 4.0  # per stage: three stages stay within the invoker's 20-second read timeout
POSTGRES_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
MYSQL_CLIENT_SSL = 0x0800
MYSQL_CLIENT_PROTOCOL_41 = 0x0200
MYSQL_CLIENT_SECURE_CONNECTION = 0x8000
MYSQL_MAX_PACKET = 1 << 24
MYSQL_UTF8MB4 = 45
RDS_CA_BUNDLE_FILE = Path(__file__).with_name("rds-ca-bundle.pem")  # package data: AWS's global-bundle.pem
NO_TLS = "the server offers no TLS"
NO_TLS_FOR_LOGIN = "the server offers no TLS; the check never sends credentials in clear"

# Of the invocation, what a prepare run leaves for writing how it ended (the run stops its script before).
PREPARE_MARGIN_SECONDS = 15.0

SecretReader = Callable[[str], tuple[str, str]]
# (body, version id, ETag) of a script's S3 object.
ObjectReader = Callable[[ScriptLocation], tuple[bytes, str, str]]


class Ledger(Protocol):
    """What the probe asks of the tool's ledger (``RequestStore``)."""

    def made(self, cluster_id: str) -> MadeRecord | None: ...


class PrepareLedger(Ledger, Protocol):
    """What a prepare run also asks of the tool's table (``RequestStore``): the request, and its run's record."""

    def load(self, token: str) -> RequestRecord | None: ...

    def start_preparation(self, cluster_id: str, token: str, now: float) -> bool: ...

    def finish_preparation(
        self, cluster_id: str, token: str, state: PreparationState, detail: str, prepared_with: str = ""
    ) -> bool: ...


class Clusters(Protocol):
    """What the probe asks of RDS (``RdsGateway``)."""

    def describe_cluster(self, identifier: str) -> ClusterView | None: ...


@dataclass(frozen=True)
class Target:
    """Where the probe connects and with which secret it logs in: what RDS reports for the cluster."""

    host: str
    port: int
    engine: str
    secret_arn: str = ""  # the RDS-managed master secret; "" when RDS does not manage the password

    @classmethod
    def of(cls, cluster: ClusterView) -> Target:
        return cls(cluster.endpoint, cluster.port, cluster.engine, cluster.master_user_secret_arn)

    @property
    def endpoint(self) -> Endpoint:
        return Endpoint(self.host, self.port, self.engine)


class TlsSetupError(Exception):
    """The check has no usable CA bundle to verify servers with."""


def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = ProbeRequest.from_event(event)
    except ValueError as error:
        return ProbeResult(False, "probe", str(error)).to_payload()
    if request.prepare:
        return prepare(request, seconds_left=_time_left(context)).to_payload()
    return check(request).to_payload()


def _time_left(context: Any) -> Callable[[], float]:
    """Seconds a prepare run may still take: the invocation's remaining time less the margin."""
    remaining = getattr(context, "get_remaining_time_in_millis", None)
    if remaining is None:  # called without Lambda's context: one Lambda maximum
        started = time.monotonic()
        return lambda: 900.0 - PREPARE_MARGIN_SECONDS - (time.monotonic() - started)
    return lambda: remaining() / 1000 - PREPARE_MARGIN_SECONDS


def prepare(
    request: ProbeRequest,
    *,
    seconds_left: Callable[[], float],
    ledger: PrepareLedger | None = None,
    clusters: Clusters | None = None,
    read_secret: SecretReader | None = None,
    read_object: ObjectReader | None = None,
    tls: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Run, once, the prepare script of the pending request ``request.prepare`` in the cluster it acts on, and
    write how it ended in the request table. The script is the one that request's own job names: the event
    chooses no script and no cluster the request does not act on, and a second invocation runs nothing."""
    store = ledger or RequestStore()
    token = request.prepare
    if store.made(request.cluster) is None:
        return ProbeResult(False, "probe", f"'{request.cluster}' is not a cluster this tool made: nothing is run")
    record = store.load(token)
    job = record.job if record is not None else None
    if (
        record is None
        or record.state != "pending"
        or job is None
        or job.cluster_id.lower() != request.cluster.lower()
        or not job.prepare
    ):
        return ProbeResult(
            False, "prepare", f"no pending request '{token}' asks to prepare '{request.cluster}': nothing is run"
        )
    if not store.start_preparation(request.cluster, token, clock.now()):
        return ProbeResult(False, "prepare", "this request's prepare script was started before: it runs once")
    try:
        state, detail, ran = _run_prepare(
            ScriptLocation.parse(job.prepare),
            clusters or RdsGateway(),
            request.cluster,
            seconds_left,
            read_secret or _read_secret,
            read_object or _read_object,
            tls,
        )
    except Exception as error:  # any SDK error or bug: the run ends, and says so
        state, detail, ran = "failed", f"the prepare run stopped: {type(error).__name__}: {error}", ""
    store.finish_preparation(request.cluster, token, state, detail, ran)
    return ProbeResult(state == "done", "prepare", detail)


def _run_prepare(
    location: ScriptLocation,
    clusters: Clusters,
    cluster_id: str,
    seconds_left: Callable[[], float],
    read_secret: SecretReader,
    read_object: ObjectReader,
    tls: ssl.SSLContext | None,
) -> tuple[PreparationState, str, str]:
    """(state, detail, what ran) of one run of the script at ``location`` in ``cluster_id``."""
    cluster = clusters.describe_cluster(cluster_id)
    if cluster is None or not cluster.endpoint:
        return "failed", f"RDS reports no endpoint for '{cluster_id}'", ""
    target = Target.of(cluster)
    if not target.secret_arn:
        return "failed", f"'{cluster_id}' has no master secret RDS manages (ManageMasterUserPassword)", ""
    try:
        body, version_id, etag = read_object(location)
    except Exception as error:  # S3's answer: no such object, access denied (PrepareScriptLocations), ...
        return "failed", f"the prepare script {location.uri} could not be read from S3: {error}", ""
    if len(body) > MAX_SCRIPT_BYTES:
        return "failed", f"the prepare script {location.uri} is over {MAX_SCRIPT_BYTES // 2**20} MiB", ""
    ran = prepared_with(location, version_id, etag)
    try:
        statements = split_statements(body.decode("utf-8-sig"), target.engine)
    except UnicodeDecodeError:
        return "failed", f"the prepare script {ran} is not UTF-8 text", ran
    except ScriptSyntaxError as error:
        return "failed", f"the prepare script {ran} cannot be split into statements: {error}", ran
    if not statements:
        return "failed", f"the prepare script {ran} has no statement", ran
    user, password = read_secret(target.secret_arn)
    context = tls or verifying_context()
    started = time.monotonic()
    try:
        session = open_session(target.endpoint, user, password, context, max(5.0, seconds_left() + 30))
    except Exception as error:  # refused, untrusted certificate, the driver's own errors
        return "failed", f"the prepare script {ran} could not log in as the master user: {error}", ran
    try:
        outcome = session.run_script(statements, seconds_left)
    finally:
        session.close()
    if not outcome.ok:
        kept = (
            "nothing of it was kept (it ran in one transaction)"
            if target.engine.endswith("postgresql")
            else "it was rolled back as far as MySQL allows (a DDL statement commits what came before it)"
        )
        return "failed", f"the prepare script {ran} failed: {outcome.detail}; {kept}", ran
    return "done", f"{outcome.ran} statements in {time.monotonic() - started:.1f} s", ran


def _read_object(location: ScriptLocation) -> tuple[bytes, str, str]:
    asked = {"Bucket": location.bucket, "Key": location.key}
    if location.version:
        asked["VersionId"] = location.version
    answer = aws_client("s3").get_object(**asked)
    body = answer["Body"].read(MAX_SCRIPT_BYTES + 1)
    return body, str(answer.get("VersionId") or ""), str(answer.get("ETag") or "")


def check(
    request: ProbeRequest,
    *,
    ledger: Ledger | None = None,
    clusters: Clusters | None = None,
    timeout: float = TIMEOUT_SECONDS,
    read_secret: SecretReader | None = None,
    tls: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Probe the cluster ``request`` names, if the tool made it, at what RDS reports for it."""
    try:
        made = (ledger or RequestStore()).made(request.cluster)
    except Exception as error:  # any SDK error: nothing is known of the cluster, nothing is done
        return ProbeResult(False, "probe", f"the tool's ledger could not be read: {error}")
    if made is None:
        return ProbeResult(
            False,
            "probe",
            f"'{request.cluster}' is not a cluster this tool made (its ledger has no record of it): the "
            "connection check acts only on the tool's own clusters",
        )
    try:
        cluster = (clusters or RdsGateway()).describe_cluster(request.cluster)
    except Exception as error:  # any SDK error, throttling included: the check is tried again later
        return ProbeResult(False, "probe", f"RDS could not describe the cluster '{request.cluster}': {error}")
    if cluster is None:
        return ProbeResult(False, "probe", f"RDS does not list the cluster '{request.cluster}'")
    if not cluster.endpoint or not cluster.port:
        return ProbeResult(False, "probe", f"RDS reports no endpoint for the cluster '{request.cluster}' yet")
    return probe(Target.of(cluster), timeout=timeout, read_secret=read_secret, tls=tls)


def probe(
    target: Target,
    *,
    timeout: float = TIMEOUT_SECONDS,
    read_secret: SecretReader | None = None,
    tls: ssl.SSLContext | None = None,
) -> ProbeResult:
    """Check ``target`` stage by stage. ``tls``: the context that verifies the server's certificate (when
    None, ``verifying_context()``: RDS's CA bundle)."""
    try:
        connection = socket.create_connection((target.host, target.port), timeout)
    except OSError as error:
        return ProbeResult(False, "tcp", _said(error, timeout))
    with connection:
        try:
            context = tls or verifying_context()
            offered = _negotiate_tls(connection, target, context, timeout)
        except TlsSetupError as error:
            return ProbeResult(False, "tls", str(error))
        except ssl.SSLCertVerificationError as error:
            return ProbeResult(False, "tls", _untrusted(target, error))
        except (OSError, ValueError) as error:
            return ProbeResult(False, "tls", _said(error, timeout))
    if not target.secret_arn:
        return ProbeResult(True, "tls", offered)
    if offered == NO_TLS:
        return ProbeResult(False, "login", NO_TLS_FOR_LOGIN)  # the secret is not even read
    try:
        user, password = (read_secret or _read_secret)(target.secret_arn)
    except Exception as error:  # any SDK or shape error: the login cannot be tried
        return ProbeResult(False, "login", f"the master secret could not be read: {error}")
    return _log_in(target, user, password, context, timeout)


def verifying_context() -> ssl.SSLContext:
    """A TLS client context that trusts the RDS CA bundle only (no system CAs) and checks that the
    certificate names the host connected to."""
    bundle = settings.rds_ca_bundle or (RDS_CA_BUNDLE_FILE if RDS_CA_BUNDLE_FILE.is_file() else None)
    if bundle is None:
        raise TlsSetupError(
            "the check has no RDS certificate bundle to verify the server's certificate with (the package has "
            "no rds-ca-bundle.pem and RDS_CA_BUNDLE is not set), so it connects no further"
        )
    try:
        context = ssl.create_default_context(cafile=str(bundle))
    except OSError as error:  # missing, unreadable, or no certificate in it (ssl.SSLError)
        raise TlsSetupError(f"the RDS certificate bundle {bundle} cannot be used: {error}") from error
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _untrusted(target: Target, error: ssl.SSLCertVerificationError) -> str:
    return (
        f"the server's certificate is not one the RDS certificate authorities issued for {target.host}: "
        f"{error.verify_message or error}"
    )


def _negotiate_tls(connection: socket.socket, target: Target, context: ssl.SSLContext, timeout: float) -> str:
    """TLS as the engine's clients ask for it, verified with ``context``; the handshake's protocol version,
    or NO_TLS when the server does not offer it."""
    connection.settimeout(timeout)
    if target.engine.endswith("postgresql"):
        connection.sendall(POSTGRES_SSL_REQUEST)
        answer = _receive(connection, 1)
        if answer == b"N":
            return NO_TLS
        if answer != b"S":
            raise ValueError(f"not a PostgreSQL server: it answered {answer!r} to an SSL request")
    else:
        capabilities = _mysql_capabilities(connection)
        if not capabilities & MYSQL_CLIENT_SSL:
            return NO_TLS
        flags = MYSQL_CLIENT_SSL | MYSQL_CLIENT_PROTOCOL_41 | MYSQL_CLIENT_SECURE_CONNECTION
        body = struct.pack("<IIB23x", flags, MYSQL_MAX_PACKET, MYSQL_UTF8MB4)
        connection.sendall(struct.pack("<I", len(body))[:3] + b"\x01" + body)
    with context.wrap_socket(connection, server_hostname=target.host) as secured:
        return f"TLS handshake done ({secured.version()}), certificate verified for {target.host}"


def _mysql_capabilities(connection: socket.socket) -> int:
    """The capability flags of a MySQL server's greeting (protocol 10)."""
    header = _receive(connection, 4)
    greeting = _receive(connection, int.from_bytes(header[:3], "little"))
    if greeting[:1] == b"\xff":
        raise ValueError(f"the server refused the connection: {greeting[3:].decode(errors='replace')}")
    if greeting[:1] != b"\x0a" or b"\x00" not in greeting[1:]:
        raise ValueError("not a MySQL server: its greeting is not MySQL's protocol 10")
    after_version = greeting.index(b"\x00", 1) + 1
    flags_at = after_version + 4 + 8 + 1  # connection id, first auth data, filler
    return int.from_bytes(greeting[flags_at : flags_at + 2], "little")


def _receive(connection: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = connection.recv(size - len(data))
        if not chunk:
            raise ValueError("the server closed the connection")
        data += chunk
    return data


def _log_in(target: Target, user: str, password: str, context: ssl.SSLContext, timeout: float) -> ProbeResult:
    try:
        session = open_session(target.endpoint, user, password, context, timeout)
        try:
            rows = [[str(value) for value in row] for row in session.rows("SELECT 1")]
        finally:
            session.close()
    except LoginRefusedError as error:
        return ProbeResult(False, "login", str(error))
    except ssl.SSLCertVerificationError as error:
        return ProbeResult(False, "login", _untrusted(target, error))
    except Exception as error:  # the driver's own errors: refused, reset, timed out, ...
        return ProbeResult(False, "login", f"{type(error).__name__}: {error}")
    if rows != [["1"]]:
        return ProbeResult(False, "query", f"SELECT 1 returned {rows!r}")
    return ProbeResult(True, "query", "logged in as the master user; SELECT 1 returned 1")


def _read_secret(secret_arn: str) -> tuple[str, str]:
    value = json.loads(aws_client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    return str(value["username"]), str(value["password"])


def _said(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} seconds"
    return str(error) or type(error).__name__
