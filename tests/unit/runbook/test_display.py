"""How a runbook's tables and progress lines look to the operator, in JupyterLab and in the HTML record."""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from gxlib.runbook import display
from gxlib.runbook.checks import COLUMNS, Checks
from gxlib.runbook.display import Table, format_units
from gxlib.runbook.records import Redactor, write_html

LONG_DETAIL = ("bootstrapped before this run; the balance is 1 units now — later mints, transfers and genesis "
               "distributions change it")


def _checks_table() -> Table:
    checks = Checks()
    checks.equal("ledger SYSTEM_USER_GENESIS_POOL", 1_234_567_890_000_000, 1_234_567_890_000_000, unit="units")
    checks.record("rules loaded", False, measured=17, expected=18)
    checks.skip("read model mint", LONG_DETAIL)
    return Table("05-validate-monitoring — checks", checks.as_records(), COLUMNS)


def _cells(markup: str) -> list[list[str]]:
    rows = re.findall(r"<tr>(.*?)</tr>", markup)
    return [[re.sub(r"<[^>]+>", "", cell) for cell in re.findall(r"<t[dh][^>]*>.*?</t[dh]>", row)] for row in rows]


def test_a_table_has_no_index_column_only_the_named_ones() -> None:
    cells = _cells(_checks_table()._repr_html_())
    assert cells[0] == list(COLUMNS)
    assert cells[1][0] == "ledger SYSTEM_USER_GENESIS_POOL"
    assert all(len(row) == len(COLUMNS) for row in cells)


def test_a_long_detail_is_shown_whole() -> None:
    assert LONG_DETAIL in _checks_table()._repr_html_()


def test_pass_fail_and_skip_are_marked_and_coloured_differently() -> None:
    markup = _checks_table()._repr_html_()
    status = [re.search(r'<td class="gx-(\w+)"[^>]*>([^<]*)</td>', row) for row in re.findall(r"<tr>(.*?)</tr>",
                                                                                               markup)[1:]]
    assert [(m.group(1), m.group(2)) for m in status if m] == [("good", "✓ pass"), ("bad", "✗ FAIL"),
                                                               ("neutral", "– skipped")]
    styles = set(re.findall(r'class="gx-(?:good|bad|neutral)" style="([^"]*)"', markup))
    assert len(styles) == 3  # three different looks


def test_unit_amounts_are_shown_in_coins_with_separators() -> None:
    assert format_units(1_234_567_890_000_000) == "12,345,678.9 coins (1,234,567,890,000,000 units)"
    assert format_units(100_000_000) == "1 coin (100,000,000 units)"
    assert "12,345,678.9 coins (1,234,567,890,000,000 units)" in _cells(_checks_table()._repr_html_())[1][2]
    pools = Table("The pools on the ledger", [{"pool": "SYSTEM_LOAN_POOL", "ledger balance": 250_000_000}],
                  ("pool", "ledger balance"))
    assert _cells(pools._repr_html_())[1] == ["SYSTEM_LOAN_POOL", "2.5 coins (250,000,000 units)"]


def test_small_numbers_in_a_ledger_column_are_not_taken_for_amounts() -> None:
    user = Table("The test user", [{"field": "userNumber", "ledger": 42, "read model": 42}],
                 ("field", "ledger", "read model"))
    assert _cells(user._repr_html_())[1] == ["userNumber", "42", "42"]


def test_the_html_record_shows_the_table_as_jupyterlab_does(tmp_path: Path) -> None:
    table = _checks_table()
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell("rb.finish()", outputs=[nbformat.v4.new_output(
        "display_data", data={"text/html": table._repr_html_(), "text/plain": repr(table)})]))
    path = tmp_path / "run.ipynb"
    nbformat.write(notebook, path)
    write_html(path, tmp_path / "run.html", Redactor([]))
    record = (tmp_path / "run.html").read_text()
    assert table._repr_html_() in record
    assert "<th" in record and LONG_DETAIL in record


def test_in_a_notebook_progress_is_plain_stream_text_not_a_clipping_html_block(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(display, "in_notebook", lambda: True)
    console = display.operator_console()
    assert not console.is_jupyter  # rich's Jupyter HTML <pre> clips the underscores of its last line
    with console.capture() as captured:
        console.print("waiting (commit_timeout_s=30) for SYSTEM_USER_GENESIS_POOL")
    assert "commit_timeout_s=30" in captured.get() and "SYSTEM_USER_GENESIS_POOL" in captured.get()
