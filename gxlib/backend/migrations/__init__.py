"""Alembic migrations of the backend database, run programmatically (``gxlib.backend.db.migrate``)."""
