"""The connection check's function (``aurora_clone.probe.handler``), placed in the tests' VPC.

Given a writer endpoint (``connection_check.ProbeRequest``) it opens a TCP connection, asks the server for
TLS the way its engine's clients do (PostgreSQL's SSLRequest, MySQL's SSL request packet after the
server's greeting) and completes the handshake; with the clone's RDS-managed secret it also logs in as the
master user and runs ``SELECT 1``. The answer says the first stage that failed (``ProbeResult``). The
handshake does not verify the server's certificate: the check is about reachability, and RDS's CA bundle
is not in the Lambda runtime.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import socket
import ssl
import struct
from collections.abc import Callable
from typing import Any

from aurora_clone.connection_check import ProbeRequest, ProbeResult

TIMEOUT_SECONDS = 4.0  # per stage: three stages stay within the invoker's 20-second read timeout
POSTGRES_SSL_REQUEST = struct.pack("!ii", 8, 80877103)
MYSQL_CLIENT_SSL = 0x0800
MYSQL_CLIENT_PROTOCOL_41 = 0x0200
MYSQL_CLIENT_SECURE_CONNECTION = 0x8000
MYSQL_MAX_PACKET = 1 << 24
MYSQL_UTF8MB4 = 45
NO_TLS = "the server offers no TLS"

SecretReader = Callable[[str], tuple[str, str]]


def handler(event: Any, _context: Any) -> dict[str, Any]:
    try:
        request = ProbeRequest.from_event(event)
    except ValueError as error:
        return ProbeResult(False, "probe", str(error)).to_payload()
    return probe(request).to_payload()


def probe(
    request: ProbeRequest, *, timeout: float = TIMEOUT_SECONDS, read_secret: SecretReader | None = None
) -> ProbeResult:
    try:
        connection = socket.create_connection((request.host, request.port), timeout)
    except OSError as error:
        return ProbeResult(False, "tcp", _said(error, timeout))
    with connection:
        try:
            tls = _negotiate_tls(connection, request, timeout)
        except (OSError, ValueError) as error:
            return ProbeResult(False, "tls", _said(error, timeout))
    if not request.secret_arn:
        return ProbeResult(True, "tls", tls)
    try:
        user, password = (read_secret or _read_secret)(request.secret_arn)
    except Exception as error:  # any SDK or shape error: the login cannot be tried
        return ProbeResult(False, "login", f"the master secret could not be read: {error}")
    return _log_in(request, user, password, tls != NO_TLS, timeout)


def _negotiate_tls(connection: socket.socket, request: ProbeRequest, timeout: float) -> str:
    """TLS as the engine's clients ask for it; the handshake's protocol version, or NO_TLS when the server
    does not offer it."""
    connection.settimeout(timeout)
    if request.engine.endswith("postgresql"):
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
    with _unverified_tls().wrap_socket(connection, server_hostname=request.host) as secured:
        return f"TLS handshake done ({secured.version()})"


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


def _unverified_tls() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _log_in(request: ProbeRequest, user: str, password: str, tls: bool, timeout: float) -> ProbeResult:
    try:
        if request.engine.endswith("postgresql"):
            rows = _postgres_select_one(request, user, password, timeout)
        else:
            import pymysql

            mysql = pymysql.connect(
                host=request.host,
                port=request.port,
                user=user,
                password=password,
                connect_timeout=int(timeout),
                ssl={"check_hostname": False, "verify_mode": ssl.CERT_NONE} if tls else None,
            )
            try:
                with mysql.cursor() as cursor:
                    cursor.execute("SELECT 1")
                    rows = [[str(value) for value in cursor.fetchone() or ()]]
            finally:
                mysql.close()
    except LoginRefusedError as error:
        return ProbeResult(False, "login", str(error))
    except Exception as error:  # the driver's own errors: refused, reset, timed out, ...
        return ProbeResult(False, "login", f"{type(error).__name__}: {error}")
    if rows != [["1"]]:
        return ProbeResult(False, "query", f"SELECT 1 returned {rows!r}")
    return ProbeResult(True, "query", "logged in as the master user; SELECT 1 returned 1")


class LoginRefusedError(Exception):
    """The server refused the login (its own message)."""


def _postgres_select_one(request: ProbeRequest, user: str, password: str, timeout: float) -> list[list[str]]:
    """Log in (SCRAM-SHA-256, MD5 or cleartext, over TLS when the server offers it) and run SELECT 1; the
    rows as text. PostgreSQL's protocol 3.0, written out: no driver to ship beside the function."""
    connection = socket.create_connection((request.host, request.port), timeout)
    with connection:
        connection.settimeout(timeout)
        connection.sendall(POSTGRES_SSL_REQUEST)
        stream: socket.socket = connection
        if _receive(connection, 1) == b"S":
            stream = _unverified_tls().wrap_socket(connection, server_hostname=request.host)
        startup = b"user\0" + user.encode() + b"\0database\0postgres\0\0"
        stream.sendall(struct.pack("!ii", len(startup) + 8, 196608) + startup)
        _postgres_authenticate(stream, user, password)
        stream.sendall(b"Q" + struct.pack("!i", len(b"SELECT 1\0") + 4) + b"SELECT 1\0")
        rows: list[list[str]] = []
        while True:
            kind, body = _postgres_message(stream)
            if kind == b"D":
                columns, at, row = struct.unpack("!h", body[:2])[0], 2, []
                for _ in range(columns):
                    size = struct.unpack("!i", body[at : at + 4])[0]
                    row.append(body[at + 4 : at + 4 + size].decode() if size >= 0 else "")
                    at += 4 + max(size, 0)
                rows.append(row)
            elif kind == b"Z":
                return rows


