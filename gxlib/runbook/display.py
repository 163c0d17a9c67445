"""What a runbook shows the operator between its steps: tables, Markdown, diffs — rich in a notebook, plain text
otherwise (papermill logs, tests calling the steps directly)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from gxlib.runbook.checks import summary_frame, summary_text


def in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    return get_ipython() is not None


def show_table(title: str, rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """A titled table: a DataFrame in a notebook, aligned text elsewhere."""
    row_list = [dict(row) for row in rows]
    if in_notebook():
        import pandas as pd
        from IPython.display import Markdown, display

        display(Markdown(f"**{title}**"))
        with pd.option_context("display.max_colwidth", None):  # package IDs and paths are shown whole
            display(summary_frame(row_list, tuple(columns)))
    else:
        print(f"{title}\n{summary_text(row_list, tuple(columns))}\n")


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
