"""A run's record: one directory per run, named by UTC time and runbook, and secrets masked in every string."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from gxlib.runbook.records import MASK, RecordIO, Redactor, new_record_dir


def test_record_dirs_are_named_by_utc_time_and_runbook_and_never_shared(tmp_path: Path) -> None:
    when = datetime(2026, 11, 25, 13, 5, 9, tzinfo=UTC)
    first = new_record_dir(tmp_path / "runs", "03-bootstrap-system", when)
    second = new_record_dir(tmp_path / "runs", "03-bootstrap-system", when)
    assert first.name == "20261125T130509Z-03-bootstrap-system"
    assert second.name == "20261125T130509Z-03-bootstrap-system-2"
    assert first.is_dir() and second.is_dir()


def test_redactor_masks_secrets_in_every_string_of_a_document() -> None:
    redactor = Redactor(["tok-1", "tok-1-long", ""])
    document = {"cells": [{"source": "token = 'tok-1-long'", "outputs": [{"text": ["a tok-1 b"]}]}],
                "metadata": {"papermill": {"parameters": {"api_token": "tok-1"}}}, "count": 3}
    clean = redactor.document(document)
    text = json.dumps(clean)
    assert "tok-1" not in text
    assert clean["cells"][0]["source"] == f"token = '{MASK}'" and clean["count"] == 3


def test_record_io_writes_the_notebook_redacted_and_only_for_a_registered_run(tmp_path: Path) -> None:
    io = RecordIO()
    target = tmp_path / "run.ipynb"
    url = io.open(target, Redactor(["s3cr3t"]))
    io.write(json.dumps({"cells": [{"outputs": ["s3cr3t"]}], "metadata": {"papermill": {"output_path": url}}}), url)
    written = target.read_text()
    assert "s3cr3t" not in written and MASK in written
    assert json.loads(written)["metadata"]["papermill"]["output_path"] == str(target)
    io.close(target)
    with pytest.raises(PermissionError):
        io.write("{}", url)


def test_a_plotly_chart_shown_in_jupyterlab_is_in_the_html_record(tmp_path: Path) -> None:
    import nbformat
    import plotly.graph_objects as go

    from gxlib.runbook.records import PLOTLY_MIME, Redactor, write_html

    figure = go.Figure(go.Scatter(x=[1, 2, 3], y=[120, 4800, 260], name="lag (ms)"))
    figure.update_layout(title="Projection lag (ms)", height=320)
    notebook = nbformat.v4.new_notebook()
    # What JupyterLab (and papermill) store for `display(figure)`: the plotly MIME bundle and a text fallback.
    notebook.cells.append(nbformat.v4.new_code_cell("display(figure)", outputs=[nbformat.v4.new_output(
        "display_data", data={PLOTLY_MIME: figure.to_plotly_json(), "text/plain": "Figure({...})"})]))
    path = tmp_path / "05-validate-monitoring.ipynb"
    nbformat.write(notebook, path)
    write_html(path, tmp_path / "05-validate-monitoring.html", Redactor([]))
    record = (tmp_path / "05-validate-monitoring.html").read_text()
    assert 'class="plotly-graph-div"' in record and "Projection lag (ms)" in record
    assert "Plotly.newPlot" in record and "plotly.js v" in record  # drawn, with plotly.js inlined (no CDN)
    assert "Figure({...})" not in record


def test_the_local_token_file_is_masked_in_a_record_although_no_token_was_given(tmp_path: Path) -> None:
    from gxlib.runbook import prepare
    from gxlib.runbook.records import run_secrets

    devnet = tmp_path / "devnet"
    (devnet / "backend").mkdir(parents=True)
    (devnet / "devnet.json").write_text("{}")
    (devnet / "backend" / "api-token").write_text("t0ken-from-the-file\n")
    _, params = prepare("04-validate-cqrs", {"devnet_state_dir": str(devnet)}, environ={})
    assert params.secret_values() == [] and run_secrets(params) == ["t0ken-from-the-file"]
    masked = Redactor(run_secrets(params)).text("Authorization: Bearer t0ken-from-the-file")
    assert masked == f"Authorization: Bearer {MASK}"
    _, given = prepare("04-validate-cqrs", {"devnet_state_dir": str(devnet)}, environ={"GX_API_TOKEN": "env-t0ken"})
    assert sorted(run_secrets(given)) == ["env-t0ken", "t0ken-from-the-file"]


def test_a_secret_the_run_came_upon_is_masked_in_its_summary(tmp_path: Path) -> None:
    from gxlib.progress import Progress
    from gxlib.runbook import prepare, runbook
    from gxlib.runbook.session import SUMMARY_FILE, Runbook

    _, params = prepare("01-deploy-monitoring", {}, environ={})
    rb = Runbook(runbook("01-deploy-monitoring"), params, dry_run=True, record_dir=tmp_path,
                 progress=Progress(quiet=True))
    rb.add_secret("found-t0ken")
    rb.checks.record("echo", True, detail="the API said: Bearer found-t0ken")
    rb.finish()
    text = (tmp_path / SUMMARY_FILE).read_text()
    assert "found-t0ken" not in text and f"Bearer {MASK}" in text
