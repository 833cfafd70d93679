"""Publishing: the Serverless Application Repository metadata, the version in pyproject.toml, ./build.sh publish."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
from cfnlint.decode import decode

from aurora_clone.cli import main

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]["version"]
# https://semver.org's regular expression for a version.
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)"
    r"(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
# The Serverless Application Repository's rules (CreateApplication).
FIELDS = {
    "Name",
    "Description",
    "Author",
    "SpdxLicenseId",
    "LicenseUrl",
    "ReadmeUrl",
    "Labels",
    "HomePageUrl",
    "SemanticVersion",
    "SourceCodeUrl",
}
LOCAL_FILES_MAX_BYTES = 5 * 1024 * 1024


def _metadata(template: Path) -> dict[str, Any]:
    decoded, problems = decode(str(template))
    assert not problems, problems
    application: dict[str, Any] = decoded["Metadata"]["AWS::ServerlessRepo::Application"]
    return application


def _intrinsic_functions(value: Any) -> list[str]:
    if isinstance(value, dict):
        here = [key for key in value if key == "Ref" or key.startswith("Fn::")]
        return here + [found for item in value.values() for found in _intrinsic_functions(item)]
    if isinstance(value, list):
        return [found for item in value for found in _intrinsic_functions(item)]
    return []


def check_metadata(application: dict[str, Any], template_dir: Path) -> None:
    """Assert the repository's rules for CreateApplication; local files are relative to the template."""
    assert set(application) <= FIELDS
    assert not _intrinsic_functions(application)
    assert re.fullmatch(r"[a-zA-Z0-9-]{1,140}", application["Name"])
    assert 1 <= len(application["Description"]) <= 256
    assert re.fullmatch(r"[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?", application["Author"])
    assert len(application["Author"]) <= 127
    assert application["SpdxLicenseId"] == "Apache-2.0"
    assert len(application["Labels"]) <= 10
    for label in application["Labels"]:
        assert re.fullmatch(r"[a-zA-Z0-9+\-_:/@]{1,127}", label), label
    assert SEMVER.match(application["SemanticVersion"])
    for field in ("LicenseUrl", "ReadmeUrl"):
        named = template_dir / application[field]
        assert named.is_file(), named
        assert named.stat().st_size <= LOCAL_FILES_MAX_BYTES


def test_templateMetadata_followsTheRepositorysRules() -> None:
    check_metadata(_metadata(REPO / "template.yaml"), REPO)


def test_templateMetadata_SemanticVersion_isPyprojectsVersion() -> None:
    assert _metadata(REPO / "template.yaml")["SemanticVersion"] == VERSION


def test_license_isTheApacheLicenseThatPyprojectNames() -> None:
    assert 'license = { text = "Apache-2.0" }' in (REPO / "pyproject.toml").read_text(encoding="utf-8")
    text = (REPO / "LICENSE").read_text(encoding="utf-8")
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert "END OF TERMS AND CONDITIONS" in text


def test_cliVersion_isTheInstalledPackagesVersion_andPyprojects(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"aurora-clone {importlib.metadata.version('aurora-clone')}"
    assert importlib.metadata.version("aurora-clone") == VERSION


def _build(command: str, environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(REPO / "build.sh"), command],
        cwd=REPO,
        env=environment,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


def _without_aws_settings() -> dict[str, str]:
    unset = {"LAMBDA_S3_BUCKET", "LAMBDA_S3_PREFIX", "SOURCE_CODE_URL"}
    return {key: value for key, value in os.environ.items() if key not in unset}


def _tools_only(bin_dir: Path) -> Path:
    """``bin_dir`` with the tools build.sh runs, and no aws or sam CLI."""
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "cp", "rm", "mkdir", "find", "sed", "grep", "cat"):
        found = subprocess.run(["bash", "-c", f"command -v {tool}"], capture_output=True, text=True, check=True)
        (bin_dir / tool).symlink_to(found.stdout.strip())
    return bin_dir


def test_publish_withoutItsVariablesOrTheAwsCli_saysWhatIsMissing_andExits2(tmp_path: Path) -> None:
    bin_dir = _tools_only(tmp_path / "bin")
    result = _build("publish", {**_without_aws_settings(), "PATH": str(bin_dir)})
    assert result.returncode == 2
    assert result.stderr.strip() == "build.sh: publish needs: LAMBDA_S3_BUCKET LAMBDA_S3_PREFIX the aws CLI on PATH"


