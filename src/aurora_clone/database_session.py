"""A login to a clone as its master user over the engines' maintained drivers (pg8000 with scramp for
PostgreSQL, PyMySQL for MySQL), for the in-VPC function: the connection check's ``SELECT 1`` and the
prepare scripts (``run_script``).

Both logins travel over TLS verified with the context given (RDS's CA bundle, ``probe.verifying_context``):
each driver asks for TLS the way the engine does and refuses a server that offers none before sending the
login. PostgreSQL's login is SCRAM only (pg8000 binds it to the TLS channel when the server offers
SCRAM-SHA-256-PLUS): a server asking for the password in clear text or as an MD5 hash is refused before
anything is sent, and one that ends the exchange without proving it knows the password is refused too.
"""

from __future__ import annotations

import contextlib
import ssl
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aurora_clone.prepare_script import Statement, mysql_error, postgres_error

SCRAM_ONLY = "the check only logs in with SCRAM-SHA-256 (it never sends the password itself)"
POSTGRES_DATABASE = "postgres"  # every Aurora PostgreSQL cluster has it; the master user owns it


class LoginRefusedError(Exception):
    """The login was refused: by the server (its own message), or by the check (the server asked for more
    than the check gives)."""


@dataclass(frozen=True)
class Endpoint:
    """Where to log in: a cluster's writer endpoint, port and engine, as RDS reports them."""

    host: str
    port: int
    engine: str

    @property
    def is_postgresql(self) -> bool:
        return self.engine.endswith("postgresql")


class Session(Protocol):
    """One logged-in connection: ``rows(statement)`` runs a statement and returns its rows; ``run_script``
    runs a script's statements in order."""

    def rows(self, statement: str) -> list[Sequence[Any]]: ...

    def run_script(self, statements: Sequence[Statement], seconds_left: Callable[[], float]) -> ScriptRun: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ScriptRun:
    """How a script ended: ``ok``, or the sentence saying which statement failed and why (never row values).
    ``ran``: the statements that completed."""

    ok: bool
    ran: int
    detail: str = ""


def _at(statement: Statement) -> str:
    return f"statement {statement.number} (line {statement.line})"


def _out_of_time(statement: Statement, seconds: float) -> str:
    return f"{_at(statement)} did not finish in time: the script may run for {seconds:.0f} s in all"


def open_session(endpoint: Endpoint, user: str, password: str, context: ssl.SSLContext, timeout: float) -> Session:
    """Log in to ``endpoint`` as ``user`` over TLS verified with ``context``; ``timeout``: for the connection
    and for each answer after it."""
    if endpoint.is_postgresql:
        return _PostgresSession(endpoint, user, password, context, timeout)
    return _MysqlSession(endpoint, user, password, context, timeout)


def _scram_connection_class() -> type:
    """pg8000's connection, its authentication narrowed to SCRAM (imported here: only the in-VPC function
    and its tests load the driver)."""
    import pg8000.native
    from scramp import ScramException
    from scramp.core import ClientStage

    class ScramOnlyConnection(pg8000.native.Connection):  # type: ignore[misc]
        def handle_AUTHENTICATION_REQUEST(self, data: bytes, context: Any) -> None:
            code = struct.unpack("!i", data[:4])[0]
            if code == 3:  # AuthenticationCleartextPassword
                raise LoginRefusedError(f"the server asks for the password in clear text; {SCRAM_ONLY}")
            if code == 5:  # AuthenticationMD5Password
                raise LoginRefusedError(f"the server asks for an MD5 hash of the password; {SCRAM_ONLY}")
            if (
                code == 0
                and getattr(self, "auth", None) is not None
                and self.auth.stage != ClientStage.set_server_final
            ):
                raise LoginRefusedError("the server ended the SCRAM exchange without proving it knows the password")
            try:
                super().handle_AUTHENTICATION_REQUEST(data, context)
            except pg8000.native.InterfaceError as error:
                raise LoginRefusedError(
                    f"the server asks for an authentication this check does not speak: {error}"
                ) from None
            except ScramException as error:  # a signature or nonce that is not the exchange's
                raise LoginRefusedError(
                    f"the server's SCRAM signature is wrong: it does not know the password ({error})"
                ) from None

    return ScramOnlyConnection


