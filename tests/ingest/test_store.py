"""The event store's contract, against a real PostgreSQL."""

from __future__ import annotations

import multiprocessing as mp
import random
import threading
import time
from typing import Any

import psycopg
import pytest

from nasdb.ingest import EventStore, NewEvent, event_id_for
from nasdb.schema.errors import ConcurrencyConflict, InvalidEvent
from nasdb.schema.events import Tagged


def pinned() -> NewEvent:
    return NewEvent("Pinned", {})


def test_append_and_read_back_in_order(db_url: str) -> None:
    store = EventStore(db_url)
    first = store.append("model-m1", [pinned(), NewEvent("Tagged", {"tag": "a"})])
    second = store.append("model-m2", [pinned()])
    assert [e.version for e in first] == [1, 2]
    assert [e.position for e in first + second] == sorted(e.position for e in first + second)
    assert [e.type for e in store.read_stream("model-m1")] == ["Pinned", "Tagged"]
    assert [e.stream_id for e in store.read_all()] == ["model-m1", "model-m1", "model-m2"]
    assert store.read_all(after=first[-1].position) == second
    assert store.stream_version("model-m1") == 2
    assert store.stream_version("model-nope") == 0
    meta = first[0].metadata
    assert {"actor", "host", "code_version", "pid"} <= set(meta)


def test_expected_version_semantics(db_url: str) -> None:
    store = EventStore(db_url)
    store.append("model-m1", [pinned()], expected_version=0)
    with pytest.raises(ConcurrencyConflict) as err:
        store.append("model-m1", [pinned()], expected_version=0)
    assert str(err.value) == (
        "concurrency conflict on stream 'model-m1': expected version 0, but it is at version 1"
    )
    assert (err.value.expected, err.value.actual) == (0, 1)
    store.append("model-m1", [pinned()], expected_version=1)
    with pytest.raises(ConcurrencyConflict, match="expected version 5, but it is at version 2"):
        store.append("model-m1", [pinned()], expected_version=5)
    store.append("model-m1", [pinned()], expected_version=None)
    assert store.stream_version("model-m1") == 3


def test_idempotent_append_returns_the_original(db_url: str) -> None:
    store = EventStore(db_url)
    event = NewEvent("Tagged", {"tag": "x"}, idempotency_key="tag-x")
    original = store.append("model-m1", [event])
    again = store.append("model-m1", [event])
    assert again == original
    assert len(store.read_all()) == 1
    assert original[0].event_id == event_id_for("model-m1", "tag-x")
    # The same key in another stream is another event.
    store.append("model-m2", [event])
    assert len(store.read_all()) == 2


def test_the_append_path_writes_the_same_deterministic_ids(db_url: str) -> None:
    """The store formats deterministic ids without UUID objects; they are event_id_for's."""
    store = EventStore(db_url)
    keys = [f"k{i}-\u00e9\x1f{'x' * (i % 70)}" for i in range(300)]
    recorded = store.append("model-\u00fc", [NewEvent.of(Tagged(tag="t"), idempotency_key=k)
                                             for k in keys])
    assert [e.event_id for e in recorded] == [event_id_for("model-\u00fc", k) for k in keys]
    assert [e.event_id for e in store.read_stream("model-\u00fc")] == [
        event_id_for("model-\u00fc", k) for k in keys]


def test_unknown_type_and_bad_payload_are_refused(db_url: str) -> None:
    store = EventStore(db_url)
    with pytest.raises(InvalidEvent, match=r"^unknown event type 'Exploded'; known types: "):
        store.append("model-m1", [NewEvent("Exploded", {})])
    with pytest.raises(InvalidEvent) as err:
        store.append("model-m1", [NewEvent("Tagged", {"tag": ""})])
    assert str(err.value) == "Tagged payload is invalid: tag: String should have at least 1 character"
    with pytest.raises(InvalidEvent, match="Noted payload is invalid: colour: Extra inputs"):
        store.append("model-m1", [NewEvent("Noted", {"text": "hi", "colour": "red"})])
    assert store.read_all() == []


