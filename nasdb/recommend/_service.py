"""Fitting the recommenders from what the database stores, and loading them back.

Three kinds of recommender are fitted here, each saved as an artifact (``put_artifact``) and
recorded with a ``RecommenderTrained`` event in its own stream ``recommender-<id>``, so every
prediction names the fitted artefact it came from and that artefact names the data it was fitted on
(``data_fingerprint``, ``training_rows`` and ``metrics``):

- ``encoder`` (`fit_encoder`): the architecture encoder on architectures sampled from REMAP's
  grammar for every registered dataset's input shape, plus every architecture already stored
  (no training needed);
- ``similarity`` (`fit_similarity`): the dataset-similarity ranker on images sampled from each
  registered dataset's training split. Its metrics hold the similarity vector of every dataset it
  was fitted on, measured on that dataset's test split. With a single registered dataset there is
  nothing to tell apart: the recommender then records that dataset alone and gives it share 1;
- ``predictor`` (`fit_predictor`): the accuracy predictor on the trained models (status ``done``
  with a test accuracy), using the encoder and similarity recorded in its metrics; `load_bundle`
  loads exactly those, not whichever is newest.

`load_latest` returns the newest recommender of a kind; loaded artefacts are cached in-process by
their content hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import tempfile
import threading
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasdb.ingest import EventStore, NewEvent, get_artifact, put_artifact
from nasdb.read import (
    latest_recommender,
    list_datasets,
    list_models,
    stored_architectures,
    val_acc_curves,
)
from nasdb.schema.db import Database
from nasdb.schema.errors import InvalidRequest, NotFound
from nasdb.schema.events import RecommenderTrained

from ._encoder import ArchitectureEncoder
from ._predictor import MIN_TRAINED_MODELS, AccuracyPredictor, PredictorRow
from ._similarity import DatasetSimilarity

__all__ = [
    "KINDS",
    "Bundle",
    "Fitted",
    "Recommender",
    "Similarity",
    "fit_all",
    "fit_encoder",
    "fit_predictor",
    "fit_similarity",
    "has_architecture",
    "load_bundle",
    "load_latest",
    "load_recommender",
    "model_rows",
    "trained_models",
    "usable_trained_models",
]

KINDS = ("encoder", "similarity", "predictor")
SINGLE_FORMAT = "nasdb-similarity-single/1"
#: Validation accuracies of the first epochs used as the partial learning curve.
CURVE_EPOCHS = 2

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Fitted:
    """What a fit recorded (the RecommenderTrained payload)."""

    recommender_id: str
    kind: str
    artifact: str
    data_fingerprint: str
    training_rows: int
    metrics: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return {
            "recommender_id": self.recommender_id,
            "kind": self.kind,
            "artifact": self.artifact,
            "data_fingerprint": self.data_fingerprint,
            "training_rows": self.training_rows,
        }


@dataclass
class Similarity:
    """A loaded similarity recommender: the ranker (None with one dataset) and known vectors."""

    names: list[str]
    ranker: DatasetSimilarity | None
    vectors: dict[str, dict[str, float]] = field(default_factory=dict)

    def of_images(self, images: np.ndarray) -> dict[str, float]:
        if self.ranker is None:
            return {self.names[0]: 1.0}
        return self.ranker.similarity(images)


@dataclass(frozen=True)
class Recommender:
    """A loaded recommender: its event data and the fitted object."""

    recommender_id: str
    kind: str
    artifact: str
    metrics: dict[str, Any]
    model: Any


# --- artefacts and events -------------------------------------------------------------------


def _to_bytes(save: Callable[[Path], None]) -> bytes:
    with tempfile.TemporaryDirectory(prefix="nasdb-recommend-") as folder:
        path = Path(folder) / "artifact"
        save(path)
        return path.read_bytes()


def _from_bytes(load: Callable[[Path], Any], content: bytes) -> Any:
    with tempfile.TemporaryDirectory(prefix="nasdb-recommend-") as folder:
        path = Path(folder) / "artifact"
        path.write_bytes(content)
        return load(path)


def _json_safe(value: Any) -> Any:
    """NaN and infinities become None (jsonb refuses them); numpy scalars become Python ones."""
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _record(
    db: Database, kind: str, content: bytes, fingerprint: str, rows: int, metrics: dict[str, Any]
) -> Fitted:
    artifact = put_artifact(db, content, f"recommender-{kind}")
    recommender_id = f"{kind}-{uuid.uuid4().hex[:10]}"
    fitted = Fitted(recommender_id, kind, artifact, fingerprint, rows, _json_safe(metrics))
    EventStore(db=db).append(
        f"recommender-{recommender_id}",
        [NewEvent.of(RecommenderTrained(
            recommender_id=fitted.recommender_id, kind=fitted.kind, artifact=fitted.artifact,
            data_fingerprint=fitted.data_fingerprint, training_rows=fitted.training_rows,
            metrics=fitted.metrics))],
        expected_version=0,
    )
    return fitted


_cache: dict[str, Any] = {}
_cache_lock = threading.Lock()


def _load_model(db: Database, kind: str, artifact: str, metrics: Mapping[str, Any]) -> Any:
    with _cache_lock:
        if artifact in _cache:
            return _cache[artifact]
    content = get_artifact(db, artifact)
    model: Any
    if kind == "encoder":
        model = _from_bytes(ArchitectureEncoder.load, content)
    elif kind == "predictor":
        model = _from_bytes(AccuracyPredictor.load, content)
    elif kind == "similarity":
        vectors = {k: dict(v) for k, v in (metrics.get("vectors") or {}).items()}
        if content.startswith(SINGLE_FORMAT.encode()):
            names = json.loads(content[len(SINGLE_FORMAT) + 1 :])["names"]
            model = Similarity(names, None, vectors)
        else:
            ranker = _from_bytes(DatasetSimilarity.load, content)
            model = Similarity(list(ranker.names), ranker, vectors)
    else:
        raise InvalidRequest(f"unknown recommender kind {kind!r}; expected one of {KINDS}")
    with _cache_lock:
        _cache[artifact] = model
    return model


def _recommender_from(db: Database, data: Mapping[str, Any]) -> Recommender:
    metrics = dict(data.get("metrics") or {})
    model = _load_model(db, data["kind"], data["artifact"], metrics)
    return Recommender(data["recommender_id"], data["kind"], data["artifact"], metrics, model)


_HOW_TO_FIT = {
    "encoder": "nasdb recommend fit-encoder (or nasdb recommend fit)",
    "similarity": "nasdb recommend fit",
    "predictor": "nasdb recommend fit",
}


def load_latest(db: Database, kind: str) -> Recommender:
    """The newest recommender of ``kind``; `NotFound` saying how to fit one."""
    if kind not in KINDS:
        raise InvalidRequest(f"unknown recommender kind {kind!r}; expected one of {KINDS}")
    recorded = latest_recommender(db, kind)
    if recorded is None:
        raise NotFound(f"no {kind} has been fitted in this database yet; run: {_HOW_TO_FIT[kind]}")
    return _recommender_from(db, recorded.data)


def load_recommender(db: Database, recommender_id: str) -> Recommender:
    """The recommender recorded under ``recommender_id``; `NotFound` when there is none."""
    events = EventStore(db=db).read_stream(f"recommender-{recommender_id}")
    trained = [e for e in events if e.type == "RecommenderTrained"]
    if not trained:
        raise NotFound(f"no recommender {recommender_id!r} in this database")
    return _recommender_from(db, trained[-1].data)


# --- what is stored -------------------------------------------------------------------------


def _registered(db: Database) -> list[dict[str, Any]]:
    return [d.model_dump() for d in list_datasets(db)]


def has_architecture(architecture: Any) -> bool:
    """True when ``architecture`` (the stored JSON) lists its layers (an empty body is a valid
    architecture: the head alone) or names a reference classifier."""
    if not isinstance(architecture, Mapping):
        return False
    return isinstance(architecture.get("layers"), list) or bool(architecture.get("reference"))


def trained_models(db: Database, dataset_id: str | None = None) -> list[dict[str, Any]]:
    """Models that finished training with a test accuracy (optionally on one dataset), by id."""
    rows = list_models(db, dataset_id=dataset_id, statuses=["done"], tested=True)
    return [r.model_dump() for r in rows]


def usable_trained_models(db: Database, dataset_id: str | None = None) -> list[dict[str, Any]]:
    """The trained models that fitting and recommending can use: those with a recorded
    architecture (`has_architecture`)."""
    return [m for m in trained_models(db, dataset_id) if has_architecture(m["architecture"])]


def partial_curve(curve: Sequence[float], epochs_trained: int, done: bool) -> list[float]:
    """The curve the predictor sees: at most `CURVE_EPOCHS` epochs, and for a finished model
    never its last epoch (which would be the answer, not a partial curve)."""
    usable = max(0, epochs_trained - 1) if done else len(curve)
    return [float(v) for v in curve[: min(CURVE_EPOCHS, usable)]]


# --- encoder --------------------------------------------------------------------------------


def fit_encoder(
    db: Database,
    n_corpus: int = 2000,
    *,
    seed: int = 0,
    dim: int = 32,
    epochs: int = 8,
    progress: Progress = _quiet,
    exclude_models: Collection[str] = (),
) -> Fitted:
    """Fit the encoder on ``n_corpus`` sampled architectures plus every stored one; record it.

    Architectures are sampled for each registered dataset's input shape (28x28 grayscale with 10
    classes when none is registered). The architectures of ``exclude_models`` (model ids) stay
    out of the corpus unless another model shares them: an evaluation keeps its held-out models
    unseen this way.
    """
    from nasdb.search import sample

    if n_corpus < 1:
        raise InvalidRequest(f"the encoder corpus needs at least 1 architecture; got {n_corpus}")
    shapes = sorted(
        {((d["channels"], d["height"], d["width"]), d["num_classes"]) for d in _registered(db)}
    ) or [((1, 28, 28), 10)]
    corpus: list[dict[str, Any]] = []
    for i, (shape, classes) in enumerate(shapes):
        n = n_corpus // len(shapes) + (1 if i < n_corpus % len(shapes) else 0)
        if n:
            corpus += [a.to_dict() for a, _ in sample(shape, classes, n, seed=seed + i)]
    stored = [a for a in stored_architectures(db, exclude=list(exclude_models))
              if has_architecture(a)]
    corpus += stored
    progress(f"fitting the architecture encoder on {len(corpus)} architectures "
             f"({len(corpus) - len(stored)} sampled, {len(stored)} stored)")
    encoder = ArchitectureEncoder.fit_architectures(corpus, dim=dim, seed=seed, epochs=epochs)
    metrics = {
        "sampled": len(corpus) - len(stored),
        "stored": len(stored),
        "dim": dim,
        "epochs": epochs,
        "seed": seed,
        "vocabulary": len(encoder.vocabulary),
        "loss": [round(x, 5) for x in encoder.history],
    }
    return _record(db, "encoder", _to_bytes(encoder.save), encoder.corpus_fingerprint,
                   len(corpus), metrics)


# --- similarity -----------------------------------------------------------------------------


def _images(db: Database, dataset_id: str, split: str = "train") -> np.ndarray:
    from nasdb.read import get_dataset
    from nasdb.trainers.registry import load_registered

    get_dataset(db, dataset_id)  # NotFound naming the registered datasets
    data = load_registered(EventStore(db=db), dataset_id)
    x = data.x_test if split == "test" and len(data.x_test) else data.x_train
    return x.numpy()


def fit_similarity(
    db: Database, *, sample_size: int = 256, seed: int = 0, progress: Progress = _quiet
) -> Fitted:
    """Fit the dataset-similarity ranker on every registered dataset; record it."""
    datasets = _registered(db)
    if not datasets:
        raise InvalidRequest(
            "no dataset is registered; register one first (nasdb dataset add digits)"
        )
    names = [d["id"] for d in datasets]
    fingerprint = hashlib.sha256(
        json.dumps([[d["id"], d["fingerprint"]] for d in datasets] + [sample_size, seed]).encode()
    ).hexdigest()
    if len(datasets) == 1:
        progress(f"one registered dataset ({names[0]}): similarity is 1 to itself")
        content = (SINGLE_FORMAT + "\n" + json.dumps({"names": names})).encode()
        metrics = {"datasets": names, "vectors": {names[0]: {names[0]: 1.0}}, "single": True}
        return _record(db, "similarity", content, fingerprint, 0, metrics)
    progress(f"fitting dataset similarity on {sample_size} images from each of {', '.join(names)}")
    images = {name: _images(db, name) for name in names}
    ranker = DatasetSimilarity.fit(images, seed=seed, sample_size=sample_size)
    vectors = {name: ranker.similarity(_images(db, name, "test")) for name in names}
    metrics = {
        "datasets": names,
        "vectors": vectors,
        "self_share": {name: vectors[name][name] for name in names},
        "sample_size": sample_size,
        "seed": seed,
    }
    rows = sum(min(sample_size, len(x)) for x in images.values())
    return _record(db, "similarity", _to_bytes(ranker.save), fingerprint, rows, metrics)


# --- the bundle a predictor was fitted with ------------------------------------------------


@dataclass
class Bundle:
    """An encoder and a similarity recommender (and, once fitted, the predictor using them)."""

    db: Database
    encoder: Recommender
    similarity: Recommender
    predictor: Recommender | None = None
    _vectors: dict[str, dict[str, float]] = field(default_factory=dict)

    def similarity_of(self, dataset_id: str) -> dict[str, float]:
        """The dataset's similarity vector: as measured at fit time, else from its images."""
        sim: Similarity = self.similarity.model
        if dataset_id in sim.vectors:
            return sim.vectors[dataset_id]
        if dataset_id not in self._vectors:
            self._vectors[dataset_id] = sim.of_images(_images(self.db, dataset_id, "test"))
        return self._vectors[dataset_id]

    def rows(
        self,
        dataset_id: str,
        items: Sequence[Mapping[str, Any]],
    ) -> list[PredictorRow]:
        """Predictor rows of models (dicts with architecture, hyperparameters, params, flops and
        optionally id and curve) on ``dataset_id``."""
        for item in items:
            if not has_architecture(item.get("architecture")):
                raise InvalidRequest(
                    f"model {item.get('id') or '?'} has no recorded architecture; "
                    "the predictor needs its layers"
                )
        similarity = self.similarity_of(dataset_id)
        encoder: ArchitectureEncoder = self.encoder.model
        vectors = encoder.encode_many([dict(item["architecture"]) for item in items])
        return [
            PredictorRow(
                similarity=similarity,
                architecture=vectors[i],
                hyperparameters=dict(item["hyperparameters"]),
                params=int(item["params"]),
                flops=int(item["flops"]),
                learning_curve=tuple(item.get("curve") or ()),
                model_id=item.get("id"),
            )
            for i, item in enumerate(items)
        ]

    @property
    def ids(self) -> dict[str, str | None]:
        return {
            "encoder": self.encoder.recommender_id,
            "similarity": self.similarity.recommender_id,
            "predictor": self.predictor.recommender_id if self.predictor else None,
        }


