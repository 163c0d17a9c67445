"""promtool proves the SLO alerts (transaction success rate, projection lag, API P95 latency):
monitoring/tests/slo.test.yml."""

from __future__ import annotations

from pathlib import Path

from gxlib.monitoring.alerts import slo
from gxlib.monitoring.render import Artifact

from .promtool_cases import area_tests, assert_each_alert_fires_and_stays_silent, assert_local_tests_pass

TESTS = area_tests("slo")


def test_promtool_unit_tests_of_the_slo_alerts_pass(promtool: str, tmp_path: Path,
                                                    rendered: dict[str, Artifact]) -> None:
    assert_local_tests_pass(promtool, tmp_path, rendered, TESTS)


def test_every_slo_alert_has_a_firing_and_a_silent_case() -> None:
    assert_each_alert_fires_and_stays_silent(TESTS, slo.ALERT_NAMES)
