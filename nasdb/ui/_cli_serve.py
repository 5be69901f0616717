"""``nasdb ui``: serve the web app."""

from __future__ import annotations

import click

from nasdb.schema import settings
from nasdb.schema.errors import InvalidRequest
from nasdb.ui._context import Context, pass_ctx


@click.command("ui")
@click.option("--port", type=click.IntRange(1, 65535), default=None,
              help="Port to listen on (default NASDB_PORT, 5006).")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback needs NASDB_UI_AUTH_FILE.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
@pass_ctx
def ui_command(ctx: Context, port: int | None, host: str, no_browser: bool) -> None:
    """Serve the web app (overview, query console, inspection, steering, studies, timeline)."""
    from nasdb.ui.app._auth import load_auth

    port = port or settings.integer("port")
    if port > 65535:
        raise InvalidRequest(f"NASDB_PORT={port} is not a port (1-65535)")
    auth = load_auth(host)  # refuses a non-loopback address without sign-in, before any work
    settings.number("poll_seconds")  # the server's projector follows the log at this pace
    settings.statement_timeout_ms()  # every console query runs under it
    db = ctx.db
    ctx.wait_projected()
    from nasdb.ui.app import serve

    who = "sign-in required" if auth is not None else "no sign-in: loopback only"
    click.echo(f"nasdb ui on http://{host}:{port}/ ({who}; Ctrl+C to stop)", err=True)
    serve(db, port=port, host=host, show=not no_browser)


def register(cli: click.Group) -> None:
    cli.add_command(ui_command)
