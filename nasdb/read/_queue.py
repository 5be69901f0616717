"""Reads of the training queue (the `jobs` view, with each job's study): what a worker may claim.

The worker's claim itself is decided on the model's event stream (`nasdb.trainers.worker`); these
reads only say which jobs are worth looking at, and how many are waiting or running.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from nasdb.schema.db import Database
from nasdb.schema.vocabulary import JobState

__all__ = ["claimable_jobs", "count_jobs"]


def count_jobs(db: Database, states: Sequence[JobState]) -> int:
    """How many jobs are in one of ``states``."""
    with db.connect() as conn:
        row = conn.execute("select count(*) from jobs where state = any(%s)",
                           (list(states),)).fetchone()
    return int(row[0]) if row else 0


def claimable_jobs(db: Database, *, skip: Collection[str] = (), limit: int = 20) -> list[str]:
    """Model ids of the jobs a worker may claim now, best first: queued, or claimed with a lease
    that ran out (by the database's clock), never of a paused, stopped or finished study, and none
    of ``skip``; by priority (highest first), then queue time, then id."""
    with db.connect() as conn:
        rows = conn.execute(
            """select j.model_id from jobs j left join studies s on s.id = j.study_id
               where (j.state = 'queued'
                      or (j.state = 'claimed' and j.lease_expires_at < now()))
                 and coalesce(s.state, 'running') not in ('paused', 'stopped', 'done')
                 and not (j.model_id = any(%s))
               order by j.priority desc, j.queued_at, j.model_id
               limit %s""",
            (list(skip), limit),
        ).fetchall()
    return [r[0] for r in rows]
