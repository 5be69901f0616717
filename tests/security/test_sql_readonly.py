"""`nasdb sql` cannot write, whatever the text: each attack leaves the log byte-identical."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from nasdb.ingest import EventStore, NewEvent
from nasdb.schema import Database
from nasdb.schema.events import Tagged, TrainingRequested
from tests.security.conftest import Result, log_digest

ATTACKS = [
    # the attack, verbatim
    "commit; set session_replication_role = replica; update events set data = "
    "jsonb_set(data,'{tag}','\"forged\"') where type='Tagged'; delete from events where "
    "type='TrainingRequested'",
    "commit; create table forged (a int)",
    "commit; create table forged (a int);",
    "select 1; delete from events",
    "reset role; delete from events",
    "set role nasdb_app",
    "set session_replication_role = replica",
    "set transaction read write",
    "with gone as (delete from events returning *) select count(*) from gone",
    "update events set type = 'Forged'",
    "insert into events (event_id, stream_id, version, type, data) "
    "values (gen_random_uuid(), 'model-x', 1, 'Pinned', '{}')",
    "select * from nasdb_append_many(array['model-x'], array[null::int], "
    "'[{\"s\":1,\"event_id\":\"00000000-0000-0000-0000-000000000001\",\"type\":\"Pinned\","
    "\"schema_version\":1,\"data\":{},\"metadata\":{}}]')",
    "do $$ begin execute 'delete from events'; end $$",
    "create temp table t as select * from events",
    "alter table events disable trigger events_no_update",
    "update rm_models set pinned = true",
    "truncate events",
    "select nextval('model_ids')",
    "prepare p as delete from events",
    "copy events to '/tmp/nasdb-leak.csv'",
    "alter role nasdb_sql set default_transaction_read_only = off",
    "\\; delete from events",
]


@pytest.fixture
def populated(db: Database) -> str:
    store = EventStore(db=db)
    store.append("model-m1", [NewEvent.of(Tagged(tag="baseline")),
                              NewEvent.of(TrainingRequested())])
    return db.url


@pytest.mark.parametrize("statement", ATTACKS)
def test_an_attack_leaves_the_log_byte_identical(
        populated: str, cli: Callable[..., Result], statement: str) -> None:
    before = log_digest(populated)
    result = cli("sql", statement)
    assert result.code == 2, result
    assert result.err.startswith("error: ") and result.err.count("\n") == 1
    assert "Traceback" not in result.err
    assert log_digest(populated) == before


def test_changing_session_settings_buys_nothing(populated: str,
                                               cli: Callable[..., Result]) -> None:
    before = log_digest(populated)
    result = cli("sql", "select set_config('default_transaction_read_only', 'off', false)")
    assert result.code == 0  # a read; the next call is a new session, and the role cannot write
    assert cli("sql", "delete from events").code == 2
    assert log_digest(populated) == before


def test_one_select_still_reads_the_views(populated: str, cli: Callable[..., Result]) -> None:
    result = cli("sql", "select type, current_user as who from events order by position;",
                 "--format", "csv")
    assert result.code == 0, result
    assert result.out.splitlines() == ["type,who", "Tagged,nasdb_sql",
                                       "TrainingRequested,nasdb_sql"]


def test_a_long_statement_is_stopped_by_the_timeout(
        populated: str, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_SQL_TIMEOUT_SECONDS", "0.5")
    start = time.monotonic()
    result = cli("sql", "select pg_sleep(30)")
    assert time.monotonic() - start < 10
    assert result.code == 2
    assert "timeout" in result.err and "NASDB_SQL_TIMEOUT_SECONDS" in result.err


def test_a_timeout_below_a_millisecond_still_stops_a_statement(
        populated: str, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    # truncated to whole milliseconds it would be statement_timeout = 0: no timeout at all
    monkeypatch.setenv("NASDB_SQL_TIMEOUT_SECONDS", "0.0001")
    start = time.monotonic()
    result = cli("sql", "select pg_sleep(5)")
    assert time.monotonic() - start < 4.5
    assert (result.code, result.err) == (
        2, "error: sql: the statement ran past the 0.001 s timeout (NASDB_SQL_TIMEOUT_SECONDS)\n")


def test_a_timeout_postgresql_cannot_hold_is_one_line(
        populated: str, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NASDB_SQL_TIMEOUT_SECONDS", "1e12")
    for args in (("sql", "select 1"), ("query", "params>1")):
        result = cli(*args)
        assert result.code == 2, result
        assert result.err.startswith("error: NASDB_SQL_TIMEOUT_SECONDS='1e12' is above "
                                     "PostgreSQL's largest statement timeout, 2,147,483 s")
        assert result.err.count("\n") == 1


@pytest.mark.parametrize("statement", ["copy events to stdout", "copy (select 1) to stdout",
                                       "copy events from stdin"])
def test_copy_is_one_line_in_a_real_process(populated: str, app_url: str,
                                            statement: str) -> None:
    """Run as a person runs it (logging unconfigured, as outside pytest), where a failed rollback
    after the COPY printed 'error ignored in rollback on <psycopg.Connection ...>' too."""
    env = {**os.environ, "NASDB_DATABASE_URL": app_url, "NASDB_OWNER_URL": populated}
    env.pop("NASDB_SQL_URL", None)
    before = log_digest(populated)
    done = subprocess.run([sys.executable, "-m", "nasdb.ui.cli", "sql", statement], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done
    assert done.stderr.startswith("error: sql: ") and done.stderr.count("\n") == 1, done
    assert log_digest(populated) == before


def test_a_writing_role_is_refused_even_when_configured(
        populated: str, cli: Callable[..., Result], monkeypatch: pytest.MonkeyPatch) -> None:
    for url in (populated, populated.replace("user=postgres", "user=nasdb_app")):
        monkeypatch.setenv("NASDB_SQL_URL", url)
        result = cli("sql", "select 1")
        assert result.code == 2 and "refused to run as" in result.err, result
