"""The app's state classes, driven without a browser against a real database."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from nasdb.ingest import EventStore
from nasdb.schema import Database
from nasdb.ui.app import (
    AppState,
    ClassesState,
    GenerateState,
    InspectState,
    LandmarkLayout,
    QueueState,
    StudiesState,
    TimelineState,
    classical_mds,
    pareto_mask,
)
from nasdb.ui.app._analysis_state import moving_average

from ._fixtures import fill, trained_model


@pytest.fixture
def app(db: Database) -> AppState:
    store = fill(db, 60, seed=11)
    trained_model(db, store)
    return AppState(db, store=store)


def _ui_actions(db: Database, session: str) -> list[dict]:
    store = EventStore(db=db)
    return [e.data for e in store.read_stream(f"session-{session}")]


def test_pareto_mask_keeps_only_undominated_models() -> None:
    params = np.array([10, 20, 30, 40, 50], dtype=float)
    acc = np.array([0.5, 0.4, 0.7, np.nan, 0.9])
    assert pareto_mask(params, acc).tolist() == [True, False, True, False, True]


def test_landmark_layout_places_new_points_without_moving_old_ones() -> None:
    rng = np.random.default_rng(0)
    points = {f"m{i}": rng.normal(size=3) for i in range(30)}

    def dist(a: list[str], b: list[str]) -> np.ndarray:
        return np.array([[np.linalg.norm(points[x] - points[y]) for y in b] for x in a])

    layout = LandmarkLayout(dist, n_landmarks=10)
    first = layout.place([f"m{i}" for i in range(20)])
    second = layout.place([f"m{i}" for i in range(30)])
    assert all(second[k] == first[k] for k in first)
    assert len(second) == 30
    coords, _, _ = classical_mds(dist(list(points)[:10], list(points)[:10]))
    assert coords.shape == (10, 2)


def test_moving_average_is_trailing() -> None:
    assert moving_average(pd.Series([1.0, 3.0, 5.0]), 2).tolist() == [1.0, 2.0, 4.0]


def test_loads_models_and_marks_the_front(app: AppState) -> None:
    assert len(app.models) == 61
    frame = app.frame()
    assert frame["pareto"].any()
    front = frame[frame["pareto"]].sort_values("params")
    assert front["color"].is_monotonic_increasing
    assert app.large is False


def test_query_highlights_and_records_a_ui_action(app: AppState, db: Database) -> None:
    app.run_query("top 5 by acc")
    assert app.query_error == ""
    assert len(app.highlighted) == 5
    assert app.frame()["highlighted"].sum() == 5
    actions = _ui_actions(db, app.session_id)
    assert actions[-1]["action"] == "query"
    assert actions[-1]["detail"]["text"] == "top 5 by acc"
    assert actions[-1]["detail"]["rows"] == 5


def test_bad_query_gives_the_caret_message_and_no_highlight(app: AppState) -> None:
    app.run_query("top 5 by acc")
    app.run_query("params<<100k")
    assert "query error at column" in app.query_error
    assert "^" in app.query_error
    assert app.highlighted == [] and app.result is None


def test_pin_appends_and_keeps_selection_across_live_refresh(app: AppState, db: Database) -> None:
    model = app.models.loc[~app.models["pinned"], "id"].iloc[0]
    app.select(model)
    app.run_query("top 3 by acc")
    app.pin(model)
    store = EventStore(db=db)
    assert store.read_stream(f"model-{model}")[-1].type == "Pinned"
    assert bool(app.models.set_index("id").at[model, "pinned"])
    assert app.selected == model and len(app.highlighted) == 3
    app.pin(model, False)
    assert store.read_stream(f"model-{model}")[-1].type == "Unpinned"


def test_refresh_sees_events_written_by_others(app: AppState, db: Database) -> None:
    n = len(app.models)
    assert app.refresh() is False
    fill_more = EventStore(db=db)
    from nasdb.search import Architecture, Dense, Hyperparameters, Proposal, get_dataset, propose

    propose(fill_more, get_dataset(db, "synthetic"),
            [Proposal(Architecture.of(Dense(16)), Hyperparameters(), "handcrafted")])
    assert app.refresh() is True
    assert len(app.models) == n + 1


def test_class_focus_colours_by_class_accuracy(app: AppState) -> None:
    app.class_focus = ["3", "5"]
    colours = app.color_values()
    assert colours.notna().any()
    assert not np.allclose(colours.dropna().to_numpy(),
                           app.models.set_index("id").loc[colours.dropna().index, "acc"])


def test_projections_keep_placed_models_fixed(app: AppState) -> None:
    app.projection = "structural distance"
    first = app.frame().set_index("id")[["x", "y"]]
    assert len(first) > 10
    app.projection = "prediction distance"
    assert len(app.frame()) > 10
    app.projection = "structural distance"
    again = app.frame().set_index("id")[["x", "y"]]
    pd.testing.assert_frame_equal(first, again.loc[first.index])


def test_inspect_reads_confusion_matrix_and_curves(app: AppState) -> None:
    mid = app.models.loc[app.models["origin"] == "handcrafted", "id"].iloc[0]
    inspect = InspectState(app)
    names, matrix = inspect.confusion(mid)
    assert len(names) == 10 and matrix.shape == (10, 10) and matrix[7].sum() == 0
    raw = inspect.curves(mid)
    inspect.smooth = True
    smooth = inspect.curves(mid)
    assert len(raw) == 8 and not np.allclose(raw["val_loss"], smooth["val_loss"])
    assert len(inspect.class_bars(mid)) == 10


def test_generate_ablations_variations_and_handcraft_queue_jobs(app: AppState, db: Database) -> None:
    mid = app.models.loc[app.models["origin"] == "handcrafted", "id"].iloc[0]
    app.select(mid)
    gen = GenerateState(app)
    gen.ablate = [0, 5]
    ids = gen.run_ablations()
    assert len(ids) == 2, gen.message
    gen.count, gen.changes = 3, 2
    assert len(gen.run_variations(seed=1)) == 3, gen.message
    gen.editor = gen.editor + "\nDropout(rate=0.25)"
    assert len(gen.run_handcraft()) == 1, gen.message
    with db.connect() as conn:
        states = conn.execute("select j.state from jobs j join models m on m.id = j.model_id "
                              "where m.parent_id = %s", (mid,)).fetchall()
    assert [s[0] for s in states] == ["queued"] * 6
    children = gen.children()
    assert len(children) == 6 and {"Δacc", "Δparams", "changes"} <= set(children.columns)
    gen.editor = "Conv2D(filters=oops)"
    assert gen.run_handcraft() == [] and gen.message.startswith("⚠")


def test_queue_reorders_and_cancels(app: AppState, db: Database) -> None:
    queue = QueueState(app)
    queued = queue.jobs()
    queued = queued[queued["state"] == "queued"]
    assert len(queued) >= 2
    last = queued["model_id"].iloc[-1]
    queue.selected_job = last
    assert queue.move("top")
    assert queue.jobs().iloc[0]["model_id"] == last
    assert queue.cancel()
    with db.connect() as conn:
        row = conn.execute("select status from models where id = %s", (last,)).fetchone()
    assert row is not None and row[0] == "cancelled"


def test_classes_timeline_and_studies(app: AppState) -> None:
    classes = ClassesState(app, top=5)
    ranks = classes.ranks()
    assert set(ranks["rank"]) == {1, 2, 3, 4, 5}
    assert ranks.groupby("class_name")["rank"].count().eq(5).all()
    timeline = TimelineState(app)
    assert timeline.steps > 10 and timeline.step == timeline.steps
    summary = timeline.summary(5)
    assert summary["models"] == 5 and summary["best_model"] is not None
    assert timeline.summary()["best_acc"] >= summary["best_acc"]
    studies = StudiesState(app)
    assert "lr" in studies.hyperparameter_names()
    assert len(studies.best_so_far()) > 10
    studies.brush = {"lr": (0.0, 0.001)}
    assert len(studies.brushed()) < len(studies.models())
