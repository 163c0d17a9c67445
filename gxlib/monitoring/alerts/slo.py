"""SLO alerts: transaction success rate, projection lag and API P95 latency (SPEC §6 rules 1–5).

The warning tier of each is the SLO target of the catalog; the critical tier is the point where users notice.
"""

from __future__ import annotations

from gxlib.monitoring.alerts.rule import INSTANCE, NAMESPACE, SERVICE, AlertRule, Severity, number, value
from gxlib.monitoring.catalog import series
from gxlib.monitoring.settings import MonitoringConfig

ALERT_NAMES: tuple[str, ...] = (
    "TransactionSuccessRateBelowSLO",
    "ProjectionLagExceedsSLO",
    "ProjectionLagCritical",
    "APIResponseTimeSlow",
    "APIResponseTimeCritical",
)


def slo_rules(config: MonitoringConfig) -> list[AlertRule]:
    """The SLO alerts, in SPEC §6 order."""
    t = config.thresholds
    backend = config.selectors.backend_series
    processed, succeeded = "outbox_commands_processed_total", 'status="success"'
    success_rate = (f"sum by (namespace) (rate({series(processed, succeeded, backend)}[5m])) "
                    f"/ sum by (namespace) (rate({series(processed, backend)}[5m])) * 100")
    api_p95 = ("histogram_quantile(0.95, sum by (le, namespace, service) "
               f"(rate({series('http_request_duration_ms_bucket', backend)}[5m])))")
    lag = series("projector_lag_milliseconds", backend)
    success_slo = number(t.transaction_success_rate_percent)
    return [
        AlertRule(
            "TransactionSuccessRateBelowSLO", f"{success_rate} < {success_slo}", "5m", Severity.CRITICAL,
            "outbox-submitter",
            f"Outbox command success rate in {NAMESPACE} is below the {success_slo}% SLO",
            f"Over the last 5 minutes {value(2)}% of the outbox commands in {NAMESPACE} succeeded "
            f"(SLO: {success_slo}%).",
        ),
        AlertRule(
            "ProjectionLagExceedsSLO", f"{lag} > {number(t.projection_lag_warning_ms)}", "2m", Severity.WARNING,
            "projector",
            f"Projection lag in {NAMESPACE} exceeds the {number(t.projection_lag_warning_ms)} ms SLO",
            f"The projector {INSTANCE} in {NAMESPACE} is {value(0)} ms behind the ledger "
            f"(SLO: below {number(t.projection_lag_warning_ms)} ms).",
        ),
        AlertRule(
            "ProjectionLagCritical", f"{lag} > {number(t.projection_lag_critical_ms)}", "1m", Severity.CRITICAL,
            "projector",
            f"Projection lag in {NAMESPACE} is above {number(t.projection_lag_critical_ms)} ms",
            f"The projector {INSTANCE} in {NAMESPACE} is {value(0)} ms behind the ledger; read models are stale "
            f"(critical above {number(t.projection_lag_critical_ms)} ms).",
        ),
        AlertRule(
            "APIResponseTimeSlow", f"{api_p95} > {number(t.api_p95_warning_ms)}", "5m", Severity.WARNING, "api",
            f"API P95 response time of {SERVICE} in {NAMESPACE} is above {number(t.api_p95_warning_ms)} ms",
            f"The 95th percentile of {SERVICE} request durations in {NAMESPACE} is {value(0)} ms over 5 minutes "
            f"(SLO: below {number(t.api_p95_warning_ms)} ms).",
        ),
        AlertRule(
            "APIResponseTimeCritical", f"{api_p95} > {number(t.api_p95_critical_ms)}", "2m", Severity.CRITICAL,
            "api",
            f"API P95 response time of {SERVICE} in {NAMESPACE} is above {number(t.api_p95_critical_ms)} ms",
            f"The 95th percentile of {SERVICE} request durations in {NAMESPACE} is {value(0)} ms over 5 minutes "
            f"(critical above {number(t.api_p95_critical_ms)} ms).",
        ),
    ]
