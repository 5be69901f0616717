"""`Query` -> `CompiledQuery`: parameterised SQL over the public views plus an English description.

Contract: the SQL text is built only from fixed fragments in this module and the whitelist in
`_fields` (field name -> SQL expression); every value a user typed is bound as a psycopg 3 named
parameter (``%(p1)s``). Semantic errors (unknown field, class, unit, operator) raise
`QuerySyntaxError` pointing at the offending text.

Pareto fronts are computed in the database by the rule and tie rule of `nasdb.query._pareto` (the
one definition); see `_Compiler._pareto` for the method.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from nasdb.query._ast import (
    And,
    Comparison,
    Expr,
    FieldRef,
    Flag,
    Has,
    Membership,
    Node,
    Not,
    Number,
    Objective,
    Or,
    Query,
    String,
    Value,
)
from nasdb.query._errors import query_error, suggestion
from nasdb.query._fields import (
    AGGREGATES,
    CLASS_METRICS,
    EPOCH_FIELDS,
    FIELDS,
    LAYER_TYPES,
    NUMERIC,
    Field,
    Kind,
)
from nasdb.query._pareto import dominates_sql, skyline2_sql

__all__ = ["DEFAULT_LIMIT", "Catalog", "CompiledQuery", "compile"]

DEFAULT_LIMIT = 1000
"""Rows a plain filter query returns when it has no ``limit`` (count is never limited)."""


@dataclass(frozen=True)
class Catalog:
    """Names the database knows, for validation and "did you mean" suggestions.

    `classes` maps a dataset id to its class names; `studies` / `datasets` are the known ids, or
    None when unknown (then any value is accepted).
    """

    classes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    studies: tuple[str, ...] | None = None
    datasets: tuple[str, ...] | None = None

    @classmethod
    def load(cls, conn: Any) -> Catalog:
        """Read the catalog from the ``datasets`` and ``studies`` views on a psycopg connection."""
        rows = conn.execute("SELECT id, classes FROM datasets ORDER BY id").fetchall()
        classes = {str(r[0]): tuple(r[1] or ()) for r in rows}
        studies = tuple(str(r[0]) for r in conn.execute("SELECT id FROM studies ORDER BY id"))
        return cls(classes=classes, studies=studies, datasets=tuple(classes))


@dataclass(frozen=True)
class CompiledQuery:
    """SQL with named psycopg placeholders, its parameters, result columns and a description.

    `kind` is one of rows, pareto, top, count, group, lineage. `regexes` are the regular-expression
    values the SQL binds (each with its position in the text), so that a caller can point at one the
    database rejects: Python's `re` checks them at compile time, but PostgreSQL's syntax differs.
    """

    sql: str
    params: dict[str, Any]
    columns: tuple[str, ...]
    description: str
    kind: str
    regexes: tuple[Value, ...] = ()


def compile(query: Query, catalog: Catalog | None = None) -> CompiledQuery:
    """Compile a parsed query; raises `QuerySyntaxError` for unknown names or mismatched values."""
    return _Compiler(query, catalog or Catalog()).compile()


# ------------------------------------------------------------------------------------ values
_QUANTITY = re.compile(r"([+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?)(.*)\Z", re.DOTALL)
_SI = {"": 1, "k": 10**3, "K": 10**3, "M": 10**6, "G": 10**9}
_LATENCY = {"": Decimal(1), "ms": Decimal(1), "us": Decimal("0.001"), "µs": Decimal("0.001"),
            "s": Decimal(1000)}
_DURATION = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400,
             "w": 604800}
_UNIT_HINT = {
    Kind.COUNT: "use a plain number or a k, M or G suffix, e.g. 100k",
    Kind.REAL: "use a plain number, scientific notation or a k, M or G suffix, e.g. 1e-3",
    Kind.FRACTION: "write a fraction like 0.9 or a percentage like 90%",
    Kind.LATENCY: "use a latency unit: us, ms or s, e.g. 2ms",
    Kind.DURATION: "use a duration unit: s, min, h, d or w, e.g. 10min",
    Kind.TIME: "use a duration unit: s, min, h, d or w, e.g. 2h",
    Kind.AGE: "use a duration unit: s, min, h, d or w, e.g. 2h",
}
_OPS_WORDS = {"<": "below", "<=": "at most", ">": "above", ">=": "at least", "=": "equal to",
              "!=": "other than"}
_NOUN_WORDS = {"<": "fewer than", "<=": "at most", ">": "more than", ">=": "at least",
               "=": "exactly", "!=": "other than"}
_SQL_OPS = {"<": "<", "<=": "<=", ">": ">", ">=": ">=", "=": "=", "!=": "IS DISTINCT FROM"}


_MAX_EXPONENT = 30  # numbers in queries: |x| < 1e31 and, unless 0, >= 1e-30


def _plain(d: Decimal) -> int | float:
    return int(d) if d == d.to_integral_value() else float(d)


def _fmt(v: int | float | Decimal) -> str:
    if isinstance(v, Decimal):
        v = _plain(v)
    if isinstance(v, int) or float(v).is_integer():
        return f"{int(v):,}"
    return f"{v:g}"


def _duration_words(seconds: Decimal) -> str:
    for unit, size in (("week", 604800), ("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size and seconds % size == 0:
            n = int(seconds // size)
            return f"{n} {unit}" + ("s" if n != 1 else "")
    n2 = _plain(seconds)
    return f"{_fmt(n2)} second" + ("s" if n2 != 1 else "")


@dataclass
class _Term:
    """A resolved field reference: SQL expression, kind, English label, column alias."""

    sql: str
    kind: Kind
    label: str
    alias: str
    maximise: bool
    noun: bool = False
    field: Field | None = None


# ----------------------------------------------------------------------------------- compiler
class _Compiler:
    def __init__(self, query: Query, catalog: Catalog) -> None:
        self.query = query
        self.text = query.text
        self.catalog = catalog
        self.params: dict[str, Any] = {}
        self.focus_join = ""
        self.focus_label: str | None = None
        self.focus_alias: str | None = None
        self.focus_sql = "cf.value"
        self.focus_is_column = False  # one class: cf is class_metrics itself, not an aggregate
        self.regexes: list[Value] = []

    # ------------------------------------------------------------------------------ helpers
    def error(self, node: Node, message: str, extra: Sequence[str] = ()) -> Exception:
        return query_error(self.text, node.line, node.column, message,
                           length=node.end_column - node.column, extra=extra)

    def bind(self, value: Any) -> str:
        name = f"p{len(self.params) + 1}"
        self.params[name] = value
        return f"%({name})s"

    # ---------------------------------------------------------------------------- entry
    def compile(self) -> CompiledQuery:
        q = self.query
        self._resolve_focus()
        where = [self.condition(f) for f in q.filters]
        described = self.describe_filters(q.filters)
        if q.lineage is not None:
            return self._lineage(where, described)
        if q.group is not None:
            return self._group(where, described)
        if q.pareto is not None:
            return self._pareto(where, described)
        if q.top is not None:
            return self._ordered(where, described, q.top.key, q.top.order, q.top.n)
        if q.count is not None:
            return self._count(where, described)
        if q.sort is not None:
            return self._ordered(where, described, q.sort.key, q.sort.order, None)
        return self._rows(where, described)

    # ---------------------------------------------------------------------------- focus
    def _known_classes(self) -> tuple[str, tuple[str, ...]] | None:
        """(where, class names) for suggestions: the filtered dataset's, else all datasets'."""
        if not self.catalog.classes:
            return None
        wanted: str | None = None
        for f in self.query.filters:
            if isinstance(f, Comparison) and f.field.name.lower() == "dataset" and f.op == "=":
                wanted = f.values[0].text
        if wanted is not None and wanted in self.catalog.classes:
            return f"dataset {wanted}", self.catalog.classes[wanted]
        if len(self.catalog.classes) == 1:
            (name, classes), = self.catalog.classes.items()
            return f"dataset {name}", classes
        names: dict[str, None] = {}
        for classes in self.catalog.classes.values():
            names.update(dict.fromkeys(classes))
        return "the registered datasets", tuple(names)

    def _resolve_focus(self) -> None:
        q = self.query
        metric = "accuracy"
        if q.metric is not None:
            metric = q.metric.metric.text.lower()
            if metric in {"acc"}:
                metric = "accuracy"
            if metric not in CLASS_METRICS:
                raise self.error(q.metric.metric, f"unknown class metric '{q.metric.metric.text}'"
                                 + suggestion(metric, CLASS_METRICS),
                                 [f"class metrics: {', '.join(CLASS_METRICS)}"])
            if q.focus is None:
                raise self.error(q.metric, "metric= needs a class focus, e.g. "
                                 f"class=bird metric={metric}")
        if q.focus is None:
            return
        known = self._known_classes()
        names: list[str] = []
        for v in q.focus.classes:
            name = v.text
            if known is not None:
                where, classes = known
                lowered = {c.lower(): c for c in classes}
                if name.lower() not in lowered:
                    raise self.error(v, f"unknown class '{name}' in {where}"
                                     + suggestion(name, classes),
                                     [f"classes of {where}: {', '.join(classes)}"])
                name = lowered[name.lower()]
            if name.lower() not in (n.lower() for n in names):
                names.append(name)
        if len(names) == 1:
            # One class: a plain join on (model, class name), which the planner can drive from
            # either side (the class_metrics (class_name, ...) indexes or the model's key).
            # With the catalog the name is matched exactly (every spelling the datasets use);
            # without it, case-insensitively.
            spellings = sorted({c for cs in self.catalog.classes.values() for c in cs
                                if c.lower() == names[0].lower()})
            if len(spellings) == 1:
                match = f"cf.class_name = {self.bind(spellings[0])}"
            elif spellings:
                match = f"cf.class_name = ANY({self.bind(spellings)})"
            else:
                match = f"lower(cf.class_name) = {self.bind(names[0].lower())}"
            self.focus_join = f"LEFT JOIN class_metrics AS cf ON cf.model_id = m.id AND {match}"
            self.focus_sql = f"cf.{metric}"
            self.focus_is_column = True
        else:
            classes_param = self.bind([n.lower() for n in names])
            count_param = self.bind(len(names))
            self.focus_join = (
                f"LEFT JOIN (SELECT cm.model_id, avg(cm.{metric}) AS value FROM class_metrics AS cm "
                f"WHERE lower(cm.class_name) = ANY({classes_param}) GROUP BY cm.model_id "
                f"HAVING count(DISTINCT lower(cm.class_name)) = {count_param}) AS cf "
                "ON cf.model_id = m.id"
            )
            self.focus_sql = "cf.value"
        label_classes = names[0] if len(names) == 1 else (
            "mean " + ", ".join(names[:-1]) + " and " + names[-1]
        )
        self.focus_label = f"{label_classes} {metric}"
        self.focus_alias = f"class_{metric}"

    # ---------------------------------------------------------------------------- fields
    def term(self, ref: FieldRef) -> _Term:
        """Resolve a field reference against the whitelist."""
        name = ref.name.lower()
        if ref.aggregate is not None:
            return self._aggregate(ref)
        if name in {"class", "metric"}:
            raise self.error(ref, f"{name}= sets the class focus; it is not a field to compare")
        f = FIELDS.get(name)
        if f is None:
            raise self.error(ref, f"unknown field '{ref.name}'" + suggestion(name, list(FIELDS)),
                             [f"valid fields: {', '.join(FIELDS)}"])
        if name == "acc" and self.focus_label is not None:
            assert self.focus_alias is not None
            return _Term(self.focus_sql, Kind.FRACTION, self.focus_label, self.focus_alias, True,
                         field=f)
        return _Term(f.sql, f.kind, f.label, f.name, f.maximise, f.noun, f)

    def _aggregate(self, ref: FieldRef) -> _Term:
        assert ref.aggregate is not None
        agg = AGGREGATES.get(ref.aggregate.lower())
        if agg is None:
            raise self.error(ref, f"unknown aggregate '{ref.aggregate}'; use one of "
                             + ", ".join(AGGREGATES))
        entry = EPOCH_FIELDS.get(ref.name.lower())
        if entry is None:
            raise self.error(ref, f"unknown epoch metric '{ref.name}'"
                             + suggestion(ref.name, list(EPOCH_FIELDS)),
                             [f"epoch metrics: {', '.join(EPOCH_FIELDS)}"])
        column, label = entry
        if agg in {"first", "last"}:
            order = "ASC" if agg == "first" else "DESC"
            sql = (f"(SELECT e.{column} FROM epochs AS e WHERE e.model_id = m.id "
                   f"AND e.{column} IS NOT NULL ORDER BY e.epoch {order} LIMIT 1)")
        else:
            fn = "avg" if agg == "mean" else agg
            sql = f"(SELECT {fn}(e.{column}) FROM epochs AS e WHERE e.model_id = m.id)"
        kind = Kind.FRACTION if column.endswith("acc") else (
            Kind.DURATION if column == "seconds" else Kind.REAL)
        words = {"max": "highest", "min": "lowest", "mean": "mean", "first": "first",
                 "last": "last"}[agg]
        return _Term(sql, kind, f"{words} {label}", f"{agg}_{column}",
                     column.endswith("acc"))

    # ---------------------------------------------------------------------------- values
    def number(self, value: Value, term: _Term, name: str) -> tuple[Any, str]:
        """A value as a bound number for a numeric term, and how to say it in English."""
        if not isinstance(value, Number) and term.kind in {Kind.TIME, Kind.AGE}:
            raise self.error(value, f"{name} takes a duration such as 2h, not '{value.text}'")
        if not isinstance(value, Number):
            raise self.error(value, f"{name} is a number; expected a number such as "
                             f"{_EXAMPLE.get(term.kind, '100k')}, not '{value.text}'")
        m = _QUANTITY.match(value.text)
        if m is None:  # the lexer guarantees the shape; kept for safety
            raise self.error(value, f"'{value.text}' is not a number")
        try:
            magnitude = Decimal(m.group(1))
        except InvalidOperation as e:  # pragma: no cover - regex guarantees a decimal
            raise self.error(value, f"'{value.text}' is not a number") from e
        if magnitude and not -_MAX_EXPONENT <= magnitude.adjusted() <= _MAX_EXPONENT:
            # bounded before any conversion: 1e400000 as an int is 400,000 digits of work
            raise self.error(value, f"{name}: '{value.text}' is out of range; numbers in a query "
                             f"lie between 1e-{_MAX_EXPONENT} and 1e{_MAX_EXPONENT}")
        unit = m.group(2)
        bad = self.error(value, f"{name} does not take '{value.text}': {_UNIT_HINT[term.kind]}")
        kind = term.kind
        if kind in {Kind.COUNT, Kind.REAL}:
            if unit not in _SI:
                raise bad
            v = magnitude * _SI[unit]
            if kind is Kind.COUNT:
                return _plain(v), _fmt(v)
            return float(v), value.text
        if kind is Kind.FRACTION:
            if unit == "%":
                return float(magnitude / 100), f"{_fmt(magnitude)}%"
            if unit:
                raise bad
            if not 0 <= magnitude <= 1:
                raise self.error(value, f"{name} is a fraction from 0 to 1; write "
                                 f"{_fmt(magnitude)}% or {magnitude / 100}")
            return float(magnitude), value.text
        if kind is Kind.LATENCY:
            if unit not in _LATENCY:
                raise bad
            return float(magnitude * _LATENCY[unit]), f"{_fmt(magnitude * _LATENCY[unit])} ms"
        if kind is Kind.DURATION:
            if unit not in _DURATION and unit != "":
                raise bad
            seconds = magnitude * _DURATION.get(unit, 1)
            return float(seconds), _duration_words(seconds)
        if kind in {Kind.TIME, Kind.AGE}:
            if unit not in _DURATION:
                raise bad
            seconds = magnitude * _DURATION[unit]
            return timedelta(seconds=float(seconds)), _duration_words(seconds)
        raise bad  # pragma: no cover - only numeric kinds reach here

    def _check_named(self, value: Value, f: Field | None) -> str:
        """The text of a value for a text field, validated against enum choices / the catalog."""
        text = value.text
        if f is None:
            return text
        choices: Sequence[str] | None = None
        what = f.name
        if f.kind is Kind.ENUM:
            text = text.lower()
            choices = f.choices
        elif f.name == "study":
            choices = self.catalog.studies
        elif f.name == "dataset":
            choices = self.catalog.datasets
        if choices is not None and text not in choices:
            listing = ", ".join(choices) if choices else "(none yet)"
            raise self.error(value, f"unknown {what} '{value.text}'" + suggestion(text, choices),
                             [f"valid values of {what}: {listing}"])
        return text

    # ---------------------------------------------------------------------------- filters
    def condition(self, expr: Expr) -> str:
        """SQL boolean expression for one filter."""
        if isinstance(expr, Comparison):
            return self._comparison(expr)
        if isinstance(expr, Membership):
            values = expr.values
            sql = self._equals(expr, expr.field, values)
            return f"({sql}) IS NOT TRUE" if expr.negated else sql
        if isinstance(expr, Has):
            types = LAYER_TYPES.get(expr.layer.text.lower())
            if types is None:
                canonical = sorted({t for ts in LAYER_TYPES.values() for t in ts})
                raise self.error(expr.layer, f"unknown layer type '{expr.layer.text}'"
                                 + suggestion(expr.layer.text, [*LAYER_TYPES, *canonical]),
                                 [f"layer types: {', '.join(canonical)}"])
            return f"m.layer_types && {self.bind(list(types))}::text[]"
        if isinstance(expr, Flag):
            return self._flag(expr)
        if isinstance(expr, Not):
            return f"({self.condition(expr.operand)}) IS NOT TRUE"
        if isinstance(expr, Or):
            return "(" + " OR ".join(self.condition(o) for o in expr.operands) + ")"
        if isinstance(expr, And):
            return "(" + " AND ".join(self.condition(o) for o in expr.operands) + ")"
        raise TypeError(f"not a filter: {expr!r}")  # pragma: no cover

    def _flag(self, expr: Flag) -> str:
        name = expr.name.lower()
        f = FIELDS.get(name)
        if f is not None and f.kind is Kind.FLAG:
            return f.sql
        if f is not None:
            raise self.error(expr, f"{name} is not a yes/no field; compare it, e.g. "
                             f"{name}{_EXAMPLE_CMP.get(f.kind, '=...')}")
        extra = [f"valid fields: {', '.join(FIELDS)}"]
        known = self._known_classes()
        if known and name in (c.lower() for c in known[1]):
            raise self.error(expr, f"unknown field '{expr.name}'; did you mean class={expr.name}?",
                             extra)
        raise self.error(expr, f"unknown field '{expr.name}'" + suggestion(name, list(FIELDS)),
                         extra)

    def _equals(self, node: Node, ref: FieldRef, values: tuple[Value, ...]) -> str:
        """``field = any of values`` (one value: plain equality)."""
        term = self.term(ref)
        kind = term.kind
        name = ref.to_text()
        if kind in NUMERIC:
            nums = [self.number(v, term, name)[0] for v in values]
            if any(isinstance(n, float) for n in nums):
                nums = [float(n) for n in nums]
            if len(nums) == 1:
                return f"{term.sql} = {self.bind(nums[0])}"
            return f"{term.sql} = ANY({self.bind(nums)})"
        if kind in {Kind.TEXT, Kind.ENUM}:
            texts = [self._check_named(v, term.field) for v in values]
            if len(texts) == 1:
                return f"{term.sql} = {self.bind(texts[0])}"
            return f"{term.sql} = ANY({self.bind(texts)})"
        if kind is Kind.TAGS:
            texts = [v.text for v in values]
            if len(texts) == 1:
                return f"{self.bind(texts[0])} = ANY({term.sql})"
            return f"{term.sql} && {self.bind(texts)}::text[]"
        if kind is Kind.FLAG:
            flags = [self._boolean(v, name) for v in values]
            if len(flags) == 1:
                return f"{term.sql} = {self.bind(flags[0])}"
            return f"{term.sql} = ANY({self.bind(flags)})"
        raise self.error(node, _OPERATOR_HINT[kind].format(name=name))

    def _boolean(self, value: Value, name: str) -> bool:
        word = value.text.lower()
        if word in {"true", "yes", "1"}:
            return True
        if word in {"false", "no", "0"}:
            return False
        raise self.error(value, f"{name} is yes/no; write {name}=true or {name}=false")

    def _regex(self, value: Value) -> str:
        try:
            re.compile(value.text)
        except re.error as e:
            raise self.error(value, f"invalid regular expression: {e}") from None
        self.regexes.append(value)
        return self.bind(value.text)

    def _comparison(self, c: Comparison) -> str:
        term = self.term(c.field)
        name = c.field.to_text()
        kind = term.kind
        op = c.op
        if op == "=" or (op == "!=" and len(c.values) > 1):
            sql = self._equals(c, c.field, c.values)
            return sql if op == "=" else f"({sql}) IS NOT TRUE"
        value = c.values[0]
        if kind in NUMERIC:
            if op == "~":
                raise self.error(c, _OPERATOR_HINT[kind].format(name=name))
            number, _ = self.number(value, term, name)
            return f"{term.sql} {_SQL_OPS[op]} {self.bind(number)}"
        if kind in {Kind.TIME, Kind.AGE}:
            if op not in {"<", "<=", ">", ">="}:
                raise self.error(c, f"{name} is a time; use < or > (e.g. {name}>2h)")
            if isinstance(value, String) and kind is Kind.TIME:
                try:
                    when = datetime.fromisoformat(value.value)
                except ValueError:
                    raise self.error(value, f"'{value.value}' is not a date; write an ISO date "
                                     "such as \"2025-01-31\" or a duration such as 2h") from None
                return f"{term.sql} {op} {self.bind(when)}"
            delta, _ = self.number(value, term, name)
            if kind is Kind.AGE:
                op = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}[op]
            return f"{term.sql} {op} now() - {self.bind(delta)}"
        if kind in {Kind.TEXT, Kind.ENUM}:
            if op == "~":
                return f"{term.sql} ~ {self._regex(value)}"
            if op == "!=":
                return f"{term.sql} IS DISTINCT FROM {self.bind(self._check_named(value, term.field))}"
            raise self.error(c, _OPERATOR_HINT[kind].format(name=name))
        if kind is Kind.TAGS:
            if op == "~":
                return (f"EXISTS (SELECT 1 FROM unnest(m.tags) AS t(tag) "
                        f"WHERE t.tag ~ {self._regex(value)})")
            if op == "!=":
                return f"({self.bind(value.text)} = ANY(m.tags)) IS NOT TRUE"
            raise self.error(c, _OPERATOR_HINT[kind].format(name=name))
        if kind is Kind.LAYERS:
            if op != "~":
                raise self.error(c, _OPERATOR_HINT[kind].format(name=name))
            p = self._regex(value)
            return f"(m.glyph ~ {p} OR array_to_string(m.layer_types, ' ') ~ {p})"
        if kind is Kind.FLAG and op == "!=":
            return f"{term.sql} IS DISTINCT FROM {self.bind(self._boolean(value, name))}"
        raise self.error(c, _OPERATOR_HINT[kind].format(name=name))

    # ---------------------------------------------------------------------------- descriptions
    def describe_filters(self, filters: Sequence[Expr]) -> str:
        phrases = [self.describe(f) for f in filters]
        out: list[str] = []
        last_prep = None
        for prep, body in phrases:
            out.append(body if prep == last_prep else f"{prep} {body}".strip())
            last_prep = prep
        return " and ".join(out)

    def describe(self, expr: Expr) -> tuple[str, str]:
        """(preposition, phrase): ("with", "fewer than 100,000 parameters")."""
        if isinstance(expr, Comparison):
            return self._describe_comparison(expr)
        if isinstance(expr, Membership):
            term = self.term(expr.field)
            vals = " or ".join(v.text for v in expr.values)
            word = "other than" if expr.negated else ""
            return "with", f"{term.label} {word} {vals}".replace("  ", " ")
        if isinstance(expr, Has):
            return "with", f"a {expr.layer.text} layer"
        if isinstance(expr, Flag):
            return "that are", expr.name.lower()
        if isinstance(expr, Not):
            if isinstance(expr.operand, Flag):
                return "that are not", expr.operand.name.lower()
            prep, body = self.describe(expr.operand)
            if isinstance(expr.operand, Or | And):
                return "not", body
            return "not", f"{prep} {body}".strip()
        parts = [self.describe(o) for o in expr.operands]
        joiner = " or " if isinstance(expr, Or) else " and "
        return "", "(" + joiner.join(f"{p} {b}".strip() for p, b in parts) + ")"

    def _describe_comparison(self, c: Comparison) -> tuple[str, str]:
        term = self.term(c.field)
        op = c.op
        if term.kind in NUMERIC and op != "~":
            value = " or ".join(self.number(v, term, c.field.to_text())[1] for v in c.values)
            if term.noun:
                return "with", f"{_NOUN_WORDS[op]} {value} {term.label}"
            return "with", f"{term.label} {_OPS_WORDS[op]} {value}"
        if term.kind in {Kind.TIME, Kind.AGE}:
            v = c.values[0]
            said = v.text if isinstance(v, String) else self.number(v, term, "")[1]
            if term.kind is Kind.AGE:
                word = "older than" if op in {">", ">="} else "newer than"
                return "", f"{word} {said}"
            if isinstance(v, String):
                return "", f"created {'after' if op in {'>', '>='} else 'before'} {said}"
            word = "in the last" if op in {">", ">="} else "more than"
            return "", f"created {word} {said}" + ("" if op in {">", ">="} else " ago")
        vals = " or ".join(v.text for v in c.values)
        if op == "~":
            return "with", f"{term.label} matching /{vals}/"
        if op == "!=":
            return "with", f"{term.label} other than {vals}"
        return "with", f"{term.label} {vals}"

    def _among(self, described: str) -> str:
        return f" among models {described}" if described else ""

    # ---------------------------------------------------------------------------- shapes
    def _from(self, where: list[str], extra: Sequence[str] = ()) -> str:
        lines = ["FROM models AS m"]
        if self.focus_join:
            lines.append(self.focus_join)
        conditions = [*where, *extra]
        if conditions:
            lines.append("WHERE " + "\n  AND ".join(conditions))
        return "\n".join(lines)

    def _base_columns(self, extra: Sequence[_Term] = ()) -> list[tuple[str, str]]:
        cols: list[tuple[str, str]] = [("m.id", "id"), ("m.glyph", "glyph"), ("m.params", "params")]
        tail = [("m.status", "status"), ("m.epochs_trained", "epochs")]
        for sql, alias in [*((t.sql, t.alias) for t in extra), *tail]:
            if alias not in (a for _, a in cols):
                cols.append((sql, alias))
        return cols

    def _select(self, cols: Sequence[tuple[str, str]]) -> str:
        return "SELECT " + ", ".join(
            sql if sql == f"m.{alias}" else f"{sql} AS {alias}" for sql, alias in cols
        )

    def _limit_sql(self, n: Number | None, default: int | None) -> str:
        value = int(n.text) if n is not None else default
        return "" if value is None else f"\nLIMIT {self.bind(value)}"

    def _rows(self, where: list[str], described: str) -> CompiledQuery:
        acc = self.term(FieldRef("acc"))
        shown = [acc, self.term(FieldRef("val_acc"))]
        if acc.alias != "acc":
            shown.insert(0, self.term(FieldRef("test_acc")))
        cols = self._base_columns(shown)
        limit = self.query.limit.n if self.query.limit else None
        sql = (self._select(cols) + "\n" + self._from(where)
               + "\nORDER BY m.created_at DESC, m.id" + self._limit_sql(limit, DEFAULT_LIMIT))
        what = f"Models {described}" if described else "All models"
        what += ", newest first"
        return self._done(sql, cols, what + self._limit_words(limit, DEFAULT_LIMIT), "rows")

    def _limit_words(self, n: Number | None, default: int | None) -> str:
        if n is not None:
            return f" (at most {_fmt(int(n.text))})"
        return f" (at most {default:,})" if default else ""

    def _done(self, sql: str, cols: Sequence[tuple[str, str]] | Sequence[str], description: str,
              kind: str) -> CompiledQuery:
        names = tuple(c if isinstance(c, str) else c[1] for c in cols)
        return CompiledQuery(sql, dict(self.params), names, description, kind,
                             tuple(self.regexes))

    def _count(self, where: list[str], described: str) -> CompiledQuery:
        sql = "SELECT count(*) AS count\n" + self._from(where)
        what = f"Number of models {described}" if described else "Number of models"
        return self._done(sql, ["count"], what, "count")

    def _direction(self, term: _Term, order: str | None) -> str:
        if order is not None:
            return order.upper()
        return "DESC" if term.maximise else "ASC"

    def _ordered(self, where: list[str], described: str, key: FieldRef, order: str | None,
                 top: Number | None) -> CompiledQuery:
        term = self.term(key)
        if term.kind not in NUMERIC | {Kind.TEXT, Kind.ENUM, Kind.TIME, Kind.AGE}:
            raise self.error(key, f"cannot sort by {key.to_text()}")
        direction = self._direction(term, order)
        if term.kind is Kind.AGE:  # oldest first = ascending created_at
            direction = "ASC" if direction == "DESC" else "DESC"
        cols = self._base_columns([self.term(FieldRef("acc")), term])
        limit = top if top is not None else (self.query.limit.n if self.query.limit else None)
        sql = (self._select(cols) + "\n" + self._from(where, [f"{term.sql} IS NOT NULL"])
               + f"\nORDER BY {term.sql} {direction}, m.id"
               + self._limit_sql(limit, None))
        words = "highest" if direction == "DESC" else "lowest"
        if term.kind is Kind.AGE:
            words = "oldest" if direction == "ASC" else "newest"
        if top is not None:
            what = f"Top {_fmt(int(top.text))} models by {term.label} ({words} first)"
            return self._done(sql, cols, what + self._among(described), "top")
        what = (f"Models {described}" if described else "All models")
        what += f" sorted by {term.label} ({words} first; models without one left out)"
        return self._done(sql, cols, what + self._limit_words(limit, None), "rows")

    def _group(self, where: list[str], described: str) -> CompiledQuery:
        assert self.query.group is not None
        g = self.query.group
        term = self.term(FieldRef(g.name, line=g.line, column=g.column, end_column=g.end_column))
        if term.kind not in {Kind.TEXT, Kind.ENUM, Kind.COUNT, Kind.FLAG}:
            raise self.error(g, f"cannot group by {g.name}; group by a text or whole-number "
                             "field such as origin, status, optimizer, study or depth")
        acc = self.term(FieldRef("acc"))
        sql = (f"SELECT {term.sql} AS {term.alias}, count(*) AS count, max({acc.sql}) AS best_acc,"
               f" avg({acc.sql}) AS mean_acc\n" + self._from(where)
               + "\nGROUP BY 1\nORDER BY count(*) DESC, 1"
               + self._limit_sql(self.query.limit.n if self.query.limit else None, None))
        what = (f"Models {described}" if described else "All models")
        what += f" grouped by {term.label}: count, best and mean {acc.label}"
        return self._done(sql, [term.alias, "count", "best_acc", "mean_acc"], what, "group")

    def _lineage(self, where: list[str], described: str) -> CompiledQuery:
        assert self.query.lineage is not None
        model = self.bind(self.query.lineage.model.text)
        acc = self.term(FieldRef("acc"))
        cols: list[tuple[str, str]] = [
            ("m.id", "id"), ("m.parent_id", "parent"), ("t.generation", "generation"),
            ("m.origin", "origin"), ("m.changes", "changes"), ("m.glyph", "glyph"),
            ("m.params", "params"), (acc.sql, acc.alias), ("m.status", "status"),
        ]
        sql = (
            "WITH RECURSIVE ancestors AS (\n"
            f"  SELECT m.id, m.parent_id, 0 AS generation FROM models AS m WHERE m.id = {model}\n"
            "  UNION\n"
            "  SELECT p.id, p.parent_id, a.generation - 1 FROM models AS p "
            "JOIN ancestors AS a ON p.id = a.parent_id\n"
            "), descendants AS (\n"
            f"  SELECT m.id, 0 AS generation FROM models AS m WHERE m.id = {model}\n"
            "  UNION\n"
            "  SELECT c.id, d.generation + 1 FROM models AS c "
            "JOIN descendants AS d ON c.parent_id = d.id\n"
            "), tree AS (\n"
            "  SELECT id, generation FROM ancestors UNION SELECT id, generation FROM descendants\n"
            ")\n"
            + self._select(cols) + "\nFROM tree AS t\nJOIN models AS m ON m.id = t.id"
            + (f"\n{self.focus_join}" if self.focus_join else "")
            + ("\nWHERE " + "\n  AND ".join(where) if where else "")
            + "\nORDER BY t.generation, m.id"
        )
        what = (f"Lineage of {self.query.lineage.model.text}: its ancestors and descendants "
                "with the change that made each")
        if described:
            what += f", only models {described}"
        return self._done(sql, cols, what, "lineage")

    # ---------------------------------------------------------------------------- pareto
    def _objectives(self) -> list[tuple[_Term, bool]]:
        """(term, maximise) per objective; default: maximise accuracy, minimise params."""
        assert self.query.pareto is not None
        objectives = self.query.pareto.objectives
        if not objectives:
            return [(self.term(FieldRef("acc")), True), (self.term(FieldRef("params")), False)]
        if self.focus_label is not None and not any(
            o.name.lower() == "acc" for o in objectives
        ):  # `pareto class=cat params flops`: the class metric is the first objective
            objectives = (Objective("acc"), *objectives)
        if len(objectives) == 1:
            raise self.error(self.query.pareto, "pareto needs two or more objectives, e.g. "
                             "'pareto acc latency' (or none for accuracy vs parameters)")
        out: list[tuple[_Term, bool]] = []
        seen: set[str] = set()
        for o in objectives:
            ref = FieldRef(o.name, line=o.line, column=o.column, end_column=o.end_column)
            term = self.term(ref)
            if term.kind not in NUMERIC:
                raise self.error(o, f"{o.name} is not a number, so it cannot be a Pareto "
                                 "objective; use numeric fields such as acc, params, flops, "
                                 "latency")
            if term.alias in seen:
                raise self.error(o, f"objective {o.name} is given twice")
            seen.add(term.alias)
            maximise = term.maximise if o.direction is None else o.direction == "max"
            out.append((term, maximise))
        return out

    def _pareto(self, where: list[str], described: str) -> CompiledQuery:
        """The Pareto front (skyline), computed in the database, exact under ties
        (the rule and the tie rule: `nasdb.query._pareto`).

        Every objective is turned into a value to minimise (``o_i``; maximised ones are negated).
        Rows missing any objective are left out. A row p is on the front iff no row q has
        ``q.o_i <= p.o_i`` for all i with at least one ``<``; exact duplicates of a front point are
        all kept.

        Narrow first: the front is computed from (id, objectives) only - index-only scans can
        supply those - and the display columns (glyph, status, ...) are joined for the front's
        few rows at the end.

        Two objectives - anchor pruning (when both objectives are columns), then a sort-based
        skyline:

        - Anchors: the `_ANCHORS` candidates best on o2 (an index walk when o2 is indexed, such as
          params). Every other candidate c is no better than any anchor on o2, so the anchor a
          that is best on o1 dominates c unless ``c.o1 <= a.o1``. The skyline of the anchors plus
          the candidates with ``o1 <= a.o1`` (a range scan when o1 is indexed, such as accuracy or
          a class's accuracy) is therefore the whole front: everything left out is dominated by a
          row that is kept (dominance is transitive), and nothing on the front is left out. When
          the best of the smallest models is good, as in the benchmark's data, that reads a few
          thousand index entries instead of every candidate (1M models: ``pareto`` 5.4 s ->
          13 ms); when it is weak, the range holds most candidates and they are read twice, by
          index probes (and a front of many thousands of models is joined back row by row).
          ``candidates`` is NOT MATERIALIZED so that each read gets its own plan.
        - Skyline, O(n log n) (`skyline2_sql`): group the rows by o1, take each group's best o2, and
          a running minimum of those over the groups in o1 order gives the best o2 among rows
          strictly better on o1. p is non-dominated iff its o2 is its group's best (nothing tied
          on o1 beats it on o2) and strictly below that running minimum (nothing better on o1 is
          as good on o2). (A window frame with EXCLUDE GROUP would say the same in one pass, but
          PostgreSQL recomputes such a frame per row: quadratic, 37 s for 18k rows.)

        Three or more - a pruned self-join: the 2-D skylines of each cyclic pair of objectives
        (o1,o2), (o2,o3), ..., (ok,o1) are cheap (as above) and their rows are real rows, so any
        row that one of them dominates in all k objectives is certainly off the front; that
        removes most rows at a cost of n x |pivots|. Only the survivors are then compared with
        each other (NOT EXISTS), so the quadratic step runs on a small candidate set, not the
        whole table (its worst case - all rows mutually non-dominated - is inherent to k >= 3).
        """
        objectives = self._objectives()
        k = len(objectives)
        cols = self._base_columns([t for t, _ in objectives])
        narrow = [("m.id", "id")] + [(t.sql, t.alias) for t, _ in objectives]
        obj_sql = ", ".join(
            f"-({t.sql}) AS o{i}" if maximise else f"{t.sql} AS o{i}"
            for i, (t, maximise) in enumerate(objectives, 1)
        )
        not_null = [f"{t.sql} IS NOT NULL" for t, _ in objectives]
        # Anchor pruning reads the candidates twice, each time a small part when the objectives
        # are columns; an objective computed per model (an aggregate over epochs or over several
        # classes) would be computed for every candidate twice, so those fronts skip it.
        prune = k == 2 and all(
            re.fullmatch(r"m\.\w+", t.sql) or (self.focus_is_column and t.sql == self.focus_sql)
            for t, _ in objectives
        )
        candidates = (
            f"WITH candidates AS {'NOT MATERIALIZED ' if prune else ''}(\n"
            f"  {self._select(narrow)}, {obj_sql}\n  "
            + self._from(where, not_null).replace("\n", "\n  ") + "\n)"
        )
        carried = [alias for _, alias in narrow]
        every = ", ".join(f"o{n}" for n in range(1, k + 1))
        if k == 2 and not prune:
            front_sql = skyline2_sql("candidates", "o1", "o2", ", ".join([*carried, every]))
            sql = candidates + ", front AS (\n  " + front_sql.replace("\n", "\n  ") + "\n)"
        elif k == 2:
            # Orders and ranges on the objective columns themselves (not on the negated o_i), so
            # that their indexes apply.
            (t1, max1), (t2, max2) = objectives
            best1, cmp1 = ("max", ">=") if max1 else ("min", "<=")
            # A bound every value meets (PostgreSQL sorts NaN above all floats), added so that
            # the planner sees a range with one unknown end - estimated at 0.5% of the rows, not
            # a third - and probes by index rather than hashing every candidate.
            bound = _LOWEST_HIGHEST[t1.kind is Kind.COUNT][max1]
            front_sql = skyline2_sql("pruned", "o1", "o2", ", ".join([*carried, every]))
            sql = (
                candidates + ", anchors AS (\n"
                f"  SELECT * FROM candidates ORDER BY {t2.alias} {'DESC' if max2 else 'ASC'} "
                f"LIMIT {_ANCHORS}\n"
                "), pruned AS (\n"
                "  SELECT * FROM anchors\n"
                "  UNION ALL\n"
                "  SELECT * FROM candidates AS c\n"
                f"  WHERE c.{t1.alias} {cmp1} (SELECT {best1}(a.{t1.alias}) FROM anchors AS a)\n"
                f"    AND c.{t1.alias} {'<=' if max1 else '>='} {bound}\n"
                "    AND NOT EXISTS (SELECT 1 FROM anchors AS a WHERE a.id = c.id)\n"
                "), front AS (\n  " + front_sql.replace("\n", "\n  ") + "\n)"
            )
        else:
            pivots = []
            for i in range(1, k + 1):
                j = i % k + 1
                pivots.append("  " + skyline2_sql("candidates", f"o{i}", f"o{j}", every)
                              .replace("\n", "\n  "))

            def dominates(q: str, p: str) -> str:
                return dominates_sql(q, p, k)

            sql = (
                candidates + ", pivots AS (\n" + "\n  UNION\n".join(pivots) + "\n"
                "), survivors AS (\n"
                "  SELECT c.* FROM candidates AS c\n"
                f"  WHERE NOT EXISTS (SELECT 1 FROM pivots AS q WHERE {dominates('q', 'c')})\n"
                "), front AS (\n"
                "  SELECT p.* FROM survivors AS p\n"
                f"  WHERE NOT EXISTS (SELECT 1 FROM survivors AS q WHERE {dominates('q', 'p')})\n"
                ")"
            )
        labels = [("" if maximise == t.maximise else ("max " if maximise else "min ")) + t.label
                  for t, maximise in objectives]
        front = "Pareto front of " + (
            " vs ".join(labels) if k == 2 else ", ".join(labels[:-1]) + " and " + labels[-1]
        )
        if self.query.count is not None:
            sql += "\nSELECT count(*) AS count\nFROM front"
            return self._done(sql, ["count"], f"Size of the {front}{self._among(described)}",
                              "count")
        names = [alias for _, alias in cols]
        shown = [(f"f.{alias}" if alias in carried else expr, alias) for expr, alias in cols]
        sql += ("\nSELECT " + ", ".join(e if e in {f"f.{a}", f"m.{a}"} else f"{e} AS {a}"
                                        for e, a in shown)
                + "\nFROM front AS f\nJOIN models AS m ON m.id = f.id")
        if self.query.sort is not None:
            term = self.term(self.query.sort.key)
            if term.alias not in names:
                raise self.error(self.query.sort.key, "sort after pareto takes one of the "
                                 f"result columns: {', '.join(names)}")
            direction = self._direction(term, self.query.sort.order)
            sql += f"\nORDER BY {term.alias} {direction}, id"
        else:
            sql += "\nORDER BY " + ", ".join(f"f.o{i}" for i in range(1, k + 1)) + ", f.id"
        limit = self.query.limit.n if self.query.limit else None
        sql += self._limit_sql(limit, None)
        return self._done(sql, cols, front + self._among(described) + self._limit_words(limit, None),
                          "pareto")


_ANCHORS = 1000
"""Candidates best on the second objective that a two-objective front is pruned with (any number
is exact; more costs index probes, fewer leaves a weaker anchor; see `_Compiler._pareto`)."""


_LOWEST_HIGHEST = {
    False: ("'-Infinity'::float8", "'NaN'::float8"),
    True: ("'-9223372036854775808'::bigint", "'9223372036854775807'::bigint"),
}
"""[objective is a whole number][maximised]: a bound no value of that type lies beyond."""


_EXAMPLE = {Kind.COUNT: "100k", Kind.FRACTION: "0.9 or 90%", Kind.REAL: "1e-3",
            Kind.LATENCY: "2ms", Kind.DURATION: "10min", Kind.TIME: "2h", Kind.AGE: "2h"}
_EXAMPLE_CMP = {Kind.COUNT: "<100k", Kind.FRACTION: ">0.9", Kind.REAL: "<1e-3",
                Kind.LATENCY: "<2ms", Kind.DURATION: "<10min", Kind.TIME: ">2h",
                Kind.AGE: ">2h", Kind.TEXT: "=...", Kind.ENUM: "=...", Kind.TAGS: "=baseline",
                Kind.LAYERS: '~"Conv2D.*Dense"'}
_OPERATOR_HINT = {
    Kind.TEXT: "{name} is a text field; use = or != or in (...)",
    Kind.ENUM: "{name} is a text field; use = or != or in (...)",
    Kind.TAGS: "{name} is a list of tags; use =, != or in (...)",
    Kind.LAYERS: '{name} takes a regular expression; use ~, e.g. {name}~"Conv2D.*Dense"',
    Kind.FLAG: "{name} is yes/no; write it bare ({name}) or not {name}",
    Kind.COUNT: "{name} is a number; use <, <=, >, >=, = or !=",
    Kind.FRACTION: "{name} is a number; use <, <=, >, >=, = or !=",
    Kind.REAL: "{name} is a number; use <, <=, >, >=, = or !=",
    Kind.LATENCY: "{name} is a number; use <, <=, >, >=, = or !=",
    Kind.DURATION: "{name} is a number; use <, <=, >, >=, = or !=",
    Kind.TIME: "{name} is a time; use < or > (e.g. {name}>2h)",
    Kind.AGE: "{name} is a time; use < or > (e.g. {name}>2h)",
}
