"""promtool proves the projector alert (events that fail to project): monitoring/tests/projector.test.yml."""

from __future__ import annotations

from pathlib import Path

from gxlib.monitoring.alerts import projector
from gxlib.monitoring.render import Artifact

from .promtool_cases import area_tests, assert_each_alert_fires_and_stays_silent, assert_local_tests_pass

TESTS = area_tests("projector")


def test_promtool_unit_tests_of_the_projector_alerts_pass(promtool: str, tmp_path: Path,
                                                          rendered: dict[str, Artifact]) -> None:
    assert_local_tests_pass(promtool, tmp_path, rendered, TESTS)


def test_every_projector_alert_has_a_firing_and_a_silent_case() -> None:
    assert_each_alert_fires_and_stays_silent(TESTS, projector.ALERT_NAMES)
