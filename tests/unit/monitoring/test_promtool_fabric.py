"""promtool proves the Fabric alerts (Gateway circuit breaker, failed submissions): monitoring/tests/fabric.test.yml."""

from __future__ import annotations

from pathlib import Path

from gxlib.monitoring.alerts import fabric
from gxlib.monitoring.render import Artifact

from .promtool_cases import area_tests, assert_each_alert_fires_and_stays_silent, assert_local_tests_pass

TESTS = area_tests("fabric")


def test_promtool_unit_tests_of_the_fabric_alerts_pass(promtool: str, tmp_path: Path,
                                                       rendered: dict[str, Artifact]) -> None:
    assert_local_tests_pass(promtool, tmp_path, rendered, TESTS)


def test_every_fabric_alert_has_a_firing_and_a_silent_case() -> None:
    assert_each_alert_fires_and_stays_silent(TESTS, fabric.ALERT_NAMES)
