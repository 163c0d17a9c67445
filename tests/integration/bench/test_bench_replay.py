"""`gx bench replay` against the real devnet: the history is topped up, every replay (in the reader process and in
this process) equals the live projector's read models, and the figures of each round hang together.

Figures only — no timing goal is asserted here (the benchmark's numbers go in the closing note, not in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet.network import Devnet

pytestmark = pytest.mark.integration


def test_bench_replay_json_has_two_rounds_of_equal_replays_and_their_ratios(
        devnet: Devnet, bench_gxtv3: DeployReport) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gxlib.cli", "bench", "replay", "--events", "60", "--database", "sqlite",
         "--rounds", "2", "--json", "--state-dir", str(devnet.layout.root)],
        capture_output=True, text=True, check=False, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["events"] >= 60
    [figures] = report["figures"]
    assert figures["database"] == "sqlite" and figures["equal"] is True  # live projector == both replays
    assert len(figures["rounds"]) == 2
    for one in figures["rounds"]:
        events = one["delivery"]["events"]
        assert events == report["events"]
        assert one["replay"]["events"] == one["replay_in_process"]["events"] == events
        assert one["replay_vs_delivery_rate"] == round(
            one["replay"]["events_per_s"] / one["delivery"]["events_per_s"], 3)
        # The reader process's CPU is counted with this process's: a replay costs at least what delivery does.
        assert one["replay"]["cpu_s_per_1000_events"] > 0
        # The Fabric nodes' CPU is read for both (60 events may cost the peer less than one clock tick, so it may
        # read 0), and the ceiling follows from it.
        assert one["delivery"]["nodes_cpu_s_per_1000_events"] >= 0 and one["replay"]["nodes_cpu_s_per_1000_events"] >= 0
        assert one["cores"] >= 1 and 0 < one["cpu_ceiling"] <= 1
    assert figures["replay_vs_delivery_rate"] in {r["replay_vs_delivery_rate"] for r in figures["rounds"]}
    assert figures["cpu_ceiling"] in {r["cpu_ceiling"] for r in figures["rounds"]}
    assert figures["live_projector"]["events"] == report["events"]
    assert "round 2/2" in result.stderr  # progress while it runs, on stderr
