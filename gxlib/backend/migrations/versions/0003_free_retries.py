"""Retries that spend no attempt are counted apart from ``attempts`` (SPEC §3.2).

Contention (MVCC/phantom conflicts, differing endorsements), a commit status not known yet and a transport failure
during an outage are retried without spending one of ``max_attempts``. Before, every claim still raised
``attempts``, so a command that had conflicted often had few transport retries left (drill R9's worst command
had used 9 of 10). Now such a retry gives its attempt back and counts in ``free_retries``, which the pause after
contention grows with.

Revision ID: 0003_free_retries
Revises: 0002_idempotency_per_caller
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_free_retries"
down_revision = "0002_idempotency_per_caller"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Adding a column with a default needs no table copy on SQLite, so the dead letters' foreign key is not in the way.
    op.add_column("outbox_commands", sa.Column("free_retries", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    # Plain DROP COLUMN (SQLite >= 3.35, PostgreSQL): a batch copy of the table would trip over the dead letters'
    # foreign key on SQLite.
    op.execute("ALTER TABLE outbox_commands DROP COLUMN free_retries")
