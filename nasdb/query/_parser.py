"""Text -> `Query`: the Lark LALR parser, a Transformer to the AST, and error translation.

`parse` raises exactly one `QuerySyntaxError` for any text it cannot turn into a query, whatever
the text; Lark's own exceptions never escape (a property test feeds it arbitrary text).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lark import Lark, Token, Transformer, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.tree import Meta

from nasdb.query._ast import (
    And,
    ClassFocus,
    Comparison,
    Count,
    Directed,
    Explain,
    Expr,
    FieldRef,
    Flag,
    GroupBy,
    Has,
    Limit,
    Lineage,
    Membership,
    MetricFocus,
    Node,
    Not,
    Number,
    Objective,
    Or,
    Pareto,
    Query,
    Sort,
    String,
    Top,
    Value,
    Word,
)
from nasdb.query._errors import query_error
from nasdb.query._fields import CLASS_METRICS, FIELDS, NUMERIC, Kind
from nasdb.schema.errors import QuerySyntaxError

__all__ = ["GRAMMAR_PATH", "parse"]

GRAMMAR_PATH = Path(__file__).with_name("grammar.lark")

_PARSER = Lark(
    GRAMMAR_PATH.read_text(encoding="utf-8"),
    parser="lalr",
    lexer="contextual",
    propagate_positions=True,
    maybe_placeholders=False,
)

_MAX_LENGTH = 10_000
_MAX_DEPTH = 100  # the transformer and compiler recurse: bounded well below Python's stack


def _depth(tree: Tree[Token]) -> int:
    """The tree's depth, found without recursion (the tree may be deeper than the stack)."""
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        stack.extend((c, level + 1) for c in node.children if isinstance(c, Tree))
    return deepest


def parse(text: str) -> Query:
    """Parse query text into a `Query`; raises `QuerySyntaxError` (only) when it is not one."""
    if len(text) > _MAX_LENGTH:
        raise query_error(
            text[:80], 1, 1, f"the query is {len(text):,} characters long; the limit is "
            f"{_MAX_LENGTH:,}"
        )
    try:
        tree = _PARSER.parse(text)
    except UnexpectedInput as e:
        raise _translate(text, e) from None
    depth = _depth(tree)
    if depth > _MAX_DEPTH:
        raise query_error(
            text[:80], 1, 1, f"the query nests {depth} levels deep (parentheses and 'not'); the "
            f"limit is {_MAX_DEPTH}"
        )
    try:
        query: Query = _Builder(text).transform(tree)
    except VisitError as e:
        if isinstance(e.orig_exc, QuerySyntaxError):
            raise e.orig_exc from None
        raise
    return query


# ------------------------------------------------------------------------------------ transformer
def _at(node_cls: Any, meta: Meta | Token | Node, *args: Any, **kwargs: Any) -> Any:
    line = getattr(meta, "line", 1) or 1
    column = getattr(meta, "column", 1) or 1
    end_line = getattr(meta, "end_line", line) or line
    end_column = getattr(meta, "end_column", column + 1) or column + 1
    if end_line != line:
        end_column = column + 1
    return node_cls(*args, line=line, column=column, end_column=end_column, **kwargs)


def _span(first: Node | Token, last: Node | Token) -> dict[str, int]:
    line = int(first.line or 1)
    column = int(first.column or 1)
    end_column = int(last.end_column or column + 1) if last.line == line else column + 1
    return {"line": line, "column": column, "end_column": end_column}


def _unescape(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1], flags=re.DOTALL)


