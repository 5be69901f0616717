"""Alembic environment: runs revisions online against the `Database` handed in by the runner.

After the revisions, the event catalogue the database enforces is rewritten from the payload
classes when it differs (`nasdb.schema.catalogue_sql`), so a new event type needs no revision.
"""

from __future__ import annotations

from alembic import context

from nasdb.schema import catalogue_sql
from nasdb.schema.db import Database

cfg = context.config
db = cfg.attributes.get("database") or Database(cfg.get_main_option("sqlalchemy.url") or None)
db = db.owner()

with db.engine.begin() as connection:
    # One migrator at a time, whoever starts first; the others then find the schema at head.
    connection.exec_driver_sql("select pg_advisory_xact_lock(7365812)")
    context.configure(connection=connection, transaction_per_migration=False)
    with context.begin_transaction():
        context.run_migrations()
    catalogue_sql.sync_if_present(connection)
