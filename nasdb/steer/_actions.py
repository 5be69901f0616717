"""Commands that turn decisions about the model space into events.

Proposing a model validates its architecture against the dataset (shape inference, exact params
and FLOPs), gives it an id and appends ArchitectureProposed (+ TrainingRequested when queued) to a
new stream. Steering actions (priority, cancel, pin, tags, notes) append to the model's stream.
Each function appends and returns; callers bring the read models up to date with
`nasdb.ingest.wait_projected` when they need to read their own writes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nasdb.ingest import EventStore, NewEvent, new_model_ids
from nasdb.read import get_model
from nasdb.schema.errors import InvalidRequest
from nasdb.schema.events import (
    ArchitectureProposed,
    Noted,
    Pinned,
    PriorityChanged,
    Tagged,
    TrainingCancelled,
    TrainingRequested,
    Unpinned,
    Untagged,
)
from nasdb.schema.vocabulary import Origin
from nasdb.search import Architecture, DatasetInfo, Hyperparameters, check_bounds
from nasdb.trainers.measure import layer_table


@dataclass(frozen=True)
class Proposal:
    """One architecture to propose, with its provenance."""

    architecture: Architecture
    hyperparameters: Hyperparameters
    origin: Origin
    parent_id: str | None = None
    changes: tuple[str, ...] = ()
    predicted_acc: float | None = None
    extra: dict[str, Any] | None = None


def _proposed_event(
    model_id: str, dataset: DatasetInfo, p: Proposal, study_id: str | None,
    metadata: dict[str, Any] | None,
) -> NewEvent:
    infos = layer_table(p.architecture, dataset.input_shape, dataset.num_classes)
    return NewEvent.of(
        ArchitectureProposed(
            model_id=model_id,
            dataset_id=dataset.id,
            study_id=study_id,
            origin=p.origin,
            parent_id=p.parent_id,
            changes=list(p.changes),
            architecture=p.architecture.to_dict(),
            hyperparameters=p.hyperparameters.to_dict(),
            glyph=p.architecture.glyph(dataset.num_classes),
            layer_types=list(p.architecture.layer_types),
            depth=len(p.architecture.layers) + 1 if p.architecture.reference is None else 1,
            params=sum(i.params for i in infos),
            flops=sum(i.flops for i in infos),
            input_shape=list(dataset.input_shape),
            num_classes=dataset.num_classes,
            predicted_acc=p.predicted_acc,
            proposal=p.extra or {},
        ),
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
        infos = layer_table(p.architecture, dataset.input_shape, dataset.num_classes)
        check_bounds(p.architecture, infos, p.hyperparameters.batch_size)
    events = []
    ids = new_model_ids(store.db, len(proposals)) if proposals else []
    for model_id, p in zip(ids, proposals, strict=True):
        stream = [_proposed_event(model_id, dataset, p, study_id, metadata)]
        if queue:
            stream.append(NewEvent.of(TrainingRequested(priority=priority),
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
    if row.status in ("queued", "training"):
        raise InvalidRequest(f"model {model_id} is already {row.status}")
    _model_append(store, model_id, NewEvent.of(TrainingRequested(priority=priority, epochs=epochs)))


def cancel(store: EventStore, model_id: str, reason: str = "") -> None:
    """Cancel a queued or running job (a running one stops at its next epoch boundary)."""
    row = get_model(store.db, model_id)
    if row.status not in ("queued", "training", "proposed"):
        raise InvalidRequest(
            f"model {model_id} is {row.status}; only queued or training models can be cancelled"
        )
    _model_append(store, model_id, NewEvent.of(TrainingCancelled(reason=reason)))


def set_priority(store: EventStore, model_id: str, priority: int) -> None:
    """Reorder the queue: higher priority is claimed first."""
    _model_append(store, model_id, NewEvent.of(PriorityChanged(priority=priority)))


def pin(store: EventStore, model_id: str, pinned: bool = True) -> None:
    _model_append(store, model_id, NewEvent.of(Pinned() if pinned else Unpinned()))


def tag(store: EventStore, model_id: str, tag_name: str, remove: bool = False, *,
        metadata: dict[str, Any] | None = None) -> None:
    """Tag (or untag) a model; ``metadata`` (actor, session) joins the event's."""
    event = Untagged(tag=tag_name) if remove else Tagged(tag=tag_name)
    _model_append(store, model_id, NewEvent.of(event, metadata=metadata))


def note(store: EventStore, model_id: str, text: str, *,
         metadata: dict[str, Any] | None = None) -> None:
    """Add a note to a model; ``metadata`` (actor, session) joins the event's."""
    _model_append(store, model_id, NewEvent.of(Noted(text=text), metadata=metadata))
