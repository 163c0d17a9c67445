"""Running the promtool unit tests of monitoring/tests/ and reading which alerts they prove.

One test file per alert area (``<area>.test.yml``, as gxlib/monitoring/alerts/<area>.py), plus
``infrastructure-kubernetes.test.yml`` for the Kubernetes variant of the resource alerts.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from gxlib.monitoring.render import K8S_ALERTS_FILE, RULES_KEY, Artifact, config_map_file, write_artifacts

from .conftest import REPO_ROOT

TESTS_DIR = REPO_ROOT / "monitoring" / "tests"
AREAS: tuple[str, ...] = ("slo", "outbox", "fabric", "projector", "infrastructure")
KUBERNETES_ALERT_TESTS = TESTS_DIR / "infrastructure-kubernetes.test.yml"


def area_tests(area: str) -> Path:
    """The promtool test file of one alert area (local variant of the rules)."""
    return TESTS_DIR / f"{area}.test.yml"


def run(*command: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def assert_ok(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, f"{' '.join(result.args)} failed:\n{result.stdout}\n{result.stderr}"


def assert_local_tests_pass(promtool: str, tmp_path: Path, rendered: dict[str, Artifact], tests: Path) -> None:
    """``promtool test rules`` on ``tests`` against a fresh render laid out like the repository, so the tests
    prove the code, not a stale committed file."""
    write_artifacts(tmp_path, list(rendered.values()))
    tests_copy = tmp_path / "monitoring" / "tests"
    tests_copy.mkdir(parents=True)
    shutil.copy(tests, tests_copy)
    assert_ok(run(promtool, "test", "rules", str(tests_copy / tests.name)))


def assert_kubernetes_tests_pass(promtool: str, tmp_path: Path, rendered: dict[str, Artifact], tests: Path) -> None:
    """``promtool test rules`` on ``tests`` against the rules file inside the freshly rendered ConfigMap."""
    (tmp_path / RULES_KEY).write_text(config_map_file(rendered[str(K8S_ALERTS_FILE)].content, RULES_KEY))
    shutil.copy(tests, tmp_path)
    assert_ok(run(promtool, "test", "rules", tests.name, cwd=tmp_path))


def cases(test_file: Path) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Per alert name: the expected-firing and expected-silent checks of a promtool test file."""
    found: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for group in yaml.safe_load(test_file.read_text())["tests"]:
        for check in group.get("alert_rule_test", []):
            kind = "fires" if check.get("exp_alerts") else "silent"
            found.setdefault(check["alertname"], {"fires": [], "silent": []})[kind].append(check)
    return found


def proven_alerts(test_file: Path) -> set[str]:
    """The alerts that ``test_file`` checks both firing and silent."""
    return {name for name, kinds in cases(test_file).items() if kinds["fires"] and kinds["silent"]}


def assert_fully_checked(alert: str, check: dict[str, Any]) -> None:
    for expected in check["exp_alerts"]:
        assert {"severity", "component"} <= set(expected["exp_labels"]), alert
        annotations = expected["exp_annotations"]
        assert set(annotations) == {"summary", "description", "runbook_url"}, alert
        assert annotations["runbook_url"].endswith(f"/{alert}.md"), alert


def assert_each_alert_fires_and_stays_silent(test_file: Path, alerts: tuple[str, ...] | set[str]) -> None:
    """``test_file`` tests exactly ``alerts``, each with a firing case (labels and annotations checked) and a
    silent one."""
    found = cases(test_file)
    assert set(found) <= set(alerts), f"{test_file.name} tests alerts of another area: {set(found) - set(alerts)}"
    missing = sorted(set(alerts) - proven_alerts(test_file))
    assert not missing, f"{test_file.name} lacks a firing or a silent case for {missing}"
    for name in alerts:
        for check in found[name]["fires"]:
            assert_fully_checked(name, check)
