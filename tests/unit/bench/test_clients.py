"""The side-by-side summary of gxlib and the official clients: medians per client and gxlib's ratios."""

from __future__ import annotations

import pytest

from gxlib.bench.clients import ClientsBenchSpec, level_summary


def _run(client: str, round_no: int, cpu_ms: float, tps: float = 40.0) -> dict[str, object]:
    return {"client": client, "round": round_no, "concurrency": 10, "committed": 200, "failed": 0,
            "throughput_tps": tps, "p50_ms": 250.0, "p95_ms": 300.0, "p99_ms": 320.0,
            "client_cpu_s_per_tx": cpu_ms / 1000, "fabric_nodes_cpu_s_per_tx": None}


def test_the_summary_is_the_median_per_client_with_gxlibs_cpu_ratio_overall_and_per_round() -> None:
    runs = [_run("gxlib", 1, 0.60), _run("go", 1, 0.50), _run("gxlib", 2, 0.90), _run("go", 2, 0.45),
            _run("gxlib", 3, 0.55), _run("go", 3, 0.50)]
    level = level_summary(runs, ["gxlib", "go"])
    assert level["gxlib"]["client_cpu_ms_per_tx"] == 0.6  # the 0.90 outlier does not move a median
    assert level["go"]["client_cpu_ms_per_tx"] == 0.5
    assert level["client_cpu_ratio_gxlib_over_go"] == 1.2
    assert level["client_cpu_ratio_gxlib_over_go_per_round"] == [1.2, 2.0, 1.1]
    assert level["throughput_ratio_gxlib_over_go"] == 1.0


def test_a_side_by_side_spec_refuses_unknown_clients_and_empty_levels() -> None:
    with pytest.raises(ValueError, match="rust"):
        ClientsBenchSpec(clients=("gxlib", "rust"))
    with pytest.raises(ValueError, match="concurrency"):
        ClientsBenchSpec(concurrency=())
