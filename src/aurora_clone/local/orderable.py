"""The DB instance classes RDS offers for the Aurora engines, by engine version, as the emulation knows them.

Real RDS refuses an instance class the engine version does not offer, with ``InvalidParameterCombination`` at
``CreateDBInstance`` (so only after the cluster exists), and lists what it offers with
``DescribeOrderableDBInstanceOptions``. moto 5.2.1 accepts any well-formed class, answers that describe call
for ``aurora-postgresql`` only (from a list without current versions, ignoring the class filter), and gives
new clusters engine versions long out of support (``5.7.mysql_aurora.2.07.2``, ``12.7``).

This table stands in for RDS: a few realistic versions of ``aurora-mysql`` and ``aurora-postgresql`` with the
classes the Aurora User Guide lists for them ("Supported DB engines for DB instance classes"), each offered
with both Aurora storage types (``aurora``, ``aurora-iopt1``), as RDS lists them. Serverless v2
(``db.serverless``) comes with Aurora MySQL 3 and Aurora PostgreSQL 13 on; Aurora MySQL 2 also offers
``db.t3.small``. New clusters get ``DEFAULT_ENGINE_VERSIONS`` when they name none, as RDS gives its current
default. A version the table does not know is offered nothing and refused nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.rds.exceptions import InvalidParameterCombination

_SIZES = ("large", "xlarge", "2xlarge", "4xlarge", "8xlarge", "12xlarge", "16xlarge")
_GRAVITON = tuple(f"{family}.{size}" for family in ("db.r6g", "db.r7g", "db.x2g") for size in _SIZES)
_R5 = tuple(f"db.r5.{size}" for size in (*_SIZES, "24xlarge"))
_R6I = tuple(f"db.r6i.{size}" for size in (*_SIZES, "24xlarge", "32xlarge"))
_BURSTABLE = ("db.t3.medium", "db.t3.large", "db.t4g.medium", "db.t4g.large")
SERVERLESS = "db.serverless"

# Aurora MySQL 2 (MySQL 5.7) predates db.r7g and Serverless v2; it still offers db.t3.small.
_MYSQL_2 = frozenset((*_R5, *(c for c in _GRAVITON if not c.startswith("db.r7g")), "db.t3.small", *_BURSTABLE))
_CURRENT = frozenset((*_R5, *_R6I, *_GRAVITON, *_BURSTABLE, SERVERLESS))
# Aurora PostgreSQL 11 has neither db.r7g nor Serverless v2.
_POSTGRESQL_11 = frozenset(c for c in _CURRENT if c != SERVERLESS and not c.startswith("db.r7g"))

ORDERABLE_CLASSES: dict[str, dict[str, frozenset[str]]] = {
    "aurora-mysql": {
        "5.7.mysql_aurora.2.11.2": _MYSQL_2,
        "5.7.mysql_aurora.2.12.1": _MYSQL_2,
        "8.0.mysql_aurora.3.04.0": _CURRENT,
        "8.0.mysql_aurora.3.05.2": _CURRENT,
        "8.0.mysql_aurora.3.08.0": _CURRENT,
    },
    "aurora-postgresql": {
        "11.21": _POSTGRESQL_11,
        "13.12": _CURRENT,
        "14.9": _CURRENT,
        "15.4": _CURRENT,
        "16.4": _CURRENT,
    },
}
DEFAULT_ENGINE_VERSIONS = {"aurora-mysql": "8.0.mysql_aurora.3.05.2", "aurora-postgresql": "16.4"}
_LICENSES = {"aurora-mysql": "general-public-license", "aurora-postgresql": "postgresql-license"}
_STORAGE_TYPES = ("aurora", "aurora-iopt1")


def default_engine_version(original: Callable[[str], str]) -> Callable[[str], str]:
    """``DBCluster.default_engine_version``: the table's default for the Aurora engines, moto's otherwise."""

    def default(engine: str) -> str:
        return DEFAULT_ENGINE_VERSIONS.get(engine) or original(engine)

    return default


def offered(engine: str, version: str) -> frozenset[str] | None:
    """The classes offered for ``engine`` at ``version``; None when the table does not know that version."""
    return ORDERABLE_CLASSES.get(engine, {}).get(version)


def options(engine: str, version: str | None, instance_class: str | None, region: str) -> list[dict[str, Any]]:
    """``OrderableDBInstanceOptions`` as RDS answers them, one per class and storage type, in class order."""
    versions = ORDERABLE_CLASSES.get(engine, {})
    chosen = [version] if version else sorted(versions)
    return [
        {
            "Engine": engine,
            "EngineVersion": each,
            "DBInstanceClass": name,
            "LicenseModel": _LICENSES[engine],
            "AvailabilityZones": [{"Name": f"{region}{zone}"} for zone in "abc"],
            "MultiAZCapable": True,
            "ReadReplicaCapable": False,
            "Vpc": True,
            "SupportsStorageEncryption": True,
            "StorageType": storage,
            "SupportsIops": False,
            "SupportsEnhancedMonitoring": name != SERVERLESS,
            "SupportsIAMDatabaseAuthentication": True,
            "SupportsPerformanceInsights": True,
            "SupportedEngineModes": ["provisioned"],
            "SupportsClusters": True,
            "SupportedNetworkTypes": ["IPV4", "DUAL"],
        }
        for each in chosen
        for name in sorted(versions.get(each, ()))
        if instance_class in (None, name)
        for storage in _STORAGE_TYPES
    ]


def describe_orderable_db_instance_options(original: Callable[..., list[dict[str, Any]]]) -> Callable[..., Any]:
    """``RDSBackend.describe_orderable_db_instance_options``: the table for the Aurora engines, moto otherwise."""

    def describe(backend: Any, engine: str, engine_version: str | None) -> list[dict[str, Any]]:
        if engine not in ORDERABLE_CLASSES:
            return original(backend, engine, engine_version)
        return options(engine, engine_version, None, backend.region_name)

    return describe


def refuse_unoffered_class(engine: str, version: str, instance_class: str | None) -> None:
    """Raise RDS's ``InvalidParameterCombination`` when the table knows ``version`` and does not offer the class."""
    classes = offered(engine, version)
    if classes is None or instance_class is None or instance_class in classes:
        return
    raise InvalidParameterCombination(
        f"RDS does not support creating a DB instance with the following combination: DBInstanceClass="
        f"{instance_class}, Engine={engine}, EngineVersion={version}, LicenseModel={_LICENSES[engine]}. "
        "For supported combinations of instance class and database engine version, see the documentation."
    )
