"""A step declares what it changes; a dry run reports it and changes nothing; a done step is not redone."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.progress import Progress
from gxlib.runbook import StepFailed, StepOutcome, runbook
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps import Step, execute_step


def _marker_step(path: Path, calls: list[str]) -> Step:
    def apply() -> None:
        calls.append("apply")
        path.write_text("changed")

    return Step("write marker", f"create {path}", apply, is_done=path.exists)


def test_dry_run_reports_the_change_and_changes_nothing(tmp_path: Path) -> None:
    calls: list[str] = []
    marker = tmp_path / "marker"
    result = execute_step(_marker_step(marker, calls), dry_run=True)
    assert result.outcome is StepOutcome.WOULD_CHANGE
    assert result.changes == f"create {marker}"
    assert calls == [] and not marker.exists()


def test_a_real_run_changes_and_a_second_run_reports_already_done(tmp_path: Path) -> None:
    calls: list[str] = []
    marker = tmp_path / "marker"
    assert execute_step(_marker_step(marker, calls), dry_run=False).outcome is StepOutcome.CHANGED
    assert execute_step(_marker_step(marker, calls), dry_run=False).outcome is StepOutcome.ALREADY_DONE
    assert execute_step(_marker_step(marker, calls), dry_run=True).outcome is StepOutcome.ALREADY_DONE
    assert calls == ["apply"]


def _session(dry_run: bool) -> Runbook:
    spec = runbook("03-bootstrap-system")
    return Runbook(spec, spec.parameters(), dry_run=dry_run, progress=Progress(quiet=True))


def test_a_failing_step_is_recorded_and_raised_naming_the_step() -> None:
    rb = _session(dry_run=False)

    def broken() -> None:
        raise ConnectionError("gateway unreachable")

    with pytest.raises(StepFailed) as caught:
        rb.step("submit BOOTSTRAP_SYSTEM", changes="one command in the outbox", apply=broken)
    assert caught.value.step == "submit BOOTSTRAP_SYSTEM"
    assert "ConnectionError: gateway unreachable" in caught.value.message
    assert [s.outcome for s in rb.steps] == [StepOutcome.FAILED]


def test_session_steps_follow_the_session_dry_run(tmp_path: Path) -> None:
    calls: list[str] = []
    rb = _session(dry_run=True)
    rb.run_step(_marker_step(tmp_path / "m", calls))
    assert calls == [] and rb.summary()["steps"][0]["outcome"] == "would change (dry run)"


def test_a_backend_target_refused_before_the_wait_began_is_not_settled() -> None:
    import pandas as pd

    from gxlib.runbook.deploy_monitoring import backend_target_settled

    since = pd.Timestamp("2026-11-25T12:00:00Z")
    before, after = since - pd.Timedelta(seconds=3), since + pd.Timedelta(seconds=1)
    refused = 'Get "http://127.0.0.1:9101/metrics": dial tcp 127.0.0.1:9101: connect: connection refused'
    assert backend_target_settled("up", "", before, since)
    assert not backend_target_settled("down", refused, before, since)  # maybe from before a restart: wait
    assert not backend_target_settled("down", refused, None, since)
    assert backend_target_settled("down", refused, after, since)  # refused now: nothing listens
    assert not backend_target_settled("down", "context deadline exceeded", after, since)  # slow, may recover
    assert not backend_target_settled("unknown", "", None, since)
