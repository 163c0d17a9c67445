"""Command → outbox → submitter → chaincode → event → projector → read model, in one process with the real GX
chaincode on an in-memory ledger."""

from __future__ import annotations

import asyncio
import json
import warnings
from typing import Any

from prometheus_client import CollectorRegistry
from sqlalchemy import Engine

from gxchaincode import gx_chaincode
from gxlib.backend.api import create_app
from gxlib.backend.outbox import Outbox
from gxlib.backend.projector import Projector
from gxlib.backend.readmodel import ReadModel
from gxlib.backend.settings import BackendSettings, SubmitterSettings
from gxlib.backend.submitter import Submitter
from gxshim.inmemory import InMemoryLedger
from tests.unit.backend.ledgergateway import LedgerGateway

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

TOKEN = {"Authorization": "Bearer pipeline-admin"}
COMMANDS: list[dict[str, Any]] = [
    {"type": "BOOTSTRAP_SYSTEM", "payload": {}},
    {"type": "CREATE_USER", "payload": {"userId": "alice", "countryCode": "US", "displayName": "Alice"}},
    {"type": "CREATE_USER", "payload": {"userId": "zed", "countryCode": "ZZ", "displayName": "Zed"}},
    {"type": "DISTRIBUTE_GENESIS", "payload": {"userId": "alice"}},
    {"type": "MINT", "payload": {"accountId": "bob", "amount": 10**9, "remark": "prize"}},
    {"type": "TRANSFER", "payload": {"fromId": "alice", "toId": "bob", "amount": 7, "remark": "coffee"}},
    {"type": "BOOTSTRAP_SYSTEM", "payload": {}},
]


def test_commands_reach_the_ledger_once_and_the_read_models_match_it(engine: Engine, callers: Any) -> None:
    ledger = InMemoryLedger(gx_chaincode())
    gateway = LedgerGateway(ledger, callers)
    app = create_app(BackendSettings(database_url="sqlite://", api_tokens={"pipeline-admin": "admin"}),
                     engine=engine, registry=CollectorRegistry())
    with TestClient(app) as client:
        ids = []
        for n, command in enumerate(COMMANDS):
            response = client.post("/api/v1/commands", json={**command, "idempotencyKey": f"cmd-{n}"}, headers=TOKEN)
            assert response.status_code == 202, response.text
            ids.append(response.json()["commandId"])

        # One command at a time, in order (a ledger's business order matters: bootstrap before users).
        submitter = Submitter(Outbox(engine), gateway, SubmitterSettings(batch_size=1, max_in_flight=1))
        while asyncio.run(submitter.run_once()):
            pass

        states = [client.get(f"/api/v1/commands/{cid}", headers=TOKEN).json() for cid in ids]
        assert [s["status"] for s in states] == ["COMMITTED", "COMMITTED", "FAILED", "COMMITTED", "COMMITTED",
                                                 "COMMITTED", "FAILED"]
        assert states[2]["errorMessage"] == "country ZZ is not initialised"
        assert states[6]["errorMessage"] == "system already bootstrapped"
        assert len(gateway.committed) == 5 and gateway.submits == 5

        projector = Projector(engine)

        async def project() -> None:
            async for event in gateway.events_after(projector.checkpoint()):
                await projector.apply_with_retry(event)

        asyncio.run(project())
        for account in ("alice", "bob", "SYSTEM_USER_GENESIS_POOL"):
            balance = client.get(f"/api/v1/accounts/{account}", headers=TOKEN).json()["balance"]
            on_ledger = ledger.evaluate(callers.service, "TokenomicsContract:GetBalance", account)
            assert json.loads(on_ledger.response.payload)["balance"] == balance > 0
        status = ReadModel(engine).system_status()
        assert status.bootstrapped and status.user_count == 1 and len(status.pools) == 4
