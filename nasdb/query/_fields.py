"""The whitelist: every name a query may use, mapped to a fixed SQL expression over the views.

Nothing a user types ever becomes SQL text except through these tables: a field name selects one of
the expressions below, values are bound as parameters. `docs/query.md` documents every entry (a test
checks it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from nasdb.schema.vocabulary import MODEL_STATUSES, OPTIMIZERS, ORIGINS

__all__ = [
    "AGGREGATES",
    "CLASS_METRICS",
    "EPOCH_FIELDS",
    "FIELDS",
    "FOCUS_FIELDS",
    "LAYER_TYPES",
    "Field",
    "Kind",
]


class Kind(StrEnum):
    """What a field holds, which decides the operators and value units it accepts."""

    COUNT = "count"  # a whole number of things: 100k, 5M (params, flops, layers)
    FRACTION = "fraction"  # 0..1, also written as a percentage (accuracies)
    REAL = "real"  # any number: 1e-3, 0.5 (lr, losses)
    LATENCY = "latency"  # milliseconds; units us, ms, s
    DURATION = "duration"  # seconds; units s, m/min, h, d, w
    TIME = "time"  # a timestamp: a duration ago, or an ISO date in quotes
    AGE = "age"  # the time since a timestamp
    TEXT = "text"  # an identifier or a word
    ENUM = "enum"  # a word from a fixed list
    TAGS = "tags"  # a text[] of tags
    LAYERS = "layers"  # regex over the glyph and the layer-type sequence
    FLAG = "flag"  # boolean, written bare


NUMERIC = frozenset({Kind.COUNT, Kind.FRACTION, Kind.REAL, Kind.LATENCY, Kind.DURATION})


@dataclass(frozen=True)
class Field:
    """One queryable field: its SQL expression (over ``models AS m``) and how to talk about it."""

    name: str
    sql: str
    kind: Kind
    label: str
    doc: str
    maximise: bool = False
    noun: bool = False  # "fewer than 100,000 parameters" rather than "params below 100,000"
    choices: tuple[str, ...] = ()


def _count(layer_types: tuple[str, ...]) -> str:
    parts = [f"cardinality(array_positions(m.layer_types, '{t}'))" for t in layer_types]
    return parts[0] if len(parts) == 1 else "(" + " + ".join(parts) + ")"


LAYER_TYPES: dict[str, tuple[str, ...]] = {
    "conv2d": ("Conv2D",),
    "conv": ("Conv2D",),
    "maxpool2d": ("MaxPool2D",),
    "maxpool": ("MaxPool2D",),
    "avgpool2d": ("AvgPool2D",),
    "avgpool": ("AvgPool2D",),
    "pool": ("MaxPool2D", "AvgPool2D"),
    "dropout": ("Dropout",),
    "batchnorm": ("BatchNorm",),
    "activation": ("Activation",),
    "dense": ("Dense",),
    "flatten": ("Flatten",),
    "globalavgpool": ("GlobalAvgPool",),
    "gap": ("GlobalAvgPool",),
    "convblock": ("ConvBlock",),
    "sepconv": ("SepConv",),
    "residual": ("Residual",),
    "block": ("ConvBlock", "SepConv", "Residual"),
}
"""``has:<name>`` and the layer-count fields: name (lower case) -> the layer types it counts."""


_FIELDS: list[Field] = [
    Field("id", "m.id", Kind.TEXT, "id", "the model id (m12)"),
    Field("study", "m.study_id", Kind.TEXT, "study", "the study id"),
    Field("dataset", "m.dataset_id", Kind.TEXT, "dataset", "the dataset name"),
    Field("parent", "m.parent_id", Kind.TEXT, "parent", "the parent model's id"),
    Field("origin", "m.origin", Kind.ENUM, "origin", "how the model came to be", choices=ORIGINS),
    Field("status", "m.status", Kind.ENUM, "status", "training state", choices=MODEL_STATUSES),
    Field("optimizer", "m.optimizer", Kind.ENUM, "optimizer", "the optimizer", choices=OPTIMIZERS),
    Field("tag", "m.tags", Kind.TAGS, "tag", "one of the model's tags"),
    Field("glyph", "m.glyph", Kind.TEXT, "glyph", "the summary glyph (C32k3-relu-P2-D10)"),
    Field("layers", "m.glyph", Kind.LAYERS, "layers", "regex on the glyph or the layer types"),
    Field("params", "m.params", Kind.COUNT, "parameters", "parameter count", noun=True),
    Field("flops", "m.flops", Kind.COUNT, "FLOPs", "FLOPs per image", noun=True),
    Field("depth", "m.depth", Kind.COUNT, "layers (depth)", "body layers + head", noun=True),
    Field("epochs", "m.epochs_trained", Kind.COUNT, "epochs trained", "epochs trained", noun=True),
    Field("epochs_planned", "m.epochs_planned", Kind.COUNT, "epochs planned", "epochs planned",
          noun=True),
    Field("batch_size", "m.batch_size", Kind.COUNT, "batch size", "training batch size"),
    Field("lr", "m.lr", Kind.REAL, "learning rate", "learning rate"),
    Field("weight_decay", "m.weight_decay", Kind.REAL, "weight decay", "weight decay"),
    Field("acc", "m.test_acc", Kind.FRACTION, "accuracy",
          "test accuracy, or the class metric under class=", maximise=True),
    Field("test_acc", "m.test_acc", Kind.FRACTION, "test accuracy", "test accuracy",
          maximise=True),
    Field("val_acc", "m.best_val_acc", Kind.FRACTION, "best validation accuracy",
          "best validation accuracy over the epochs", maximise=True),
    Field("last_val_acc", "m.last_val_acc", Kind.FRACTION, "last validation accuracy",
          "validation accuracy of the last epoch", maximise=True),
    Field("predicted_acc", "m.predicted_acc", Kind.FRACTION, "predicted accuracy",
          "the accuracy predictor's estimate", maximise=True),
    Field("loss", "m.test_loss", Kind.REAL, "test loss", "test loss"),
    Field("test_loss", "m.test_loss", Kind.REAL, "test loss", "test loss"),
    Field("val_loss", "m.last_val_loss", Kind.REAL, "validation loss",
          "validation loss of the last epoch"),
    Field("train_loss", "m.last_train_loss", Kind.REAL, "training loss",
          "training loss of the last epoch"),
    Field("latency", "m.latency_ms", Kind.LATENCY, "latency", "inference latency per image"),
    Field("train_time", "m.train_seconds", Kind.DURATION, "training time", "training time"),
    Field("priority", "m.priority", Kind.REAL, "priority", "queue priority"),
    Field("notes", "m.notes_count", Kind.COUNT, "notes", "number of notes", noun=True),
    Field("created", "m.created_at", Kind.TIME, "created", "when the model was proposed"),
    Field("age", "m.created_at", Kind.AGE, "age", "time since the model was proposed"),
    Field("pinned", "m.pinned", Kind.FLAG, "pinned", "pinned in the model drawer"),
]
for _name, _types in LAYER_TYPES.items():
    if _name in {"conv2d", "maxpool2d", "avgpool2d", "globalavgpool"}:
        continue
    _label = " + ".join(_types) + " layers"
    _FIELDS.append(Field(_name, _count(_types), Kind.COUNT, _label, f"number of {_label}",
                         noun=True))

FIELDS: dict[str, Field] = {f.name: f for f in _FIELDS}
"""Field name -> Field; the only identifiers a query can reach."""

FOCUS_FIELDS = ("class", "metric")
"""Pseudo-fields that set the class focus instead of filtering."""

CLASS_METRICS = ("accuracy", "precision", "recall", "specificity")
"""Per-class metrics (columns of the class_metrics view) that ``metric=`` may name."""

EPOCH_FIELDS: dict[str, tuple[str, str]] = {
    "val_acc": ("val_acc", "validation accuracy"),
    "val_loss": ("val_loss", "validation loss"),
    "train_acc": ("train_acc", "training accuracy"),
    "train_loss": ("train_loss", "training loss"),
    "acc": ("train_acc", "training accuracy"),
    "loss": ("train_loss", "training loss"),
    "lr": ("lr", "learning rate"),
    "seconds": ("seconds", "epoch time"),
}
"""Names allowed inside an epoch aggregate -> (epochs column, label). As in Keras' history,
``acc``/``loss`` are the training-set curves and ``val_acc``/``val_loss`` the validation ones."""

AGGREGATES: dict[str, str] = {
    "max": "max",
    "min": "min",
    "mean": "mean",
    "avg": "mean",
    "first": "first",
    "last": "last",
}
"""Aggregate names over a model's epochs -> canonical name."""
