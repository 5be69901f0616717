"""Issue 4's acceptance commands for `nasdb query`, run as a person runs them, and the console."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.schema import Database
from nasdb.ui._cli_query import completion_words, loop, make_session
from tests._threads import on_own_thread

CARET = (
    "query error at column 8: expected a number after '<'\n"
    "  params<<100k\n"
    "         ^\n"
)


def nasdb(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "nasdb.ui.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def searched(db: Database) -> Database:
    """40 synthetic models in the log; the CLI projects them itself."""
    store = EventStore(db=db)
    store.append_batch([(stream, events, None) for stream, events in search_log(40, seed=1)])
    store.close()
    return db


def test_pareto_json_table_csv(searched: Database) -> None:
    out = nasdb(searched.url, "query", "pareto params<1M class=3", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)  # stdout is pure JSON; the description went to stderr
    assert rows and all({"id", "params", "class_accuracy"} <= set(r) for r in rows)
    assert all(r["params"] < 1_000_000 for r in rows)
    assert out.stderr.startswith("-- Pareto front of 3 accuracy vs parameters among models with "
                                 "fewer than 1,000,000 parameters (")
    table = nasdb(searched.url, "query", "top 3 by acc")
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith("Top 3 models by accuracy (highest first)")
    header = next(line for line in table.stdout.splitlines() if "glyph" in line)
    assert [c.strip() for c in header.strip("┃ ").split("┃")] == [
        "id", "glyph", "params", "acc", "status", "epochs"
    ]
    assert table.stdout.rstrip().endswith("3 rows")
    csv = nasdb(searched.url, "query", "top", "2", "by", "acc", "--format", "csv")
    lines = csv.stdout.splitlines()
    assert lines[0] == "id,glyph,params,acc,status,epochs" and len(lines) == 3
    assert [line.split(",")[0] for line in lines[1:]] == [r["id"] for r in json.loads(
        nasdb(searched.url, "query", "top 2 by acc", "--format", "json").stdout)]


def test_explain_prints_sql_and_runs_nothing(searched: Database) -> None:
    Projector(searched).catch_up()  # 40 models a query would list
    out = nasdb(searched.url, "query", "explain top 5 by acc")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("-- Top 5 models by accuracy (highest first)\nSELECT ")
    assert "LIMIT %(p1)s" in out.stdout and out.stdout.rstrip().endswith("p1 = 5")
    # the SQL and its parameters only: none of the 40 models is listed
    assert not re.search(r"\bm\d+\b", out.stdout)


def test_syntax_error_exits_2_with_the_caret_on_stderr(searched: Database) -> None:
    out = nasdb(searched.url, "query", "params<<100k")
    assert out.returncode == 2
    assert out.stdout == ""
    assert out.stderr == CARET
    unknown = nasdb(searched.url, "query", "class=33")
    assert unknown.returncode == 2
    assert unknown.stderr == (
        "query error at column 7: unknown class '33' in dataset synthetic; did you mean '3'?\n"
        "  class=33\n"
        "        ^^\n"
        "classes of dataset synthetic: 0, 1, 2, 3, 4, 5, 6, 7, 8, 9\n"
    )


def test_piped_queries_run_one_per_line(searched: Database) -> None:
    out = nasdb(searched.url, "query", stdin="count\nparams<<100k\ncount status=done\n")
    assert out.returncode == 2  # one of them failed
    assert CARET in out.stderr
    assert out.stdout.count("Number of models") == 2


class Echo:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.err: list[str] = []

    def __call__(self, message: str = "", err: bool = False) -> None:
        (self.err if err else self.out).append(message)


def test_console_loop_runs_a_query_and_shows_an_error(searched: Database, tmp_path: Any) -> None:
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    Projector(searched).catch_up()
    history = tmp_path / "history"
    echo = Echo()
    with create_pipe_input() as pipe:
        pipe.send_text("count\r")
        pipe.send_text("params<<100k\r")
        pipe.send_text("\\f json\r")
        pipe.send_text("top 1 by acc\r")
        pipe.send_text("\\q\r")
        session = make_session(searched, history, input=pipe, output=DummyOutput())
        failed = on_own_thread(loop, session, searched, echo=echo)
    assert failed == 1
    assert "Number of models" in echo.out[0] and "40" in echo.out[0]
    assert echo.err[0] + "\n" == CARET
    assert echo.out[1] == "format: json"
    assert len(json.loads(echo.out[2])) == 1
    assert history.read_text().count("\n+") == 5  # every line went into the history file


def test_console_ends_on_ctrl_d_and_completes_catalog_names(searched: Database) -> None:
    from prompt_toolkit.document import Document
    from prompt_toolkit.input import create_pipe_input
    from prompt_toolkit.output import DummyOutput

    Projector(searched).catch_up()
    words = completion_words(searched)
    for word in ["pareto", "top", "params", "val_acc", "has:", "class=", "synthetic", "7",
                 "max(", "recall"]:
        assert word in words
    echo = Echo()
    with create_pipe_input() as pipe:
        pipe.send_text("count\r\x04")
        session = make_session(searched, None, input=pipe, output=DummyOutput())
        def complete(text: str) -> list[str]:
            return [c.text for c in session.completer.get_completions(Document(text), None)]

        assert complete("pareto para") == ["params"]
        assert complete("pareto pa") == ["pareto", "parent", "params"]
        assert complete("count dataset=syn") == ["synthetic"]
        assert on_own_thread(loop, session, searched, echo=echo) == 0
    assert len(echo.out) == 1
