"""The connection check's probe (aurora_clone.probe) against servers on loopback that speak as much of
PostgreSQL's and MySQL's protocols as a check needs: TCP, the engine's way of asking for TLS, the verified
handshake, PostgreSQL's login. The servers record every byte a client sent them (after TLS), so a test can
say what the probe never sent.

The probe is given a cluster identifier only: the tests that go through its handler make the cluster in moto
(``world``), with its endpoint on 127.0.0.1 and its port the fake server's, and write the tool's ledger record
of it when the test wants the tool to have made it.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.rds.models import DBCluster

from aurora_clone.connection_check import ProbeResult
from aurora_clone.local.world import issue_certificate, write_certificate
from aurora_clone.probe import (
    NO_TLS,
    NO_TLS_FOR_LOGIN,
    POSTGRES_SSL_REQUEST,
    RDS_CA_BUNDLE_FILE,
    Target,
    handler,
    probe,
    verifying_context,
)
from aurora_clone.request_record import MadeRecord
from aurora_clone.request_store import RequestStore
from tests.moto_gaps import AwsGaps

Serve = Callable[[socket.socket], None]
HOST = "127.0.0.1"
MOTO_PASSWORD = "P@55w0rd!"  # the password moto puts in every secret it manages for a cluster
CLONE = "aurora-clone-it-testdatabase-1a2b"
PRODUCTION = "prod-db"


# -- certificates ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Authority:
    """A CA (write_certificate) and a server certificate it issued for ``host``: what a fake server presents."""

    bundle: Path
    server: ssl.SSLContext


def authority(directory: Path, host: str = HOST) -> Authority:
    directory.mkdir(parents=True, exist_ok=True)
    ca = write_certificate(directory)
    cert, key = issue_certificate(directory, ca, host)
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return Authority(ca[0], server)


@pytest.fixture
def trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Authority:
    """The CA the probe trusts (given as RDS_CA_BUNDLE, as the local world gives its own)."""
    made = authority(tmp_path / "trusted")
    monkeypatch.setenv("RDS_CA_BUNDLE", str(made.bundle))
    return made


@pytest.fixture
def untrusted(tmp_path: Path) -> Authority:
    """A CA the probe does not trust, and a certificate of it for 127.0.0.1."""
    return authority(tmp_path / "untrusted")


# -- servers --------------------------------------------------------------------------------------------


@pytest.fixture
def serving() -> Iterator[Callable[[Serve], int]]:
    """Start a server running ``serve`` for every connection, one after the other; its port."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def start(serve: Serve) -> int:
        listener = socket.create_server((HOST, 0))
        listener.settimeout(0.05)
        sockets.append(listener)

        def run() -> None:
            while not stop.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return
                with connection, contextlib.suppress(OSError, ValueError):  # the probe may hang up first
                    connection.settimeout(10)
                    serve(connection)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    stop.set()
    for thread in threads:
        thread.join(10)
    for listener in sockets:
        listener.close()


def _receive(stream: socket.socket, size: int, into: bytearray) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.recv(size - len(data))
        if not chunk:
            raise ValueError("the client hung up")
        data += chunk
    into += data
    return data


def _send(stream: socket.socket, kind: bytes, body: bytes) -> None:
    stream.sendall(kind + struct.pack("!i", len(body) + 4) + body)


def _auth(code: int, data: bytes = b"") -> bytes:
    return struct.pack("!i", code) + data


