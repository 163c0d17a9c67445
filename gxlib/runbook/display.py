"""What a runbook shows the operator between its steps: tables, Markdown, diffs — rich in a notebook, plain text
otherwise (papermill logs, tests calling the steps directly).

A table in a notebook is an HTML table (``Table``): no index column, every text whole, pass/fail/skip coloured
and marked, chain amounts with thousands separators and in coins (1 coin = 100,000,000 units). It carries inline
styles only, so JupyterLab and the HTML record (nbconvert) show it alike.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console

from gxlib.runbook.checks import summary_text

UNITS_PER_COIN = 100_000_000  # chaincode units per coin (SPEC §2)

# Columns that hold amounts in chaincode units; "ledger"/"read model" hold amounts only when they are that large
# (the same columns also show small facts such as a user number).
_AMOUNT_COLUMN = re.compile(r"balance|minted|amount|supply", re.IGNORECASE)
_MAYBE_AMOUNT_COLUMN = re.compile(r"^(ledger|read model)$", re.IGNORECASE)
_UNITS_TEXT = re.compile(r"^(?P<prefix>(?:[<>]=?|==)?\s*)(?P<units>-?\d+) units$")

GOOD, BAD, NEUTRAL = "good", "bad", "neutral"
_VERDICTS = {
    "pass": GOOD, "ok": GOOD, "changed": GOOD, "already done": GOOD, "up": GOOD, "inactive": GOOD,
    "fail": BAD, "failed": BAD, "breach": BAD, "firing": BAD, "down": BAD,
    "skipped": NEUTRAL, "would change (dry run)": NEUTRAL, "pending": NEUTRAL, "no data": NEUTRAL,
}
_MARKS = {GOOD: "✓", BAD: "✗", NEUTRAL: "–"}
_STYLES = {GOOD: "color:#0b6e29;background:#e3f6e8;font-weight:600",
           BAD: "color:#a1121b;background:#fde4e4;font-weight:700",
           NEUTRAL: "color:#6b5b00;background:#fff6d6"}
_VERDICT_COLUMNS = {"status", "outcome", "state"}


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def operator_console() -> Console:
    """The console a runbook's progress lines go to.

    In a notebook the lines are written as plain stream output (ANSI colours, which JupyterLab and nbconvert both
    render), never as rich's Jupyter HTML: that is a ``<pre>`` whose last line clips the underscores
    (``commit_timeout_s`` read as "commit timeout s"). Elsewhere: stderr, as every gx command.
    """
    if in_notebook():
        return Console(force_jupyter=False, force_terminal=True, color_system="standard", highlight=False,
                       soft_wrap=True)
    return Console(stderr=True, highlight=False)


def format_units(units: int) -> str:
    """``1234500000000`` → ``"12,345 coins (1,234,500,000,000 units)"``."""
    whole, rest = divmod(abs(units), UNITS_PER_COIN)
    sign = "-" if units < 0 else ""
    fraction = f".{rest:08d}".rstrip("0") if rest else ""
    noun = "coin" if abs(units) == UNITS_PER_COIN else "coins"
    return f"{sign}{whole:,}{fraction} {noun} ({units:,} units)"


def verdict(value: object) -> str | None:
    """GOOD, BAD or NEUTRAL for a status/outcome value; ``None`` for anything else."""
    return _VERDICTS.get(str(value).strip().lower()) if value is not None else None


def format_cell(column: str, value: Any) -> str:
    """The text a table shows for ``value`` in ``column`` (see the module docstring)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        if _AMOUNT_COLUMN.search(column) or (_MAYBE_AMOUNT_COLUMN.match(column) and abs(value) >= UNITS_PER_COIN):
            return format_units(value)
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.6g}" if abs(value) < 1e6 else f"{value:,.2f}"
    text = str(value)
    units = _UNITS_TEXT.match(text)
    if units:
        return f"{units['prefix']}{format_units(int(units['units']))}"
    return text


@dataclass(frozen=True)
class Table:
    """A titled table for a notebook: HTML (``_repr_html_``) with aligned plain text as its ``text/plain``."""

    title: str
    rows: list[dict[str, Any]]
    columns: tuple[str, ...]

    def cells(self) -> list[list[str]]:
        return [[format_cell(c, row.get(c)) for c in self.columns] for row in self.rows]

    def text(self) -> str:
        shown = [dict(zip(self.columns, cells, strict=True)) for cells in self.cells()]
        return f"{self.title}\n{summary_text(shown, self.columns)}"

    def __repr__(self) -> str:
        return self.text()

    def _repr_html_(self) -> str:
        cell = "padding:3px 10px;text-align:left;vertical-align:top;white-space:pre-wrap;overflow-wrap:break-word"
        head = "".join(f'<th style="{cell};white-space:nowrap;border-bottom:1px solid #999">{html.escape(c)}</th>'
                       for c in self.columns)
        body = []
        for row, cells in zip(self.rows, self.cells(), strict=True):
            tds = []
            for column, text in zip(self.columns, cells, strict=True):
                kind = verdict(row.get(column)) if column in _VERDICT_COLUMNS else None
                if kind is None:
                    tds.append(f'<td style="{cell}">{html.escape(text)}</td>')
                else:
                    tds.append(f'<td class="gx-{kind}" style="{cell};white-space:nowrap;{_STYLES[kind]}">'
                               f"{_MARKS[kind]} {html.escape(text)}</td>")
            body.append(f"<tr>{''.join(tds)}</tr>")
        if not body:
            body.append(f'<tr><td style="{cell}" colspan="{len(self.columns)}">(none)</td></tr>')
        return (f'<table class="gx-table" style="border-collapse:collapse;margin:4px 0 12px 0">'
                f'<caption style="text-align:left;font-weight:700;padding:2px 0">{html.escape(self.title)}</caption>'
                f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>")


def show_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A titled table: HTML in a notebook (see ``Table``), aligned text elsewhere."""
    table = Table(title, [dict(row) for row in rows], tuple(columns))
    if in_notebook():
        from IPython.display import display

        display(table)
    else:
        print(f"{table.text()}\n")


def show_markdown(text: str) -> None:
    if in_notebook():
        from IPython.display import Markdown, display

        display(Markdown(text))
    else:
        print(text)


def show_diff(title: str, diff: str) -> None:
    """A unified diff under a heading: a highlighted ``diff`` block in a notebook, the plain diff elsewhere."""
    if in_notebook():
        from IPython.display import Markdown, display

        # Four backticks: a diff line holding a triple backtick (a description in the rules) cannot close it.
        display(Markdown(f"**{title}**\n\n````diff\n{diff}\n````"))
    else:
        print(f"{title}\n{diff}\n")
