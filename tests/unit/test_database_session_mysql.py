"""The MySQL side of a prepare run, over PyMySQL's own error types: a failed statement is rolled back and said
without the row's value; a lost read (the time left ran out) says the statement did not finish in time."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from aurora_clone.database_session import _MysqlSession
from aurora_clone.prepare_script import split_statements


class Connection:
    """A PyMySQL connection as the session uses it; ``fail`` maps a statement to the error it raises."""

    def __init__(self, fail: dict[str, Exception]) -> None:
        self.fail = fail
        self.done: list[str] = []
        self._read_timeout = 900

    def begin(self) -> None:
        self.done.append("BEGIN")

    def commit(self) -> None:
        self.done.append("COMMIT")

    def rollback(self) -> None:
        self.done.append("ROLLBACK")

    @contextmanager
    def cursor(self) -> Iterator[Any]:
        connection = self

        class Cursor:
            def execute(self, statement: str) -> None:
                if statement in connection.fail:
                    raise connection.fail[statement]
                connection.done.append(f"{statement} (read timeout {connection._read_timeout})")

        yield Cursor()


def session(connection: Connection) -> _MysqlSession:
    made = _MysqlSession.__new__(_MysqlSession)
    made._connection = connection
    return made


SCRIPT = "UPDATE app.customers SET email = CONCAT('c-', id, '@example.invalid');\nUPDATE app.customers SET id = 1;"


def test_all_statements_run_in_one_transaction_each_with_the_time_left() -> None:
    connection = Connection({})

    run = session(connection).run_script(split_statements(SCRIPT, "aurora-mysql"), lambda: 42.0)

    assert run.ok and run.ran == 2
    assert connection.done[0] == "BEGIN" and connection.done[-1] == "COMMIT"
    assert all("(read timeout 42)" in step for step in connection.done[1:-1])


def test_a_failed_statement_is_rolled_back_and_said_without_the_row_s_value() -> None:
    duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry 'ada@example.com' for key 'customers.PRIMARY'")
    connection = Connection({"UPDATE app.customers SET id = 1": duplicate})

    run = session(connection).run_script(split_statements(SCRIPT, "aurora-mysql"), lambda: 42.0)

    assert not run.ok and run.ran == 1
    assert run.detail == "statement 2 (line 2) failed: Duplicate entry '…' for key '…' (MySQL error 1062)"
    assert connection.done[-1] == "ROLLBACK" and "COMMIT" not in connection.done


def test_a_read_that_outlasts_the_time_left_says_the_statement_did_not_finish() -> None:
    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query (timed out)")
    connection = Connection({"UPDATE app.customers SET id = 1": lost})

    run = session(connection).run_script(split_statements(SCRIPT, "aurora-mysql"), lambda: 42.0)

    assert not run.ok
    assert run.detail.startswith("statement 2 (line 2) did not finish in time")
