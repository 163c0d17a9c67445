"""What a notebook's first and last cells do: validate the parameters cell, then summarise and fail on a failure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gxlib.runbook import ChecksFailed, InvalidParameter, MainnetNotConfirmed, start
from gxlib.runbook.settings import RECORD_DIR_VARIABLE, RunbookSettings


def _globals(**overrides: object) -> dict[str, object]:
    # What a notebook's globals() looks like: the parameters plus IPython's own names.
    names: dict[str, object] = {"In": [], "Out": {}, "get_ipython": None, "env": "local", "dry_run": False,
                                "confirm_mainnet": False, "mint_amount": 500}
    names.update(overrides)
    return names


def test_start_validates_the_parameters_cell_values_and_ignores_other_globals() -> None:
    rb = start("04-validate-cqrs", _globals(), environ={})
    assert rb.params.mint_amount == 500  # type: ignore[attr-defined]
    assert rb.dry_run is False and rb.record_dir is None


def test_start_stops_on_an_invalid_parameter_before_anything_else() -> None:
    with pytest.raises(InvalidParameter) as caught:
        start("04-validate-cqrs", _globals(mint_amount=-1), environ={})
    assert caught.value.parameter == "mint_amount"


def test_start_refuses_mainnet_without_confirmation() -> None:
    with pytest.raises(MainnetNotConfirmed):
        start("01-deploy-monitoring", {"env": "mainnet", "dry_run": True}, environ={})


def test_forced_dry_run_wins_over_the_parameters_cell() -> None:
    rb = start("04-validate-cqrs", _globals(), settings=RunbookSettings(force_dry_run=True), environ={})
    assert rb.dry_run is True


def test_finish_writes_the_summary_into_the_record_and_masks_secrets(tmp_path: Path) -> None:
    environ = {RECORD_DIR_VARIABLE: str(tmp_path), "GX_API_TOKEN": "tok-secret"}
    rb = start("04-validate-cqrs", _globals(), environ=environ)
    rb.checks.below("projection lag", 100, 5000, unit="ms")
    rb.finish()
    assert rb.summary()["passed"] is True
    written = (tmp_path / "summary.json").read_text()
    assert json.loads(written)["checks"][0]["name"] == "projection lag"
    assert "tok-secret" not in written and json.loads(written)["parameters"]["api_token"] == "***"


def test_finish_raises_checks_failed_naming_the_failed_checks(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    rb = start("05-validate-monitoring", {"env": "local"}, environ={RECORD_DIR_VARIABLE: str(tmp_path)})
    rb.checks.equal("rules loaded", 17, 18)
    rb.checks.below("projection lag", 100, 5000, unit="ms")
    with pytest.raises(ChecksFailed) as caught:
        rb.finish()
    assert caught.value.failed == ["rules loaded"] and "1 of 2 checks failed" in caught.value.message
    shown = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert ["rules", "loaded", "FAIL", "17", "18"] in shown  # the table is shown before the failure
    assert json.loads((tmp_path / "summary.json").read_text())["failed_checks"] == ["rules loaded"]


def test_a_secret_quoted_in_a_step_error_is_masked_in_the_summary(tmp_path: Path) -> None:
    from gxlib.runbook import StepFailed

    environ = {RECORD_DIR_VARIABLE: str(tmp_path), "GX_API_TOKEN": "tok-echoed"}
    rb = start("03-bootstrap-system", {}, environ=environ)

    def echoing_server() -> None:
        raise PermissionError("401 for Authorization: Bearer tok-echoed")

    with pytest.raises(StepFailed):
        rb.step("submit BOOTSTRAP_SYSTEM", changes="one command", apply=echoing_server)
    rb.finish()
    written = (tmp_path / "summary.json").read_text()
    assert "Bearer ***" in written and "tok-echoed" not in written
