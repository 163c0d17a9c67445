"""IdentityContract (SPEC §2.4): CreateUser, GetUser."""

from __future__ import annotations

from typing import Any

from gxchaincode import events
from gxchaincode.access import caller_id
from gxchaincode.ids import require_ledger_id
from gxchaincode.ledger import (
    ACCOUNT,
    COUNTRY,
    USER,
    new_account,
    read_counters,
    read_record,
    require_non_empty,
    write_counters,
    write_record,
)
from gxshim import ChaincodeError, Context, Contract, evaluate, transaction


class IdentityContract(Contract):
    @transaction
    def CreateUser(self, ctx: Context, userID: str, countryCode: str, displayName: str) -> dict[str, Any]:
        """Register a user in an initialised country; the caller becomes the registrar (owner) of the user and
        of its account."""
        require_ledger_id("userID", userID)
        if userID.startswith("SYSTEM_"):
            raise ChaincodeError(f"userID {userID} must not start with SYSTEM_ (reserved for the system pools)")
        require_non_empty(countryCode, "countryCode cannot be empty")
        counters = read_counters(ctx)
        if counters is None:
            raise ChaincodeError("system is not bootstrapped: run AdminContract:BootstrapSystem first")
        country = read_record(ctx, COUNTRY, countryCode)
        if country is None:
            raise ChaincodeError(f"country {countryCode} is not initialised")
        if read_record(ctx, USER, userID) is not None:
            raise ChaincodeError(f"user {userID} already exists")
        user_number = int(counters["userCount"]) + 1
        counters["userCount"] = user_number
        write_counters(ctx, counters)
        country["userCount"] = int(country["userCount"]) + 1
        write_record(ctx, COUNTRY, countryCode, country)
        owner = caller_id(ctx)
        now = ctx.stub.tx_timestamp_seconds
        write_record(ctx, USER, userID, {"userId": userID, "countryCode": countryCode, "displayName": displayName,
                                         "userNumber": user_number, "owner": owner, "genesisDistributed": False,
                                         "createdAt": now})
        if read_record(ctx, ACCOUNT, userID) is None:
            write_record(ctx, ACCOUNT, userID, new_account(ctx, userID, owner))
        return events.emit(ctx, {"eventType": events.USER_CREATED, "userId": userID, "countryCode": countryCode,
                                 "displayName": displayName, "userNumber": user_number, "timestamp": now})

    @evaluate
    def GetUser(self, ctx: Context, userID: str) -> dict[str, Any]:
        require_ledger_id("userID", userID)
        user = read_record(ctx, USER, userID)
        if user is None:
            raise ChaincodeError(f"user {userID} does not exist")
        return user
