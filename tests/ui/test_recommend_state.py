"""The Recommend view's state, driven without a browser against a real database.

One module-scoped database has the real digits dataset registered, 40 synthetic model lifecycles
on it (36 finish), and two valid architectures proposed but not queued; the recommenders are
really fitted on it once (a small encoder corpus). Tests of the too-few and nothing-fitted paths
use their own fresh `db`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import model_lifecycle
from nasdb.read import get_dataset
from nasdb.recommend import MIN_TRAINED_MODELS, fit_all
from nasdb.schema import Database
from nasdb.search import Activation, Architecture, Conv2D, Dense, Hyperparameters, MaxPool2D
from nasdb.steer import Proposal, propose
from nasdb.trainers.registry import register_dataset
from nasdb.ui.app import AppState
from nasdb.ui.app._recommend_state import COLUMNS, RecommendState, parse_count
from tests.conftest import TEMPLATE, _with_dbname

from ._fixtures import fill

N_SYNTHETIC = 40


class Flow:
    def __init__(self, db: Database, untrained: list[str], fitted: dict[str, str]) -> None:
        self.db = db
        self.untrained = untrained
        self.fitted = fitted


def _trained_count(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("select count(*) from models where status = 'done' "
                           "and test_acc is not null").fetchone()
    assert row is not None
    return int(row[0])


@pytest.fixture(scope="module")
def flow(pg_admin_url: str, template_url: str) -> Iterator[Flow]:
    name = f"nasdb_ur_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{TEMPLATE}"')
    db = Database(_with_dbname(pg_admin_url, name))
    store = EventStore(db=db)
    register_dataset(store, "digits")
    rng = random.Random(21)
    store.append_batch([
        (f"model-m{i}", model_lifecycle(rng, f"m{i}", "digits", finish=i % 10 != 0), None)
        for i in range(1, N_SYNTHETIC + 1)])
    with db.connect(autocommit=True) as conn:  # synthetic ids do not draw from the sequence
        conn.execute("select setval('model_ids', %s)", (N_SYNTHETIC,))
    Projector(db).catch_up()
    info = get_dataset(db, "digits")
    untrained = propose(store, info, [
        Proposal(Architecture.of(Conv2D(16, 3, padding="same"), Activation("relu"),
                                 MaxPool2D(2, 2), Dense(32)), Hyperparameters(), "handcrafted"),
        Proposal(Architecture.of(Dense(64), Activation("relu")), Hyperparameters(lr=3e-3),
                 "handcrafted"),
    ], queue=False)
    Projector(db).catch_up()
    fitted = {f.kind: f.recommender_id
              for f in fit_all(db, n_corpus=200, encoder_epochs=1, sample_size=64)}
    Projector(db).catch_up()
    yield Flow(db, untrained, fitted)
    db.engine.dispose()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def rec(flow: Flow) -> RecommendState:
    state = RecommendState(AppState(flow.db))
    state.dataset = "digits"
    return state


def _types(db: Database, stream: str) -> list[str]:
    return [e.type for e in EventStore(db=db).read_stream(stream)]


# --- recommendations ---------------------------------------------------------------------------


def test_recommend_ranks_measured_and_predicted_models(rec: RecommendState, flow: Flow) -> None:
    assert rec.param.dataset.objects == ["digits"]
    assert rec.param.classes.objects == [str(i) for i in range(10)]
    rec.limit = 100
    frame = rec.recommend()
    assert frame is rec.recommendations
    assert list(frame.columns) == list(COLUMNS)
    assert rec.mode == "trained" and rec.source_dataset == "digits" and rec.message == ""
    assert rec.recommenders["predictor"] == flow.fitted["predictor"]
    assert frame["rank"].tolist() == list(range(1, len(frame) + 1))
    assert frame["score"].is_monotonic_decreasing
    measured = frame[frame["source"] == "measured"]
    predicted = frame[frame["source"] == "predicted"]
    assert len(measured) == _trained_count(flow.db)
    assert set(flow.untrained) <= set(predicted["model_id"])
    assert predicted["lower"].notna().all() and measured["lower"].isna().all()
    assert ((predicted["lower"] <= predicted["accuracy"])
            & (predicted["accuracy"] <= predicted["upper"])).all()
    assert measured["why"].str.match(r"^m\d+ \(0\.\d{3}\)").all()  # its nearest trained models
    assert "recommendations for **digits**" in rec.summary()


def test_limit_size_class_focus_and_untrained_only_shape_the_list(rec: RecommendState) -> None:
    assert len(rec.recommend()) == 10
    rec.limit = 3
    assert rec.recommendations["rank"].tolist() == [1, 2, 3]
    rec.limit = 100
    everything = rec.recommendations
    cap = int(everything["params"].median())
    assert rec.set_max_params(f"{cap / 1000}k")
    assert rec.max_params == cap
    assert 0 < len(rec.recommendations) < len(everything)
    assert (rec.recommendations["params"] <= cap).all()
    assert rec.set_max_params("")
    assert rec.max_params is None
    rec.classes = ["3"]
    assert (rec.recommendations["score_basis"] == "class").any()
    assert "ranked by class 3" in rec.summary()
    rec.classes = []
    rec.untrained_only = True
    assert set(rec.recommendations["source"]) == {"predicted"}


def test_bad_size_is_an_exact_message_and_keeps_the_list(rec: RecommendState) -> None:
    before = rec.recommend()
    assert rec.set_max_params("12x") is False
    assert rec.message == ("⚠ '12x' is not a parameter count; use a number with an optional k, M "
                           "or G suffix (100k, 1.5M)")
    assert rec.max_params is None and rec.recommendations is before
    assert parse_count("1.5M") == 1_500_000 and parse_count(" 100k ") == 100_000


def test_status_is_fitted_until_more_models_are_trained(rec: RecommendState, flow: Flow) -> None:
    status = rec.status()
    assert status["fitted"] and not status["stale"] and rec.fitted and not rec.stale
    assert rec.fit_status.startswith(f"Predictor {flow.fitted['predictor']} fitted on "
                                     f"{_trained_count(flow.db)} trained models ")


def test_embedding_maps_known_architectures_and_marks_the_recommendations(
        rec: RecommendState) -> None:
    rec.recommend()
    emb = rec.embedding()
    assert set(rec.recommendations["model_id"]) <= set(emb["model_id"])
    assert emb["recommended"].sum() == len(rec.recommendations) == 10
    assert emb[["x", "y"]].notna().all().all() and emb["x"].std() > 0
    top = emb[emb["rank"] == 1]
    assert top["model_id"].iloc[0] == rec.recommendations["model_id"].iloc[0]
    assert rec.embedding() is not emb  # a copy of the cached layout
    assert rec.embedding()[["x", "y"]].equals(emb[["x", "y"]])


# --- queuing -----------------------------------------------------------------------------------


def test_queue_an_untrained_recommendation_appends_training_requested(
        rec: RecommendState, flow: Flow) -> None:
    rec.limit = 100
    rec.recommend()
    model = flow.untrained[0]
    rec.select(model)
    assert rec.app.selected == model  # the drawer shows it
    assert rec.queue() == model, rec.message
    assert rec.message.startswith(f"queued {model} for training (predicted accuracy 0.")
    assert "90% interval" in rec.message
    assert _types(flow.db, f"model-{model}")[-1] == "TrainingRequested"
    row = rec.recommendations.set_index("model_id").loc[model]
    assert row["status"] == "queued"  # recomputed after the live refresh
    actions = [e.data for e in EventStore(db=flow.db).read_stream(
        f"session-{rec.app.session_id}")]
    assert actions[-1]["action"] == "recommend_queue"
    assert actions[-1]["detail"] == {"model": model, "queued": model, "dataset": "digits"}
    # once queued, asking again says so
    assert rec.queue(model) is None
    assert rec.message == f"⚠ model {model} is already queued"


def test_queue_errors_are_exact_messages(rec: RecommendState) -> None:
    frame = rec.recommend()
    assert rec.queue() is None
    assert rec.message == "⚠ select a recommendation first (click its row)"
    assert rec.queue("m999") is None
    assert rec.message == "⚠ m999 is not among the recommendations shown for 'digits'"
    top = frame.iloc[0]
    assert top["source"] == "measured"
    assert rec.queue(str(top["model_id"])) is None
    assert rec.message == (
        f"⚠ {top['model_id']} is already trained on 'digits' (measured accuracy "
        f"{top['accuracy']:.3f}); pick a predicted row, or generate variations of it in the "
        "Generate tab")


def test_a_new_dataset_gets_the_most_similar_datasets_models_and_queues_a_copy(
        rec: RecommendState, flow: Flow) -> None:
    store = EventStore(db=flow.db)
    register_dataset(store, "digits", name="digits-copy", val_seed=7)
    rec.app.refresh()
    assert rec.param.dataset.objects == ["digits", "digits-copy"]
    rec.dataset = "digits-copy"
    rec.classes = ["3"]
    frame = rec.recommend()
    assert frame.empty
    assert rec.message == ("⚠ nothing has been trained on 'digits-copy' yet, so there are no "
                           "class-level metrics to rank by; clear the class focus")
    rec.classes = []
    frame = rec.recommendations
    assert rec.mode == "transfer" and rec.source_dataset == "digits" and not frame.empty
    assert set(frame["source"]) == {"predicted"} and set(frame["trained_on"]) == {"digits"}
    assert rec.similarity == {"digits": 1.0}
    assert (frame["source_similarity"] == 1.0).all()
    assert "most similar dataset, **digits** (similarity 1.00" in rec.summary()
    assert rec.status()["stale"] and "dataset digits-copy registered since" in rec.fit_status
    source = str(frame["model_id"].iloc[0])
    new = rec.queue(source)
    assert new is not None and new != source, rec.message
    assert rec.message.startswith(f"queued {new} on digits-copy: the architecture of {source} "
                                  "(trained on digits), predicted accuracy 0.")
    events = EventStore(db=flow.db).read_stream(f"model-{new}")
    assert [e.type for e in events] == ["ArchitectureProposed", "TrainingRequested"]
    proposed = events[0].data
    assert proposed["dataset_id"] == "digits-copy" and proposed["parent_id"] == source
    assert proposed["predicted_acc"] == pytest.approx(float(frame["accuracy"].iloc[0]), abs=1e-4)
    assert proposed["proposal"]["recommended_from"] == source
    assert proposed["proposal"]["recommender_id"] == flow.fitted["predictor"]
    with flow.db.connect() as conn:
        row = conn.execute("select architecture, status from models where id = %s",
                           (new,)).fetchone()
        src = conn.execute("select architecture from models where id = %s",
                           (source,)).fetchone()
    assert row is not None and src is not None
    assert row[0] == src[0] and row[1] == "queued"


# --- fitting and its error paths -------------------------------------------------------------


def test_too_few_trained_models_is_a_clear_message_and_nothing_is_fitted(db: Database) -> None:
    fill(db, 6, seed=3)
    have = _trained_count(db)
    assert have < MIN_TRAINED_MODELS
    rec = RecommendState(AppState(db))
    assert rec.recommend().empty
    expected_tail = (f"fitting them needs at least {MIN_TRAINED_MODELS} trained models with a "
                     f"recorded architecture; the database has {have}. Train "
                     f"{MIN_TRAINED_MODELS - have} more first (Generate or a study here, or "
                     "nasdb sample then nasdb worker).")
    assert rec.message == "⚠ no recommenders are fitted yet, and " + expected_tail
    assert rec.fit_status == (f"No recommenders are fitted yet ({have} trained models; fitting "
                              f"needs {MIN_TRAINED_MODELS}).")
    assert rec.fit() is False
    assert rec.message == ("⚠ fitting the recommenders needs at least "
                           f"{MIN_TRAINED_MODELS} trained models with a recorded architecture; "
                           f"the database has {have}. Train {MIN_TRAINED_MODELS - have} more "
                           "first (Generate or a study here, or nasdb sample then nasdb worker).")
    assert EventStore(db=db).read_all(types=["RecommenderTrained"]) == []


def test_fit_from_the_state_records_recommenders_then_recommends(db: Database) -> None:
    fill(db, 30, seed=4)
    have = _trained_count(db)
    assert have >= MIN_TRAINED_MODELS
    rec = RecommendState(AppState(db), corpus=100, encoder_epochs=1)
    assert rec.dataset == "synthetic"
    assert rec.recommend().empty
    assert rec.message == ("⚠ no recommenders are fitted yet: press “Fit recommenders” (it fits "
                           "the encoder, the dataset similarity and the accuracy predictor on "
                           f"the {have} trained models).")
    progress: list[str] = []
    rec.param.watch(lambda e: progress.append(e.new), "progress")
    assert rec.fit() is True, rec.message
    kinds = [e.data["kind"] for e in EventStore(db=db).read_all(types=["RecommenderTrained"])]
    assert kinds == ["encoder", "similarity", "predictor"]
    assert rec.message.startswith("fitted encoder encoder-") and \
        rec.message.endswith(f"on {have} trained models")
    assert any("fitting the accuracy predictor" in p for p in progress)
    assert rec.fitted and not rec.stale and not rec.fitting and rec.progress == ""
    assert len(rec.recommendations) == 10 and rec.mode == "trained"
    actions = [e.data["action"] for e in EventStore(db=db).read_stream(
        f"session-{rec.app.session_id}")]
    assert "recommend_fit" in actions
    # one more trained model makes the fit stale
    store = EventStore(db=db)
    store.append("model-m31", model_lifecycle(random.Random(1), "m31", "synthetic"))
    rec.app.refresh()
    assert rec.stale and rec.fit_status.endswith(
        "Stale: 1 more model trained since — fit again to use them.")


def test_no_dataset_is_a_message_and_a_new_dataset_appears(db: Database) -> None:
    rec = RecommendState(AppState(db))
    assert rec.dataset is None and rec.recommend().empty
    assert rec.message == ("⚠ no dataset is registered yet; register one first "
                           "(nasdb dataset add digits)")
    store = EventStore(db=db)
    store.append("dataset-other", [NewEvent("DatasetRegistered", {
        "dataset_id": "other", "name": "other", "kind": "synthetic", "source": "test",
        "fingerprint": "0" * 64, "shape": [1, 8, 8], "classes": ["a", "b"], "train_size": 10,
        "val_size": 2, "test_size": 3, "val_seed": 0})])
    rec.app.refresh()
    assert rec.dataset == "other" and rec.param.classes.objects == ["a", "b"]
