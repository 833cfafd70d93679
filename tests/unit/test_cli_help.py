"""Every argument of every aurora-clone command says what it is and, when it has one, its default."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

import pytest

from aurora_clone.cli import build_parser


def commands(
    parser: argparse.ArgumentParser, path: str = "aurora-clone"
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, f"{path} {name}")


ARGUMENTS = [
    (path, action)
    for path, parser in commands(build_parser())
    for action in parser._actions
    if not isinstance(action, argparse._HelpAction | argparse._SubParsersAction | argparse._VersionAction)
    and action.help != argparse.SUPPRESS
]


def test_the_commands_were_found() -> None:
    paths = {path for path, _action in ARGUMENTS}
    assert {"aurora-clone local serve", "aurora-clone list", "aurora-clone sweep", "aurora-clone local up"} <= paths


@pytest.mark.parametrize(("path", "action"), ARGUMENTS, ids=[f"{p} {a.dest}" for p, a in ARGUMENTS])
def test_every_argument_has_help_naming_its_default(path: str, action: argparse.Action) -> None:
    assert action.help, f"{path} {action.dest} has no help"
    takes_a_value = action.nargs != 0
    if takes_a_value and action.option_strings:
        assert "default" in action.help, f"{path} {action.option_strings[0]}: {action.help}"
