"""Job: the pending work a poll picks up again, carried as JSON in a rule's target Input."""

from __future__ import annotations

import json

import pytest

from aurora_clone.clone_state import DesiredClone
from aurora_clone.outcome import Job

DESIRED = DesiredClone(
    cluster_id="new-clone",
    instance_class="db.r6g.large",
    instance_count=2,
    db_parameter_group="clone-ipg",
    port=3306,
    vpc_security_group_ids=("sg-11111111", "sg-22222222"),
    cluster_parameter_group="clone-cpg",
)

CONVERGE = Job("converge", "new-clone", 1_800_003_600.5, "new-clone", source="prod-db", desired=DESIRED)
REPLACING = Job(
    "converge", "new-clone", 1_800_003_600.0, "new-clone", source="prod-db", desired=DESIRED, replacing="old-clone"
)
TEARDOWN = Job("teardown", "old-clone", 1_800_003_600.0, "old-clone")
FAILED_TEARDOWN = Job(
    "teardown", "new-clone", 1_800_003_600.0, "old-clone", source="prod-db", failure="The clone never became ready."
)
MINIMAL_DESIRED = Job("converge", "c", 1.0, "c", desired=DesiredClone("c", "db.serverless", 1))


@pytest.mark.parametrize(
    "job",
    [
        pytest.param(CONVERGE, id="converge-with-desired"),
        pytest.param(REPLACING, id="replacing"),
        pytest.param(TEARDOWN, id="teardown"),
        pytest.param(FAILED_TEARDOWN, id="teardown-with-failure"),
        pytest.param(MINIMAL_DESIRED, id="desired-without-optional-settings"),
    ],
)
def test_job_round_trip_equal(job: Job) -> None:
    assert Job.from_dict(job.to_dict()) == job
    # The job travels as JSON: tuples come back as lists and must be turned back into tuples.
    through_json = Job.from_dict(json.loads(json.dumps(job.to_dict())))
    assert through_json == job
    if job.desired is not None and job.desired.vpc_security_group_ids is not None:
        assert through_json.desired is not None
        assert isinstance(through_json.desired.vpc_security_group_ids, tuple)


@pytest.mark.parametrize(
    ("job", "absent"),
    [
        pytest.param(TEARDOWN, {"desired", "replacing", "failure"}, id="teardown"),
        pytest.param(CONVERGE, {"replacing", "failure"}, id="converge"),
        pytest.param(MINIMAL_DESIRED, {"replacing", "failure"}, id="minimal"),
    ],
)
def test_job_unset_fields_left_out(job: Job, absent: set[str]) -> None:
    """The job has to fit in 8192 characters of Input with the request: nothing unset is written."""
    data = job.to_dict()

    assert absent.isdisjoint(data)
    assert None not in data.values()
    if "desired" in data:
        assert None not in data["desired"].values()


def test_discard_replacement_teardown_answering_replaced_id() -> None:
    discarded = REPLACING.discard("The clone never became ready.")

    assert discarded.kind == "teardown"
    assert discarded.cluster_id == "new-clone"  # the half-made clone is what gets torn down
    assert discarded.answer_id == "old-clone"  # CloudFormation keeps the resource it had
    assert discarded.replacing is None
    assert discarded.failure == "The clone never became ready."
    assert discarded.deadline == REPLACING.deadline
    assert Job.from_dict(json.loads(json.dumps(discarded.to_dict()))) == discarded


def test_discard_without_replacement_answer_id_kept() -> None:
    discarded = CONVERGE.discard("Broken.")

    assert discarded.kind == "teardown"
    assert discarded.answer_id == "new-clone"
    assert discarded.failure == "Broken."
