"""Lint users' templates: cfn-lint rules and a JSON schema for ``Custom::AuroraClone``.

This directory is a cfn-lint rules directory (``cfn-lint --append-rules``): cfn-lint imports every module in
it whose name starts with a letter, so this one (and anything else not a rule) starts with an underscore.
The Lambda handler never imports this package; cfn-lint is not in the Lambda zip.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

RULES_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = RULES_DIR / "custom-auroraclone.schema.json"


def run_cfn_lint(arguments: Sequence[str]) -> int:
    """Run cfn-lint with these rules appended and ``arguments`` (templates and any cfn-lint options).

    Returns cfn-lint's exit status: 0 clean, otherwise a bit mask (2 errors, 4 warnings, 8 informational).
    """
    try:
        from cfnlint.runner.cli import main
    except ImportError:
        print("aurora-clone lint needs cfn-lint: pip install cfn-lint", file=sys.stderr)
        return 2
    # cfn-lint's entry point reads its command line from sys.argv and exits with its status.
    saved = sys.argv
    # "=": --append-rules takes several values and would take the templates after it too.
    sys.argv = ["cfn-lint", f"--append-rules={RULES_DIR}", *arguments]
    try:
        main()
    except SystemExit as done:
        return done.code if isinstance(done.code, int) else 1
    finally:
        sys.argv = saved
    return 0
