"""The event catalogue as the database enforces it, generated from the payload classes.

`nasdb_append_many` refuses, whoever calls it (Python or a client that bypasses it), an event of a
type or schema version the catalogue does not hold, a payload that is not a JSON object, a
required field that is missing, a field of the wrong JSON type and a field the type does not
declare. The rules come from the pydantic classes in `nasdb.schema.events` (one definition):
`field_rules` turns each class's JSON schema into rows of ``nasdb_event_fields``, and `sync`
writes them (run by the migration that created the tables and by `nasdb.migrations.ensure_schema` as the
owner whenever the code's catalogue differs from the database's, found by `fingerprint`).

Rows are keyed by (type, schema version) and never deleted, so older code that still appends an
older version keeps working; every version below a type's current one is registered too, with no
field rules (the code no longer describes it), so for those only "a JSON object" is checked.
JSON cannot carry NaN or infinity (pydantic writes them as null), so a ``number`` field also
accepts null. Value bounds (lengths, ranges) stay in Python.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from nasdb.schema import events as catalogue

_JSON_TYPES = {"string", "number", "integer", "boolean", "array", "object", "null"}


@dataclass(frozen=True)
class FieldRule:
    """One declared field: the JSON types it may hold (None = any) and whether it is required."""

    type: str
    schema_version: int
    field: str
    json_types: tuple[str, ...] | None
    required: bool


def _types_of(prop: dict[str, Any], defs: dict[str, Any]) -> set[str] | None:
    if "$ref" in prop:
        return _types_of(defs[prop["$ref"].rsplit("/", 1)[-1]], defs)
    if "anyOf" in prop or "oneOf" in prop:
        found: set[str] = set()
        for option in prop.get("anyOf", prop.get("oneOf", [])):
            sub = _types_of(option, defs)
            if sub is None:
                return None
            found |= sub
        return found
    if "type" in prop:
        kinds = prop["type"] if isinstance(prop["type"], list) else [prop["type"]]
        return {k for k in kinds if k in _JSON_TYPES}
    values = prop.get("enum", [prop["const"]] if "const" in prop else None)
    if values is not None:
        return {_json_type(v) for v in values}
    return None  # Any


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if value is None:
        return "null"
    return "string" if isinstance(value, str) else "object"


def field_rules() -> list[FieldRule]:
    """Every (type, version, field) rule of the code's catalogue, in a stable order."""
    rules: list[FieldRule] = []
    for name, cls in sorted(catalogue.PAYLOAD_TYPES.items()):
        schema = cls.model_json_schema(mode="validation")
        defs = schema.get("$defs", {})
        required = set(schema.get("required", []))
        for field, prop in sorted(schema.get("properties", {}).items()):
            kinds = _types_of(prop, defs)
            if kinds is not None and "number" in kinds:
                kinds |= {"null"}  # NaN and infinity are written as null
            if kinds is not None and "integer" in kinds and "number" in kinds:
                kinds.discard("integer")
            rules.append(FieldRule(name, cls.VERSION, field,
                                   tuple(sorted(kinds)) if kinds is not None else None,
                                   field in required))
    return rules


def fingerprint() -> str:
    """A digest of the code's catalogue: equal digests mean equal rules."""
    types = sorted((name, cls.VERSION) for name, cls in catalogue.PAYLOAD_TYPES.items())
    body = json.dumps([types, [list(r.__dict__.values()) for r in field_rules()]])
    return hashlib.sha256(body.encode()).hexdigest()[:16]


def sync(conn: Any) -> None:
    """Write the code's catalogue into the database (owner connection; inside its transaction).

    ``conn`` is a psycopg connection or a SQLAlchemy connection (Alembic's ``op.get_bind()``).
    """
    execute = _executor(conn)
    types = sorted((name, cls.VERSION) for name, cls in catalogue.PAYLOAD_TYPES.items())
    for name, version in types:
        # older versions stay appendable (older code, logs being moved): their fields are not
        # described any more, so only "a JSON object" is checked for them
        for older in range(1, version + 1):
            execute("insert into nasdb_event_types (type, schema_version) values (%s, %s) "
                    "on conflict do nothing", (name, older))
        execute("delete from nasdb_event_fields where type = %s and schema_version = %s",
                (name, version))
    for r in field_rules():
        execute("insert into nasdb_event_fields (type, schema_version, field, json_types, "
                "required) values (%s, %s, %s, %s, %s)",
                (r.type, r.schema_version, r.field,
                 list(r.json_types) if r.json_types is not None else None, r.required))
    execute("update nasdb_catalogue set fingerprint = %s", (fingerprint(),))


def sync_if_present(conn: Any) -> None:
    """`sync` when the catalogue tables exist (revision 0015 or later) and differ from the code."""
    execute = _executor(conn)
    exists = execute("select to_regclass('nasdb_catalogue') is not null", ()).fetchone()
    if not exists or not exists[0]:
        return
    row = execute("select fingerprint from nasdb_catalogue", ()).fetchone()
    if row is None or row[0] != fingerprint():
        sync(conn)


def _executor(conn: Any) -> Any:
    if hasattr(conn, "exec_driver_sql"):  # SQLAlchemy
        return lambda sql, args: conn.exec_driver_sql(sql, tuple(args))
    return lambda sql, args: conn.execute(sql, args)
