"""Run Alembic programmatically against a `Database` (no alembic.ini needed).

`nasdb init` and every command call `Database.ensure_schema`, which uses `upgrade` here; the same
environment serves ``alembic`` on the command line through ``migrations/alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

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
