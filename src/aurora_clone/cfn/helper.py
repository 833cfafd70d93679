"""crhelper's CfnResource with its defects (REFERENCE: crhelper 2.0.12) neutralized.

Kept from crhelper: the decorators, the dispatch of create/update/delete and poll_*, the timer that
answers before the Lambda times out. Replaced:
- no clients built at import, no root logger at DEBUG (which logged the ResponseURL): logs go through
  Powertools' JSON Logger at INFO;
- handlers return an ``Outcome`` (Done, Failed, Pending), so "finished now" needs no rule at all, an
  in-place update keeps its id, and a failure always answers with a non-empty id;
- polls use ``PollScheduler`` (short deterministic rule names, compact Input, no Lambda permission);
- every pending request has a deadline from its ServiceTimeout and is answered FAILED before it;
- no sleep before answering a Delete; the answer goes through ``put_response``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger
from crhelper.resource_helper import FAILED, SUCCESS, CfnResource

from aurora_clone.cfn.polling import POLL_KEY, POLL_SECONDS, RULE_KEY, PollScheduler, PollSchedulingError
from aurora_clone.cfn.response import ResponseNotDeliveredError, put_response
from aurora_clone.logs import SERVICE
from aurora_clone.naming import not_created_id
from aurora_clone.outcome import Done, Failed, Outcome, Pending

logger = Logger(service=SERVICE, child=True)

# A poll that could not finish before the next one fires plus this margin answers FAILED now, so the
# answer reaches CloudFormation before its ServiceTimeout does.
DEADLINE_MARGIN_SECONDS = 30


class HardenedCfnResource(CfnResource):
    """A CfnResource whose handlers return Outcomes and whose polls are bounded and cheap."""

    def __init__(
        self,
        scheduler: Callable[[], PollScheduler] = PollScheduler,
        sender: Callable[[str, dict[str, Any]], None] = put_response,
        clock: Callable[[], float] = time.time,
    ) -> None:
        # CfnResource.__init__ is not called: it builds boto3 clients at import and sets the root
        # logger to DEBUG. These are the attributes the inherited methods use.
        self._create_func = self._update_func = self._delete_func = None
        self._poll_create_func = self._poll_update_func = self._poll_delete_func = None
        self._timer: threading.Timer | None = None
        self._init_failed = None
        self._send_response = False
        self._sam_local = None
        self._ssl_verify = None
        self.Status = self.Reason = self.PhysicalResourceId = ""
        self.StackId = self.RequestId = self.LogicalResourceId = self.RequestType = ""
        self.Data: dict[str, Any] = {}
        self.NoEcho = False
        self._event: dict[str, Any] = {}
        self._context: Any = None
        self._response_url = ""
        self._outcome: Outcome | None = None
        self._timed_out = False
        self._scheduler_factory = scheduler
        self._scheduler: PollScheduler | None = None
        self._sender = sender
        self._clock = clock

    # -- crhelper hooks replaced ------------------------------------------------------------------

    def _log_setup(self, event: Any, context: Any) -> None:
        """Logging is Powertools' (set up in the handler); crhelper's would log the ResponseURL."""

    def _wait_for_cwlogs(self, sleep: Any = None) -> None:
        """No 120-second sleep before answering a Delete."""

    def _wrap_function(self, func: Callable[[Any, Any], Any] | None) -> None:
        self._timed_out = False
        try:
            outcome = func(self._event, self._context) if func else None
            if outcome is None:
                raise TypeError("the handler returned no outcome")
        except Exception as error:  # every path answers CloudFormation
            logger.exception("Handler failed")
            outcome = Failed(f"Internal error in Custom::AuroraClone: {error}", self._fallback_id())
        self._outcome = self._enforce_deadline(outcome)

    def _enforce_deadline(self, outcome: Outcome) -> Outcome:
        if not isinstance(outcome, Pending):
            return outcome
        if self._clock() + POLL_SECONDS + DEADLINE_MARGIN_SECONDS < outcome.job.deadline:
            return outcome
        return Failed(
            f"Not finished before the request's ServiceTimeout: still waiting ({outcome.status}). "
            "Raise ServiceTimeout (at most 3600 seconds) or look at the cluster in the RDS console.",
            outcome.job.answer_id,
        )

    def _polling_init(self, event: dict[str, Any]) -> None:
        """Answer now when finished; otherwise make sure a rule polls the job, and answer later."""
        if self._timed_out:
            return  # the timer has answered FAILED and removed the rule; nothing may follow it
        outcome = self._outcome
        polling = POLL_KEY in event
        if isinstance(outcome, Pending):
            try:
                if not polling or outcome.job.to_dict() != event.get("AuroraCloneJob"):
                    self._polls().schedule(event, outcome.job, self._context.invoked_function_arn)
                logger.info("Pending", extra={"waiting_for": outcome.status})
                return
            except PollSchedulingError as error:
                outcome = self._outcome = Failed(str(error), outcome.job.answer_id)
        if polling and event.get(RULE_KEY):
            self._cancel(event[RULE_KEY])
        self._send_response = True

    def _cfn_response(self, event: dict[str, Any]) -> None:
        self._send()

    def _timeout(self) -> None:
        logger.error("The Lambda function is about to time out; answering FAILED")
        self._timed_out = True
        if self._event.get(RULE_KEY):
            self._cancel(self._event[RULE_KEY])
        self._outcome = Failed(
            "The function ran out of time handling this request (Lambda timeout).", self._fallback_id()
        )
        self._send()

    def _send(self, status: str | None = None, reason: str = "", send_response: Any = None) -> None:
        outcome = self._outcome
        if status == FAILED or outcome is None or isinstance(outcome, Pending):
            outcome = Failed(reason or "Custom::AuroraClone failed before it could start.", self._fallback_id())
        body: dict[str, Any] = {
            "Status": SUCCESS if isinstance(outcome, Done) else FAILED,
            "PhysicalResourceId": outcome.physical_id or self._fallback_id(),
            "StackId": self._event.get("StackId", ""),
            "RequestId": self._event.get("RequestId", ""),
            "LogicalResourceId": self._event.get("LogicalResourceId", ""),
            "NoEcho": False,
            "Data": outcome.data if isinstance(outcome, Done) else {},
        }
        if isinstance(outcome, Failed):
            body["Reason"] = outcome.reason
        logger.info(
            "Answering CloudFormation",
            extra={"status": body["Status"], "physical_id": body["PhysicalResourceId"], "reason": body.get("Reason")},
        )
        try:
            self._sender(self._event.get("ResponseURL", ""), body)
        except ResponseNotDeliveredError:
            logger.exception("CloudFormation did not receive the answer")

    # -- helpers ----------------------------------------------------------------------------------

    def _polls(self) -> PollScheduler:
        if self._scheduler is None:
            self._scheduler = self._scheduler_factory()
        return self._scheduler

    def _cancel(self, rule: str) -> None:
        """Remove a finished request's rule. A failure here must not change the answer: a rule left
        behind fires again, answers the same, and tries to remove itself again."""
        try:
            self._polls().cancel(rule)
        except Exception:
            logger.exception("Could not remove the poll rule", extra={"rule": rule})

    def _fallback_id(self) -> str:
        """A non-empty PhysicalResourceId that names nothing this resource did not create."""
        if self._event.get("PhysicalResourceId"):
            return str(self._event["PhysicalResourceId"])
        return not_created_id(
            self._event.get("StackId", ""), self._event.get("RequestId", ""), self._event.get("LogicalResourceId", "")
        )