@dataclass
class FakePostgres:
    """A PostgreSQL server: TLS with ``tls`` (None: it answers 'N' to an SSLRequest), then the login ``auth``
    asks for ("cleartext", "md5", "scram", or "scram-forged": SCRAM without knowing the password), then
    SELECT 1. ``received``: every byte clients sent it, decrypted; ``messages``: their typed messages."""

    tls: ssl.SSLContext | None
    auth: str = "scram"
    password: str = MOTO_PASSWORD
    received: bytearray = field(default_factory=bytearray)
    messages: list[tuple[bytes, bytes]] = field(default_factory=list)

    def serve(self, connection: socket.socket) -> None:
        if _receive(connection, 8, self.received) != POSTGRES_SSL_REQUEST:
            return
        if self.tls is None:
            connection.sendall(b"N")  # and a client may go on in clear, on this connection
            self._log_in(connection)
            return
        connection.sendall(b"S")
        with self.tls.wrap_socket(connection, server_side=True) as stream:
            self._log_in(stream)

    def _log_in(self, stream: socket.socket) -> None:
        length = struct.unpack("!i", _receive(stream, 4, self.received))[0]
        _receive(stream, length - 4, self.received)  # the startup message: protocol, user, database
        if self.auth == "cleartext":
            _send(stream, b"R", _auth(3))
        elif self.auth == "md5":
            _send(stream, b"R", _auth(5, secrets.token_bytes(4)))
        else:
            self._scram(stream)
            self._select_one(stream)
            return
        self._message(stream)  # whatever the client answers (the probe hangs up)

    def _message(self, stream: socket.socket) -> tuple[bytes, bytes]:
        header = _receive(stream, 5, self.received)
        message = header[:1], _receive(stream, struct.unpack("!i", header[1:])[0] - 4, self.received)
        self.messages.append(message)
        return message

    def _scram(self, stream: socket.socket) -> None:
        _send(stream, b"R", _auth(10, b"SCRAM-SHA-256\0\0"))
        _, body = self._message(stream)
        client_first = body[len(b"SCRAM-SHA-256\0") + 4 :].decode()
        client_first_bare = client_first.split(",", 2)[2]  # after the GS2 header ("n,," or "y,,": no binding)
        nonce = dict(part.split("=", 1) for part in client_first_bare.split(","))["r"] + "server-nonce"
        salt = secrets.token_bytes(16)
        server_first = f"r={nonce},s={base64.b64encode(salt).decode()},i=4096"
        _send(stream, b"R", _auth(11, server_first.encode()))
        _, client_final = self._message(stream)
        without_proof, _, proof = client_final.decode().rpartition(",p=")
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, 4096)
        stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
        auth_message = f"{client_first_bare},{server_first},{without_proof}".encode()
        client_signature = hmac.digest(stored_key, auth_message, "sha256")
        client_key = bytes(a ^ b for a, b in zip(base64.b64decode(proof), client_signature, strict=True))
        if hashlib.sha256(client_key).digest() != stored_key:
            _send(stream, b"E", b'SFATAL\0C28P01\0Mpassword authentication failed for user "admin"\0\0')
            raise ValueError("wrong proof")
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        signature = hmac.digest(server_key, auth_message, "sha256")
        if self.auth == "scram-forged":
            signature = secrets.token_bytes(32)  # a server that does not know the password cannot sign
        _send(stream, b"R", _auth(12, b"v=" + base64.b64encode(signature)))
        _send(stream, b"R", _auth(0))
        _send(stream, b"S", b"server_version\x0018.0\x00")
        _send(stream, b"Z", b"I")

    def _select_one(self, stream: socket.socket) -> None:
        kind, _ = self._message(stream)
        if kind != b"Q":
            return  # the client hung up (X): it refused the login
        # One int4 column ("?column?", type oid 23, text format), then its row.
        _send(stream, b"T", struct.pack("!h", 1) + b"?column?\0" + struct.pack("!ihihih", 0, 0, 23, 4, -1, 0))
        _send(stream, b"D", struct.pack("!hi", 1, 1) + b"1")
        _send(stream, b"C", b"SELECT 1\0")
        _send(stream, b"Z", b"I")


def postgres_tls_only(context: ssl.SSLContext) -> Serve:
    """A PostgreSQL server that completes the TLS handshake and waits."""

    def serve(connection: socket.socket) -> None:
        if connection.recv(8) != POSTGRES_SSL_REQUEST:
            return  # the probe hung up before asking
        connection.sendall(b"S")
        with context.wrap_socket(connection, server_side=True) as secured:
            secured.recv(1)

    return serve


def mysql(capabilities: int, context: ssl.SSLContext | None = None) -> Serve:
    def serve(connection: socket.socket) -> None:
        greeting = b"\x0a8.0.36\x00" + struct.pack("<I", 7) + b"12345678\x00" + struct.pack("<H", capabilities)
        greeting += b"\x2d\x02\x00" + b"\x00" * 13
        connection.sendall(struct.pack("<I", len(greeting))[:3] + b"\x00" + greeting)
        if context is not None:
            request = connection.recv(4 + 32)
            assert struct.unpack("<I", request[4:8])[0] & 0x0800, "no SSL request"
            with context.wrap_socket(connection, server_side=True) as secured:
                secured.recv(1)

    return serve


# -- the world: clusters in moto, the ledger, what Secrets Manager is asked ---------------------------


