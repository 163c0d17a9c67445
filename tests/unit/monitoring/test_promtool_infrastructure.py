"""promtool proves the infrastructure alerts (targets down, CPU, memory, restarts, database pool), local and
Kubernetes variants: monitoring/tests/infrastructure.test.yml and infrastructure-kubernetes.test.yml."""

from __future__ import annotations

from pathlib import Path

from gxlib.monitoring.alerts import infrastructure
from gxlib.monitoring.render import Artifact

from .promtool_cases import (
    KUBERNETES_ALERT_TESTS,
    area_tests,
    assert_each_alert_fires_and_stays_silent,
    assert_kubernetes_tests_pass,
    assert_local_tests_pass,
    cases,
)

TESTS = area_tests("infrastructure")
# The alerts whose expression differs on Kubernetes (containers instead of processes).
KUBERNETES_ONLY_VARIANTS = {"BackendHighCPU", "BackendHighMemory", "BackendPodRestartLoop"}


def test_promtool_unit_tests_of_the_infrastructure_alerts_pass(promtool: str, tmp_path: Path,
                                                               rendered: dict[str, Artifact]) -> None:
    assert_local_tests_pass(promtool, tmp_path, rendered, TESTS)


def test_every_infrastructure_alert_has_a_firing_and_a_silent_case() -> None:
    assert_each_alert_fires_and_stays_silent(TESTS, infrastructure.ALERT_NAMES)


def test_promtool_unit_tests_of_the_kubernetes_resource_rules_pass(promtool: str, tmp_path: Path,
                                                                   rendered: dict[str, Artifact]) -> None:
    assert_kubernetes_tests_pass(promtool, tmp_path, rendered, KUBERNETES_ALERT_TESTS)


def test_kubernetes_variants_of_the_resource_alerts_have_a_firing_and_a_silent_case() -> None:
    assert set(cases(KUBERNETES_ALERT_TESTS)) == KUBERNETES_ONLY_VARIANTS
    assert_each_alert_fires_and_stays_silent(KUBERNETES_ALERT_TESTS, KUBERNETES_ONLY_VARIANTS)
