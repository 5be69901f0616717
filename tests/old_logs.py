"""Writing events exactly as an older nasdb wrote them: payloads at an old schema version, through
the database's append function (the store itself always writes the current version)."""

from __future__ import annotations

import base64
import hashlib
import uuid
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from nasdb.schema.db import Database
from nasdb.schema.events import current_version, validate_payload
from nasdb.schema.metrics import per_class_metrics


def append_raw(db: Database, stream_id: str, events: list[tuple[str, int, dict[str, Any]]]) -> None:
    """Append (type, schema version, data) to a new stream, bypassing the store: a payload at its
    type's current version is normalised by its schema, an older one is stored exactly as given."""
    payload = [{"event_id": str(uuid.uuid4()), "type": t, "schema_version": v,
                "data": validate_payload(t, d) if v == current_version(t) else d,
                "metadata": {"actor": "old-nasdb"}} for t, v, d in events]
    with psycopg.connect(db.url, autocommit=True) as conn:
        conn.execute("select * from nasdb_append(%s, 0, %s)", (stream_id, Jsonb(payload)))


def v1_training_completed(confusion: list[list[int]], classes: list[str]) -> dict[str, Any]:
    """A TrainingCompleted payload as nasdb <= 0.x wrote it: ``class_accuracy`` one-vs-rest."""
    metrics = per_class_metrics(confusion, classes)
    total = sum(map(sum, confusion))
    correct = sum(confusion[i][i] for i in range(len(classes)))
    labels = bytes(j for i, row in enumerate(confusion) for j, c in enumerate(row) for _ in range(c))
    return {
        "attempt": 1, "epochs_trained": 1, "test_acc": correct / total, "test_loss": 0.5,
        "class_names": classes,
        "class_accuracy": [m.one_vs_rest_accuracy for m in metrics],
        "class_precision": [m.precision for m in metrics],
        "class_recall": [m.recall for m in metrics],
        "class_specificity": [m.specificity for m in metrics],
        "class_support": [m.support for m in metrics],
        "confusion_matrix": confusion,
        "predictions": base64.b64encode(labels).decode(),
        "predictions_digest": hashlib.sha256(labels).hexdigest(),
        "latency_ms": 0.1, "train_seconds": 1.0, "checkpoint": None,
    }


def v1_epoch_completed(class_ovr: dict[str, float]) -> dict[str, Any]:
    """An EpochCompleted payload as nasdb <= 0.x wrote it: ``class_acc`` one-vs-rest."""
    return {"epoch": 1, "attempt": 1, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0,
            "val_acc": 0.5, "class_acc": class_ovr, "lr": 1e-3, "seconds": 0.1}


def proposed(model_id: str, dataset_id: str, params: int, classes: list[str]) -> dict[str, Any]:
    """A minimal valid ArchitectureProposed payload (Dense head only)."""
    return {
        "model_id": model_id, "dataset_id": dataset_id, "origin": "sampled", "parent_id": None,
        "changes": [], "architecture": {"layers": [], "reference": None},
        "hyperparameters": {"optimizer": "adam", "lr": 1e-3, "weight_decay": 0.0,
                            "batch_size": 64, "epochs": 1, "schedule": "step",
                            "step_gamma": 0.75, "seed": 0, "early_stop_patience": 3,
                            "early_stop_delta": 0.005},
        "glyph": f"D{len(classes)}", "layer_types": [], "depth": 1, "params": params,
        "flops": params, "input_shape": [1, 8, 8], "num_classes": len(classes),
    }