@v_args(meta=True)
class _Builder(Transformer[Token, Query]):
    """Tree -> AST. One method per grammar rule (each docstring quotes its rule); any rule without
    a method raises, so a grammar change cannot silently produce a half-built query."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def __default__(self, data: Any, children: Any, meta: Any) -> Any:
        raise NotImplementedError(f"grammar rule {data!r} has no transformer method")

    def _error(self, node: Node | Token, message: str, extra: tuple[str, ...] = ()) -> None:
        line = int(node.line or 1)
        column = int(node.column or 1)
        end = int(node.end_column or column + 1)
        raise query_error(self.text, line, column, message, length=end - column, extra=extra)

    # -------------------------------------------------------------------------------- values
    def number(self, meta: Meta, children: list[Token]) -> Number:
        """?value: QUANTITY -> number"""
        return _at(Number, children[0], str(children[0]))

    def word(self, meta: Meta, children: list[Token]) -> Word:
        """?value: NAME -> word"""
        return _at(Word, children[0], str(children[0]))

    def string(self, meta: Meta, children: list[Token]) -> String:
        """?value: STRING -> string"""
        return _at(String, children[0], _unescape(str(children[0])))

    # ------------------------------------------------------------------------------- filters
    def field(self, meta: Meta, children: list[Token]) -> FieldRef:
        """field: FIELD -> field"""
        return _at(FieldRef, children[0], str(children[0]))

    def aggregate(self, meta: Meta, children: list[Token]) -> FieldRef:
        """field: AGG _LPAR NAME _RPAR -> aggregate (also sort_key)"""
        agg, name = children
        return _at(FieldRef, meta, str(name), aggregate=str(agg).lower())

    def plain_key(self, meta: Meta, children: list[Token]) -> FieldRef:
        """?sort_key: NAME -> plain_key"""
        return _at(FieldRef, children[0], str(children[0]))

    def comparison(self, meta: Meta, children: list[Any]) -> Comparison:
        """comparison: field OP value ("," value)* AGO?"""
        field, op, *rest = children
        ago = bool(rest) and isinstance(rest[-1], Token) and rest[-1].type == "AGO"
        values = tuple(v for v in rest if not isinstance(v, Token))
        op_text = "=" if str(op) == "==" else str(op)
        if len(values) > 1 and op_text not in {"=", "!="}:
            self._error(values[1], f"a list of values needs = or != (not {op_text})")
        return _at(Comparison, meta, field, op_text, values, ago=ago)

    def membership(self, meta: Meta, children: list[Any]) -> Membership:
        """membership: field NOT? IN _LPAR value ("," value)* _RPAR"""
        field = children[0]
        negated = any(isinstance(c, Token) and c.type == "NOT" for c in children)
        values = tuple(c for c in children[1:] if not isinstance(c, Token))
        return _at(Membership, meta, field, values, negated=negated)

    def has(self, meta: Meta, children: list[Any]) -> Has:
        """has: HAS value"""
        return _at(Has, meta, children[1])

    def flag(self, meta: Meta, children: list[Token]) -> Flag:
        """flag: NAME"""
        return _at(Flag, children[0], str(children[0]))

    def negation(self, meta: Meta, children: list[Any]) -> Not:
        """?negation: NOT negation -> negation"""
        return _at(Not, meta, children[1])

    def disjunction(self, meta: Meta, children: list[Expr]) -> Or:
        """?disjunction: negation (_OR negation)*"""
        return Or(tuple(children), **_span(children[0], children[-1]))

    def conjunction(self, meta: Meta, children: list[Expr]) -> And:
        """?conjunction: disjunction (_AND? disjunction)*"""
        return And(tuple(children), **_span(children[0], children[-1]))

    # --------------------------------------------------------------------------------- verbs
    def objective(self, meta: Meta, children: list[Token]) -> Objective:
        """objective: DIRECTION? NAME"""
        direction = str(children[0])[:-1].lower() if len(children) == 2 else None
        return _at(Objective, meta, str(children[-1]), direction=direction)

    def directed(self, meta: Meta, children: list[Token]) -> Directed:
        """directed: DIRECTION NAME"""
        objective = _at(Objective, meta, str(children[1]), direction=str(children[0])[:-1].lower())
        return _at(Directed, meta, objective)

    def pareto(self, meta: Meta, children: list[Any]) -> Pareto:
        """pareto: PARETO objective*"""
        return _at(Pareto, meta, tuple(children[1:]))

    def _order(self, children: list[Any]) -> str | None:
        last = children[-1]
        if isinstance(last, Token) and last.type in {"ASC", "DESC"}:
            return str(last).lower()
        return None

    def _whole(self, number: Number, what: str) -> None:
        if not re.fullmatch(r"[+-]?\d+", number.text) or int(number.text) < 1:
            self._error(number, f"{what} takes a whole number of rows, like 10 (not {number.text})")

    def top(self, meta: Meta, children: list[Any]) -> Top:
        """top: TOP QUANTITY BY sort_key (ASC | DESC)?"""
        n = _at(Number, children[1], str(children[1]))
        self._whole(n, "top")
        return _at(Top, meta, n, children[3], order=self._order(children))

    def sort(self, meta: Meta, children: list[Any]) -> Sort:
        """sort: SORT sort_key (ASC | DESC)?"""
        return _at(Sort, meta, children[1], order=self._order(children))

    def limit(self, meta: Meta, children: list[Token]) -> Limit:
        """limit: LIMIT QUANTITY"""
        n = _at(Number, children[1], str(children[1]))
        self._whole(n, "limit")
        return _at(Limit, meta, n)

    def count(self, meta: Meta, children: list[Token]) -> Count:
        """count: COUNT"""
        return _at(Count, meta)

    def group(self, meta: Meta, children: list[Token]) -> GroupBy:
        """group: GROUP BY NAME"""
        return _at(GroupBy, meta, str(children[2]))

    def lineage(self, meta: Meta, children: list[Token]) -> Lineage:
        """lineage: LINEAGE (NAME | STRING | QUANTITY)"""
        token = children[1]
        model: Value
        if token.type == "STRING":
            model = _at(String, token, _unescape(str(token)))
        elif token.type == "QUANTITY":
            model = _at(Number, token, str(token))
        else:
            model = _at(Word, token, str(token))
        return _at(Lineage, meta, model)

    def explain(self, meta: Meta, children: list[Token]) -> Explain:
        """explain: EXPLAIN"""
        return _at(Explain, meta)

    # --------------------------------------------------------------------------------- query
    def start(self, meta: Meta, children: list[Any]) -> Query:
        """start: (clause (_AND? clause)*)?

        Assembles the clauses: class=/metric= become the focus; bare names and ``max:x`` right
        after ``pareto`` (optionally past a class focus) are its objectives; verbs may appear once
        and only in combinations that mean something.
        """
        filters: list[Expr] = []
        slots: dict[str, Any] = {}
        pareto_objectives: list[Objective] | None = None
        for clause in children:
            if isinstance(clause, Comparison) and clause.field.aggregate is None and (
                clause.field.name.lower() in {"class", "metric"}
            ):
                self._focus(clause, slots)
                continue
            if pareto_objectives is not None:
                if isinstance(clause, Flag) and _is_objective_name(clause.name):
                    pareto_objectives.append(_at(Objective, clause, clause.name))
                    continue
                if isinstance(clause, Directed):
                    pareto_objectives.append(clause.objective)
                    continue
                pareto_objectives = None
            if isinstance(clause, Directed):
                self._error(clause, f"'{clause.objective.to_text()}' is a Pareto objective; put "
                            "it right after 'pareto', e.g. 'pareto max:acc min:latency'")
            if isinstance(clause, Pareto):
                self._slot(slots, "pareto", clause)
                pareto_objectives = list(clause.objectives)
                slots["_pareto_objectives"] = pareto_objectives
                continue
            if isinstance(clause, Top | Sort | GroupBy | Lineage | Count | Limit | Explain):
                self._slot(slots, _SLOT[type(clause)], clause)
                continue
            self._reject_nested_focus(clause)
            filters.append(clause)
        if "pareto" in slots:
            p = slots["pareto"]
            slots["pareto"] = Pareto(
                tuple(slots.pop("_pareto_objectives")),
                line=p.line, column=p.column, end_column=p.end_column,
            )
        self._check_combinations(slots)
        return Query(tuple(filters), **slots, text=self.text)

    def _focus(self, clause: Comparison, slots: dict[str, Any]) -> None:
        name = clause.field.name.lower()
        if clause.op != "=" or clause.ago:
            self._error(clause, f"{name} sets the class focus; write {name}=... "
                        f"(e.g. {'class=bird' if name == 'class' else 'metric=recall'})")
        if name == "class":
            self._slot(slots, "focus", _at(ClassFocus, clause, clause.values))
        else:
            if len(clause.values) > 1:
                self._error(clause.values[1], "metric= takes one metric: "
                            + ", ".join(CLASS_METRICS))
            self._slot(slots, "metric", _at(MetricFocus, clause, clause.values[0]))

    def _slot(self, slots: dict[str, Any], name: str, clause: Node) -> None:
        if name in slots:
            word = _WORDS[name]
            self._error(clause, f"'{word}' is given twice; a query takes one")
        slots[name] = clause

    def _reject_nested_focus(self, expr: Expr) -> None:
        stack: list[Expr] = [expr]
        while stack:
            e = stack.pop()
            if isinstance(e, Comparison | Membership) and e.field.aggregate is None and (
                e.field.name.lower() in {"class", "metric"}
            ):
                word = e.field.name.lower()
                self._error(e, f"{word}= sets the class focus and must stand on its own, not "
                            "inside not, or, in or parentheses")
            if isinstance(e, Not):
                stack.append(e.operand)
            elif isinstance(e, Or | And):
                stack.extend(e.operands)

    def _check_combinations(self, slots: dict[str, Any]) -> None:
        modes = [k for k in ("pareto", "top", "group", "lineage") if k in slots]
        clashes: list[tuple[str, str]] = []
        if len(modes) > 1:
            clashes.append((modes[0], modes[1]))
        for extra, bad in (
            ("count", ("top", "group", "lineage")),
            ("sort", ("top", "group", "lineage")),
            ("limit", ("top", "count", "lineage")),
        ):
            clashes.extend((b, extra) for b in bad if extra in slots and b in slots)
        if not clashes:
            return
        a, b = clashes[0]
        _first, second = sorted((slots[a], slots[b]), key=lambda n: (n.line, n.column))
        later = a if second is slots[a] else b
        earlier = b if later == a else a
        why = {
            "limit": " ('top N' already limits the rows)" if earlier == "top" else "",
        }.get(later if earlier == "top" else "", "")
        self._error(second, f"'{_WORDS[later]}' cannot be combined with '{_WORDS[earlier]}'{why}")


_SLOT: dict[type, str] = {
    Top: "top", Sort: "sort", GroupBy: "group", Lineage: "lineage", Count: "count",
    Limit: "limit", Explain: "explain",
}
_WORDS = {
    "pareto": "pareto", "top": "top", "sort": "sort", "group": "group by", "lineage": "lineage",
    "count": "count", "limit": "limit", "explain": "explain", "focus": "class=",
    "metric": "metric=",
}


def _is_objective_name(name: str) -> bool:
    field = FIELDS.get(name.lower())
    return field is None or field.kind is not Kind.FLAG


# ------------------------------------------------------------------------------ error messages
_TERMINAL_WORDS = {
    "FIELD": "a filter such as params<100k",
    "NAME": "a name",
    "QUANTITY": "a number",
    "STRING": "a quoted string",
    "OP": "a comparison operator (<, <=, >, >=, =, !=, ~)",
    "AGG": "an aggregate such as max(val_acc)",
    "HAS": "has:",
    "DIRECTION": "max: or min:",
    "PARETO": "pareto",
    "TOP": "top",
    "BY": "'by'",
    "SORT": "sort",
    "ASC": "asc",
    "DESC": "desc",
    "LIMIT": "limit",
    "COUNT": "count",
    "GROUP": "group by",
    "LINEAGE": "lineage",
    "EXPLAIN": "explain",
    "AGO": "ago",
    "IN": "'in'",
    "NOT": "not",
    "_OR": "or",
    "_AND": "and",
    "_LPAR": "'('",
    "_RPAR": "')'",
    "COMMA": "','",
    "$END": "the end of the query",
}

_CMP_BEFORE = re.compile(
    r"(?:(?P<agg>[A-Za-z]+)\s*\(\s*)?(?P<field>[A-Za-z_]\w*)\s*\)?\s*"
    r"(?P<op><=|>=|!=|==|=|<|>|~)\s*(?:[^\s,()]+\s*,\s*)*$"
)


def _value_words(field: str, agg: bool, op: str) -> str:
    name = field.lower()
    if op == "~":
        return "a regular expression in quotes"
    if name == "class" and not agg:
        return "a class name"
    if name == "metric" and not agg:
        return "a metric name (" + ", ".join(CLASS_METRICS) + ")"
    f = FIELDS.get(name)
    if agg or (f is not None and f.kind in NUMERIC):
        if f is not None and f.kind is Kind.LATENCY:
            return "a latency such as 2ms"
        if f is not None and f.kind is Kind.DURATION:
            return "a duration such as 10min"
        return "a number"
    if f is not None and f.kind in {Kind.TIME, Kind.AGE}:
        return "a duration such as 2h"
    return "a value"


def _previous(text: str, pos: int) -> str:
    """The token just before `pos` (roughly, for messages)."""
    before = text[:pos].rstrip()
    m = re.search(r"(\"[^\"]*\"|'[^']*'|<=|>=|!=|==|[<>=~(),]|has:|[^\s<>=!~(),]+)$", before)
    return m.group(1) if m else ""


def _translate(text: str, e: UnexpectedInput) -> QuerySyntaxError:
    """One Lark error -> one message a person understands."""
    pos = e.pos_in_stream if e.pos_in_stream is not None else len(text)
    if isinstance(e, UnexpectedToken):
        expected = set(e.expected)
        token = e.token
        at_end = token.type == "$END"
        found = "" if at_end else str(token)
        if at_end:
            pos = len(text)
    elif isinstance(e, UnexpectedCharacters):
        expected = set(e.allowed or ())
        found = text[pos] if pos < len(text) else ""
        at_end = False
    else:  # UnexpectedEOF (not produced by LALR, kept for safety)
        expected, found, at_end, pos = set(), "", True, len(text)
    length = max(1, len(found))

    def fail(message: str, *, at: int | None = None, span: int | None = None) -> QuerySyntaxError:
        p = pos if at is None else at
        ln = text.count("\n", 0, p) + 1
        col = p - (text.rfind("\n", 0, p) + 1) + 1
        return query_error(text, ln, col, message, length=span or length)

    prev = _previous(text, pos)
    # unterminated string
    if found in {'"', "'"} and text.count(found, pos) % 2 == 1:
        return fail(f"this string is never closed; add the closing {found}")
    # parentheses
    if found == ")" and "_RPAR" not in expected:
        return fail("unbalanced parentheses: this ')' has no matching '('")
    if at_end and "_RPAR" in expected:
        opened = _unclosed_paren(text)
        if opened is not None:
            return fail("unbalanced parentheses: this '(' is never closed; add a ')'", at=opened,
                        span=1)
    values = {"QUANTITY", "NAME", "STRING"}
    what = "the end of the query" if at_end else f"'{found}'"
    suffix = ""
    m = _CMP_BEFORE.search(text[:pos])
    if values <= expected and m is not None:
        words = _value_words(m.group("field"), m.group("agg") is not None, m.group("op"))
        return fail(f"expected {words} after '{prev}'{suffix}")
    low = prev.lower()
    if low == "top":
        return fail(f"expected a number after 'top', e.g. 'top 10 by acc'{suffix}")
    if "BY" in expected:
        example = "'group by origin'" if low == "group" else "'top 10 by acc'"
        return fail(f"expected 'by' after '{prev}', e.g. {example}{suffix}")
    if low == "by":
        return fail(f"expected a field name after 'by'{suffix}")
    if low == "sort":
        return fail(f"expected a field name after 'sort', e.g. 'sort params asc'{suffix}")
    if low == "limit":
        return fail(f"expected a number after 'limit', e.g. 'limit 20'{suffix}")
    if low == "lineage":
        return fail(f"expected a model id after 'lineage', e.g. 'lineage m12'{suffix}")
    if low == "has:":
        return fail(f"expected a layer type after 'has:', e.g. has:BatchNorm{suffix}")
    if low in {"not", "or", "and", "("} and "FIELD" in expected:
        return fail(f"expected a filter after '{prev}', e.g. params<100k{suffix}")
    if expected == {"_LPAR"} or (low in {"in"} and "_LPAR" in expected):
        return fail(f"expected '(' after '{prev}', e.g. status in (done, training){suffix}")
    agg = re.search(r"([A-Za-z]+)\s*\(\s*$", text[:pos])
    if "NAME" in expected and "_RPAR" not in expected and agg is not None:
        name = agg.group(1).lower()
        return fail(f"expected an epoch metric inside '{name}(...)', e.g. {name}(val_acc)")
    if "OP" in expected and prev == ")":
        return fail(f"expected a comparison after the aggregate, e.g. max(val_acc)>0.9{suffix}")
    if found and found[0] in "<>=!~" and "FIELD" in expected:
        return fail(f"expected a field name before '{found}', e.g. params<100k")
    if found == ",":
        return fail("a ',' separates values after = or inside in (...); nothing to separate here")
    found_words = "this character" if not found and not at_end else what
    expected_words = sorted({_TERMINAL_WORDS.get(t, t) for t in expected} - {"a name"})
    hint = (f"; expected {_join(expected_words)}"
            if expected_words and len(expected_words) <= 4 else "")
    if isinstance(e, UnexpectedCharacters):
        return fail(f"unexpected character '{found}'; values with spaces or symbols go in "
                    'quotes, e.g. tag="v1 @ lab"')
    return fail(f"unexpected {found_words}{hint}")


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _unclosed_paren(text: str) -> int | None:
    """Offset of the innermost '(' that is never closed, ignoring quoted strings."""
    stack: list[int] = []
    quote: str | None = None
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'":
            quote = c
        elif c == "(":
            stack.append(i)
        elif c == ")" and stack:
            stack.pop()
        i += 1
    return stack[-1] if stack else None
