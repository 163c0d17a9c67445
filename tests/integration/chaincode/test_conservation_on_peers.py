"""Conservation on the real peers: the same property code as the in-process sample, a smaller sample."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gxlib.fabric.errors import EndorseError
from tests.integration.gx_fixtures import GxClient
from tests.unit.chaincode.conservation import ACCOUNTS, USERS, ConservationCheck, Op, operations

pytestmark = pytest.mark.integration
POOLS = ("SYSTEM_USER_GENESIS_POOL", "SYSTEM_GOVT_GENESIS_POOL", "SYSTEM_CHARITABLE_POOL", "SYSTEM_LOAN_POOL")
_examples = itertools.count()


class PeerDriver:
    """Runs the property's operations on the devnet; user IDs are fresh per example (the ledger is shared)."""

    def __init__(self, super_admin: GxClient, service: GxClient) -> None:
        self.super_admin, self.service = super_admin, service
        self.suffix = f"-p{next(_examples)}"

    def _name(self, account: str) -> str:
        return account + self.suffix if account in USERS else "prop-" + account if account in ACCOUNTS[:3] else account

    def submit(self, as_super_admin: bool, *args: str) -> tuple[bool, dict[str, object] | None]:
        function, *rest = args
        names = [self._name(a) for a in rest]
        client = self.super_admin if as_super_admin else self.service
        try:
            return True, client.submit(function, *names)
        except EndorseError:
            return False, None

    def balances(self) -> dict[str, int]:
        found = {}
        for account in (*ACCOUNTS, *USERS, *POOLS):
            try:
                found[self._name(account)] = self.service.balance(self._name(account))
            except EndorseError:
                found[self._name(account)] = 0
        return found


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# BootstrapSystem happens once per ledger; test_contracts.py owns it on this shared ledger.
@given(ops=st.lists(operations.filter(lambda op: op.name != "AdminContract:BootstrapSystem"), min_size=1,
                    max_size=8))
def test_total_minted_equals_sum_of_balances_on_the_peers(bootstrapped: dict[str, object], super_admin: GxClient,
                                                          service: GxClient, ops: list[Op]) -> None:
    ConservationCheck().run(PeerDriver(super_admin, service), ops)
