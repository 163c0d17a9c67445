"""Questions to a live Prometheus, answered as pandas DataFrames: SLOs now, a series over a window, alert
states and scrape-target health.

The PromQL is never written here: the SLO expressions come from :mod:`gxlib.monitoring.catalog` and the
chart expressions from the dashboard panels of :mod:`gxlib.monitoring.dashboard`, with the dashboard's
``$namespace`` variable replaced by a namespace regex (``.*`` is Grafana's "All"). Queries go through
``prometheus-api-client``; the rules endpoint, which that client lacks, is read with the same HTTP session.

Every failure is a :class:`PrometheusError`: :class:`PrometheusUnreachableError` names the URL,
:class:`PrometheusQueryError` names the expression Prometheus refused.
"""

from __future__ import annotations

import ast
import json
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, Self, TypeVar

import pandas as pd
import requests
from grafana_foundation_sdk.models.prometheus import Dataquery
from prometheus_api_client import PrometheusConnect
from prometheus_api_client.exceptions import PrometheusApiClientException
from urllib3.util.retry import Retry

from gxlib.errors import GxError
from gxlib.monitoring.catalog import SLOS, Slo, ThresholdStep, series
from gxlib.monitoring.dashboard import NAMESPACE_VARIABLE
from gxlib.monitoring.templates import alert_summary

T = TypeVar("T")

ALL_NAMESPACES = ".*"
DEFAULT_ALERT_GROUP = "gx_backend_cqrs_alerts"
# Prometheus refuses a range query of more than 11,000 points per series; ~240 points draw a smooth line.
POINTS_PER_WINDOW = 240


