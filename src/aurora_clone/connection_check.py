"""The optional connection check: can the tests' network reach a clone that RDS reports ``available``?

With the function stack's connection-check parameters set (subnets and security groups of the tests'
VPC), a small function placed there (``aurora_clone.probe``) opens a connection to the clone's writer
endpoint before a Create or an in-place Update answers SUCCESS. This module holds the plain data both
sides exchange and the decision taken from a probe's result; ``aurora_clone.probe_invoker`` invokes the
probe.

A request names a cluster and nothing else: the probe reads the endpoint, port, engine and managed secret
from RDS itself, and only for a cluster the tool's ledger names, so whoever can invoke it cannot point it at
a host of their choosing or hand it another cluster's secret.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from aurora_clone.clone_state import ClusterView
from aurora_clone.naming import is_valid_identifier

# How long, after the writer is available, an unreachable clone is probed again before the request fails:
# new endpoints' DNS names and security group changes take a minute or two to take effect.
PATIENCE_SECONDS = 300.0
# The connection check function's Timeout (template.yaml: Lambda's maximum, 15 minutes), within which a
# prepare script runs; past it and a minute more, a run that wrote no result never will.
PREPARE_FUNCTION_TIMEOUT_SECONDS = 900
PREPARE_LIMIT_SECONDS = PREPARE_FUNCTION_TIMEOUT_SECONDS + 60.0

Stage = Literal["tcp", "tls", "login", "query", "probe", "prepare"]
_TOKEN = re.compile(r"^[0-9a-f]{12}$")  # a request's token (naming.request_token)


@dataclass(frozen=True)
class ProbeRequest:
    """The cluster to check, by its RDS identifier: all the probe takes; or, with ``prepare``, the token of
    the pending request whose prepare script to run in that cluster (the script is the one that request's
    job names, read from the tool's table, never from the event).

    >>> ProbeRequest.from_event({"cluster": "aurora-clone-it-1a2b"}).to_event()
    {'cluster': 'aurora-clone-it-1a2b'}
    >>> ProbeRequest.from_event({"cluster": "db", "host": "10.0.0.9", "secret_arn": "arn:..."})
    Traceback (most recent call last):
    ...
    ValueError: a probe request names a cluster and nothing else (it also has: host, secret_arn)
    """

    cluster: str
    prepare: str = ""

    def to_event(self) -> dict[str, Any]:
        return {"cluster": self.cluster, **({"prepare": self.prepare} if self.prepare else {})}

    @classmethod
    def from_event(cls, event: Any) -> ProbeRequest:
        if not isinstance(event, dict):
            raise ValueError("a probe request is a JSON object")
        cluster = event.get("cluster")
        if not isinstance(cluster, str) or not is_valid_identifier(cluster):
            raise ValueError("a probe request names a cluster by its RDS identifier ('cluster')")
        others = sorted(str(key) for key in event if key not in ("cluster", "prepare"))
        if others:
            raise ValueError(f"a probe request names a cluster and nothing else (it also has: {', '.join(others)})")
        prepare = event.get("prepare", "")
        if not isinstance(prepare, str) or (prepare and not _TOKEN.match(prepare)):
            raise ValueError("a prepare request names the request by its token ('prepare')")
        return cls(cluster, prepare)


@dataclass(frozen=True)
class ProbeResult:
    """``reachable``: every stage the probe tried passed; else ``stage`` is the one that failed."""

    reachable: bool
    stage: Stage
    detail: str

    def to_payload(self) -> dict[str, Any]:
        return {"reachable": self.reachable, "stage": self.stage, "detail": self.detail}

    @classmethod
    def from_payload(cls, payload: Any) -> ProbeResult:
        if not isinstance(payload, dict) or not isinstance(payload.get("reachable"), bool):
            return cls(False, "probe", f"the connection check answered something else than a result: {payload!r}")
        stage = payload.get("stage")
        known: tuple[Stage, ...] = ("tcp", "tls", "login", "query", "probe", "prepare")
        return cls(payload["reachable"], stage if stage in known else "probe", str(payload.get("detail", "")))


class Prober(Protocol):
    """What probes a clone, and starts its prepare script: ``probe_invoker.ProbeInvoker`` on AWS and in the
    local world."""

    def probe(self, request: ProbeRequest) -> ProbeResult: ...

    def start_prepare(self, request: ProbeRequest) -> None: ...


def probe_request(cluster: ClusterView) -> ProbeRequest:
    """The request to check ``cluster``: its identifier (the probe finds its writer endpoint and managed
    secret in RDS)."""
    return ProbeRequest(cluster.identifier)


@dataclass(frozen=True)
class Verdict:
    """What to do after a probe: answer (``proceed``), look again later, or fail with ``reason``."""

    action: Literal["proceed", "retry", "fail"]
    reason: str = ""
    unreachable_since: float | None = None


def judge(result: ProbeResult, cluster: ClusterView, unreachable_since: float | None, now: float) -> Verdict:
    """Reachable: proceed. Unreachable: look again for ``PATIENCE_SECONDS`` after the first failed probe
    (the request's deadline still applies), then fail naming what decides reachability."""
    if result.reachable:
        return Verdict("proceed")
    since = now if unreachable_since is None else unreachable_since
    reason = unreachable_reason(result, cluster)
    if now - since >= PATIENCE_SECONDS:
        return Verdict("fail", f"{reason} (tried for {int(now - since)} seconds)", since)
    return Verdict("retry", reason, since)


def unreachable_reason(result: ProbeResult, cluster: ClusterView) -> str:
    """A reason a user can act on: what failed, and the clone's security groups and subnet group."""
    groups = ", ".join(cluster.vpc_security_group_ids) or "none"
    subnets = cluster.subnet_group or "the default subnet group"
    what = {
        "tcp": "no TCP connection",
        "tls": "no TLS handshake",
        "login": "the master user could not log in",
        "query": "SELECT 1 failed",
        "probe": "the connection check failed",
        "prepare": "the prepare script failed",
    }[result.stage]
    return (
        f"The clone '{cluster.identifier}' is available but the connection check cannot reach it: {what} to "
        f"{cluster.endpoint}:{cluster.port} ({result.detail}). Its security groups ({groups}) must allow port "
        f"{cluster.port} from the connection check's security groups, and its subnet group ({subnets}) must be "
        "in the VPC of the connection check's subnets (VpcSecurityGroupIds, DBSubnetGroupName)."
    )
