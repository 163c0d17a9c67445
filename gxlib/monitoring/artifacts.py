"""The three monitoring artifacts a deployment holds — scrape config, alert rules, dashboard — each as rendered from
code next to its deployed copy, which is what runbook 01 shows, diffs and applies on any platform.

    artifact = MonitoringArtifact(ALERT_RULES, "ConfigMap fabric/prometheus-gx-alerts", rendered, deployed)
    if artifact.changed: print(artifact.diff())
"""

from __future__ import annotations

from dataclasses import dataclass

from gxlib.monitoring.render import unified_diff

SCRAPE_CONFIG, ALERT_RULES, DASHBOARD = "scrape config", "alert rules", "dashboard"
MAX_DIFF_LINES = 300


@dataclass(frozen=True)
class MonitoringArtifact:
    """One rendered artifact next to its deployed copy (``deployed`` None: nothing deployed yet)."""

    name: str
    location: str
    rendered: str
    deployed: str | None

    @property
    def changed(self) -> bool:
        return self.rendered != self.deployed

    @property
    def state(self) -> str:
        if self.deployed is None:
            return "new"
        return "changed" if self.changed else "unchanged"

    def diff(self, max_lines: int | None = MAX_DIFF_LINES) -> str:
        return unified_diff(self.deployed, self.rendered, self.location, max_lines=max_lines)

    def changed_lines(self) -> int:
        return sum(1 for line in self.diff(None).splitlines()
                   if line[:1] in "+-" and not line.startswith(("+++", "---")))
