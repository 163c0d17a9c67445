"""TokenomicsContract (SPEC §2.2): Mint, Transfer, DistributeGenesis, GetBalance, GetAccount."""

from __future__ import annotations

from typing import Any

from gxchaincode import events
from gxchaincode.access import SUPER_ADMIN_ROLE, caller_id, has_role, require_role
from gxchaincode.amounts import PRECISION, checked_mul, coins, parse_amount
from gxchaincode.ids import require_ledger_id
from gxchaincode.ledger import (
    USER,
    credit,
    debit,
    read_counters,
    read_record,
    require_account,
    require_non_empty,
    write_record,
)
from gxchaincode.settings import SYSTEM_USER_GENESIS_POOL
from gxshim import ChaincodeError, Context, Contract, evaluate, transaction


def mint(ctx: Context, account_id: str, amount: int, remark: str, *, threshold: int | None = None) -> dict[str, Any]:
    """Credit a freshly minted amount; the shared helper behind Mint and BootstrapSystem (SPEC §2.3 fact 1).
    Returns the CoinsMinted payload (not emitted: the caller emits one event per transaction)."""
    credit(ctx, account_id, amount, threshold=threshold)
    return events.coins_minted(ctx, account_id, amount, remark)


def genesis_allocation(tiers: list[dict[str, Any]], user_number: int) -> tuple[int, int]:
    """(tier, coins) for the n-th registered user from the ledger's tier table."""
    for tier in tiers:
        limit = tier.get("maxUserNumber")
        if limit is None or user_number <= int(limit):
            return int(tier["tier"]), int(tier["coins"])
    raise ChaincodeError(f"no genesis tier covers user number {user_number}")


class TokenomicsContract(Contract):
    @transaction
    def Mint(self, ctx: Context, accountID: str, amount: str, remark: str) -> dict[str, Any]:
        require_role(ctx, SUPER_ADMIN_ROLE, "TokenomicsContract:Mint")
        require_ledger_id("accountID", accountID)
        units = parse_amount("amount", amount)
        require_non_empty(remark, "remark cannot be empty - must document reason for minting")
        return events.emit(ctx, mint(ctx, accountID, units, remark))

    @transaction
    def Transfer(self, ctx: Context, fromID: str, toID: str, amount: str, remark: str) -> dict[str, Any]:
        require_ledger_id("fromID", fromID)
        require_ledger_id("toID", toID)
        units = parse_amount("amount", amount)
        if fromID == toID:
            raise ChaincodeError("fromID and toID must be different accounts")
        source = require_account(ctx, fromID)
        if source.get("owner") != caller_id(ctx) and not has_role(ctx, SUPER_ADMIN_ROLE):
            raise ChaincodeError(f"access denied: the caller does not own account {fromID} "
                                 f"(only its owner or role {SUPER_ADMIN_ROLE} may transfer from it)")
        debit(ctx, fromID, units)
        credit(ctx, toID, units)
        return events.emit(ctx, {
            "eventType": events.TRANSFER, "fromId": fromID, "toId": toID, "amount": units,
            "amountCoins": coins(units), "remark": remark, "timestamp": ctx.stub.tx_timestamp_seconds,
        })

    @transaction
    def DistributeGenesis(self, ctx: Context, userID: str) -> dict[str, Any]:
        require_ledger_id("userID", userID)
        counters = read_counters(ctx)
        if counters is None:
            raise ChaincodeError("system is not bootstrapped: run AdminContract:BootstrapSystem first")
        user = read_record(ctx, USER, userID)
        if user is None:
            raise ChaincodeError(f"user {userID} does not exist")
        if user.get("owner") != caller_id(ctx) and not has_role(ctx, SUPER_ADMIN_ROLE):
            raise ChaincodeError(f"access denied: the caller did not register user {userID} "
                                 f"(only its registrar or role {SUPER_ADMIN_ROLE} may distribute its genesis)")
        if user.get("genesisDistributed"):
            raise ChaincodeError(f"genesis allocation already distributed to user {userID}")
        tier, tier_coins = genesis_allocation(counters["genesisTiers"], int(user["userNumber"]))
        units = checked_mul(tier_coins, PRECISION, "genesis allocation")
        debit(ctx, SYSTEM_USER_GENESIS_POOL, units)
        credit(ctx, userID, units, owner_if_new=user.get("owner"))
        user["genesisDistributed"] = True
        user["genesisAmount"] = units
        write_record(ctx, USER, userID, user)
        return events.emit(ctx, {
            "eventType": events.GENESIS_DISTRIBUTED, "userId": userID, "fromPool": SYSTEM_USER_GENESIS_POOL,
            "amount": units, "amountCoins": coins(units), "tier": tier, "timestamp": ctx.stub.tx_timestamp_seconds,
        })

    @evaluate
    def GetBalance(self, ctx: Context, accountID: str) -> dict[str, Any]:
        require_ledger_id("accountID", accountID)
        account = require_account(ctx, accountID)
        return {"accountId": accountID, "balance": account["balance"], "balanceCoins": coins(account["balance"])}

    @evaluate
    def GetAccount(self, ctx: Context, accountID: str) -> dict[str, Any]:
        require_ledger_id("accountID", accountID)
        return require_account(ctx, accountID)


