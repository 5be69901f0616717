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
        """The database, at the newest schema, with a projector following its log."""
        from nasdb.ingest import ensure_projector

        db = Database(self._url)
        ensure_schema(db)
        ensure_projector(db)
        return db

    @cached_property
    def store(self) -> Any:
        from nasdb.ingest import EventStore

        return EventStore(db=self.db)

    def wait_projected(self) -> None:
        """Wait until the read models include every event appended so far (this command's own
        included); writes nothing. Warns, and goes on with what is there, after a timeout."""
        from nasdb.ingest import ProjectionBehind, wait_projected

        try:
            wait_projected(self.db)
        except ProjectionBehind as e:
            click.echo(f"warning: {e}", err=True)


pass_ctx = click.make_pass_decorator(Context)
