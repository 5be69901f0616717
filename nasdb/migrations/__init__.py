"""nasdb.migrations: the Alembic environment."""
