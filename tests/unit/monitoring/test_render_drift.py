"""The committed artifacts are exactly what `gx monitoring render` produces from the definitions in gxlib."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from gxlib.cli import cli
from gxlib.monitoring.render import committed_artifacts, stale_artifacts

from .conftest import REPO_ROOT


def test_committed_artifacts_equal_a_fresh_render_byte_for_byte() -> None:
    for artifact in committed_artifacts():
        committed = REPO_ROOT / artifact.path
        assert committed.is_file(), f"{artifact.path} is missing: run `gx monitoring render` and commit it"
        assert committed.read_bytes() == artifact.content.encode("utf-8"), (
            f"{artifact.path} differs from a fresh render: run `gx monitoring render` and commit the result")


def test_render_is_deterministic() -> None:
    assert [a.content for a in committed_artifacts()] == [a.content for a in committed_artifacts()]


def test_render_ignores_the_environment(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GX_DEVNET_PORT_OFFSET", "1234")
    monkeypatch.setenv("GX_MONITORING_LOCAL_STACK__PROMETHEUS_PORT", "1")
    assert stale_artifacts(REPO_ROOT, committed_artifacts()) == []


def test_render_command_writes_every_artifact_and_check_detects_an_edit(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["monitoring", "render", "--root", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for artifact in committed_artifacts():
        assert (tmp_path / artifact.path).read_text(encoding="utf-8") == artifact.content

    assert runner.invoke(cli, ["monitoring", "render", "--root", str(tmp_path), "--check"]).exit_code == 0
    edited = tmp_path / "monitoring/prometheus/rules/gx-backend-cqrs-alerts.yml"
    edited.write_text(edited.read_text(encoding="utf-8").replace("> 5000", "> 6000"), encoding="utf-8")
    result = runner.invoke(cli, ["monitoring", "render", "--root", str(tmp_path), "--check"])
    assert result.exit_code == 1
    assert "gx-backend-cqrs-alerts.yml" in result.output
