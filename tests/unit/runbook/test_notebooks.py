"""The five runbook notebooks are committed thin and clean: no outputs, one parameters cell equal to the model."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import nbformat
import pytest

from gxlib.runbook import runbooks
from gxlib.runbook.registry import RunbookSpec
from gxlib.runbook.settings import KERNEL_NAME

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"
SPECS = list(runbooks())


def _read(spec: RunbookSpec) -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOKS / spec.notebook, as_version=4)


def _assignments(source: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, ast.dump(node)
        target = node.targets[0]
        assert isinstance(target, ast.Name)
        values[target.id] = ast.literal_eval(node.value)
    return values


def test_every_registered_runbook_has_a_notebook_and_no_other_notebook_exists() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == sorted(spec.notebook for spec in SPECS)


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_notebook_is_valid_and_committed_without_outputs(spec: RunbookSpec) -> None:
    nb = _read(spec)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source
    assert "papermill" not in nb.metadata
    assert nb.metadata.kernelspec.name == KERNEL_NAME


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_parameters_cell_holds_exactly_the_models_fields_with_their_defaults(spec: RunbookSpec) -> None:
    tagged = [c for c in _read(spec).cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert _assignments(tagged[0].source) == spec.defaults()


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: s.name)
def test_notebook_validates_through_gxlib_first_and_ends_with_the_summary(spec: RunbookSpec) -> None:
    code = [c.source for c in _read(spec).cells if c.cell_type == "code"]
    assert "parameters" in _read(spec).cells[1].metadata.get("tags", [])
    assert f'start("{spec.name}", globals())' in code[1]
    assert code[-1].strip() == "rb.finish()"
