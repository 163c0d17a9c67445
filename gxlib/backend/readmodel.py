"""The read models (SPEC §3.3): how each chaincode event changes them, and the queries the API serves.

Handlers run inside the projector's transaction; they never commit. Balances are uint64 and checked: a
projection that would take a balance below zero or past 2**64-1 raises, because the read model would be
wrong (the projector then retries the event and never skips it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from gxlib.backend.eventsource import ChaincodeEvent
from gxlib.backend.models import (
    Account,
    Country,
    MintEvent,
    Pool,
    ProjectorCheckpoint,
    Proposal,
    Transfer,
    UserProfile,
)
from gxlib.backend.sqltypes import UINT64_MAX


class ReadModelInconsistency(ValueError):
    """An event does not fit the read model (e.g. a debit below zero)."""


Row = TypeVar("Row")


def _new(session: Session, model: type[Row], **values: Any) -> Row:
    """A new ``model`` row with ``values``, added to ``session``. A store with its own ``new_row`` (the projector's
    and the replay's :class:`~gxlib.backend.rowstore.RowStore`) makes the row itself: building ORM instances was
    most of an event's cost there, and nothing in a handler needs more than the row's attributes."""
    make = getattr(session, "new_row", None)
    if make is not None:
        return make(model, values)  # type: ignore[no-any-return]
    row = model(**values)
    session.add(row)
    return row


def is_pool(account_id: str) -> bool:
    return account_id.startswith("SYSTEM_") and account_id.endswith("_POOL")


def tx_time(payload: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromtimestamp(int(payload["timestamp"]), tz=dt.UTC)


def _account(session: Session, account_id: str, when: dt.datetime, tx_id: str) -> Account:
    account = session.get(Account, account_id)
    if account is None:
        account = _new(session, Account, account_id=account_id, balance=0, updated_at=when, last_tx_id=tx_id)
    return account


def _credit(session: Session, account_id: str, amount: int, when: dt.datetime, tx_id: str, *,
            minted: bool = False) -> None:
    account = _account(session, account_id, when, tx_id)
    if account.balance + amount > UINT64_MAX:
        raise ReadModelInconsistency(f"crediting {amount} to {account_id} overflows uint64")
    account.balance += amount
    account.updated_at, account.last_tx_id = when, tx_id
    _sync_pool(session, account, when, minted=amount if minted else 0)


def _debit(session: Session, account_id: str, amount: int, when: dt.datetime, tx_id: str) -> None:
    account = session.get(Account, account_id)
    balance = 0 if account is None else account.balance
    if account is None or balance < amount:
        raise ReadModelInconsistency(f"debiting {amount} from {account_id} with balance {balance}")
    account.balance -= amount
    account.updated_at, account.last_tx_id = when, tx_id
    _sync_pool(session, account, when)


def _sync_pool(session: Session, account: Account, when: dt.datetime, minted: int = 0) -> None:
    if not is_pool(account.account_id):
        return
    pool = session.get(Pool, account.account_id)
    if pool is None:
        pool = _new(session, Pool, pool_id=account.account_id, balance=0, minted=0, updated_at=when)
    pool.balance = account.balance
    pool.minted += minted
    pool.updated_at = when


def _record_mint(session: Session, event: ChaincodeEvent, mint: dict[str, Any], index: int) -> None:
    when = tx_time(mint)
    _new(session, MintEvent, tx_id=event.tx_id, mint_index=index, block_number=event.block_number,
         tx_index=event.tx_index, source_event=event.event_name, account_id=mint["accountId"],
         amount=mint["amount"], amount_coins=mint["amountCoins"], remark=mint["remark"], minted_at=when)
    _credit(session, mint["accountId"], mint["amount"], when, event.tx_id, minted=True)


def _add_country(session: Session, code: str, when: dt.datetime, tx_id: str) -> None:
    if session.get(Country, code) is None:
        _new(session, Country, code=code, user_count=0, initialized_at=when, initialized_tx_id=tx_id)


# --- one handler per event type --------------------------------------------------------------------------------
def on_coins_minted(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    _record_mint(session, event, payload, 0)


def on_system_bootstrapped(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    when = tx_time(payload)
    for code in payload["countries"]:
        _add_country(session, code, when, event.tx_id)
    session.flush()
    # Each listed mint is recorded exactly as a CoinsMinted event would be (SPEC §2.3).
    for index, mint in enumerate(payload["mints"]):
        _record_mint(session, event, mint, index)


def on_country_initialized(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    when = tx_time(payload)
    for code in payload["countries"]:
        _add_country(session, code, when, event.tx_id)


def on_user_created(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    when = tx_time(payload)
    if session.get(UserProfile, payload["userId"]) is not None:
        raise ReadModelInconsistency(f"user {payload['userId']} already exists in the read model")
    _new(session, UserProfile, user_id=payload["userId"], country_code=payload["countryCode"],
         display_name=payload["displayName"], user_number=payload["userNumber"], genesis_distributed=False,
         created_at=when, created_tx_id=event.tx_id)
    country = session.get(Country, payload["countryCode"])
    if country is None:
        raise ReadModelInconsistency(f"country {payload['countryCode']} of user {payload['userId']} is unknown")
    country.user_count += 1
    _account(session, payload["userId"], when, event.tx_id)


def on_genesis_distributed(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    when = tx_time(payload)
    user = session.get(UserProfile, payload["userId"])
    if user is None:
        raise ReadModelInconsistency(f"genesis for unknown user {payload['userId']}")
    _debit(session, payload["fromPool"], payload["amount"], when, event.tx_id)
    _credit(session, payload["userId"], payload["amount"], when, event.tx_id)
    user.genesis_distributed, user.genesis_amount, user.genesis_tier = True, payload["amount"], payload["tier"]
    _new(session, Transfer, tx_id=event.tx_id, kind="GENESIS", block_number=event.block_number,
         tx_index=event.tx_index, from_id=payload["fromPool"], to_id=payload["userId"], amount=payload["amount"],
         amount_coins=payload["amountCoins"], remark="", genesis_tier=payload["tier"], transferred_at=when)


def on_transfer(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    when = tx_time(payload)
    _debit(session, payload["fromId"], payload["amount"], when, event.tx_id)
    _credit(session, payload["toId"], payload["amount"], when, event.tx_id)
    _new(session, Transfer, tx_id=event.tx_id, kind="TRANSFER", block_number=event.block_number,
         tx_index=event.tx_index, from_id=payload["fromId"], to_id=payload["toId"], amount=payload["amount"],
         amount_coins=payload["amountCoins"], remark=payload["remark"], transferred_at=when)


def on_proposal_submitted(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    _new(session, Proposal, proposal_id=payload["proposalId"], title=payload["title"],
         description=payload["description"], proposer_id=payload["proposerId"], status="SUBMITTED",
         submitted_at=tx_time(payload), tx_id=event.tx_id)


def on_trusted_issuers_changed(session: Session, event: ChaincodeEvent, payload: dict[str, Any]) -> None:
    """Nothing to project: the read model keeps no access-control data (the event is validated and counted)."""


def rows_read_by(event_name: str, payload: Mapping[str, Any]) -> dict[type[Any], set[Any]]:
    """The rows (model → keys) the event's handler looks up, as far as the payload names them: what
    :meth:`~gxlib.backend.rowstore.RowStore.prefetch` loads for a batch. A row missed here costs a query, never a
    wrong result."""
    accounts = {payload[name] for name in _ACCOUNT_FIELDS if isinstance(payload.get(name), str)}
    accounts.update(mint["accountId"] for mint in payload.get("mints") or () if isinstance(mint, dict)
                    and isinstance(mint.get("accountId"), str))
    keys: dict[type[Any], set[Any]] = {Account: accounts, Pool: {a for a in accounts if is_pool(a)}}
    if isinstance(payload.get("userId"), str):
        keys[UserProfile] = {payload["userId"]}
    countries = [payload.get("countryCode"), *(payload.get("countries") or ())]
    keys[Country] = {code for code in countries if isinstance(code, str)}
    return {model: wanted for model, wanted in keys.items() if wanted}


_ACCOUNT_FIELDS = ("accountId", "fromId", "toId", "userId", "fromPool")

Handler = Callable[[Session, ChaincodeEvent, dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {
    "CoinsMinted": on_coins_minted,
    "SystemBootstrapped": on_system_bootstrapped,
    "CountryInitialized": on_country_initialized,
    "UserCreated": on_user_created,
    "GenesisDistributed": on_genesis_distributed,
    "TransferEvent": on_transfer,
    "ProposalSubmitted": on_proposal_submitted,
    "TrustedIssuersChanged": on_trusted_issuers_changed,
}


# --- queries (the API's read side) -----------------------------------------------------------------------------
@dataclass(frozen=True)
class SystemStatus:
    bootstrapped: bool
    user_count: int
    countries: list[str]
    pools: dict[str, int]
    checkpoint_block: int | None
    checkpoint_tx_index: int | None


class ReadModel:
    """Read-only queries over the read models."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def user(self, user_id: str) -> UserProfile | None:
        with Session(self.engine) as session:
            return session.get(UserProfile, user_id)

    def users(self, limit: int, offset: int) -> list[UserProfile]:
        with Session(self.engine) as session:
            return list(session.scalars(select(UserProfile).order_by(UserProfile.user_number)
                                        .limit(limit).offset(offset)))

    def account(self, account_id: str) -> Account | None:
        with Session(self.engine) as session:
            return session.get(Account, account_id)

    def accounts(self, limit: int, offset: int) -> list[Account]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Account).order_by(Account.account_id).limit(limit).offset(offset)))

    def pools(self) -> list[Pool]:
        with Session(self.engine) as session:
            return list(session.scalars(select(Pool).order_by(Pool.pool_id)))

    def system_status(self) -> SystemStatus:
        with Session(self.engine) as session:
            pools = {p.pool_id: p.balance for p in session.scalars(select(Pool).order_by(Pool.pool_id))}
            bootstrapped = session.scalar(select(func.count()).select_from(MintEvent)
                                          .where(MintEvent.source_event == "SystemBootstrapped")) or 0
            users = session.scalar(select(func.count()).select_from(UserProfile)) or 0
            countries = list(session.scalars(select(Country.code).order_by(Country.code)))
            checkpoint = session.scalars(select(ProjectorCheckpoint).limit(1)).first()
        return SystemStatus(bool(bootstrapped), int(users), countries, pools,
                            checkpoint.block_number if checkpoint else None,
                            checkpoint.tx_index if checkpoint else None)
