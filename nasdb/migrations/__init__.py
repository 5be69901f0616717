"""nasdb.migrations: the Alembic environment, and bringing a database's schema to head."""

from nasdb.migrations.runner import ensure_schema

__all__ = ["ensure_schema"]
