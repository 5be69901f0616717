"""Run Alembic programmatically against a `Database` (no alembic.ini needed).

`nasdb init` and every command call `ensure_schema`, which uses `upgrade` here; the same
environment serves ``alembic`` on the command line through ``migrations/alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from nasdb.schema.errors import DatabaseUnavailable, SchemaOutOfDate

if TYPE_CHECKING:
    from nasdb.schema.db import Database

HERE = Path(__file__).parent


def config(db: Database | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    if db is not None:
        cfg.attributes["database"] = db
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(config()).get_current_head()
    assert head is not None
    return head


def all_revisions() -> list[str]:
    return [r.revision for r in ScriptDirectory.from_config(config()).walk_revisions()]


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def schema_state(db: Database) -> tuple[str | None, str | None]:
    """The database's schema revision and event-catalogue fingerprint (None when absent)."""
    with db.connect() as conn:
        exists = conn.execute("select to_regclass('alembic_version') is not null").fetchone()
        if not exists or not exists[0]:
            return None, None
        row = conn.execute("select version_num from alembic_version").fetchone()
        revision = row[0] if row else None
        has = conn.execute("select to_regclass('nasdb_catalogue') is not null").fetchone()
        if not has or not has[0]:
            return revision, None
        found = conn.execute("select fingerprint from nasdb_catalogue").fetchone()
    return revision, found[0] if found else None


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(config(db), revision)


def downgrade(db: Database, revision: str = "base") -> None:
    command.downgrade(config(db), revision)


def ensure_schema(db: Database) -> None:
    """Bring the schema and its event catalogue to head (once per handle), as the owner; refuse
    a schema newer than this code. `SchemaOutOfDate` when the schema is behind and ``db`` knows
    no owner that may migrate it (the message names NASDB_OWNER_URL)."""
    if db.schema_checked:
        return
    from nasdb.schema.catalogue_sql import fingerprint

    # The embedded server's application role exists only once the owner has migrated.
    probe = db.owner() if db.embedded else db
    try:
        current, catalogue = schema_state(probe)
    except DatabaseUnavailable:
        if probe.url == db.owner_url:
            raise
        # the everyday role may not exist yet on a fresh server: the first migration creates it
        current, catalogue = schema_state(db.owner())
    if current != head_revision() or catalogue != fingerprint():
        if current is not None and current not in set(all_revisions()):
            raise SchemaOutOfDate(
                f"the database at {db.display_url} is at schema revision {current}, which "
                "this nasdb does not know (it is newer); upgrade nasdb: pip install -U nasdb"
            )
        _migrate(db, current)
    db.schema_checked = True


def _migrate(db: Database, current: str | None) -> None:
    owner = db.owner()
    try:
        upgrade(owner)
    except DBAPIError as e:
        if not isinstance(e.orig, psycopg.errors.InsufficientPrivilege):
            raise
        raise SchemaOutOfDate(
            f"the database at {db.display_url} is at schema revision {current} (or its event "
            "catalogue is older than this code) and this role may not migrate it: run `nasdb "
            "init` with NASDB_OWNER_URL set to the schema owner's URL"
        ) from e
    finally:
        if owner is not db:
            owner.engine.dispose()
