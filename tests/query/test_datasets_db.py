"""Rankings never mix datasets: ``pareto`` and ``top`` read one dataset; without one named while
several exist, the query is refused with the list (the CLI: one line, exit 2; asked on a tty)."""

from __future__ import annotations

import pytest

from nasdb.ingest import EventStore, NewEvent, Projector
from nasdb.ingest.synthetic import DIGIT_CLASSES, completed_event, dataset_event, job_started
from nasdb.query import run
from nasdb.schema import Database
from nasdb.schema.errors import DatasetNotChosen
from tests.cli.test_query_cli import nasdb
from tests.old_logs import proposed


def add_models(store: EventStore, dataset: str, models: dict[str, tuple[int, float]]) -> None:
    """Finished models ``{id: (params, test accuracy)}`` of ``dataset``."""
    store.append_batch([
        (f"model-{mid}", [
            NewEvent("ArchitectureProposed", proposed(mid, dataset, params, DIGIT_CLASSES)),
            *job_started(),
            completed_event(1, acc, DIGIT_CLASSES, [acc] * 10, b"\x00" * 8, latency_ms=0.1,
                            train_seconds=1.0),
        ], None)
        for mid, (params, acc) in models.items()
    ])


@pytest.fixture
def two(db: Database) -> Database:
    store = EventStore(db=db)
    store.append("dataset-easy", [dataset_event("easy")])
    store.append("dataset-hard", [dataset_event("hard")])
    # easy: 0.99 is ordinary; hard: 0.70 is the best there is
    add_models(store, "easy", {"e1": (1000, 0.99), "e2": (5000, 0.98), "e3": (500, 0.95)})
    add_models(store, "hard", {"h1": (800, 0.70), "h2": (3000, 0.60)})
    Projector(db).catch_up()
    return db


def ids(result: object) -> list[str]:
    return [r["id"] for r in result.rows]  # type: ignore[attr-defined]


def test_a_ranking_without_a_dataset_is_refused_with_the_choices(two: Database) -> None:
    for text in ("pareto", "top 3 by acc", "pareto params<100k class=3"):
        with pytest.raises(DatasetNotChosen) as err:
            run(text, two)
        assert err.value.datasets == ("easy", "hard")
        assert str(err.value).endswith("2 datasets exist: easy, hard; add dataset=NAME, e.g. '"
                                       f"{text.split()[0]} dataset=easy'")
    assert run("count", two).rows == [{"count": 5}]  # not a ranking: no dataset needed


def test_each_ranking_reads_one_dataset(two: Database) -> None:
    assert ids(run("pareto dataset=hard", two)) == ["h1"]
    assert ids(run("pareto dataset=easy", two)) == ["e1", "e3"]
    assert ids(run("top 2 by acc dataset=easy", two)) == ["e1", "e2"]
    assert ids(run("top 5 by acc", two, dataset="hard")) == ["h1", "h2"]
    # a study or a one-value list names the dataset too; the default never overrides the query
    assert ids(run("pareto dataset in (hard)", two, dataset="easy")) == ["h1"]
    assert "dataset" in run("pareto", two, dataset="hard").description


def test_cli_lists_the_datasets_on_one_line_and_exits_2(two: Database) -> None:
    out = nasdb(two.url, "query", "pareto")
    assert out.returncode == 2 and out.stdout == ""
    assert out.stderr == ("error: pareto ranks the models of one dataset, and 2 datasets exist: "
                          "easy, hard; add dataset=NAME, e.g. 'pareto dataset=easy'\n")
    ok = nasdb(two.url, "query", "pareto", "--dataset", "hard", "--format", "csv")
    assert ok.returncode == 0, ok.stderr
    assert [line.split(",")[0] for line in ok.stdout.splitlines()[1:]] == ["h1"]
