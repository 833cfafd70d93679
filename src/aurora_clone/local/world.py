"""``LocalAws``: moto as a real HTTPS server on a free loopback port, with its gaps closed.

Every AWS service moto emulates is served on one endpoint (``endpoint_url``) with a self-signed
certificate (``ca_bundle``); ``client_env()`` is the environment a process needs to use it exactly as it
would use AWS (boto3 reads ``AWS_ENDPOINT_URL`` and ``AWS_CA_BUNDLE``; ``SSL_CERT_FILE`` makes the
pre-signed S3 URLs trusted by plain HTTPS clients too).
"""

from __future__ import annotations

import datetime
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import BaseWSGIServer, make_server

REGION = "us-east-1"
ACCOUNT_ID = "123456789012"


def write_certificate(directory: Path) -> tuple[Path, Path]:
    """A self-signed certificate for localhost and 127.0.0.1, valid for a day."""
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
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "localhost.pem", directory / "localhost.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class LocalAws:
    """The emulated AWS, started on enter and stopped (server, threads, files) on exit."""

    def __init__(self, *, time_scale: float = 0.01) -> None:
        self.time_scale = time_scale
        self.region = REGION
        self.account_id = ACCOUNT_ID
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._server: BaseWSGIServer | None = None
        self._thread: threading.Thread | None = None
        self._started = 0.0
        self.endpoint_url = ""
        self.ca_bundle = ""

    def __enter__(self) -> LocalAws:
        self._directory = tempfile.TemporaryDirectory(prefix="aurora-clone-local-")
        cert, key = write_certificate(Path(self._directory.name))
        self.ca_bundle = str(cert)
        app = DomainDispatcherApplication(create_backend_app)
        self._server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=(str(cert), str(key)))
        self.endpoint_url = f"https://localhost:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-aws", daemon=True)
        self._thread.start()
        self._started = time.monotonic()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if self._directory is not None:
            self._directory.cleanup()

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
        }

    def client(self, service: str) -> Any:
        make_client: Any = boto3.client  # any service by name; the stubs only type literal names
        return make_client(
            service,
            region_name=self.region,
            endpoint_url=self.endpoint_url,
            verify=self.ca_bundle,
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def world_time(self) -> float:
        """Emulated seconds since the world started (real seconds divided by the time scale)."""
        return (time.monotonic() - self._started) / self.time_scale

    def to_real(self, world_seconds: float) -> float:
        return world_seconds * self.time_scale