# A stand-in for the aws CLI: records each call, writes the packaged template (as JSON, with the local files
# it would upload replaced by S3 addresses) and answers list-applications with no application.
FAKE_AWS = """\
#!{python}
import json, sys
from cfnlint.decode import decode

arguments = sys.argv[1:]
with open({log!r}, "a", encoding="utf-8") as log:
    log.write(json.dumps(arguments) + "\\n")
if arguments[:2] == ["cloudformation", "package"]:
    option = lambda name: arguments[arguments.index(name) + 1]
    template, _ = decode(option("--template-file"))
    application = template["Metadata"]["AWS::ServerlessRepo::Application"]
    for field in ("LicenseUrl", "ReadmeUrl"):
        application[field] = "https://s3.amazonaws.com/" + option("--s3-bucket") + "/" + application[field]
    with open(option("--output-template-file"), "w", encoding="utf-8") as output:
        json.dump(template, output)
elif arguments[:2] == ["serverlessrepo", "list-applications"]:
    print("None")
"""


def test_publish_packagesAndCreatesTheApplicationAtPyprojectsVersion(tmp_path: Path) -> None:
    bin_dir, calls = _tools_only(tmp_path / "bin"), tmp_path / "aws-calls.jsonl"
    aws = bin_dir / "aws"
    aws.write_text(FAKE_AWS.format(python=sys.executable, log=str(calls)), encoding="utf-8")
    aws.chmod(aws.stat().st_mode | stat.S_IXUSR)
    url = "https://example.org/aurora-clone"
    environment = {
        **_without_aws_settings(),
        "PATH": str(bin_dir),  # no sam: the aws CLI's serverlessrepo calls are used
        "PYTHON": sys.executable,
        "LAMBDA_S3_BUCKET": "artifacts",
        "LAMBDA_S3_PREFIX": "aurora-clone",
        "SOURCE_CODE_URL": url,
    }
    result = _build("publish", environment)
    assert result.returncode == 0, result.stderr

    build = REPO / "build"
    # ./build.sh package's output: the zip, and a template ready to publish with the files it names beside it.
    assert (build / "aurora-clone.zip").is_file()
    check_metadata(_metadata(build / "template.yaml"), build)
    assert _metadata(build / "template.yaml")["SourceCodeUrl"] == url

    made = [json.loads(line) for line in calls.read_text(encoding="utf-8").splitlines()]
    assert [call[:2] for call in made] == [
        ["cloudformation", "package"],
        ["serverlessrepo", "list-applications"],
        ["serverlessrepo", "create-application"],
    ]
    assert made[0][made[0].index("--s3-prefix") + 1] == f"aurora-clone/{VERSION}"
    request = json.loads((build / "create-application.json").read_text(encoding="utf-8"))
    assert request["Name"] == "aurora-clone"
    assert request["SemanticVersion"] == VERSION
    assert request["SourceCodeUrl"] == request["HomePageUrl"] == url
    assert request["LicenseUrl"] == "https://s3.amazonaws.com/artifacts/LICENSE"
    assert json.loads(request["TemplateBody"])["Metadata"]["AWS::ServerlessRepo::Application"]["Name"] == "aurora-clone"


def test_package_refusesATemplateWhoseSemanticVersionIsNotPyprojects(tmp_path: Path) -> None:
    copy = tmp_path / "repo"
    copy.mkdir()
    for name in ("build.sh", "pyproject.toml", "LICENSE", "README.md"):
        (copy / name).write_bytes((REPO / name).read_bytes())
    (copy / "template.yaml").write_text(
        textwrap.dedent("""\
            Metadata:
              AWS::ServerlessRepo::Application:
                SemanticVersion: 99.0.0
            """),
        encoding="utf-8",
    )
    result = subprocess.run(
        ["bash", str(copy / "build.sh"), "package"],
        cwd=copy,
        env={**os.environ, "PYTHON": sys.executable},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert f"template.yaml's SemanticVersion is not {VERSION}, the version in pyproject.toml" in result.stderr
