"""Short, readable ids from database sequences: ``m1``, ``m2``, ... and ``s1``, ``s2``, ..."""

from __future__ import annotations

from nasdb.schema.db import Database


def new_model_ids(db: Database, n: int = 1) -> list[str]:
    """``n`` fresh model ids (never reused, even if the proposal is never appended)."""
    with db.connect(autocommit=True) as conn:
        rows = conn.execute(
            "select nextval('model_ids') from generate_series(1, %s)", (n,)
        ).fetchall()
    return [f"m{r[0]}" for r in rows]


def new_model_id(db: Database) -> str:
    return new_model_ids(db, 1)[0]


def new_study_id(db: Database) -> str:
    with db.connect(autocommit=True) as conn:
        row = conn.execute("select nextval('study_ids')").fetchone()
    assert row is not None
    return f"s{row[0]}"
