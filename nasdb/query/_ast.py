"""The query AST: small frozen dataclasses that carry where they came from in the text.

Positions (`line`, `column`, `end_column`, 1-based, end exclusive) are keyword-only and excluded from
equality, so two queries that say the same thing compare equal however they were spaced. `to_text`
prints a query back in canonical clause order; ``parse(to_text(q)) == q`` for every query `parse`
returns (a property test checks it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = [
    "And",
    "ClassFocus",
    "Count",
    "Directed",
    "Explain",
    "Expr",
    "FieldRef",
    "Flag",
    "GroupBy",
    "Has",
    "Limit",
    "Lineage",
    "Membership",
    "MetricFocus",
    "Node",
    "Not",
    "Number",
    "Objective",
    "Or",
    "Pareto",
    "Query",
    "Sort",
    "String",
    "Top",
    "Value",
    "Word",
    "to_text",
]

KEYWORDS = frozenset(
    {
        "pareto", "top", "by", "sort", "asc", "desc", "limit", "count", "group", "lineage",
        "explain", "ago", "in", "not", "or", "and",
    }
)
"""Words that are keywords somewhere in the grammar; `to_text` quotes values spelled like them."""

_BARE_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\/-]*\Z")


@dataclass(frozen=True, kw_only=True)
class Node:
    """Base of every AST node: where the node starts and ends in the query text."""

    line: int = field(default=1, compare=False, repr=False)
    column: int = field(default=1, compare=False, repr=False)
    end_column: int = field(default=1, compare=False, repr=False)


# ------------------------------------------------------------------------------------------ values
@dataclass(frozen=True)
class Number(Node):
    """A number as written: ``100k``, ``1e-3``, ``90%``, ``2h``, ``2ms`` (unit resolved later)."""

    text: str

    def to_text(self) -> str:
        return self.text


@dataclass(frozen=True)
class Word(Node):
    """A bare word value: ``adam``, ``fmnist-1``, ``m12``."""

    text: str

    def to_text(self) -> str:
        return self.text


@dataclass(frozen=True)
class String(Node):
    """A quoted value, unescaped: ``"Conv2D.*Dense"``, ``'ankle boot'``."""

    value: str

    @property
    def text(self) -> str:
        return self.value

    def to_text(self) -> str:
        return '"' + self.value.replace("\\", "\\\\").replace('"', '\\"') + '"'


Value = Number | Word | String


# ----------------------------------------------------------------------------------------- filters
@dataclass(frozen=True)
class FieldRef(Node):
    """A model field (``params``) or an aggregate over a model's epochs (``max(val_acc)``)."""

    name: str
    aggregate: str | None = None

    def to_text(self) -> str:
        return f"{self.aggregate}({self.name})" if self.aggregate else self.name


@dataclass(frozen=True)
class Comparison(Node):
    """``field OP value[,value...] [ago]``; a comma list after ``=`` means any of the values."""

    field: FieldRef
    op: str
    values: tuple[Value, ...]
    ago: bool = False

    def to_text(self) -> str:
        text = self.field.to_text() + self.op + ",".join(v.to_text() for v in self.values)
        return text + " ago" if self.ago else text


@dataclass(frozen=True)
class Membership(Node):
    """``field [not] in (value, ...)``."""

    field: FieldRef
    values: tuple[Value, ...]
    negated: bool = False

    def to_text(self) -> str:
        word = " not in " if self.negated else " in "
        return self.field.to_text() + word + "(" + ", ".join(v.to_text() for v in self.values) + ")"


@dataclass(frozen=True)
class Has(Node):
    """``has:LayerType``."""

    layer: Value

    def to_text(self) -> str:
        return "has:" + self.layer.to_text()


@dataclass(frozen=True)
class Flag(Node):
    """A bare boolean field: ``pinned``."""

    name: str

    def to_text(self) -> str:
        return self.name


@dataclass(frozen=True)
class Not(Node):
    """``not <filter>``."""

    operand: Expr

    def to_text(self) -> str:
        return "not " + _wrap(self.operand, (And, Or))


@dataclass(frozen=True)
class Or(Node):
    """``a or b or ...``."""

    operands: tuple[Expr, ...]

    def to_text(self) -> str:
        return " or ".join(_wrap(o, (And, Or)) for o in self.operands)


