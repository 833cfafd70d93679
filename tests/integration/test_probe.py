"""The connection check's probe (aurora_clone.probe) against servers on loopback that speak the start of
PostgreSQL's and MySQL's protocols: TCP, the engine's way of asking for TLS, the handshake."""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aurora_clone.connection_check import ProbeRequest
from aurora_clone.local.world import write_certificate
from aurora_clone.probe import NO_TLS, POSTGRES_SSL_REQUEST, handler, probe

Serve = Callable[[socket.socket], None]


@pytest.fixture
def tls_server_context(tmp_path: Path) -> ssl.SSLContext:
    cert, key = write_certificate(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context


@pytest.fixture
def serving() -> Iterator[Callable[[Serve], int]]:
    """Start a one-connection server running ``serve``; its port."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def start(serve: Serve) -> int:
        listener = socket.create_server(("127.0.0.1", 0))
        sockets.append(listener)

        def run() -> None:
            connection, _ = listener.accept()
            with connection, contextlib.suppress(OSError, ssl.SSLError):  # the probe may hang up first
                serve(connection)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return int(listener.getsockname()[1])

    yield start
    for listener in sockets:
        listener.close()
    for thread in threads:
        thread.join(5)


def postgres(answer: bytes, context: ssl.SSLContext | None = None) -> Serve:
    def serve(connection: socket.socket) -> None:
        assert connection.recv(8) == POSTGRES_SSL_REQUEST
        connection.sendall(answer)
        if context is not None:
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


def test_nothing_listening_fails_at_tcp() -> None:
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-postgresql"), timeout=1)

    assert not result.reachable and result.stage == "tcp"


def test_a_postgresql_server_offering_tls_completes_the_handshake(
    serving: Callable[[Serve], int], tls_server_context: ssl.SSLContext
) -> None:
    port = serving(postgres(b"S", tls_server_context))

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-postgresql"), timeout=5)

    assert result.reachable and result.stage == "tls" and result.detail.startswith("TLS handshake done (TLS")


def test_a_postgresql_server_without_tls_is_reachable_and_says_so(serving: Callable[[Serve], int]) -> None:
    port = serving(postgres(b"N"))

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-postgresql"), timeout=5)

    assert result.reachable and result.detail == NO_TLS


def test_something_else_than_postgresql_fails_at_tls(serving: Callable[[Serve], int]) -> None:
    port = serving(postgres(b"E"))

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-postgresql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "not a PostgreSQL server" in result.detail


def test_a_mysql_server_offering_tls_completes_the_handshake(
    serving: Callable[[Serve], int], tls_server_context: ssl.SSLContext
) -> None:
    port = serving(mysql(0x0800 | 0x0200 | 0x8000, tls_server_context))

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-mysql"), timeout=5)

    assert result.reachable and result.detail.startswith("TLS handshake done")


def test_a_mysql_server_without_tls_is_reachable_and_says_so(serving: Callable[[Serve], int]) -> None:
    port = serving(mysql(0x0200 | 0x8000))

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-mysql"), timeout=5)

    assert result.reachable and result.detail == NO_TLS


def test_a_server_that_hangs_up_fails_at_tls(serving: Callable[[Serve], int]) -> None:
    port = serving(lambda connection: None)

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-mysql"), timeout=5)

    assert not result.reachable and result.stage == "tls" and "closed the connection" in result.detail


def test_a_secret_that_cannot_be_read_fails_at_login(serving: Callable[[Serve], int]) -> None:
    port = serving(postgres(b"N"))

    def no_secret(_arn: str) -> tuple[str, str]:
        raise PermissionError("AccessDenied")

    result = probe(ProbeRequest("127.0.0.1", port, "aurora-postgresql", "arn:secret"), timeout=5, read_secret=no_secret)

    assert not result.reachable and result.stage == "login" and "AccessDenied" in result.detail


def test_the_handler_refuses_a_malformed_request_with_a_result() -> None:
    answer = handler({"host": "db", "port": "x", "engine": "aurora-mysql"}, None)

    assert answer["reachable"] is False and answer["stage"] == "probe"
