"""Database commands: init, status, events, replay, project, sql."""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any

import click

from nasdb.ui._context import Context, format_option, pass_ctx
from nasdb.ui._output import emit

_BIGINT_MAX = 2**63 - 1  # log positions and LIMIT are bigint


@click.command()
@pass_ctx
def init(ctx: Context) -> None:
    """Create the database schema (or upgrade it to the newest revision)."""
    from nasdb.migrations.runner import current_revision

    db = ctx.db
    click.echo(f"database {db.display_url} is at schema revision {current_revision(db)}")


@click.command()
@format_option
@pass_ctx
def status(ctx: Context, fmt: str) -> None:
    """Show the database, its schema revision, what it holds, the projection's lag and the
    events the projector could not apply."""
    from nasdb.ingest import projection_status
    from nasdb.migrations.runner import current_revision, head_revision
    from nasdb.read import holdings, models_by_status, recent_projection_failures

    db = ctx.db
    counts = holdings(db)
    by_status = models_by_status(db)
    failures = recent_projection_failures(db, limit=5)
    projection = projection_status(db)
    row: dict[str, Any] = {
        "database": db.display_url,
        "schema_revision": current_revision(db),
        "schema_head": head_revision(),
        "last_position": projection["last_position"],
        "projected_to": projection["projected_to"],
        "projection_lag": projection["lag"],
        "projectors": projection["projectors"],
        "projection_failures": projection["failures"],
        **counts,
        **{f"models_{k}": v for k, v in sorted(by_status.items())},
    }
    for f in failures:
        row[f"failure_{f.position}"] = f"{f.type} in {f.stream_id} ({f.handler}): {f.message}"
    if fmt == "table":
        emit([{"key": k, "value": v} for k, v in row.items()], ["key", "value"], fmt)
    else:
        emit([row], list(row), fmt)


@click.command()
@click.option("--stream", help="Only this stream (e.g. model-m3) or prefix ending in '*'.")
@click.option("--type", "types", multiple=True, help="Only events of this type (repeatable).")
@click.option("--after", default=0, show_default=True, type=click.IntRange(0, _BIGINT_MAX),
              help="Start after this position.")
@click.option("--limit", type=click.IntRange(1, _BIGINT_MAX), default=None,
              help="At most this many events.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events as they come.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "json", "csv", "jsonl"]), default="table",
    show_default=True, help="Output format.",
)
@pass_ctx
def events(
    ctx: Context, stream: str | None, types: tuple[str, ...], after: int, limit: int | None,
    follow: bool, fmt: str,
) -> None:
    """List events from the log (newest last), optionally following it."""
    from nasdb.ingest import dumps

    store = ctx.store
    prefix = stream[:-1] if stream and stream.endswith("*") else None
    exact = stream if stream and prefix is None else None

    def fetch(position: int) -> list[Any]:
        if exact:
            page = [e for e in store.read_stream(exact) if e.position > position]
            page = [e for e in page if not types or e.type in types]
            return page[:limit] if limit else page
        return list(store.read_all(position, limit, types=list(types) or None,
                                   stream_prefix=prefix))

    def show(page: list[Any]) -> None:
        if fmt == "jsonl":
            for e in page:
                click.echo(dumps(e))
            return
        rows = [
            {"position": e.position, "stream": e.stream_id, "version": e.version, "type": e.type,
             "actor": e.metadata.get("actor"), "recorded_at": e.recorded_at,
             "data": json.dumps(e.data, default=str)[:80] if fmt == "table" else e.data}
            for e in page
        ]
        emit(rows, ["position", "stream", "version", "type", "actor", "recorded_at", "data"], fmt)

    page = fetch(after)
    show(page)
    if not follow:
        return
    fmt = "jsonl" if fmt != "table" else fmt
    position = page[-1].position if page else max(after, store.last_position())
    try:
        while True:
            time.sleep(0.5)
            page = fetch(position)
            if page:
                show(page)
                position = page[-1].position
    except KeyboardInterrupt:
        return


@click.command()
@pass_ctx
def replay(ctx: Context) -> None:
    """Rebuild every read model from the event log."""
    from rich.progress import Progress

    from nasdb.ingest import Projector

    total = ctx.store.last_position()
    start = time.perf_counter()
    with Progress(transient=True) as progress:
        task = progress.add_task("replaying", total=total or 1)
        n = Projector(ctx.db).replay(on_batch=lambda done: progress.update(task, completed=done))
    click.echo(f"replayed {n} events into the read models in {time.perf_counter() - start:.1f}s")


@click.command()
@click.option("--follow", "-f", is_flag=True,
              help="Run the projector service in the foreground until Ctrl+C.")
@pass_ctx
def project(ctx: Context, follow: bool) -> None:
    """Apply the events the read models lack (a projector service does this continuously: one
    runs in every worker and web app, and each command starts one when none is alive)."""
    from nasdb.ingest import Projector, ProjectorService

    if follow:
        service = ProjectorService(ctx.db)  # reads its settings first: a bad one is one line
        click.echo("projecting; Ctrl+C to stop", err=True)
        with contextlib.suppress(KeyboardInterrupt):
            service.run()
        click.echo(f"projected {service.projected} events")
        return
    click.echo(f"projected {Projector(ctx.db).catch_up()} events")


@click.command()
@click.argument("statement")
@format_option
@pass_ctx
def sql(ctx: Context, statement: str, fmt: str) -> None:
    """Run one read-only SQL statement against the public views (as the nasdb_sql role)."""
    from nasdb.ui._readonly_sql import run_readonly

    columns, rows = run_readonly(ctx.db, statement)
    emit(rows, columns, fmt)


def register(cli: click.Group) -> None:
    for command in (init, status, events, replay, project, sql):
        cli.add_command(command)
