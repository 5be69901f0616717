"""The recommenders wired to a real database: a small real flow on digits.

One module-scoped database gets digits registered and 24 tiny sampled models really trained for
one epoch each (about 30 s), plus two proposed but untrained models; the recommenders are fitted
on it once. Tests that need a different database (too few models, bad input) use `db`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from nasdb.ingest import EventStore, NewEvent, Projector, get_artifact
from nasdb.ingest.synthetic import search_log
from nasdb.read import get_dataset
from nasdb.recommend import (
    MIN_TRAINED_MODELS,
    fit_all,
    fit_predictor,
    load_bundle,
    load_latest,
    predict_model,
    propose_guided,
    recommend_for,
)
from nasdb.schema import Database
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.search import Hyperparameters, HyperparameterSpace, SearchSpace, sample
from nasdb.steer import Proposal, propose
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.worker import Worker

TEMPLATE = "nasdb_test_template"
SPACE = SearchSpace(filters=(4, 8, 16), units=(16, 32), max_layers=6, max_params=20_000)
HPS = HyperparameterSpace(
    optimizers=("adam", "sgd"), lr_range=(1e-4, 3e-2), batch_sizes=(32, 128), epochs=(1,),
    base=Hyperparameters(epochs=1, early_stop_patience=0),
)


def _with_dbname(url: str, name: str) -> str:
    return make_conninfo(url, dbname=name)


class Flow:
    def __init__(self, db: Database, trained: list[str], untrained: list[str],
                 fitted: dict[str, Any]) -> None:
        self.db = db
        self.store = EventStore(db=db)
        self.trained = trained
        self.untrained = untrained
        self.fitted = fitted

    def project(self) -> None:
        Projector(self.db).catch_up()


@pytest.fixture(scope="module")
def flow(pg_admin_url: str, template_url: str) -> Iterator[Flow]:
    name = f"nasdb_r_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'create database "{name}" template "{TEMPLATE}"')
    db = Database(_with_dbname(pg_admin_url, name))
    store = EventStore(db=db)
    register_dataset(store, "digits")
    Projector(db).catch_up()
    info = get_dataset(db, "digits")
    pairs = sample(info.input_shape, info.num_classes, 26, seed=1, space=SPACE,
                   hyperparameters=HPS)
    trained = propose(store, info, [Proposal(a, h, "sampled") for a, h in pairs[:24]])
    untrained = propose(store, info, [Proposal(a, h, "sampled") for a, h in pairs[24:]],
                        queue=False)
    Projector(db).catch_up()
    assert Worker(db).run(idle_exit=True) == 24
    fitted = {f.kind: f for f in fit_all(db, n_corpus=300, encoder_epochs=3)}
    Projector(db).catch_up()
    yield Flow(db, trained, untrained, fitted)
    db.engine.dispose()
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


def nasdb(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NASDB_DATABASE_URL": url}
    return subprocess.run([sys.executable, "-m", "nasdb.ui.cli", *args], env=env,
                          capture_output=True, text=True, timeout=120)


# --- fitting and tracing ---------------------------------------------------------------------


def test_every_fitted_recommender_is_an_artifact_named_by_an_event(flow: Flow) -> None:
    events = flow.store.read_all(types=["RecommenderTrained"])
    assert sorted(e.data["kind"] for e in events) == ["encoder", "predictor", "similarity"]
    for e in events:
        assert e.stream_id == f"recommender-{e.data['recommender_id']}"
        assert get_artifact(flow.db, e.data["artifact"])  # the bytes are in the database
        assert len(e.data["data_fingerprint"]) == 64
    predictor = flow.fitted["predictor"]
    assert predictor.training_rows == 24
    assert predictor.metrics["encoder"] == flow.fitted["encoder"].recommender_id
    assert predictor.metrics["similarity"] == flow.fitted["similarity"].recommender_id
    assert len(predictor.metrics["scores"]) == 8
    assert {"mse", "pearson", "spearman", "kendall"} <= set(predictor.metrics["scores"][0])
    encoder = flow.fitted["encoder"]
    assert encoder.metrics["stored"] >= 20 and encoder.metrics["sampled"] == 300
    latest = load_latest(flow.db, "predictor")
    assert latest.recommender_id == predictor.recommender_id
    bundle = load_bundle(flow.db)
    assert bundle.ids["encoder"] == encoder.recommender_id


def test_the_predictor_beats_a_constant_on_real_models(flow: Flow) -> None:
    best = flow.fitted["predictor"].metrics["scores"][0]
    assert best["kendall"] is not None and best["kendall"] > 0.2


# --- recommendations -------------------------------------------------------------------------


def test_recommend_ranks_measured_and_predicted_models_with_reasons(flow: Flow) -> None:
    result = recommend_for(flow.db, "digits", limit=None)
    assert result["mode"] == "trained" and result["source_dataset"] == "digits"
    items = result["recommendations"]
    by_id = {i["model_id"]: i for i in items}
    assert set(flow.trained) <= set(by_id) and set(flow.untrained) <= set(by_id)
    for model_id in flow.trained:
        item = by_id[model_id]
        assert item["source"] == "measured" and item["interval"] is None
        assert len(item["class_metrics"]) == 10 and "accuracy" in item["class_metrics"]["3"]
        assert len(item["why"]) == 3 and model_id not in [n["model_id"] for n in item["why"]]
    for model_id in flow.untrained:
        item = by_id[model_id]
        assert item["source"] == "predicted"
        low, high = item["interval"]
        assert 0.0 <= low <= item["accuracy"] <= high <= 1.0
        assert item["status"] == "proposed" and item["glyph"]
    scores = [i["score"] for i in items]
    assert scores == sorted(scores, reverse=True)
    assert [i["rank"] for i in items] == list(range(1, len(items) + 1))


def test_recommend_filters_by_size_and_ranks_by_a_class(flow: Flow) -> None:
    everything = recommend_for(flow.db, "digits", limit=None)["recommendations"]
    cap = sorted(i["params"] for i in everything)[len(everything) // 2]
    small = recommend_for(flow.db, "digits", max_params=cap, limit=None)["recommendations"]
    assert small and all(i["params"] <= cap for i in small) and len(small) < len(everything)
    by_class = recommend_for(flow.db, "digits", classes=["8"], limit=5)["recommendations"]
    assert len(by_class) == 5 and by_class[0]["score_basis"] == "class"
    assert by_class[0]["score"] == by_class[0]["class_metrics"]["8"]["accuracy"]
    with pytest.raises(InvalidRequest, match="unknown class 'bird'"):
        recommend_for(flow.db, "digits", classes=["bird"])


def test_a_new_dataset_gets_the_most_similar_datasets_models(flow: Flow) -> None:
    register_dataset(flow.store, "digits", name="digits-copy", val_seed=7)
    flow.project()
    result = recommend_for(flow.db, "digits-copy", limit=4)
    assert result["mode"] == "transfer" and result["source_dataset"] == "digits"
    items = result["recommendations"]
    assert len(items) == 4
    for item in items:
        assert item["source"] == "predicted" and item["trained_on"] == "digits"
        assert item["why"][0]["model_id"] == item["model_id"]  # its own measured run on digits
        assert item["why"][0]["dataset_id"] == "digits"


def test_unknown_dataset_is_named_with_the_registered_ones(flow: Flow) -> None:
    with pytest.raises(NotFound, match=r"dataset 'digitz' is not registered.*did you mean"):
        recommend_for(flow.db, "digitz")


# --- prediction ------------------------------------------------------------------------------


def test_predict_gives_an_interval_and_records_it(flow: Flow) -> None:
    model_id = flow.untrained[0]
    result = predict_model(flow.db, model_id, "digits")
    assert 0.0 <= result["lower"] <= result["predicted_acc"] <= result["upper"] <= 1.0
    assert result["recorded"] and result["measured_acc"] is None
    assert result["recommender_id"] == flow.fitted["predictor"].recommender_id
    [event] = [e for e in flow.store.read_stream(f"model-{model_id}")
               if e.type == "AccuracyPredicted"]
    assert event.data["recommender_id"] == result["recommender_id"]
    flow.project()
    with flow.db.connect() as conn:
        row = conn.execute("select predicted_acc from models where id = %s", (model_id,)).fetchone()
    assert row is not None and row[0] == pytest.approx(result["predicted_acc"])


def test_predicting_on_another_dataset_is_not_recorded_on_the_model(flow: Flow) -> None:
    register_dataset(flow.store, "digits", name="digits-other", val_seed=9)
    flow.project()
    before = flow.store.stream_version(f"model-{flow.trained[0]}")
    result = predict_model(flow.db, flow.trained[0], "digits-other")
    assert result["dataset"] == "digits-other" and not result["recorded"]
    assert flow.store.stream_version(f"model-{flow.trained[0]}") == before


# --- predictor-guided search -----------------------------------------------------------------


def test_guided_search_queues_only_the_most_promising_with_their_predictions(flow: Flow) -> None:
    ids = propose_guided(flow.store, "digits", n_candidates=40, ratio=0.1, seed=11, space=SPACE,
                         hyperparameter_space=HPS)
    assert len(ids) == 4
    scores = []
    for model_id in ids:
        events = flow.store.read_stream(f"model-{model_id}")
        assert [e.type for e in events] == ["ArchitectureProposed", "TrainingRequested"]
        data = events[0].data
        assert data["predicted_acc"] is not None
        extra = data["proposal"]
        assert extra["strategy"] == "guided" and extra["candidates"] == 40
        assert extra["recommender_id"] == flow.fitted["predictor"].recommender_id
        assert extra["predicted_lower"] <= data["predicted_acc"] <= extra["predicted_upper"]
        scores.append(extra["guided_score"])
    assert scores == sorted(scores, reverse=True)
    with pytest.raises(InvalidRequest, match="ratio"):
        propose_guided(flow.store, "digits", 10, ratio=0.0)


# --- the command line ------------------------------------------------------------------------


def in_process(url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
               *args: str) -> tuple[int, str, str]:
    """Run the CLI's entry point in this process (no interpreter start-up): code, out, err."""
    from nasdb.ui.cli import main

    monkeypatch.setenv("NASDB_DATABASE_URL", url)
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_recommend_and_predict_print_json(flow: Flow) -> None:
    url = flow.db.url
    out = nasdb(url, "recommend", "--dataset", "digits", "--max-params", "100k", "--limit", "3",
                "--format", "json")
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["dataset"] == "digits" and len(result["recommendations"]) == 3
    first = result["recommendations"][0]
    assert {"model_id", "glyph", "hyperparameters", "accuracy", "source", "class_metrics",
            "why"} <= set(first)
    assert first["source"] in ("measured", "predicted") and first["params"] <= 100_000

    predicted = nasdb(url, "recommend", "predict", "--model", flow.trained[1], "--dataset",
                      "digits", "--format", "json")
    assert predicted.returncode == 0, predicted.stderr
    [row] = json.loads(predicted.stdout)
    assert row["model_id"] == flow.trained[1] and row["recorded"] is True
    assert row["lower"] <= row["predicted_acc"] <= row["upper"]


