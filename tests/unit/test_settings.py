"""The one settings object: each variable, its default, and a refusal naming the variable."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from aurora_clone.settings import Settings, settings


def test_nothing_set_gives_every_default() -> None:
    empty = Settings({})
    assert empty.region is None
    assert empty.request_table == "aurora-clone-requests" and empty.request_table_given is None
    assert empty.wake_up_queue_url == ""
    assert empty.clone_slot_limit == 15
    assert empty.connection_check_function is None
    assert empty.pool_config_parameter == "/aurora-clone/pools"
    assert (empty.sweep_enabled, empty.sweep_grace, empty.sweep_dry_run) == (True, timedelta(hours=1), False)
    assert (empty.service_name, empty.metrics_namespace) == ("aurora-clone", "AuroraClone")
    assert empty.local_state_file == Path.home() / ".aurora-clone" / "local.json"


def test_each_variable_is_read_and_trimmed() -> None:
    given = Settings(
        {
            "AWS_REGION": "eu-west-1",
            "REQUEST_TABLE": " requests ",
            "WAKE_UP_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/wake",
            "CLONE_SLOT_LIMIT": "7",
            "CONNECTION_CHECK_FUNCTION": "probe",
            "POOL_CONFIG_PARAMETER": "/team/pools",
            "SWEEP_ENABLED": "FALSE",
            "SWEEP_GRACE": "PT0S",
            "SWEEP_DRY_RUN": "true",
            "POWERTOOLS_SERVICE_NAME": "clones",
            "POWERTOOLS_METRICS_NAMESPACE": "Team",
            "AURORA_CLONE_LOCAL_STATE": "/tmp/world.json",
        }
    )
    assert given.region == "eu-west-1"
    assert given.request_table == given.request_table_given == "requests"
    assert given.wake_up_queue_url.endswith("/wake")
    assert (given.clone_slot_limit, given.connection_check_function) == (7, "probe")
    assert given.pool_config_parameter == "/team/pools"
    assert (given.sweep_enabled, given.sweep_grace, given.sweep_dry_run) == (False, timedelta(0), True)
    assert (given.service_name, given.metrics_namespace) == ("clones", "Team")
    assert given.local_state_file == Path("/tmp/world.json")


@pytest.mark.parametrize(
    "variable,value,reading",
    [
        ("CLONE_SLOT_LIMIT", "0", "clone_slot_limit"),
        ("CLONE_SLOT_LIMIT", "ten", "clone_slot_limit"),
        ("SWEEP_GRACE", "an hour", "sweep_grace"),
    ],
)
def test_an_unusable_value_is_refused_naming_its_variable(variable: str, value: str, reading: str) -> None:
    broken = Settings({variable: value})
    with pytest.raises(ValueError, match=variable):
        getattr(broken, reading)
    assert broken.request_table == "aurora-clone-requests"  # the other settings still read


def test_the_process_settings_are_read_when_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLONE_SLOT_LIMIT", "3")
    assert settings.clone_slot_limit == 3
    monkeypatch.delenv("CLONE_SLOT_LIMIT")
    assert settings.clone_slot_limit == 15
