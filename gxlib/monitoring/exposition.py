"""A service's own ``/metrics`` page (the Prometheus text format), read directly rather than through Prometheus."""

from __future__ import annotations

import requests
from prometheus_client.parser import text_string_to_metric_families

from gxlib.monitoring.queries import PrometheusUnreachableError


def metric_samples(base_url: str, *, timeout_s: float = 5.0) -> dict[str, float]:
    """The unlabelled samples of ``<base_url>/metrics`` (name → value); PrometheusUnreachableError when the page
    cannot be read."""
    url = base_url.rstrip("/") + "/metrics"
    try:
        response = requests.get(url, timeout=timeout_s)
        response.raise_for_status()
    except requests.RequestException as exc:
        raise PrometheusUnreachableError(f"{url} unreachable: {exc.__class__.__name__}", url=url) from exc
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.labels:
                samples[sample.name] = float(sample.value)
    return samples