# --- errors ---------------------------------------------------------------------------------------------
class PrometheusError(GxError):
    """Prometheus could not answer a question of the monitoring queries."""

    def __init__(self, message: str, *, url: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.url = url


class PrometheusUnreachableError(PrometheusError):
    """Nothing answered HTTP at the Prometheus URL (refused, timed out, DNS)."""


class PrometheusQueryError(PrometheusError):
    """Prometheus refused an expression (bad PromQL, or it could not be evaluated)."""

    def __init__(self, message: str, *, url: str, expression: str, error_type: str, detail: str) -> None:
        super().__init__(message, url=url, hint="check the expression with promtool or the Prometheus UI")
        self.expression = expression
        self.error_type = error_type
        self.detail = detail


class PrometheusResponseError(PrometheusError):
    """Something answered, but not as the Prometheus HTTP API does (wrong URL, proxy error page, 5xx)."""


# --- SLO status -----------------------------------------------------------------------------------------
class SloStatus(StrEnum):
    OK = "ok"
    WARN = "warn"
    BREACH = "breach"
    NO_DATA = "no data"


# The catalog's colour bands (SPEC §7) read as a status: green is healthy, yellow a warning, orange and red a
# breach. For the two "higher is better" SLOs the yellow band already lies below the target, which the
# ``target_met`` column of :meth:`PrometheusQueries.slo_values` says separately.
BAND_STATUS: dict[str, SloStatus] = {
    "green": SloStatus.OK,
    "yellow": SloStatus.WARN,
    "orange": SloStatus.BREACH,
    "red": SloStatus.BREACH,
}


def band_of(slo: Slo, value: float) -> ThresholdStep:
    """The colour band ``value`` falls in (bands start at their ``from_value``, inclusive)."""
    band = slo.steps[0]
    for step in slo.steps[1:]:
        if step.from_value is not None and value >= step.from_value:
            band = step
    return band


def slo_status(slo: Slo, value: float | None) -> SloStatus:
    if value is None or math.isnan(value):
        return SloStatus.NO_DATA
    return BAND_STATUS[band_of(slo, value).color]


# --- expressions ----------------------------------------------------------------------------------------
def namespace_selector(namespace: str = ALL_NAMESPACES) -> str:
    """The matcher the dashboard puts in every query, with its variable set to ``namespace`` (a regex)."""
    return f'namespace=~"{namespace}"'


@dataclass(frozen=True)
class PanelQuery:
    """One query of a dashboard panel: its legend template (``{{label}}`` placeholders) and PromQL."""

    legend: str
    expression: str


def panel_queries(targets: Sequence[Any] | None, namespace: str = ALL_NAMESPACES) -> list[PanelQuery]:
    """The Prometheus targets of a built dashboard panel, with ``$namespace`` set to ``namespace``."""
    queries = []
    for target in targets or ():
        if isinstance(target, Dataquery) and target.expr:
            expression = target.expr.replace(f"${NAMESPACE_VARIABLE}", namespace)
            queries.append(PanelQuery(target.legend_format or "", expression))
    return queries


def target_up_query(namespace: str = ALL_NAMESPACES) -> str:
    """``up`` of every scrape target; a target without a namespace label (the devnet's nodes) matches too."""
    return series("up", namespace_selector(namespace))  # Prometheus' own per-target series


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> timedelta:
    """A Prometheus-style duration (``90s``, ``15m``, ``1h30m``, ``2d``) as a timedelta (ValueError if not)."""
    stripped = text.strip()
    parts = _DURATION_PART.findall(stripped)
    if not stripped or "".join(f"{number}{unit}" for number, unit in parts) != stripped:
        raise ValueError(f"{text!r} is not a duration like 30m, 1h or 1h30m")
    seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    if seconds <= 0:
        raise ValueError(f"{text!r} is not a positive duration")
    return timedelta(seconds=seconds)


def format_duration(duration: timedelta) -> str:
    """``1h``, ``90m``, ``45s`` — the shortest whole-unit spelling of ``duration``."""
    seconds = int(duration.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def default_step(window: timedelta) -> timedelta:
    return timedelta(seconds=max(1, round(window.total_seconds() / POINTS_PER_WINDOW)))


# --- shaping API answers into DataFrames ------------------------------------------------------------------
def series_label(labels: dict[str, str], legend: str = "", fallback: str = "") -> str:
    """A column name for one series: the legend with ``{{label}}`` filled in, else its labels, else ``fallback``."""
    if legend:
        return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda match: labels.get(match.group(1), ""), legend).strip()
    shown = {key: value for key, value in sorted(labels.items()) if key != "__name__"}
    if not shown:
        return fallback or labels.get("__name__", "value")
    return "{" + ", ".join(f'{key}="{value}"' for key, value in shown.items()) + "}"


def empty_window() -> pd.DataFrame:
    return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name="time"), dtype="float64")


def window_frame(result: Sequence[dict[str, Any]], legend: str = "", fallback: str = "") -> pd.DataFrame:
    """A range-query result (matrix) as a DataFrame indexed by UTC time, one float column per series."""
    columns: dict[str, pd.Series] = {}
    for item in result:
        name = series_label(item.get("metric", {}), legend, fallback)
        while name in columns:  # two series the legend cannot tell apart keep both
            name += "'"
        times = pd.to_datetime([float(point[0]) for point in item["values"]], unit="s", utc=True)
        columns[name] = pd.Series([float(point[1]) for point in item["values"]], index=times, dtype="float64")
    if not columns:
        return empty_window()
    frame = pd.concat(columns, axis=1, sort=True)
    frame.index.name = "time"
    return frame


def instant_frame(result: Any, fallback: str = "") -> pd.DataFrame:
    """An instant-query result (vector or scalar) as one row per series: ``series``, its labels, ``value``."""
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):  # a scalar
        result = [{"metric": {}, "value": result}]
    rows = [{"series": series_label(item.get("metric", {}), fallback=fallback), **item.get("metric", {}),
             "time": pd.Timestamp(float(item["value"][0]), unit="s", tz="UTC"), "value": float(item["value"][1])}
            for item in result]
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"series": pd.Series(dtype="object"), "time": pd.Series(dtype="datetime64[ns, UTC]"),
                             "value": pd.Series(dtype="float64")})
    return frame


