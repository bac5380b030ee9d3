"""The package's layout: the library a user imports, the jobs, the tools; imports go one way.

Every import is read, at module level or inside a function: a library module may import
only the library, a job the library and other jobs, a tool (research or data) anything but
the command line. No two modules may import each other, directly or round a longer loop.
"""

from __future__ import annotations

import ast
from pathlib import Path

import star_scorer

PACKAGE = Path(star_scorer.__file__).resolve().parent
TIERS = {"library": 0, "jobs": 1, "research": 2, "datatools": 2, "cli": 3}


def tier(module: str) -> tuple[str, int]:
    parts = module.split(".")
    if parts[1:2] == ["cli"]:
        return "cli", TIERS["cli"]
    kind = parts[1] if len(parts) > 2 and parts[1] in TIERS else "library"
    return kind, TIERS[kind]


def module_names(package: Path) -> dict[str, Path]:
    out = {}
    for path in package.rglob("*.py"):
        rel = path.relative_to(package.parent).with_suffix("")
        name = ".".join(rel.parts)
        out[name.removesuffix(".__init__")] = path
    return out


def imports_of(path: Path, name: str, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, wherever the import statement stands."""
    root = name.split(".")[0]
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target.split(".")[0] == root and target != name and target != root:
                found.add(target)
    return found


def import_problems(package: Path) -> list[str]:
    modules = module_names(package)
    graph = {name: imports_of(path, name, modules) for name, path in modules.items()}
    problems = []
    for name, targets in sorted(graph.items()):
        for target in sorted(targets):
            (kind, level), (target_kind, target_level) = tier(name), tier(target)
            if target_level > level:
                problems.append(f"{name} ({kind}) imports {target} ({target_kind}): imports go library <- jobs <- tools")
    state: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph.get(name, ())):
            if state.get(target) == 1:
                loop = path[path.index(target):] + [target]
                problems.append("import cycle: " + " -> ".join(loop))
            elif target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return problems


def test_imports_go_one_way_and_never_in_a_circle():
    assert import_problems(PACKAGE) == []


def test_the_checker_finds_a_wrong_way_import_and_a_cycle(tmp_path):
    pkg = tmp_path / "star_scorer"
    (pkg / "jobs").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "jobs" / "__init__.py").write_text("")
    (pkg / "scorer.py").write_text("def load():\n    from star_scorer.jobs import train  # inside a function still counts\n")
    (pkg / "jobs" / "train.py").write_text("from star_scorer import scorer\n")
    (pkg / "a.py").write_text("from star_scorer.b import x\n")
    (pkg / "b.py").write_text("import star_scorer.a\n")
    problems = import_problems(pkg)
    assert "star_scorer.scorer (library) imports star_scorer.jobs.train (jobs): imports go library <- jobs <- tools" in problems
    assert any(p.startswith("import cycle: star_scorer.a -> star_scorer.b -> star_scorer.a") for p in problems)
    assert any("star_scorer.jobs.train" in p and p.startswith("import cycle") for p in problems)


def test_the_library_runs_without_the_tools():
    """What a user imports, and what the MLflow model ships, is the top-level modules alone."""
    library = sorted(p.stem for p in PACKAGE.glob("*.py"))
    assert {"scorer", "modeling", "features", "decode", "io", "tracking", "mlflow_model"} <= set(library)
    assert "cli" in library  # the command line sits at the top, above every tier
    for sub in ("jobs", "research", "datatools"):
        assert (PACKAGE / sub / "__init__.py").exists()