class _PostgresSession:
    def __init__(self, endpoint: Endpoint, user: str, password: str, context: ssl.SSLContext, timeout: float):
        import pg8000.native

        try:
            self._connection = _scram_connection_class()(
                user,
                host=endpoint.host,
                port=endpoint.port,
                database=POSTGRES_DATABASE,
                password=password,
                ssl_context=context,
                timeout=timeout,
            )
        except pg8000.native.DatabaseError as error:
            raise LoginRefusedError(postgres_message(error)) from None
        except pg8000.native.InterfaceError as error:
            raise LoginRefusedError(_interface_said(error)) from error

    def rows(self, statement: str) -> list[Sequence[Any]]:
        return list(self._connection.run(statement) or [])

    def run_script(self, statements: Sequence[Statement], seconds_left: Callable[[], float]) -> ScriptRun:
        """All statements in one transaction: committed when every one succeeded, else nothing of it is kept.
        Each runs with ``statement_timeout`` set to the time left, so the server itself stops a statement
        that would outlast it."""
        import pg8000.native

        allowed = seconds_left()
        ran = 0
        try:
            self._connection.run("BEGIN")
            for statement in statements:
                left = seconds_left()
                if left <= 0:
                    return ScriptRun(False, ran, _out_of_time(statement, allowed))
                self._connection.run(f"SET LOCAL statement_timeout = {max(1, int(left * 1000))}")
                try:
                    self._connection.run(statement.text)
                except pg8000.native.DatabaseError as error:
                    fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
                    if fields.get("C") == "57014":  # query_canceled: the statement_timeout above
                        return ScriptRun(False, ran, _out_of_time(statement, allowed))
                    return ScriptRun(False, ran, f"{_at(statement)} failed: {postgres_error(fields)}")
                ran += 1
            self._connection.run("COMMIT")
        except pg8000.native.InterfaceError as error:
            return ScriptRun(False, ran, f"the connection was lost after {ran} statements: {_interface_said(error)}")
        except TimeoutError:
            return ScriptRun(False, ran, f"the server stopped answering after {ran} statements")
        return ScriptRun(True, ran)

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection is gone either way
            self._connection.close()


def postgres_message(error: Exception) -> str:
    """The server's message of a pg8000 error: its ``M`` field only, never ``D`` (the detail, which can hold
    row values)."""
    fields = error.args[0] if error.args and isinstance(error.args[0], dict) else {}
    return str(fields.get("M") or "the server refused")


def _interface_said(error: Exception) -> str:
    said = str(error)
    if "refuses SSL" in said:
        return "the server offers no TLS; the check never sends credentials in clear"
    return said


class _MysqlSession:
    def __init__(self, endpoint: Endpoint, user: str, password: str, context: ssl.SSLContext, timeout: float):
        import pymysql

        # An SSLContext as ``ssl``: PyMySQL requires TLS (it refuses a server without it before sending the
        # login) and verifies the certificate and host name with this context.
        self._connection = pymysql.connect(
            host=endpoint.host,
            port=endpoint.port,
            user=user,
            password=password,
            connect_timeout=max(1, int(timeout)),
            read_timeout=max(1, int(timeout)),
            write_timeout=max(1, int(timeout)),
            ssl=context,
            autocommit=True,
        )

    def rows(self, statement: str) -> list[Sequence[Any]]:
        with self._connection.cursor() as cursor:
            cursor.execute(statement)
            return list(cursor.fetchall() or [])

    def run_script(self, statements: Sequence[Statement], seconds_left: Callable[[], float]) -> ScriptRun:
        """The statements in one transaction, as far as MySQL keeps one (a DDL statement commits what came
        before it): committed when every one succeeded, else rolled back. The socket's read timeout is the
        time left, so a statement that would outlast it ends the run."""
        import pymysql

        allowed = seconds_left()
        ran = 0
        try:
            self._connection.begin()
            for statement in statements:
                left = seconds_left()
                if left <= 0:
                    return ScriptRun(False, ran, _out_of_time(statement, allowed))
                self._connection._read_timeout = max(1, int(left))  # PyMySQL reads it before each answer
                try:
                    with self._connection.cursor() as cursor:
                        cursor.execute(statement.text)
                except pymysql.err.OperationalError as error:
                    code = int(error.args[0]) if error.args else 0
                    if code == 2013:  # lost the connection during the query: the read timeout above
                        return ScriptRun(False, ran, _out_of_time(statement, allowed))
                    self._rollback()
                    return ScriptRun(False, ran, f"{_at(statement)} failed: {mysql_error(code, str(error.args[-1]))}")
                except pymysql.err.MySQLError as error:
                    code = int(error.args[0]) if error.args and isinstance(error.args[0], int) else 0
                    self._rollback()
                    return ScriptRun(False, ran, f"{_at(statement)} failed: {mysql_error(code, str(error.args[-1]))}")
                ran += 1
            self._connection.commit()
        except OSError:  # TimeoutError included
            return ScriptRun(False, ran, f"the server stopped answering after {ran} statements")
        return ScriptRun(True, ran)

    def _rollback(self) -> None:
        with contextlib.suppress(Exception):
            self._connection.rollback()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # the connection is gone either way
            self._connection.close()
