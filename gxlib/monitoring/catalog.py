"""The metrics schema (SPEC §4) and the four SLOs: the one place their names, types, labels and buckets live.

The backend declares its ``prometheus_client`` metrics from ``CATALOG`` with :func:`build_metrics`; alerts
and the dashboard are written against the same names, and a test checks every name they use against a
registry built here. The ``namespace`` label is not declared: Prometheus attaches it when it scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.gc_collector import GCCollector
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector


class MetricType(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Component(StrEnum):
    """Which backend process exposes a metric."""

    SUBMITTER = "outbox-submitter"
    PROJECTOR = "projector"
    HTTP = "http"  # every backend HTTP service
    DB_POOL = "db-pool"  # every service that holds a database pool


# Millisecond buckets: from a fast local call (5 ms) to a Fabric commit that waited for a slow block (30 s).
DURATION_BUCKETS_MS: tuple[float, ...] = (5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000)
# Request/response bodies: 100 B … 10 MB.
SIZE_BUCKETS_BYTES: tuple[float, ...] = (100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000)


@dataclass(frozen=True)
class MetricSpec:
    """One metric of SPEC §4."""

    name: str
    type: MetricType
    help: str
    component: Component
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] | None = None

    def exposed_series_names(self) -> tuple[str, ...]:
        """The sample names Prometheus stores for this metric (what PromQL can select)."""
        if self.type is MetricType.HISTOGRAM:
            return tuple(f"{self.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created"))
        if self.type is MetricType.COUNTER:
            return (self.name, f"{self.name.removesuffix('_total')}_created")
        return (self.name,)


CATALOG: tuple[MetricSpec, ...] = (
    # --- outbox submitter ---------------------------------------------------------------------------------
    MetricSpec("outbox_pending_commands", MetricType.GAUGE, "Commands waiting in the outbox (PENDING).",
               Component.SUBMITTER),
    MetricSpec("outbox_processing_commands", MetricType.GAUGE, "Commands claimed and in flight (PROCESSING).",
               Component.SUBMITTER),
    MetricSpec("outbox_dlq_commands", MetricType.GAUGE, "Commands in the dead-letter queue (DLQ).",
               Component.SUBMITTER),
    MetricSpec("outbox_commands_processed_total", MetricType.COUNTER,
               "Outbox commands processed, by outcome (success, failed, retry) and command type.",
               Component.SUBMITTER, labels=("status", "commandType")),
    MetricSpec("circuit_breaker_state", MetricType.GAUGE,
               "Fabric Gateway circuit breaker: 0 closed, 0.5 half-open, 1 open.", Component.SUBMITTER),
    MetricSpec("fabric_transaction_submissions_total", MetricType.COUNTER,
               "Transactions submitted to Fabric, by outcome (success, error).", Component.SUBMITTER,
               labels=("status",)),
    MetricSpec("fabric_transaction_duration_ms", MetricType.HISTOGRAM,
               "Endorse + submit + commit of one Fabric transaction, milliseconds.", Component.SUBMITTER,
               buckets=DURATION_BUCKETS_MS),
    # --- projector ----------------------------------------------------------------------------------------
    MetricSpec("projector_lag_milliseconds", MetricType.GAUGE,
               "Now minus the tx timestamp of the oldest received but unprojected event; 0 when caught up.",
               Component.PROJECTOR),
    MetricSpec("projector_events_processed_total", MetricType.COUNTER, "Chaincode events projected, by type.",
               Component.PROJECTOR, labels=("eventType",)),
    MetricSpec("projector_events_failed_total", MetricType.COUNTER,
               "Chaincode events whose projection failed (and is retried), by type.", Component.PROJECTOR,
               labels=("eventType",)),
    MetricSpec("projector_event_processing_duration_ms", MetricType.HISTOGRAM,
               "Applying one event to the read models and advancing the checkpoint, milliseconds.",
               Component.PROJECTOR, buckets=DURATION_BUCKETS_MS),
    MetricSpec("projector_checkpoint_block_number", MetricType.GAUGE, "Block number of the projector's checkpoint.",
               Component.PROJECTOR),
    # --- every backend HTTP service -----------------------------------------------------------------------
    MetricSpec("http_requests_total", MetricType.COUNTER, "HTTP requests, by route template, method and status.",
               Component.HTTP, labels=("service", "endpoint", "method", "status")),
    MetricSpec("http_request_duration_ms", MetricType.HISTOGRAM, "HTTP request duration, milliseconds.",
               Component.HTTP, labels=("service", "endpoint", "method"), buckets=DURATION_BUCKETS_MS),
    MetricSpec("http_request_size_bytes", MetricType.HISTOGRAM, "HTTP request body size, bytes.",
               Component.HTTP, labels=("service", "endpoint"), buckets=SIZE_BUCKETS_BYTES),
    MetricSpec("http_response_size_bytes", MetricType.HISTOGRAM, "HTTP response body size, bytes.",
               Component.HTTP, labels=("service", "endpoint"), buckets=SIZE_BUCKETS_BYTES),
    # --- every service with a database pool ---------------------------------------------------------------
    MetricSpec("db_pool_connections_in_use", MetricType.GAUGE, "Database pool connections checked out.",
               Component.DB_POOL),
    MetricSpec("db_pool_connections_max", MetricType.GAUGE, "Database pool size limit.", Component.DB_POOL),
)

# Metrics that Kubernetes exporters provide (cAdvisor in the kubelet, kube-state-metrics); used by the
# resource alerts and the availability SLO on Kubernetes, never exposed by the backend itself.
KUBERNETES_EXPORTER_METRICS: frozenset[str] = frozenset({
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_running",
})
# Series Prometheus writes for every target itself.
PROMETHEUS_SYNTHETIC_METRICS: frozenset[str] = frozenset({"up"})


def metric(name: str) -> MetricSpec:
    """The catalog entry called ``name`` (KeyError if it is not a SPEC §4 metric)."""
    for spec in CATALOG:
        if spec.name == name:
            return spec
    raise KeyError(name)


def metrics_of(component: Component) -> tuple[MetricSpec, ...]:
    return tuple(spec for spec in CATALOG if spec.component is component)


def build_metrics(registry: CollectorRegistry, specs: Iterable[MetricSpec] = CATALOG, *,
                  runtime_collectors: bool = True) -> dict[str, MetricWrapperBase]:
    """Declare ``specs`` as prometheus_client metrics in ``registry``; returns them by name.

    ``runtime_collectors`` also registers the standard ``process_*`` and ``python_*`` collectors, which
    SPEC §4 requires of every process.
    """
    declared: dict[str, MetricWrapperBase] = {}
    for spec in specs:
        if spec.type is MetricType.COUNTER:
            declared[spec.name] = Counter(spec.name, spec.help, spec.labels, registry=registry)
        elif spec.type is MetricType.GAUGE:
            declared[spec.name] = Gauge(spec.name, spec.help, spec.labels, registry=registry)
        else:
            assert spec.buckets is not None, f"histogram {spec.name} needs buckets"
            declared[spec.name] = Histogram(spec.name, spec.help, spec.labels, registry=registry,
                                            buckets=spec.buckets)
    if runtime_collectors:
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    return declared


def registered_series_names(registry: CollectorRegistry) -> frozenset[str]:
    """Every sample name the registry can expose, including those of labelled metrics not yet observed."""
    names: set[str] = set()
    for family in registry.collect():
        names.update(sample.name for sample in family.samples)
        if family.type == "counter":
            names.update({f"{family.name}_total", f"{family.name}_created"})
        elif family.type == "histogram":
            names.update(f"{family.name}_{suffix}" for suffix in ("bucket", "sum", "count", "created"))
        elif family.type == "gauge":
            names.add(family.name)
    return frozenset(names)


# --- SLOs (SPEC §7 row 1; the success-rate and lag targets are also alert thresholds in SPEC §6) -------------
@dataclass(frozen=True)
class ThresholdStep:
    """A colour band that starts at ``from_value`` (None: from minus infinity)."""

    color: str
    from_value: float | None


@dataclass(frozen=True)
class Slo:
    key: str
    title: str
    target: float
    higher_is_better: bool
    unit: str  # Grafana unit id
    steps: tuple[ThresholdStep, ...]  # ascending, first has from_value None
    min_value: float
    max_value: float

    def query(self, selector: str = "") -> str:
        """The SLO's PromQL; ``selector`` (matchers without braces) narrows every series it reads."""
        return SLO_QUERIES[self.key](selector)

    def met(self, value: float) -> bool:
        return value >= self.target if self.higher_is_better else value < self.target


