"""The circuit-breaker drill log that lets runbook 05 tell a drill's retries from a real SLO breach."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from gxlib.runbook.drills import SUCCESS_RATE_WINDOW, DrillLog


def test_a_drill_inside_the_success_rate_window_is_found_and_an_older_one_is_not(tmp_path: Path) -> None:
    log = DrillLog(tmp_path / "monitoring")
    now = datetime(2026, 11, 25, 16, 0, tzinfo=UTC)
    log.record(now - timedelta(minutes=30), now - timedelta(minutes=26))
    assert log.latest_within(SUCCESS_RATE_WINDOW, now) is None  # long out of the 5-minute window
    log.record(now - timedelta(minutes=8), now - timedelta(minutes=4))
    found = log.latest_within(SUCCESS_RATE_WINDOW, now)
    assert found is not None and found.ended == now - timedelta(minutes=4)
    assert log.latest_within(SUCCESS_RATE_WINDOW, now + timedelta(minutes=2)) is None  # its retries aged out


def test_no_log_means_no_drill_and_a_torn_line_is_ignored(tmp_path: Path) -> None:
    log = DrillLog(tmp_path)
    assert log.drills() == []
    now = datetime.now(UTC)
    log.record(now - timedelta(seconds=90), now - timedelta(seconds=10))
    with log.path.open("a", encoding="utf-8") as handle:
        handle.write('{"started": "2026-11-25T1')  # a write cut short
    assert len(log.drills()) == 1
    assert log.latest_within(SUCCESS_RATE_WINDOW) is not None
