"""Alembic migrations of the metadata schema; applied by `shared.adapters.meta_sql.migrate`."""
