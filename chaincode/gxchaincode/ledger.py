"""The chaincode's world state: keys, records, and the one path by which balances change.

Records are JSON objects under composite keys (``account``, ``user``, ``country``, ``proposal``) plus the
``GlobalCounters`` and ``TrustedIssuerMSPs`` keys. Fabric shows a transaction only the committed state (never
its own writes), so a function never reads a key after writing it; `_credit`/`_debit` are called at most once
per account in a transaction.
"""

from __future__ import annotations

import json
from typing import Any

from gxchaincode.amounts import checked_add, checked_sub
from gxshim import ChaincodeError, Context

ACCOUNT = "account"
USER = "user"
COUNTRY = "country"
PROPOSAL = "proposal"
GLOBAL_COUNTERS_KEY = "GlobalCounters"
# The MSPs trusted to issue super admins (SPEC §2.1): a JSON array of MSP IDs, written at bootstrap.
TRUSTED_ISSUERS_KEY = "TrustedIssuerMSPs"


def _key(ctx: Context, object_type: str, object_id: str) -> str:
    return ctx.stub.create_composite_key(object_type, [object_id])


def read_record(ctx: Context, object_type: str, object_id: str) -> dict[str, Any] | None:
    raw = ctx.stub.get_state(_key(ctx, object_type, object_id))
    return None if raw is None else dict(json.loads(raw))


def write_record(ctx: Context, object_type: str, object_id: str, record: dict[str, Any]) -> None:
    ctx.stub.put_state(_key(ctx, object_type, object_id), json.dumps(record, sort_keys=True, separators=(",", ":")))


def list_records(ctx: Context, object_type: str) -> list[dict[str, Any]]:
    with ctx.stub.get_state_by_partial_composite_key(object_type, []) as results:
        return [dict(json.loads(kv.value)) for kv in results]


def read_counters(ctx: Context) -> dict[str, Any] | None:
    raw = ctx.stub.get_state(GLOBAL_COUNTERS_KEY)
    return None if raw is None else dict(json.loads(raw))


def write_counters(ctx: Context, counters: dict[str, Any]) -> None:
    ctx.stub.put_state(GLOBAL_COUNTERS_KEY, json.dumps(counters, sort_keys=True, separators=(",", ":")))


def read_trusted_issuers(ctx: Context) -> list[str] | None:
    """The trusted issuer MSPs, or None before BootstrapSystem recorded them."""
    raw = ctx.stub.get_state(TRUSTED_ISSUERS_KEY)
    return None if raw is None else [str(msp) for msp in json.loads(raw)]


def write_trusted_issuers(ctx: Context, msp_ids: list[str]) -> None:
    ctx.stub.put_state(TRUSTED_ISSUERS_KEY, json.dumps(msp_ids, separators=(",", ":")))


def require_account(ctx: Context, account_id: str) -> dict[str, Any]:
    account = read_record(ctx, ACCOUNT, account_id)
    if account is None:
        raise ChaincodeError(f"account {account_id} does not exist")
    return account


def new_account(ctx: Context, account_id: str, owner: str | None) -> dict[str, Any]:
    now = ctx.stub.tx_timestamp_seconds
    return {"accountId": account_id, "balance": 0, "owner": owner, "velocityTaxTimerStart": None,
            "createdAt": now, "updatedAt": now}


def _velocity_threshold(ctx: Context) -> int | None:
    counters = read_counters(ctx)
    return None if counters is None else int(counters["velocityTaxThreshold"])


def _apply_velocity_timer(ctx: Context, account: dict[str, Any], before: int, threshold: int | None) -> None:
    """Start the timer when the balance crosses the threshold upwards, clear it when it falls below."""
    if threshold is None:
        return
    after = int(account["balance"])
    if before < threshold <= after and account.get("velocityTaxTimerStart") is None:
        account["velocityTaxTimerStart"] = ctx.stub.tx_timestamp_seconds
    elif after < threshold:
        account["velocityTaxTimerStart"] = None


def credit(ctx: Context, account_id: str, amount: int, *, owner_if_new: str | None = None,
           threshold: int | None = None, use_ledger_threshold: bool = True) -> dict[str, Any]:
    """Add ``amount`` to an account, creating it if missing (SPEC §2.2 ``_credit``). Returns the new record.

    ``threshold`` overrides the ledger's velocity-tax threshold (BootstrapSystem passes the one it is writing,
    since a transaction cannot read its own writes).
    """
    account = read_record(ctx, ACCOUNT, account_id) or new_account(ctx, account_id, owner_if_new)
    before = int(account["balance"])
    account["balance"] = checked_add(before, amount, f"balance of {account_id}")
    account["updatedAt"] = ctx.stub.tx_timestamp_seconds
    if threshold is None and use_ledger_threshold:
        threshold = _velocity_threshold(ctx)
    _apply_velocity_timer(ctx, account, before, threshold)
    write_record(ctx, ACCOUNT, account_id, account)
    return account


def debit(ctx: Context, account_id: str, amount: int) -> dict[str, Any]:
    """Take ``amount`` from an existing account with enough balance. Returns the new record."""
    account = require_account(ctx, account_id)
    before = int(account["balance"])
    if before < amount:
        raise ChaincodeError(f"insufficient balance: account {account_id} has {before} units, {amount} needed")
    account["balance"] = checked_sub(before, amount, f"balance of {account_id}")
    account["updatedAt"] = ctx.stub.tx_timestamp_seconds
    _apply_velocity_timer(ctx, account, before, _velocity_threshold(ctx))
    write_record(ctx, ACCOUNT, account_id, account)
    return account


def require_non_empty(value: str, message: str) -> str:
    if not value or not value.strip():
        raise ChaincodeError(message)
    return value
