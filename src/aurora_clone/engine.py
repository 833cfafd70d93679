"""The request engine: how a CloudFormation request lives from its arrival to its one answer.

Every request has a record in the function's table (aurora_clone.request_store), written before anything
is created; it is the only source of what the request wants. The function is woken three ways, and each
only names what to look at:

- CloudFormation's request: once CloudFormation confirms it (aurora_clone.intake: its ResponseURL, its stack
  and resource; anything else is logged and ignored), the record is written (once: a re-delivery finds it),
  a fallback wake-up is queued, and the request's first step runs (aurora_clone.resource: validate,
  restore, modify, delete...).
- A wake-up from the queue (``{"request": token, "wake": id}``): the fallback chain, one message in flight
  per pending request, re-sent at each look; a message the record does not name is stale and does nothing.
  A recheck (``{"request": token, "recheck": true}``) is a one-off look soon after an event.
- An RDS event: the cluster it names (or its instance's cluster) leads to the pending request that owns
  it, which is looked at at once; when Describe does not show what the event says yet, a recheck follows.

A look describes the cluster, plans the next step toward the record's goal, and (only when that step
acts on RDS, or the fallback chain moves on) claims the record with a write conditional on its version
before acting: two wake-ups cannot both act, and a stale one never does. A finished request is marked
answered (conditional: at most once), then the answer is PUT; whether CloudFormation accepted it is
recorded, and a clone whose id CloudFormation may not know stays findable by its resource.

Transient AWS errors never fail a request: the invocation ends, and the next wake-up tries again. A
request is answered FAILED for lack of time only at the last look its deadline allows.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from aws_lambda_powertools import Logger

from aurora_clone import clock as process_clock
from aurora_clone.aws_errors import is_transient
from aurora_clone.cfn.response import ResponseNotDeliveredError, put_response, response_body
from aurora_clone.clone_state import ClusterView
from aurora_clone.intake import function_region, request_confirmation_problem, response_url_problem
from aurora_clone.logs import SERVICE
from aurora_clone.outcome import Done, Failed, Outcome, Pending
from aurora_clone.rds import RdsError
from aurora_clone.readiness import Act
from aurora_clone.request_record import RequestRecord, resource_key, token_of
from aurora_clone.request_store import ANSWERED_KEEP_SECONDS, RECORD_KEEP_SECONDS, RequestStore
from aurora_clone.resource import CloneResource, EngineHooks, Look, Request, service_timeout
from aurora_clone.settings import settings
from aurora_clone.slot_lock import SlotLockBusyError
from aurora_clone.stacks import describe_request_resource, stack_resource_ids
from aurora_clone.wake_queue import WakeUpQueue
from aurora_clone.wake_rules import (
    RECHECK_SECONDS,
    START_GRACE_SECONDS,
    WATCH_LIMIT_SECONDS,
    WATCH_SECONDS,
    RdsHint,
    WakeUp,
    describe_lags,
    fallback_delay,
    next_look_interval,
    out_of_time,
    parse_rds_event,
    parse_wake_up,
)

logger = Logger(service=SERVICE, child=True)

MAX_CLAIM_TRIES = 5  # a fallback look that loses a race reloads the record and looks again


def is_transient_failure(error: BaseException) -> bool:
    """An error another try can get past: throttling, 5xx, timeouts, a slot lock held for a while."""
    if isinstance(error, RdsError):
        return error.transient
    return isinstance(error, SlotLockBusyError) or is_transient(error)


def new_wake_id() -> str:
    return uuid.uuid4().hex


class RequestEngine:
    """Runs requests to their answer over a record store, a wake-up queue and the clone resource."""

    def __init__(
        self,
        resource: Callable[[EngineHooks], CloneResource],
        store: RequestStore,
        queue: WakeUpQueue,
        *,
        clock: Callable[[], float] = process_clock.now,
        run_clock: Callable[[], float] = time.time,
        sender: Callable[[str, dict[str, Any]], None] = put_response,
        new_id: Callable[[], str] = new_wake_id,
        stack_resources: Callable[[Sequence[tuple[str, str]]], Mapping[tuple[str, str], str | None]] = (
            stack_resource_ids
        ),
        confirm: Callable[[Mapping[str, Any], str], str | None] | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.clock = clock
        # The clock the function's own run time counts on, as its Timeout does: whether a first step may still
        # be running is asked of it. The same as ``clock`` on AWS; real time in the local world, whose clock
        # runs faster than the code does.
        self.run_clock = run_clock
        self._sender = sender
        self._new_id = new_id
        # Which PhysicalResourceId CloudFormation's record of each (stack id, logical id) names now.
        self._stack_resource_ids = stack_resources
        # Whether CloudFormation confirms a request (event, this function's ARN): None, or why not.
        self._confirm = confirm or confirm_request
        self.resource = resource(EngineHooks(self._take_over_unknown_clones, self._remember_before_restore))

    # -- entry points ---------------------------------------------------------------------------------

    def on_request(self, event: Mapping[str, Any], function_arn: str = "") -> None:
        """A CloudFormation request, first delivery or again. Transient failures raise (Lambda retries the
        request); anything else unexpected is answered FAILED. A request seen for the first time is acted on
        only once CloudFormation confirms it (``function_arn``: this function's, the context's)."""
        try:
            if not self._confirmed(event, function_arn):
                return
            self._receive(event)
        except Exception as error:
            if is_transient_failure(error):
                raise
            logger.exception("Handling the request failed")
            self._fail_internal(token_of(event), event, error)

    def on_wake_ups(self, messages: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        """A batch from the wake-up queue; the messages that hit a transient error are handed back."""
        failures = []
        for message in messages:
            wake_up = parse_wake_up(message.get("body"))
            if wake_up is None:
                logger.warning("Ignored a queue message that is not a wake-up", extra={"id": message.get("messageId")})
                continue
            try:
                record = self.store.load(wake_up.token)
                if record is not None and record.state == "answered" and record.watching:
                    if wake_up.wake == record.wake:
                        self._watch(record)
                    continue
                if record is None or record.state != "pending":
                    logger.info("Wake-up for a request not pending", extra={"request": wake_up.token})
                    continue
                if wake_up.wake is not None and wake_up.wake != record.wake:
                    logger.info("Stale wake-up ignored", extra={"request": wake_up.token})
                    continue
                self._advance(record, wake=wake_up.wake)
            except Exception as error:
                if is_transient_failure(error):
                    logger.warning("Wake-up deferred", extra={"request": wake_up.token, "error": str(error)})
                    failures.append({"itemIdentifier": str(message.get("messageId", ""))})
                    continue
                logger.exception("Wake-up failed", extra={"request": wake_up.token})
                self._fail_internal(wake_up.token, None, error)
        return {"batchItemFailures": failures}

    def on_rds_event(self, event: Mapping[str, Any]) -> None:
        """An RDS event: look at once at the pending request of the cluster it names, if there is one."""
        hint = parse_rds_event(event)
        if hint is None:
            logger.warning("Ignored an RDS event without a source")
            return
        for cluster_id in hint.cluster_candidates():
            token = self.store.owner(cluster_id)
            record = self.store.load(token) if token else None
            if record is None or record.state != "pending" or record.job is None or record.job.cluster_id != cluster_id:
                continue
            logger.info("RDS event for a pending request", extra={"event_id": hint.event_id, "request": token})
            try:
                self._look_after_event(record, hint)
            except Exception as error:
                if is_transient_failure(error):
                    # The fallback looks again; a recheck makes that sooner.
                    self.queue.send(WakeUp(record.token), RECHECK_SECONDS)
                    continue
                logger.exception("Handling an RDS event failed", extra={"request": record.token})
                self._fail_internal(record.token, None, error)

    def on_lambda_timeout(self, event: Mapping[str, Any]) -> None:
        """The function is about to be stopped mid-request: the request's fallback wake-up goes on with it."""
        logger.warning("The function ran out of time; the request's next wake-up carries on", extra={})

    # -- a request's life -----------------------------------------------------------------------------

    def _confirmed(self, event: Mapping[str, Any], function_arn: str) -> bool:
        """Whether to act on ``event``: a request with a record was confirmed at its arrival (asked again, the
        stack may have moved on); any other must be confirmed now, or it is ignored: nothing written, no AWS
        call, no answer (aurora_clone.intake)."""
        if self.store.load(token_of(event)) is not None:
            return True
        problem = self._confirm(event, function_arn)
        if problem is None:
            return True
        logger.warning("Ignored a request CloudFormation does not confirm", extra={"problem": problem})
        return False

    def _receive(self, event: Mapping[str, Any]) -> None:
        now = self.clock()
        token = token_of(event)
        fresh = RequestRecord(
            token,
            dict(event),
            now + service_timeout(event.get("ResourceProperties") or {}),
            wake=self._new_id(),
            started_at=self.run_clock(),
        )
        created, record = self.store.open(fresh, now)
        if created:
            # Queued before anything is created: whatever happens to this invocation, the request is looked at.
            self.queue.send(WakeUp(token, fresh.wake), fallback_delay(now, fresh.deadline))
            self._start(fresh)
            return
        if record is None:
            return
        if record.state == "answered":
            if record.delivered is False:
                self._deliver(record)  # CloudFormation never got it: the same answer once more
            return
        if record.state == "pending":
            self._advance(record, rewake=True)

    def _start(self, record: RequestRecord) -> None:
        """The request's first step: decide its job (and restore, modify or start deleting). A transient
        failure marks the step as over, so the next wake-up starts it again at once."""
        request = Request.from_event(record.event)
        first_step = {
            "Create": self.resource.create,
            "Update": self.resource.update,
            "Delete": self.resource.delete,
        }[record.request_type]
        try:
            outcome = first_step(request)
        except Exception as error:
            if is_transient_failure(error):
                self._write_pending(record, {"started_at": 0}, based_on=None)
            raise
        self._settle(record, outcome)

    def _look_after_event(self, record: RequestRecord, hint: RdsHint) -> None:
        cluster, pending = self._advance(record)
        if pending and describe_lags(hint, cluster):
            self.queue.send(WakeUp(record.token), RECHECK_SECONDS)

    def _advance(
        self, record: RequestRecord, *, wake: str | None = None, rewake: bool = False
    ) -> tuple[ClusterView | None, bool]:
        """Look at the request once and take its next step. ``wake``: this is the fallback chain's current
        message, so the chain moves on; ``rewake``: make sure a fallback exists (a re-delivered request).
        Returns what was seen and whether the request is still pending."""
        for _ in range(MAX_CLAIM_TRIES):
            moves_chain = wake is not None or rewake
            claim: dict[str, Any] = {}
            if record.job is None:
                if moves_chain:
                    claim["wake"] = self._new_id()
                    # Sent before the claim is written: a claim without its message would end the chain.
                    delay = fallback_delay(self.clock(), record.deadline)
                    self.queue.send(WakeUp(record.token, claim["wake"]), delay)
                if claim and not self.store.update(record, claim):
                    record = self._reload(record)
                    continue
                if wake is not None and self.run_clock() - record.started_at < START_GRACE_SECONDS:
                    return None, True  # the first step may still be running: only the chain moved on
                started = self._write_pending(_moved(record, claim), {"started_at": self.run_clock()}, based_on=None)
                if started is not None:
                    self._start(started)
                return None, True
            job = record.job
            look = self.resource.look(job, Request.from_event(record.event))
            claim["seen"] = look_summary(look)
            if moves_chain:
                # Sent before the claim is written (a claim without its message would end the chain), and
                # sooner when the last stage is under way (its event may be lost).
                claim["wake"] = self._new_id()
                interval = next_look_interval(job.kind, look.cluster, prepares=bool(job.prepare))
                delay = fallback_delay(self.clock(), record.deadline, interval)
                self.queue.send(WakeUp(record.token, claim["wake"]), delay)
            if moves_chain or _acts(look):
                if not self.store.update(record, claim):
                    if not moves_chain:
                        return look.cluster, True  # another invocation moved it: that one acts
                    record = self._reload(record)
                    if record.state != "pending":
                        return look.cluster, False
                    continue
                record = _moved(record, claim)
            return look.cluster, self._settle(record, self.resource.conclude(job, look))
        logger.warning("Gave up claiming a busy request; its next wake-up looks again", extra={"request": record.token})
        return None, True

    def _reload(self, record: RequestRecord) -> RequestRecord:
        fresh = self.store.load(record.token)
        return fresh if fresh is not None else replace(record, state="answered")

    def _settle(self, record: RequestRecord, outcome: Outcome) -> bool:
        """Record a pending outcome, or answer a final one. True while the request stays pending."""
        now = self.clock()
        if not isinstance(outcome, Pending):
            self._answer(record, outcome)
            return False
        if out_of_time(now, record.deadline):
            self._answer(record, out_of_time_failure(record, outcome))
            return False
        job = outcome.job
        if job != record.job:
            previous = record.job
            if previous is not None and previous.kind == "teardown" and previous.cluster_id != job.cluster_id:
                self.store.forget_clone(record.resource_key, previous.cluster_id)  # torn down; the next one goes
            saved = self._write_pending(record, {"job": job}, based_on=previous)
            if saved is None:
                return True  # another invocation decided it first
            record = replace(saved, job=job)
            if previous is None or previous.cluster_id != job.cluster_id:
                self._own(job.cluster_id, record.token, now)
            if record.makes_clone and (previous is None or previous.cluster_id != job.cluster_id):
                self.store.remember_clone(record.resource_key, job.cluster_id, record.token, now)
        logger.info("Pending", extra={"request": record.token, "waiting_for": outcome.status})
        return True

    def _own(self, cluster_id: str, token: str, now: float) -> None:
        """Make ``token`` the request acting on ``cluster_id``; a pending request it replaces there stops."""
        previous = self.store.owner(cluster_id)
        if previous and previous != token:
            self._supersede(previous)
        self.store.set_owner(cluster_id, token, now)

    def _supersede(self, token: str) -> None:
        record = self.store.load(token)
        while record is not None and record.state == "pending":
            if self.store.update(record, {"state": "superseded"}):
                logger.info("Request superseded", extra={"request": token})
                return
            record = self.store.load(token)

    def _write_pending(
        self, record: RequestRecord, changes: Mapping[str, Any], *, based_on: Any
    ) -> RequestRecord | None:
        """Write ``changes`` to a pending record. When another invocation wrote first, write again over its
        version only if the request is still pending with the job this decision was based on (it only moved
        the fallback chain on, say); None when it was answered, superseded, or decided otherwise."""
        for _ in range(MAX_CLAIM_TRIES):
            if self.store.update(record, changes):
                return _moved(record, changes)
            fresh = self.store.load(record.token)
            if fresh is None or fresh.state != "pending" or fresh.job != based_on:
                return None
            record = fresh
        return None

    def _answer(self, record: RequestRecord, outcome: Done | Failed) -> None:
        body = response_body(record.event, outcome)
        written = self._write_pending(record, {"state": "answered", "answer": body}, based_on=record.job)
        if written is None:
            return  # answered, superseded or moved on by another invocation
        answered = replace(written, state="answered", answer=body)
        watch = self._start_watch(answered.token, outcome.watch) if isinstance(outcome, Done) else {}
        self._deliver(answered, watch)
        # Released only once the answer is PUT: until then the sweep sees a pending request owning the clone.
        if answered.job is not None:
            self.store.release_owner(answered.job.cluster_id, answered.token)

    def _start_watch(self, token: str, cluster_id: str | None) -> dict[str, Any]:
        """After an early answer (WaitForDeletion false): look at ``cluster_id`` every WATCH_SECONDS until RDS
        no longer lists it, through the request's own wake-up chain; nothing is answered again. The record
        changes that start the watch, written with the delivery; none when there is nothing to watch."""
        if not cluster_id:
            return {}
        wake = self._new_id()
        self.queue.send(WakeUp(token, wake), WATCH_SECONDS)  # before the write, as for every wake-up
        return {"watching": cluster_id, "watch_until": self.clock() + WATCH_LIMIT_SECONDS, "wake": wake}

    def _watch(self, record: RequestRecord) -> None:
        """One look at a cluster whose deletion was answered before it finished."""
        cluster = self.resource.rds.describe_cluster(record.watching)
        if cluster is None:
            logger.info("Deletion finished: RDS no longer lists the cluster", extra={"cluster": record.watching})
            self.store.update(record, {"watching": None, "watch_until": None})
            return
        if self.clock() >= record.watch_until:
            # The answer stands (RDS accepted the deletion); a cluster still listed is the sweep's to find.
            logger.error(
                "A deletion answered early has not finished",
                extra={"cluster": record.watching, "status": cluster.status, "request": record.token},
            )
            self.store.update(record, {"watching": None, "watch_until": None})
            return
        if cluster.status != "deleting":
            logger.error(
                "RDS lists a cluster whose deletion it accepted as not deleting",
                extra={"cluster": record.watching, "status": cluster.status, "request": record.token},
            )
        wake = self._new_id()
        self.queue.send(WakeUp(record.token, wake), WATCH_SECONDS)
        self.store.update(record, {"wake": wake, "seen": cluster.status})

    def _deliver(self, record: RequestRecord, also: Mapping[str, Any] | None = None) -> None:
        """PUT the recorded answer; record whether CloudFormation accepted it (with ``also``'s changes)."""
        body = dict(record.answer or {})
        try:
            self._sender(str(record.event.get("ResponseURL", "")), body)
            delivered = True
        except ResponseNotDeliveredError:
            logger.exception("CloudFormation did not accept the answer", extra={"request": record.token})
            delivered = False
        now = self.clock()
        # Once delivered, the request (and its ResponseURL) is no longer needed; kept a while to recognize a
        # late re-delivery. An undelivered answer's record stays until a later Delete no longer needs it.
        changes: dict[str, Any] = {"delivered": delivered}
        if delivered:
            changes.update({"event": {"RequestType": record.request_type}, "job": None})
        keep = ANSWERED_KEEP_SECONDS if delivered else RECORD_KEEP_SECONDS
        expires_at = now + keep
        if also:
            changes.update(also)
            if also.get("watch_until"):
                expires_at = max(expires_at, float(also["watch_until"]) + ANSWERED_KEEP_SECONDS)
        self.store.update(record, changes, expires_at=expires_at)
        if delivered:
            self._forget_known_clones(record, body)

    def _forget_known_clones(self, record: RequestRecord, body: Mapping[str, Any]) -> None:
        """A torn-down clone is gone: it no longer needs finding. An answered clone stays findable: a PUT that
        went through is no proof CloudFormation took the answer (S3 accepts it after CloudFormation gave up),
        so a later Delete with an id of CloudFormation's making asks CloudFormation which clone it names."""
        job = record.job
        # A teardown that answers SUCCESS, or a discarded replacement's (FAILED with the old id), has removed it.
        if job is not None and job.kind == "teardown" and (body.get("Status") == "SUCCESS" or job.failure):
            self.store.forget_clone(record.resource_key, job.cluster_id)

    def _remember_before_restore(self, request: Request, cluster_id: str) -> None:
        """A clone is about to be restored: findable by its resource (a rollback Delete that arrives meanwhile)
        and by RDS events, before RDS is asked."""
        now = self.clock()
        self.store.remember_clone(resource_key(request.stack_id, request.logical_id), cluster_id, request.token, now)
        self._own(cluster_id, request.token, now)

    def _take_over_unknown_clones(self, request: Request) -> tuple[str, ...]:
        """For a Delete whose id is not a clone of this resource (CloudFormation's own id after a Create it
        stopped waiting for, or whose answer it never took): every clone requests of this resource made that
        CloudFormation's record of the resource does not name, newest first, their requests stopped so they
        add nothing while this deletes."""
        clones = [
            clone
            for clone in self.store.unanswered_clones(resource_key(request.stack_id, request.logical_id))
            if clone.token != request.token
        ]
        if not clones:
            return ()
        key = (request.stack_id, request.logical_id)
        named = self._stack_resource_ids([key]).get(key)
        unknown = [clone for clone in clones if clone.cluster_id != named]
        for clone in unknown:
            self._supersede(clone.token)
        return tuple(clone.cluster_id for clone in unknown)

    def _fail_internal(self, token: str, event: Mapping[str, Any] | None, error: Exception) -> None:
        """An unexpected error: answer FAILED (at most once), with the clone's id when it made one."""
        record = self.store.load(token)
        reason = f"Internal error in Custom::AuroraClone: {error}"
        if record is None:
            if event is not None:
                self._sender(str(event.get("ResponseURL", "")), response_body(event, Failed(reason, "")))
            return
        if record.state == "pending":
            self._answer(record, Failed(reason, record.job.answer_id if record.job else ""))


