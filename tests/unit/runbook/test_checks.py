"""Checks record measured against expected; the summary shows them and fails the run when one failed."""

from __future__ import annotations

from gxlib.runbook.checks import Checks, CheckStatus, summary_frame, summary_text


def test_threshold_checks_show_the_measured_value_and_the_slo() -> None:
    checks = Checks()
    lag = checks.below("projection lag", 1234.5, 5000, unit="ms")
    rate = checks.at_least("success rate", 98.0, 99.9, unit="%")
    count = checks.equal("rules loaded", 18, 18)
    assert (lag.status, lag.measured, lag.expected) == (CheckStatus.PASSED, "1234.5 ms", "< 5000 ms")
    assert (rate.status, rate.measured, rate.expected) == (CheckStatus.FAILED, "98 %", ">= 99.9 %")
    assert count.status is CheckStatus.PASSED
    assert [c.name for c in checks.failed()] == ["success rate"]


def test_a_skipped_check_neither_passes_nor_fails() -> None:
    checks = Checks()
    checks.skip("targets up", "dry run", expected=3)
    assert checks.failed() == [] and len(checks) == 1
    assert next(iter(checks)).status is CheckStatus.SKIPPED


def test_summary_as_dataframe_and_as_text() -> None:
    checks = Checks()
    checks.equal("pool balance", 5, 5, unit="coins")
    checks.record("breaker closed", False, measured="open", expected="closed", detail="after 30 s")
    frame = summary_frame(checks.as_records())
    assert list(frame.columns) == ["name", "status", "measured", "expected", "detail"]
    assert frame["status"].tolist() == ["pass", "FAIL"]
    text = summary_text(checks.as_records())
    assert text.splitlines()[0].split() == ["name", "status", "measured", "expected", "detail"]
    assert "breaker closed  FAIL" in text and "after 30 s" in text
    assert summary_text([]) == "(none)"
