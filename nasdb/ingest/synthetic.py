"""Synthetic but schema-valid event streams, for benchmarks and property tests.

Nothing here is used by nasdb's own commands: it makes event logs that look like a real search
(datasets, models with layers, epochs, per-class metrics, steering actions) so the store, the
projections and the query language can be measured at sizes no CPU could train in a session.
"""

from __future__ import annotations

import base64
import hashlib
import random
import time
from collections.abc import Iterator

import numpy as np

from nasdb.ingest._projector import Projector
from nasdb.ingest._store import EventStore, NewEvent
from nasdb.schema.db import Database
from nasdb.schema.events import (
    ArchitectureProposed,
    DatasetRegistered,
    EpochCompleted,
    JobClaimed,
    Pinned,
    Tagged,
    TrainingCompleted,
    TrainingRequested,
)
from nasdb.schema.vocabulary import Origin

DIGIT_CLASSES = [str(i) for i in range(10)]
_LAYER_CHOICES = ("Conv2D", "Activation", "MaxPool2D", "Dropout", "Dense", "BatchNorm")


def dataset_event(dataset_id: str = "synthetic", classes: list[str] | None = None) -> NewEvent:
    classes = classes or DIGIT_CLASSES
    return NewEvent.of(
        DatasetRegistered(
            dataset_id=dataset_id,
            name=dataset_id,
            kind="synthetic",
            source="nasdb.ingest.synthetic",
            fingerprint=hashlib.sha256(dataset_id.encode()).hexdigest(),
            shape=[1, 8, 8],
            classes=classes,
            train_size=1000,
            val_size=200,
            test_size=300,
            val_seed=0,
        ),
        idempotency_key="registered",
    )


def _layers(rng: random.Random) -> list[dict[str, object]]:
    layers: list[dict[str, object]] = []
    for _ in range(rng.randint(1, 8)):
        kind = rng.choice(_LAYER_CHOICES)
        if kind == "Conv2D":
            layers.append({"type": "Conv2D", "filters": rng.choice([16, 32, 64, 128]),
                           "kernel": rng.choice([1, 3, 5]), "stride": 1, "padding": "same"})
        elif kind == "Activation":
            layers.append({"type": "Activation", "fn": rng.choice(["relu", "tanh", "sigmoid"])})
        elif kind == "MaxPool2D":
            layers.append({"type": "MaxPool2D", "size": 2, "stride": 2})
        elif kind == "Dropout":
            layers.append({"type": "Dropout", "rate": rng.choice([0.125, 0.25, 0.5])})
        elif kind == "Dense":
            layers.append({"type": "Dense", "units": rng.choice([16, 64, 128, 256])})
        else:
            layers.append({"type": "BatchNorm"})
    return layers


