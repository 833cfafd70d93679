"""Where a command acts: the running local world, or AWS through boto3's own profile and Region.

``aurora-clone local serve`` writes a state file (``LocalWorld``: endpoint, CA bundle, Region, the world's
clock, the control port); every other command reads it, so a second terminal needs no pasted ``export``
lines. ``choose_target`` decides, ``Target.apply`` points this process's boto3 and clock at it, and
``Target.description`` is the one line that says which it was.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from aurora_clone import clock as process_clock
from aurora_clone.clock import WORLD_CLOCK_VARIABLE, WorldClock

TargetChoice = Literal["auto", "local", "aws"]
TARGET_CHOICES: tuple[TargetChoice, ...] = ("auto", "local", "aws")
CONNECT_SECONDS = 1.0
START_HINT = "start one with `aurora-clone local serve` in another terminal"
# Settings that would send boto3 elsewhere than the local world, or make it ignore the world's keys.
_AWS_SETTINGS = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


class TargetError(Exception):
    """Nothing to act on: the message says, in one line, what is missing."""


@dataclass(frozen=True)
class LocalWorld:
    """What ``local serve`` tells the other terminals about the world it keeps up."""

    endpoint_url: str
    control_url: str
    environment: dict[str, str]
    pid: int
    function_stack: str
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def clock(self) -> WorldClock:
        return WorldClock.decode(self.environment[WORLD_CLOCK_VARIABLE])

    def write(self, state_file: Path) -> None:
        state_file.parent.mkdir(parents=True, exist_ok=True)
        partial = state_file.with_suffix(".tmp")
        partial.write_text(json.dumps(asdict(self), indent=2))
        partial.replace(state_file)  # readers never see half a file

    @classmethod
    def read(cls, state_file: Path) -> LocalWorld | None:
        """The world the state file describes, if the file exists and is whole."""
        try:
            return cls(**json.loads(state_file.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    @property
    def description(self) -> str:
        return f"the local world at {self.endpoint_url} (Region {self.environment.get('AWS_REGION', '')})"

    def answers(self) -> bool:
        """The world's endpoint accepts connections (its ``serve`` is still running)."""
        address = urlsplit(self.endpoint_url)
        try:
            with socket.create_connection((address.hostname or "localhost", address.port or 443), CONNECT_SECONDS):
                return True
        except OSError:
            return False


def running_world(state_file: Path) -> LocalWorld | None:
    """The local world that is up, per the state file; None when there is none (or it died)."""
    world = LocalWorld.read(state_file)
    return world if world is not None and world.answers() else None


@dataclass(frozen=True)
class Target:
    kind: Literal["local", "aws"]
    description: str
    environment: dict[str, str] = field(default_factory=dict)
    world: LocalWorld | None = None

    def apply(self, environ: MutableMapping[str, str] = os.environ) -> None:
        """Point boto3 (through the environment) and the clock of this process at the target."""
        if self.environment:
            for name in _AWS_SETTINGS:
                environ.pop(name, None)
            environ.update(self.environment)
        world_clock = self.environment.get(WORLD_CLOCK_VARIABLE) or environ.get(WORLD_CLOCK_VARIABLE)
        if world_clock:
            with contextlib.suppress(ValueError):
                process_clock.use(WorldClock.decode(world_clock).now)


def choose_target(choice: TargetChoice, state_file: Path, environ: Mapping[str, str] = os.environ) -> Target:
    """``local``: the running world, or an error; ``aws``: boto3's own configuration; ``auto``: an
    ``AWS_ENDPOINT_URL`` already set is used as it is, else the running world, else AWS."""
    world = None if choice == "aws" else running_world(state_file)
    if choice == "local":
        if world is None:
            raise TargetError(f"No local world is running: {START_HINT}.")
        return _local(world)
    endpoint = environ.get("AWS_ENDPOINT_URL")
    if choice == "auto" and endpoint:
        if world is not None and endpoint.rstrip("/") == world.endpoint_url:
            return _local(world)
        return Target("aws", f"the endpoint in AWS_ENDPOINT_URL ({endpoint}), {_aws_settings(environ)}")
    if choice == "auto" and world is not None:
        return _local(world)
    return _aws(environ)


def _local(world: LocalWorld) -> Target:
    return Target("local", world.description, dict(world.environment), world)


def _aws(environ: Mapping[str, str]) -> Target:
    import boto3
    from botocore.exceptions import BotoCoreError

    try:
        session = boto3.session.Session()
        region = session.region_name
        credentials = session.get_credentials()
    except BotoCoreError as error:  # a broken profile, say
        raise TargetError(f"The AWS configuration cannot be read: {error}") from None
    if not region:
        raise TargetError(
            "No AWS Region: set AWS_DEFAULT_REGION (or a profile's region), or use a local world: " + START_HINT + "."
        )
    if credentials is None:
        raise TargetError("No AWS credentials: configure a profile (aws configure), or " + START_HINT + ".")
    return Target("aws", f"AWS, {_aws_settings(environ, session.profile_name, region)}")


def _aws_settings(environ: Mapping[str, str], profile: str | None = None, region: str | None = None) -> str:
    profile = profile or environ.get("AWS_PROFILE") or environ.get("AWS_DEFAULT_PROFILE") or "default"
    region = region or environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "(none)"
    return f"profile {profile}, Region {region}"
