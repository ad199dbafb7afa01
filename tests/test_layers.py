"""Imports point down the layers and never go round in a circle (design.md, "Layers").

Every module of ``svpo_harness/`` (and ``tasks/``, installed as ``svpo_harness.tasks``) is read
with ``ast``; every import counts, also one inside a function or under ``TYPE_CHECKING``.
``from package import name`` counts as an import of the module that defines ``name``: the
package's ``__init__`` re-exports (plain, or under ``TYPE_CHECKING`` for a lazy ``__getattr__``)
are followed, so a package's public API does not hide where an arrow really points.

The checker checks itself first (``test_checker_reports_...``): a small package written to a
temporary folder, with one upward import and one circle, must give both reports.

``python tests/test_layers.py`` prints the report for the source tree.
"""

from __future__ import annotations

import ast
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Lowest first; a module may import its own layer and those listed before it. Longest prefix wins.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    # worker processes and the code sandbox; the package root holds only __version__
    ("runtime", ("svpo_harness", "svpo_harness.runtime", "svpo_harness.sandbox")),
    ("core", ("svpo_harness.core", "svpo_harness.grading", "svpo_harness.data")),
    ("engines", ("svpo_harness.engines",)),
    ("pipelines", ("svpo_harness.pipelines",)),
    (
        "integrations",
        (
            "svpo_harness.cli",
            "svpo_harness.lm_eval_loading",
            "svpo_harness.lm_eval_model",
            "svpo_harness.lm_eval_plugin",
            "svpo_harness.lm_eval_search",
            "svpo_harness.lm_eval_vllm",
            "svpo_harness.tasks",
        ),
    ),
]
# Arrows that point down but are still not allowed: (importer prefix, imported prefix, why).
FORBIDDEN = [
    (
        "svpo_harness.core",
        "svpo_harness.sandbox",
        "core is handed its code runner (core/tool_policy.py RunFn), never imports the sandbox",
    ),
]


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int


def discover(roots: dict[str, Path]) -> dict[str, Path]:
    """Module name -> file, for each package name -> folder in ``roots``."""
    modules: dict[str, Path] = {}
    for package, folder in roots.items():
        for path in sorted(folder.rglob("*.py")):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join([package, *parts])] = path
    return modules


def _is_package(name: str, modules: dict[str, Path]) -> bool:
    return name in modules and modules[name].name == "__init__.py"


def _absolute(module: str, node: ast.ImportFrom, modules: dict[str, Path]) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    if not _is_package(module, modules):
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _raw_imports(module: str, modules: dict[str, Path]) -> list[tuple[str, str | None, int]]:
    """(module, name or None, line) for every import statement anywhere in the file."""
    tree = ast.parse(modules[module].read_text(), str(modules[module]))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, None, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            source = _absolute(module, node, modules)
            found += [(source, alias.name, node.lineno) for alias in node.names]
    return found


def _defined_names(module: str, modules: dict[str, Path]) -> set[str]:
    tree = ast.parse(modules[module].read_text())
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                names |= {n.id for n in ast.walk(target) if isinstance(n, ast.Name)}
    return names


def resolve(source: str, name: str | None, modules: dict[str, Path], seen=()) -> str | None:
    """The module of ours that ``from source import name`` (or ``import source``) reaches."""
    if name is None:
        while source and source not in modules:  # `import a.b.c` of ours: the deepest we have
            source = source.rpartition(".")[0]
        return source or None
    if f"{source}.{name}" in modules:
        return f"{source}.{name}"
    if source not in modules:
        return None
    if _is_package(source, modules) and name not in _defined_names(source, modules):
        for sub, sub_name, _ in _raw_imports(source, modules):
            if sub_name == name and (sub, name) not in seen:
                found = resolve(sub, name, modules, (*seen, (sub, name)))
                if found:
                    return found
    return source


def edges(modules: dict[str, Path]) -> list[Edge]:
    found = set()
    for module in modules:
        for source, name, line in _raw_imports(module, modules):
            target = resolve(source, name, modules)
            if target and target != module:
                found.add(Edge(module, target, line))
    return sorted(found, key=lambda e: (e.importer, e.line, e.imported))


def layer_of(module: str, layers=LAYERS) -> int:
    best, best_len = -1, -1
    for rank, (_, prefixes) in enumerate(layers):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best_len:
                best, best_len = rank, len(prefix)
    if best < 0:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS in {__file__}")
    return best


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def upward(modules: dict[str, Path], layers=LAYERS, forbidden=FORBIDDEN) -> list[str]:
    problems = []
    for edge in edges(modules):
        low, high = layer_of(edge.importer, layers), layer_of(edge.imported, layers)
        where = f"{_rel(modules[edge.importer])}:{edge.line}"
        if high > low:
            problems.append(
                f"upward import: {where} ({layers[low][0]}) imports "
                f"{_rel(modules[edge.imported])} ({layers[high][0]})"
            )
        for importer, imported, why in forbidden:
            if _under(edge.importer, importer) and _under(edge.imported, imported):
                problems.append(
                    f"forbidden import: {where} imports {_rel(modules[edge.imported])}: {why}"
                )
    return problems


def private_imports(modules: dict[str, Path]) -> list[str]:
    """``from module import _name`` where the importer is outside the package holding it."""
    problems = []
    for module in modules:
        for source, name, line in _raw_imports(module, modules):
            if not name or not name.startswith("_") or name.startswith("__"):
                continue
            target = resolve(source, name, modules)
            if target is None or target == f"{source}.{name}":
                continue  # not ours, or a private module imported by its package
            package = target if _is_package(target, modules) else target.rpartition(".")[0]
            if not _under(module, package):
                problems.append(
                    f"private import: {_rel(modules[module])}:{line} takes {name} from "
                    f"{_rel(modules[target])}"
                )
    return problems


