"""The backend's prometheus_client metrics, declared from the SPEC §4 catalog (never a second list of names).

Each service builds its own set into a registry it is given, so tests use a fresh ``CollectorRegistry``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy import Engine

from gxlib.backend.db import pool_figures
from gxlib.monitoring.catalog import Component, build_metrics, metrics_of


@dataclass(frozen=True)
class DbPoolMetrics:
    in_use: Gauge
    maximum: Gauge

    def observe(self, engine: Engine) -> None:
        figures = pool_figures(engine)
        self.in_use.set(figures.in_use)
        self.maximum.set(figures.maximum)


@dataclass(frozen=True)
class SubmitterMetrics:
    pending: Gauge
    processing: Gauge
    dlq: Gauge
    processed: Counter  # status, commandType
    breaker_state: Gauge
    submissions: Counter  # status
    tx_duration_ms: Histogram
    db_pool: DbPoolMetrics


@dataclass(frozen=True)
class ProjectorMetrics:
    lag_ms: Gauge
    processed: Counter  # eventType
    failed: Counter  # eventType
    duration_ms: Histogram
    checkpoint_block: Gauge
    db_pool: DbPoolMetrics


@dataclass(frozen=True)
class HttpMetrics:
    requests: Counter  # service, endpoint, method, status
    duration_ms: Histogram  # service, endpoint, method
    request_size: Histogram  # service, endpoint
    response_size: Histogram  # service, endpoint
    db_pool: DbPoolMetrics


def _declare(registry: CollectorRegistry, component: Component, runtime_collectors: bool) -> dict[str, object]:
    specs = metrics_of(component) + metrics_of(Component.DB_POOL)
    return dict(build_metrics(registry, specs, runtime_collectors=runtime_collectors))


def _pool(m: dict[str, object]) -> DbPoolMetrics:
    return DbPoolMetrics(cast(Gauge, m["db_pool_connections_in_use"]), cast(Gauge, m["db_pool_connections_max"]))


# The outcomes fabric_transaction_submissions_total counts. Both series exist from the start at 0, so the share of
# errors is 0% — not "no data" — while nothing has failed (the dashboard's Fabric Transaction Success Rate panel and
# the alert rules divide by them).
SUBMISSION_STATUSES = ("success", "error")


def submitter_metrics(registry: CollectorRegistry, *, runtime_collectors: bool = True) -> SubmitterMetrics:
    m = _declare(registry, Component.SUBMITTER, runtime_collectors)
    submissions = cast(Counter, m["fabric_transaction_submissions_total"])
    for status in SUBMISSION_STATUSES:
        submissions.labels(status=status)
    return SubmitterMetrics(
        cast(Gauge, m["outbox_pending_commands"]), cast(Gauge, m["outbox_processing_commands"]),
        cast(Gauge, m["outbox_dlq_commands"]), cast(Counter, m["outbox_commands_processed_total"]),
        cast(Gauge, m["circuit_breaker_state"]), submissions,
        cast(Histogram, m["fabric_transaction_duration_ms"]), _pool(m))


def projector_metrics(registry: CollectorRegistry, *, runtime_collectors: bool = True) -> ProjectorMetrics:
    m = _declare(registry, Component.PROJECTOR, runtime_collectors)
    return ProjectorMetrics(
        cast(Gauge, m["projector_lag_milliseconds"]), cast(Counter, m["projector_events_processed_total"]),
        cast(Counter, m["projector_events_failed_total"]), cast(Histogram, m["projector_event_processing_duration_ms"]),
        cast(Gauge, m["projector_checkpoint_block_number"]), _pool(m))


def http_metrics(registry: CollectorRegistry, *, runtime_collectors: bool = True) -> HttpMetrics:
    m = _declare(registry, Component.HTTP, runtime_collectors)
    return HttpMetrics(
        cast(Counter, m["http_requests_total"]), cast(Histogram, m["http_request_duration_ms"]),
        cast(Histogram, m["http_request_size_bytes"]), cast(Histogram, m["http_response_size_bytes"]), _pool(m))
