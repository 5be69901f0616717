"""The folder layout is the architecture: nasdb's packages import each other in one direction."""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import nasdb
from nasdb.schema.vocabulary import MODEL_STATUSES, OPTIMIZERS, ORIGINS, SCHEDULES

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


def _string_typed_events(path: Path) -> list[str]:
    """``NewEvent("Type", {...})`` calls in a module: an event built as a dict, not its payload."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                and node.func.id == "NewEvent" and node.args
                and not isinstance(node.args[0], ast.Attribute)):
            found.append(f"{path.relative_to(ROOT.parent)}:{node.lineno}")
    return found


def test_producers_build_events_from_their_payload_classes() -> None:
    """Every event nasdb appends is built with `NewEvent.of(Payload(...))`: a misspelt field or a
    wrong type is a type error, not a surprise at append time."""
    sources = [*ROOT.rglob("*.py"), *(ROOT.parent / "benchmarks").glob("*.py")]
    assert [hit for path in sorted(sources) for hit in _string_typed_events(path)] == []


def test_each_vocabulary_is_defined_once() -> None:
    """The whole optimizer, origin and status lists are written out in `nasdb.schema.vocabulary`
    only (a module may draw from a subset, as the synthetic logs do)."""
    words = {
        "optimizers": set(OPTIMIZERS),
        "schedules": set(SCHEDULES),
        "origins": set(ORIGINS),
        "statuses": set(MODEL_STATUSES),
    }
    copies = []
    for path in sorted(ROOT.rglob("*.py")):
        if path.name == "vocabulary.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Tuple | ast.List | ast.Set) and len(node.elts) >= 3:
                values = {e.value for e in node.elts if isinstance(e, ast.Constant)}
                for name, vocabulary in words.items():
                    if vocabulary <= values:
                        copies.append(f"{path.relative_to(ROOT.parent)}:{node.lineno} ({name})")
    assert copies == []