def load_bundle(db: Database, *, predictor: bool = True) -> Bundle:
    """The newest predictor with the encoder and similarity it was fitted with (``predictor``
    False: the newest encoder and similarity, for fitting a predictor)."""
    if not predictor:
        return Bundle(db, load_latest(db, "encoder"), load_latest(db, "similarity"))
    fitted = load_latest(db, "predictor")
    return Bundle(
        db,
        load_recommender(db, fitted.metrics["encoder"]),
        load_recommender(db, fitted.metrics["similarity"]),
        fitted,
    )


def model_rows(
    bundle: Bundle, models: Sequence[Mapping[str, Any]]
) -> tuple[list[PredictorRow], list[dict[str, Any]]]:
    """Predictor rows of trained models (on their own datasets, with partial curves), and the
    models that were left out because they have no recorded architecture."""
    usable = [m for m in models if has_architecture(m["architecture"])]
    skipped = [dict(m) for m in models if not has_architecture(m["architecture"])]
    found = val_acc_curves(bundle.db, [m["id"] for m in usable])
    rows: list[PredictorRow] = []
    by_dataset: dict[str, list[dict[str, Any]]] = {}
    for m in usable:
        curve = partial_curve(found.get(m["id"], []), int(m["epochs_trained"] or 0), True)
        by_dataset.setdefault(m["dataset_id"], []).append({**m, "curve": curve})
    order = {m["id"]: i for i, m in enumerate(usable)}
    for dataset_id, items in by_dataset.items():
        rows += bundle.rows(dataset_id, items)
    rows.sort(key=lambda r: order[str(r.model_id)])
    return rows, skipped


