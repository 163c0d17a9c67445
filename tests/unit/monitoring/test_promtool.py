"""The rendered files pass promtool/amtool, and the promtool unit tests prove all 18 alerts (R6: 18/18).

promtool and amtool come from Debian's prometheus and prometheus-alertmanager packages; a missing binary is
a failure, not a skip.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

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

from .conftest import REPO_ROOT

TESTS_DIR = REPO_ROOT / "monitoring" / "tests"
LOCAL_ALERT_TESTS = TESTS_DIR / "gx-backend-cqrs-alerts.test.yml"
KUBERNETES_ALERT_TESTS = TESTS_DIR / "kubernetes-resource-alerts.test.yml"
KUBERNETES_ONLY_VARIANTS = {"BackendHighCPU", "BackendHighMemory", "BackendPodRestartLoop"}


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"


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


def test_promtool_unit_tests_of_the_local_rules_pass(promtool: str, tmp_path: Path,
                                                     rendered: dict[str, Artifact]) -> None:
    # Run against a fresh render (laid out like the repository), so the tests prove the code, not a stale file.
    write_artifacts(tmp_path, list(rendered.values()))
    tests_copy = tmp_path / "monitoring" / "tests"
    tests_copy.mkdir(parents=True)
    shutil.copy(LOCAL_ALERT_TESTS, tests_copy)
    result = run(promtool, "test", "rules", str(tests_copy / LOCAL_ALERT_TESTS.name))
    assert_ok(result)


def test_promtool_unit_tests_of_the_kubernetes_resource_rules_pass(promtool: str, tmp_path: Path,
                                                                   rendered: dict[str, Artifact]) -> None:
    (tmp_path / RULES_KEY).write_text(config_map_file(rendered[str(K8S_ALERTS_FILE)].content, RULES_KEY))
    shutil.copy(KUBERNETES_ALERT_TESTS, tmp_path)
    assert_ok(run(promtool, "test", "rules", KUBERNETES_ALERT_TESTS.name, cwd=tmp_path))


def _cases(test_file: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per alert name: the expected-firing and expected-silent checks of a promtool test file."""
    cases: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for group in yaml.safe_load(test_file.read_text())["tests"]:
        for check in group.get("alert_rule_test", []):
            kind = "fires" if check.get("exp_alerts") else "silent"
            cases.setdefault(check["alertname"], {"fires": [], "silent": []})[kind].append(check)
    return cases


def _assert_fully_checked(alert: str, check: dict[str, Any]) -> None:
    for expected in check["exp_alerts"]:
        assert {"severity", "component"} <= set(expected["exp_labels"]), alert
        annotations = expected["exp_annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, alert
        assert annotations["runbook_url"].endswith(f"/{alert}.md"), alert


def test_every_one_of_the_18_alerts_has_a_firing_and_a_silent_case() -> None:
    cases = _cases(LOCAL_ALERT_TESTS)
    proven = [name for name in ALERT_NAMES
              if cases.get(name, {}).get("fires") and cases.get(name, {}).get("silent")]
    for name in proven:
        for check in cases[name]["fires"]:
            _assert_fully_checked(name, check)
    assert set(cases) <= set(ALERT_NAMES), f"tests for unknown alerts: {set(cases) - set(ALERT_NAMES)}"
    assert len(proven) == 18, f"{len(proven)}/18 alerts proven; missing: {sorted(set(ALERT_NAMES) - set(proven))}"


def test_kubernetes_variants_of_the_resource_alerts_have_a_firing_and_a_silent_case() -> None:
    cases = _cases(KUBERNETES_ALERT_TESTS)
    assert set(cases) == KUBERNETES_ONLY_VARIANTS
    for name, kinds in cases.items():
        assert kinds["fires"] and kinds["silent"], name
        for check in kinds["fires"]:
            _assert_fully_checked(name, check)