def test_cli_table_and_error_messages(flow: Flow, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = flow.db.url
    code, out, _ = in_process(url, monkeypatch, capsys, "recommend", "--dataset", "digits",
                              "--limit", "2")
    assert code == 0 and "recommendations for digits" in out
    code, _, err = in_process(url, monkeypatch, capsys, "recommend", "--dataset", "nope")
    assert code != 0 and "dataset 'nope' is not registered" in err
    code, _, err = in_process(url, monkeypatch, capsys, "recommend", "--dataset", "digits",
                              "--max-params", "12x")
    assert code == 2 and "not a count" in err
    code, _, err = in_process(url, monkeypatch, capsys, "recommend", "predict", "--model",
                              "m9999")
    assert code != 0 and "no model 'm9999'" in err
    code, out, _ = in_process(url, monkeypatch, capsys, "recommend")
    assert code == 0 and "fit-encoder" in out and "predict" in out  # help lists subcommands


def test_cli_fit_and_fit_encoder_record_new_recommenders(
    flow: Flow, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    before = len(flow.store.read_all(types=["RecommenderTrained"]))
    out = nasdb(flow.db.url, "recommend", "fit", "--corpus", "100", "--encoder-epochs", "1",
                "--sample-size", "64", "--format", "json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    assert [r["kind"] for r in rows] == ["encoder", "similarity", "predictor"]
    assert "fitting the accuracy predictor" in out.stderr  # progress goes to stderr
    # more than one dataset is registered by now (digits and copies): a real ranker was fitted
    similarity = load_latest(flow.db, "similarity")
    assert similarity.model.ranker is not None and len(similarity.model.names) >= 2
    code, stdout, err = in_process(flow.db.url, monkeypatch, capsys, "recommend", "fit-encoder",
                                   "--corpus", "50", "--epochs", "1", "--format", "json")
    assert code == 0, err
    assert json.loads(stdout)[0]["kind"] == "encoder"
    assert len(flow.store.read_all(types=["RecommenderTrained"])) == before + 4


# --- bad input on other databases ------------------------------------------------------------


def test_too_few_trained_models_says_how_many_are_needed_and_exist(db: Database) -> None:
    store = EventStore(db=db)
    for stream, events in search_log(6, seed=3):
        store.append(stream, events)
    Projector(db).catch_up()
    with db.connect() as conn:
        row = conn.execute("select count(*) from models where status = 'done' "
                           "and test_acc is not null").fetchone()
    assert row is not None
    with pytest.raises(InvalidRequest) as error:
        fit_predictor(db)
    message = str(error.value)
    assert f"need at least {MIN_TRAINED_MODELS} trained models" in message
    assert f"the database has {row[0]}" in message


def test_nothing_fitted_and_no_architecture_get_clear_messages(db: Database) -> None:
    store = EventStore(db=db)
    register_dataset(store, "digits")
    store.append("model-m77", [NewEvent("ArchitectureProposed", {
        "model_id": "m77", "dataset_id": "digits", "origin": "handcrafted", "architecture": {},
        "hyperparameters": {"lr": 0.001, "batch_size": 32}, "glyph": "?", "depth": 1,
        "params": 0, "flops": 0, "input_shape": [1, 8, 8], "num_classes": 10})])
    Projector(db).catch_up()
    with pytest.raises(InvalidRequest, match="m77 has no recorded architecture"):
        predict_model(db, "m77", "digits")
    with pytest.raises(NotFound, match=r"no predictor has been fitted.*nasdb recommend fit"):
        recommend_for(db, "digits")
    with pytest.raises(NotFound, match="no model 'm78'"):
        predict_model(db, "m78")


def test_the_guided_study_strategy_proposes_with_predictions(flow: Flow) -> None:
    from nasdb.recommend import predictor_ranker
    from nasdb.search.strategies import get_strategy
    from nasdb.steer import create_study, load_view
    from nasdb.steer._study import take_step

    study_id = create_study(flow.store, "digits", "guided", budget={"models": 2},
                            settings={"candidates": 20, "ratio": 0.25, "parallel": 2})
    flow.project()
    with pytest.raises(InvalidRequest, match="handed no ranking function"):
        get_strategy("guided", {}).ask(load_view(flow.store, study_id), 2)
    view = load_view(flow.store, study_id, predictor_ranker(flow.store.db))
    suggestions = get_strategy("guided", dict(view.settings)).ask(view, 2)
    assert [s.info["rank"] for s in suggestions] == [1, 2]
    assert suggestions[0].info["score"] >= suggestions[1].info["score"]
    step = take_step(flow.store, view, suggestions)
    for model_id in step.model_ids:
        proposed = flow.store.read_stream(f"model-{model_id}")[0].data
        assert proposed["study_id"] == study_id
        assert proposed["predicted_acc"] == pytest.approx(
            next(s.info["predicted_acc"] for s in suggestions
                 if s.architecture.to_dict() == proposed["architecture"]))
    with pytest.raises(InvalidRequest, match="setting ratio must be in"):
        get_strategy("guided", {"ratio": 2.0})
