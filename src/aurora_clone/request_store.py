"""The gateway to the function's DynamoDB table: request records, cluster owners, unanswered clones, locks.

One table (``REQUEST_TABLE``), keys ``pk`` and ``sk``:

- ``request#<token>`` / ``request``: a RequestRecord. Every write is conditional on its version.
- ``cluster#<id>`` / ``owner``: the pending request acting on that cluster, so an RDS event finds it.
- ``resource#<key>`` / ``clone#<id>``: a clone a request of that resource made whose id CloudFormation may
  not know (answer pending or never delivered); a Delete with an id of CloudFormation's making finds it.
- ``lock#<source>`` / ``lock``: the per-source clone slot lock (aurora_clone.slot_lock).
- ``made#<cluster id>`` / ``made``: the ledger, a MadeRecord for every cluster the tool makes (and the
  instances it created in it), written before the RDS call that makes it. A cluster is the tool's only when
  this record and its tags both say so. No expiry: it lives as long as the cluster.
- ``prepared#<cluster id>`` / ``prepared``: the last prepare script run in that cluster (a Preparation),
  written by the in-VPC function that runs it; it goes with the ledger record.

Items carry ``expires_at`` (the table's TTL attribute) past the time anything could still need them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from aurora_clone.aws_clients import aws_client
from aurora_clone.aws_errors import error_code
from aurora_clone.outcome import Job
from aurora_clone.request_record import (
    MadeRecord,
    Preparation,
    PreparationState,
    RequestRecord,
    State,
    UnansweredClone,
)
from aurora_clone.settings import settings

RECORD_KEEP_SECONDS = 7 * 86400  # an undelivered answer's record: a later Delete may still need it
ANSWERED_KEEP_SECONDS = 3600  # a delivered answer's record: enough to recognize a late re-delivery
CLONE_KEEP_SECONDS = 30 * 86400
OWNER_KEEP_SECONDS = 86400

_CONDITION_FAILED = "ConditionalCheckFailedException"


def _s(value: str) -> dict[str, str]:
    return {"S": value}


def _n(value: float) -> dict[str, str]:
    return {"N": repr(float(value)) if not float(value).is_integer() else str(int(value))}


def _typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BOOL": value}
    if isinstance(value, int | float):
        return _n(value)
    return _s(str(value))


class RequestStore:
    """Reads and conditional writes of the table. Methods take and return plain values."""

    def __init__(self, client: Any = None, table: str | None = None) -> None:
        self._client = client or aws_client("dynamodb")
        self._table = table or settings.request_table

    # -- request records ------------------------------------------------------------------------------

    def open(self, record: RequestRecord, now: float) -> tuple[bool, RequestRecord | None]:
        """Write a new request's record unless it exists; (True, record) when written, else (False, existing)."""
        item = {
            "pk": _s(_request_pk(record.token)),
            "sk": _s("request"),
            "event": _s(json.dumps(record.event)),
            "deadline": _n(record.deadline),
            "version": _n(record.version),
            "state": _s(record.state),
            "wake": _s(record.wake),
            "started_at": _n(record.started_at),
            "expires_at": _n(int(record.deadline + RECORD_KEEP_SECONDS)),
        }
        if self._conditional("put_item", Item=item, ConditionExpression="attribute_not_exists(pk)"):
            return True, record
        return False, self.load(record.token)

    def load(self, token: str) -> RequestRecord | None:
        item = self._client.get_item(
            TableName=self._table, Key=_key(_request_pk(token), "request"), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        answer = item.get("answer", {}).get("S")
        job = item.get("job", {}).get("S")
        return RequestRecord(
            token=token,
            event=json.loads(item["event"]["S"]) if "event" in item else {},
            deadline=float(item["deadline"]["N"]),
            version=int(item["version"]["N"]),
            state=_state(item["state"]["S"]),
            wake=item.get("wake", {}).get("S", ""),
            job=Job.from_dict(json.loads(job)) if job else None,
            answer=json.loads(answer) if answer else None,
            delivered=item["delivered"]["BOOL"] if "delivered" in item else None,
            seen=item.get("seen", {}).get("S", ""),
            started_at=float(item.get("started_at", {}).get("N", "0")),
            watching=item.get("watching", {}).get("S", ""),
            watch_until=float(item.get("watch_until", {}).get("N", "0")),
        )

    def update(self, record: RequestRecord, changes: Mapping[str, Any], *, expires_at: float | None = None) -> bool:
        """Apply ``changes`` (field -> value; None removes it) if the record is still at ``record.version``;
        the version grows by one. False when another invocation moved the record first."""
        names = {"#version": "version"}
        values: dict[str, Any] = {":seen_version": _n(record.version), ":one": _n(1)}
        sets, removes = ["#version = #version + :one"], []
        fields = dict(changes)
        if expires_at is not None:
            fields["expires_at"] = int(expires_at)
        for number, (name, value) in enumerate(sorted(fields.items())):
            names[f"#f{number}"] = name
            if value is None:
                removes.append(f"#f{number}")
                continue
            if name == "job":
                value = json.dumps(value.to_dict()) if isinstance(value, Job) else value
            elif name in ("answer", "event"):
                value = json.dumps(value)
            values[f":v{number}"] = _typed(value)
            sets.append(f"#f{number} = :v{number}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
        return self._conditional(
            "update_item",
            Key=_key(_request_pk(record.token), "request"),
            UpdateExpression=expression,
            ConditionExpression="#version = :seen_version",
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def pending_requests(self) -> list[str]:
        """Tokens of every request not yet answered (a scan: for the leftovers check and the CLI only)."""
        tokens = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="sk = :request AND #state = :pending",
            ExpressionAttributeNames={"#state": "state"},
            ExpressionAttributeValues={":request": _s("request"), ":pending": _s("pending")},
        ):
            tokens += [item["pk"]["S"].removeprefix("request#") for item in page.get("Items", [])]
        return tokens

    # -- cluster owners -------------------------------------------------------------------------------

    def owner(self, cluster_id: str) -> str | None:
        """The token of the request acting on ``cluster_id``, if any."""
        item = self._client.get_item(
            TableName=self._table, Key=_key(_cluster_pk(cluster_id), "owner"), ConsistentRead=True
        ).get("Item")
        return item["request"]["S"] if item else None

    def set_owner(self, cluster_id: str, token: str, now: float) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **_key(_cluster_pk(cluster_id), "owner"),
                "request": _s(token),
                "expires_at": _n(int(now + OWNER_KEEP_SECONDS)),
            },
        )

    def release_owner(self, cluster_id: str, token: str) -> None:
        """Forget the owner, if it still is ``token`` (a newer request may own the cluster now)."""
        self._delete_if(_key(_cluster_pk(cluster_id), "owner"), "request", token)

    # -- clones CloudFormation may not know -----------------------------------------------------------

    def remember_clone(self, resource: str, cluster_id: str, token: str, now: float) -> None:
        self._client.put_item(
            TableName=self._table,
            Item={
                **_key(_resource_pk(resource), f"clone#{cluster_id}"),
                "request": _s(token),
                "made_at": _n(int(now)),
                "expires_at": _n(int(now + CLONE_KEEP_SECONDS)),
            },
        )

    def forget_clone(self, resource: str, cluster_id: str) -> None:
        self._client.delete_item(TableName=self._table, Key=_key(_resource_pk(resource), f"clone#{cluster_id}"))

    def unanswered_clones(self, resource: str) -> list[UnansweredClone]:
        """The resource's clones CloudFormation may not know, newest first."""
        items = self._client.query(
            TableName=self._table,
            KeyConditionExpression="pk = :pk AND begins_with(sk, :clone)",
            ExpressionAttributeValues={":pk": _s(_resource_pk(resource)), ":clone": _s("clone#")},
            ConsistentRead=True,
        ).get("Items", [])
        clones = [
            UnansweredClone(item["sk"]["S"].removeprefix("clone#"), item["request"]["S"], float(item["made_at"]["N"]))
            for item in items
        ]
        return sorted(clones, key=lambda clone: clone.made_at, reverse=True)

    # -- the ledger: what the tool made --------------------------------------------------------------

    def record_made(self, made: MadeRecord) -> MadeRecord | None:
        """Write the ledger record of a cluster about to be made, unless one exists. None when written (or
        already written by the same request, a re-delivery); else the existing record, made for another."""
        item: dict[str, Any] = {
            **_key(_made_pk(made.cluster_id), "made"),
            "made_for": _s(made.made_for),
            "made_at": _n(int(made.made_at)),
        }
        for name in ("request", "stack_id", "logical_id", "source", "shape", "shape_properties"):
            if getattr(made, name):
                item[name] = _s(getattr(made, name))
        if made.instances:
            item["instances"] = {"SS": sorted(instance.lower() for instance in made.instances)}
        condition = "attribute_not_exists(pk)"
        values: dict[str, Any] = {}
        if made.request:
            condition += " OR #request = :request"
            values[":request"] = _s(made.request)
        request: dict[str, Any] = {"Item": item, "ConditionExpression": condition}
        if values:
            request.update(ExpressionAttributeNames={"#request": "request"}, ExpressionAttributeValues=values)
        for _ in range(2):
            if self._conditional("put_item", **request):
                return None
            existing = self.made(made.cluster_id)
            if existing is not None:
                return existing
        raise RuntimeError(f"the ledger record of '{made.cluster_id}' could neither be written nor read")

    def made(self, cluster_id: str) -> MadeRecord | None:
        """The ledger record of ``cluster_id``; None when the tool never made it."""
        item = self._client.get_item(
            TableName=self._table, Key=_key(_made_pk(cluster_id), "made"), ConsistentRead=True
        ).get("Item")
        return _made_record(item) if item else None

    def made_many(self, cluster_ids: list[str]) -> dict[str, MadeRecord]:
        """The ledger records of those of ``cluster_ids`` the tool made, by (lower-case) identifier."""
        found: dict[str, MadeRecord] = {}
        wanted = sorted({cluster_id.lower() for cluster_id in cluster_ids})
        for start in range(0, len(wanted), 100):
            keys: list[dict[str, Any]] = [
                _key(_made_pk(cluster_id), "made") for cluster_id in wanted[start : start + 100]
            ]
            while keys:
                answer = self._client.batch_get_item(RequestItems={self._table: {"Keys": keys, "ConsistentRead": True}})
                for item in answer.get("Responses", {}).get(self._table, []):
                    record = _made_record(item)
                    found[record.cluster_id] = record
                keys = answer.get("UnprocessedKeys", {}).get(self._table, {}).get("Keys", [])
        return found

    def record_instance(self, cluster_id: str, instance_id: str) -> bool:
        """Add an instance about to be created to its cluster's ledger record; False when the tool never
        made the cluster (no instance is then created in it)."""
        return self._conditional(
            "update_item",
            Key=_key(_made_pk(cluster_id), "made"),
            UpdateExpression="ADD #instances :instance",
            ConditionExpression="attribute_exists(pk)",
            ExpressionAttributeNames={"#instances": "instances"},
            ExpressionAttributeValues={":instance": {"SS": [instance_id.lower()]}},
        )

    def claim_warm(self, cluster_id: str, shape: str, claim: MadeRecord) -> bool:
        """Make the unclaimed warm clone ``cluster_id`` of ``shape`` the stack's clone ``claim`` describes, in one
        conditional write: of two requests claiming it, one gets it. True also when this very request claimed
        it before (a re-delivery); False when it is not, or no longer, a warm clone of that shape."""
        return self._conditional(
            "update_item",
            Key=_key(_made_pk(cluster_id), "made"),
            UpdateExpression=(
                "SET made_for = :clone, #request = :request, stack_id = :stack, logical_id = :logical, "
                "claimed_at = :now"
            ),
            ConditionExpression="(made_for = :warm AND shape = :shape) OR (made_for = :clone AND #request = :request)",
            ExpressionAttributeNames={"#request": "request"},
            ExpressionAttributeValues={
                ":clone": _s("clone"),
                ":warm": _s("warm"),
                ":shape": _s(shape),
                ":request": _s(claim.request),
                ":stack": _s(claim.stack_id),
                ":logical": _s(claim.logical_id),
                ":now": _n(int(claim.made_at)),
            },
        )

    def forget_made(self, cluster_id: str) -> None:
        """The cluster is gone: its ledger record goes too, and the record of what prepared it."""
        self._client.delete_item(TableName=self._table, Key=_key(_made_pk(cluster_id), "made"))
        self._client.delete_item(TableName=self._table, Key=_key(_prepared_pk(cluster_id), "prepared"))

    # -- prepare scripts run in clusters --------------------------------------------------------------

    def start_preparation(self, cluster_id: str, token: str, now: float) -> bool:
        """Mark the request ``token``'s prepare run in the cluster as started; False when this request
        started one before (a second invocation, delivered again or forged, runs nothing)."""
        return self._conditional(
            "put_item",
            Item={
                **_key(_prepared_pk(cluster_id), "prepared"),
                "token": _s(token),
                "state": _s("running"),
                "started_at": _n(now),
            },
            ConditionExpression="attribute_not_exists(pk) OR #token <> :token",
            ExpressionAttributeNames={"#token": "token"},
            ExpressionAttributeValues={":token": _s(token)},
        )

    def finish_preparation(
        self, cluster_id: str, token: str, state: PreparationState, detail: str, prepared_with: str = ""
    ) -> bool:
        """Write how the request ``token``'s run ended; False when another request's run replaced it."""
        return self._conditional(
            "update_item",
            Key=_key(_prepared_pk(cluster_id), "prepared"),
            UpdateExpression="SET #state = :state, detail = :detail, prepared_with = :with",
            ConditionExpression="#token = :token",
            ExpressionAttributeNames={"#token": "token", "#state": "state"},
            ExpressionAttributeValues={
                ":token": _s(token),
                ":state": _s(state),
                ":detail": _s(detail),
                ":with": _s(prepared_with),
            },
        )

    def preparation(self, cluster_id: str) -> Preparation | None:
        """The last prepare run in ``cluster_id``; None when none ever started."""
        item = self._client.get_item(
            TableName=self._table, Key=_key(_prepared_pk(cluster_id), "prepared"), ConsistentRead=True
        ).get("Item")
        if not item:
            return None
        state = item["state"]["S"]
        return Preparation(
            cluster_id=cluster_id.lower(),
            token=item["token"]["S"],
            state="done" if state == "done" else "failed" if state == "failed" else "running",
            started_at=float(item.get("started_at", {}).get("N", "0")),
            detail=item.get("detail", {}).get("S", ""),
            prepared_with=item.get("prepared_with", {}).get("S", ""),
        )

    # -- locks ----------------------------------------------------------------------------------------

    def take_lock(self, name: str, holder: str, now: float, keep_seconds: float) -> bool:
        """Take the lock if it is free or already ``holder``'s; False when someone else holds it."""
        return self._put_lock(
            name,
            holder,
            now,
            keep_seconds,
            "attribute_not_exists(pk) OR #holder = :holder",
            {":holder": _s(holder)},
        )

    def read_lock(self, name: str) -> tuple[str, float] | None:
        item = self._client.get_item(TableName=self._table, Key=_key(_lock_pk(name), "lock"), ConsistentRead=True).get(
            "Item"
        )
        return (item["holder"]["S"], float(item["since"]["N"])) if item else None

    def take_over_lock(self, name: str, seen: tuple[str, float], holder: str, now: float, keep_seconds: float) -> bool:
        """Take a stale lock from its (dead) holder: only if it is still exactly as ``seen``, so of two
        callers that both found it stale only one gets it."""
        return self._put_lock(
            name,
            holder,
            now,
            keep_seconds,
            "#holder = :seen_holder AND #since = :seen_since",
            {":seen_holder": _s(seen[0]), ":seen_since": _n(seen[1])},
        )

    def _put_lock(
        self, name: str, holder: str, now: float, keep_seconds: float, condition: str, values: dict[str, Any]
    ) -> bool:
        """Write ``holder`` into the lock if ``condition`` holds; False when it does not."""
        names = {alias: field for alias, field in (("#holder", "holder"), ("#since", "since")) if alias in condition}
        return self._conditional(
            "put_item",
            Item={
                **_key(_lock_pk(name), "lock"),
                "holder": _s(holder),
                "since": _n(now),
                "expires_at": _n(int(now + keep_seconds)),
            },
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    def release_lock(self, name: str, holder: str) -> None:
        self._delete_if(_key(_lock_pk(name), "lock"), "holder", holder)

    def _delete_if(self, key: dict[str, Any], attribute: str, value: str) -> None:
        """Delete the item if its ``attribute`` still is ``value``."""
        self._conditional(
            "delete_item",
            Key=key,
            ConditionExpression="#attribute = :value",
            ExpressionAttributeNames={"#attribute": attribute},
            ExpressionAttributeValues={":value": _s(value)},
        )

    def _conditional(self, operation: str, **request: Any) -> bool:
        """One conditional write to the table; False when its condition did not hold (another writer came
        first), any other error raised."""
        try:
            getattr(self._client, operation)(TableName=self._table, **request)
        except ClientError as error:
            if error_code(error) == _CONDITION_FAILED:
                return False
            raise
        return True


def _key(pk: str, sk: str) -> dict[str, Any]:
    return {"pk": _s(pk), "sk": _s(sk)}


def _request_pk(token: str) -> str:
    return f"request#{token}"


def _cluster_pk(cluster_id: str) -> str:
    return f"cluster#{cluster_id}"


def _resource_pk(resource: str) -> str:
    return f"resource#{resource}"


def _made_pk(cluster_id: str) -> str:
    return f"made#{cluster_id.lower()}"


def _prepared_pk(cluster_id: str) -> str:
    return f"prepared#{cluster_id.lower()}"


def _made_record(item: Mapping[str, Any]) -> MadeRecord:
    made_for = item["made_for"]["S"]
    return MadeRecord(
        cluster_id=item["pk"]["S"].removeprefix("made#"),
        made_for="copy" if made_for == "copy" else "warm" if made_for == "warm" else "clone",
        request=item.get("request", {}).get("S", ""),
        stack_id=item.get("stack_id", {}).get("S", ""),
        logical_id=item.get("logical_id", {}).get("S", ""),
        source=item.get("source", {}).get("S", ""),
        made_at=float(item.get("made_at", {}).get("N", "0")),
        instances=frozenset(item.get("instances", {}).get("SS", [])),
        shape=item.get("shape", {}).get("S", ""),
        shape_properties=item.get("shape_properties", {}).get("S", ""),
    )


def _lock_pk(name: str) -> str:
    return f"lock#{name}"


def _state(value: str) -> State:
    if value == "answered":
        return "answered"
    if value == "superseded":
        return "superseded"
    return "pending"
