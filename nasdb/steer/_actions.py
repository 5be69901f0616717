"""Commands that turn decisions about the model space into events.

Proposing a model validates its architecture against the dataset (shape inference, exact params
and FLOPs), gives it an id and appends ArchitectureProposed (+ TrainingRequested when queued) to a
new stream. Steering actions (priority, cancel, pin, tags, notes) append to the model's stream.
Each function appends and returns; callers bring the read models up to date with
`nasdb.ingest.Projector` when they need to read their own writes.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasdb.ingest import EventStore, NewEvent, new_model_ids
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.search import (
    Architecture,
    DatasetInfo,
    Hyperparameters,
    check_bounds,
    infer_shapes,
)


@dataclass(frozen=True)
class Proposal:
    """One architecture to propose, with its provenance."""

    architecture: Architecture
    hyperparameters: Hyperparameters
    origin: str
    parent_id: str | None = None
    changes: tuple[str, ...] = ()
    predicted_acc: float | None = None
    extra: dict[str, Any] | None = None


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def get_dataset(db: Database, dataset_id: str) -> DatasetInfo:
    """The registered dataset; `NotFound` names the registered ones."""
    with db.connect() as conn:
        row = conn.execute(
            "select id, channels, height, width, classes from datasets where id = %s",
            (dataset_id,),
        ).fetchone()
        if row is None:
            known = [r[0] for r in conn.execute("select id from datasets order by id").fetchall()]
    if row is None:
        listing = ", ".join(known) if known else "none yet"
        raise NotFound(
            f"dataset {dataset_id!r} is not registered{_suggest(dataset_id, known)}; "
            f"registered datasets: {listing}. Register one with: nasdb dataset add NAME"
        )
    return DatasetInfo(row[0], (row[1], row[2], row[3]), tuple(row[4]))


def get_model(db: Database, model_id: str) -> dict[str, Any]:
    """The model's row from the `models` view; `NotFound` with a suggestion when unknown."""
    with db.connect(dict_rows=True) as conn:
        row = conn.execute("select * from models where id = %s", (model_id,)).fetchone()
        if row is None:
            near = conn.execute(
                "select id from models order by abs(coalesce(nullif(regexp_replace(id, '\\D', '', "
                "'g'), ''), '0')::bigint - coalesce(nullif(regexp_replace(%s, '\\D', '', 'g'), ''),"
                " '0')::bigint) limit 5",
                (model_id,),
            ).fetchall()
    if row is None:
        known = [r["id"] for r in near]
        raise NotFound(f"no model {model_id!r}{_suggest(model_id, known)}; see: nasdb models")
    return dict(row)


def _proposed_event(
    model_id: str, dataset: DatasetInfo, p: Proposal, study_id: str | None,
    metadata: dict[str, Any] | None,
) -> NewEvent:
    infos = infer_shapes(p.architecture, dataset.input_shape, dataset.num_classes)
    return NewEvent(
        "ArchitectureProposed",
        {
            "model_id": model_id,
            "dataset_id": dataset.id,
            "study_id": study_id,
            "origin": p.origin,
            "parent_id": p.parent_id,
            "changes": list(p.changes),
            "architecture": p.architecture.to_dict(),
            "hyperparameters": p.hyperparameters.to_dict(),
            "glyph": p.architecture.glyph(dataset.num_classes),
            "layer_types": list(p.architecture.layer_types),
            "depth": len(p.architecture.layers) + 1 if p.architecture.reference is None else 1,
            "params": sum(i.params for i in infos),
            "flops": sum(i.flops for i in infos),
            "input_shape": list(dataset.input_shape),
            "num_classes": dataset.num_classes,
            "predicted_acc": p.predicted_acc,
            "proposal": p.extra or {},
        },
        metadata=metadata,
        idempotency_key="proposed",
    )


def propose(
    store: EventStore,
    dataset: DatasetInfo,
    proposals: Sequence[Proposal],
    *,
    study_id: str | None = None,
    queue: bool = True,
    priority: int = 0,
    metadata: dict[str, Any] | None = None,
) -> list[str]:
    """Validate and append the proposals (all or none); return their new model ids in order.

    Raises `InvalidArchitecture` (naming the layer and shapes) before anything is appended.
    """
    for p in proposals:  # validate all (shapes, then size bounds) before taking ids
        infos = infer_shapes(p.architecture, dataset.input_shape, dataset.num_classes)
        check_bounds(p.architecture, infos, p.hyperparameters.batch_size)
    events = []
    ids = new_model_ids(store.db, len(proposals)) if proposals else []
    for model_id, p in zip(ids, proposals, strict=True):
        stream = [_proposed_event(model_id, dataset, p, study_id, metadata)]
        if queue:
            stream.append(NewEvent("TrainingRequested", {"priority": priority},
                                   metadata=metadata, idempotency_key="requested-1"))
        events.append((f"model-{model_id}", stream, 0))
    if events:
        store.append_batch(events)
    return ids


def _model_append(
    store: EventStore, model_id: str, event: NewEvent, expected: int | None = None
) -> None:
    if store.stream_version(f"model-{model_id}") == 0:
        get_model(store.db, model_id)  # raises NotFound with a suggestion
    store.append(f"model-{model_id}", [event], expected)


def request_training(store: EventStore, model_id: str, *, priority: int = 0,
                     epochs: int | None = None) -> None:
    """Queue (or re-queue) a model for training."""
    row = get_model(store.db, model_id)
    if row["status"] in ("queued", "training"):
        raise InvalidRequest(f"model {model_id} is already {row['status']}")
    _model_append(store, model_id, NewEvent("TrainingRequested",
                                            {"priority": priority, "epochs": epochs}))


def cancel(store: EventStore, model_id: str, reason: str = "") -> None:
    """Cancel a queued or running job (a running one stops at its next epoch boundary)."""
    row = get_model(store.db, model_id)
    if row["status"] not in ("queued", "training", "proposed"):
        raise InvalidRequest(
            f"model {model_id} is {row['status']}; only queued or training models can be cancelled"
        )
    _model_append(store, model_id, NewEvent("TrainingCancelled", {"reason": reason}))


def set_priority(store: EventStore, model_id: str, priority: int) -> None:
    """Reorder the queue: higher priority is claimed first."""
    _model_append(store, model_id, NewEvent("PriorityChanged", {"priority": priority}))


def pin(store: EventStore, model_id: str, pinned: bool = True) -> None:
    _model_append(store, model_id, NewEvent("Pinned" if pinned else "Unpinned", {}))


def tag(store: EventStore, model_id: str, tag_name: str, remove: bool = False) -> None:
    _model_append(store, model_id, NewEvent("Untagged" if remove else "Tagged", {"tag": tag_name}))


def note(store: EventStore, model_id: str, text: str) -> None:
    _model_append(store, model_id, NewEvent("Noted", {"text": text}))
