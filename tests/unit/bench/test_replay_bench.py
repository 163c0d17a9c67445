"""`gx bench replay`: the P4 figure (replay ÷ delivery) and CPU per 1000 events as printed, and a missing devnet
refused before any database is made."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.bench.cli import bench
from gxlib.bench.replay import (
    Rate,
    ReplayBenchFigures,
    ReplayBenchReport,
    ReplayBenchSpec,
    ReplayRound,
    report_lines,
)


def a_round(delivery_per_s: float, replay_per_s: float, in_process_per_s: float = 10_000) -> ReplayRound:
    return ReplayRound(delivery=Rate(10_000, 10_000 / delivery_per_s, 0.2),
                       replay=Rate(10_000, 10_000 / replay_per_s, 0.5),
                       replay_in_process=Rate(10_000, 10_000 / in_process_per_s, 0.45))


def figures(delivery_per_s: float, replay_per_s: float, in_process_per_s: float = 10_000) -> ReplayBenchFigures:
    return ReplayBenchFigures(
        database="sqlite", blocks=10, rounds=[a_round(delivery_per_s, replay_per_s, in_process_per_s)],
        apply_alone=Rate(10_000, 0.25, 0.24),
        live_projector=None, equal=True)


def test_the_ratio_is_replay_over_delivery_and_meets_the_goal_from_0_8() -> None:
    assert figures(40_000, 32_000).ratio == 0.8 and figures(40_000, 32_000).goal_met
    assert figures(40_000, 20_000).ratio == 0.5 and figures(40_000, 20_000).goal_met is False


def test_p4_is_the_median_of_the_rounds_ratios_each_replay_over_its_own_rounds_delivery() -> None:
    # A noisy second round: its delivery and replay are both slow, and its ratio is still its own.
    rounds = [a_round(40_000, 30_000), a_round(10_000, 9_000), a_round(40_000, 20_000)]
    result = ReplayBenchFigures(database="sqlite", blocks=10, rounds=rounds, apply_alone=Rate(10_000, 0.25, 0.24),
                                live_projector=None, equal=True)
    assert [r.ratio for r in rounds] == [0.75, 0.9, 0.5]
    assert result.ratio == 0.75 and result.goal_met is False
    assert result.delivery.events_per_s == 40_000 and result.replay.events_per_s == 20_000  # median rates
    assert result.in_process_ratio == 0.25
    assert "(median of 3 rounds: 0.75 0.9 0.5)" in "\n".join(report_lines(
        ReplayBenchReport(events=10_000, blocks=10, figures=[result], load_average=(1.0, 1.0, 1.0))))
    assert len(result.to_json()["rounds"]) == 3


def test_cpu_is_reported_per_1000_events() -> None:
    assert Rate(20_000, 1.0, 0.8).cpu_s_per_1000_events == 0.04
    assert Rate(0, 1.0, 0.1).cpu_s_per_1000_events is None


def test_the_printed_report_has_every_figure_of_each_database() -> None:
    report = ReplayBenchReport(events=10_000, blocks=10, figures=[figures(40_000, 20_000)],
                               load_average=(1.5, 1.0, 0.5))
    text = "\n".join(report_lines(report))
    assert "10000 GX events in 10 blocks" in text and "load average 1.50 1.00 0.50" in text
    assert "delivery" in text and "40000 ev/s" in text and "0.020 CPU-s/1000 ev" in text
    assert "replay" in text and "20000 ev/s" in text and "equal to the live read models" in text
    assert "ratio (P4)      0.5  goal >= 0.8: MISSED" in text
    assert "in-process           10000 ev/s  (0.045 CPU-s/1000 ev)  ratio 0.25 (delivery in this process)" in text
    assert "apply alone" in text and "live projector  -" in text
    assert report.to_json()["figures"][0]["replay_vs_delivery_rate"] == 0.5
    assert report.to_json()["figures"][0]["replay_in_process_vs_delivery_rate"] == 0.25


@pytest.mark.parametrize("events", [0, -1])
def test_a_history_of_no_events_is_refused(events: int) -> None:
    with pytest.raises(ValueError, match="events"):
        ReplayBenchSpec(events=events)
    assert CliRunner().invoke(bench, ["replay", "--events", str(events)]).exit_code == 2


def test_bench_replay_on_a_devnet_that_is_not_up_names_it_before_making_any_database(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "bench", "replay", "--state-dir", str(tmp_path)],
                            capture_output=True, text=True, env=dict(os.environ), check=False, timeout=120)
    assert result.returncode == 1
    assert f"the devnet in {tmp_path} is not up" in result.stderr
    assert "PostgreSQL" not in result.stderr


def test_the_cpu_ceiling_is_the_cores_over_the_replays_cpu_per_event_over_the_delivery_rate() -> None:
    # Delivery: 40,000 ev/s. The replay: 20,000 events for 0.9 CPU-s of its processes and 0.3 of the nodes, so
    # 60 µs per event: 2 cores can do at most 33,333 ev/s of it, 0.833 of delivery's rate.
    delivery = Rate(20_000, 0.5, 0.45, nodes_cpu_s=0.4)
    replay = Rate(20_000, 1.0, 0.9, nodes_cpu_s=0.3)
    bound = ReplayRound(delivery, replay, replay, cores=2)
    assert bound.ratio == 0.5 and bound.cpu_ceiling == 0.833
    assert ReplayRound(delivery, replay, replay, cores=8).cpu_ceiling == 1.0  # more cores than it can use
    assert ReplayRound(delivery, Rate(20_000, 1.0, 0.9), replay, cores=2).cpu_ceiling is None  # nodes unknown
    assert ReplayRound(delivery, replay, replay).cpu_ceiling is None  # cores unknown
    assert replay.nodes_cpu_s_per_1000_events == 0.015 and Rate(1, 1.0, 1.0).nodes_cpu_s_per_1000_events is None


def test_the_printed_report_gives_the_nodes_cpu_and_the_median_ceiling_of_the_rounds() -> None:
    def bounded(replay_cpu_s: float) -> ReplayRound:
        return ReplayRound(Rate(20_000, 0.5, 0.45, nodes_cpu_s=0.4), Rate(20_000, 1.0, replay_cpu_s, nodes_cpu_s=0.3),
                           Rate(20_000, 1.2, 1.0), cores=2)

    rounds = [bounded(0.9), bounded(1.3), bounded(0.5)]
    result = ReplayBenchFigures(database="sqlite", blocks=10, rounds=rounds, apply_alone=Rate(10_000, 0.25, 0.24),
                                live_projector=None, equal=True)
    assert [r.cpu_ceiling for r in rounds] == [0.833, 0.625, 1.0] and result.cpu_ceiling == 0.833
    text = "\n".join(report_lines(ReplayBenchReport(events=20_000, blocks=10, figures=[result],
                                                    load_average=(1.0, 1.0, 1.0))))
    assert "(0.022 CPU-s/1000 ev, Fabric nodes 0.020)" in text  # delivery, with the peer's share
    assert "CPU ceiling     0.833  on 2 cores" in text and "(median of: 0.833 0.625 1.0)" in text
    assert result.to_json()["cpu_ceiling"] == 0.833 and result.to_json()["rounds"][1]["cpu_ceiling"] == 0.625
    # Without the nodes' CPU there is no ceiling line.
    assert "CPU ceiling" not in "\n".join(report_lines(ReplayBenchReport(
        events=10_000, blocks=10, figures=[figures(40_000, 20_000)], load_average=(1.0, 1.0, 1.0))))
