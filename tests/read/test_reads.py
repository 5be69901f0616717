"""nasdb.read: named reads of the public views return typed rows equal to the views' own rows."""

from __future__ import annotations

from datetime import datetime

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.ingest.synthetic import search_log
from nasdb.read import (
    ModelRow,
    class_metrics,
    dataset_row,
    get_dataset,
    get_model,
    get_study,
    list_datasets,
    list_models,
)
from nasdb.schema import Database
from nasdb.schema.errors import NotFound
from nasdb.search import DatasetInfo


@pytest.fixture
def searched(db: Database) -> Database:
    EventStore(db=db).append_batch([(stream, events, 0) for stream, events in search_log(30, 3)])
    Projector(db).catch_up()
    return db


def _view(db: Database, sql: str, *args: object) -> list[dict[str, object]]:
    with db.connect(dict_rows=True) as conn:
        return [dict(r) for r in conn.execute(sql, args).fetchall()]


def test_a_model_row_is_the_models_view_row_typed(searched: Database) -> None:
    [expected] = _view(searched, "select * from models where id = 'm7'")
    row = get_model(searched, "m7")
    assert isinstance(row, ModelRow)
    assert row.model_dump() == expected
    assert isinstance(row.params, int) and isinstance(row.created_at, datetime)
    assert isinstance(row.architecture, dict) and isinstance(row.changes, list)


def test_unknown_ids_are_not_found_with_what_to_do(searched: Database) -> None:
    with pytest.raises(NotFound) as err:
        get_model(searched, "m300")
    assert str(err.value) == "no model 'm300' (did you mean 'm30'?); see: nasdb models"
    with pytest.raises(NotFound) as err:
        get_dataset(searched, "synthetc")
    assert str(err.value) == (
        "dataset 'synthetc' is not registered (did you mean 'synthetic'?); registered datasets: "
        "synthetic. Register one with: nasdb dataset add NAME"
    )
    with pytest.raises(NotFound, match=r"^no study 's1'; studies: none yet\. Create one with: "):
        get_study(searched, "s1")


def test_listing_models_filters_and_orders_by_number(searched: Database) -> None:
    every = list_models(searched)
    assert [m.id for m in every] == [f"m{i}" for i in range(1, 31)]
    done = _view(searched, "select id from models where status = 'done' and test_acc is not null")
    assert {m.id for m in list_models(searched, statuses=["done"], tested=True)} == \
        {r["id"] for r in done}
    children = _view(searched, "select id, parent_id from models where parent_id is not null")
    assert children, "the synthetic log has variations"
    parent = str(children[0]["parent_id"])
    assert {m.id for m in list_models(searched, parent_id=parent)} == \
        {r["id"] for r in children if r["parent_id"] == parent}
    assert [m.id for m in list_models(searched, dataset_id="synthetic", limit=3)] == \
        ["m1", "m2", "m3"]
    assert list_models(searched, dataset_id="other") == []


def test_datasets_and_class_metrics(searched: Database) -> None:
    info = get_dataset(searched, "synthetic")
    assert isinstance(info, DatasetInfo)
    assert (info.id, info.input_shape, info.classes, info.train_size) == \
        ("synthetic", (1, 8, 8), tuple(str(i) for i in range(10)), 1000)
    assert [d.id for d in list_datasets(searched)] == ["synthetic"]
    assert dataset_row(searched, "synthetic").train_size == 1000
    expected = _view(searched, "select * from class_metrics where model_id in ('m1', 'm2') "
                               "order by model_id, class_index")
    rows = class_metrics(searched, model_ids=["m2", "m1"])
    assert [r.model_dump() for r in rows] == expected
