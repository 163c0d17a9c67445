"""Idempotency keys are unique per caller, not across all callers (SPEC §3.4, §9).

Before, one operator's command under a predictable key (runbook 03's) made the admin's command with the same key
a 409. Commands enqueued before this revision get the caller ``-`` (``UNSCOPED_CALLER``): the outbox still
finds them by key for any caller, so a repeat across the upgrade stays a repeat.

Revision ID: 0002_idempotency_per_caller
Revises: 0001_initial
Create Date: 2026-12-06
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import sqlalchemy as sa
from alembic import op

revision = "0002_idempotency_per_caller"
down_revision = "0001_initial"
branch_labels = None
depends_on = None

UNSCOPED_CALLER = "-"  # gxlib.backend.models.UNSCOPED_CALLER, frozen here as this revision wrote it


def upgrade() -> None:
    with _dead_letters_set_aside():
        with op.batch_alter_table("outbox_commands") as batch:
            batch.add_column(sa.Column("caller", sa.String(80), nullable=False, server_default=UNSCOPED_CALLER))
            batch.drop_constraint("uq_outbox_commands_idempotency_key", type_="unique")
            batch.create_unique_constraint("uq_outbox_commands_caller", ["caller", "idempotency_key"])
        with op.batch_alter_table("outbox_commands") as batch:
            batch.alter_column("caller", server_default=None)  # new rows name their caller


def downgrade() -> None:
    # Only possible while no key is used by two callers; the unique constraint refuses it otherwise.
    with _dead_letters_set_aside(), op.batch_alter_table("outbox_commands") as batch:
        batch.drop_constraint("uq_outbox_commands_caller", type_="unique")
        batch.create_unique_constraint("uq_outbox_commands_idempotency_key", ["idempotency_key"])
        batch.drop_column("caller")


@contextlib.contextmanager
def _dead_letters_set_aside() -> Iterator[None]:
    """SQLite alters a constraint by copying the table, dropping it and renaming the copy; with foreign keys on
    (the engine turns them on) the drop fails while outbox_dlq rows reference outbox_commands. So on SQLite the
    dead letters wait in a temporary table meanwhile. PostgreSQL alters in place and needs none of this."""
    sqlite = op.get_bind().dialect.name == "sqlite"
    if sqlite:
        op.execute("CREATE TEMPORARY TABLE gx_dlq_aside AS SELECT * FROM outbox_dlq")
        op.execute("DELETE FROM outbox_dlq")
    yield
    if sqlite:
        op.execute("INSERT INTO outbox_dlq SELECT * FROM gx_dlq_aside")
        op.execute("DROP TABLE gx_dlq_aside")
