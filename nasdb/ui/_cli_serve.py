"""``nasdb ui``: serve the web app."""

from __future__ import annotations

import ipaddress

import click

from nasdb.ui._context import Context, pass_ctx


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@click.command("ui")
@click.option("--port", default=5006, show_default=True, type=int, help="Port to listen on.")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes the app to the network.")
@click.option("--no-browser", is_flag=True, help="Do not open a browser tab.")
@pass_ctx
def ui_command(ctx: Context, port: int, host: str, no_browser: bool) -> None:
    """Serve the web app (overview, query console, inspection, steering, studies, timeline)."""
    if not is_loopback(host):
        click.echo(f"warning: serving on {host}: anyone who reaches this address can read the "
                   "models and queue, cancel and pin jobs. Use --host 127.0.0.1 to keep it "
                   "local.", err=True)
    db = ctx.db
    ctx.wait_projected()
    from nasdb.ui.app import serve

    click.echo(f"nasdb ui on http://{host}:{port}/ (Ctrl+C to stop)", err=True)
    serve(db, port=port, host=host, show=not no_browser)


def register(cli: click.Group) -> None:
    cli.add_command(ui_command)
