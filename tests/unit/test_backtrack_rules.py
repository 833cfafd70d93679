"""Backtrack as pure rules: the mark written on a rewound clone, the planner's backtrack step, and the checks
a Create and an Update make before asking RDS for anything."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aurora_clone.changes import backtrack_update_problem, creation_problems
from aurora_clone.clone_state import BACKTRACKED_TO_TAG, ClusterView, DesiredClone, InstanceView, backtrack_mark
from aurora_clone.naming import instance_id
from aurora_clone.properties import CloneProperties
from aurora_clone.readiness import Act, Backtrack, Broken, ModifyCluster, Ready, Wait, plan_backtrack, plan_convergence

NOW = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
CREATED = NOW - timedelta(hours=2)
CLONE = "my-clone"
HOUR = 3600


def mark(moment: datetime) -> str:
    return backtrack_mark(moment)


def clone(**changes: Any) -> ClusterView:
    """An available Aurora MySQL clone made two hours ago with a one-hour window, its writer available."""
    view = ClusterView(
        identifier=CLONE,
        status="available",
        engine="aurora-mysql",
        created=CREATED,
        backtrack_window=HOUR,
        earliest_backtrack_time=NOW - timedelta(hours=1),
        instances=(InstanceView(instance_id(CLONE, 1), "available", "db.r6g.large", is_writer=True),),
    )
    return replace(view, **changes)


def goal(to: datetime | None, **changes: Any) -> DesiredClone:
    return DesiredClone(CLONE, "db.r6g.large", 1, backtrack_to=mark(to) if to else None, **changes)


def asked(to: datetime | None = None, window: int | None = HOUR) -> CloneProperties:
    return CloneProperties("prod-db", backtrack_window=window, backtrack_to=to)


# --- backtrack_mark ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "expected"),
    [
        pytest.param(datetime(2026, 11, 22, 10, tzinfo=UTC), "2026-11-22T10:00:00Z", id="whole-second"),
        pytest.param(
            datetime(2026, 11, 22, 10, 0, 0, 1000, tzinfo=UTC), "2026-11-22T10:00:00.001000Z", id="millisecond-kept"
        ),
        pytest.param(
            datetime(2026, 11, 22, 5, tzinfo=datetime.fromisoformat("2026-11-22T05:00:00-05:00").tzinfo),
            "2026-11-22T10:00:00Z",
            id="offset-to-utc",
        ),
    ],
)
def test_backtrack_mark_utc_with_fraction_kept(moment: datetime, expected: str) -> None:
    assert backtrack_mark(moment) == expected


def test_backtrack_mark_naive_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        backtrack_mark(datetime(2026, 11, 22, 10))


# --- plan_backtrack / plan_convergence -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "cluster", "expected"),
    [
        pytest.param(None, clone(), None, id="no-backtrack-asked"),
        pytest.param(
            NOW - timedelta(minutes=30),
            clone(tags={BACKTRACKED_TO_TAG: mark(NOW - timedelta(minutes=30))}),
            None,
            id="already-asked-for",
        ),
        pytest.param(
            NOW - timedelta(minutes=30),
            clone(),
            Act((Backtrack(mark(NOW - timedelta(minutes=30))),), ""),
            id="within-window",
        ),
        pytest.param(
            NOW - timedelta(minutes=30),
            clone(tags={BACKTRACKED_TO_TAG: mark(NOW - timedelta(minutes=40))}),
            Act((Backtrack(mark(NOW - timedelta(minutes=30))),), ""),
            id="other-time-than-last",
        ),
        pytest.param(NOW + timedelta(seconds=1), clone(), Wait(""), id="still-ahead"),
        pytest.param(NOW - timedelta(hours=1, seconds=1), clone(), Broken(""), id="before-window"),
        pytest.param(NOW - timedelta(minutes=1), clone(backtrack_window=0), Broken(""), id="backtracking-off"),
        pytest.param(
            CREATED - timedelta(seconds=5),
            clone(earliest_backtrack_time=CREATED),
            Act((Backtrack(mark(CREATED - timedelta(seconds=5)), to_earliest=True),), ""),
            id="before-creation-window-reaching-it",
        ),
        pytest.param(CREATED - timedelta(seconds=5), clone(), Broken(""), id="before-creation-window-moved-on"),
        pytest.param(
            CREATED, clone(earliest_backtrack_time=CREATED), Act((Backtrack(mark(CREATED), True),), ""), id="creation"
        ),
    ],
)
def test_plan_backtrack_step(to: datetime | None, cluster: ClusterView, expected: Act | Wait | Broken | None) -> None:
    step = plan_backtrack(goal(to), cluster, NOW)

    if expected is None:
        assert step is None
    elif isinstance(expected, Act):
        assert isinstance(step, Act)
        assert step.actions == expected.actions
    else:
        assert type(step) is type(expected)
        assert step is not None and mark(to) in step.why  # type: ignore[arg-type]


def test_plan_backtrack_without_clock_does_not_wait() -> None:
    step = plan_backtrack(goal(NOW - timedelta(minutes=1)), clone(), None)

    assert isinstance(step, Act)


def test_converge_backtrack_only_after_instances_available() -> None:
    creating = clone(instances=(InstanceView(instance_id(CLONE, 1), "creating", "db.r6g.large", is_writer=True),))

    step = plan_convergence(goal(NOW - timedelta(minutes=5)), creating, NOW)

    assert isinstance(step, Wait)
    assert "creating" in step.why


@pytest.mark.parametrize("status", ["backtracking", "modifying"])
def test_converge_backtrack_asked_cluster_busy_waits(status: str) -> None:
    to = NOW - timedelta(minutes=5)
    busy = clone(status=status, tags={BACKTRACKED_TO_TAG: mark(to)})

    step = plan_convergence(goal(to), busy, NOW)

    assert isinstance(step, Wait)
    assert status in step.why


def test_converge_backtrack_done_ready() -> None:
    to = NOW - timedelta(minutes=5)

    assert plan_convergence(goal(to), clone(tags={BACKTRACKED_TO_TAG: mark(to)}), NOW) == Ready()


def test_converge_backtrack_due_acts() -> None:
    to = NOW - timedelta(minutes=5)

    step = plan_convergence(goal(to), clone(), NOW)

    assert isinstance(step, Act)
    assert step.actions == (Backtrack(mark(to)),)


@pytest.mark.parametrize(
    ("window", "current", "expected"),
    [
        pytest.param(7200, HOUR, ModifyCluster(backtrack_window=7200), id="longer"),
        pytest.param(0, HOUR, ModifyCluster(backtrack_window=0), id="turned-off"),
        pytest.param(HOUR, HOUR, None, id="same"),
        pytest.param(None, HOUR, None, id="unset-left-as-is"),
        pytest.param(HOUR, 0, None, id="cannot-turn-on-in-place"),
    ],
)
def test_converge_backtrack_window_change(window: int | None, current: int, expected: ModifyCluster | None) -> None:
    step = plan_convergence(goal(None, backtrack_window=window), clone(backtrack_window=current), NOW)

    if expected is None:
        assert step == Ready()
    else:
        assert isinstance(step, Act)
        assert step.actions == (expected,)


# --- creation_problems (backtrack) ---------------------------------------------------------------------------------

MYSQL = ClusterView("prod-db", "available", "aurora-mysql")
POSTGRES = ClusterView("pg-db", "available", "aurora-postgresql")
DEADLINE = NOW + timedelta(hours=1)


@pytest.mark.parametrize(
    ("properties", "source", "words"),
    [
        pytest.param(asked(), POSTGRES, "only for Aurora MySQL", id="window-postgres"),
        pytest.param(asked(NOW + timedelta(minutes=5)), POSTGRES, "aurora-postgresql", id="time-postgres"),
        pytest.param(asked(NOW - timedelta(seconds=1)), MYSQL, "before this clone exists", id="just-before-now"),
        pytest.param(asked(NOW - timedelta(days=1)), MYSQL, "update", id="yesterday-says-what-to-do"),
        pytest.param(asked(DEADLINE + timedelta(seconds=1)), MYSQL, "ServiceTimeout", id="after-deadline"),
    ],
)
def test_creation_backtrack_refused(properties: CloneProperties, source: ClusterView, words: str) -> None:
    problems = creation_problems(properties, source, NOW, DEADLINE)

    assert any(words in problem for problem in problems), problems


@pytest.mark.parametrize(
    "properties",
    [
        pytest.param(asked(None), id="window-only"),
        pytest.param(asked(None, window=0), id="window-zero"),
        pytest.param(asked(NOW), id="now"),
        pytest.param(asked(DEADLINE), id="deadline"),
        pytest.param(CloneProperties("prod-db"), id="nothing"),
    ],
)
def test_creation_backtrack_accepted(properties: CloneProperties) -> None:
    assert creation_problems(properties, MYSQL, NOW, DEADLINE) == []


def test_creation_window_zero_on_postgresql_accepted() -> None:
    assert creation_problems(asked(None, window=0), POSTGRES, NOW, DEADLINE) == []


# --- backtrack_update_problem --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("to", "cluster", "words"),
    [
        pytest.param(NOW - timedelta(hours=1, seconds=1), clone(), "earliest time", id="before-window"),
        pytest.param(
            CREATED - timedelta(minutes=1), clone(earliest_backtrack_time=CREATED), "earliest", id="pre-clone"
        ),
        pytest.param(NOW + timedelta(minutes=1), clone(), "in the future", id="future"),
        pytest.param(NOW - timedelta(minutes=1), clone(backtrack_window=0), "without backtracking", id="off"),
        pytest.param(NOW - timedelta(minutes=1), clone(engine="aurora-postgresql"), "Aurora MySQL", id="postgres"),
    ],
)
def test_update_backtrack_refused(to: datetime, cluster: ClusterView, words: str) -> None:
    problem = backtrack_update_problem(asked(to), cluster, NOW)

    assert problem is not None
    assert words in problem
    assert mark(to) in problem


@pytest.mark.parametrize(
    ("to", "cluster"),
    [
        pytest.param(None, clone(), id="no-backtrack"),
        pytest.param(NOW - timedelta(minutes=30), clone(), id="within-window"),
        pytest.param(NOW, clone(), id="now"),
        pytest.param(NOW - timedelta(hours=1), clone(), id="earliest-itself"),
        pytest.param(
            NOW - timedelta(days=2),
            clone(tags={BACKTRACKED_TO_TAG: mark(NOW - timedelta(days=2))}),
            id="already-applied-long-ago",
        ),
    ],
)
def test_update_backtrack_accepted(to: datetime | None, cluster: ClusterView) -> None:
    assert backtrack_update_problem(asked(to), cluster, NOW) is None
