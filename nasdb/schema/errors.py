"""The one error hierarchy of nasdb.

Every error a person can cause or meet is a `NasdbError` subclass whose message says what went wrong
and what to do next. Driver and library errors are translated at one boundary with
``raise ... from e``; the command line prints ``str(error)`` on one line and exits with
`NasdbError.exit_code`.
"""

from __future__ import annotations


class NasdbError(Exception):
    """Base of every error nasdb raises on purpose."""

    exit_code: int = 1


class DatabaseUnavailable(NasdbError):
    """The database cannot be reached (wrong URL, server down, authentication failed)."""

    exit_code = 3


class SchemaOutOfDate(NasdbError):
    """The database schema is older (or newer) than this code; the message names the fix."""

    exit_code = 3


class ConcurrencyConflict(NasdbError):
    """An append expected a stream version that is no longer current."""

    def __init__(self, stream_id: str, expected: int, actual: int) -> None:
        self.stream_id = stream_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"concurrency conflict on stream {stream_id!r}: expected version {expected}, "
            f"but it is at version {actual}"
        )


class InvalidEvent(NasdbError):
    """An event's type is unknown or its payload does not match the type's schema."""

    exit_code = 2


class InvalidArchitecture(NasdbError):
    """An architecture does not fit its input: the message names the layer index, type and shapes."""

    exit_code = 2


class DatasetError(NasdbError):
    """A dataset is missing, unreadable or corrupt."""

    exit_code = 2


class NotFound(NasdbError):
    """A named thing (model, study, dataset) does not exist."""

    exit_code = 2


class InvalidRequest(NasdbError):
    """A request that cannot be carried out as asked (bad flag values, frozen layer, zero budget)."""

    exit_code = 2


class QuerySyntaxError(NasdbError):
    """A query that does not parse or names unknown fields; the message carries a caret line."""

    exit_code = 2

    def __init__(self, message: str, *, text: str = "", column: int | None = None) -> None:
        self.text = text
        self.column = column
        super().__init__(message)


class DatasetNotChosen(NasdbError):
    """A ranking (``pareto``, ``top``) over models of several datasets: accuracies of different
    datasets do not compare, so the query must name one. `datasets` lists the choices."""

    exit_code = 2

    def __init__(self, verb: str, datasets: tuple[str, ...]) -> None:
        self.verb = verb
        self.datasets = datasets
        super().__init__(
            f"{verb} ranks the models of one dataset, and {len(datasets)} datasets exist: "
            f"{', '.join(datasets)}; add dataset=NAME, e.g. '{verb} dataset={datasets[0]}'"
        )


class LeaseLost(NasdbError):
    """A worker's lease on a job was taken over by another worker; its results are fenced off."""


class TrainingError(NasdbError):
    """Training a model failed (NaN loss, out of memory, ...)."""
