"""The rendered files pass promtool/amtool, and the promtool unit tests prove all 18 alerts (R6: 18/18).

The promtool unit tests themselves run per alert area, one file each (``test_promtool_<area>.py``).

promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages; a missing binary is
a failure, not a skip.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from gxlib.monitoring.alerts import ALERT_NAMES
from gxlib.monitoring.render import (
    K8S_ALERTS_FILE,
    K8S_SCRAPE_FILE,
    LOCAL_ALERTMANAGER_FILE,
    LOCAL_PROMETHEUS_FILE,
    LOCAL_RULES_FILE,
    RULES_KEY,
    SCRAPE_KEY,
    Artifact,
    config_map_file,
    write_artifacts,
)

from .promtool_cases import AREAS, KUBERNETES_ALERT_TESTS, TESTS_DIR, area_tests, assert_ok, proven_alerts, run


def test_promtool_check_config_passes_on_the_local_prometheus_config(promtool: str, tmp_path: Path,
                                                                     rendered: dict[str, Artifact]) -> None:
    write_artifacts(tmp_path, list(rendered.values()))
    result = run(promtool, "check", "config", str(tmp_path / LOCAL_PROMETHEUS_FILE))
    assert_ok(result)
    assert "1 rule files found" in result.stdout + result.stderr


def test_promtool_check_rules_passes_on_both_rule_files_with_18_rules(promtool: str, tmp_path: Path,
                                                                      rendered: dict[str, Artifact]) -> None:
    local_rules = tmp_path / "local.yml"
    local_rules.write_text(rendered[str(LOCAL_RULES_FILE)].content)
    kubernetes_rules = tmp_path / RULES_KEY
    kubernetes_rules.write_text(config_map_file(rendered[str(K8S_ALERTS_FILE)].content, RULES_KEY))
    for rules_file in (local_rules, kubernetes_rules):
        result = run(promtool, "check", "rules", str(rules_file))
        assert_ok(result)
        assert "SUCCESS: 18 rules found" in result.stdout


def test_kubernetes_scrape_config_passes_promtool_with_discovery_replaced(promtool: str, tmp_path: Path,
                                                                          rendered: dict[str, Artifact]) -> None:
    """Debian builds Prometheus without Kubernetes service discovery, so its promtool rejects the
    ``kubernetes_sd_configs`` key itself. Everything else (relabel rules, regexes, metric keep rules) is checked
    by promtool with the discovery swapped for a static target; the discovery block is checked here."""
    document = yaml.safe_load(config_map_file(rendered[str(K8S_SCRAPE_FILE)].content, SCRAPE_KEY))
    for job in document["scrape_configs"]:
        (discovery,) = job.pop("kubernetes_sd_configs")
        assert discovery["role"] in {"service", "pod"}
        assert discovery["namespaces"] == {"names": ["backend-mainnet", "backend-testnet", "backend-devnet"]}
        job["static_configs"] = [{"targets": ["discovered.invalid:8080"]}]
    checked = tmp_path / SCRAPE_KEY
    checked.write_text(yaml.safe_dump(document))
    assert_ok(run(promtool, "check", "config", str(checked)))


def test_amtool_accepts_the_local_alertmanager_config(amtool: str, tmp_path: Path,
                                                      rendered: dict[str, Artifact]) -> None:
    config = tmp_path / "alertmanager.yml"
    config.write_text(rendered[str(LOCAL_ALERTMANAGER_FILE)].content)
    assert_ok(run(amtool, "check-config", str(config)))


def test_every_one_of_the_18_alerts_has_a_firing_and_a_silent_case_in_the_file_of_its_area() -> None:
    area_names = {area: importlib.import_module(f"gxlib.monitoring.alerts.{area}").ALERT_NAMES for area in AREAS}
    assert tuple(name for area in AREAS for name in area_names[area]) == ALERT_NAMES, "an alert area is not tested"
    proven = [name for area in AREAS for name in area_names[area] if name in proven_alerts(area_tests(area))]
    assert len(proven) == 18, f"{len(proven)}/18 alerts proven; missing: {sorted(set(ALERT_NAMES) - set(proven))}"


def test_every_promtool_test_file_is_run_by_a_unit_test() -> None:
    run_by_pytest = {area_tests(area) for area in AREAS} | {KUBERNETES_ALERT_TESTS}
    assert set(TESTS_DIR.glob("*.test.yml")) == run_by_pytest