ALERT_COLUMNS = ("state", "severity", "active", "active_since", "value", "for_s", "health", "last_error", "summary",
                 "runbook_url")
TARGET_COLUMNS = ("job", "instance", "namespace", "health", "last_error", "last_scrape", "scrape_duration_s",
                  "scrape_url")


def _timestamp(text: str | None) -> pd.Timestamp | None:
    if not text or text.startswith("0001-01-01"):  # Go's zero time: never
        return None
    return pd.Timestamp(text).tz_convert("UTC")


def alert_state_frame(groups: Sequence[dict[str, Any]], group_name: str) -> pd.DataFrame:
    """Every alerting rule of ``group_name`` (API order) with its state: inactive, pending or firing."""
    rows: list[dict[str, Any]] = []
    for group in groups:
        if group.get("name") != group_name:
            continue
        for rule in group.get("rules", []):
            if rule.get("type") != "alerting":
                continue
            alerts = rule.get("alerts", [])
            states = {alert.get("state") for alert in alerts}
            state = rule.get("state") or ("firing" if "firing" in states else "pending" if states else "inactive")
            active_since = [stamp for alert in alerts if (stamp := _timestamp(alert.get("activeAt")))]
            values = [float(alert["value"]) for alert in alerts if alert.get("value") not in (None, "")]
            rows.append({
                "alert": rule["name"],
                "state": state,
                "severity": rule.get("labels", {}).get("severity", ""),
                "active": len(alerts),
                "active_since": min(active_since) if active_since else None,
                "value": max(values) if values else math.nan,
                "for_s": float(rule.get("duration", 0)),
                "health": rule.get("health", ""),
                "last_error": rule.get("lastError", ""),
                "summary": alert_summary(rule),
                "runbook_url": rule.get("annotations", {}).get("runbook_url", ""),
            })
    frame = pd.DataFrame(rows, columns=["alert", *ALERT_COLUMNS])
    return frame.set_index("alert")


