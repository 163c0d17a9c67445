"""The log of circuit-breaker drills, which moved to :mod:`gxlib.monitoring.drills` (the SLO report reads it too);
imported from here by the runbook steps."""

from gxlib.monitoring.drills import DRILL_LOG_NAME, SUCCESS_RATE_WINDOW, Drill, DrillLog

__all__ = ["DRILL_LOG_NAME", "SUCCESS_RATE_WINDOW", "Drill", "DrillLog"]
