"""The backend's tables (SQLAlchemy 2): the outbox (SPEC §3.2), its dead-letter queue and the read models of
SPEC §3.3. Alembic migrations in ``migrations/`` create exactly these; a test checks they agree."""

from __future__ import annotations

import datetime as dt
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from gxlib.backend.sqltypes import Uint64, UtcDateTime

NAMING = {"ix": "ix_%(column_0_label)s", "uq": "uq_%(table_name)s_%(column_0_name)s",
          "ck": "ck_%(table_name)s_%(constraint_name)s", "fk": "fk_%(table_name)s_%(column_0_name)s",
          "pk": "pk_%(table_name)s"}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class CommandStatus(StrEnum):
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMMITTED = "COMMITTED"
    FAILED = "FAILED"
    DLQ = "DLQ"


TERMINAL_STATUSES = (CommandStatus.COMMITTED, CommandStatus.FAILED, CommandStatus.DLQ)

# The caller of commands enqueued before idempotency keys were scoped per caller (migration 0002): their keys
# stay one namespace that every caller's repeat still finds, so an upgrade never turns a retry into a second
# command.
UNSCOPED_CALLER = "-"


# --- write side ------------------------------------------------------------------------------------------------
class OutboxCommand(Base):
    __tablename__ = "outbox_commands"
    __table_args__ = (
        CheckConstraint("status IN ('PENDING','PROCESSING','COMMITTED','FAILED','DLQ')", name="status"),
        CheckConstraint("attempts >= 0", name="attempts"),
        Index("ix_outbox_commands_claim", "status", "next_attempt_at"),
        Index("ix_outbox_commands_lease", "status", "lease_expires_at"),
        # An idempotency key is unique per caller: two callers' equal keys are two commands.
        UniqueConstraint("caller", "idempotency_key"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    command_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    # Who enqueued it: the API's token fingerprint (``token:…``), ``UNSCOPED_CALLER`` for commands older than
    # migration 0002, or the name an in-process caller passes.
    caller: Mapped[str] = mapped_column(String(80))
    status: Mapped[str] = mapped_column(String(16), default=CommandStatus.PENDING)
    # Claims that counted against max_attempts; a retry that spends none (contention, a commit status not known yet,
    # an outage) gives its claim back and is counted in free_retries instead.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    free_retries: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    # Fixed and stored before the first submit; with the signed envelope, so a re-send is the same transaction.
    fabric_tx_id: Mapped[str | None] = mapped_column(String(128), index=True)
    tx_envelope: Mapped[bytes | None] = mapped_column(LargeBinary)
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    first_submitted_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)
    committed_at: Mapped[dt.datetime | None] = mapped_column(UtcDateTime)


class DeadLetter(Base):
    """A copy of every command that ended FAILED (chaincode rejection) or DLQ (attempts exhausted)."""

    __tablename__ = "outbox_dlq"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    command_id: Mapped[str] = mapped_column(ForeignKey("outbox_commands.id"), unique=True)
    command_type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    idempotency_key: Mapped[str] = mapped_column(String(200))
    final_status: Mapped[str] = mapped_column(String(16))
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(Text)
    fabric_tx_id: Mapped[str | None] = mapped_column(String(128))
    attempts: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    moved_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# --- read side -------------------------------------------------------------------------------------------------
class UserProfile(Base):
    __tablename__ = "user_profiles"

    user_id: Mapped[str] = mapped_column(String, primary_key=True)
    country_code: Mapped[str] = mapped_column(String(2), index=True)
    display_name: Mapped[str] = mapped_column(Text)
    user_number: Mapped[int] = mapped_column(Integer)
    genesis_distributed: Mapped[bool] = mapped_column(Boolean, default=False)
    genesis_amount: Mapped[int | None] = mapped_column(Uint64)
    genesis_tier: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    created_tx_id: Mapped[str] = mapped_column(String(128))


class Account(Base):
    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String, primary_key=True)
    balance: Mapped[int] = mapped_column(Uint64)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_tx_id: Mapped[str] = mapped_column(String(128))


class Pool(Base):
    __tablename__ = "pools"

    pool_id: Mapped[str] = mapped_column(String, primary_key=True)
    balance: Mapped[int] = mapped_column(Uint64)
    minted: Mapped[int] = mapped_column(Uint64)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Country(Base):
    __tablename__ = "countries"

    code: Mapped[str] = mapped_column(String(2), primary_key=True)
    user_count: Mapped[int] = mapped_column(Integer, default=0)
    initialized_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    initialized_tx_id: Mapped[str] = mapped_column(String(128))


class MintEvent(Base):
    """One row per mint: a CoinsMinted event, or one entry of SystemBootstrapped's ``mints`` (SPEC §2.3)."""

    __tablename__ = "mint_events"
    __table_args__ = (UniqueConstraint("tx_id", "mint_index", name="uq_mint_events_tx_id_mint_index"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_id: Mapped[str] = mapped_column(String(128))
    mint_index: Mapped[int] = mapped_column(Integer)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_index: Mapped[int] = mapped_column(Integer)
    source_event: Mapped[str] = mapped_column(String(40))
    account_id: Mapped[str] = mapped_column(String, index=True)
    amount: Mapped[int] = mapped_column(Uint64)
    amount_coins: Mapped[int] = mapped_column(Uint64)
    remark: Mapped[str] = mapped_column(Text)
    minted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Transfer(Base):
    """Units moved between accounts: ``TRANSFER`` (TransferEvent) or ``GENESIS`` (GenesisDistributed)."""

    __tablename__ = "transfers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    tx_id: Mapped[str] = mapped_column(String(128), unique=True)
    kind: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_index: Mapped[int] = mapped_column(Integer)
    from_id: Mapped[str] = mapped_column(String, index=True)
    to_id: Mapped[str] = mapped_column(String, index=True)
    amount: Mapped[int] = mapped_column(Uint64)
    amount_coins: Mapped[int] = mapped_column(Uint64)
    remark: Mapped[str] = mapped_column(Text)
    genesis_tier: Mapped[int | None] = mapped_column(Integer)
    transferred_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class Proposal(Base):
    __tablename__ = "proposals"

    proposal_id: Mapped[str] = mapped_column(String, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text)
    proposer_id: Mapped[str] = mapped_column(String, index=True)
    status: Mapped[str] = mapped_column(String(16))
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    tx_id: Mapped[str] = mapped_column(String(128))


class ProjectorCheckpoint(Base):
    """Where the projector is: the last applied event's block number and transaction index (one row per stream)."""

    __tablename__ = "projector_checkpoint"

    stream: Mapped[str] = mapped_column(String(64), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    tx_index: Mapped[int] = mapped_column(Integer)
    tx_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


READ_MODEL_TABLES: tuple[type[Base], ...] = (UserProfile, Account, Pool, Country, MintEvent, Transfer, Proposal,
                                             ProjectorCheckpoint)