def series(name: str, *matchers: str) -> str:
    """``name{m1,m2}`` with the empty matchers left out (``name`` alone when none remain)."""
    kept = [m for m in matchers if m]
    return f"{name}{{{','.join(kept)}}}" if kept else name


def transaction_success_rate_query(selector: str = "") -> str:
    processed = "outbox_commands_processed_total"
    succeeded = 'status="success"'
    return (f"(sum(rate({series(processed, succeeded, selector)}[5m])) "
            f"/ sum(rate({series(processed, selector)}[5m]))) * 100")


def projection_lag_query(selector: str = "") -> str:
    return f"max({series('projector_lag_milliseconds', selector)})"


def api_p95_query(selector: str = "") -> str:
    return f"histogram_quantile(0.95, sum(rate({series('http_request_duration_ms_bucket', selector)}[5m])) by (le))"


def availability_query(selector: str = "") -> str:
    restarts = series("kube_pod_container_status_restarts_total", selector)
    running = series("kube_pod_container_status_running", selector)
    return f"(1 - (sum(rate({restarts}[1h])) / count({running}))) * 100"


SLO_QUERIES = {
    "transaction_success_rate": transaction_success_rate_query,
    "projection_lag": projection_lag_query,
    "api_p95": api_p95_query,
    "availability": availability_query,
}

SLOS: tuple[Slo, ...] = (
    Slo("transaction_success_rate", "Transaction Success Rate", 99.9, True, "percent",
        (ThresholdStep("red", None), ThresholdStep("orange", 95), ThresholdStep("yellow", 99),
         ThresholdStep("green", 99.9)), 90, 100),
    Slo("projection_lag", "Projection Lag", 5000, False, "ms",
        (ThresholdStep("green", None), ThresholdStep("yellow", 3000), ThresholdStep("orange", 5000),
         ThresholdStep("red", 10000)), 0, 15000),
    Slo("api_p95", "API Response Time P95", 500, False, "ms",
        (ThresholdStep("green", None), ThresholdStep("yellow", 300), ThresholdStep("orange", 500),
         ThresholdStep("red", 1000)), 0, 1500),
    Slo("availability", "System Availability", 99.95, True, "percent",
        (ThresholdStep("red", None), ThresholdStep("orange", 99), ThresholdStep("yellow", 99.9),
         ThresholdStep("green", 99.95)), 98, 100),
)


def slo(key: str) -> Slo:
    for candidate in SLOS:
        if candidate.key == key:
            return candidate
    raise KeyError(key)
