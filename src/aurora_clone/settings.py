"""Every setting the project reads from the environment: its variable, its default, what it means.

Nothing needs configuring: template.yaml sets what the functions need (``REQUEST_TABLE``,
``WAKE_UP_QUEUE_URL``, ...), Lambda sets ``AWS_REGION``, and every other setting has a default. A setting is
read when it is used, so a value that cannot be used fails only what needs it, with a sentence naming its
variable.

>>> settings = Settings({"CLONE_SLOT_LIMIT": "10", "SWEEP_GRACE": "PT30M"})
>>> settings.clone_slot_limit, settings.sweep_grace.total_seconds(), settings.request_table
(10, 1800.0, 'aurora-clone-requests')
>>> Settings({"CLONE_SLOT_LIMIT": "16"}).clone_slot_limit
Traceback (most recent call last):
...
ValueError: CLONE_SLOT_LIMIT must be a whole number from 1 to 15, got '16'.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

from aurora_clone.naming import DEFAULT_CLUSTER_ID_PREFIX, is_valid_prefix
from aurora_clone.pool.slots import CLONE_SLOT_LIMIT
from aurora_clone.sweep import DEFAULT_GRACE
from aurora_clone.timespec import parse_duration

DEFAULT_REQUEST_TABLE = "aurora-clone-requests"
DEFAULT_POOL_PARAMETER = "/aurora-clone/pools"


class Settings:
    """The settings in ``environ`` (the process environment, read at each use, when not given)."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._environ = environ

    def _text(self, name: str) -> str:
        environ = os.environ if self._environ is None else self._environ
        return (environ.get(name) or "").strip()

    @property
    def region(self) -> str | None:
        """``AWS_REGION``: the Region clients are built in (set by Lambda; unset: boto3's own choice)."""
        return self._text("AWS_REGION") or None

    @property
    def request_table(self) -> str:
        """``REQUEST_TABLE``: the table of requests, cluster owners and locks (``aurora-clone-requests``)."""
        return self.request_table_given or DEFAULT_REQUEST_TABLE

    @property
    def request_table_given(self) -> str | None:
        """``REQUEST_TABLE`` when it is set (the CLI's sweep otherwise asks the function stack)."""
        return self._text("REQUEST_TABLE") or None

    @property
    def wake_up_queue_url(self) -> str:
        """``WAKE_UP_QUEUE_URL``: the wake-up queue; empty: the function cannot wake pending requests up."""
        return self._text("WAKE_UP_QUEUE_URL")

    @property
    def clone_slot_limit(self) -> int:
        """``CLONE_SLOT_LIMIT``: clone slots per cluster the tool uses, 1-15 (Aurora's 15 when unset)."""
        written = self._text("CLONE_SLOT_LIMIT")
        if not written:
            return CLONE_SLOT_LIMIT
        if not written.isdigit() or not 1 <= int(written) <= CLONE_SLOT_LIMIT:
            raise ValueError(f"CLONE_SLOT_LIMIT must be a whole number from 1 to 15, got '{written}'.")
        return int(written)

    @property
    def cluster_id_prefix(self) -> str:
        """``CLUSTER_ID_PREFIX``: what every cluster and instance identifier the tool makes starts with
        (``aurora-clone-``); the roles' rights to change, tag and delete are scoped to it by ARN."""
        written = self._text("CLUSTER_ID_PREFIX").lower()
        if not written:
            return DEFAULT_CLUSTER_ID_PREFIX
        if not is_valid_prefix(written):
            raise ValueError(
                "CLUSTER_ID_PREFIX must be 2-20 lower-case letters, digits and hyphens, starting with a letter, "
                f"ending with a hyphen and without two hyphens in a row, got '{written}'."
            )
        return written

    @property
    def connection_check_function(self) -> str | None:
        """``CONNECTION_CHECK_FUNCTION``: the connection check's function (set by the template when its VPC
        parameters are given); None when unset: clones answer once RDS reports them available."""
        return self._text("CONNECTION_CHECK_FUNCTION") or None

    @property
    def prepare_script_locations(self) -> tuple[str, ...]:
        """``PREPARE_SCRIPT_LOCATIONS``: the S3 object ARN patterns (comma-separated) the connection check's
        function may read prepare scripts from (the stack's PrepareScriptLocations); empty when unset."""
        return tuple(part.strip() for part in self._text("PREPARE_SCRIPT_LOCATIONS").split(",") if part.strip())

    @property
    def pool_function(self) -> str | None:
        """``POOL_FUNCTION``: the copy pool function (set by the template), woken to refill a warm pool as soon
        as one of its warm clones is claimed; None when unset: the pool's schedule refills it."""
        return self._text("POOL_FUNCTION") or None

    @property
    def rds_ca_bundle(self) -> Path | None:
        """``RDS_CA_BUNDLE``: the file of CA certificates the connection check verifies a clone's TLS
        certificate against; None when unset: RDS's own bundle, shipped in the package (rds-ca-bundle.pem)."""
        written = self._text("RDS_CA_BUNDLE")
        return Path(written) if written else None

    @property
    def response_endpoint(self) -> str | None:
        """``RESPONSE_ENDPOINT``: where CloudFormation's response bucket is served, in a local world (its
        endpoint, ``https://localhost:<port>``); a ResponseURL must then be in that bucket there. None when
        unset, as on AWS: a ResponseURL must be CloudFormation's own bucket of the function's Region."""
        return self._text("RESPONSE_ENDPOINT") or None

    @property
    def pool_config_parameter(self) -> str:
        """``POOL_CONFIG_PARAMETER``: the SSM parameter of the pool document (``/aurora-clone/pools``)."""
        return self._text("POOL_CONFIG_PARAMETER") or DEFAULT_POOL_PARAMETER

    @property
    def sweep_enabled(self) -> bool:
        """``SWEEP_ENABLED``: the scheduled sweep runs unless this is ``false``."""
        return self._text("SWEEP_ENABLED").lower() != "false"

    @property
    def sweep_grace(self) -> timedelta:
        """``SWEEP_GRACE``: how old an orphan must be before the sweep deletes it (ISO-8601, PT1H)."""
        written = self._text("SWEEP_GRACE")
        if not written:
            return DEFAULT_GRACE
        try:
            return parse_duration(written, allow_zero=True)
        except ValueError as error:
            raise ValueError(f"SWEEP_GRACE {error}") from error

    @property
    def sweep_dry_run(self) -> bool:
        """``SWEEP_DRY_RUN``: ``true`` makes the sweep only log what it would delete (false)."""
        return self._text("SWEEP_DRY_RUN").lower() == "true"

    @property
    def service_name(self) -> str:
        """``POWERTOOLS_SERVICE_NAME``: the service every log line and metric names (``aurora-clone``)."""
        return self._text("POWERTOOLS_SERVICE_NAME") or "aurora-clone"

    @property
    def metrics_namespace(self) -> str:
        """``POWERTOOLS_METRICS_NAMESPACE``: the scheduled function's CloudWatch namespace (``AuroraClone``)."""
        return self._text("POWERTOOLS_METRICS_NAMESPACE") or "AuroraClone"

    @property
    def local_state_file(self) -> Path:
        """``AURORA_CLONE_LOCAL_STATE``: where ``aurora-clone local serve`` tells other terminals about its
        world (``~/.aurora-clone/local.json``)."""
        written = self._text("AURORA_CLONE_LOCAL_STATE")
        return Path(written) if written else Path.home() / ".aurora-clone" / "local.json"


# The process environment's settings, each read when it is used.
settings = Settings()
