"""engine_problems: what RDS would refuse only after the restore, judged first against the engine version's offer."""

from __future__ import annotations

from aurora_clone.changes import (
    CLUSTER_PARAMETER_GROUP,
    EngineOffer,
    engine_problems,
    nearest_instance_classes,
)
from aurora_clone.clone_state import ClusterView, InstanceView
from aurora_clone.properties import CloneProperties

OFFER = frozenset({"db.r6g.large", "db.r6g.xlarge", "db.r6g.2xlarge", "db.r7g.large", "db.t4g.medium", "db.serverless"})
WRITER = InstanceView("prod-writer", "available", "db.r4.large", is_writer=True)
SOURCE = ClusterView("prod", "available", "aurora-mysql", "8.0.mysql_aurora.3.05.2", instances=(WRITER,))
SUBJECT = "SourceClusterId 'prod'"


def problems(properties: CloneProperties, offer: EngineOffer, default_class: str | None = None) -> list[str]:
    return engine_problems(properties, SOURCE, offer, SUBJECT, default_class=default_class)


def test_offered_class_passes() -> None:
    assert problems(CloneProperties("prod", instance_class="db.r7g.large"), EngineOffer(OFFER)) == []


def test_unoffered_class_names_nearest_of_its_family_first() -> None:
    [problem] = problems(CloneProperties("prod", instance_class="db.r6g.4xlarge"), EngineOffer(OFFER))

    assert problem.startswith("InstanceClass 'db.r6g.4xlarge' is not offered by RDS for aurora-mysql 8.0.mysql_aurora")
    assert problem.endswith("Nearest offered: db.r6g.2xlarge, db.r6g.xlarge, db.r6g.large.")


def test_source_writer_class_no_longer_offered_asks_for_instance_class() -> None:
    [problem] = problems(CloneProperties("prod"), EngineOffer(OFFER), default_class="db.r4.large")

    assert problem.startswith(f"The writer of {SUBJECT} runs db.r4.large, which RDS no longer offers")
    assert "set InstanceClass, such as db.r6g.large" in problem


def test_empty_offer_judges_no_class() -> None:
    assert problems(CloneProperties("prod", instance_class="db.r6g.huge"), EngineOffer(frozenset())) == []


def test_serverless_without_capacities_anywhere_refused() -> None:
    [problem] = problems(CloneProperties("prod", instance_class="db.serverless"), EngineOffer(OFFER))

    assert problem.startswith("InstanceClass db.serverless needs ServerlessV2MinCapacity and ServerlessV2MaxCapacity")


def test_serverless_with_a_wrong_capacity_not_judged_twice() -> None:
    properties = CloneProperties("prod", instance_class="db.serverless")
    invalid = frozenset({"ServerlessV2MaxCapacity"})

    assert engine_problems(properties, SOURCE, EngineOffer(OFFER), SUBJECT, invalid=invalid) == []


def test_parameter_group_of_the_right_family_passes() -> None:
    offer = EngineOffer(None, {CLUSTER_PARAMETER_GROUP: "aurora-mysql8.0"})

    assert problems(CloneProperties("prod", db_cluster_parameter_group_name="mine"), offer) == []


def test_nearest_classes_by_size_when_family_unknown() -> None:
    assert nearest_instance_classes("db.r9z.xlarge", OFFER, 1) == ["db.r6g.xlarge"]