def confirm_request(event: Mapping[str, Any], function_arn: str) -> str | None:
    """Why CloudFormation does not confirm ``event`` (None: it does): its ResponseURL's form first (no AWS
    call for a forged one), then what CloudFormation's record says of its stack and resource."""
    region = settings.region or function_region(function_arn)
    problem = response_url_problem(str(event.get("ResponseURL", "")), region, settings.response_endpoint)
    if problem is not None:
        return problem
    stack, resource = describe_request_resource(str(event["StackId"]), str(event["LogicalResourceId"]))
    return request_confirmation_problem(event, stack, resource, function_arn)


def out_of_time_failure(record: RequestRecord, outcome: Pending) -> Failed:
    """FAILED for lack of time: with the clone's id for a Create, so the rollback Delete removes it; with
    the old id for a replacement (its new clone is left to the sweep, which knows it from the record)."""
    job = outcome.job
    return Failed(
        f"Not finished before the request's ServiceTimeout: still waiting ({outcome.status}). "
        "Raise ServiceTimeout (at most 3600 seconds) or look at the cluster in the RDS console.",
        job.replacing or job.answer_id,
    )


def look_summary(look: Look) -> str:
    """What a look saw, short: the statuses of the cluster and its instances."""
    cluster = look.cluster
    if cluster is None:
        return "no cluster"
    instances = ",".join(f"{i.identifier}={i.status}" for i in cluster.instances)
    return f"{cluster.identifier}={cluster.status};{instances}"[:400]


def _acts(look: Look) -> bool:
    return isinstance(look.step, Act)


def _moved(record: RequestRecord, changes: Mapping[str, Any]) -> RequestRecord:
    """``record`` as it is after a successful conditional write of ``changes``."""
    known = {key: value for key, value in changes.items() if key in ("wake", "seen", "state")}
    return replace(record, version=record.version + 1, **known)
