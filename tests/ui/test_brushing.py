"""Linked brushing speaks the query language (state, no browser): every selection is query text
that parses and returns exactly the selected models; the overview's and the study's selections
filter each other."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from nasdb import query
from nasdb.ui.app import AppState, StudiesState
from nasdb.ui.app._brush import bound, box_clause, ids_clause, inside_polygon, range_clause


def _ids(text: str, db: Any) -> set[str]:
    return {str(r["id"]) for r in query.run(text, db).rows}


def test_clauses_round_outwards_and_parse() -> None:
    assert bound(0.91, up=True) == "0.91" and bound(0.123456789, up=False) == "0.123456"
    assert bound(0.123456789, up=True) == "0.123457"
    assert range_clause("params", 1234.5, 99999.2, whole=True) == "params>=1234 params<=100000"
    assert box_clause(5.0, 4.0, 0.9, 0.5) == "params>=10000 params<=100000 acc>=0.5 acc<=0.9"
    assert ids_clause(["m2", "m1", "m2"]) == "id in (m2, m1)"
    inside = inside_polygon(np.array([0.5, 1.5, 0.2]), np.array([0.5, 0.5, 0.9]),
                            [(0, 0), (1, 0), (1, 1), (0, 1)])
    assert inside.tolist() == [True, False, True]
    for text in ("params>=1234 params<=100000", 'id in ("")', "study=s1 lr>=0.0001 lr<=0.01"):
        query.parse(text)


def _fixture_study(db: Any) -> str:
    """The fixture's study (other tests launch newer ones from it)."""
    with db.connect() as conn:
        row = conn.execute("select id from studies order by created_at limit 1").fetchone()
    assert row is not None
    return str(row[0])


def test_study_brush_is_a_query_returning_the_same_models(ui_db: Any) -> None:
    db, _ = ui_db
    app = AppState(db)
    studies = StudiesState(app)
    studies.study = _fixture_study(db)
    df = studies.models()
    lr = df["hp_lr"].astype(float)
    low, high = float(lr.quantile(0.2)), float(lr.quantile(0.7))
    batch = sorted(df["hp_batch_size"].astype(float).unique())
    studies.brush = {"lr": (low, high), "batch_size": (batch[0], batch[-2])}
    brushed = set(studies.brushed()["id"])
    assert 0 < len(brushed) < len(df)
    text = app.brush_query()
    assert text.startswith(f"study={studies.study} lr>=") and "batch_size>=" in text
    assert set(app.brushed or []) == brushed == _ids(text, db)
    # a hyperparameter the language has no field for is said by id
    gamma = df["hp_step_gamma"].astype(float)
    studies.brush = {"step_gamma": (float(gamma.min()), float(gamma.median()))}
    assert "id in (" in app.brush_query()
    assert set(app.brushed or []) == set(studies.brushed()["id"]) == _ids(app.brush_query(), db)


def test_overview_box_and_lasso_filter_the_study_plots_and_back(ui_db: Any) -> None:
    db, _ = ui_db
    app = AppState(db)
    studies = StudiesState(app)
    studies.study = _fixture_study(db)
    frame = app.frame()
    x0, x1 = 4.0, 6.0
    app.brush_box(x0, x1, 0.3, 0.95, frame)
    text = app.brush_query()
    assert text == box_clause(x0, x1, 0.3, 0.95)
    models = app.models
    assert models is not None
    # the box's models as the overview plots them (the query's acc is the test accuracy)
    p = models["params"].astype(float)
    inside = models[(p >= math.floor(10**x0)) & (p <= math.ceil(10**x1))
                    & (models["test_acc"] >= 0.3) & (models["test_acc"] <= 0.95)]
    assert set(app.brushed or []) == set(inside["id"]) == _ids(text, db)
    # the overview's selection filters the study plots
    in_study = set(studies.models()["id"]) & set(inside["id"])
    assert set(studies.brushed()["id"]) == in_study
    # ... and a study brush narrows the overview's selection: both ANDed in one query
    lr = studies.models()["hp_lr"].astype(float)
    studies.brush = {"lr": (float(lr.min()), float(lr.median()))}
    both = app.brush_query()
    assert both.startswith(text + " study=")
    assert set(app.brushed or []) == _ids(both, db) == set(studies.brushed()["id"])
    # a lasso on the same plot: the models inside it, by id
    poly_x, poly_y = [4.0, 6.5, 6.5], [0.0, 0.0, 1.0]
    studies.brush = {}
    app.brush_lasso(poly_x, poly_y, frame)
    tri = inside_polygon(frame["x"].to_numpy(float), frame["y"].to_numpy(float),
                         list(zip(poly_x, poly_y, strict=True)))
    assert set(app.brushed or []) == set(frame.loc[tri, "id"]) == _ids(app.brush_query(), db)
    # shown in the console, and cleared
    assert app.show_brush_query() == app.console_text == app.brush_query()
    app.set_brush("overview", None)
    assert app.brushed is None and app.brush_query() == ""
    assert isinstance(studies.brushed(), pd.DataFrame)
