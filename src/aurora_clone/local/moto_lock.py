"""``LOCK``: the one lock over moto's objects, which are not thread-safe, so that the world's ticker thread and
its threaded server can share them. ``RdsRules.tick`` and the rules' patches of moto's RDS and EventBridge
hold it (``locked`` wraps a patch so that it does), as does whatever else reads or resets moto's state while
the world runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

LOCK = threading.RLock()
"""Held by the rules' patches and by ``RdsRules.tick``: moto's objects are not thread-safe."""


def locked(wrapper: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[Callable[..., Any]], Any]:
    """``wrapper`` applied to moto's original, with the replacement holding ``LOCK``."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        replacement = wrapper(original)

        def with_lock(*args: Any, **kwargs: Any) -> Any:
            with LOCK:
                return replacement(*args, **kwargs)

        return with_lock

    return make
