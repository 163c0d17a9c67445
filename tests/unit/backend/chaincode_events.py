"""Chaincode events recorded from the GX chaincode itself, run in-process on an in-memory ledger.

The commands are turned into chaincode calls by the backend's own command table (function + argument order +
identity), so these tests also check that table against the real contracts.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from gxchaincode import gx_chaincode
from gxlib.backend.commands import FabricIdentity, command_spec, validate_payload
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxshim.inmemory import InMemoryLedger

PRECISION = 100_000_000

SCENARIO: tuple[tuple[str, dict[str, Any]], ...] = (
    ("BOOTSTRAP_SYSTEM", {}),
    ("INITIALIZE_COUNTRY_DATA", {"countries": [{"code": "DE", "name": "Germany"}, {"code": "US"}]}),
    ("CREATE_USER", {"userId": "alice", "countryCode": "US", "displayName": "Alice"}),
    ("CREATE_USER", {"userId": "bob", "countryCode": "DE", "displayName": "Bob"}),
    ("DISTRIBUTE_GENESIS", {"userId": "alice"}),
    ("DISTRIBUTE_GENESIS", {"userId": "bob"}),
    ("TRANSFER", {"fromId": "alice", "toId": "bob", "amount": 100 * PRECISION, "remark": "rent"}),
    ("MINT", {"accountId": "carol", "amount": 5 * PRECISION, "remark": "airdrop"}),
    ("SUBMIT_PROPOSAL", {"proposalId": "p-1", "title": "Lower fees", "description": "Halve them",
                         "proposerId": "alice"}),
)


@dataclass
class RecordedHistory:
    ledger: InMemoryLedger
    events: list[ChaincodeEvent]
    callers: Any

    def balance(self, account_id: str) -> int:
        outcome = self.ledger.evaluate(self.callers.service, "TokenomicsContract:GetBalance", account_id)
        assert outcome.ok, outcome.response
        return int(json.loads(outcome.response.payload)["balance"])


def run_commands(ledger: InMemoryLedger, callers: Any, commands: Sequence[tuple[str, dict[str, Any]]],
                 txs_per_block: int = 2, first_block: int = 1) -> list[ChaincodeEvent]:
    events = []
    for n, (kind, payload) in enumerate(commands):
        spec = command_spec(kind)
        caller = callers.super_admin if spec.identity is FabricIdentity.SUPER_ADMIN else callers.service
        outcome = ledger.submit(caller, spec.function, *spec.chaincode_args(validate_payload(kind, payload)))
        assert outcome.ok, (kind, outcome.response)
        assert outcome.event_name and outcome.event_payload
        events.append(ChaincodeEvent(first_block + n // txs_per_block, n % txs_per_block, outcome.tx_id,
                                     outcome.event_name, outcome.event_payload))
    return events


@pytest.fixture
def recorded_history(callers: Any) -> RecordedHistory:
    ledger = InMemoryLedger(gx_chaincode())
    return RecordedHistory(ledger, run_commands(ledger, callers, SCENARIO), callers)


class ListEventSource:
    """An EventSource over a fixed list (ends when the list does)."""

    def __init__(self, events: Sequence[ChaincodeEvent]) -> None:
        self.events_list = list(events)
        self.opened = 0

    async def events(self, after: Checkpoint | None) -> AsyncIterator[ChaincodeEvent]:
        self.opened += 1
        for event in self.events_list:
            if after is None or event.position > after.position:
                yield event


def altered(event: ChaincodeEvent, **changes: Any) -> ChaincodeEvent:
    """The same event with payload fields replaced (``None`` deletes a field)."""
    payload = json.loads(event.payload)
    for key, value in changes.items():
        if value is None:
            payload.pop(key, None)
        else:
            payload[key] = value
    return ChaincodeEvent(event.block_number, event.tx_index, event.tx_id, event.event_name,
                          json.dumps(payload).encode(), event.tx_timestamp)
