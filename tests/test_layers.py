"""The package's import graph: no cycles, and the layering of docs/architecture.md (parsed, not imported)."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "hf_distill"
SHIPPING = {"shipping", "cli"}
TRAINING = {"training"}
#: orchestration: runs many models, picks, reports; nothing below it imports it
ORCHESTRATION = {"zoo", "runs", "demo", "cli"}


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
            assert "training.trainer" not in deps and not tops & SHIPPING, (mod, deps)
            assert {d for d in deps if d.startswith("students")} <= {"students.crf"}, (mod, deps)
        if top in TRAINING or top in ("losses", "data", "metrics", "base"):
            assert not tops & SHIPPING, (mod, deps)
        if top == "shipping":  # shipping reads saved models: never the trainer, its arguments, signals or losses
            assert not deps & {"training.trainer", "training.args", "training.signals"}, (mod, deps)
            assert not tops & {"losses", "cache"}, (mod, deps)
        if top == "metrics":
            assert tops <= {"base"}, (mod, deps)
        if top == "base":
            assert not deps, (mod, deps)


def test_orchestration_sits_on_top_of_the_core():
    graph = _graph(top_level_only=False)
    for mod, deps in graph.items():
        top = mod.split(".")[0]
        if top in ORCHESTRATION or mod == "__init__":
            continue
        assert not {d.split(".")[0] for d in deps} & ORCHESTRATION, (mod, deps)
    # the zoo's modules: specs and selection are pure; the run sits on top of the others
    zoo = {m: {d for d in deps if d.startswith("zoo.")} for m, deps in graph.items() if m.startswith("zoo.")}
    assert not zoo["zoo.selection"] and zoo["zoo.specs"] <= {"zoo.args"}, zoo  # args: type hints only
    assert not any("zoo.run" in deps for m, deps in zoo.items() if m != "zoo"), zoo


def test_the_library_never_reaches_outside_the_package():
    """Recipes and benchmarks are scripts (a wheel does not install them), and ../shared is this machine's."""
    for path in PKG.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                assert node.module.split(".")[0] not in ("recipes", "benchmarks", "tests"), (path, node.module)
            if isinstance(node, ast.Import):
                assert not any(a.name.split(".")[0] in ("recipes", "benchmarks") for a in node.names), path
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert "../shared" not in node.value and "recipes/" not in node.value, (path, node.value[:80])


def test_every_module_names_its_job_and_stays_small():
    for path in PKG.rglob("*.py"):
        text = path.read_text()
        assert ast.get_docstring(ast.parse(text)), f"{path.relative_to(PKG)}: no opening docstring"
        assert text.count("\n") <= 400, f"{path.relative_to(PKG)}: {text.count(chr(10))} lines (at most 400)"


def test_every_relative_import_resolves_even_lazy_ones():
    """An import inside a function runs only when that path does: resolve each one here (a moved module breaks
    such an import silently until a user reaches it)."""
    import importlib

    bad = []
    for path in PKG.rglob("*.py"):
        parts = ["hf_distill", *_module(path).split(".")] if _module(path) != "__init__" else ["hf_distill"]
        package = parts if path.name == "__init__.py" else parts[:-1]
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.ImportFrom) and node.level):
                continue
            target = ".".join(package[: len(package) - (node.level - 1)] + ([node.module] if node.module else []))
            try:
                module = importlib.import_module(target)
                for alias in node.names:
                    if not hasattr(module, alias.name):
                        importlib.import_module(f"{target}.{alias.name}")
            except ImportError as e:
                bad.append(f"{path.relative_to(PKG)}: from {'.' * node.level}{node.module or ''} ({e})")
    assert not bad, "\n".join(bad)
