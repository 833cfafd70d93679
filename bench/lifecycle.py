"""Benchmark: N clone stacks created and deleted at once in the embedded AWS world.

Run with ``./build.sh bench`` (not part of the tests). For each N it prints, in emulated seconds, the median
and 95th percentile of:
- create: the clone's writer becoming available (the moment RDS finished it, from its "Finished DB instance
  backup" event's own Date, however late or lost that event is on its way) -> CloudFormation holding SUCCESS;
- delete: RDS finishing the delete (cluster gone, from its event's Date) -> CloudFormation holding SUCCESS;
and per clone lifecycle: RDS API calls, invocations of the clone function (CloudFormation requests, RDS
events and wake-ups together) and its billed seconds (real seconds: the function runs at real speed); the
stacks that failed; and what was left behind once the last wake-ups were consumed (clones, instances,
pending request records, queued wake-ups, rules).

RDS events reach the function as on AWS (``EventDelivery``: lag of median 1 s, 3 % lost, 2 % duplicated,
Describe up to 2 s behind the event) unless told otherwise; ``--all-events-lost`` shows the fallback wake-ups
alone. The default time scale is 1 (real time) with short RDS stages (``--durations short``), so the function's
own run time does not inflate emulated seconds; what the request engine adds does not depend on how long RDS
takes. ``--throttle`` turns RDS's request limit on (300 burst, 12/s).

``--warm K`` keeps a warm pool of K clones (shape ``ci``) per source before the stacks start, and the stacks
ask for it (``WarmPool: ci``); ``green`` is then the figure that matters: request -> CloudFormation holding
SUCCESS, which cold includes the minutes RDS takes. Take it at ``--durations realistic`` with a time scale at
which the function's own run time stays small against the stages: ``--time-scale 0.1`` for cold stacks (minutes
of RDS), 0.25 or more with a warm pool (the claim itself takes seconds of the function's own time). The warm pool is
not counted as left behind: it stays, as it would for the next stacks.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import statistics
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_clone.local.pace import Durations
from aurora_clone.local.session import LocalSession
from aurora_clone.local.throttling import Throttling
from aurora_clone.local.world import EventDelivery

ROOT = Path(__file__).resolve().parent.parent
CLONES_PER_SOURCE = 13  # under Aurora's 15 clone slots, so every stack gets a real copy-on-write clone
SHORT = Durations(
    cluster_creating=5.0,
    full_copy_creating=60.0,
    cluster_backing_up=2.0,
    cluster_modifying=5.0,
    cluster_deleting=5.0,
    backtracking=5.0,
    cluster_other=5.0,
    instance_creating=10.0,
    instance_backing_up=3.0,
    instance_modifying=10.0,
    instance_deleting=5.0,
    instance_other=5.0,
)
DURATIONS = {"short": SHORT, "realistic": Durations()}


WARM_TAG = "aurora-clone:warm-pool"
POOL_PARAMETER = "/aurora-clone/pools"
WARM_FILL_WORLD_SECONDS = 6 * 3600.0
STEADY_WORLD_SECONDS = 30.0


@dataclass
class Figures:
    stacks: int
    green_median: float
    green_p95: float
    from_warm: int
    teardown_median: float
    teardown_p95: float
    create_median: float
    create_p95: float
    delete_median: float
    delete_p95: float
    rds_calls_per_clone: float
    invocations_per_clone: float
    billed_seconds_per_clone: float
    failed: int
    left: int
    leftovers: dict[str, list[str]]
    failures: dict[str, str]  # stack -> CloudFormation's reason


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def run(
    stacks: int,
    time_scale: float,
    seed: int,
    durations: Durations,
    delivery: EventDelivery,
    throttling: Throttling | None,
    warm: int = 0,
    wait_for_deletion: bool = True,
) -> Figures:
    moments: dict[tuple[str, str], float] = {}  # (what, id) -> world time
    lock = threading.Lock()

    def note(key: tuple[str, str], when: float) -> None:
        with lock:
            moments.setdefault(key, when)

    with LocalSession(
        str(ROOT / "template.yaml"),
        time_scale=time_scale,
        durations=durations,
        seed=seed,
        throttling=throttling,
        event_delivery=delivery,
        printer=lambda _: None,
    ) as local:
        world = local.world
        sources = [f"prod-db-{n}" for n in range(1, math.ceil(stacks / CLONES_PER_SOURCE) + 1)]
        for source in sources:
            world.create_source_cluster(source)

        def on_rds_event(event: dict[str, Any]) -> None:
            detail = event.get("detail", {})
            when = world.world_time_at(datetime.datetime.fromisoformat(detail.get("Date", "").replace("Z", "+00:00")))
            identifier = str(detail.get("SourceIdentifier", ""))
            if detail.get("EventID") == "RDS-EVENT-0002" and identifier.endswith("-1"):
                note(("usable", identifier.removesuffix("-1")), when)  # the writer is backed up: usable
            elif detail.get("EventID") == "RDS-EVENT-0171":
                note(("gone", identifier), when)

        world.watch_rds_events(on_rds_event)
        if warm:
            fill_warm_pools(local, sources, warm, stacks)
        local.add_sink(lambda line: _on_stack_line(line, note, world.world_time()))
        calls_before = sum(world.rds_calls.values())
        found = Lifecycles(local)

        def lifecycle(number: int) -> None:
            params = {"SourceClusterId": sources[number % len(sources)], "CloneFunctionStackName": "aurora-clone"}
            if warm:
                params["WarmPool"] = "ci"
            if not wait_for_deletion:
                params["WaitForDeletion"] = "false"
            found.run(f"bench-{number}", params)

        threads = [threading.Thread(target=lifecycle, args=(n,)) for n in range(stacks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        rds_calls = sum(world.rds_calls.values()) - calls_before
        # Waits for the last (stale) wake-ups, which the function's invocations count; it looks at RDS itself,
        # so the RDS calls were counted before.
        if warm:
            # The warm pool stays: wait for what the stacks left (deletions answered early still under way).
            world.wait_until(lambda: not any(pool_kept(local.leftovers(), local).values()), WARM_FILL_WORLD_SECONDS)
            leftovers = pool_kept(local.leftovers(), local)
        else:
            leftovers = local.settled_leftovers(world_seconds=300)
        stats = local.lambdas.stats.get(local.clone_function_name()) if local.lambdas else None

        create = [
            moments[("created", s)] - moments[("usable", c)]
            for s, c in found.clone_of.items()
            if ("usable", c) in moments
        ]
        delete = [
            moments[("deleted", s)] - moments[("gone", c)] for s, c in found.clone_of.items() if ("gone", c) in moments
        ]
        return Figures(
            stacks=stacks,
            green_median=statistics.median(found.green) if found.green else math.nan,
            green_p95=percentile(found.green, 0.95),
            from_warm=len(found.claimed),
            teardown_median=statistics.median(found.teardown) if found.teardown else math.nan,
            teardown_p95=percentile(found.teardown, 0.95),
            create_median=statistics.median(create) if create else math.nan,
            create_p95=percentile(create, 0.95),
            delete_median=statistics.median(delete) if delete else math.nan,
            delete_p95=percentile(delete, 0.95),
            rds_calls_per_clone=rds_calls / stacks,
            invocations_per_clone=(stats.invocations if stats else 0) / stacks,
            billed_seconds_per_clone=(stats.billed_ms if stats else 0) / 1000 / stacks,
            failed=len(found.failed),
            failures=dict(found.failed),
            left=sum(len(names) for names in leftovers.values()),
            leftovers=leftovers,
        )


class Lifecycles:
    """Stacks created, then deleted, each in its own thread; what each took, in world seconds."""

    def __init__(self, local: LocalSession) -> None:
        self.local = local
        self.lock = threading.Lock()
        self.clone_of: dict[str, str] = {}
        self.green: list[float] = []  # Create request -> SUCCESS
        self.teardown: list[float] = []  # Delete request -> SUCCESS
        self.claimed: list[str] = []
        self.failed: list[tuple[str, str]] = []  # (stack, CloudFormation's reason)

    def run(self, name: str, params: dict[str, str]) -> None:
        world, cloudformation = self.local.world, self.local.cloudformation
        example = str(ROOT / "example" / "template.yaml")
        asked = world.world_time()
        stack = cloudformation.create_stack(name, example, params)
        if stack.status != "CREATE_COMPLETE":
            with self.lock:
                self.failed.append((name, f"{stack.status}: {stack.status_reason}"))
            return
        with self.lock:
            self.green.append(world.world_time() - asked)
            if stack.outputs.get("FromWarmPool") == "true":
                self.claimed.append(name)
            self.clone_of[name] = stack.outputs["ClusterId"]
        asked = world.world_time()
        deletion = cloudformation.delete_stack(name)
        with self.lock:
            if deletion.status == "DELETE_COMPLETE":
                self.teardown.append(world.world_time() - asked)
            else:
                self.failed.append((name, f"{deletion.status}: {deletion.status_reason}"))


def warm_clones(local: LocalSession, *, ready_only: bool) -> list[str]:
    """The unclaimed warm clones in the world (those ready only: available, each instance available)."""
    rds = local.world.client("rds")
    statuses = {i["DBInstanceIdentifier"]: i["DBInstanceStatus"] for i in rds.describe_db_instances()["DBInstances"]}
    found = []
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        if not any(tag["Key"] == WARM_TAG for tag in cluster["TagList"]):
            continue
        members = {statuses.get(m["DBInstanceIdentifier"], "gone") for m in cluster["DBClusterMembers"]}
        if not ready_only or (cluster["Status"] == "available" and members == {"available"}):
            found.append(cluster["DBClusterIdentifier"])
    return found


def _pool_function(local: LocalSession) -> str:
    assert local.function_stack is not None
    return str(local.function_stack.resources["PoolFunction"].attributes["Arn"])


def fill_warm_pools(local: LocalSession, sources: Sequence[str], depth: int, stacks: int) -> None:
    """Write the pool document (``depth`` warm clones per source; the slots the cold stacks need kept free)
    and run the pool function once per source; its RDS events then finish the warm clones."""
    per_source = math.ceil(stacks / len(sources))
    cold = max(1, per_source - depth)
    pools = [
        {
            "source": source,
            "spareSlots": cold,
            "warm": [{"name": "ci", "count": depth, "properties": {"InstanceClass": "db.r6g.large"}}],
        }
        for source in sources
    ]
    local.world.client("ssm").put_parameter(
        Name=POOL_PARAMETER, Value=json.dumps({"pools": pools}), Type="String", Overwrite=True
    )
    assert local.lambdas is not None
    for source in sources:
        local.lambdas.invoke(_pool_function(local), {"refill": source})
    wanted = depth * len(sources)
    # Ready when seen ready for STEADY_WORLD_SECONDS: Describe may lag what RDS did by a few seconds.
    ready_since: list[float] = []

    def filled() -> bool:
        if len(warm_clones(local, ready_only=True)) < wanted:
            ready_since.clear()
            return False
        ready_since[:1] = ready_since[:1] or [local.world.world_time()]
        return local.world.world_time() - ready_since[0] >= STEADY_WORLD_SECONDS

    if not local.world.wait_until(filled, WARM_FILL_WORLD_SECONDS):
        raise SystemExit(f"the warm pools did not fill: {len(warm_clones(local, ready_only=True))} of {wanted} ready")


def pool_kept(leftovers: dict[str, list[str]], local: LocalSession) -> dict[str, list[str]]:
    """``leftovers`` without what the pool keeps on purpose (its warm clones and the copies it made for them, and
    their instances): what the stacks left behind."""
    rds = local.world.client("rds")
    kept = {
        c["DBClusterIdentifier"]
        for c in rds.describe_db_clusters()["DBClusters"]
        if any(tag["Key"] in (WARM_TAG, "aurora-clone:copy-of") for tag in c["TagList"])
    }
    return {
        kind: [name for name in names if not any(name == k or name.startswith(f"{k}-") for k in kept)]
        if kind in ("clusters", "instances")
        else names
        for kind, names in leftovers.items()
    }


def _on_stack_line(line: str, note: Any, now: float) -> None:
    """Stack events as printed: ``HH:MM:SS  stack  logical  type  STATUS  [reason]``."""
    parts = line.split()
    if len(parts) >= 5 and parts[3] == "Custom::AuroraClone":
        if parts[4] == "CREATE_COMPLETE":
            note(("created", parts[1]), now)
        elif parts[4] == "DELETE_COMPLETE":
            note(("deleted", parts[1]), now)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 10, 50], help="stacks at once (default 1 10 50)")
    parser.add_argument("--time-scale", type=float, default=1.0, help="real seconds per emulated second (1)")
    parser.add_argument("--seed", type=int, default=7, help="seed of every random draw (7)")
    parser.add_argument("--durations", choices=sorted(DURATIONS), default="short", help="RDS stage lengths (short)")
    parser.add_argument("--event-loss", type=float, default=0.03, help="fraction of RDS events lost (0.03)")
    parser.add_argument("--all-events-lost", action="store_true", help="no RDS event arrives: the fallback alone")
    parser.add_argument("--throttle", action="store_true", help="RDS's request limit on: 300 burst, 12/s")
    parser.add_argument("--warm", type=int, default=0, help="warm clones kept per source, claimed by the stacks (0)")
    parser.add_argument("--no-wait-for-deletion", action="store_true", help="the stacks set WaitForDeletion: false")
    args = parser.parse_args(argv)
    loss = 1.0 if args.all_events_lost else args.event_loss
    delivery = EventDelivery(loss=loss, seed=args.seed)
    throttling = Throttling() if args.throttle else None
    print(
        f"time scale {args.time_scale}, seed {args.seed}, {args.durations} RDS stages, events lost {loss:.0%}, "
        f"throttling {'on' if throttling else 'off'}, warm pool {args.warm or 'none'}; latencies in emulated "
        "seconds, per-clone figures"
    )
    columns = (
        "green p50",
        "green p95",
        "warm",
        "teardown p50",
        "teardown p95",
        "create p50",
        "create p95",
        "delete p50",
        "delete p95",
    )
    print(
        "  ".join(["  N", *(f"{c:>10}" for c in columns)])
        + f"  {'RDS calls':>9}  {'invocations':>11}  {'billed s':>8}  {'failed':>6}  {'left':>4}"
    )
    for stacks in args.stacks:
        f = run(
            stacks,
            args.time_scale,
            args.seed,
            DURATIONS[args.durations],
            delivery,
            throttling,
            args.warm,
            wait_for_deletion=not args.no_wait_for_deletion,
        )
        figures = (
            f.green_median,
            f.green_p95,
            f.from_warm,
            f.teardown_median,
            f.teardown_p95,
            f.create_median,
            f.create_p95,
            f.delete_median,
            f.delete_p95,
        )
        print(
            "  ".join([f"{f.stacks:>3}", *(f"{value:>10.1f}" for value in figures)])
            + f"  {f.rds_calls_per_clone:>9.1f}  {f.invocations_per_clone:>11.1f}  "
            f"{f.billed_seconds_per_clone:>8.2f}  {f.failed:>6}  {f.left:>4}",
            flush=True,
        )
        if f.left:
            print(f"     left behind: {f.leftovers}", flush=True)
        for name, reason in sorted(f.failures.items()):
            print(f"     {name} failed: {reason}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
