"""What the tool made, asked before anything is changed or deleted: the one way to a trusted view of clusters.

Tags are the visible mark and what IAM conditions read, but anyone allowed to tag can write them. The proof
is the ledger (``RequestStore.made``): a record written before the RDS call that makes a cluster. Every path
that acts on clusters it finds by listing (the clone sources and obsolete copies of a Create, the pool, the
sweep, ``aurora-clone list``) takes the account's clusters through ``trusted_clusters``: a cluster tagged as
the tool's without a matching record is reported and treated as anyone's.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger

from aurora_clone.logs import SERVICE, AnyLogger
from aurora_clone.pool.model import TrustedSnapshot, trusted
from aurora_clone.rds import RdsGateway
from aurora_clone.request_store import RequestStore

logger = Logger(service=SERVICE, child=True)


def trusted_clusters(rds: RdsGateway, store: RequestStore, log: AnyLogger = logger) -> TrustedSnapshot:
    """Every cluster of the account and Region; the tool's tags kept only where its ledger agrees. Each
    cluster tagged as the tool's that the ledger does not name is logged (warning) once per call."""
    snapshot = rds.list_clusters()
    tagged = [cluster.identifier for cluster in snapshot if cluster.made_by_tool]
    seen = trusted(snapshot, store.made_many(tagged) if tagged else {})
    for cluster_id in seen.forged:
        log.warning(
            "A cluster carries this tool's tags, but the tool has no record of making it: left alone",
            extra={"cluster": cluster_id},
        )
    return seen