def target_health_frame(active_targets: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """Every active scrape target: job, instance, namespace, health (up/down/unknown) and its last error."""
    rows = [{
        "job": target.get("labels", {}).get("job", target.get("scrapePool", "")),
        "instance": target.get("labels", {}).get("instance", ""),
        "namespace": target.get("labels", {}).get("namespace", ""),
        "health": target.get("health", "unknown"),
        "last_error": target.get("lastError", ""),
        "last_scrape": _timestamp(target.get("lastScrape")),
        "scrape_duration_s": float(target.get("lastScrapeDuration", math.nan)),
        "scrape_url": target.get("scrapeUrl", ""),
    } for target in active_targets]
    frame = pd.DataFrame(rows, columns=list(TARGET_COLUMNS))
    return frame.sort_values(["job", "instance"], ignore_index=True)


# --- the client -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedConfiguration:
    """What a Prometheus runs with, from its runtime-info, rules and scrape-pools APIs."""

    reload_successful: bool
    loaded_at: datetime | None  # when the configuration in force was loaded
    rules: dict[str, list[dict[str, Any]]]  # group name → its rules, as the rules API reports them
    scrape_pools: list[str]

    def state(self, group: str, rendered_rules: list[dict[str, Any]],
              rendered_jobs: list[str] | None) -> tuple[bool, str]:
        """Whether this is the rendered configuration (last reload successful, the group's rules and — unless
        ``rendered_jobs`` is None — the scrape jobs as rendered), and what Prometheus reports, for the operator.

        Prometheus 2.42 (Debian's, the local stack's) answers the scrape-pools API with an empty list, so the local
        platform passes None and checks instead that the configuration was loaded after its files were written."""
        loaded = self.rules.get(group, [])
        differing = rules_differing(rendered_rules, loaded)
        missing_jobs = [job for job in rendered_jobs or [] if job not in self.scrape_pools]
        state = (f"last reload {'successful' if self.reload_successful else 'FAILED'}; {len(loaded)} rules in {group}"
                 f"{', not as rendered: ' + ', '.join(differing) if differing else ''}"
                 f"{'; scrape jobs missing: ' + ', '.join(missing_jobs) if missing_jobs else ''}")
        return self.reload_successful and not differing and not missing_jobs, state


def rules_differing(rendered: list[dict[str, Any]], loaded: list[dict[str, Any]]) -> list[str]:
    """Names of the rules whose loaded form (Prometheus' rules API) is not the rendered one, or that only one side has.

    Compared: name, ``for``, labels and annotations, which Prometheus reports verbatim (the thresholds are in the
    summaries). The expression is not: Prometheus reports it re-printed from its parse tree."""
    def rendered_form(rule: dict[str, Any]) -> tuple[float, dict[str, str], dict[str, str]]:
        duration = parse_duration(str(rule["for"])).total_seconds() if rule.get("for") else 0.0
        return duration, dict(rule.get("labels") or {}), dict(rule.get("annotations") or {})

    def loaded_form(rule: dict[str, Any]) -> tuple[float, dict[str, str], dict[str, str]]:
        return float(rule.get("duration") or 0.0), dict(rule.get("labels") or {}), dict(rule.get("annotations") or {})

    want = {str(rule["alert"]): rendered_form(rule) for rule in rendered}
    have = {str(rule["name"]): loaded_form(rule) for rule in loaded}
    return sorted(name for name in want.keys() | have.keys() if want.get(name) != have.get(name))


class PrometheusQueries:
    """The monitoring questions, asked of the Prometheus at ``url``.

    ``namespace`` (a regex, default all) narrows every SLO and chart query as the dashboard's variable does.
    ``retries`` applies to refused connections and 502/503/504 answers (short backoff). ``session`` is a prepared
    ``requests`` session (TLS trust, client certificate, Authorization header) for a Prometheus behind an
    authenticating proxy, e.g. the Kubernetes API server's pod proxy; it is closed with this client.
    """

    def __init__(self, url: str, *, namespace: str = ALL_NAMESPACES, alert_group: str = DEFAULT_ALERT_GROUP,
                 timeout_s: float = 10.0, retries: int = 1, session: requests.Session | None = None) -> None:
        self.url = url.rstrip("/")
        self.namespace = namespace
        self.alert_group = alert_group
        self.timeout_s = timeout_s
        self._session = session if session is not None else requests.Session()
        retry = Retry(total=retries, backoff_factor=0.2, status_forcelist=(502, 503, 504),
                      allowed_methods=frozenset({"GET", "POST"}), raise_on_status=False)
        self._client = PrometheusConnect(url=self.url, session=self._session, retry=retry, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- plumbing ---------------------------------------------------------------------------------------
    def _ask(self, what: str, call: Callable[[], T], expression: str | None = None) -> T:
        """``call()``, with every failure turned into a :class:`PrometheusError` that names URL or expression."""
        try:
            return call()
        except (requests.ConnectionError, requests.Timeout) as exc:
            # requests wraps the socket error in pool and retry messages; the errno text is what tells.
            cause = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
            reason = cause.group(0) if cause else exc.__class__.__name__
            raise PrometheusUnreachableError(
                f"Prometheus at {self.url} is unreachable ({what}): {reason}",
                url=self.url, hint="is it running? `gx monitoring status`, or pass --prometheus-url") from exc
        except PrometheusApiClientException as exc:
            raise self._refusal(what, expression, str(exc)) from exc
        except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
            raise PrometheusResponseError(
                f"{self.url} did not answer {what} as the Prometheus HTTP API does: {exc}", url=self.url,
                hint="is this the Prometheus base URL (no /api/v1, no /graph)?") from exc

    def _refusal(self, what: str, expression: str | None, message: str) -> PrometheusError:
        """The typed error for a non-200 answer (prometheus-api-client puts status and body in its message)."""
        match = re.match(r"HTTP Status Code (\d+) \((.*)\)$", message, re.DOTALL)
        status = int(match.group(1)) if match else 0
        body: dict[str, Any] = {}
        text = message
        if match:
            try:
                raw = ast.literal_eval(match.group(2))
                text = (raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)).strip()[:300]
                parsed = json.loads(raw) if isinstance(raw, bytes | str) else {}
                body = parsed if isinstance(parsed, dict) else {}
            except (ValueError, SyntaxError):  # not JSON (a lifecycle endpoint's plain text): keep the text
                body = {}
        error_type, detail = str(body.get("errorType", "")), str(body.get("error", text))
        if expression is not None and status in (400, 422):
            return PrometheusQueryError(f"Prometheus at {self.url} refused the expression {expression!r}: {detail}",
                                        url=self.url, expression=expression, error_type=error_type, detail=detail)
        return PrometheusResponseError(f"Prometheus at {self.url} answered {what} with HTTP {status}: {detail}",
                                       url=self.url)

    def _get_json(self, path: str, params: dict[str, str] | None = None) -> Any:
        response = self._session.get(f"{self.url}{path}", params=params, timeout=self.timeout_s)
        if response.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content!r})")
        return response.json()["data"]

    def _lifecycle(self, method: str, path: str) -> None:
        """A lifecycle/health endpoint (``/-/ready``, ``/-/reload``): HTTP 200 or a typed error with its answer."""
        response = self._session.request(method, f"{self.url}{path}", timeout=self.timeout_s)
        if response.status_code != 200:
            raise PrometheusApiClientException(f"HTTP Status Code {response.status_code} ({response.content!r})")

    # --- the server itself ------------------------------------------------------------------------------
    def ready(self) -> None:
        """Returns when Prometheus answers ``GET /-/ready`` with 200; else a :class:`PrometheusError` saying why."""
        self._ask("GET /-/ready", lambda: self._lifecycle("GET", "/-/ready"))

    def unready(self) -> str | None:
        """Why Prometheus is not ready now, for a check's detail (``None``: ready)."""
        try:
            self.ready()
        except PrometheusError as exc:
            return exc.message
        return None

    def reload(self) -> None:
        """``POST /-/reload`` (needs ``--web.enable-lifecycle``): Prometheus re-reads its configuration and rules;
        a refused configuration is a :class:`PrometheusResponseError` with Prometheus' own message."""
        self._ask("POST /-/reload", lambda: self._lifecycle("POST", "/-/reload"))

    def loaded_configuration(self) -> LoadedConfiguration:
        """What Prometheus runs with: whether its last reload succeeded and when, its rules, its scrape pools."""
        info = self._ask("the runtime info API", lambda: self._get_json("/api/v1/status/runtimeinfo"))
        groups = self.rule_groups()
        pools = self._ask("the scrape pools API", lambda: self._get_json("/api/v1/scrape_pools")["scrapePools"])
        loaded_at = _timestamp(info.get("lastConfigTime"))
        return LoadedConfiguration(reload_successful=bool(info.get("reloadConfigSuccess")),
                                   loaded_at=loaded_at.to_pydatetime() if loaded_at is not None else None,
                                   rules={str(group.get("name")): list(group.get("rules", [])) for group in groups},
                                   scrape_pools=[str(pool) for pool in pools])

    # --- questions ----------------------------------------------------------------------------------------
    def instant(self, expression: str, at: datetime | None = None, name: str = "") -> pd.DataFrame:
        """``expression`` evaluated now (or ``at``): one row per series (``series``, labels, ``time``, ``value``)."""
        params = {"time": f"{at.timestamp():.3f}"} if at else None
        result = self._ask("an instant query", lambda: self._client.custom_query(expression, params=params),
                           expression)
        return instant_frame(result, fallback=name or expression)

    def window(self, expression: str, window: timedelta, *, end: datetime | None = None,
               step: timedelta | None = None, legend: str = "", name: str = "") -> pd.DataFrame:
        """``expression`` over the ``window`` ending at ``end`` (default now): a DataFrame indexed by UTC time with
        one column per series, named by ``legend`` (``{{label}}`` template), else the labels, else ``name``."""
        end = end or datetime.now(UTC)
        step = step or default_step(window)
        result = self._ask(
            "a range query",
            lambda: self._client.custom_query_range(expression, start_time=end - window, end_time=end,
                                                    step=f"{step.total_seconds():g}s"),
            expression)
        return window_frame(result, legend, fallback=name or expression)

    def panel_window(self, queries: Sequence[PanelQuery], window: timedelta, *, end: datetime | None = None,
                     step: timedelta | None = None) -> pd.DataFrame:
        """Several queries (a dashboard panel's) over one window, side by side; empty when none has data."""
        end = end or datetime.now(UTC)
        frames = [self.window(query.expression, window, end=end, step=step, legend=query.legend, name=query.legend)
                  for query in queries]
        frames = [frame for frame in frames if not frame.empty]
        if not frames:
            return empty_window()
        combined = pd.concat(frames, axis=1, sort=True)
        combined.index.name = "time"
        return combined

    def slo_values(self, at: datetime | None = None) -> pd.DataFrame:
        """The four SLOs now, indexed by SLO key: value (NaN when nothing answered), target, the colour-band
        thresholds, the band the value is in, status (ok/warn/breach/no data), whether the target is met."""
        rows = []
        for slo in SLOS:
            expression = slo.query(namespace_selector(self.namespace))
            values = self.instant(expression, at, name=slo.title)["value"].dropna()
            value = float(values.iloc[0]) if len(values) else None
            rows.append({
                "slo": slo.key,
                "title": slo.title,
                "value": math.nan if value is None else value,
                "unit": slo.unit,
                "target": slo.target,
                "comparison": ">=" if slo.higher_is_better else "<",
                # The colour bands of SPEC §7: (colour, where it starts; None for minus infinity), ascending.
                "thresholds": tuple((step.color, step.from_value) for step in slo.steps),
                "band": band_of(slo, value).color if value is not None else "",
                "status": slo_status(slo, value).value,
                "target_met": slo.met(value) if value is not None else None,
                "min": slo.min_value,
                "max": slo.max_value,
                "query": expression,
            })
        return pd.DataFrame(rows).set_index("slo")

    def rule_groups(self) -> list[dict[str, Any]]:
        """Every rule group Prometheus has loaded, as its rules API reports them."""
        return list(self._ask("the rules API", lambda: self._get_json("/api/v1/rules")["groups"]))

    def alerts(self) -> list[dict[str, Any]]:
        """Every active (pending or firing) alert instance, as the alerts API reports them."""
        return list(self._ask("the alerts API", lambda: self._get_json("/api/v1/alerts")["alerts"]))

    def alert_state(self, alert: str) -> str:
        """``firing``, ``pending`` or ``inactive``: the state of ``alert``'s instances in Prometheus now."""
        alerts = self.alerts()
        states = {a.get("state") for a in alerts if a.get("labels", {}).get("alertname") == alert}
        return "firing" if "firing" in states else "pending" if "pending" in states else "inactive"

    def alert_states(self) -> pd.DataFrame:
        """Every rule of the alert group with its state (inactive/pending/firing), indexed by alert name; empty
        when the group is not loaded."""
        groups = self._ask("the rules API", lambda: self._get_json("/api/v1/rules", {"type": "alert"})["groups"])
        return alert_state_frame(groups, self.alert_group)

    def label_values(self, label: str, match: str | None = None) -> list[str]:
        """The values ``label`` takes (``__name__``: every metric name), among the series ``match`` selects."""
        params = {"match[]": match} if match else None
        values = self._ask(f"the label values of {label}", lambda: self._get_json(f"/api/v1/label/{label}/values",
                                                                                  params))
        return [str(value) for value in values]

    def target_health(self) -> pd.DataFrame:
        """Every active scrape target with its health."""
        targets = self._ask("the targets API", lambda: self._client.get_targets(state="active")["activeTargets"])
        return target_health_frame(targets)