def model_lifecycle(
    rng: random.Random,
    model_id: str,
    dataset_id: str = "synthetic",
    classes: list[str] | None = None,
    *,
    epochs: int = 3,
    parent_id: str | None = None,
    finish: bool = True,
) -> list[NewEvent]:
    """Proposed -> requested -> claimed -> epochs -> completed, with plausible numbers."""
    classes = classes or DIGIT_CLASSES
    layers = _layers(rng)
    params = rng.randint(1_000, 3_000_000)
    quality = rng.random()
    lr = 10 ** rng.uniform(-4, -2)
    hp = {"optimizer": rng.choice(["adam", "sgd", "adamw"]), "lr": lr,
          "weight_decay": 0.0, "batch_size": rng.choice([64, 128, 256]), "epochs": epochs,
          "schedule": "step", "step_gamma": 0.75, "seed": 0, "early_stop_patience": 3,
          "early_stop_delta": 0.005}
    origin: Origin = "variation" if parent_id else rng.choice(["sampled", "sampled", "ablation"])
    events = [
        NewEvent.of(ArchitectureProposed(
            model_id=model_id, dataset_id=dataset_id, origin=origin,
            parent_id=parent_id, changes=["synthetic"] if parent_id else [],
            architecture={"layers": layers, "reference": None}, hyperparameters=hp,
            glyph="-".join(str(layer["type"])[:2] for layer in layers) + f"-D{len(classes)}",
            layer_types=[str(layer["type"]) for layer in layers], depth=len(layers) + 1,
            params=params, flops=params * rng.randint(2, 60), input_shape=[1, 8, 8],
            num_classes=len(classes),
        ), idempotency_key="proposed"),
    ]
    if not finish:
        return [*events, job_started()[0]]
    events += job_started()
    acc = 0.1
    for epoch in range(1, epochs + 1):
        acc = min(0.99, acc + (1 - acc) * quality * 0.5)
        events.append(NewEvent.of(EpochCompleted(
            epoch=epoch, train_loss=2.3 * (1 - acc), train_acc=acc,
            val_loss=2.3 * (1 - acc) + 0.05, val_acc=acc - 0.01,
            class_acc={c: max(0.0, min(1.0, acc + rng.uniform(-0.1, 0.1))) for c in classes},
            lr=lr, seconds=rng.uniform(0.1, 2.0),
        ), idempotency_key=f"epoch-1-{epoch}"))
    n = len(classes)
    per_class = [max(0.0, min(1.0, acc + rng.uniform(-0.15, 0.1))) for _ in classes]
    labels = bytes(rng.randrange(n) for _ in range(64))
    events.append(completed_event(epochs, acc, classes, per_class, labels,
                                  latency_ms=rng.uniform(0.01, 1.0),
                                  train_seconds=rng.uniform(1, 30)))
    return events


def job_started() -> list[NewEvent]:
    """TrainingRequested and JobClaimed: what the job state machine needs before a result."""
    return [NewEvent.of(TrainingRequested(priority=0), idempotency_key="requested"),
            NewEvent.of(JobClaimed(worker="synthetic", attempt=1, lease_seconds=60.0),
                        idempotency_key="claim-1")]


def completed_event(epochs: int, acc: float, classes: list[str], per_class: list[float],
                    labels: bytes, *, latency_ms: float, train_seconds: float) -> NewEvent:
    """TrainingCompleted with test accuracy ``acc``, ``per_class`` as each class's accuracy (its
    recall) and precision, and ``labels`` as the test-set predictions."""
    n = len(classes)
    return NewEvent.of(TrainingCompleted(
        epochs_trained=epochs, test_acc=acc, test_loss=2.3 * (1 - acc),
        class_names=classes, class_accuracy=per_class,
        class_ovr_accuracy=[0.9 + a / 10 for a in per_class],
        class_precision=per_class, class_recall=per_class,
        class_specificity=[0.95] * n, class_support=[30] * n,
        confusion_matrix=[[0] * n for _ in range(n)],
        predictions=base64.b64encode(labels).decode(),
        predictions_digest=hashlib.sha256(labels).hexdigest(),
        latency_ms=latency_ms, train_seconds=train_seconds,
    ), idempotency_key="completed")


def search_log(
    n_models: int, seed: int = 0, dataset_id: str = "synthetic"
) -> Iterator[tuple[str, list[NewEvent]]]:
    """(stream id, events) pairs for a dataset and ``n_models`` models, some steered."""
    rng = random.Random(seed)
    yield f"dataset-{dataset_id}", [dataset_event(dataset_id)]
    for i in range(1, n_models + 1):
        parent = f"m{rng.randint(1, i - 1)}" if i > 1 and rng.random() < 0.2 else None
        events = model_lifecycle(rng, f"m{i}", dataset_id, parent_id=parent,
                                 finish=rng.random() < 0.9)
        if rng.random() < 0.1:
            events.append(NewEvent.of(Pinned()))
        if rng.random() < 0.1:
            events.append(NewEvent.of(Tagged(tag=rng.choice(["baseline", "small", "keep"]))))
        yield f"model-m{i}", events