def circles(modules: dict[str, Path]) -> list[str]:
    """One report per strongly connected component: a shortest circle through it, by file."""
    graph: dict[str, set[str]] = {m: set() for m in modules}
    lines: dict[tuple[str, str], int] = {}
    for edge in edges(modules):
        graph[edge.importer].add(edge.imported)
        lines.setdefault((edge.importer, edge.imported), edge.line)
    problems = []
    for component in _components(graph):
        start = min(component)
        path = _shortest_cycle(start, graph, component)
        steps = [
            f"{_rel(modules[a])}:{lines[a, b]} -> {_rel(modules[b])}"
            for a, b in zip(path, path[1:], strict=False)
        ]
        problems.append("import circle: " + "; ".join(steps))
    return problems


def _components(graph: dict[str, set[str]]) -> list[set[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _shortest_cycle(start: str, graph: dict[str, set[str]], component: set[str]) -> list[str]:
    paths = {start: [start]}
    frontier = [start]
    while frontier:
        nxt_frontier = []
        for node in frontier:
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    return [*paths[node], start]
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    nxt_frontier.append(nxt)
        frontier = nxt_frontier
    raise AssertionError(f"no circle through {start}")


def _rel(path: Path) -> str:
    try:
        return str(path.relative_to(ROOT))
    except ValueError:
        return str(path)


def source_tree() -> dict[str, Path]:
    return discover({"svpo_harness": ROOT / "svpo_harness", "svpo_harness.tasks": ROOT / "tasks"})


def test_no_upward_imports():
    problems = upward(source_tree())
    assert not problems, "\n".join(problems)


def test_no_import_circles():
    problems = circles(source_tree())
    assert not problems, "\n".join(problems)


def test_no_private_names_from_other_packages():
    problems = private_imports(source_tree())
    assert not problems, "\n".join(problems)


def test_package_apis_resolve_to_their_modules():
    """A package's ``__all__`` names that it does not define are imported from a submodule
    (for a lazy package: under ``TYPE_CHECKING``, what this checker and type checkers read), and
    are that submodule's objects (what a lazy ``__getattr__`` returns)."""
    import importlib

    modules = source_tree()
    for name, path in modules.items():
        if path.name != "__init__.py" or "__all__" not in path.read_text():
            continue
        package = importlib.import_module(name)
        for public in set(package.__all__) - _defined_names(name, modules):
            where = resolve(name, public, modules)
            assert where != name, f"{_rel(path)}: {public} is not imported from a submodule"
            value = getattr(importlib.import_module(where), public)
            assert getattr(package, public) is value, f"{_rel(path)}: {public} is not {where}'s"


def test_every_module_has_a_layer():
    for module in source_tree():
        layer_of(module)


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_reports_an_upward_import_and_a_circle(tmp_path):
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "",
            "low/__init__.py": "from pkg.low.a import helper\nfrom pkg.low.c import C\n",
            # lazy and behind the package's re-export: still low -> high
            "low/a.py": "def helper():\n    from pkg.high import run\n    return run\n",
            # a circle inside one layer, one side only under TYPE_CHECKING
            "low/b.py": "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n    from pkg.low.c import C\n",
            "low/c.py": "from . import b\nclass C: ...\n_hidden = 1\n",
            "high/__init__.py": "from .impl import run\n",
            # through pkg/low/__init__.py (which imports a.py, which imports this) would be a
            # circle; the arrow goes to pkg/low/c.py, where C is defined
            "high/impl.py": "from pkg.low import C\nfrom pkg.low.c import _hidden\n"
            "def run(): ...\n",
        },
    )
    modules = discover({"pkg": tmp_path / "pkg"})
    layers = [("low", ("pkg", "pkg.low")), ("high", ("pkg.high",))]
    problems = upward(modules, layers, forbidden=[])
    assert len(problems) == 1, problems
    assert "pkg/low/a.py:2 (low) imports " in problems[0]
    assert problems[0].endswith("pkg/high/impl.py (high)"), problems  # not pkg/high/__init__.py
    found = circles(modules)
    assert len(found) == 1, found
    assert "pkg/low/b.py:3 -> " in found[0] and "pkg/low/c.py:1 -> " in found[0], found
    assert not any("impl.py" in line for line in found), found
    hidden = private_imports(modules)
    assert hidden == [
        "private import: " + str(tmp_path / "pkg/high/impl.py") + ":2 takes "
        "_hidden from " + str(tmp_path / "pkg/low/c.py")
    ], hidden


def test_checker_reports_a_forbidden_arrow(tmp_path):
    _write(
        tmp_path / "pkg",
        {"__init__.py": "", "run.py": "X = 1\n", "core.py": "import pkg.run\n"},
    )
    modules = discover({"pkg": tmp_path / "pkg"})
    layers = [("runtime", ("pkg", "pkg.run")), ("core", ("pkg.core",))]
    problems = upward(modules, layers, forbidden=[("pkg.core", "pkg.run", "injected")])
    assert len(problems) == 1 and problems[0].startswith("forbidden import: "), problems


if __name__ == "__main__":
    tree = source_tree()
    report = upward(tree) + circles(tree) + private_imports(tree)
    print("\n".join(report) or "no upward imports, no circles")
    sys.exit(1 if report else 0)
