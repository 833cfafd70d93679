"""aurora-clone local serve / up / down, as a user runs them in two terminals."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "aurora_clone.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_serve_then_up_and_down_run_a_stack_in_the_served_world(tmp_path: Path) -> None:
    state = tmp_path / "local.json"
    serve = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aurora_clone.cli",
            "local",
            "serve",
            "--time-scale",
            "0.002",
            "--state-file",
            str(state),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert serve.stdout is not None
        banner = []
        for line in serve.stdout:  # serve says where it is once the world and the function stack are up
            banner.append(line)
            if line.startswith("Then: aurora-clone local up"):
                break
        assert state.exists(), "".join(banner)
        assert any("export AWS_ENDPOINT_URL=https://localhost:" in line for line in banner)

        up = cli(
            "local", "up", "example/template.yaml", "--param", "SourceClusterId=prod-db", "--state-file", str(state)
        )
        down = cli("local", "down", "template", "--state-file", str(state))
    finally:
        serve.send_signal(signal.SIGTERM)
        serve.wait(timeout=60)

    assert up.returncode == 0, up.stdout + up.stderr
    assert "Stack status: CREATE_COMPLETE" in up.stdout and "Endpoint" in up.stdout
    assert down.returncode == 0, down.stdout + down.stderr
    assert "Stack status: DELETE_COMPLETE" in down.stdout
    assert serve.returncode == 0
    assert not state.exists(), "serve removes its state file when it stops"


def test_up_without_a_served_world_says_how_to_start_one(tmp_path: Path) -> None:
    result = cli("local", "up", "example/template.yaml", "--state-file", str(tmp_path / "none.json"), timeout=60)

    assert result.returncode != 0
    assert "aurora-clone local serve" in result.stderr
