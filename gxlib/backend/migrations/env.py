"""Alembic environment: always run on a connection handed in by ``gxlib.backend.db.migrate``."""

from __future__ import annotations

from alembic import context

from gxlib.backend.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through gxlib.backend.db.migrate (or `gx backend migrate`)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True,
                  compare_type=True)
with context.begin_transaction():
    context.run_migrations()
