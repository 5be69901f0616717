"""Content-addressed blobs in the database: write once, reference by ``sha256:<hex>`` in events.

Checkpoints (for PBT's exploit step and resumed training) and fitted recommenders live here, so
any worker that reaches the database can load what another worker stored. A blob is immutable:
writing the same bytes twice stores them once.
"""

from __future__ import annotations

import hashlib

from nasdb.schema.db import Database
from nasdb.schema.errors import NotFound

PREFIX = "sha256:"


def put_artifact(db: Database, content: bytes, kind: str) -> str:
    """Store ``content`` (idempotent) and return its reference ``sha256:<hex>``."""
    digest = hashlib.sha256(content).hexdigest()
    with db.connect() as conn:
        conn.execute(
            "insert into artifacts (sha256, kind, size, content) values (%s, %s, %s, %s) "
            "on conflict (sha256) do nothing",
            (digest, kind, len(content), content),
        )
        conn.commit()
    return PREFIX + digest


def get_artifact(db: Database, reference: str) -> bytes:
    """The bytes behind a reference; `NotFound` when nothing was stored under it."""
    digest = reference.removeprefix(PREFIX)
    with db.connect() as conn:
        row = conn.execute("select content from artifacts where sha256 = %s", (digest,)).fetchone()
    if row is None:
        raise NotFound(f"no artifact {reference} in the database")
    return bytes(row[0])
