"""The basic commands, run as a person runs them: the installed `nasdb` script in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.migrations.runner import head_revision
from nasdb.schema import Database


def nasdb(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "nasdb.ui.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_help_lists_the_commands(db_url: str) -> None:
    out = nasdb(db_url, "--help")
    assert out.returncode == 0
    for command in ("init", "status", "events", "replay", "sql"):
        assert command in out.stdout
        assert nasdb(db_url, command, "--help").returncode == 0


def test_init_status_events_replay_sql(db: Database) -> None:
    store = EventStore(db=db)
    for stream, events in search_log(6, seed=2):
        store.append(stream, events)
    Projector(db).catch_up()
    total = store.last_position()

    init = nasdb(db.url, "init")
    assert init.returncode == 0 and f"schema revision {head_revision()}" in init.stdout

    status = json.loads(nasdb(db.url, "status", "--format", "json").stdout)[0]
    assert status["events"] == total
    assert status["models"] == 6
    assert status["projected_to"] == total

    events = json.loads(nasdb(db.url, "events", "--limit", "5", "--format", "json").stdout)
    assert [e["position"] for e in events] == [1, 2, 3, 4, 5]
    assert events[0]["type"] == "DatasetRegistered"
    only = json.loads(nasdb(db.url, "events", "--stream", "model-m2", "--type", "EpochCompleted",
                            "--format", "json").stdout)
    assert only and {e["type"] for e in only} == {"EpochCompleted"}
    csv_out = nasdb(db.url, "events", "--limit", "2", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == "position,stream,version,type,actor,recorded_at,data"
    assert len(csv_out) == 3

    replay = nasdb(db.url, "replay")
    assert replay.returncode == 0
    assert f"replayed {total} events" in replay.stdout

    counted = json.loads(nasdb(db.url, "sql", "select count(*) as n from events", "--format",
                               "json").stdout)
    assert counted == [{"n": total}]


def test_sql_is_read_only_and_limited_to_the_views(db: Database) -> None:
    EventStore(db=db)
    write = nasdb(db.url, "sql", "delete from models")
    assert write.returncode == 2
    assert write.stderr.strip() == "error: sql: permission denied for view models"
    private = nasdb(db.url, "sql", "select * from rm_models")
    assert private.stderr.strip() == "error: sql: permission denied for table rm_models"
    bad = nasdb(db.url, "sql", "selec 1")
    assert bad.stderr.strip() == 'error: sql: syntax error at or near "selec"'


def test_an_unreachable_database_is_one_clear_line() -> None:
    out = nasdb("postgresql://bob:s3cret@127.0.0.1:1/nasdb", "status")
    assert out.returncode == 3
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("error: cannot reach the database at "
                                 "postgresql://bob:***@127.0.0.1:1/nasdb: ")
    assert "s3cret" not in out.stderr
    assert "Traceback" not in out.stderr


def test_events_follow_prints_new_events_as_they_come(db: Database) -> None:
    store = EventStore(db=db)
    store.append("model-m1", [NewEvent("Pinned", {})])
    env = {**os.environ, "NASDB_DATABASE_URL": db.url}
    follower = subprocess.Popen(
        [sys.executable, "-m", "nasdb.ui.cli", "events", "--follow", "--format", "jsonl"],
        env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())
        assert first["type"] == "Pinned"
        store.append("model-m1", [NewEvent("Tagged", {"tag": "later"})])
        second = json.loads(follower.stdout.readline())
        assert (second["type"], second["data"], second["version"]) == \
            ("Tagged", {"tag": "later"}, 2)
    finally:
        follower.terminate()
        follower.wait(10)
