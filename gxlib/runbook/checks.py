"""Checks a runbook records — name, pass/fail, measured value, what was expected — and their summary table."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


class CheckStatus(StrEnum):
    PASSED = "pass"
    FAILED = "FAIL"
    SKIPPED = "skipped"


@dataclass(frozen=True)
class Check:
    """One verified fact: ``measured`` against ``expected`` (an SLO, a count, a state)."""

    name: str
    status: CheckStatus
    measured: str = ""
    expected: str = ""
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}


def _show(value: object, unit: str) -> str:
    if value is None:
        return ""
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return f"{text} {unit}".strip()


class Checks:
    """The checks of one run, in the order they were made."""

    def __init__(self) -> None:
        self._items: list[Check] = []

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def _add(self, name: str, passed: bool, measured: str, expected: str, detail: str) -> Check:
        check = Check(name, CheckStatus.PASSED if passed else CheckStatus.FAILED, measured, expected, detail)
        self._items.append(check)
        return check

    def record(self, name: str, passed: bool, *, measured: object = None, expected: object = None,
               unit: str = "", detail: str = "") -> Check:
        """Record a check whose outcome the caller decided."""
        return self._add(name, passed, _show(measured, unit), _show(expected, unit), detail)

    def below(self, name: str, measured: float, limit: float, *, unit: str = "", detail: str = "") -> Check:
        """Pass when ``measured < limit`` (latencies, lag against an SLO)."""
        return self._add(name, measured < limit, _show(measured, unit), f"< {_show(limit, unit)}", detail)

    def at_least(self, name: str, measured: float, minimum: float, *, unit: str = "", detail: str = "") -> Check:
        """Pass when ``measured >= minimum`` (success rates, counts)."""
        return self._add(name, measured >= minimum, _show(measured, unit), f">= {_show(minimum, unit)}", detail)

    def equal(self, name: str, measured: object, expected: object, *, unit: str = "", detail: str = "") -> Check:
        """Pass when ``measured == expected`` (balances, rule counts, states)."""
        return self._add(name, measured == expected, _show(measured, unit), _show(expected, unit), detail)

    def skip(self, name: str, reason: str, *, expected: object = None, unit: str = "") -> Check:
        """A check that was not made (e.g. in a dry run); it neither passes nor fails the run."""
        check = Check(name, CheckStatus.SKIPPED, "", _show(expected, unit), reason)
        self._items.append(check)
        return check

    def failed(self) -> list[Check]:
        return [c for c in self._items if c.status is CheckStatus.FAILED]

    def as_records(self) -> list[dict[str, str]]:
        return [c.as_dict() for c in self._items]


COLUMNS = ("name", "status", "measured", "expected", "detail")


def summary_frame(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """A DataFrame of check (or step) rows, for display in the notebook."""
    import pandas as pd

    return pd.DataFrame(rows, columns=list(columns))


def summary_text(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> str:
    """The same table as plain text, for the command line and logs."""
    if not rows:
        return "(none)"
    cells = [[str(row.get(c, "")) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)
