"""The conservation property of the GX ledger, written once against a driver so that the same code runs
in-process (large samples) and against the devnet's peers (small samples).

Property: after any sequence of mints, transfers and genesis distributions, total minted = sum of all
balances, no balance is negative, none exceeds uint64.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Protocol

from hypothesis import strategies as st

from gxchaincode.amounts import PRECISION, UINT64_MAX

ACCOUNTS = ("alice", "bob", "carol", "SYSTEM_LOAN_POOL")
USERS = ("u1", "u2", "u3")


class LedgerDriver(Protocol):
    """Submits as the super admin or the service identity; lists every account balance."""

    def submit(self, as_super_admin: bool, *args: str) -> tuple[bool, dict[str, object] | None]: ...

    def balances(self) -> dict[str, int]: ...


@dataclass
class Op:
    name: str
    args: tuple[str, ...]
    as_super_admin: bool = True

    def __repr__(self) -> str:
        return f"{self.name}{self.args}"


amounts = st.one_of(st.integers(1, 1000 * PRECISION), st.integers(1, UINT64_MAX), st.just(UINT64_MAX))
operations = st.one_of(
    st.builds(lambda a, n: Op("TokenomicsContract:Mint", (a, str(n), "property test")), st.sampled_from(ACCOUNTS),
              amounts),
    st.builds(lambda f, t, n: Op("TokenomicsContract:Transfer", (f, t, str(n), "property test")),
              st.sampled_from(ACCOUNTS + USERS), st.sampled_from(ACCOUNTS + USERS), st.integers(1, 600 * PRECISION)),
    st.builds(lambda u: Op("IdentityContract:CreateUser", (u, "US", u), as_super_admin=False), st.sampled_from(USERS)),
    st.builds(lambda u: Op("TokenomicsContract:DistributeGenesis", (u,), as_super_admin=False),
              st.sampled_from(USERS)),
    st.just(Op("AdminContract:BootstrapSystem", ())),
)


@dataclass
class ConservationCheck:
    minted: int = 0
    applied: list[Op] = field(default_factory=list)

    def run(self, driver: LedgerDriver, ops: list[Op]) -> None:
        """Apply ``ops`` and check the property over what changed (a shared ledger may hold earlier state)."""
        before = driver.balances()
        for op in ops:
            accepted, event = driver.submit(op.as_super_admin, op.name, *op.args)
            if not accepted:
                continue
            self.applied.append(op)
            assert event is not None, f"{op} committed without an event"
            if event["eventType"] == "CoinsMinted":
                self.minted += int(event["amount"])  # type: ignore[call-overload]
            elif event["eventType"] == "SystemBootstrapped":
                self.minted += sum(int(m["amount"]) for m in event["mints"])  # type: ignore[attr-defined]
        after = driver.balances()
        assert all(0 <= b <= UINT64_MAX for b in after.values()), after
        assert sum(after.values()) - sum(before.values()) == self.minted, (self.applied, before, after)


def event_from_payload(payload: bytes | None) -> dict[str, object] | None:
    return None if payload is None else dict(json.loads(payload))
