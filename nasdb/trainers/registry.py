"""Registering datasets (DatasetRegistered) and loading a registered dataset back from the log.

A dataset's stream holds everything needed to load exactly the same data again (kind, source path,
validation-split seed, image limit) and its content fingerprint; `load_registered` refuses a dataset
whose files changed since registration.
"""

from __future__ import annotations

import re
from typing import Any

from nasdb.ingest import EventStore, NewEvent
from nasdb.schema.errors import DatasetError, NotFound
from nasdb.schema.events import DatasetRegistered
from nasdb.trainers.datasets import LoadedDataset, load_dataset

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,62}$")


def register_dataset(
    store: EventStore,
    kind: str,
    name: str | None = None,
    path: str | None = None,
    val_seed: int = 0,
    limit: int | None = None,
) -> str:
    """Load the dataset (checking it), append DatasetRegistered, return its id (= its name).

    Registering the same name again with the same content is a no-op; with different content
    (another path, seed or limit) it appends a new DatasetRegistered that replaces the old one.
    Raises `DatasetError` for a missing or corrupt dataset or an invalid name.
    """
    data = load_dataset(kind, path, val_seed=val_seed, limit=limit)
    dataset_id = (name or data.kind).lower()
    if not _NAME.match(dataset_id):
        raise DatasetError(
            f"dataset name {dataset_id!r} is invalid: use lower-case letters, digits, '.', '_' or "
            "'-' (at most 63 characters)"
        )
    c, h, w = data.input_shape
    sizes = data.split_sizes
    payload = DatasetRegistered(
        dataset_id=dataset_id,
        name=dataset_id,
        kind=data.kind,
        source=data.source,
        fingerprint=data.fingerprint,
        shape=[c, h, w],
        classes=list(data.class_names),
        train_size=sizes["train"],
        val_size=sizes["val"],
        test_size=sizes["test"],
        val_seed=val_seed,
        limit=limit,
        hflip=data.hflip,
    )
    key = f"registered-{data.fingerprint[:16]}-{val_seed}-{limit}-{data.source}-v2"
    store.append(f"dataset-{dataset_id}", [NewEvent.of(payload, idempotency_key=key)])
    return dataset_id


def registration(store: EventStore, dataset_id: str) -> dict[str, Any]:
    """The latest DatasetRegistered payload of a dataset; `NotFound` when never registered."""
    events = [e for e in store.read_stream(f"dataset-{dataset_id}")
              if e.type == "DatasetRegistered"]
    if not events:
        raise NotFound(f"dataset {dataset_id!r} is not registered; register it with: "
                       f"nasdb dataset add {dataset_id}")
    return events[-1].data


def load_registered(store: EventStore, dataset_id: str) -> LoadedDataset:
    """Load a registered dataset exactly as registered; refuse it if its content changed."""
    reg = registration(store, dataset_id)
    path = None if reg["kind"] == "digits" else reg["source"]
    data = load_dataset(reg["kind"], path, val_seed=reg["val_seed"], limit=reg.get("limit"))
    if data.fingerprint != reg["fingerprint"]:
        raise DatasetError(
            f"dataset {dataset_id!r} changed since it was registered: {reg['source']} has "
            f"fingerprint {data.fingerprint[:12]}, registered {reg['fingerprint'][:12]}; "
            f"register it again under a new name (nasdb dataset add {reg['kind']} --name NEW)"
        )
    return data
