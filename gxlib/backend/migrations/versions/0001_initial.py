"""Initial schema: outbox, dead-letter queue, read models, projector checkpoint.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from gxlib.backend.sqltypes import Uint64, UtcDateTime

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox_commands",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("command_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UtcDateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(200), nullable=True),
        sa.Column("lease_expires_at", UtcDateTime(), nullable=True),
        sa.Column("fabric_tx_id", sa.String(128), nullable=True),
        sa.Column("tx_envelope", sa.LargeBinary(), nullable=True),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("first_submitted_at", UtcDateTime(), nullable=True),
        sa.Column("committed_at", UtcDateTime(), nullable=True),
        sa.CheckConstraint("status IN ('PENDING','PROCESSING','COMMITTED','FAILED','DLQ')",
                           name=op.f("ck_outbox_commands_status")),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_commands_attempts")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_commands")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_outbox_commands_idempotency_key")),
    )
    op.create_index("ix_outbox_commands_claim", "outbox_commands", ["status", "next_attempt_at"])
    op.create_index("ix_outbox_commands_lease", "outbox_commands", ["status", "lease_expires_at"])
    op.create_index(op.f("ix_outbox_commands_fabric_tx_id"), "outbox_commands", ["fabric_tx_id"])

    op.create_table(
        "outbox_dlq",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("command_id", sa.String(36), nullable=False),
        sa.Column("command_type", sa.String(40), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("final_status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("fabric_tx_id", sa.String(128), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("moved_at", UtcDateTime(), nullable=False),
        sa.ForeignKeyConstraint(["command_id"], ["outbox_commands.id"], name=op.f("fk_outbox_dlq_command_id")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_dlq")),
        sa.UniqueConstraint("command_id", name=op.f("uq_outbox_dlq_command_id")),
    )

    op.create_table(
        "user_profiles",
        sa.Column("user_id", sa.String(), nullable=False),
        sa.Column("country_code", sa.String(2), nullable=False),
        sa.Column("display_name", sa.Text(), nullable=False),
        sa.Column("user_number", sa.Integer(), nullable=False),
        sa.Column("genesis_distributed", sa.Boolean(), nullable=False),
        sa.Column("genesis_amount", Uint64(), nullable=True),
        sa.Column("genesis_tier", sa.Integer(), nullable=True),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("created_tx_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_user_profiles")),
    )
    op.create_index(op.f("ix_user_profiles_country_code"), "user_profiles", ["country_code"])

    op.create_table(
        "accounts",
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("balance", Uint64(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("last_tx_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("account_id", name=op.f("pk_accounts")),
    )
    op.create_table(
        "pools",
        sa.Column("pool_id", sa.String(), nullable=False),
        sa.Column("balance", Uint64(), nullable=False),
        sa.Column("minted", Uint64(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("pool_id", name=op.f("pk_pools")),
    )
    op.create_table(
        "countries",
        sa.Column("code", sa.String(2), nullable=False),
        sa.Column("user_count", sa.Integer(), nullable=False),
        sa.Column("initialized_at", UtcDateTime(), nullable=False),
        sa.Column("initialized_tx_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_countries")),
    )
    op.create_table(
        "mint_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tx_id", sa.String(128), nullable=False),
        sa.Column("mint_index", sa.Integer(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("source_event", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(), nullable=False),
        sa.Column("amount", Uint64(), nullable=False),
        sa.Column("amount_coins", Uint64(), nullable=False),
        sa.Column("remark", sa.Text(), nullable=False),
        sa.Column("minted_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mint_events")),
        sa.UniqueConstraint("tx_id", "mint_index", name="uq_mint_events_tx_id_mint_index"),
    )
    op.create_index(op.f("ix_mint_events_account_id"), "mint_events", ["account_id"])
    op.create_table(
        "transfers",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("tx_id", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("from_id", sa.String(), nullable=False),
        sa.Column("to_id", sa.String(), nullable=False),
        sa.Column("amount", Uint64(), nullable=False),
        sa.Column("amount_coins", Uint64(), nullable=False),
        sa.Column("remark", sa.Text(), nullable=False),
        sa.Column("genesis_tier", sa.Integer(), nullable=True),
        sa.Column("transferred_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transfers")),
        sa.UniqueConstraint("tx_id", name=op.f("uq_transfers_tx_id")),
    )
    op.create_index(op.f("ix_transfers_from_id"), "transfers", ["from_id"])
    op.create_index(op.f("ix_transfers_to_id"), "transfers", ["to_id"])
    op.create_table(
        "proposals",
        sa.Column("proposal_id", sa.String(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("proposer_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("submitted_at", UtcDateTime(), nullable=False),
        sa.Column("tx_id", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("proposal_id", name=op.f("pk_proposals")),
    )
    op.create_index(op.f("ix_proposals_proposer_id"), "proposals", ["proposer_id"])
    op.create_table(
        "projector_checkpoint",
        sa.Column("stream", sa.String(64), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_index", sa.Integer(), nullable=False),
        sa.Column("tx_id", sa.String(128), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("stream", name=op.f("pk_projector_checkpoint")),
    )


def downgrade() -> None:
    for table in ("projector_checkpoint", "proposals", "transfers", "mint_events", "countries", "pools", "accounts",
                  "user_profiles", "outbox_dlq", "outbox_commands"):
        op.drop_table(table)