@pytest.fixture
def secret_reads(world: AwsGaps, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every GetSecretValue any client of the process makes from now on (the secret ids asked for)."""
    session = boto3.Session()
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", session)
    asked: list[str] = []

    def count(params: dict[str, Any], **_: Any) -> None:
        asked.append(str(params.get("SecretId")))

    session.events.register("provide-client-params.secrets-manager.GetSecretValue", count)
    return asked


@pytest.fixture
def on_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every moto cluster's endpoint is 127.0.0.1 (its port is the one it was made with)."""
    monkeypatch.setattr(DBCluster, "endpoint", property(lambda _cluster: HOST))


def make_cluster(world: AwsGaps, identifier: str, port: int, *, made_by_the_tool: bool) -> str:
    """An Aurora PostgreSQL cluster whose password RDS manages, on ``port``; its secret's ARN. With
    ``made_by_the_tool`` the tool's ledger names it (as for every clone the tool makes)."""
    cluster = boto3.client("rds").create_db_cluster(
        DBClusterIdentifier=identifier,
        Engine="aurora-postgresql",
        MasterUsername="admin",
        ManageMasterUserPassword=True,
        Port=port,
    )["DBCluster"]
    world.settle()
    if made_by_the_tool:
        assert (
            RequestStore().record_made(MadeRecord(identifier, "clone", request="t", stack_id="s", logical_id="l"))
            is None
        )
    return str(cluster["MasterUserSecret"]["SecretArn"])


# -- the attack this stops: a forged invoke that hands production's password over -------------------------


@pytest.mark.usefixtures("on_loopback")
def test_a_forged_invoke_with_production_s_secret_and_a_cleartext_host_gets_no_password(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str]
) -> None:
    # The old probe took host, port, engine and secret from its event, read the secret and answered a
    # cleartext password request with it: whoever could invoke it got production's master password.
    server = FakePostgres(tls=None, auth="cleartext")
    port = serving(server.serve)
    production_secret = make_cluster(world, PRODUCTION, port, made_by_the_tool=False)

    answer = handler({"host": HOST, "port": port, "engine": "aurora-postgresql", "secret_arn": production_secret}, None)

    assert answer["reachable"] is False and answer["stage"] == "probe"
    assert secret_reads == []
    assert MOTO_PASSWORD.encode() not in server.received and server.messages == []


@pytest.mark.usefixtures("on_loopback")
def test_a_forged_invoke_naming_a_cluster_the_ledger_does_not_name_is_refused_and_reads_no_secret(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], trusted: Authority
) -> None:
    server = FakePostgres(tls=trusted.server)
    port = serving(server.serve)
    make_cluster(world, PRODUCTION, port, made_by_the_tool=False)  # a managed secret, never the tool's

    answer = handler({"cluster": PRODUCTION}, None)

    assert answer["reachable"] is False and answer["stage"] == "probe"
    assert "'prod-db' is not a cluster this tool made" in answer["detail"]
    assert secret_reads == [] and server.received == b""  # not even a connection


def test_a_request_naming_more_than_a_cluster_is_refused() -> None:
    answer = handler({"cluster": CLONE, "host": "10.0.0.9", "port": 5432}, None)

    assert answer == {
        "reachable": False,
        "stage": "probe",
        "detail": "a probe request names a cluster and nothing else (it also has: host, port)",
    }


@pytest.mark.parametrize("event", [None, {}, {"cluster": ""}, {"cluster": "1-not-an-identifier"}, {"cluster": 5}])
def test_the_handler_refuses_a_malformed_request_with_a_result(event: object) -> None:
    answer = handler(event, None)

    assert answer["reachable"] is False and answer["stage"] == "probe"


# -- the login: SCRAM-SHA-256 over verified TLS, nothing else -----------------------------------------------


@pytest.mark.usefixtures("on_loopback")
def test_a_clone_the_tool_made_is_logged_in_to_by_scram_over_verified_tls(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], trusted: Authority
) -> None:
    server = FakePostgres(tls=trusted.server, auth="scram")
    port = serving(server.serve)
    secret = make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer == {
        "reachable": True,
        "stage": "query",
        "detail": "logged in as the master user; SELECT 1 returned 1",
    }
    assert secret_reads == [secret]  # the secret RDS reports for the clone, and only it
    assert MOTO_PASSWORD.encode() not in server.received  # SCRAM: a proof, never the password


