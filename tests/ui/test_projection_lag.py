"""The web app shows how far the read models are behind the log, and the skipped events."""

from __future__ import annotations

import random
import uuid

from psycopg.types.json import Jsonb

from nasdb.ingest import EventStore
from nasdb.ingest.synthetic import dataset_event, model_lifecycle
from nasdb.schema import Database
from nasdb.ui.app import AppState


def test_the_header_state_names_the_lag_and_the_events_not_applied(db: Database) -> None:
    store = EventStore(db=db)
    store.append("dataset-synthetic", [dataset_event()])
    store.append("model-m1", model_lifecycle(random.Random(0), "m1"))
    bad = [{"s": 1, "event_id": str(uuid.uuid4()), "type": "PriorityChanged",
            "schema_version": 1, "data": {"priority": 99_999_999_999}, "metadata": {}}]
    with db.connect(autocommit=True) as conn:  # an old log's event no column can hold
        conn.execute("select * from nasdb_append_many(%s, %s, %s)",
                     (["model-m1"], [None], Jsonb(bad)))
    app = AppState(db, store=store)  # waits for the projector (starting one) before loading
    last = store.last_position()
    assert app.projection_lag == f"projected {last:,} of {last:,} · 1 event not applied " \
                                 "(nasdb status)"
    assert list(app.models["id"]) == ["m1"]
