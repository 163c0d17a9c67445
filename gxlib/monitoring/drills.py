"""The log of circuit-breaker drills (runbook 05), kept next to the monitoring stack they were watched by.

A drill is a deliberate Gateway outage: the retries it causes count against the Transaction Success Rate SLO
(``status="retry"`` is in its denominator) for as long as they are inside the SLO's 5-minute rate window. A later
run reads this log to tell such a self-inflicted breach from a real one, instead of failing on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

DRILL_LOG_NAME = "breaker-drills.jsonl"
# How far back the success-rate SLO looks (its `rate(...[5m])`), plus a scrape and an evaluation of slack.
SUCCESS_RATE_WINDOW = timedelta(minutes=5, seconds=30)


@dataclass(frozen=True)
class Drill:
    started: datetime
    ended: datetime

    def overlaps(self, since: datetime) -> bool:
        """Whether any of the drill lies after ``since``."""
        return self.ended >= since

    @property
    def affects_until(self) -> datetime:
        """Until when its retries count against the Transaction Success Rate (they leave the rate window)."""
        return self.ended + SUCCESS_RATE_WINDOW

    def affects(self, moment: datetime) -> bool:
        """Whether ``moment`` lies in the drill or while its retries are still in the success-rate window."""
        return self.started <= moment <= self.affects_until


class DrillLog:
    """Append-only JSON lines: one ``{"started", "ended"}`` per drill (ISO 8601, UTC)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / DRILL_LOG_NAME

    def record(self, started: datetime, ended: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps({"started": started.astimezone(UTC).isoformat(), "ended": ended.astimezone(UTC).isoformat()})
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(line + "\n")

    def drills(self) -> list[Drill]:
        if not self.path.is_file():
            return []
        found = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                entry = json.loads(line)
                found.append(Drill(datetime.fromisoformat(entry["started"]), datetime.fromisoformat(entry["ended"])))
            except (ValueError, KeyError, TypeError):
                continue  # a torn or foreign line tells nothing; the others still count
        return found

    def affecting(self, start: datetime, end: datetime) -> list[Drill]:
        """The drills whose outage or aftermath (``affects_until``) reaches into [start, end], oldest first."""
        return sorted((drill for drill in self.drills() if drill.started <= end and drill.affects_until >= start),
                      key=lambda drill: drill.started)

    def latest_within(self, window: timedelta, now: datetime | None = None) -> Drill | None:
        """The most recent drill that reaches into the last ``window``, if any."""
        since = (now or datetime.now(UTC)) - window
        recent = [drill for drill in self.drills() if drill.overlaps(since)]
        return max(recent, key=lambda drill: drill.ended) if recent else None
