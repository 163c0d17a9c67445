"""The figures the benchmarks report."""

from __future__ import annotations

from gxlib.bench.stats import percentile


def test_percentile_is_nearest_rank() -> None:
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.95) == 95
    assert percentile([], 0.99) == 0.0
