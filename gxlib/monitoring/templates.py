"""Alert annotations as an operator reads them: Prometheus' rule templates (``{{ $labels.namespace }}``,
``{{ $value | humanizePercentage }}``, ``{{ printf "%.1f" $value }}``) filled in with an alert's labels and value.

The rules API gives the templates of every rule, and for each active alert its labels and value; an inactive rule has
neither, so its placeholders are shown by name (``<namespace>``, ``<value>``) rather than as template syntax.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

_PLACEHOLDER = re.compile(r"\{\{-?\s*(?P<body>.*?)\s*-?\}\}")
_LABEL = re.compile(r"^\$labels\.(?P<name>\w+)$")
_VALUE_PIPE = re.compile(r"^\$value\s*(?:\|\s*(?P<function>\w+))?$")
_PRINTF = re.compile(r'^printf\s+"(?P<format>[^"]*)"\s+\$value$')


def _humanize_percentage(value: float) -> str:
    return f"{value * 100:.4g}%"


def _humanize(value: float) -> str:
    for size, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"{value / size:.4g}{suffix}"
    return f"{value:.4g}"


def _value_text(function: str | None, value: float) -> str:
    if function == "humanizePercentage":
        return _humanize_percentage(value)
    if function == "humanize":
        return _humanize(value)
    if function == "humanizeDuration":
        return f"{value:.4g}s"
    return f"{value:g}"


def render_annotation(template: str, labels: Mapping[str, str] | None = None, value: float | None = None) -> str:
    """``template`` with its placeholders filled from ``labels`` and ``value``; a placeholder without a value (an
    inactive rule) becomes ``<name>``, one this renderer does not know stays as it was."""
    labels = labels or {}
    has_value = value is not None and not math.isnan(value)

    def fill(match: re.Match[str]) -> str:
        body = match.group("body")
        if label := _LABEL.match(body):
            name = label.group("name")
            return labels.get(name, f"<{name}>")
        if pipe := _VALUE_PIPE.match(body):
            return _value_text(pipe.group("function"), value) if has_value and value is not None else "<value>"
        if printf := _PRINTF.match(body):
            if not has_value or value is None:
                return "<value>"
            try:
                return printf.group("format") % value
            except (TypeError, ValueError):
                return f"{value:g}"
        return match.group(0)

    return _PLACEHOLDER.sub(fill, template)


def alert_summary(rule: dict[str, Any]) -> str:
    """The rule's summary as an operator reads it: as Prometheus rendered it for its first active alert, else its
    template filled from that alert's labels and value, else (inactive) with the placeholders named."""
    template = str(rule.get("annotations", {}).get("summary", ""))
    alerts = rule.get("alerts", [])
    if not alerts:
        return render_annotation(template, rule.get("labels"))
    first = alerts[0]
    rendered = first.get("annotations", {}).get("summary")
    if rendered and "{{" not in rendered:
        return str(rendered)
    value = first.get("value")
    return render_annotation(template, first.get("labels"), float(value) if value not in (None, "") else None)