@pytest.mark.usefixtures("on_loopback")
@pytest.mark.parametrize("auth", ["cleartext", "md5"])
def test_a_server_asking_for_the_password_in_clear_or_as_md5_gets_nothing(
    auth: str, world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], trusted: Authority
) -> None:
    # Even behind a trusted certificate: the check never sends the password itself, nor a hash of it.
    server = FakePostgres(tls=trusted.server, auth=auth)
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer["reachable"] is False and answer["stage"] == "login"
    assert "the check only logs in with SCRAM-SHA-256 (it never sends the password itself)" in answer["detail"]
    assert MOTO_PASSWORD.encode() not in server.received
    # Nothing but a Terminate (X) may follow: no password message (p) answers the request.
    assert [kind for kind, _ in server.messages if kind != b"X"] == [], "the probe answered the password request"


@pytest.mark.usefixtures("on_loopback")
def test_a_server_whose_certificate_the_trusted_cas_did_not_issue_fails_at_tls_and_gets_no_credentials(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], trusted: Authority, untrusted: Authority
) -> None:
    server = FakePostgres(tls=untrusted.server, auth="cleartext")
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer["reachable"] is False and answer["stage"] == "tls"
    assert "not one the RDS certificate authorities issued for 127.0.0.1" in answer["detail"]
    assert secret_reads == []
    assert bytes(server.received) == POSTGRES_SSL_REQUEST  # no startup message: not even the user name


@pytest.mark.usefixtures("on_loopback")
def test_a_trusted_certificate_for_another_host_fails_at_tls(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], tmp_path: Path, trusted: Authority
) -> None:
    ca = (trusted.bundle, trusted.bundle.with_suffix(".key"))
    cert, key = issue_certificate(tmp_path, ca, "127.0.0.2")  # the trusted CA, another endpoint
    elsewhere = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    elsewhere.load_cert_chain(cert, key)
    server = FakePostgres(tls=elsewhere)
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer["reachable"] is False and answer["stage"] == "tls" and "127.0.0.1" in answer["detail"]
    assert secret_reads == []


@pytest.mark.usefixtures("on_loopback")
def test_a_server_offering_no_tls_fails_the_login_without_the_secret_being_read(
    world: AwsGaps, serving: Callable[[Serve], int], secret_reads: list[str], trusted: Authority
) -> None:
    server = FakePostgres(tls=None)
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer == {"reachable": False, "stage": "login", "detail": NO_TLS_FOR_LOGIN}
    assert secret_reads == []
    assert bytes(server.received) == POSTGRES_SSL_REQUEST


@pytest.mark.usefixtures("on_loopback")
def test_a_server_that_cannot_prove_it_knows_the_password_fails_the_login(
    world: AwsGaps, serving: Callable[[Serve], int], trusted: Authority
) -> None:
    server = FakePostgres(tls=trusted.server, auth="scram-forged")
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer["reachable"] is False and answer["stage"] == "login"
    assert "SCRAM signature is wrong" in answer["detail"]


@pytest.mark.usefixtures("on_loopback")
def test_a_wrong_password_is_the_server_s_refusal_at_login(
    world: AwsGaps, serving: Callable[[Serve], int], trusted: Authority
) -> None:
    server = FakePostgres(tls=trusted.server, password="another-password")
    port = serving(server.serve)
    make_cluster(world, CLONE, port, made_by_the_tool=True)

    answer = handler({"cluster": CLONE}, None)

    assert answer == {"reachable": False, "stage": "login", "detail": 'password authentication failed for user "admin"'}


# -- the stages, on a target as RDS reports it ------------------------------------------------------------


def test_nothing_listening_fails_at_tcp() -> None:
    with socket.socket() as unused:
        unused.bind((HOST, 0))
        port = unused.getsockname()[1]

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=1)

    assert not result.reachable and result.stage == "tcp"


def test_a_postgresql_server_with_a_trusted_certificate_completes_the_handshake(
    serving: Callable[[Serve], int], trusted: Authority
) -> None:
    port = serving(postgres_tls_only(trusted.server))

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5)

    assert result.reachable and result.stage == "tls"
    assert result.detail.startswith("TLS handshake done (TLS") and result.detail.endswith("verified for 127.0.0.1")


def test_the_handshake_holds_under_strict_x509_verification(
    serving: Callable[[Serve], int], trusted: Authority
) -> None:
    # Python 3.13 (the Lambda runtime) verifies strictly by default: the local world's certificates pass it.
    context = verifying_context()
    context.verify_flags |= ssl.VERIFY_X509_STRICT
    port = serving(postgres_tls_only(trusted.server))

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5, tls=context)

    assert result.reachable, result.detail


