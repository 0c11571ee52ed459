"""No two project modules import each other, lazily (inside a function) or not: a pair that does
is one module split in two, and which half loads first decides what works."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCE_ROOTS = (ROOT / "shared", ROOT / "services")


def _modules() -> dict[str, Path]:
    found = {}
    for root in SOURCE_ROOTS:
        for file in root.rglob("*.py"):
            name = ".".join(file.relative_to(root).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = file
    return found


def _imports(file: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``file`` imports anywhere in it (``from pkg import sub``: ``sub``)."""
    out = set()
    for node in ast.walk(ast.parse(file.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            subs = {f"{node.module}.{a.name}" for a in node.names} & modules.keys()
            out |= subs or ({node.module} & modules.keys())
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names} & modules.keys()
    return out


def test_no_two_modules_import_each_other():
    modules = _modules()
    graph = {name: _imports(file, modules) - {name} for name, file in modules.items()}
    mutual = sorted({tuple(sorted((a, b))) for a in graph for b in graph[a] if a in graph[b]})
    assert mutual == []
