"""papermill end to end on a toy runbook: injected parameters, dry run, records, redaction, failing checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gxlib.progress import Progress
from gxlib.runbook import RunbookFailed, RunRecord, run
from gxlib.runbook.settings import KERNEL_NAME, RunbookSettings
from tests.notebooks.toy_runbook import NOTEBOOKS_DIR, TOKEN_VARIABLE, TOY

REPO_ROOT = Path(__file__).resolve().parents[3]
TOKEN = "tok-Zq8xW3vR-not-for-records"


@pytest.fixture
def settings(tmp_path: Path, gx_kernel: str, monkeypatch: pytest.MonkeyPatch) -> RunbookSettings:
    # The toy notebook imports tests.notebooks.toy_runbook: the kernel finds it through PYTHONPATH.
    monkeypatch.setenv("PYTHONPATH", str(REPO_ROOT))
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    return RunbookSettings(runs_dir=tmp_path / "runs", notebooks_dir=NOTEBOOKS_DIR, kernel_name=gx_kernel)


def _outputs(record: Path) -> str:
    nb = nbformat.read(record, as_version=4)
    return "\n".join(json.dumps(cell.get("outputs", [])) for cell in nb.cells)


def _run(settings: RunbookSettings, marker: Path, **parameters: object) -> RunRecord:
    return run(TOY, {"marker_file": str(marker), **parameters}, settings=settings, progress=Progress(quiet=True))


def test_parameters_are_injected_and_the_step_changes_what_it_declared(settings: RunbookSettings,
                                                                       tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    record = _run(settings, marker, greeting="bonjour")
    assert marker.read_text() == "bonjour"
    assert "greeting is 'bonjour'" in _outputs(record.notebook)
    assert record.passed and record.summary is not None
    assert record.summary["steps"] == [{"name": "write the marker file", "outcome": "changed",
                                        "changes": f"create {marker}", "detail": ""}]
    injected = [c for c in nbformat.read(record.notebook, as_version=4).cells
                if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and "bonjour" in injected[0].source


def test_dry_run_reports_the_change_and_changes_nothing(settings: RunbookSettings, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    record = run(TOY, {"marker_file": str(marker)}, dry_run=True, settings=settings, progress=Progress(quiet=True))
    assert not marker.exists()
    assert record.summary is not None and record.summary["dry_run"] is True
    assert record.summary["steps"][0]["outcome"] == "would change (dry run)"


def test_a_second_run_reports_already_done_and_changes_nothing(settings: RunbookSettings, tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    _run(settings, marker, greeting="first")
    second = _run(settings, marker, greeting="second")
    assert marker.read_text() == "first"
    assert second.summary is not None and second.summary["steps"][0]["outcome"] == "already done"


def test_record_has_notebook_html_and_summary_and_never_the_token(settings: RunbookSettings, tmp_path: Path) -> None:
    record = _run(settings, tmp_path / "marker.txt", api_token=TOKEN)
    assert record.record_dir.parent == settings.runs_dir.resolve()
    assert record.record_dir.name.endswith("-toy-runbook")
    names = sorted(p.name for p in record.record_dir.iterdir())
    assert names == ["run.json", "summary.json", "toy-runbook.html", "toy-runbook.ipynb"]
    # The kernel did see the token (the notebook printed it), and the record shows *** in its place.
    assert "the kernel sees the token: ***" in _outputs(record.notebook)
    assert "<html" in record.html.read_text().lower()
    for path in [*record.record_dir.rglob("*"), *tmp_path.rglob("*")]:
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), f"token written to {path}"


def test_a_failing_check_fails_the_run_and_still_leaves_the_record(settings: RunbookSettings,
                                                                   tmp_path: Path) -> None:
    with pytest.raises(RunbookFailed) as caught:
        _run(settings, tmp_path / "marker.txt", fail_check=True)
    failure = caught.value
    assert failure.exception == "ChecksFailed" and "toy check" in failure.reason
    assert failure.cell_index is not None
    assert str(failure.record_dir) in (failure.hint or "")
    assert failure.summary is not None and failure.summary["failed_checks"] == ["toy check"]
    outcome = json.loads((failure.record_dir / "run.json").read_text())
    assert outcome["passed"] is False and outcome["error"]["exception"] == "ChecksFailed"
    assert (failure.record_dir / "toy-runbook.html").is_file()


def test_an_invalid_parameter_starts_no_kernel_and_leaves_no_record(settings: RunbookSettings) -> None:
    from gxlib.runbook import InvalidParameter

    with pytest.raises(InvalidParameter) as caught:
        run(TOY, {"fail_check": "sometimes"}, settings=settings, progress=Progress(quiet=True))
    assert caught.value.parameter == "fail_check"
    assert not settings.runs_dir.exists()


def test_a_missing_kernel_is_named_with_how_to_install_it(settings: RunbookSettings, tmp_path: Path) -> None:
    from gxlib.runbook import KernelNotInstalled

    with pytest.raises(KernelNotInstalled) as caught:
        run(TOY, {}, settings=settings.model_copy(update={"kernel_name": "no-such-kernel"}),
            progress=Progress(quiet=True))
    assert "gx runbook kernel" in (caught.value.hint or "")


def _papermill(notebook: Path, output: Path, *parameters: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "papermill", str(notebook), str(output), "-k", KERNEL_NAME,
                           *parameters], capture_output=True, text=True, check=False, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})


def test_papermill_alone_exits_non_zero_on_a_failing_check(gx_kernel: str, tmp_path: Path) -> None:
    output = tmp_path / "out.ipynb"
    result = _papermill(NOTEBOOKS_DIR / "toy-runbook.ipynb", output, "-p", "marker_file", str(tmp_path / "m"),
                        "-p", "fail_check", "True")
    assert result.returncode != 0
    assert "ChecksFailed" in result.stderr and "toy check" in result.stderr


def test_papermill_alone_stops_at_an_invalid_parameter_naming_it(gx_kernel: str, tmp_path: Path) -> None:
    marker = tmp_path / "m"
    result = _papermill(REPO_ROOT / "notebooks" / "04-validate-cqrs.ipynb", tmp_path / "out.ipynb",
                        "-p", "env", "mainnet")
    assert result.returncode != 0
    assert "MainnetNotConfirmed" in result.stderr and "confirm_mainnet" in result.stderr
    assert not marker.exists()



def test_a_run_shows_the_operator_no_kernel_transport_warning(settings: RunbookSettings, tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    # The kernel writes to the stderr it inherits, the one `gx runbook run` shows the operator.
    record = _run(settings, tmp_path / "marker.txt")
    shown = "".join(capfd.readouterr())
    assert record.passed
    assert "without encryption" not in shown and "over TCP" not in shown


def test_kernel_environ_reaches_the_kernel_and_not_this_process(settings: RunbookSettings, tmp_path: Path) -> None:
    """What `gx demo --env devnet` hands its kernels (GX_K8S_PLATFORM_*): the kernel's environment has it, the
    caller's does not change."""
    record = run(TOY, {"marker_file": str(tmp_path / "marker.txt")}, settings=settings, progress=Progress(quiet=True),
                 kernel_environ={TOKEN_VARIABLE: "set-for-the-kernel-only"})
    assert "the kernel sees the token: set-for-the-kernel-only" in _outputs(record.notebook)
    assert TOKEN_VARIABLE not in os.environ
