"""The RDS events the emulated world sends to the default EventBridge bus, in the shape real RDS sends them.

RDS delivers its events straight to the default bus of the account and Region, best effort: ``source``
``aws.rds``, a ``detail-type`` per source type, the source's ARN in ``resources``, and a ``detail`` with
``EventCategories``, ``SourceType``, ``SourceArn``, ``SourceIdentifier``, ``Date``, ``Message`` and
``EventID``. The event IDs, categories and messages below are those of the RDS User Guide, "Amazon RDS
event categories and event messages" (and its Aurora edition, for ``RDS-EVENT-0171``)::

    >>> event = rds_event(CLUSTER_CREATED, arn="arn:aws:rds:us-east-1:123456789012:cluster:c1",
    ...                   identifier="c1", when=datetime.datetime(2030, 1, 2, 3, 4, 5, tzinfo=datetime.UTC))
    >>> event["detail-type"], event["detail"]["EventID"], event["detail"]["Message"]
    ('RDS DB Cluster Event', 'RDS-EVENT-0170', 'DB cluster created.')
    >>> event["time"], event["detail"]["Date"]
    ('2030-01-02T03:04:05Z', '2030-01-02T03:04:05.000Z')

``put_on_default_bus`` hands an event to moto's EventBridge: every enabled rule of the default bus whose
event pattern matches gets it, at the targets moto can deliver to (SQS queues, log groups, other buses).
"""

from __future__ import annotations

import copy
import datetime
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from moto.events.models import events_backends

SOURCE = "aws.rds"
CLUSTER_DETAIL_TYPE = "RDS DB Cluster Event"
INSTANCE_DETAIL_TYPE = "RDS DB Instance Event"
CLUSTER_SOURCE_TYPE = "CLUSTER"
INSTANCE_SOURCE_TYPE = "DB_INSTANCE"

# ARN services whose targets moto's EventBridge can deliver to (queues, log groups, archives, buses,
# API destinations); anything else (Lambda, Step Functions, ...) is left to whoever plays the bus.
DELIVERABLE_SERVICES = frozenset({"sqs", "logs", "events"})


@dataclass(frozen=True)
class RdsEventKind:
    """One row of the RDS event tables: the ID, its category and the message (``{name}`` filled in)."""

    event_id: str
    category: str
    message: str
    source_type: str

    @property
    def detail_type(self) -> str:
        return CLUSTER_DETAIL_TYPE if self.source_type == CLUSTER_SOURCE_TYPE else INSTANCE_DETAIL_TYPE


CLUSTER_CREATED = RdsEventKind("RDS-EVENT-0170", "creation", "DB cluster created.", CLUSTER_SOURCE_TYPE)
CLUSTER_DELETED = RdsEventKind("RDS-EVENT-0171", "deletion", "DB cluster deleted.", CLUSTER_SOURCE_TYPE)
INSTANCE_CREATED = RdsEventKind("RDS-EVENT-0005", "creation", "DB instance created.", INSTANCE_SOURCE_TYPE)
INSTANCE_DELETED = RdsEventKind("RDS-EVENT-0003", "deletion", "DB instance deleted.", INSTANCE_SOURCE_TYPE)
INSTANCE_BACKUP_STARTED = RdsEventKind("RDS-EVENT-0001", "backup", "Backing up DB instance.", INSTANCE_SOURCE_TYPE)
INSTANCE_BACKUP_FINISHED = RdsEventKind(
    "RDS-EVENT-0002", "backup", "Finished DB instance backup.", INSTANCE_SOURCE_TYPE
)
INSTANCE_CLASS_APPLYING = RdsEventKind(
    "RDS-EVENT-0012", "configuration change", "Applying modification to database instance class.", INSTANCE_SOURCE_TYPE
)
INSTANCE_CLASS_APPLIED = RdsEventKind(
    "RDS-EVENT-0014",
    "configuration change",
    "Finished applying modification to DB instance class.",
    INSTANCE_SOURCE_TYPE,
)
INSTANCE_PARAMETER_GROUP_CHANGED = RdsEventKind(
    "RDS-EVENT-0011", "configuration change", "Updated to use DBParameterGroup {name}.", INSTANCE_SOURCE_TYPE
)
INSTANCE_PARAMETER_GROUP_APPLIED = RdsEventKind(
    "RDS-EVENT-0092", "configuration change", "Finished updating DB parameter group.", INSTANCE_SOURCE_TYPE
)


def event_time(when: datetime.datetime) -> str:
    """EventBridge's ``time``: UTC, whole seconds, ``Z``."""
    return _utc(when).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_date(when: datetime.datetime) -> str:
    """The ``Date`` of an RDS event's detail: UTC, milliseconds, ``Z``."""
    moment = _utc(when)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def rds_event(
    kind: RdsEventKind,
    *,
    arn: str,
    identifier: str,
    when: datetime.datetime,
    **message_fields: str,
) -> dict[str, Any]:
    """The whole EventBridge event for ``kind`` about the resource ``arn`` (account and region from it)."""
    parts = arn.split(":")
    region, account = (parts[3], parts[4]) if len(parts) > 4 else ("", "")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": kind.detail_type,
        "source": SOURCE,
        "account": account,
        "time": event_time(when),
        "region": region,
        "resources": [arn],
        "detail": {
            "EventCategories": [kind.category],
            "SourceType": kind.source_type,
            "SourceArn": arn,
            "Date": event_date(when),
            "Message": kind.message.format(**message_fields),
            "SourceIdentifier": identifier,
            "EventID": kind.event_id,
        },
    }


def deliverable(target_arn: str) -> bool:
    """Whether moto's EventBridge can deliver to this target itself."""
    parts = target_arn.split(":")
    return len(parts) > 2 and parts[2] in DELIVERABLE_SERVICES


def put_on_default_bus(event: Mapping[str, Any]) -> None:
    """Deliver ``event`` (an EventBridge event as built by ``rds_event``) to the rules of the default bus.

    Rules without an event pattern (schedules) never receive bus events. Targets moto cannot deliver to
    are skipped. Callers hold the emulated world's lock.
    """
    backend = events_backends[event["account"]][event["region"]]
    bus = backend.describe_event_bus("default")
    when = datetime.datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    for rule in list(bus.rules.values()):
        if rule.state != "ENABLED" or not rule.event_pattern.get_pattern():
            continue
        for target in rule.targets:
            if not deliverable(target["Arn"]):
                continue
            transform = "InputTransformer" in target
            message: dict[str, Any] = {**copy.deepcopy(dict(event)), "time": when.timestamp()}
            if transform:
                message["ingestion-time"] = when.timestamp()
            single = copy.copy(rule)
            single.targets = [target]
            single.send_to_targets(message, transform_input=transform)


def _utc(when: datetime.datetime) -> datetime.datetime:
    return when.replace(tzinfo=datetime.UTC) if when.tzinfo is None else when.astimezone(datetime.UTC)
