"""The folder layout is the architecture: nasdb's packages import each other in one direction."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import nasdb

ROOT = Path(nasdb.__file__).parent


def package_graph() -> dict[str, set[str]]:
    """Package -> the nasdb packages it imports, lazy (function-level) imports included."""
    graph: dict[str, set[str]] = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if len(parts) < 2:
            continue
        source = parts[0]
        deps = graph.setdefault(source, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                bits = name.split(".")
                if bits[0] == "nasdb" and len(bits) > 1 and (ROOT / bits[1]).is_dir() and bits[1] != source:
                    deps.add(bits[1])
    return graph


def test_no_import_cycles_between_packages() -> None:
    try:
        order = list(graphlib.TopologicalSorter(package_graph()).static_order())
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle between nasdb packages: {' -> '.join(e.args[1])}") from e
    assert {"schema", "ingest", "search", "steer", "ui"} <= set(order)


def test_the_model_space_reads_no_database_and_appends_nothing() -> None:
    assert package_graph()["search"] & {"ingest", "steer", "ui", "recommend"} == set()


def test_the_package_ships_its_type_marker() -> None:
    assert (ROOT / "py.typed").is_file()