def lean_log(n_models: int, n_classes: int = 10, seed: int = 5
             ) -> Iterator[tuple[str, list[NewEvent], int | None]]:
    """A dataset and ``n_models`` models of four events each (ArchitectureProposed, the job's
    TrainingRequested and JobClaimed, and TrainingCompleted, payloads as in `model_lifecycle`):
    what the web app's overview needs, without the epoch events of a full lifecycle."""
    rng = np.random.default_rng(seed)
    classes = [f"c{i}" for i in range(n_classes)]
    yield "dataset-synthetic", [dataset_event("synthetic", classes)], None
    kinds = ["Conv2D", "Activation", "MaxPool2D", "Dense", "Dropout", "BatchNorm"]
    params = rng.integers(1_000, 3_000_000, n_models)
    quality = rng.random(n_models)
    depth = rng.integers(1, 8, n_models)
    lrs = 10 ** rng.uniform(-4, -2, n_models)
    per_class = np.clip(quality[:, None] + rng.uniform(-0.15, 0.1, (n_models, n_classes)), 0, 1)
    preds = rng.integers(0, n_classes, (n_models, 16), dtype=np.uint8)
    for i in range(n_models):
        mid = f"m{i + 1}"
        types = [kinds[(i + j) % len(kinds)] for j in range(int(depth[i]))]
        layers: list[dict[str, object]] = []
        for t in types:
            if t == "Conv2D":
                layers.append({"type": t, "filters": 32, "kernel": 3, "stride": 1,
                               "padding": "same"})
            elif t == "Activation":
                layers.append({"type": t, "fn": "relu"})
            elif t == "MaxPool2D":
                layers.append({"type": t, "size": 2, "stride": 2})
            elif t == "Dense":
                layers.append({"type": t, "units": 64})
            elif t == "Dropout":
                layers.append({"type": t, "rate": 0.25})
            else:
                layers.append({"type": t})
        acc = float(quality[i]) * 0.9 + 0.05
        labels = preds[i].tobytes()
        pc = [float(x) for x in per_class[i]]
        yield f"model-{mid}", [
            NewEvent.of(ArchitectureProposed(
                model_id=mid, dataset_id="synthetic", origin="sampled",
                parent_id=None, changes=[],
                architecture={"layers": layers, "reference": None},
                hyperparameters={"optimizer": "adam", "lr": float(lrs[i]),
                                 "weight_decay": 0.0, "batch_size": 128, "epochs": 3,
                                 "schedule": "step", "step_gamma": 0.75, "seed": 0,
                                 "early_stop_patience": 3, "early_stop_delta": 0.005},
                glyph="-".join(t[:2] for t in types) + f"-D{n_classes}",
                layer_types=types, depth=len(types) + 1, params=int(params[i]),
                flops=int(params[i]) * 10, input_shape=[1, 8, 8],
                num_classes=n_classes,
            ), idempotency_key="proposed"),
            *job_started(),
            completed_event(3, acc, classes, pc, labels, latency_ms=0.1 + acc,
                            train_seconds=5.0),
        ], None


def load_lean(db: Database, n_models: int, batch: int = 5000) -> dict[str, float]:
    """Append `lean_log` through the store in large batches and project them; returns the
    seconds each phase took."""
    store = EventStore(db=db)
    started = time.perf_counter()
    items: list[tuple[str, list[NewEvent], int | None]] = []
    for item in lean_log(n_models):
        items.append(item)
        if len(items) >= batch:
            store.append_batch(items)
            items = []
    if items:
        store.append_batch(items)
    appended = time.perf_counter()
    Projector(db, batch_size=5000).catch_up()
    projected = time.perf_counter()
    with db.connect(autocommit=True) as conn:
        conn.execute("select setval('model_ids', %s)", (n_models,))
    store.close()
    return {"append": appended - started, "project": projected - appended}
