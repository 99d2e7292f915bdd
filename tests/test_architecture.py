"""The package's import structure (docs/architecture.md): layers import downwards only, and no two
files or folders import each other, directly or around a loop. Imports are read from the source
(every `import` and `from ... import` statement, inside functions and TYPE_CHECKING blocks too)."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "posecli"

# Lowest first; a module may import modules of its own layer or of a lower one.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("core", ("posecli", "posecli.errors", "posecli.skeleton", "posecli.options", "posecli.limits",
              "posecli.atomic", "posecli.device", "posecli.output_path", "posecli.geometry", "posecli.metrics")),
    ("data", ("posecli.data",)),
    ("models", ("posecli.models",)),
    ("families", ("posecli.families",)),
    ("config", ("posecli.config",)),
    ("engine", ("posecli.engine",)),
    ("eval", ("posecli.eval",)),
    ("infer", ("posecli.infer",)),
    ("cli", ("posecli.cli", "posecli.__main__")),
]

# Known exceptions, each an (importer, imported) file pair; none today. A new one needs a reason
# here and in docs/architecture.md.
ALLOWED: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """posecli module -> the posecli modules it imports (a `from pkg import name` of a submodule
    counts as importing that submodule)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [f"{node.module}.{a.name}" for a in node.names]
                targets = [t if t in modules else node.module for t in targets]
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target.startswith("posecli") and target != name:
                    graph[name].add(target)
    return graph


def layer_of(module: str) -> int:
    best, rank = -1, -1
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, rank = len(prefix), i
    assert rank >= 0, f"{module} belongs to no layer: add it to LAYERS (and docs/architecture.md)"
    return rank


def folder_of(module: str) -> str:
    """The top-level unit a module belongs to: its first-level package, or the root module itself."""
    parts = module.split(".")
    return ".".join(parts[:2])


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import loop of the graph as [a, b, ..., a], or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def _without_allowed(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    return {m: {t for t in targets if (m, t) not in ALLOWED} for m, targets in graph.items()}


def test_layers_import_downwards_only():
    graph = _without_allowed(import_graph())
    wrong = sorted(f"{m} ({LAYERS[layer_of(m)][0]}) imports {t} ({LAYERS[layer_of(t)][0]})"
                   for m, targets in graph.items() for t in targets if layer_of(t) > layer_of(m))
    assert not wrong, "imports against the layer order:\n" + "\n".join(wrong)


def test_no_import_cycle_between_files():
    cycle = find_cycle(_without_allowed(import_graph()))
    assert cycle is None, "file import cycle: " + " -> ".join(cycle or [])


def test_no_import_cycle_between_folders():
    folders: dict[str, set[str]] = defaultdict(set)
    for module, targets in _without_allowed(import_graph()).items():
        folders[folder_of(module)] |= {folder_of(t) for t in targets if folder_of(t) != folder_of(module)}
    cycle = find_cycle(dict(folders))
    assert cycle is None, "folder import cycle: " + " -> ".join(cycle or [])


def test_data_imports_no_model():
    graph = import_graph()
    offenders = sorted(f"{m} -> {t}" for m, targets in graph.items() if m.startswith("posecli.data")
                       for t in targets if t.startswith("posecli.models"))
    assert not offenders


def test_allowed_exceptions_still_exist():
    """An exception that is no longer needed leaves the list (so the list only shrinks)."""
    graph = import_graph()
    assert all(t in graph.get(m, set()) for m, t in ALLOWED), sorted(
        (m, t) for m, t in ALLOWED if t not in graph.get(m, set()))


def test_the_checker_sees_a_loop_and_a_wrong_way_import():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer_of("posecli.data.cache") < layer_of("posecli.models.tcn") < layer_of("posecli.families.base")
    assert layer_of("posecli.engine.trainer") > layer_of("posecli.config") > layer_of("posecli.families")


def test_functions_read_on_one_screen():
    """No function in the engine, evaluation, inference or the families runs over 60 lines
    (docs/architecture.md): longer work is split into named steps."""
    long = []
    for folder in ("engine", "eval", "infer", "families"):
        for path in sorted((PACKAGE / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > 60:
                        long.append(f"{path.relative_to(PACKAGE)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long
