"""Measure raw Gateway submits: throughput and submit→commit latency percentiles at a fixed concurrency.

The library half of ``gx bench gateway``: ``concurrency`` workers share one Gateway connection and each submits
transactions back to back for ``seconds``; every submit is timed from proposal to commit status.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from gxlib.bench.stats import percentile
from gxlib.fabric.contract import Contract
from gxlib.fabric.errors import FabricError


@dataclass(frozen=True)
class BenchResult:
    """What a benchmark run measured (latencies in milliseconds)."""

    concurrency: int
    seconds: float
    committed: int
    failed: int
    throughput_tps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def bench_submits(contract: Contract, function: str, args_for: Callable[[int], Sequence[str]], *,
                        concurrency: int, seconds: float) -> BenchResult:
    """Submit ``function(*args_for(n))`` from ``concurrency`` workers for ``seconds``; count and time each."""
    if concurrency < 1 or seconds <= 0:
        raise ValueError("concurrency must be >= 1 and seconds > 0")
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    started = time.perf_counter()
    deadline = started + seconds

    async def worker() -> None:
        nonlocal counter
        while time.perf_counter() < deadline:
            counter += 1
            begin = time.perf_counter()
            try:
                await contract.submit(function, *args_for(counter))
            except FabricError as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                continue
            latencies.append((time.perf_counter() - begin) * 1000)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return BenchResult(concurrency, round(elapsed, 3), len(latencies), sum(errors.values()),
                       round(len(latencies) / elapsed, 1), round(percentile(latencies, 0.50), 2),
                       round(percentile(latencies, 0.95), 2), round(percentile(latencies, 0.99), 2), errors)
