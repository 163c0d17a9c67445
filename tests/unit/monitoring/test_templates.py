"""Alert annotations filled in as Prometheus would, so an operator never reads template syntax."""

from __future__ import annotations

from gxlib.monitoring.templates import alert_summary, render_annotation


def test_labels_and_values_are_filled_in() -> None:
    template = 'API P95 of {{ $labels.job }} in {{ $labels.namespace }} is {{ printf "%.0f" $value }} ms'
    assert render_annotation(template, {"job": "gx-api", "namespace": "backend-local"}, 612.4) == \
        "API P95 of gx-api in backend-local is 612 ms"
    assert render_annotation("success rate {{ $value | humanizePercentage }}", {}, 0.5) == "success rate 50%"


def test_an_inactive_rule_names_its_placeholders() -> None:
    assert render_annotation("Outbox queue in {{ $labels.namespace }} at {{ $value }}") == \
        "Outbox queue in <namespace> at <value>"


def test_prometheus_own_rendering_of_an_active_alert_is_used() -> None:
    rule = {"annotations": {"summary": "open in {{ $labels.namespace }}"}, "labels": {},
            "alerts": [{"labels": {"namespace": "gx-testnet"}, "annotations": {"summary": "open in gx-testnet"},
                        "value": "2"}]}
    assert alert_summary(rule) == "open in gx-testnet"
