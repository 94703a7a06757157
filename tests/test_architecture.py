"""The layout holds: rooms import only the rooms below them, no import cycle, small modules, a cheap
``import spectrum_tune``. See docs/architecture.md; this test is what keeps that page true."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "spectrum_tune"
MAX_LINES = 450

# room -> the rooms it may import (besides itself and the package root, which only holds
# __version__ and re-exports lazily by name, so importing it loads nothing).
BOTTOM = "bottom"  # errors.py, io.py
ALLOWED: dict[str, set[str]] = {
    BOTTOM: set(),
    "world": {BOTTOM},
    "models": {BOTTOM, "world"},
    "training": {BOTTOM, "models"},
    "evaluation": {BOTTOM, "models", "training"},
    "analysis": {BOTTOM, "models", "training", "evaluation"},
    "hub": {BOTTOM, "models", "training", "evaluation"},
    "rl": {BOTTOM, "models", "training", "evaluation"},
    "data_build": {BOTTOM, "models", "training", "evaluation", "analysis"},
    "demo": {BOTTOM, "models", "world", "training", "evaluation", "analysis", "hub", "rl"},
    "cli": {
        BOTTOM,
        "models",
        "world",
        "training",
        "evaluation",
        "analysis",
        "hub",
        "rl",
        "demo",
        "data_build",
    },
    "root": {BOTTOM},
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _room(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "root"
    if parts[1] in {"errors", "io", "text"}:
        return BOTTOM
    return parts[1]


def _modules() -> dict[str, Path]:
    # the evaluate module scripts are loaded by `evaluate` from their files, not imported by us
    paths = [path for path in PACKAGE.rglob("*.py") if "evaluate_modules" not in path.parts]
    return {_module_name(path): path for path in paths}


def _imports(
    module: str, path: Path, *, modules_only: bool = False, known: set[str] | frozenset[str] = frozenset()
) -> set[str]:
    """Every module of ours that ``module`` imports, at top level or inside functions (with
    ``modules_only``: just the ``from X`` / ``import X`` targets, not ``X.name``). ``from X import
    a, b`` where every ``X.a`` is a module in ``known`` depends on those submodules, not on
    ``X/__init__``: Python has already run X's __init__ (or is running it) as their parent."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            members = [f"{target}.{alias.name}" for alias in node.names]
            submodules_only = not modules_only and all(member in known for member in members)
            names = ([] if submodules_only else [target]) + ([] if modules_only else members)
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found.update(name for name in names if name.split(".")[0] == "spectrum_tune")
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {
        name: {target for target in _imports(name, path, known=known) if target in known and target != name}
        for name, path in modules.items()
    }


def _violations(graph: dict[str, set[str]]) -> list[str]:
    return [
        f"{module} ({_room(module)}) imports {target} ({_room(target)})"
        for module, targets in graph.items()
        for target in targets
        if _room(target) not in {_room(module), "root"} and _room(target) not in ALLOWED[_room(module)]
    ]


def _cycles(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        # A package's __init__ importing its submodules is an edge like any other: a circle through
        # it (tasks -> benchmarks/__init__ -> benchmarks.x -> tasks) is a circle inside a room.
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return cycles


def test_every_room_imports_only_the_rooms_below_it():
    violations = _violations(_graph())
    assert not violations, "\n".join(violations)


def test_every_import_of_ours_names_an_existing_module():
    """Lazy imports inside functions run only on some paths; a stale one must fail here, not there."""
    modules = _modules()
    missing = [
        f"{name} imports {target}"
        for name, path in modules.items()
        for target in _imports(name, path, modules_only=True)
        if target not in modules
    ]
    assert not missing, "\n".join(missing)


def test_no_import_cycle():
    cycles = _cycles(_graph())
    assert not cycles, "\n".join(cycles)


def test_the_checks_catch_an_upward_import_and_a_cycle():
    graph = _graph()
    graph["spectrum_tune.training.data"].add("spectrum_tune.evaluation.score")  # score imports data
    assert _violations(graph) == [
        "spectrum_tune.training.data (training) imports spectrum_tune.evaluation.score (evaluation)"
    ]
    assert any("spectrum_tune.training.data" in cycle for cycle in _cycles(graph))


def test_the_cycle_check_sees_a_circle_inside_a_room_through_a_package():
    """The circle that was cut: evaluation.tasks imported evaluation.benchmarks, whose loaders
    imported Item/Task back from evaluation.tasks (now evaluation.items)."""
    graph = _graph()
    assert "spectrum_tune.evaluation.benchmarks.noveltybench" in graph["spectrum_tune.evaluation.benchmarks"]
    graph["spectrum_tune.evaluation.tasks"].add("spectrum_tune.evaluation.benchmarks")
    graph["spectrum_tune.evaluation.benchmarks.noveltybench"].add("spectrum_tune.evaluation.tasks")
    assert any(
        "spectrum_tune.evaluation.benchmarks.noveltybench -> spectrum_tune.evaluation.tasks" in cycle
        for cycle in _cycles(graph)
    )


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_small(name):
    lines = len(_modules()[name].read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines (split it by job; limit {MAX_LINES})"


def test_import_spectrum_tune_imports_no_torch():
    code = "import sys, spectrum_tune; print('torch' in sys.modules, 'trl' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
