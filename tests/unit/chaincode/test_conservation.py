"""Conservation of GX coins over random operation sequences, in-process (the large sample)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gxchaincode import gx_chaincode
from gxshim.inmemory import InMemoryLedger
from tests.unit.chaincode.conftest import Callers
from tests.unit.chaincode.conservation import ConservationCheck, Op, event_from_payload, operations

ACCOUNT_PREFIX = "\x00account\x00"


class InMemoryDriver:
    def __init__(self, callers: Callers) -> None:
        self.ledger = InMemoryLedger(gx_chaincode())
        self.callers = callers

    def submit(self, as_super_admin: bool, *args: str) -> tuple[bool, dict[str, object] | None]:
        caller = self.callers.super_admin if as_super_admin else self.callers.service
        outcome = self.ledger.submit(caller, *args)
        return outcome.ok, event_from_payload(outcome.event_payload)

    def balances(self) -> dict[str, int]:
        return {key: int(json.loads(value)["balance"]) for key, value in self.ledger.state.items()
                if key.startswith(ACCOUNT_PREFIX)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=st.lists(operations, min_size=1, max_size=40))
def test_total_minted_equals_sum_of_balances_in_process(callers: Callers, ops: list[Op]) -> None:
    ConservationCheck().run(InMemoryDriver(callers), ops)
