"""Benchmark: what real PostgreSQL servers cost in the local world (``LocalAws(real_databases=True)``).

Run with ``.venv/bin/python bench/databases.py`` (not part of the tests). For each N it starts a world, makes an
Aurora PostgreSQL source (its server initialized, started and loaded with ``--rows`` rows besides the sample),
then restores N copy-on-write clones of it one after another through the RDS API, and prints, in real seconds:

- source: initializing its data directory (initdb) and starting its server;
- per clone: the copy (a base backup of the running source), the start of its server, and the whole
  RestoreDBClusterToPointInTime call (copy, start and the master user), median and maximum;
- memory of every server at once (the source and N clones, each a postmaster and its background
  processes): the sum of RSS (which counts shared pages once per process, so overstates) and of PSS (shared
  pages divided among the processes sharing them: what the servers really take), and PSS per server;
- stopping the world: every server stopped and every file removed;
- a prepare script masking every row of the loaded table in the first clone (``UPDATE events SET payload =
  ...``), run the way the in-VPC function runs it (``aurora_clone.database_session``: TLS verified, the
  statements in one transaction): its run time.

PSS is read where the system gives it (Linux); elsewhere USS (pages only that process has) is shown instead.
"""

from __future__ import annotations

import argparse
import ssl
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psutil

from aurora_clone.database_session import Endpoint, open_session
from aurora_clone.local.world import LocalAws
from aurora_clone.prepare_script import split_statements

SOURCE = "bench-source"
MASK = "-- every row's payload replaced\nUPDATE events SET payload = md5('masked-' || id::text);\n"


@dataclass
class Figures:
    clusters: int
    source_init: float
    source_start: float
    copy_median: float
    copy_max: float
    start_median: float
    restore_median: float
    restore_max: float
    rss_mb: float
    pss_mb: float
    servers: int
    stop_all: float
    database_mb: float
    mask_seconds: float


def memory_mb(pids: Sequence[int]) -> tuple[float, float]:
    """RSS and PSS (or USS), in MiB, summed over ``pids`` and every process below them."""
    rss = pss = 0
    for pid in pids:
        try:
            top = psutil.Process(pid)
            processes = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
        for process in processes:
            try:
                full = process.memory_full_info()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            rss += full.rss
            pss += getattr(full, "pss", full.uss)
    return rss / 2**20, pss / 2**20


def run(clones: int, rows: int) -> Figures:
    sql = (
        "CREATE TABLE events (id bigint PRIMARY KEY, payload text NOT NULL);\n"
        f"INSERT INTO events SELECT n, md5(n::text) FROM generate_series(1, {rows}) AS n;\n"
    )
    with LocalAws(time_scale=0.001, real_databases=True) as world:
        databases = world.databases
        assert databases is not None
        world.create_source_cluster(SOURCE, engine="aurora-postgresql")
        databases.load_sql(SOURCE, sql)
        source = databases.server(SOURCE)
        if source is None:
            raise SystemExit(databases.describe(SOURCE, "aurora-postgresql"))
        size = _database_mb(world, source.address, source.port)
        rds = world.client("rds")
        restore_seconds = []
        for number in range(clones):
            began = time.monotonic()
            rds.restore_db_cluster_to_point_in_time(
                DBClusterIdentifier=f"bench-clone-{number}",
                SourceDBClusterIdentifier=SOURCE,
                RestoreType="copy-on-write",
                UseLatestRestorableTime=True,
            )
            restore_seconds.append(time.monotonic() - began)
        copies = [server for server in databases.servers.servers() if server.cluster_id != SOURCE]
        rss, pss = memory_mb([server.pid for server in databases.servers.servers() if server.pid])
        servers = len(databases.servers.servers())
        mask_seconds = _mask(world, copies[0])
        stopping = time.monotonic()
    stop_all = time.monotonic() - stopping
    return Figures(
        clusters=clones,
        source_init=source.prepare_seconds,
        source_start=source.start_seconds,
        copy_median=statistics.median(server.prepare_seconds for server in copies),
        copy_max=max(server.prepare_seconds for server in copies),
        start_median=statistics.median(server.start_seconds for server in copies),
        restore_median=statistics.median(restore_seconds),
        restore_max=max(restore_seconds),
        rss_mb=rss,
        pss_mb=pss,
        servers=servers,
        stop_all=stop_all,
        database_mb=size,
        mask_seconds=mask_seconds,
    )


def _mask(world: LocalAws, clone: Any) -> float:
    """Real seconds the masking script takes in ``clone``, logged in as the in-VPC function does."""
    context = ssl.create_default_context(cafile=world.ca_bundle)
    endpoint = Endpoint(clone.address, clone.port, "aurora-postgresql")
    session = open_session(endpoint, clone.credentials.user, clone.credentials.password, context, 600.0)
    try:
        began = time.monotonic()
        run = session.run_script(split_statements(MASK, "aurora-postgresql"), lambda: 600.0)
        took = time.monotonic() - began
    finally:
        session.close()
    if not run.ok:
        raise SystemExit(f"the masking script failed: {run.detail}")
    return took


def _database_mb(world: LocalAws, address: str, port: int) -> float:
    import pg8000.native

    from aurora_clone.local.world import SOURCE_MASTER_PASSWORD, SOURCE_MASTER_USERNAME

    connection = pg8000.native.Connection(
        SOURCE_MASTER_USERNAME, host=address, port=port, password=SOURCE_MASTER_PASSWORD, database="postgres"
    )
    try:
        return float(connection.run("SELECT pg_database_size('postgres')")[0][0]) / 2**20
    finally:
        connection.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clones", type=int, nargs="+", default=[1, 5, 10], help="clones at once (default 1 5 10)")
    parser.add_argument("--rows", type=int, default=100_000, help="rows loaded into the source (default 100000)")
    args = parser.parse_args(argv)
    print(f"real seconds; memory in MiB of every server at once (the source and its clones); {args.rows} rows")
    print(
        f"{'N':>3}  {'db MB':>5}  {'src init':>8}  {'src start':>9}  {'copy p50':>8}  {'copy max':>8}  "
        f"{'start p50':>9}  {'restore p50':>11}  {'restore max':>11}  {'servers':>7}  {'RSS':>6}  {'PSS':>6}  "
        f"{'PSS/server':>10}  {'stop all':>8}  {'mask s':>6}"
    )
    for clones in args.clones:
        f = run(clones, args.rows)
        print(
            f"{f.clusters:>3}  {f.database_mb:>5.1f}  {f.source_init:>8.2f}  {f.source_start:>9.2f}  "
            f"{f.copy_median:>8.2f}  {f.copy_max:>8.2f}  {f.start_median:>9.2f}  {f.restore_median:>11.2f}  "
            f"{f.restore_max:>11.2f}  {f.servers:>7}  {f.rss_mb:>6.0f}  {f.pss_mb:>6.0f}  "
            f"{f.pss_mb / f.servers:>10.1f}  {f.stop_all:>8.2f}  {f.mask_seconds:>6.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
