"""What every command shares: the lazily created database handle and common options."""

from __future__ import annotations

from functools import cached_property
from typing import Any

import click

from nasdb.migrations import ensure_schema
from nasdb.schema import Database

format_option = click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "csv"]),
    default="table",
    show_default=True,
    help="Output format.",
)


class Context:
    """What every command needs, created on first use (so `--help` never touches a database)."""

    def __init__(self, url: str | None) -> None:
        self._url = url

    @cached_property
    def db(self) -> Database:
        db = Database(self._url)
        ensure_schema(db)
        return db

    @cached_property
    def store(self) -> Any:
        from nasdb.ingest import EventStore

        return EventStore(db=self.db)

    def project(self) -> int:
        """Bring the read models up to date with the log."""
        from nasdb.ingest import Projector

        return Projector(self.db).catch_up()


pass_ctx = click.make_pass_decorator(Context)
