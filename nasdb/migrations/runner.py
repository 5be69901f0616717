"""Run Alembic programmatically against a `Database` (no alembic.ini needed).

`nasdb init` and every command call `ensure_schema`, which uses `upgrade` here; the same
environment serves ``alembic`` on the command line through ``migrations/alembic.ini``.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from nasdb.schema.errors import SchemaOutOfDate

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


def upgrade(db: Database, revision: str = "head") -> None:
    command.upgrade(config(db), revision)


def downgrade(db: Database, revision: str = "base") -> None:
    command.downgrade(config(db), revision)


def ensure_schema(db: Database) -> None:
    """Bring the schema to head (once per handle); refuse a schema newer than this code."""
    if db.schema_checked:
        return
    current = current_revision(db)
    head = head_revision()
    if current != head:
        known = set(all_revisions())
        if current is not None and current not in known:
            raise SchemaOutOfDate(
                f"the database at {db.display_url} is at schema revision {current}, which "
                "this nasdb does not know (it is newer); upgrade nasdb: pip install -U nasdb"
            )
        upgrade(db)
    db.schema_checked = True
