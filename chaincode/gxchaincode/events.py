"""Event payloads (SPEC §2.6). One event per transaction; its name is the payload's ``eventType``.

Each payload's schema is a versioned JSON Schema file in ``schemas/`` (``<EventType>.v<N>.json``), shipped in
the chaincode package; the projector validates against the same files.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gxchaincode.amounts import coins
from gxshim import Context

SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
SCHEMA_VERSION = 1

COINS_MINTED = "CoinsMinted"
TRANSFER = "TransferEvent"
GENESIS_DISTRIBUTED = "GenesisDistributed"
SYSTEM_BOOTSTRAPPED = "SystemBootstrapped"
COUNTRY_INITIALIZED = "CountryInitialized"
USER_CREATED = "UserCreated"
PROPOSAL_SUBMITTED = "ProposalSubmitted"
TRUSTED_ISSUERS_CHANGED = "TrustedIssuersChanged"
EVENT_TYPES = (COINS_MINTED, TRANSFER, GENESIS_DISTRIBUTED, SYSTEM_BOOTSTRAPPED, COUNTRY_INITIALIZED, USER_CREATED,
               PROPOSAL_SUBMITTED, TRUSTED_ISSUERS_CHANGED)


def schema_file(event_type: str, version: int = SCHEMA_VERSION) -> Path:
    return SCHEMA_DIR / f"{event_type}.v{version}.json"


def load_schema(event_type: str, version: int = SCHEMA_VERSION) -> dict[str, Any]:
    return dict(json.loads(schema_file(event_type, version).read_text()))


def emit(ctx: Context, payload: dict[str, Any]) -> dict[str, Any]:
    """Set the transaction's event (the last call wins in Fabric, so each function calls this once)."""
    ctx.stub.set_event(payload["eventType"], json.dumps(payload, sort_keys=True, separators=(",", ":")))
    return payload


def coins_minted(ctx: Context, account_id: str, amount: int, remark: str) -> dict[str, Any]:
    return {"eventType": COINS_MINTED, "accountId": account_id, "amount": amount, "amountCoins": coins(amount),
            "remark": remark, "timestamp": ctx.stub.tx_timestamp_seconds}
