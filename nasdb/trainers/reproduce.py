"""Retrain a finished model from its events alone and compare with what was recorded.

Everything comes from the log: the architecture and hyperparameters (ArchitectureProposed), the
epoch budget of the completed attempt (TrainingRequested / TrainingCompleted) and the dataset
(DatasetRegistered, whose fingerprint must still match the files).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

from nasdb.ingest import EventStore
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.search import Architecture, Hyperparameters
from nasdb.trainers.build import build_seeded
from nasdb.trainers.loop import train
from nasdb.trainers.registry import load_registered


@dataclass(frozen=True)
class Reproduction:
    model_id: str
    recorded_acc: float
    reproduced_acc: float
    epochs: int
    same_predictions: bool
    fingerprint: str

    @property
    def difference(self) -> float:
        return self.reproduced_acc - self.recorded_acc


def reproduce(store: EventStore, model_id: str, device: str | None = None) -> Reproduction:
    """Retrain ``model_id`` in this process (nothing is appended) and report the difference."""
    events = store.read_stream(f"model-{model_id}")
    if not events:
        raise NotFound(f"no model {model_id!r}; see: nasdb models")
    proposed = next(e.data for e in events if e.type == "ArchitectureProposed")
    completed = [e.data for e in events if e.type == "TrainingCompleted"]
    if not completed:
        raise InvalidRequest(f"model {model_id} has not finished training; only finished models "
                             "can be reproduced")
    done = completed[-1]
    data = load_registered(store, proposed["dataset_id"])
    hp = Hyperparameters.from_json(proposed["hyperparameters"]).to_dict()
    requested = [e.data for e in events if e.type == "TrainingRequested"]
    if requested and requested[-1].get("epochs"):
        hp["epochs"] = requested[-1]["epochs"]
    hp["early_stop_patience"] = 0  # train exactly the recorded number of epochs
    hp["epochs"] = done["epochs_trained"]
    module = build_seeded(Architecture.from_json(proposed["architecture"]), data.input_shape,
                          data.num_classes, int(hp["seed"]))
    result = train(module, data, hp, device or "cpu")
    return Reproduction(
        model_id=model_id,
        recorded_acc=done["test_acc"],
        reproduced_acc=result.test_acc,
        epochs=result.epochs_trained,
        same_predictions=base64.b64decode(done["predictions"]) == result.predictions,
        fingerprint=data.fingerprint,
    )
