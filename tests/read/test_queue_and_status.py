"""nasdb.read's queue, status and score reads against the views they replace SQL for."""

from __future__ import annotations

import random
import time

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import dataset_event, model_lifecycle, search_log
from nasdb.read import (
    ProjectionFailureRow,
    claimable_jobs,
    count_jobs,
    done_models_by_dataset,
    holdings,
    latest_recommender,
    model_scores,
    models_by_status,
    recent_projection_failures,
    recorded_recommender,
    trained_dataset_ids,
    val_acc_curves,
)
from nasdb.schema import Database
from nasdb.schema.events import JobClaimed, PriorityChanged, RecommenderTrained


def _view(db: Database, sql: str) -> list[tuple[object, ...]]:
    with db.connect() as conn:
        return list(conn.execute(sql).fetchall())  # type: ignore[arg-type]


def test_the_queue_offers_queued_jobs_by_priority_and_claimed_ones_whose_lease_ran_out(
    db: Database,
) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    rng = random.Random(1)
    for mid in ("m1", "m2", "m3", "m4"):
        store.append(f"model-{mid}", model_lifecycle(rng, mid, finish=False))  # queued
    store.append("model-m5", model_lifecycle(rng, "m5"))  # done
    store.append("model-m2", [NewEvent.of(PriorityChanged(priority=5))])
    store.append("model-m3", [NewEvent.of(JobClaimed(worker="gone", attempt=1, lease_seconds=0.05))])
    store.append("model-m4", [NewEvent.of(JobClaimed(worker="busy", attempt=1, lease_seconds=600))])
    time.sleep(0.2)  # m3's lease has run out (by the database's clock); m4's has not
    Projector(db).catch_up()
    assert claimable_jobs(db) == ["m2", "m1", "m3"]
    assert claimable_jobs(db, skip=["m2"], limit=1) == ["m1"]
    assert count_jobs(db, ["queued"]) == 2
    assert count_jobs(db, ["queued", "claimed"]) == 4
    assert count_jobs(db, ["done"]) == 1


def test_status_reads_count_what_the_views_hold(db: Database) -> None:
    store = EventStore(db=db)
    store.append_batch([(stream, events, 0) for stream, events in search_log(30, 3)])
    Projector(db).catch_up()
    done = str(_view(db, "select min(id) from models where status = 'done'")[0][0])
    store.append(f"model-{done}", [NewEvent.of(JobClaimed(worker="late", attempt=2,
                                                          lease_seconds=60))])
    Projector(db).catch_up()
    assert holdings(db) == {name: _view(db, f"select count(*) from {name}")[0][0]
                            for name in ("events", "datasets", "studies", "models", "jobs")}
    assert models_by_status(db) == dict(
        _view(db, "select status, count(*) from models group by status"))  # type: ignore[arg-type]
    [failure] = recent_projection_failures(db)
    assert isinstance(failure, ProjectionFailureRow)
    assert (failure.type, failure.stream_id, failure.handler) == \
        ("JobClaimed", f"model-{done}", "claimed")
    assert failure.message.startswith(f"model {done}: JobClaimed cannot follow a done job")


def _thirty_models_and_an_empty_dataset(db: Database) -> None:
    """30 synthetic models, projected, and a dataset "other" registered with no model."""
    store = EventStore(db=db)
    store.append_batch([(stream, events, 0) for stream, events in search_log(30, 3)])
    store.append_batch([(stream, events, 0) for stream, events in search_log(3, 4, "other")
                        if stream.startswith("dataset-")])
    Projector(db).catch_up()


def test_scores_curves_and_trained_datasets_are_the_views_rows(db: Database) -> None:
    _thirty_models_and_an_empty_dataset(db)
    scores = {s.id: s for s in model_scores(db)}
    for mid, params, test_acc, val_acc, study, dataset in _view(
            db, "select id, params, test_acc, best_val_acc, study_id, dataset_id from models"):
        s = scores[str(mid)]
        assert (s.params, s.test_acc, s.best_val_acc, s.study_id, s.dataset_id) == \
            (params, test_acc, val_acc, study, dataset)
    assert len(scores) == 30
    assert trained_dataset_ids(db) == ["synthetic"]  # "other" is registered but has no model
    curves = val_acc_curves(db, ["m1", "m2", "m404"])
    expected: dict[str, list[float]] = {}
    for mid, val_acc in _view(db, "select model_id, val_acc from epochs where model_id in "
                                  "('m1', 'm2') order by model_id, epoch"):
        expected.setdefault(str(mid), []).append(float(val_acc))  # type: ignore[arg-type]
    assert curves == expected and expected
    assert val_acc_curves(db, []) == {}


def test_status_counts_per_dataset_and_done_models_by_dataset(db: Database) -> None:
    _thirty_models_and_an_empty_dataset(db)
    assert models_by_status(db, "synthetic") == models_by_status(db)  # every model is synthetic's
    assert models_by_status(db, "other") == {}
    done = _view(db, "select count(*) from models where status = 'done'")[0][0]
    assert done_models_by_dataset(db) == {"synthetic": done, "other": 0}  # registration order


def test_recommenders_are_read_from_their_events_newest_first(db: Database) -> None:
    store = EventStore(db=db)
    assert latest_recommender(db, "predictor") is None
    for rid, kind, rows in (("p1", "predictor", 20), ("s1", "similarity", 3),
                            ("p2", "predictor", 25)):
        store.append(f"recommender-{rid}", [NewEvent.of(RecommenderTrained(
            recommender_id=rid, kind=kind, artifact="sha", data_fingerprint="f",
            training_rows=rows))])
    latest = latest_recommender(db, "predictor")
    assert latest is not None and latest.data["recommender_id"] == "p2"
    assert latest.data["training_rows"] == 25 and latest.recorded_at is not None
    similarity = recorded_recommender(db, "s1")
    assert similarity is not None and similarity.data["kind"] == "similarity"
    assert recorded_recommender(db, "nope") is None
