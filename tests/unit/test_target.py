"""Where a command acts: the running local world, a given endpoint, or AWS (aurora_clone.target)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aurora_clone import clock as process_clock
from aurora_clone.clock import WORLD_CLOCK_VARIABLE, WorldClock
from aurora_clone.target import LocalWorld, TargetError, choose_target, running_world


@pytest.fixture
def listening() -> Iterator[int]:
    """A port that accepts connections, as a running world's endpoint does."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        yield server.getsockname()[1]


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A fresh machine: no AWS settings, files or instance metadata."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        WORLD_CLOCK_VARIABLE,
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture(autouse=True)
def system_clock_after() -> Iterator[None]:
    yield
    process_clock.use(time.time)


def world_at(port: int, state_file: Path) -> LocalWorld:
    world = LocalWorld(
        endpoint_url=f"https://localhost:{port}",
        control_url="http://127.0.0.1:1",
        environment={
            "AWS_ENDPOINT_URL": f"https://localhost:{port}",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            WORLD_CLOCK_VARIABLE: WorldClock(epoch=time.time() - 10, scale=0.01).encode(),
        },
        pid=1234,
        function_stack="aurora-clone",
        outputs={"RequestTableName": "requests"},
    )
    world.write(state_file)
    return world


def test_the_state_file_describes_the_world_it_was_written_for(tmp_path: Path, listening: int) -> None:
    written = world_at(listening, tmp_path / "local.json")

    assert LocalWorld.read(tmp_path / "local.json") == written
    assert running_world(tmp_path / "local.json") == written


def test_a_world_whose_endpoint_no_longer_answers_is_not_running(tmp_path: Path) -> None:
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    world_at(port, tmp_path / "local.json")

    assert running_world(tmp_path / "local.json") is None


def test_a_missing_or_damaged_state_file_is_no_world(tmp_path: Path) -> None:
    (tmp_path / "damaged.json").write_text("{not json")

    assert LocalWorld.read(tmp_path / "missing.json") is None
    assert LocalWorld.read(tmp_path / "damaged.json") is None


@pytest.mark.usefixtures("no_aws")
def test_auto_chooses_the_running_world_and_apply_points_boto3_and_the_clock_at_it(
    tmp_path: Path, listening: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    world_at(listening, tmp_path / "local.json")
    monkeypatch.setenv("AWS_PROFILE", "production")
    environ: dict[str, str] = {"AWS_PROFILE": "production"}

    target = choose_target("auto", tmp_path / "local.json", environ)
    target.apply(environ)

    assert target.kind == "local"
    assert f"https://localhost:{listening}" in target.description
    assert environ["AWS_ENDPOINT_URL"] == f"https://localhost:{listening}"
    assert "AWS_PROFILE" not in environ, "a profile would make boto3 ignore the world's keys"
    # 10 real seconds since the world started at a scale of 0.01 are 1,000 world seconds.
    assert process_clock.now() - time.time() > 900


@pytest.mark.usefixtures("no_aws")
def test_local_without_a_running_world_says_how_to_start_one(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="aurora-clone local serve"):
        choose_target("local", tmp_path / "local.json", {})


@pytest.mark.usefixtures("no_aws")
def test_an_endpoint_already_set_is_used_as_it_is(tmp_path: Path, listening: int) -> None:
    world_at(listening, tmp_path / "local.json")

    other = choose_target("auto", tmp_path / "local.json", {"AWS_ENDPOINT_URL": "https://emulator:4566"})
    same = choose_target("auto", tmp_path / "local.json", {"AWS_ENDPOINT_URL": f"https://localhost:{listening}/"})

    assert other.kind == "aws" and "https://emulator:4566" in other.description
    assert same.kind == "local"


@pytest.mark.usefixtures("no_aws")
def test_aws_without_a_region_says_what_is_missing_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(TargetError) as refused:
        choose_target("auto", tmp_path / "local.json", {})

    assert "No AWS Region" in str(refused.value) and "\n" not in str(refused.value)


@pytest.mark.usefixtures("no_aws")
def test_aws_without_credentials_says_what_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")

    with pytest.raises(TargetError, match="No AWS credentials"):
        choose_target("aws", tmp_path / "local.json", {})


@pytest.mark.usefixtures("no_aws")
def test_aws_names_the_profile_and_region_it_uses(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")

    target = choose_target("aws", tmp_path / "local.json", {})

    assert target.kind == "aws"
    assert "Region eu-west-1" in target.description and "profile default" in target.description
