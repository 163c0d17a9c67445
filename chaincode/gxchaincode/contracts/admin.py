"""AdminContract (SPEC §2.3): BootstrapSystem, InitializeCountryData, SetTrustedIssuerMSPs, GetSystemStatus.

Who may call the super-admin functions (and why another organisation's admin may not) is the rule in
:mod:`gxchaincode.access`."""

from __future__ import annotations

import json
import re
from typing import Any

from gxchaincode import events
from gxchaincode.access import SUPER_ADMIN_ROLE, require_role
from gxchaincode.amounts import PRECISION, checked_mul
from gxchaincode.contracts.tokenomics import mint
from gxchaincode.ids import LEDGER_ID_PATTERN
from gxchaincode.ledger import (
    COUNTRY,
    read_counters,
    read_record,
    read_trusted_issuers,
    write_counters,
    write_record,
    write_trusted_issuers,
)
from gxchaincode.settings import (
    BOOTSTRAP_POOLS,
    BOOTSTRAP_REMARK,
    DEFAULT_COUNTRIES,
    GENESIS_TIERS,
    POOL_IDS,
    VELOCITY_TAX_THRESHOLD_UNITS,
)
from gxshim import ChaincodeError, Context, Contract, evaluate, transaction


def parse_countries(raw: str) -> list[tuple[str, str]]:
    """``[{"code": "US", "name": "United States"}, "CA", ...]`` → [(code, name)], validated."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ChaincodeError(f"countriesJSON is not valid JSON: {exc.msg}") from None
    if not isinstance(value, list) or not value:
        raise ChaincodeError("countriesJSON must be a non-empty JSON array of country codes or {code, name} objects")
    found: list[tuple[str, str]] = []
    for entry in value:
        code, name = (entry, entry) if isinstance(entry, str) else (
            (entry.get("code"), entry.get("name") or entry.get("code")) if isinstance(entry, dict) else (None, None))
        if not (isinstance(code, str) and len(code) == 2 and code.isascii() and code.isalpha() and code.isupper()):
            raise ChaincodeError(f"country code {code!r} is not a two-letter upper-case ISO 3166 code")
        if code in {c for c, _ in found}:
            raise ChaincodeError(f"country {code} is listed twice")
        found.append((code, str(name)))
    return found


def parse_msp_ids(raw: str) -> list[str]:
    """``["Org1MSP", ...]`` → the MSP IDs, validated: a non-empty array of distinct IDs (ledger-ID characters)."""
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ChaincodeError(f"mspIDsJSON is not valid JSON: {exc.msg}") from None
    if not isinstance(value, list) or not value:
        raise ChaincodeError("mspIDsJSON must be a non-empty JSON array of MSP IDs, e.g. [\"Org1MSP\"]")
    for msp in value:
        if not isinstance(msp, str) or re.fullmatch(LEDGER_ID_PATTERN, msp) is None:
            raise ChaincodeError(f"mspIDsJSON: MSP ID {msp!r} must be 1-128 ASCII letters, digits and _ - . :")
    if len(set(value)) != len(value):
        raise ChaincodeError("mspIDsJSON lists an MSP ID twice")
    return [str(msp) for msp in value]


def initialize_countries(ctx: Context, countries: list[tuple[str, str]]) -> tuple[list[str], list[str]]:
    """Create the countries that do not exist yet. Returns (initialised, already present)."""
    created, skipped = [], []
    for code, name in countries:
        if read_record(ctx, COUNTRY, code) is not None:
            skipped.append(code)
            continue
        write_record(ctx, COUNTRY, code, {"code": code, "name": name, "userCount": 0,
                                          "initializedAt": ctx.stub.tx_timestamp_seconds})
        created.append(code)
    return created, skipped


class AdminContract(Contract):
    @transaction
    def BootstrapSystem(self, ctx: Context) -> dict[str, Any]:
        require_role(ctx, SUPER_ADMIN_ROLE, "AdminContract:BootstrapSystem", bootstrapping=True)
        if read_counters(ctx) is not None:
            raise ChaincodeError("system already bootstrapped")
        countries, _ = initialize_countries(ctx, list(DEFAULT_COUNTRIES))
        now = ctx.stub.tx_timestamp_seconds
        write_counters(ctx, {"bootstrapped": True, "bootstrappedAt": now, "userCount": 0,
                             "genesisTiers": list(GENESIS_TIERS), "velocityTaxThreshold": VELOCITY_TAX_THRESHOLD_UNITS,
                             "precision": PRECISION})
        # The bootstrapping caller's MSP is the one trusted issuer of super admins (SPEC §2.1).
        write_trusted_issuers(ctx, [ctx.client_identity.msp_id])
        # Mint through the same helper as Mint — never InvokeChaincode on ourselves (SPEC §2.3 fact 1).
        mints = [mint(ctx, pool, checked_mul(pool_coins, PRECISION, f"{pool} allocation"), BOOTSTRAP_REMARK,
                      threshold=VELOCITY_TAX_THRESHOLD_UNITS)
                 for pool, pool_coins in BOOTSTRAP_POOLS]
        return events.emit(ctx, {"eventType": events.SYSTEM_BOOTSTRAPPED, "mints": mints, "countries": countries,
                                 "timestamp": now})

    @transaction
    def InitializeCountryData(self, ctx: Context, countriesJSON: str) -> dict[str, Any]:
        require_role(ctx, SUPER_ADMIN_ROLE, "AdminContract:InitializeCountryData")
        created, skipped = initialize_countries(ctx, parse_countries(countriesJSON))
        return events.emit(ctx, {"eventType": events.COUNTRY_INITIALIZED, "countries": created,
                                 "alreadyInitialized": skipped, "timestamp": ctx.stub.tx_timestamp_seconds})

    @transaction
    def SetTrustedIssuerMSPs(self, ctx: Context, mspIDsJSON: str) -> dict[str, Any]:
        """Replace the MSPs trusted to issue super admins; only a super admin of a trusted MSP may."""
        require_role(ctx, SUPER_ADMIN_ROLE, "AdminContract:SetTrustedIssuerMSPs")
        previous = read_trusted_issuers(ctx)
        if previous is None:
            raise ChaincodeError("system is not bootstrapped: run AdminContract:BootstrapSystem first")
        msp_ids = parse_msp_ids(mspIDsJSON)
        write_trusted_issuers(ctx, msp_ids)
        caller = ctx.client_identity
        return events.emit(ctx, {"eventType": events.TRUSTED_ISSUERS_CHANGED, "mspIds": msp_ids,
                                 "previousMspIds": previous, "changedByMspId": caller.msp_id,
                                 "timestamp": ctx.stub.tx_timestamp_seconds})

    @evaluate
    def GetSystemStatus(self, ctx: Context) -> dict[str, Any]:
        counters = read_counters(ctx)
        pools = {}
        for pool in POOL_IDS:
            account = read_record(ctx, "account", pool)
            pools[pool] = None if account is None else account["balance"]
        return {"bootstrapped": counters is not None, "pools": pools, "counters": counters,
                "trustedIssuerMSPs": read_trusted_issuers(ctx)}
