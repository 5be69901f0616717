"""``nasdb query``: run one query (table, JSON or CSV), or open the interactive query console.

    nasdb query "pareto params<100k class=bird"          # a table, the description as its title
    nasdb query "top 10 by acc" --format json            # a JSON array of row objects on stdout
    nasdb query "explain top 5 by acc"                   # the SQL and its parameters; runs nothing
    nasdb query                                          # the console: history, completion

A malformed query exits with code 2 and the caret message on stderr (see ui/cli.py main()).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import click

from nasdb.query import FIELDS, format_result, parse, run
from nasdb.query._ast import KEYWORDS
from nasdb.query._fields import AGGREGATES, CLASS_METRICS, EPOCH_FIELDS, LAYER_TYPES
from nasdb.schema.errors import DatasetNotChosen, NasdbError, QuerySyntaxError
from nasdb.ui._context import Context, format_option, pass_ctx

PROMPT = "nasdb> "
HELP = """\
Type a query and press Enter, e.g.
  pareto params<100k class=bird     top 10 by acc     group by origin
  max(val_acc)>0.9 sort params      count status=training     explain top 5 by acc
Tab completes keywords, fields, class names, studies and datasets; Up/Down walk the history.
\\f json|csv|table switches the output format; \\q or Ctrl-D leaves. The language: docs/query.md"""


def _emit_result(result: Any, fmt: str, echo: Callable[..., None]) -> None:
    """The result on stdout; for json/csv the description goes to stderr so stdout stays data."""
    if result.kind == "explain" and fmt == "csv":
        fmt = "table"  # an explained query has no rows; show the SQL
    if fmt == "table" or result.kind == "explain":
        echo(format_result(result, fmt))
        return
    echo(f"-- {result.description} ({len(result.rows)} rows)", err=True)
    echo(format_result(result, fmt).rstrip("\n"))


@click.command("query")
@click.argument("text", nargs=-1)
@format_option
@click.option("--no-wait", "--no-catch-up", "no_wait", is_flag=True,
              help="Query the read models as they are, without waiting for the projector to "
                   "reach the end of the log.")
@click.option("--dataset", default=None,
              help="Limit a query that names no dataset to this one (rankings need one when "
                   "several datasets exist; on a terminal nasdb asks).")
@pass_ctx
def query(ctx: Context, text: tuple[str, ...], fmt: str, no_wait: bool,
          dataset: str | None) -> None:
    """Run a query in the nasdb query language (docs/query.md); no TEXT opens a console.

    TEXT may be one quoted argument or several words: nasdb query top 5 by acc
    """
    if not text:
        if not sys.stdin.isatty():  # piped queries: one per line, no prompt
            refresh = (lambda: None) if no_wait else ctx.wait_projected
            code = run_lines(sys.stdin, ctx.db, fmt=fmt, refresh=refresh)
            if code:
                sys.exit(code)
            return
        console(ctx, fmt=fmt, wait=not no_wait)
        return
    joined = " ".join(text)
    if parse(joined).explain is None and not no_wait:
        ctx.wait_projected()
    _emit_result(run_asking(joined, ctx.db, dataset), fmt, click.echo)


def run_asking(text: str, db: Any, dataset: str | None = None) -> Any:
    """`run`, asking which dataset on a terminal when a ranking names none and several exist
    (elsewhere `DatasetNotChosen` ends the command: one line listing them, exit code 2)."""
    try:
        return run(text, db, dataset=dataset)
    except DatasetNotChosen as e:
        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise
        chosen = click.prompt(f"{e.verb} ranks one dataset; which one?",
                              type=click.Choice(list(e.datasets)), err=True)
        return run(text, db, dataset=chosen)


# --------------------------------------------------------------------------------------------
# the console
# --------------------------------------------------------------------------------------------


class _Prompter(Protocol):
    def prompt(self, message: str) -> str: ...


def completion_words(db: Any | None) -> list[str]:
    """Keywords, fields, aggregates, class names, studies and datasets, for the completer."""
    words: dict[str, None] = {}
    for group in (KEYWORDS, ("has:", "class=", "metric=", "by", "max:", "min:"), FIELDS,
                  (f"{a}(" for a in AGGREGATES), EPOCH_FIELDS, LAYER_TYPES, CLASS_METRICS):
        words.update(dict.fromkeys(group))
    if db is not None:
        from nasdb.read import list_datasets, list_studies

        try:
            datasets = list_datasets(db)
            for d in datasets:
                words.update(dict.fromkeys(d.classes or ()))
            words.update(dict.fromkeys([s.id for s in list_studies(db)]))
            words.update(dict.fromkeys([d.id for d in datasets]))
        except NasdbError:
            pass
    return list(words)


def make_session(db: Any | None, history: Path | None, **kwargs: Any) -> Any:
    """A prompt_toolkit session with a history file and word completion over the catalog."""
    from prompt_toolkit import PromptSession
    from prompt_toolkit.completion import WordCompleter
    from prompt_toolkit.history import FileHistory, InMemoryHistory

    completer = WordCompleter(
        completion_words(db), ignore_case=True, sentence=False,
        pattern=re.compile(r"[^\s(=,]+"),
    )
    hist = FileHistory(str(history)) if history is not None else InMemoryHistory()
    return PromptSession(history=hist, completer=completer, complete_while_typing=False,
                         **kwargs)


def loop(
    session: _Prompter,
    db: Any,
    *,
    fmt: str = "table",
    refresh: Callable[[], Any] = lambda: None,
    echo: Callable[..., None] = click.echo,
) -> int:
    """Read queries until ``\\q`` or end of input; print each result, or its error with the caret.
    Returns how many queries failed."""
    failed = 0
    while True:
        try:
            line = session.prompt(PROMPT)
        except KeyboardInterrupt:
            continue
        except EOFError:
            break
        text = line.strip()
        if not text:
            continue
        if text in {"\\q", "quit", "exit"}:
            break
        if text in {"\\h", "\\?", "help"}:
            echo(HELP)
            continue
        if text.startswith("\\f"):
            wanted = text[2:].strip()
            if wanted in {"table", "json", "csv"}:
                fmt = wanted
            echo(f"format: {fmt}")
            continue
        try:
            if parse(text).explain is None:
                refresh()
            _emit_result(run(text, db), fmt, echo)
        except QuerySyntaxError as e:
            failed += 1
            echo(str(e), err=True)
        except NasdbError as e:
            failed += 1
            echo(f"error: {e}", err=True)
    return failed


def run_lines(lines: Iterable[str], db: Any, *, fmt: str = "table",
              refresh: Callable[[], Any] = lambda: None) -> int:
    """Queries read from a pipe, one per line (no prompt); exit code 2 when any failed."""
    it = iter(lines)

    class _Lines:
        def prompt(self, message: str) -> str:
            try:
                return next(it)
            except StopIteration:
                raise EOFError from None

    return 2 if loop(_Lines(), db, fmt=fmt, refresh=refresh) else 0


def console(ctx: Context, *, fmt: str = "table", wait: bool = True) -> None:
    """The interactive console on a terminal."""
    from nasdb.schema import settings

    if wait:
        ctx.wait_projected()
    history = settings.home() / "query_history"
    history.parent.mkdir(parents=True, exist_ok=True)
    session = make_session(ctx.db, history)
    click.echo("nasdb query console: \\h for help, \\q or Ctrl-D to leave", err=True)
    loop(session, ctx.db, fmt=fmt, refresh=ctx.wait_projected if wait else (lambda: None))


def register(cli: click.Group) -> None:
    cli.add_command(query)
