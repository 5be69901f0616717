"""Tags and notes from the drawer's state (no browser): events with the session and the signed-in
actor, notes read back in order; bad input leaves the log alone."""

from __future__ import annotations

from typing import Any

from nasdb.ingest import EventStore
from nasdb.ui.app import AppState


def test_tag_and_note_as_the_signed_in_actor(ui_db: Any) -> None:
    db, mid = ui_db
    app = AppState(db, actor="ada")
    store = EventStore(db=db)
    before = store.last_position()
    assert not app.tag(mid, "two words") and "one word" in app.notice
    assert not app.note(mid, "   ") and store.last_position() == before
    assert app.tag(mid, "shortlist")
    assert app.note(mid, "first note") and app.note(mid, "second note")
    notes = app.notes(mid)
    assert notes["text"].tolist()[-2:] == ["first note", "second note"]
    assert set(notes["actor"].tolist()[-2:]) == {"ada"}
    new = [e for e in store.read_all(types=["Tagged", "Noted"]) if e.position > before]
    assert [e.type for e in new] == ["Tagged", "Noted", "Noted"]
    assert all(e.metadata["actor"] == "ada" and e.metadata["session"] == app.session_id
               for e in new)
    model = app.model(mid)
    assert model is not None and "shortlist" in model["tags"]


def test_slow_work_is_listed_until_it_ends(ui_db: Any) -> None:
    db, _ = ui_db
    app = AppState(db)
    a = app.start_task("computing the structural distance layout of 300 models")
    b = app.start_task("fitting the recommenders")
    assert app.tasks == [a, b]
    app.end_task(a)
    assert app.tasks == [b]
    assert app.prepare_layout("accuracy vs params") == 0
