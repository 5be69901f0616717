"""The app's state classes, driven without a browser against a real database."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.read import frames
from nasdb.schema import Database
from nasdb.schema.errors import NasdbError
from nasdb.steer import create_study, stop_study
from nasdb.ui.app import (
    PROJECTIONS,
    AppState,
    ClassesState,
    GenerateState,
    InspectState,
    LandmarkLayout,
    QueueState,
    StudiesState,
    TimelineState,
    classical_mds,
)
from nasdb.ui.app._analysis_state import moving_average
from nasdb.ui.app._drivers import StudyDrivers
from nasdb.ui.app._overview import OverviewView
from nasdb.ui.app._server import _load_extensions
from nasdb.ui.app._studies_state import ALL_MODELS

from ._fixtures import fill, study, trained_model


@pytest.fixture
def app(db: Database) -> AppState:
    store = fill(db, 60, seed=11)
    trained_model(db, store)
    return AppState(db, store=store)


def _ui_actions(db: Database, session: str) -> list[dict]:
    store = EventStore(db=db)
    return [e.data for e in store.read_stream(f"session-{session}")]


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
    from nasdb.read import get_dataset
    from nasdb.search import Architecture, Dense, Hyperparameters
    from nasdb.steer import Proposal, propose

    propose(fill_more, get_dataset(db, "synthetic"),
            [Proposal(Architecture.of(Dense(16)), Hyperparameters(), "handcrafted")])
    assert app.refresh() is True
    assert len(app.models) == n + 1


def test_sessions_share_one_models_frame_until_a_model_event(app: AppState, db: Database) -> None:
    other = AppState(db, frames=app.frames)
    other.record("session_started")  # session streams never change what the views show
    third = AppState(db, frames=app.frames)
    assert other.models is app.models and third.models is app.models
    model = app.models["id"].iloc[0]
    other.pin(model)
    assert other.models is not app.models
    assert bool(other.models.set_index("id").at[model, "pinned"])
    app.refresh()
    assert app.models is other.models


def test_models_frame_keeps_text_exactly_and_nulls_as_missing(app: AppState, db: Database) -> None:
    with db.connect() as conn:
        rows = conn.execute("select id, glyph, parent_id, array_to_string(changes, '; '), "
                            "params, test_acc, pinned from models order by created_at, id"
                            ).fetchall()
    df = app.models
    assert df["id"].tolist() == [r[0] for r in rows]
    assert df["glyph"].tolist() == [r[1] for r in rows]
    assert [None if pd.isna(p) else p for p in df["parent_id"]] == [r[2] for r in rows]
    assert df["changes"].fillna("").tolist() == [r[3] or "" for r in rows]
    assert df["params"].tolist() == [r[4] for r in rows]
    assert [None if np.isnan(a) else a for a in df["test_acc"]] == [r[5] for r in rows]
    assert df["pinned"].tolist() == [bool(r[6]) for r in rows]


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


def test_tabs_build_their_state_only_when_first_opened(app: AppState, db: Database) -> None:
    from nasdb.ui.app._server import TABS, build_app

    page = build_app(db, frames=app.frames, poll_ms=0)
    shell = page.app  # type: ignore[attr-defined]
    page.get_root()
    built = {"inspect", "generate", "queue", "classes", "timeline", "studies"} & set(vars(shell))
    assert built == set()
    shell._tabs.active = TABS.index("Timeline")
    assert "timeline" in vars(shell) and "studies" not in vars(shell)
    assert len(shell._slots["Timeline"].objects) == 1
    shell._tabs.active = TABS.index("Overview")
    shell._tabs.active = TABS.index("Timeline")  # opening again reuses the built view
    assert len(shell._slots["Timeline"].objects) == 1


@pytest.fixture
def studies_app(db: Database) -> tuple[AppState, str]:
    store = fill(db, 30, seed=7)
    sid = study(db, store)
    return AppState(db, store=store), sid


def test_studies_state_loads_models_once_per_refresh_and_only_when_asked(
        studies_app: tuple[AppState, str], monkeypatch: pytest.MonkeyPatch) -> None:
    app, sid = studies_app
    loads: list[str | None] = []
    real = frames.study_trials

    def counted(db: Database, study_id: str | None) -> pd.DataFrame:
        loads.append(study_id)
        return real(db, study_id)

    monkeypatch.setattr(frames, "study_trials", counted)
    studies = StudiesState(app)
    assert loads == []  # a new session pays for the list of studies only
    assert studies.study == sid and studies.param.study.objects == [ALL_MODELS, sid]
    assert studies.param.hyperparameter.objects == []
    df = studies.models()
    assert len(df) == 48 and df["iteration"].tolist() == list(range(1, 49))
    assert {"lr", "batch_size", "epochs", "weight_decay", "step_gamma", "optimizer"} <= set(
        studies.hyperparameter_names())
    assert studies.param.hyperparameter.objects == studies.hyperparameter_names()
    assert studies.hyperparameter == studies.hyperparameter_names()[0]
    studies.brush = {"lr": (0.0, 0.001)}
    studies.brushed(), studies.best_so_far(), studies.importance_key(), studies.models()
    assert loads == [sid]
    app.refresh(force=True)  # a new revision: the next ask reads again, once
    studies.models(), studies.hyperparameter_names()
    assert loads == [sid, sid]
    studies.study = ALL_MODELS
    assert studies.brush == {}  # brushed ranges belong to the study they were drawn on
    assert len(studies.models()) == 30 + 48  # every model, in or out of a study
    assert loads == [sid, sid, None]


def test_studies_state_brush_filters_and_marks_hyperband_survivors(
        studies_app: tuple[AppState, str]) -> None:
    app, _ = studies_app
    studies = StudiesState(app)
    df = studies.models()
    survivors = df[df["rung"].notna()]
    assert len(survivors) > 0 and survivors["parent_id"].notna().all()
    parents = df.set_index("id").loc[survivors["parent_id"]]
    assert parents["hp_lr"].tolist() == survivors["hp_lr"].tolist()  # the same configuration
    studies.brush = {"lr": (0.0, 0.001), "batch_size": (64, 128)}
    inside = studies.brushed()
    assert 0 < len(inside) < len(df)
    assert inside["hp_lr"].le(0.001).all() and inside["hp_batch_size"].between(64, 128).all()
    best = studies.best_so_far()
    assert set(best["id"]) <= set(inside["id"])
    assert best["best"].is_monotonic_increasing and best["best"].iloc[-1] == inside["acc"].max()


def _created_space(db: Database, study_id: str) -> dict:
    return dict(EventStore(db=db).read_stream(f"study-{study_id}")[0].data["space"])


def test_studies_state_refines_the_brushed_space_into_the_next_study(
        studies_app: tuple[AppState, str], db: Database) -> None:
    app, sid = studies_app
    studies = StudiesState(app)
    df = studies.models()
    studies.brush = {"lr": (0.0002, 0.004), "batch_size": (64, 128), "step_gamma": (0.5, 0.7)}
    sets = studies.brush_refinements()
    # the batch sizes the brushed models trained with, read off the models themselves
    brushed = df[df["hp_lr"].between(0.0002, 0.004) & df["hp_batch_size"].between(64, 128)
                 & df["hp_step_gamma"].between(0.5, 0.7)]
    sizes = ",".join(str(int(b)) for b in sorted(brushed["hp_batch_size"].unique()))
    assert sizes  # the fixture's study has models inside the brush
    assert sets == {"lr": "0.0002..0.004", "batch_size": sizes}  # step_gamma is not refinable
    next_id, changes = studies.launch_refined(sets)
    assert changes == ["lr: 0.0001,0.01 -> 0.0002,0.004", f"batch_size: 32,64,128,256 -> {sizes}"]
    assert next_id in studies.param.study.objects and studies.study == sid
    # the server's driver runs the new study: its first step queues models for the workers
    store = EventStore(db=db)
    deadline = time.monotonic() + 60
    while not [e for e in store.read_stream(f"study-{next_id}") if e.type == "SearchStepTaken"]:
        assert time.monotonic() < deadline, "the launched study took no step"
        time.sleep(0.2)
    assert app.drivers.driving() == [next_id]
    app.drivers.stop()
    assert app.drivers.driving() == []
    step = next(e for e in store.read_stream(f"study-{next_id}") if e.type == "SearchStepTaken")
    # the driver appends as the session that launched it: its user is the actor
    assert (step.metadata["session"], step.metadata["actor"]) == (app.session_id, app.actor)
    for mid in step.data["model_ids"]:
        assert [e.type for e in store.read_stream(f"model-{mid}")] == [
            "ArchitectureProposed", "TrainingRequested"]
    app.refresh()
    studies.study = next_id  # queued models, nothing trained yet: the views show that, none fails
    queued = studies.models()
    assert sorted(queued["id"]) == sorted(step.data["model_ids"])
    assert set(queued["status"]) == {"queued"} and queued["acc"].isna().all()
    assert studies.best_so_far().empty
    assert studies.space() == _created_space(db, next_id)
    studies.study = sid
    refined = [e for e in store.read_stream(f"study-{sid}") if e.type == "SearchSpaceRefined"]
    assert len(refined) == 1 and refined[0].data["next_study_id"] == next_id
    created_event = store.read_stream(f"study-{next_id}")[0]
    for e in (refined[0], created_event):  # the session that asked is in the log
        assert e.metadata["session"] == app.session_id and e.metadata["source"] == "web"
    created = created_event.data
    assert created["previous_study_id"] == sid
    assert created["space"]["hyperparameters"]["lr_range"] == [0.0002, 0.004]
    assert created["space"]["hyperparameters"]["batch_sizes"] == [int(b) for b in sizes.split(",")]
    assert any(a["action"] == "refine_study" and a["detail"]["next_study"] == next_id
               for a in _ui_actions(db, app.session_id))
    with pytest.raises(NasdbError, match="cannot set 'step_gamma'"):
        studies.launch_refined({"step_gamma": "0.5..0.7"})
    studies.study = ALL_MODELS
    with pytest.raises(NasdbError, match="pick a study"):
        studies.launch_refined(sets)
    with pytest.raises(NasdbError, match="pick a study"):
        studies.importance()


def test_a_failing_study_driver_is_logged_and_ends(db: Database,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="nasdb.ui.app._drivers")
    drivers = StudyDrivers(db)
    assert drivers.start("s-missing")
    deadline = time.monotonic() + 30
    while drivers.driving():
        assert time.monotonic() < deadline, "the driver of a missing study did not end"
        time.sleep(0.1)
    assert "driving study s-missing failed" in caplog.text and "s-missing" in caplog.text
    drivers.stop()
    assert not drivers.start("s-missing")  # a stopped StudyDrivers starts nothing


def test_live_workers_counts_running_workers_seen_lately(db: Database) -> None:
    store = EventStore(db=db)
    app = AppState(db, store=store)
    studies = StudiesState(app)
    assert studies.live_workers() == 0
    for name in ("w1", "w2"):
        store.append(f"worker-{name}", [NewEvent("WorkerStarted", {
            "worker": name, "host": "h", "pid": 1, "device": "cpu"})])
    store.append("worker-w2", [NewEvent("WorkerStopped", {"worker": "w2"})])
    Projector(db).catch_up()
    assert studies.live_workers() == 1
    assert studies.live_workers(within_s=0.0) == 0  # seen, but not within the window


def test_studies_state_drives_a_running_study_from_the_page(
        studies_app: tuple[AppState, str], db: Database) -> None:
    app, _ = studies_app
    store = EventStore(db=db)
    sid = create_study(store, "synthetic", "random", budget={"models": 100})  # not driven yet
    Projector(db).catch_up()
    studies = StudiesState(app)
    studies.study = ALL_MODELS
    with pytest.raises(NasdbError, match="pick a study first"):
        studies.drive()
    studies.study = sid
    assert not studies.driven()
    studies.drive()
    assert studies.driven()
    with pytest.raises(NasdbError, match="already driven by this server"):
        studies.drive()
    deadline = time.monotonic() + 60  # the driver's first step queues the strategy's models
    while not [e for e in store.read_stream(f"study-{sid}") if e.type == "SearchStepTaken"]:
        assert time.monotonic() < deadline, "the driven study took no step"
        time.sleep(0.2)
    app.drivers.stop()
    assert any(a["action"] == "run_study" and a["detail"]["study"] == sid
               for a in _ui_actions(db, app.session_id))
    stop_study(store, sid, "enough")
    Projector(db).catch_up()
    studies.reload()
    with pytest.raises(NasdbError, match=f"study {sid} is stopped: nothing to run"):
        studies.drive()


def test_raster_above_setting_switches_the_overview_to_datashader(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    fill(db, 12, seed=2)
    assert not AppState(db).large  # default: rasterise above 3,000
    monkeypatch.setenv("NASDB_RASTER_ABOVE", "10")
    assert AppState(db).large
    monkeypatch.setenv("NASDB_RASTER_ABOVE", "many")
    with pytest.raises(NasdbError, match="NASDB_RASTER_ABOVE must be a whole number of models, "
                                         "got 'many'"):
        AppState(db)


def test_overview_names_the_model_under_the_mouse(app: AppState) -> None:
    view = OverviewView(app)
    frame = view._current().dropna(subset=["x", "y"])
    row = frame.iloc[len(frame) // 2]
    view._pointed(float(row["x"]), float(row["y"]))
    line = view._under.object
    assert f"<b>{row['id']}</b>" in line and f"{int(row['params']):,} params" in line
    assert f"<code>{row['glyph']}</code>" in line and str(row["origin"]) in line
    width = float(frame["x"].max() - frame["x"].min())
    view._pointed(float(frame["x"].max()) + width, float(row["y"]))  # far from every model
    assert view._under.object == ""
    view._pointed(None, None)  # the mouse left the plot
    assert view._under.object == ""


def test_raster_pixels_stay_accuracies_where_points_are_spread(
        db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    # close points spread into each other's pixels: summing them ('add') made colours above 1
    fill(db, 300, seed=4)
    monkeypatch.setenv("NASDB_RASTER_ABOVE", "10")
    _load_extensions()  # the overlay's options need HoloViews' bokeh backend
    view = OverviewView(AppState(db))
    pane = view._plot(True, PROJECTIONS[0], [])
    raster = pane.object[()].get(0)
    values = raster.dimension_values(raster.vdims[0], flat=True)
    accuracies = view._frame["color"].dropna()
    assert np.nanmax(values) <= accuracies.max() + 1e-9
    assert np.nanmin(values) >= accuracies.min() - 1e-9
