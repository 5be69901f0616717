"""Retrain a finished model from its events alone and compare with what was recorded.

Everything comes from the log: the architecture and hyperparameters (ArchitectureProposed), the
epochs of the completed attempt (TrainingCompleted), the checkpoint its training resumed from
(TrainingRequested.resume_from) and the dataset (DatasetRegistered, whose fingerprint must still
match the files).

A model that resumed from a checkpoint (PBT's exploit, a Hyperband promotion) started from
another model's weights, so those weights are reproduced first: the chain of ``resume_from``
checkpoints is followed back to a model trained from scratch and replayed forwards, each link
starting from the weights its predecessor's replay ended with. `Reproduction.replayed` says what
was replayed.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

import torch

from nasdb.ingest import EventStore, RecordedEvent
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.search import Architecture, Hyperparameters
from nasdb.trainers.build import build_seeded
from nasdb.trainers.datasets import LoadedDataset
from nasdb.trainers.loop import TrainResult, train
from nasdb.trainers.registry import load_registered

#: Longest chain of checkpoints followed (a longer one is surely a loop in a corrupt log).
MAX_CHAIN = 1000


@dataclass(frozen=True)
class Replayed:
    """One model of the chain as replayed: its epochs, and the model whose weights it started
    from (None: from scratch)."""

    model_id: str
    epochs: int
    resumed_from: str | None


@dataclass(frozen=True)
class Reproduction:
    model_id: str
    recorded_acc: float
    reproduced_acc: float
    epochs: int
    same_predictions: bool
    fingerprint: str
    replayed: tuple[Replayed, ...] = ()

    @property
    def difference(self) -> float:
        return self.reproduced_acc - self.recorded_acc

    def chain_text(self) -> str:
        """``m1 (3 epochs) -> m5 (3 epochs)``: what was replayed, oldest first."""
        return " -> ".join(f"{r.model_id} ({r.epochs} epochs)" for r in self.replayed)


@dataclass(frozen=True)
class _Link:
    model_id: str
    proposed: dict[str, Any]
    completed: dict[str, Any]
    resume_from: str | None


def _link(store: EventStore, model_id: str) -> _Link:
    events = store.read_stream(f"model-{model_id}")
    if not events:
        raise NotFound(f"no model {model_id!r}; see: nasdb models")
    proposed = next(e.data for e in events if e.type == "ArchitectureProposed")
    completed = [e for e in events if e.type == "TrainingCompleted"]
    if not completed:
        raise InvalidRequest(f"model {model_id} has not finished training; only finished models "
                             "can be reproduced")
    done = completed[-1]
    requested = _request_before(events, done)
    return _Link(model_id, proposed, done.data, requested.get("resume_from"))


def _request_before(events: list[RecordedEvent], done: RecordedEvent) -> dict[str, Any]:
    """The TrainingRequested that the completed attempt answered (the last one before it)."""
    before = [e for e in events if e.type == "TrainingRequested" and e.version < done.version]
    return before[-1].data if before else {}


def _producer(store: EventStore, checkpoint: str) -> str:
    """The model whose completed training stored ``checkpoint``."""
    with store.db.connect() as conn:
        row = conn.execute(
            "select stream_id from events where type = 'TrainingCompleted' "
            "and data->>'checkpoint' = %s order by position limit 1", (checkpoint,)).fetchone()
    if row is None:
        raise InvalidRequest(f"checkpoint {checkpoint} was not written by any model in the log, "
                             "so the weights it holds cannot be reproduced from events")
    return str(row[0]).removeprefix("model-")


def chain(store: EventStore, model_id: str) -> list[_Link]:
    """The models whose training led to ``model_id``'s weights, oldest (from scratch) first."""
    links = [_link(store, model_id)]
    while links[-1].resume_from is not None:
        if len(links) >= MAX_CHAIN:
            raise InvalidRequest(f"model {model_id}'s chain of resumed checkpoints is longer "
                                 f"than {MAX_CHAIN} models; is the log corrupt?")
        links.append(_link(store, _producer(store, links[-1].resume_from)))
    return links[::-1]


def _retrain(link: _Link, data: LoadedDataset, start: dict[str, torch.Tensor] | None,
             device: str) -> TrainResult:
    hp = Hyperparameters.from_json(link.proposed["hyperparameters"]).to_dict()
    hp["early_stop_patience"] = 0  # train exactly the recorded number of epochs
    hp["epochs"] = link.completed["epochs_trained"]
    module = build_seeded(Architecture.from_json(link.proposed["architecture"]),
                          data.input_shape, data.num_classes, int(hp["seed"]))
    if start is not None:
        module.load_state_dict(start)
    return train(module, data, hp, device)


def reproduce(store: EventStore, model_id: str, device: str | None = None) -> Reproduction:
    """Retrain ``model_id`` in this process (nothing is appended), replaying the models its
    weights were resumed from first, and report the difference. Raises `NotFound` for an unknown
    model and `InvalidRequest` for an unfinished one or a checkpoint no model in the log wrote."""
    links = chain(store, model_id)
    loaded: dict[str, LoadedDataset] = {}
    state: dict[str, torch.Tensor] | None = None
    replayed: list[Replayed] = []
    result: TrainResult | None = None
    for i, link in enumerate(links):
        dataset_id = link.proposed["dataset_id"]
        if dataset_id not in loaded:
            loaded[dataset_id] = load_registered(store, dataset_id)
        data = loaded[dataset_id]
        result = _retrain(link, data, state, device or "cpu")
        state = result.state_dict
        replayed.append(Replayed(link.model_id, result.epochs_trained,
                                 links[i - 1].model_id if i else None))
    assert result is not None
    done = links[-1].completed
    return Reproduction(
        model_id=model_id,
        recorded_acc=done["test_acc"],
        reproduced_acc=result.test_acc,
        epochs=sum(r.epochs for r in replayed),
        same_predictions=base64.b64decode(done["predictions"]) == result.predictions,
        fingerprint=data.fingerprint,
        replayed=tuple(replayed),
    )
