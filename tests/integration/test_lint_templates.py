"""``aurora-clone lint`` and plain cfn-lint with the rules: clean examples, one error per mistake, naming it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from aurora_clone.cli import main
from aurora_clone.lint import RULES_DIR

REPO = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).with_name("cfn-lint")

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Parameters:
  Source:
    Type: String
Conditions:
  Big: !Equals [!Ref AWS::Region, us-east-1]
Resources:
  TestDatabase:
    Type: Custom::AuroraClone
    Properties:
      ServiceToken: !ImportValue aurora-clone-ServiceToken
      ServiceTimeout: 3600
      SourceClusterId: !Ref Source
      InstanceClass: db.r6g.large
      InstanceCount: 2
      Tags:
        - Key: Stack
          Value: !Ref AWS::StackName
        - Key: Source
          Value: !Ref Source
Outputs:
  Endpoint:
    Value: !GetAtt TestDatabase.Endpoint
  Url:
    Value: !Sub "mysql://${TestDatabase.Endpoint}:${TestDatabase.Port}"
  ClusterId:
    Condition: Big
    Value: !GetAtt [TestDatabase, ClusterId]
"""


def _lint(tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> tuple[int, list[dict[str, Any]]]:
    template = tmp_path / "template.yaml"
    template.write_text(text, encoding="utf-8")
    status = main(["lint", "--format", "json", str(template)])
    return status, json.loads(capsys.readouterr().out)


def _with(old: str, new: str) -> str:
    assert TEMPLATE.count(old) == 1
    return TEMPLATE.replace(old, new)


@pytest.mark.parametrize("example", sorted(REPO.glob("example/*.yaml")), ids=lambda path: path.name)
def test_lint_examples_areClean(example: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["lint", "--format", "json", str(example)])
    assert (status, json.loads(capsys.readouterr().out)) == (0, [])


def test_lint_theTestTemplate_isClean(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _lint(tmp_path, capsys, TEMPLATE) == (0, [])


@pytest.mark.parametrize(
    ("old", "new", "named"),
    [
        pytest.param(
            "InstanceClass:", "InstanceClas:", ["InstanceClas", "did you mean 'InstanceClass'"], id="misspelled"
        ),
        pytest.param("InstanceCount: 2", "InstanceCount: two", ["InstanceCount", '"two"'], id="wrong-type"),
        pytest.param("InstanceCount: 2", "InstanceCount: 20", ["InstanceCount", "20", "16"], id="out-of-range"),
        pytest.param(
            "InstanceCount: 2", 'InstanceCount: "20"', ["InstanceCount", "20", "16"], id="string-out-of-range"
        ),
        pytest.param("      SourceClusterId: !Ref Source\n", "", ["SourceClusterId"], id="missing-source"),
        pytest.param(
            "!GetAtt TestDatabase.Endpoint", "!GetAtt TestDatabase.Endpiont", ["Endpiont", "'Endpoint'"], id="getatt"
        ),
        pytest.param("${TestDatabase.Port}", "${TestDatabase.Prot}", ["Prot", "'Port'"], id="sub-attribute"),
        pytest.param("InstanceCount: 2", "InstanceCount: !If [Big, 40, 2]", ["InstanceCount", "40"], id="if-branch"),
        pytest.param("Key: Stack", "Key: aws:stack", ["Tags[0].Key", "aws:stack"], id="reserved-tag"),
        pytest.param("ServiceTimeout: 3600", "ServiceTimeout: 7200", ["ServiceTimeout", "3600"], id="timeout-range"),
    ],
)
def test_lint_oneMistake_givesOneErrorNamingIt(
    old: str, new: str, named: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, matches = _lint(tmp_path, capsys, _with(old, new))
    assert status == 2
    assert len(matches) == 1, [match["Message"] for match in matches]
    assert matches[0]["Rule"]["Id"] in ("E9101", "E9102")
    for text in named:
        assert text in matches[0]["Message"]


def test_lint_aServiceTimeoutOfTheWrongType_isReportedOnceByCfnLintItself(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, matches = _lint(tmp_path, capsys, _with("ServiceTimeout: 3600", "ServiceTimeout: an hour"))
    assert status == 2
    assert [match["Rule"]["Id"] for match in matches] == ["E3012"]


def test_lint_errorLocation_isTheMistakesLine(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _with("InstanceCount: 2", "InstanceCount: 20")
    _, matches = _lint(tmp_path, capsys, text)
    line = text.splitlines().index("      InstanceCount: 20") + 1
    assert matches[0]["Location"]["Start"]["LineNumber"] == line


def test_lint_passesCfnLintOptionsThrough(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    template = tmp_path / "template.yaml"
    template.write_text(_with("InstanceCount: 2", "InstanceCount: 20"), encoding="utf-8")
    assert main(["lint", "--ignore-checks", "E9101", "--format", "json", str(template)]) == 0
    assert json.loads(capsys.readouterr().out) == []


def _cfn_lint(arguments: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CFN_LINT), *arguments], cwd=cwd, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture
def misspelled(tmp_path: Path) -> Path:
    template = tmp_path / "template.yaml"
    template.write_text(_with("InstanceClass:", "InstanceClas:"), encoding="utf-8")
    return template


def test_plainCfnLint_withTheRulesDirectory_reportsTheMistake(misspelled: Path) -> None:
    result = _cfn_lint(["--append-rules", str(RULES_DIR), "--", str(misspelled)], misspelled.parent)
    assert result.returncode == 2
    assert "E9101" in result.stdout
    assert "InstanceClas" in result.stdout


def test_plainCfnLint_withACfnlintrcNamingTheRulesModule_reportsTheMistake(misspelled: Path) -> None:
    (misspelled.parent / ".cfnlintrc").write_text(
        "append_rules:\n  - aurora_clone.lint.custom_aurora_clone\n", encoding="utf-8"
    )
    result = _cfn_lint([misspelled.name], misspelled.parent)
    assert result.returncode == 2
    assert "E9101" in result.stdout
