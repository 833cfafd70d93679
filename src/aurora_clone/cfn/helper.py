"""crhelper's CfnResource as the request dispatch, and nothing more.

Kept from crhelper (REFERENCE: crhelper 2.0.12): the ``create``/``update``/``delete`` decorators and the
dispatch of a request to the function registered for its RequestType, and the timer that fires before the
Lambda times out. Not used: its polling (EventBridge rules per request; the request engine wakes requests
up instead), its response sender and its state on the instance (the engine answers from the request's
record, so nothing of a previous invocation can reach an answer), its clients built at import and its
DEBUG root logger (which logged the ResponseURL).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from crhelper.resource_helper import CfnResource

TIMER_MARGIN_SECONDS = 0.5


class RequestDispatch(CfnResource):
    """Runs the function registered for a CloudFormation request's RequestType."""

    def __init__(self, on_timeout: Callable[[dict[str, Any]], None] | None = None) -> None:
        # CfnResource.__init__ is not called: it builds boto3 clients at import and sets the root logger to
        # DEBUG. These are the attributes the inherited decorators and dispatch use.
        self._create_func = self._update_func = self._delete_func = None
        self._poll_create_func = self._poll_update_func = self._poll_delete_func = None
        self._event: dict[str, Any] = {}
        self._on_timeout = on_timeout or (lambda _event: None)

    def __call__(self, event: dict[str, Any], context: Any) -> None:
        self._event = event
        # What crhelper's decorators registered for this RequestType (its _get_func, without the poll variants).
        handle = getattr(self, f"_{str(event.get('RequestType', '')).lower()}_func", None)
        if handle is None:
            raise LookupError(f"no function is registered for {event.get('RequestType')} requests")
        timer = None
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        if remaining is not None:
            timer = threading.Timer(remaining() / 1000 - TIMER_MARGIN_SECONDS, self._on_timeout, args=(event,))
            timer.daemon = True
            timer.start()
        try:
            handle(event, context)
        finally:
            if timer is not None:
                timer.cancel()
