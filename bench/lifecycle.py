"""Benchmark: N clone stacks created and deleted at once in the embedded AWS world.

Run with ``./build.sh bench`` (not part of the tests). For each N it prints, in unscaled (emulated)
seconds, the median and 95th percentile of:
- create: the clone becoming usable (its writer instance ``available``) -> CloudFormation holding SUCCESS;
- delete: RDS finishing the delete (cluster gone) -> CloudFormation holding the Delete's SUCCESS;
and per clone lifecycle: RDS API calls, Lambda invocations and billed Lambda seconds (real seconds: the
function runs at real speed); and the stacks that failed. RDS durations are drawn from a seeded, realistic
distribution (``Durations.draw``), so runs are comparable.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aurora_clone.local.session import LocalSession

ROOT = Path(__file__).resolve().parent.parent
CLONES_PER_SOURCE = 13  # under Aurora's 15 clone slots, so every stack gets a real copy-on-write clone


@dataclass
class Figures:
    stacks: int
    create_median: float
    create_p95: float
    delete_median: float
    delete_p95: float
    rds_calls_per_clone: float
    invocations_per_clone: float
    billed_seconds_per_clone: float
    failed: int


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return math.nan
    return ordered[min(len(ordered) - 1, math.ceil(fraction * len(ordered)) - 1)]


def run(stacks: int, time_scale: float, seed: int) -> Figures:
    moments: dict[tuple[str, str], float] = {}  # (what, id) -> world time
    lock = threading.Lock()

    def note(key: tuple[str, str], world: Any) -> None:
        with lock:
            moments.setdefault(key, world.world_time())

    with LocalSession(str(ROOT / "template.yaml"), time_scale=time_scale, seed=seed, printer=lambda _: None) as local:
        world = local.world
        sources = [f"prod-db-{n}" for n in range(1, math.ceil(stacks / CLONES_PER_SOURCE) + 1)]
        for source in sources:
            world.create_source_cluster(source)

        def on_rds_event(event: dict[str, Any]) -> None:
            detail = event.get("detail", {})
            if detail.get("EventID") == "RDS-EVENT-0002" and str(detail.get("SourceIdentifier", "")).endswith("-1"):
                note(("usable", detail["SourceIdentifier"].removesuffix("-1")), world)  # writer backed up: usable
            elif detail.get("EventID") == "RDS-EVENT-0171":
                note(("gone", detail["SourceIdentifier"]), world)

        world.subscribe(on_rds_event)
        local.add_sink(lambda line: _on_stack_line(line, note, world))
        calls_before = sum(world.rds_calls.values())
        cloudformation = local.cloudformation
        example = str(ROOT / "example" / "template.yaml")
        clone_of: dict[str, str] = {}
        failed: list[str] = []

        def lifecycle(number: int) -> None:
            name = f"bench-{number}"
            params = {"SourceClusterId": sources[number % len(sources)], "CloneFunctionStackName": "aurora-clone"}
            stack = cloudformation.create_stack(name, example, params)
            if stack.status != "CREATE_COMPLETE":
                failed.append(name)
                return
            clone_of[name] = stack.outputs["ClusterId"]
            if cloudformation.delete_stack(name).status != "DELETE_COMPLETE":
                failed.append(name)

        threads = [threading.Thread(target=lifecycle, args=(n,)) for n in range(stacks)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

        create = [
            moments[("created", s)] - moments[("usable", c)] for s, c in clone_of.items() if ("usable", c) in moments
        ]
        delete = [moments[("deleted", s)] - moments[("gone", c)] for s, c in clone_of.items() if ("gone", c) in moments]
        stats = next(iter(local.lambdas.stats.values())) if local.lambdas else None
        return Figures(
            stacks=stacks,
            create_median=statistics.median(create) if create else math.nan,
            create_p95=percentile(create, 0.95),
            delete_median=statistics.median(delete) if delete else math.nan,
            delete_p95=percentile(delete, 0.95),
            rds_calls_per_clone=(sum(world.rds_calls.values()) - calls_before) / stacks,
            invocations_per_clone=(stats.invocations if stats else 0) / stacks,
            billed_seconds_per_clone=(stats.billed_ms if stats else 0) / 1000 / stacks,
            failed=len(failed),
        )


def _on_stack_line(line: str, note: Any, world: Any) -> None:
    """Stack events as printed: ``HH:MM:SS  stack  logical  type  STATUS  [reason]``."""
    parts = line.split()
    if len(parts) >= 5 and parts[3] == "Custom::AuroraClone":
        if parts[4] == "CREATE_COMPLETE":
            note(("created", parts[1]), world)
        elif parts[4] == "DELETE_COMPLETE":
            note(("deleted", parts[1]), world)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 10, 50])
    parser.add_argument("--time-scale", type=float, default=0.05, help="real seconds per emulated second")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    header = (
        f"{'N':>3}  {'create p50':>10}  {'create p95':>10}  {'delete p50':>10}  {'delete p95':>10}  "
        f"{'RDS calls':>9}  {'invocations':>11}  {'billed s':>8}  {'failed':>6}"
    )
    print(f"time scale {args.time_scale}, seed {args.seed}; latencies in emulated seconds, per-clone figures")
    print(header)
    for stacks in args.stacks:
        f = run(stacks, args.time_scale, args.seed)
        print(
            f"{f.stacks:>3}  {f.create_median:>10.1f}  {f.create_p95:>10.1f}  {f.delete_median:>10.1f}  "
            f"{f.delete_p95:>10.1f}  {f.rds_calls_per_clone:>9.1f}  {f.invocations_per_clone:>11.1f}  "
            f"{f.billed_seconds_per_clone:>8.2f}  {f.failed:>6}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
