"""Each notebook's parameters cell reads like the model: one line per field, in the model's order, commented with
the field's description — so JupyterLab shows the operator what `gx runbook list` does."""

from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

from gxlib.runbook import runbooks
from gxlib.runbook.registry import RunbookSpec

NOTEBOOKS = Path(__file__).resolve().parents[3] / "notebooks"


def _parameter_lines(spec: RunbookSpec) -> list[tuple[str, str]]:
    """(name, comment) of each assignment in the notebook's tagged parameters cell, in order."""
    nb = nbformat.read(NOTEBOOKS / spec.notebook, as_version=4)
    (cell,) = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    found = []
    for line in cell.source.splitlines():
        if not line or line.startswith("#"):
            continue
        (node,) = ast.parse(line).body
        assert isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name), line
        _, _, comment = line.partition("  # ")
        found.append((node.targets[0].id, comment))
    return found


@pytest.mark.parametrize("spec", list(runbooks()), ids=lambda s: s.name)
def test_parameters_cell_lists_the_fields_in_model_order_with_their_descriptions(spec: RunbookSpec) -> None:
    assert _parameter_lines(spec) == [(name, text) for name, _, text in spec.describe_parameters()]
