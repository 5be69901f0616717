"""`retrying` waits out a database that is away, whichever layer reports it, and nothing else."""

from __future__ import annotations

from collections.abc import Callable

import psycopg
import pytest
import sqlalchemy.exc

from nasdb.schema.errors import DatabaseUnavailable
from nasdb.schema.resilience import retrying


def _flaky(error: Exception, failures: int) -> tuple[list[int], Callable[[], str]]:
    calls: list[int] = []

    def action() -> str:
        calls.append(1)
        if len(calls) <= failures:
            raise error
        return "done"

    return calls, action


@pytest.mark.parametrize("error", [
    psycopg.OperationalError("server closed the connection unexpectedly"),
    # what the read side's SQLModel sessions raise for the same broken connection
    sqlalchemy.exc.OperationalError("select 1", {}, psycopg.OperationalError("server closed")),
    DatabaseUnavailable("no server"),
])
def test_a_lost_database_is_waited_out_and_said_twice(error: Exception) -> None:
    said: list[str] = []
    calls, action = _flaky(error, 2)
    assert retrying(action, what="reading", log=said.append, window=60,
                    sleep=lambda s: None) == "done"
    assert len(calls) == 3
    assert said[0].startswith("lost the database while reading")
    assert said[1].startswith("the database is back after")


def test_other_errors_pass_through_at_once() -> None:
    error = sqlalchemy.exc.IntegrityError("insert", {}, psycopg.errors.UniqueViolation("dup"))
    calls, action = _flaky(error, 1)
    with pytest.raises(sqlalchemy.exc.IntegrityError):
        retrying(action, what="writing", log=lambda m: None, window=60, sleep=lambda s: None)
    assert len(calls) == 1