def test_without_rds_ca_bundle_the_shipped_rds_bundle_is_trusted_and_nothing_else(
    serving: Callable[[Serve], int], untrusted: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RDS_CA_BUNDLE", raising=False)
    port = serving(postgres_tls_only(untrusted.server))

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "unable to get local issuer certificate" in result.detail


def test_the_shipped_bundle_is_aws_s_rds_root_cas() -> None:
    text = RDS_CA_BUNDLE_FILE.read_text()
    stats = ssl.create_default_context(cafile=str(RDS_CA_BUNDLE_FILE)).cert_store_stats()

    assert text.startswith("AWS's RDS certificate bundle (global-bundle.pem")
    assert stats["x509_ca"] == text.count("-----BEGIN CERTIFICATE-----") >= 100
    decoded = json.dumps(ssl.create_default_context(cafile=str(RDS_CA_BUNDLE_FILE)).get_ca_certs())
    assert "Amazon RDS us-east-1 Root CA RSA2048 G1" in decoded and "Amazon RDS eu-west-1 Root CA ECC384 G1" in decoded


def test_a_bundle_that_cannot_be_read_fails_at_tls_with_a_sentence(
    serving: Callable[[Serve], int], trusted: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RDS_CA_BUNDLE", str(tmp_path / "missing.pem"))
    port = serving(postgres_tls_only(trusted.server))

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5)

    assert not result.reachable and result.stage == "tls"
    assert result.detail.startswith(f"the RDS certificate bundle {tmp_path / 'missing.pem'} cannot be used")


def test_a_postgresql_server_without_tls_is_reachable_and_says_so(serving: Callable[[Serve], int]) -> None:
    port = serving(FakePostgres(tls=None).serve)

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5)

    assert result.reachable and result.detail == NO_TLS


def test_something_else_than_postgresql_fails_at_tls(serving: Callable[[Serve], int]) -> None:
    def answer_e(connection: socket.socket) -> None:
        connection.recv(8)
        connection.sendall(b"E")

    port = serving(answer_e)

    result = probe(Target(HOST, port, "aurora-postgresql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "not a PostgreSQL server" in result.detail


def test_a_mysql_server_with_a_trusted_certificate_completes_the_handshake(
    serving: Callable[[Serve], int], trusted: Authority
) -> None:
    port = serving(mysql(0x0800 | 0x0200 | 0x8000, trusted.server))

    result = probe(Target(HOST, port, "aurora-mysql"), timeout=5)

    assert result.reachable and result.detail.startswith("TLS handshake done")


def test_a_mysql_server_with_an_untrusted_certificate_fails_at_tls(
    serving: Callable[[Serve], int], trusted: Authority, untrusted: Authority
) -> None:
    port = serving(mysql(0x0800 | 0x0200 | 0x8000, untrusted.server))

    result = probe(Target(HOST, port, "aurora-mysql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "not one the RDS certificate authorities" in result.detail


def test_a_mysql_server_without_tls_is_reachable_but_never_logged_in_to(serving: Callable[[Serve], int]) -> None:
    port = serving(mysql(0x0200 | 0x8000))
    read: list[str] = []

    def reader(arn: str) -> tuple[str, str]:
        read.append(arn)
        return "admin", "secret"

    reachable = probe(Target(HOST, port, "aurora-mysql"), timeout=5)
    with_secret = probe(Target(HOST, port, "aurora-mysql", "arn:secret"), timeout=5, read_secret=reader)

    assert reachable.reachable and reachable.detail == NO_TLS
    assert with_secret == ProbeResult(False, "login", NO_TLS_FOR_LOGIN) and read == []


def test_a_server_that_hangs_up_fails_at_tls(serving: Callable[[Serve], int]) -> None:
    port = serving(lambda connection: None)

    result = probe(Target(HOST, port, "aurora-mysql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "closed the connection" in result.detail


def test_a_secret_that_cannot_be_read_fails_at_login(serving: Callable[[Serve], int], trusted: Authority) -> None:
    port = serving(postgres_tls_only(trusted.server))

    def no_secret(_arn: str) -> tuple[str, str]:
        raise PermissionError("AccessDenied")

    result = probe(Target(HOST, port, "aurora-postgresql", "arn:secret"), timeout=5, read_secret=no_secret)

    assert not result.reachable and result.stage == "login" and "AccessDenied" in result.detail
