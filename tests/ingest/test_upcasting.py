"""Reading an old event through an upcaster, against a real server.

No payload has changed shape yet, so `UPCASTERS` is empty in the product. The mechanism is tested
with a test-local second version of ``Noted`` (a ``lang`` field added): an event stored at version
1 is read back as the version-2 type, lifted by a registered ``upcast_v1_v2``, without its row
being touched.
"""

from __future__ import annotations

import psycopg
import pytest
from pydantic import Field

from nasdb.ingest import EventStore, NewEvent
from nasdb.schema import catalogue_sql
from nasdb.schema import events as catalogue
from nasdb.schema.errors import InvalidEvent


class NotedV2(catalogue.Payload):
    TYPE = "Noted"
    VERSION = 2
    text: str = Field(min_length=1)
    lang: str


def upcast_v1_v2(data: catalogue.JsonDict) -> catalogue.JsonDict:
    return {**data, "lang": "en"}


def test_an_old_event_is_read_as_the_current_version(db_url: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    store = EventStore(db_url)
    [old] = store.append("model-m1", [NewEvent.of(catalogue.Noted(text="first note"))])
    assert old.schema_version == 1
    with psycopg.connect(db_url) as conn:
        stored = conn.execute("select schema_version, data from events").fetchone()
    assert stored == (1, {"text": "first note"})

    monkeypatch.setitem(catalogue.PAYLOAD_TYPES, "Noted", NotedV2)
    with psycopg.connect(db_url, autocommit=True) as owner:  # the new code's catalogue
        catalogue_sql.sync(owner)
    # Without its upcaster the old event cannot be read as the new type: a clear error.
    with pytest.raises(InvalidEvent, match=r"^no upcaster for Noted v1 -> v2$"):
        store.read_stream("model-m1")
    monkeypatch.setitem(catalogue.UPCASTERS, ("Noted", 1), upcast_v1_v2)

    [read] = store.read_stream("model-m1")
    assert read.payload == NotedV2(text="first note", lang="en")
    assert read.data == {"text": "first note", "lang": "en"}
    assert read.schema_version == 2  # the version of the data it carries; the row stays at 1
    assert read.payload == NotedV2(text="first note", lang="en")  # and is not lifted twice
    # A new event is written at version 2 and read as it was written.
    [new] = store.append("model-m1", [NewEvent.of(NotedV2(text="second", lang="fr"))])
    assert new.schema_version == 2
    assert [e.payload for e in store.read_all()] == [
        NotedV2(text="first note", lang="en"), NotedV2(text="second", lang="fr")]
    with psycopg.connect(db_url) as conn:
        rows = conn.execute("select schema_version, data from events order by position").fetchall()
    assert rows == [(1, {"text": "first note"}), (2, {"text": "second", "lang": "fr"})]
