"""PostgreSQL tells the outbox-submitter when a command is enqueued (LISTEN/NOTIFY), so it need not wait for its poll.

A row inserted into ``outbox_commands`` sends a notification on the channel ``gx_outbox`` when its transaction
commits (``gxlib.backend.arrivals`` listens). PostgreSQL folds identical notifications of one transaction into one,
so a batch of enqueues wakes the submitter once. Nothing on SQLite: it has no notifications, and the submitter
polls it as before.

Revision ID: 0004_outbox_notify
Revises: 0003_free_retries
Create Date: 2026-12-07
"""

from __future__ import annotations

from alembic import op

revision = "0004_outbox_notify"
down_revision = "0003_free_retries"
branch_labels = None
depends_on = None

# The channel is gxlib.backend.arrivals.CHANNEL as of this revision (a migration does not import the code it outlives).
_CHANNEL = "gx_outbox"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"""
        CREATE FUNCTION gx_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{_CHANNEL}', '');
            RETURN NULL;
        END
        $$""")
    op.execute("CREATE TRIGGER outbox_commands_notify AFTER INSERT ON outbox_commands "
               "FOR EACH ROW EXECUTE FUNCTION gx_outbox_notify()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER IF EXISTS outbox_commands_notify ON outbox_commands")
    op.execute("DROP FUNCTION IF EXISTS gx_outbox_notify()")
