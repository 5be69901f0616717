"""Fixtures for steering and search: a real database with digits registered, the CLI in-process."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from nasdb.ingest import EventStore, Projector
from nasdb.read import get_dataset
from nasdb.schema import Database
from nasdb.search import Architecture, Hyperparameters
from nasdb.steer import Proposal, propose
from nasdb.trainers.registry import register_dataset
from nasdb.trainers.worker import Worker


@dataclass
class Result:
    code: int
    out: str
    err: str


@pytest.fixture
def store(db: Database) -> EventStore:
    s = EventStore(db=db)
    register_dataset(s, "digits")
    Projector(db).catch_up()
    return s


@pytest.fixture
def nasdb(db_url: str, capsys: pytest.CaptureFixture[str]) -> Callable[..., Result]:
    """Run a ``nasdb`` command in this process; returns its exit code, stdout and stderr."""
    from nasdb.ui.cli import main

    def run(*args: str) -> Result:
        capsys.readouterr()
        try:
            main(["--database-url", db_url, *args])
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        captured = capsys.readouterr()
        return Result(code, captured.out, captured.err)

    return run


PARENT = {"layers": [
    {"type": "Conv2D", "filters": 16, "kernel": 3},
    {"type": "Activation", "fn": "relu"},
    {"type": "MaxPool2D", "size": 2, "stride": 2},
    {"type": "Dense", "units": 32},
]}


def add_parent(store: EventStore, epochs: int = 1, arch: dict | None = None) -> str:
    dataset = get_dataset(store.db, "digits")
    (model_id,) = propose(store, dataset, [Proposal(
        Architecture.from_json(arch or PARENT), Hyperparameters(epochs=epochs), "handcrafted")])
    Projector(store.db).catch_up()
    return model_id


def train_all(db: Database) -> int:
    """Train every queued job in this process (the real worker)."""
    return Worker(db, lease_seconds=30).run()
