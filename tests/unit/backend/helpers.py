"""Small helpers of the backend tests."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class FakeClock:
    """A wall clock (for the outbox) that moves only when told."""

    now: dt.datetime = field(default_factory=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.UTC))

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += dt.timedelta(seconds=seconds)


@dataclass
class FakeMonotonic:
    """A monotonic clock (for the circuit breaker) that moves only when told."""

    t: float = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def mint_payload(i: int = 1, amount: int = 100) -> dict[str, object]:
    return {"accountId": f"acct-{i}", "amount": amount, "remark": f"test mint {i}"}


class FakeArrivals:
    """Arrivals the test announces itself (the submitter's side of the seam, on any database)."""

    def __init__(self) -> None:
        self.arrived: Callable[[], None] | None = None
        self.listening = asyncio.Event()

    async def watch(self, arrived: Callable[[], None]) -> None:
        self.arrived = arrived
        self.listening.set()
        await asyncio.Event().wait()  # until cancelled