def _postgres_authenticate(stream: socket.socket, user: str, password: str) -> None:
    scram: dict[str, str] = {}
    while True:
        kind, body = _postgres_message(stream)
        if kind == b"Z":
            return
        if kind != b"R":
            continue  # parameter status, backend key data, notices
        code = struct.unpack("!i", body[:4])[0]
        if code == 3:  # cleartext
            _postgres_send(stream, b"p", password.encode() + b"\0")
        elif code == 5:  # MD5
            inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
            _postgres_send(stream, b"p", b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0")
        elif code == 10:  # SASL: SCRAM-SHA-256
            if b"SCRAM-SHA-256\0" not in body[4:]:
                raise LoginRefusedError("the server asks for a SASL mechanism other than SCRAM-SHA-256")
            scram["nonce"] = base64.b64encode(secrets.token_bytes(18)).decode()
            first = f"n,,n=,r={scram['nonce']}".encode()
            _postgres_send(stream, b"p", b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first)
        elif code == 11:  # SASL continue: the server's first message
            _postgres_send(stream, b"p", _scram_final(body[4:].decode(), scram["nonce"], password).encode())
        elif code not in (0, 12):  # 0: logged in; 12: the server's signature
            raise LoginRefusedError(f"the server asks for an authentication this check does not speak ({code})")


def _scram_final(server_first: str, client_nonce: str, password: str) -> str:
    fields = dict(part.split("=", 1) for part in server_first.split(","))
    if not fields.get("r", "").startswith(client_nonce):
        raise LoginRefusedError("the server's SCRAM nonce does not extend ours")
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(fields["s"]), int(fields["i"]))
    client_key = hmac.digest(salted, b"Client Key", "sha256")
    without_proof = f"c=biws,r={fields['r']}"
    message = f"n=,r={client_nonce},{server_first},{without_proof}".encode()
    signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
    proof = bytes(key ^ sign for key, sign in zip(client_key, signature, strict=True))
    return f"{without_proof},p={base64.b64encode(proof).decode()}"


def _postgres_send(stream: socket.socket, kind: bytes, body: bytes) -> None:
    stream.sendall(kind + struct.pack("!i", len(body) + 4) + body)


def _postgres_message(stream: socket.socket) -> tuple[bytes, bytes]:
    header = _receive(stream, 5)
    body = _receive(stream, struct.unpack("!i", header[1:])[0] - 4)
    if header[:1] == b"E":  # ErrorResponse: fields of a type byte and a text; M is the message
        fields = {part[:1]: part[1:].decode(errors="replace") for part in body.split(b"\0") if part}
        raise LoginRefusedError(fields.get(b"M", "the server refused"))
    return header[:1], body


def _read_secret(secret_arn: str) -> tuple[str, str]:
    from aurora_clone.aws_clients import aws_client

    value = json.loads(aws_client("secretsmanager").get_secret_value(SecretId=secret_arn)["SecretString"])
    return str(value["username"]), str(value["password"])


def _said(error: BaseException, timeout: float) -> str:
    if isinstance(error, TimeoutError | socket.timeout):
        return f"no answer within {timeout:g} seconds"
    return str(error) or type(error).__name__
