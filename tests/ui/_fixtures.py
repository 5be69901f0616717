"""Building UI test databases through the real store: synthetic searches plus one model with a
realistic confusion matrix and learning curves."""

from __future__ import annotations

import base64
import hashlib
import random
import socket
from typing import Any

import numpy as np

from nasdb.ingest import EventStore, NewEvent, Projector, new_model_ids, new_study_id
from nasdb.ingest.synthetic import DIGIT_CLASSES, model_lifecycle, search_log
from nasdb.read import get_dataset
from nasdb.schema.db import Database
from nasdb.search import Activation, Architecture, Conv2D, Dense, Hyperparameters, MaxPool2D
from nasdb.search.strategies import StudySpace
from nasdb.steer import Proposal, propose


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fill(db: Database, n_models: int, seed: int = 7, batch: int = 400) -> EventStore:
    """Append a synthetic search of ``n_models`` models and project it."""
    store = EventStore(db=db)
    items: list[tuple[str, list[NewEvent], int | None]] = []
    for stream, events in search_log(n_models, seed):
        items.append((stream, events, None))
        if len(items) >= batch:
            store.append_batch(items)
            items = []
    if items:
        store.append_batch(items)
    Projector(db, batch_size=20000).catch_up()
    with db.connect(autocommit=True) as conn:  # synthetic ids do not draw from the sequence
        conn.execute("select setval('model_ids', %s)", (n_models,))
    return store


def trained_model(db: Database, store: EventStore, seed: int = 3) -> str:
    """A valid small CNN proposed through nasdb.search, with epochs and a confusion matrix whose
    class '7' row is all zeros (no test images of 7 recorded) — a row that must stand out."""
    rng = random.Random(seed)
    dataset = get_dataset(db, "synthetic")
    arch = Architecture.of(Conv2D(16, 3, padding="same"), Activation("relu"), MaxPool2D(2, 2),
                           Conv2D(32, 3, padding="same"), Activation("relu"), Dense(32))
    [mid] = propose(store, dataset, [Proposal(arch, Hyperparameters(), "handcrafted")],
                    queue=True)
    n = len(DIGIT_CLASSES)
    events = [NewEvent("JobClaimed", {"worker": "ui-test", "attempt": 1, "lease_seconds": 60})]
    for epoch in range(1, 9):
        acc = 1 - 0.8 * 0.6**epoch + rng.uniform(-0.02, 0.02)
        events.append(NewEvent("EpochCompleted", {
            "epoch": epoch, "train_loss": 2.3 * 0.6**epoch + 0.05, "train_acc": min(acc + 0.02, 1),
            "val_loss": 2.3 * 0.62**epoch + 0.1 + rng.uniform(0, 0.05), "val_acc": acc,
            "class_acc": {c: acc for c in DIGIT_CLASSES}, "lr": 1e-3, "seconds": 0.4}))
    cm = np.zeros((n, n), dtype=int)
    nprng = np.random.default_rng(seed)
    for i in range(n):
        if i == 7:
            continue
        cm[i] = nprng.multinomial(30, [0.9 if j == i else 0.1 / (n - 1) for j in range(n)])
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    diag = np.diag(cm)
    recall = [float(diag[i] / support[i]) if support[i] else 0.0 for i in range(n)]
    precision = [float(diag[i] / predicted[i]) if predicted[i] else 0.0 for i in range(n)]
    labels = bytes(int(x) for x in nprng.integers(0, n, 64))
    events.append(NewEvent("TrainingCompleted", {
        "epochs_trained": 8, "test_acc": float(diag.sum() / cm.sum()), "test_loss": 0.3,
        "class_names": DIGIT_CLASSES, "class_accuracy": recall,
        "class_ovr_accuracy": [0.9 + r / 10 for r in recall],
        "class_precision": precision, "class_recall": recall, "class_specificity": [0.98] * n,
        "class_support": [int(s) for s in support], "confusion_matrix": cm.tolist(),
        "predictions": base64.b64encode(labels).decode(),
        "predictions_digest": hashlib.sha256(labels).hexdigest(), "latency_ms": 0.05,
        "train_seconds": 3.2}))
    store.append(f"model-{mid}", events)
    Projector(db).catch_up()
    return mid


def study(db: Database, store: EventStore, n_models: int = 48, seed: int = 13) -> str:
    """A study whose models vary several numeric hyperparameters (lr, batch size, epochs, weight
    decay, step gamma) and one categorical one, with parent -> child links of both kinds
    (Hyperband rung promotions and PBT exploits): what the Studies tab's exploration history and
    parallel coordinates need. Its search space is a valid `StudySpace`, so it can be refined."""
    rng = random.Random(seed)
    sid = new_study_id(db)
    space, _ = StudySpace().refined({"lr": "1e-4..1e-2", "batch_size": "32,64,128,256",
                                     "epochs": "2,4,8,12", "weight_decay": "0,0.001,0.01",
                                     "optimizer": "adam,sgd,adamw"})
    store.append(f"study-{sid}", [NewEvent("StudyCreated", {
        "study_id": sid, "dataset_id": "synthetic", "strategy": "random",
        "space": space.to_dict(),
        "objectives": ["acc", "params"], "budget": {"models": n_models}})], expected_version=0)
    ids: list[str] = []
    hps: dict[str, dict[str, Any]] = {}
    items: list[tuple[str, list[NewEvent], int | None]] = []
    for i, mid in enumerate(new_model_ids(db, n_models)):
        parent = rng.choice(ids) if ids and rng.random() < 0.3 else None
        events = model_lifecycle(rng, mid, parent_id=parent, epochs=rng.randint(2, 12))
        proposed = events[0].data
        hp = proposed["hyperparameters"]
        hp.update(lr=10 ** rng.uniform(-4, -2), batch_size=rng.choice([32, 64, 128, 256]),
                  weight_decay=round(rng.uniform(0, 0.01), 5),
                  step_gamma=round(rng.uniform(0.5, 0.95), 3))
        if parent and i % 2:  # a Hyperband survivor: the parent's configuration, the next rung
            hp.update({k: v for k, v in hps[parent].items() if k != "epochs"})
            proposed["proposal"] = {"strategy": "hyperband", "rung": 1, "rung_epochs": 6}
            proposed["changes"] = ["promoted from rung 0 to rung 1 (6 epochs)"]
        elif parent:  # a PBT exploit: the parent's learning rate, perturbed
            hp["lr"] = hps[parent]["lr"] * rng.choice([0.8, 1.25])
            proposed["origin"] = "mutation"
            proposed["proposal"] = {"strategy": "pbt", "member": i % 4}
            proposed["changes"] = ["exploited the parent, lr perturbed"]
        proposed["study_id"] = sid
        hps[mid] = hp
        ids.append(mid)
        items.append((f"model-{mid}", events, None))
    store.append_batch(items)
    Projector(db).catch_up()
    return sid


