"""Settings read from the function's environment, each with a default (nothing needs configuring)."""

from __future__ import annotations

import os

from aurora_clone.pool.slots import CLONE_SLOT_LIMIT


def clone_slot_limit() -> int:
    """``CLONE_SLOT_LIMIT``: clone slots per cluster the tool uses, 1-15 (Aurora's 15 when unset)."""
    written = os.environ.get("CLONE_SLOT_LIMIT", "").strip()
    if not written:
        return CLONE_SLOT_LIMIT
    if not written.isdigit() or not 1 <= int(written) <= CLONE_SLOT_LIMIT:
        raise ValueError(f"CLONE_SLOT_LIMIT must be a whole number from 1 to 15, got '{written}'.")
    return int(written)


def connection_check_function() -> str | None:
    """``CONNECTION_CHECK_FUNCTION``: the connection check's function (set by the template when its VPC
    parameters are given); None when unset: clones answer once RDS reports them available."""
    return os.environ.get("CONNECTION_CHECK_FUNCTION", "").strip() or None
