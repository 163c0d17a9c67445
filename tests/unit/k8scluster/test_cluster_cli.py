"""``gx k8s status`` without an environment reports the local cluster; with one it still reports rollouts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.platform.cli import k8s


def test_status_json_of_a_cluster_never_started_says_not_running_and_what_is_cached(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GX_K8S_CLUSTER_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GX_K8S_CACHE_ROOT", str(tmp_path / "cache"))

    result = CliRunner().invoke(k8s, ["status", "--json"])

    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    assert status["running"] is False
    assert (status["processes"], status["nodes"], status["binaries"]) == ([], [], {})
    assert status["state_dir"] == str(tmp_path / "state")


def test_status_with_an_environment_still_takes_the_rollout_path() -> None:
    result = CliRunner().invoke(k8s, ["status", "nosuchenv"])
    assert result.exit_code != 0 and "nosuchenv" in result.output
