"""Alembic migrations of the catalog database (run by `Catalog.create_schema`)."""
