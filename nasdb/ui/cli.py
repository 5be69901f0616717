"""The ``nasdb`` command line: one group, subcommands registered from small modules.

Every error nasdb raises on purpose (`NasdbError`) is printed as one line on stderr, with the
error's exit code (a malformed query as its "query error at column N" message with the caret
lines); nothing a person can cause ends in a traceback.
"""

from __future__ import annotations

import sys

import click

from nasdb.schema.errors import NasdbError, QuerySyntaxError
from nasdb.ui._context import Context


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--database-url",
    envvar="NASDB_DATABASE_URL",
    default=None,
    help="PostgreSQL URL (env NASDB_DATABASE_URL); unset = the embedded server.",
)
@click.version_option(package_name="nasdb")
@click.pass_context
def cli(ctx: click.Context, database_url: str | None) -> None:
    """nasdb: an event-sourced research database for finding neural-network classifiers."""
    ctx.obj = Context(database_url)


def _register() -> None:
    from nasdb.ui import _cli_db

    _cli_db.register(cli)
    for name in ("_cli_models", "_cli_query", "_cli_steer", "_cli_study", "_cli_recommend",
                 "_cli_serve", "_cli_sessions"):
        try:
            module = __import__(f"nasdb.ui.{name}", fromlist=["register"])
        except ModuleNotFoundError as e:
            if e.name != f"nasdb.ui.{name}":
                raise
            continue
        module.register(cli)


_register()


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``nasdb`` console script."""
    try:
        code = cli.main(args=argv, prog_name="nasdb", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as e:  # usage errors: one line, naming the help to read
        command = e.ctx.command_path if isinstance(e, click.UsageError) and e.ctx else "nasdb"
        click.echo(f"error: {e.format_message()} (see: {command} --help)", err=True)
        sys.exit(e.exit_code)
    except QuerySyntaxError as e:  # already "query error at column N: ..." with a caret below
        click.echo(str(e), err=True)
        sys.exit(e.exit_code)
    except NasdbError as e:
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