@dataclass(frozen=True)
class And(Node):
    """Filters side by side (or joined by ``and``) inside parentheses."""

    operands: tuple[Expr, ...]

    def to_text(self) -> str:
        return "(" + " ".join(_wrap(o, (And,)) for o in self.operands) + ")"


Expr = Comparison | Membership | Has | Flag | Not | Or | And


def _wrap(expr: Expr, kinds: tuple[type, ...]) -> str:
    text = expr.to_text()
    if isinstance(expr, kinds) and not isinstance(expr, And):
        return "(" + text + ")"
    return text


# ------------------------------------------------------------------------------------ focus, verbs
@dataclass(frozen=True)
class ClassFocus(Node):
    """``class=bird[,cat...]``: accuracy-like objectives become the (mean) per-class metric."""

    classes: tuple[Value, ...]

    def to_text(self) -> str:
        return "class=" + ",".join(v.to_text() for v in self.classes)


@dataclass(frozen=True)
class MetricFocus(Node):
    """``metric=recall``: which per-class metric the class focus uses (default accuracy)."""

    metric: Value

    def to_text(self) -> str:
        return "metric=" + self.metric.to_text()


@dataclass(frozen=True)
class Objective(Node):
    """One Pareto objective: a field name with an optional ``max:`` / ``min:`` override."""

    name: str
    direction: str | None = None

    def to_text(self) -> str:
        return f"{self.direction}:{self.name}" if self.direction else self.name


@dataclass(frozen=True)
class Directed(Node):
    """A ``max:name`` / ``min:name`` objective written after a class focus inside a pareto clause."""

    objective: Objective


@dataclass(frozen=True)
class Pareto(Node):
    """``pareto [objective ...]`` (no objectives: maximise accuracy, minimise params)."""

    objectives: tuple[Objective, ...] = ()

    def to_text(self) -> str:
        return " ".join(["pareto", *(o.to_text() for o in self.objectives)])


@dataclass(frozen=True)
class Top(Node):
    """``top N by field [asc|desc]``."""

    n: Number
    key: FieldRef
    order: str | None = None

    def to_text(self) -> str:
        text = f"top {self.n.to_text()} by {self.key.to_text()}"
        return f"{text} {self.order}" if self.order else text


@dataclass(frozen=True)
class Sort(Node):
    """``sort field [asc|desc]``."""

    key: FieldRef
    order: str | None = None

    def to_text(self) -> str:
        text = f"sort {self.key.to_text()}"
        return f"{text} {self.order}" if self.order else text


@dataclass(frozen=True)
class Limit(Node):
    """``limit N``."""

    n: Number

    def to_text(self) -> str:
        return f"limit {self.n.to_text()}"


@dataclass(frozen=True)
class Count(Node):
    """``count``."""

    def to_text(self) -> str:
        return "count"


@dataclass(frozen=True)
class GroupBy(Node):
    """``group by field``."""

    name: str

    def to_text(self) -> str:
        return f"group by {self.name}"


@dataclass(frozen=True)
class Lineage(Node):
    """``lineage <model id>``."""

    model: Value

    def to_text(self) -> str:
        return f"lineage {self.model.to_text()}"


@dataclass(frozen=True)
class Explain(Node):
    """``explain``: return the SQL and parameters, run nothing."""

    def to_text(self) -> str:
        return "explain"


@dataclass(frozen=True)
class Query(Node):
    """A whole query: top-level filters (ANDed), the class focus, and at most one of each verb."""

    filters: tuple[Expr, ...] = ()
    focus: ClassFocus | None = None
    metric: MetricFocus | None = None
    pareto: Pareto | None = None
    top: Top | None = None
    sort: Sort | None = None
    group: GroupBy | None = None
    lineage: Lineage | None = None
    count: Count | None = None
    limit: Limit | None = None
    explain: Explain | None = None
    text: str = field(default="", compare=False, repr=False)


def to_text(query: Query) -> str:
    """The query in canonical order: explain, filters, focus, verbs (parses back to `query`)."""
    parts: list[str] = []
    if query.explain:
        parts.append("explain")
    parts.extend(f.to_text() for f in query.filters)
    for clause in (
        query.focus, query.metric, query.pareto, query.top, query.sort, query.group,
        query.lineage, query.count, query.limit,
    ):
        if clause is not None:
            parts.append(clause.to_text())
    return " ".join(parts)
