"""The SPEC §4 metrics, declared from the catalog into a real prometheus_client registry."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest

from gxlib.monitoring.catalog import (
    CATALOG,
    SLOS,
    Component,
    MetricType,
    build_metrics,
    metric,
    metrics_of,
    registered_series_names,
    slo,
)

SPEC_METRICS = {
    "outbox_pending_commands": ("gauge", ()),
    "outbox_processing_commands": ("gauge", ()),
    "outbox_dlq_commands": ("gauge", ()),
    "outbox_commands_processed_total": ("counter", ("status", "commandType")),
    "circuit_breaker_state": ("gauge", ()),
    "fabric_transaction_submissions_total": ("counter", ("status",)),
    "fabric_transaction_duration_ms": ("histogram", ()),
    "projector_lag_milliseconds": ("gauge", ()),
    "projector_events_processed_total": ("counter", ("eventType",)),
    "projector_events_failed_total": ("counter", ("eventType",)),
    "projector_event_processing_duration_ms": ("histogram", ()),
    "projector_checkpoint_block_number": ("gauge", ()),
    "http_requests_total": ("counter", ("service", "endpoint", "method", "status")),
    "http_request_duration_ms": ("histogram", ("service", "endpoint", "method")),
    "http_request_size_bytes": ("histogram", ("service", "endpoint")),
    "http_response_size_bytes": ("histogram", ("service", "endpoint")),
    "db_pool_connections_in_use": ("gauge", ()),
    "db_pool_connections_max": ("gauge", ()),
}


def test_catalog_holds_exactly_the_spec_metrics_with_their_types_and_labels() -> None:
    assert {spec.name: (spec.type.value, spec.labels) for spec in CATALOG} == SPEC_METRICS


def test_no_metric_declares_the_namespace_label_prometheus_attaches_it() -> None:
    assert all("namespace" not in spec.labels for spec in CATALOG)


def test_duration_histograms_use_millisecond_buckets() -> None:
    durations = ("fabric_transaction_duration_ms", "projector_event_processing_duration_ms", "http_request_duration_ms")
    for name in durations:
        buckets = metric(name).buckets
        assert buckets is not None and buckets == tuple(sorted(buckets))
        assert buckets[0] >= 1 and 500 in buckets and 1000 in buckets and 5000 in buckets, buckets


def test_build_metrics_declares_everything_in_a_fresh_registry_with_exact_exposition() -> None:
    registry = CollectorRegistry()
    declared = build_metrics(registry)
    assert set(declared) == set(SPEC_METRICS)

    declared["outbox_commands_processed_total"].labels(status="success", commandType="MINT").inc()
    declared["fabric_transaction_duration_ms"].observe(420)
    declared["circuit_breaker_state"].set(0.5)
    assert registry.get_sample_value(
        "outbox_commands_processed_total", {"status": "success", "commandType": "MINT"}) == 1
    assert registry.get_sample_value("fabric_transaction_duration_ms_bucket", {"le": "500.0"}) == 1
    assert registry.get_sample_value("fabric_transaction_duration_ms_bucket", {"le": "250.0"}) == 0
    assert registry.get_sample_value("circuit_breaker_state") == 0.5

    exposition = generate_latest(registry).decode()
    assert "# TYPE outbox_commands_processed_total counter" in exposition
    assert "process_cpu_seconds_total" in exposition and "python_info" in exposition


def test_registered_series_names_include_unobserved_labelled_metrics_and_histogram_series() -> None:
    registry = CollectorRegistry()
    build_metrics(registry)
    names = registered_series_names(registry)
    assert {"http_requests_total", "http_request_duration_ms_bucket", "http_request_duration_ms_count",
            "projector_events_failed_total", "process_start_time_seconds"} <= names


def test_components_partition_the_catalog() -> None:
    assert sum(len(metrics_of(component)) for component in Component) == len(CATALOG)
    assert {spec.type for spec in metrics_of(Component.SUBMITTER)} == set(MetricType)


def test_four_slos_with_their_targets() -> None:
    assert [(s.key, s.target, s.higher_is_better) for s in SLOS] == [
        ("transaction_success_rate", 99.9, True), ("projection_lag", 5000, False),
        ("api_p95", 500, False), ("availability", 99.95, True)]
    assert slo("projection_lag").met(4999) and not slo("projection_lag").met(5000)
    assert slo("transaction_success_rate").met(99.9) and not slo("transaction_success_rate").met(99.89)
    assert 'namespace=~"$namespace"' in slo("api_p95").query('namespace=~"$namespace"')