# --- predictor ------------------------------------------------------------------------------


def fit_predictor(
    db: Database,
    *,
    seed: int = 0,
    model_ids: Sequence[str] | None = None,
    regressors: Sequence[str] | None = None,
    progress: Progress = _quiet,
) -> Fitted:
    """Fit the accuracy predictor on the trained models (or those of ``model_ids``); record it.

    Uses the newest encoder and similarity. Raises `InvalidRequest` with fewer than
    `MIN_TRAINED_MODELS` trained models that have an architecture (saying how many exist).
    """
    models = trained_models(db)
    if model_ids is not None:
        wanted = set(model_ids)
        models = [m for m in models if m["id"] in wanted]
    usable = [m for m in models if has_architecture(m["architecture"])]
    if len(usable) < MIN_TRAINED_MODELS:
        without = len(models) - len(usable)
        extra = f" ({without} more have no recorded architecture)" if without else ""
        raise InvalidRequest(
            f"need at least {MIN_TRAINED_MODELS} trained models to fit the accuracy predictor; "
            f"the database has {len(usable)}{extra}. Train {MIN_TRAINED_MODELS - len(usable)} "
            "more first (e.g. nasdb sample --dataset digits -n 30, then nasdb worker)"
        )
    bundle = load_bundle(db, predictor=False)
    rows, skipped = model_rows(bundle, usable)
    targets = [float(m["test_acc"]) for m in usable]
    progress(f"fitting the accuracy predictor on {len(rows)} trained models "
             f"(8 regressors, 5-fold)")
    predictor = AccuracyPredictor.fit(
        rows, targets, seed=seed, curve_epochs=CURVE_EPOCHS, regressors=regressors
    )
    metrics = {
        "encoder": bundle.encoder.recommender_id,
        "similarity": bundle.similarity.recommender_id,
        "best": predictor.best,
        "scores": predictor.report(),
        "curve_epochs": CURVE_EPOCHS,
        "datasets": predictor.datasets,
        "models_per_dataset": {
            d: sum(1 for m in usable if m["dataset_id"] == d)
            for d in sorted({m["dataset_id"] for m in usable})
        },
        "skipped_no_architecture": len(skipped),
        "seed": seed,
    }
    return _record(db, "predictor", _to_bytes(predictor.save), predictor.fingerprint,
                   len(rows), metrics)


def fit_all(
    db: Database,
    *,
    n_corpus: int = 2000,
    seed: int = 0,
    sample_size: int = 256,
    encoder_epochs: int = 8,
    progress: Progress = _quiet,
) -> list[Fitted]:
    """Encoder, similarity and predictor, in that order (the predictor uses the other two)."""
    return [
        fit_encoder(db, n_corpus, seed=seed, epochs=encoder_epochs, progress=progress),
        fit_similarity(db, sample_size=sample_size, seed=seed, progress=progress),
        fit_predictor(db, seed=seed, progress=progress),
    ]