def test_the_log_refuses_update_delete_and_truncate_even_for_its_owner(db_url: str) -> None:
    EventStore(db_url).append("model-m1", [pinned()])
    with psycopg.connect(db_url, autocommit=True) as conn:
        for sql in (
            "update events set type = 'Unpinned'",
            "delete from events",
            "truncate events",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                conn.execute(sql)


def test_application_roles_write_only_through_the_store(db_url: str) -> None:
    role = f"nasdb_app_{random.randrange(10**9)}"
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(f"create role {role} login in role nasdb_writer")
        # The store checks the schema revision when it starts (reading it is all this grants).
        conn.execute(f"grant select on alembic_version to {role}")
    params = psycopg.conninfo.conninfo_to_dict(db_url)
    params["user"] = role
    app_url = psycopg.conninfo.make_conninfo(**params)
    try:
        with psycopg.connect(app_url, autocommit=True) as conn, \
                pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(
                "insert into events (event_id, stream_id, version, type, data) "
                "values (gen_random_uuid(), 'x', 1, 'Pinned', '{}')"
            )
        app = EventStore(app_url)  # the store as the application runs it: append function only
        recorded = app.append_batch([("model-m1", [pinned()], 0),
                                     ("model-m2", [pinned(), pinned()], None)])
        assert [(e.stream_id, e.version) for e in recorded] == [
            ("model-m1", 1), ("model-m2", 1), ("model-m2", 2)]
        assert [e.event_id for e in EventStore(db_url).read_all()] == [
            e.event_id for e in recorded]
        app.close()
    finally:
        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute(f"drop owned by {role}")
            conn.execute(f"drop role {role}")


def test_a_batch_over_several_streams_commits_all_or_nothing(db_url: str) -> None:
    store = EventStore(db_url)
    store.append("model-b", [pinned()])
    before = store.read_all()
    # The third stream's expected version is stale: the first two streams get nothing either.
    with pytest.raises(ConcurrencyConflict, match="stream 'model-b': expected version 0, but it "
                                                  "is at version 1"):
        store.append_batch([("model-a", [pinned(), pinned()], 0),
                            ("model-c", [pinned()], None),
                            ("model-b", [pinned()], 0)])
    # An invalid payload in the last stream refuses the whole batch before anything is sent.
    with pytest.raises(InvalidEvent):
        store.append_batch([("model-a", [pinned()], None),
                            ("model-d", [NewEvent("Tagged", {"tag": ""})], None)])
    assert store.read_all() == before
    assert store.stream_version("model-a") == store.stream_version("model-c") == 0
    # A batch inside a transaction that rolls back leaves nothing of any stream.
    with store.transaction():
        store.append_batch([("model-a", [pinned()], None), ("model-c", [pinned()], None)])
        raise psycopg.Rollback
    assert store.read_all() == before
    done = store.append_batch([("model-a", [pinned()], 0), ("model-b", [pinned()], 1)])
    assert [(e.stream_id, e.version) for e in done] == [("model-a", 1), ("model-b", 2)]


# --- concurrency ----------------------------------------------------------------------------


def _racer(url: str, rounds: int, start: Any, results: mp.Queue) -> None:  # type: ignore[type-arg]
    store = EventStore(url)
    store.stream_version("study-race")  # connected before the start
    start.wait()  # every racer starts at once, however slowly the processes were spawned
    wins = conflicts = 0
    for _ in range(rounds):
        version = store.stream_version("study-race")
        try:
            store.append("study-race", [NewEvent("StudyPaused", {"reason": str(version)})],
                         expected_version=version)
            wins += 1
        except ConcurrencyConflict:
            conflicts += 1
    results.put((wins, conflicts))


def test_sixteen_processes_racing_on_one_stream(db_url: str) -> None:
    EventStore(db_url)  # migrate before the race
    ctx = mp.get_context("spawn")
    results: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    start = ctx.Barrier(16)
    procs = [ctx.Process(target=_racer, args=(db_url, 40, start, results)) for _ in range(16)]
    for p in procs:
        p.start()
    outcomes = [results.get(timeout=120) for _ in procs]
    for p in procs:
        p.join()
    wins = sum(w for w, _ in outcomes)
    conflicts = sum(c for _, c in outcomes)
    assert wins + conflicts == 16 * 40
    assert conflicts > 0, "the race never raced"
    events = EventStore(db_url).read_stream("study-race")
    # exactly one winner per version, versions contiguous from 1
    assert [e.version for e in events] == list(range(1, wins + 1))
    # each winner appended the version it read + 1
    assert all(e.data["reason"] == str(e.version - 1) for e in events)


class _Rollback(Exception):
    pass


def _writer(url: str, writer: int, n_events: int, seed: int, q: mp.Queue) -> None:  # type: ignore[type-arg]
    """Appends through `EventStore` in explicit transactions with random sleeps inside them and
    5% rollbacks."""
    rng = random.Random(seed)
    store = EventStore(url)
    stream = f"model-w{writer}"
    committed: list[str] = []
    written = 0
    txn = 0
    while written < n_events:
        size = min(rng.randint(1, 40), n_events - written)
        keys = [f"{txn}-{i}" for i in range(size)]
        try:
            with store.transaction():
                if rng.random() < 0.3:
                    time.sleep(rng.uniform(0, 0.002))  # slow start: open transaction, no lock yet
                store.append(stream, [NewEvent("Pinned", {}, idempotency_key=k) for k in keys])
                if rng.random() < 0.2:
                    time.sleep(rng.uniform(0, 0.001))  # slow commit while holding its positions
                if rng.random() < 0.05:
                    raise _Rollback
        except _Rollback:
            pass
        else:
            committed.extend(str(event_id_for(stream, k)) for k in keys)
            written += size
        txn += 1
    store.close()
    q.put(committed)


def _reader(url: str, stop: mp.Event, q: mp.Queue) -> None:  # type: ignore[type-arg]
    """Polls position > last_seen through the store, like any tailing consumer would."""
    seen: list[tuple[int, str]] = []
    last = 0
    store = EventStore(url)
    while True:
        done = stop.is_set()
        page = store.read_all(after=last, limit=5000)
        if page:
            seen.extend((e.position, str(e.event_id)) for e in page)
            last = page[-1].position
        elif done:
            break
        else:
            time.sleep(0.001)
    store.close()
    q.put(seen)


@pytest.mark.timeout(900)
def test_no_tailing_reader_ever_skips_an_event(db_url: str) -> None:
    """16 writers x 10,000 events, random sleeps in open transactions, 5% rollbacks, 4 readers."""
    EventStore(db_url)
    ctx = mp.get_context("spawn")
    wq: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    rq: mp.Queue = ctx.Queue()  # type: ignore[type-arg]
    stop = ctx.Event()
    readers = [ctx.Process(target=_reader, args=(db_url, stop, rq)) for _ in range(4)]
    writers = [ctx.Process(target=_writer, args=(db_url, w, 10_000, w, wq)) for w in range(16)]
    for p in readers + writers:
        p.start()
    committed = [e for _ in writers for e in wq.get(timeout=800)]
    for p in writers:
        p.join()
    stop.set()
    seen_by_reader = [rq.get(timeout=120) for _ in readers]
    for p in readers:
        p.join()
    with psycopg.connect(db_url) as conn:
        truth = conn.execute("select position, event_id::text from events order by position")
        table = truth.fetchall()
    assert len(table) == 16 * 10_000 == len(committed)
    assert {e for _, e in table} == set(committed)
    for seen in seen_by_reader:
        assert seen == table  # same events, same order: no skip, no duplicate


def _waiting_on_a_lock(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "select count(*) from pg_locks where locktype = 'advisory' and not granted "
            "and database = (select oid from pg_database where datname = current_database())"
        ).fetchone()
    return int(row[0]) if row else 0


def test_a_slow_transaction_that_began_first_is_not_skipped(db_url: str) -> None:
    slow = EventStore(db_url)
    fast_done = threading.Event()

    def fast() -> None:
        EventStore(db_url).append("model-f", [pinned()])
        fast_done.set()

    thread = threading.Thread(target=fast)
    with slow.transaction():
        slow.append("model-s", [pinned()])
        thread.start()
        deadline = time.monotonic() + 30
        while _waiting_on_a_lock(db_url) == 0:  # the fast append is queued behind the slow one
            assert time.monotonic() < deadline, "the fast append never reached the lock"
            time.sleep(0.01)
        # The fast writer cannot commit ahead of the slow one, so a reader sees nothing yet.
        assert not fast_done.is_set()
        assert EventStore(db_url).read_all() == []
    thread.join()  # it can commit now; how long that takes on a loaded machine is no matter
    seen = EventStore(db_url).read_all()
    assert [e.stream_id for e in seen] == ["model-s", "model-f"]
    assert seen[0].position < seen[1].position
    slow.close()


def test_a_rolled_back_position_is_a_gap_never_filled(db_url: str) -> None:
    store = EventStore(db_url)
    store.append("model-a", [pinned()])
    with store.transaction():
        store.append("model-b", [pinned()])
        raise psycopg.Rollback
    store.append("model-c", [pinned()])
    store.append("model-d", [pinned()])
    positions = [e.position for e in store.read_all()]
    assert positions == [1, 3, 4]
