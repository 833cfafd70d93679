"""``aurora-clone local serve --function-parameter KEY=VALUE`` hands the function stack its parameters."""

from __future__ import annotations

from typing import Any

import pytest

from aurora_clone import cli


def test_function_parameters_reach_the_served_world(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def serve(*args: Any) -> int:
        seen["parameters"] = args[5]
        return 0

    monkeypatch.setattr(cli, "serve", serve)

    assert (
        cli.main(
            [
                "local",
                "serve",
                "--function-parameter",
                "ConnectionCheckSubnetIds=subnet-0a,subnet-0b",
                "--function-parameter",
                "PrepareScriptLocations=arn:aws:s3:::masking-scripts/*",
            ]
        )
        == 0
    )
    assert seen["parameters"] == {
        "ConnectionCheckSubnetIds": "subnet-0a,subnet-0b",
        "PrepareScriptLocations": "arn:aws:s3:::masking-scripts/*",
    }


def test_a_function_parameter_without_a_value_is_refused_naming_the_option() -> None:
    with pytest.raises(SystemExit, match="--function-parameter takes KEY=VALUE, got 'ConnectionCheckSubnetIds'"):
        cli.main(["local", "serve", "--function-parameter", "ConnectionCheckSubnetIds"])
