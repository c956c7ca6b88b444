"""The package's import graph: no cycles, and the layering of ../shared/DESIGN.md (parsed, not imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hf_distill"
SHIPPING = {"bench", "hub", "cards", "export", "pipelines", "efficiency", "cli"}
TRAINING = {"trainer", "signals", "collator", "args", "validate"}


def _module(path: Path) -> str:
    rel = path.relative_to(PKG).with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    return ".".join(parts) or "__init__"


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """hf_distill modules imported by ``path`` (relative and absolute), at module level or anywhere."""
    tree = ast.parse(path.read_text())
    mod = _module(path)
    package = mod.split(".")[:-1] if path.name != "__init__.py" else mod.split(".") if mod != "__init__" else []
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            elif node.module and node.module.startswith("hf_distill"):
                target = node.module.removeprefix("hf_distill").lstrip(".")
            else:
                continue
            names = [f"{target}.{a.name}" if target else a.name for a in node.names]
            # ``from . import x`` imports x; the package itself is already being imported
            for name in ([] if node.level and not node.module else [target]) + names:
                if name and (PKG / Path(*name.split("."))).with_suffix(".py").is_file():
                    found.add(name)
                elif name and (PKG / Path(*name.split(".")) / "__init__.py").is_file():
                    found.add(name)
    return found - {mod}


def _graph(top_level_only: bool) -> dict[str, set[str]]:
    return {_module(p): _imports(p, top_level_only) for p in PKG.rglob("*.py")}


def test_no_import_cycle_at_module_level():
    graph = _graph(top_level_only=True)
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for nxt in graph.get(node, ()):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack, node, nxt]))
            if nxt not in state:
                visit(nxt, [*stack, node])
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])


def test_layers_hold_for_every_import_even_lazy_ones():
    graph = _graph(top_level_only=False)
    for mod, deps in graph.items():
        top = mod.split(".")[0]
        tops = {d.split(".")[0] for d in deps}
        if top == "students":  # saved students carry these files as remote code
            assert tops <= {"students"}, (mod, deps)
        if top == "losses":
            assert not tops & {"trainer", *SHIPPING}, (mod, deps)
            assert {d for d in deps if d.startswith("students")} <= {"students.crf"}, (mod, deps)
        if top in TRAINING or top in ("losses", "data", "metrics", "base"):
            assert not tops & SHIPPING, (mod, deps)
        if top in SHIPPING - {"cli"}:  # shipping never imports training
            assert not tops & {"trainer", "args", "signals", "losses", "cache"}, (mod, deps)
        if top == "metrics":
            assert tops <= {"base"}, (mod, deps)
        if top == "base":
            assert not deps, (mod, deps)
