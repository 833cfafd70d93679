"""The pool document's limits: spareSlots a typo cannot pass, and no burst of copies the document did not allow."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone.pool.plan import (
    DEFAULT_MAX_NEW_COPIES_PER_RUN,
    MAX_SPARE_SLOTS,
    PoolConfigError,
    PoolPolicy,
    parse_pool_config,
    plan_pool,
)
from tests.unit.pool_factories import NOW, SOURCE_ID, snapshot, source


def problems(pool: dict[str, Any]) -> list[str]:
    with pytest.raises(PoolConfigError) as raised:
        parse_pool_config({"pools": [{"source": SOURCE_ID, **pool}]})
    return raised.value.problems


def test_spare_slots_typo_refused_naming_pool_field_and_why() -> None:
    [problem] = problems({"spareSlots": 3000})

    assert problem.startswith(f"Pool 1 ({SOURCE_ID}): spareSlots 3000 is more than {MAX_SPARE_SLOTS}")
    assert "200 copies would be kept" in problem


def test_spare_slots_at_the_limit_accepted() -> None:
    [policy] = parse_pool_config({"pools": [{"source": SOURCE_ID, "spareSlots": MAX_SPARE_SLOTS}]})

    assert policy.spare_slots == MAX_SPARE_SLOTS
    assert policy.max_new_copies_per_run == DEFAULT_MAX_NEW_COPIES_PER_RUN


@pytest.mark.parametrize("value", [0, 11, "4", 2.5, True, None])
def test_max_new_copies_per_run_out_of_range_refused(value: Any) -> None:
    [problem] = problems({"spareSlots": 30, "maxNewCopiesPerRun": value})

    assert problem.startswith(f"Pool 1 ({SOURCE_ID}): maxNewCopiesPerRun must be a whole number from 1 to 10")


def test_run_needing_more_copies_than_allowed_creates_none_and_says_how_to_allow_it() -> None:
    full_source = snapshot(source(used=15))  # no free slot on the source: 60 slots mean four copies at once

    plan = plan_pool(PoolPolicy(SOURCE_ID, spare_slots=60), full_source, NOW)

    assert plan.copies_to_create == 0
    assert any(
        action.startswith(f"Create no copy: 4 full copies of '{SOURCE_ID}' at once")
        and '"maxNewCopiesPerRun": 4' in action
        for action in plan.actions
    ), plan.actions


def test_run_allowed_by_the_document_creates_them() -> None:
    full_source = snapshot(source(used=15))
    [policy] = parse_pool_config({"pools": [{"source": SOURCE_ID, "spareSlots": 60, "maxNewCopiesPerRun": 4}]})

    assert plan_pool(policy, full_source, NOW).copies_to_create == 4


def test_run_within_the_default_creates_copies() -> None:
    assert plan_pool(PoolPolicy(SOURCE_ID, spare_slots=45), snapshot(source(used=15)), NOW).copies_to_create == 3
