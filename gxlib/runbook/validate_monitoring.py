"""Runbook 05 · validate monitoring / SLO report (SPEC §8.5): one method per section of
``notebooks/05-validate-monitoring.ipynb``.

The SLO gauges, the projection lag over time, the alert rules and the report are read from Prometheus
(``gxlib.monitoring.queries``/``report``) and change nothing. The circuit-breaker drill does change something, on
purpose: it stops the submitter's Gateway peer (org1's ``peer0``), posts one ``MINT`` of 1 unit to the account
``gx-runbook-drill`` and watches

    circuit_breaker_state → 1   (the submitter's /metrics)
    FabricCircuitBreakerOpen → pending → firing   (Prometheus; the rule has ``for: 1m``)
    the alert active in Alertmanager, and notified to the local webhook receiver
    gateway restored (``devnet up``) → breaker 0, the drill's command COMMITTED, the alert resolved

The gateway is restored whatever happens during the drill. Each stage has its timeout parameter. What the drill
acts on and watches is a :class:`gxlib.runbook.drill_subject.DrillSubject`: on local the local backend and devnet;
on env=devnet the backend pods, reached through the platform (port-forwards to the API and the submitter's
metrics, the token from the cluster's Secret), whose Gateway peer is still this machine's devnet — the same peer
stopped and restarted; there the notification is Alertmanager's record of the receivers it routed the alert to,
and the outbox's DLQ count (through the API) must not grow. On testnet/mainnet the parameters refuse
``breaker_drill=true`` and the section is skipped.

On a Kubernetes env Prometheus and Alertmanager are reached as runbook 01 reaches Prometheus
(:mod:`gxlib.platform.endpoints`: the given URLs, else the API server's proxy with the kubeconfig's
credentials); the SLO gauges, the lag, the alert rules and the report are the same queries for the env's backend
namespace (``backend-<env>``). An SLO or chart without data there is skipped, not failed.

What the drill needs from the backend: the breaker must stay open for longer than the alert's ``for`` (plus an
evaluation interval), i.e. ``GX_BACKEND_SUBMITTER__BREAKER_COOLDOWN_S`` above ~75 s. With a shorter cool-down the
breaker goes half-open (0.5) between probes, ``circuit_breaker_state == 1`` is false at that evaluation, and the
alert restarts its ``for`` period: it never fires during the outage. The drill then fails at "firing", which is
the truth about that configuration.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from gxlib.config import Environment, environment_profile
from gxlib.errors import GxError, Unavailable
from gxlib.monitoring.alerts import DeploymentTarget, alert_rules
from gxlib.monitoring.catalog import projection_lag_query, slo
from gxlib.monitoring.queries import PrometheusQueries, namespace_selector
from gxlib.monitoring.report import collect_report, write_report
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.platform.connect import local_platform
from gxlib.platform.endpoints import MonitoringEndpoints, kubernetes_endpoints, local_endpoints
from gxlib.platform.probes import Endpoint, http_endpoint
from gxlib.platform.settings import platform_settings
from gxlib.progress import WaitTimeout
from gxlib.runbook.display import in_notebook, show_table
from gxlib.runbook.drill_subject import DrillSubject, cluster_drill_subject, local_drill_subject
from gxlib.runbook.drills import SUCCESS_RATE_WINDOW, Drill, DrillLog
from gxlib.runbook.endpoint_checks import check_endpoints, monitoring_stack_exists
from gxlib.runbook.parameters import ValidateMonitoringParameters
from gxlib.runbook.section import RunbookSection
from gxlib.runbook.session import Runbook
from gxlib.runbook.steps_backend import (
    TRACE_COLUMNS,
    BackendTarget,
    CommandTrace,
    backend_endpoints,
    local_backend,
    record_path,
    submit_command,
)

RUNBOOK = "05-validate-monitoring"
BREAKER_ALERT = "FabricCircuitBreakerOpen"
DRILL_ACCOUNT = "gx-runbook-drill"
REPORT_FILE = "slo-report.html"


def notified(notifications: list[dict[str, Any]], alert: str, status: str, since: datetime) -> bool:
    """Whether the webhook recorded a notification of ``alert`` with ``status`` for an alert that began after
    ``since`` (an older drill's notification does not count)."""
    for record in notifications:
        for item in record.get("notification", {}).get("alerts", []):
            if item.get("labels", {}).get("alertname") != alert or item.get("status") != status:
                continue
            starts = item.get("startsAt")
            try:
                began = datetime.fromisoformat(str(starts).replace("Z", "+00:00"))
            except ValueError:
                continue
            if began >= since - timedelta(seconds=5):
                return True
    return False


def routed(active: list[dict[str, Any]]) -> tuple[bool, str]:
    """Whether Alertmanager routed an active alert to a receiver (what it notifies), and what it holds."""
    receivers = sorted({str(r.get("name")) for alert in active for r in alert.get("receivers") or []})
    if receivers:
        return True, f"routed to {', '.join(receivers)}"
    return False, f"{len(active)} active, no receiver yet"


class ValidateMonitoring(RunbookSection[ValidateMonitoringParameters]):
    """Runbook 05, section by section."""

    parameters = ValidateMonitoringParameters

    def __init__(self, rb: Runbook, backend: BackendTarget | None = None,
                 stack: LocalMonitoringStack | None = None) -> None:
        super().__init__(rb)
        self.backend = backend
        self.stack = stack
        self.queries: PrometheusQueries | None = None
        self.endpoints: MonitoringEndpoints | None = None  # where Prometheus and Alertmanager are
        self.backend_missing: str | None = None
        self.drill: DrillSubject | None = None  # off local, what the drill acts on (found by connect)
        self.config = MonitoringConfig()
        self.namespace = environment_profile(self.params.env).backend_namespace
        self.timeline: list[dict[str, Any]] = []
        self.report_file: Path | None = None

    def ready(self) -> bool:
        return self.queries is not None

    # --- 0. connect ----------------------------------------------------------------------------------------------
    def connect(self) -> None:
        """Find Prometheus and Alertmanager (local: the stack's, unless given; Kubernetes: the given URLs, else
        through the API server's proxy) and, on local, the backend (for the drill)."""
        if self.params.env is not Environment.LOCAL:
            self._connect_kubernetes()
            return
        if self.stack is None:
            self.stack = local_platform(monitoring_state_dir=self.params.monitoring_state_dir,
                                        devnet_state_dir=self.params.devnet_state_dir).stack
        self.config = self.stack.config
        self.endpoints = local_endpoints(self.params.prometheus_url or self.stack.prometheus_url,
                                         self.params.alertmanager_url or self.stack.alertmanager_url)
        if self.rb.dry_run and not check_endpoints(self, self._local_endpoints(self.endpoints)):
            return
        prometheus_url = self.endpoints.prometheus.url
        unready = self.endpoints.prometheus_unready()
        if unready is not None:
            self.rb.progress.info(f"  {unready}")
            self.stop("Prometheus reachable", f"Prometheus at {prometheus_url} is not ready (start the local stack "
                                              "with `gx monitoring up`, or set prometheus_url)")
            return
        self.rb.checks.record("Prometheus reachable", True, measured=prometheus_url)
        self.queries = self.endpoints.prometheus.prometheus(namespace=self.namespace,
                                                            alert_group=self.config.alert_group)
        if self.backend is None:
            try:
                self.backend = local_backend(self.params, self.rb.progress)
            except Unavailable as exc:
                self.backend_missing = exc.reason
            else:
                self.rb.add_secret(self.backend.token)

    def _local_endpoints(self, endpoints: MonitoringEndpoints) -> list[Endpoint]:
        """What a local run would use: Prometheus and Alertmanager when given by URL or once the stack was set up,
        and for the drill the devnet's orderer and peers, the API and the submitter's metrics."""
        assert self.stack is not None
        stack_exists = monitoring_stack_exists(self.stack.layout.root)
        found = []
        if self.params.prometheus_url is not None or stack_exists:
            found.append(http_endpoint("Prometheus", endpoints.prometheus.url, "/-/ready"))
        if self.params.alertmanager_url is not None or stack_exists:
            found.append(http_endpoint("Alertmanager", endpoints.alertmanager.url, "/-/ready"))
        if self.params.breaker_drill and self.backend is None:
            found += backend_endpoints(self.params)
        return found

    def _connect_kubernetes(self) -> None:
        params = self.params
        # Off local a dry run fails (rather than skips) when the API server, Prometheus or Alertmanager do not
        # answer: they are the endpoints the run would use.
        with self.unless_unavailable("Prometheus reachable", fails_dry_run=True):
            self.endpoints = kubernetes_endpoints(params.env, platform_settings(params.kubeconfig, params.kube_context),
                                                  prometheus_url=params.prometheus_url,
                                                  alertmanager_url=params.alertmanager_url)
        if self.endpoints is None:
            return
        prometheus, alertmanager = self.endpoints.prometheus, self.endpoints.alertmanager
        unready = self.endpoints.prometheus_unready()
        if unready is not None:
            self.stop("Prometheus reachable", f"{unready} (check kube_context / kubeconfig, or set prometheus_url)",
                      fails_dry_run=True)
            return
        self.rb.checks.record("Prometheus reachable", True, measured=prometheus.description)
        unready = self.endpoints.alertmanager_unready()
        self.rb.checks.record("Alertmanager reachable", unready is None, measured=alertmanager.description,
                              detail=unready or "")
        self.queries = prometheus.prometheus(namespace=self.namespace, alert_group=self.config.alert_group)
        if not params.breaker_drill:
            return
        try:
            self.drill = cluster_drill_subject(params, self.rb.progress)
        except Unavailable as exc:
            self.backend_missing = exc.reason
        else:
            self.rb.add_secret(self.drill.token)
            self.rb.progress.info(f"  drill: {self.drill.where}; Gateway peer {self.drill.gateway}")

    # --- 1. SLO gauges -------------------------------------------------------------------------------------------
    def slo_gauges(self) -> None:
        """The four SLOs now, each against its target; an SLO without data is skipped, not passed."""
        if self.skip_section("SLO gauges"):
            return
        assert self.queries is not None
        values = self.queries.slo_values()
        rows = []
        for key, row in values.iterrows():
            value = row["value"]
            rows.append({"SLO": row["title"], "value": None if math.isnan(value) else round(float(value), 3),
                         "unit": row["unit"], "target": f"{row['comparison']} {row['target']:g}",
                         "status": row["status"], "band": row["band"]})
            name = f"SLO {row['title']}"
            breached = not math.isnan(value) and not bool(row["target_met"])
            drill = self._recent_drill() if key == "transaction_success_rate" and breached else None
            if drill is not None:
                clear = drill.ended + SUCCESS_RATE_WINDOW
                self.rb.checks.skip(name, f"{float(value):.3g} {row['unit']}, but the window includes the "
                                    f"circuit-breaker drill of {drill.started:%H:%M:%S}–{drill.ended:%H:%M:%S} UTC "
                                    "(a deliberate outage whose retries count against this SLO); it measures the "
                                    f"system again after {clear:%H:%M:%S} UTC",
                                    expected=f"{row['comparison']} {row['target']:g}", unit=row["unit"])
            elif math.isnan(value):
                if self.params.env is not Environment.LOCAL:
                    why = f"no data: nothing measured in {self.namespace} in the window yet"
                elif key == "availability":
                    why = "no data: the local profile has no kube-state-metrics (restarts of pods)"
                else:
                    why = "no data: nothing measured in the window yet"
                self.rb.checks.skip(name, why, expected=f"{row['comparison']} {row['target']:g}", unit=row["unit"])
            else:
                self.rb.checks.record(name, bool(row["target_met"]), measured=round(float(value), 3),
                                      expected=f"{row['comparison']} {row['target']:g}", unit=row["unit"],
                                      detail=f"band {row['band']}")
        show_table("The four SLOs now", rows, ("SLO", "value", "unit", "target", "status", "band"))

    def _drill_log(self) -> DrillLog | None:
        return DrillLog(self.stack.layout.root) if self.stack is not None else None

    def _recent_drill(self) -> Drill | None:
        log = self._drill_log()
        return log.latest_within(SUCCESS_RATE_WINDOW) if log is not None else None

    # --- 2. lag over time ----------------------------------------------------------------------------------------
    def projection_lag(self) -> None:
        """``projector_lag_milliseconds`` over the last ``lag_window_minutes``: a chart and its maximum."""
        if self.skip_section("projection lag over time"):
            return
        assert self.queries is not None
        window = timedelta(minutes=self.params.lag_window_minutes)
        expression = projection_lag_query(namespace_selector(self.namespace))
        frame = self.queries.window(expression, window, name="projection lag (ms)")
        target = float(slo("projection_lag").target)
        if frame.empty:
            self.rb.checks.skip("projection lag over the window", "no data in the window", expected=f"< {target:g}",
                                unit="ms")
            return
        series_values = frame.iloc[:, 0].dropna()
        peak = float(series_values.max())
        self.rb.checks.below(f"projection lag max over {self.params.lag_window_minutes} min", peak, target, unit="ms",
                             detail=f"{len(series_values)} samples, last {float(series_values.iloc[-1]):g} ms")
        if in_notebook():
            import plotly.graph_objects as go
            from IPython.display import display

            figure = go.Figure(go.Scatter(x=series_values.index, y=series_values.values, name="lag (ms)"))
            figure.add_hline(y=target, line_dash="dash", line_color="red", annotation_text=f"SLO {target:g} ms")
            figure.update_layout(title="Projection lag (ms)", height=320, margin={"t": 40, "b": 30})
            display(figure)
        else:
            print(series_values.describe().to_string())

    # --- 3. the drill --------------------------------------------------------------------------------------------
    def _await(self, name: str, probe: Callable[[], tuple[bool, str | None]], timeout_s: float,
               started: float) -> bool:
        """Wait for one stage of the drill; record it in the timeline and as a check (never raises a timeout)."""
        try:
            self.rb.progress.wait_until(name, probe, timeout_s=timeout_s, interval_s=0.5)
        except (WaitTimeout, GxError) as exc:
            self.timeline.append({"stage": name, "after s": None, "result": str(exc)})
            self.rb.checks.record(f"drill: {name}", False, detail=str(exc))
            return False
        after = round(time.monotonic() - started, 1)
        self.timeline.append({"stage": name, "after s": after, "result": "ok"})
        self.rb.checks.record(f"drill: {name}", True, measured=after, unit="s")
        return True

    def breaker_drill(self) -> None:
        """Gateway unreachable → breaker open → alert pending → firing → Alertmanager → restore → closed."""
        if self.skip_section("circuit-breaker drill"):
            return
        if not self.params.breaker_drill:
            reason = "breaker_drill is false"
            if self.params.env is Environment.DEVNET:
                reason += " (off by default on devnet: set it true to stop the devnet's Gateway peer)"
            elif self.params.env is not Environment.LOCAL:
                reason += (f" (env={self.params.env.value}: only the local profile and devnet can stop the Gateway "
                           "peer)")
            self.rb.checks.skip("circuit-breaker drill", reason)
            return
        if self.drill is None and self.backend is not None:
            self.drill = local_drill_subject(self.backend)
        if self.drill is None:
            reason = self.backend_missing or "no backend"
            if self.rb.dry_run:
                self.rb.checks.skip("circuit-breaker drill", f"dry run: {reason}")
            else:
                self.rb.checks.record("circuit-breaker drill", False, detail=reason)
            return
        drill = self.drill
        assert self.queries is not None and self.endpoints is not None
        prometheus, alertmanager = self.queries, self.endpoints.alertmanager.alertmanager()
        state, seen = drill.breaker()
        self.rb.step("make the gateway unreachable", changes=f"stop {drill.gateway}, the submitter's Gateway peer",
                     apply=drill.stop_gateway)
        if self.rb.dry_run:
            alertmanager.close()
            self.rb.checks.skip("circuit-breaker drill", f"dry run: breaker now {seen}; nothing was stopped")
            return
        outbox_before = drill.outbox()
        if state != 0.0:
            self.rb.checks.record("drill: breaker closed before", False, detail=seen)
        started = time.monotonic()
        began = datetime.now(UTC)
        trace: CommandTrace | None = None
        try:
            stamp = began.strftime("%Y%m%dT%H%M%S")
            trace = submit_command(drill.api, "drill command", "MINT",
                                   {"accountId": DRILL_ACCOUNT, "amount": 1, "remark": f"{RUNBOOK} drill {stamp}"},
                                   f"{RUNBOOK}:drill:{stamp}")
            self.timeline.append({"stage": f"MINT posted while the gateway is down ({trace.command_id})",
                                  "after s": round(time.monotonic() - started, 1), "result": trace.status})

            def breaker_is(value: float) -> Callable[[], tuple[bool, str | None]]:
                def probe() -> tuple[bool, str | None]:
                    current, text = drill.breaker()
                    return current == value, text
                return probe

            def alert_is(state: str) -> Callable[[], tuple[bool, str | None]]:
                def probe() -> tuple[bool, str | None]:
                    current = prometheus.alert_state(BREAKER_ALERT)
                    wanted = ("pending", "firing") if state == "pending" else (state,)
                    # The breaker's state says why an alert does not fire: half-open (0.5) restarts its `for`.
                    breaker = drill.breaker()[1]
                    return current in wanted, f"{BREAKER_ALERT} {current}; {breaker}"
                return probe

            if self._await("circuit breaker open (1)", breaker_is(1.0), self.params.breaker_open_timeout_s, started):
                command = drill.api.command(trace.command_id)
                self.rb.checks.record("drill: command kept while the breaker is open", command.status in
                                      ("PENDING", "PROCESSING"), measured=command.status, expected="PENDING",
                                      detail=f"{command.attempts} attempts so far")
                firing_timeout = self.params.alert_firing_timeout_s
                if (self._await(f"{BREAKER_ALERT} pending", alert_is("pending"), firing_timeout, started)
                        and self._await(f"{BREAKER_ALERT} firing", alert_is("firing"), firing_timeout, started)):
                    self._await(f"{BREAKER_ALERT} active in Alertmanager",
                                lambda: (bool(alertmanager.active(BREAKER_ALERT)), "not yet"),
                                firing_timeout, started)
                    stack = self.stack
                    if stack is not None and (self.params.alertmanager_url is None
                                              or self.params.monitoring_state_dir is not None):
                        self._await(f"{BREAKER_ALERT} notified to the webhook",
                                    lambda: (notified(stack.notifications(), BREAKER_ALERT, "firing", began),
                                             f"{len(stack.notifications())} notifications recorded"),
                                    firing_timeout, started)
                    elif stack is None:
                        self._await(f"{BREAKER_ALERT} routed to a receiver by Alertmanager",
                                    lambda: routed(alertmanager.active(BREAKER_ALERT)), firing_timeout, started)
        finally:
            alertmanager.close()
            # Whatever happened above: the gateway comes back.
            self.rb.step("restore the gateway", changes=f"start {drill.gateway} again (`gx devnet up`)",
                         apply=drill.restore_gateway)
            self.timeline.append({"stage": f"{drill.gateway} restored",
                                  "after s": round(time.monotonic() - started, 1), "result": "ok"})
        recovery = self.params.recovery_timeout_s
        self._await("circuit breaker closed (0)", breaker_is(0.0), recovery, started)
        if trace is not None:
            command_id = trace.command_id

            def committed() -> tuple[bool, str | None]:
                trace.update(drill.api.command(command_id))
                return trace.status in ("COMMITTED", "FAILED", "DLQ"), f"{trace.status}, {trace.attempts} attempts"

            self._await("drill command committed", committed, recovery, started)
            self.rb.checks.equal("drill: nothing lost", trace.status, "COMMITTED",
                                 detail=f"block {trace.block}, {trace.attempts} attempts" if trace.block
                                 else (trace.error or ""))
            show_table("The drill's command", [trace.row()], TRACE_COLUMNS)
        outbox_after = drill.outbox()
        self.rb.checks.record("drill: no command sent to the DLQ", outbox_after.get("DLQ", 0)
                              <= outbox_before.get("DLQ", 0), measured=outbox_after.get("DLQ", 0),
                              expected=f"<= {outbox_before.get('DLQ', 0)} (before the drill)",
                              detail=f"outbox before {outbox_before}, after {outbox_after}")
        self._await(f"{BREAKER_ALERT} resolved", alert_is("inactive"), recovery, started)
        log = self._drill_log()
        if log is not None:  # later runs tell this drill's retries from a real breach of the success-rate SLO
            log.record(began, datetime.now(UTC))
        show_table("Circuit-breaker drill: timeline (seconds after the gateway went down)", self.timeline,
                   ("stage", "after s", "result"))

    # --- 4. alert rules ------------------------------------------------------------------------------------------
    def alert_rules(self) -> None:
        """Every rule of the group with its state; all loaded, none with an evaluation error."""
        if self.skip_section("alert rules"):
            return
        assert self.queries is not None
        frame = self.queries.alert_states()
        target = DeploymentTarget.LOCAL if self.params.env is Environment.LOCAL else DeploymentTarget.KUBERNETES
        expected = len(alert_rules(self.config, target))
        self.rb.checks.equal("alert rules loaded", len(frame), expected, detail=self.config.alert_group)
        broken = [str(name) for name, row in frame.iterrows() if row["health"] not in ("ok", "")]
        self.rb.checks.record("alert rules evaluate without error", not broken, measured=len(broken),
                              expected=0, detail=", ".join(broken))
        firing = [str(name) for name, row in frame.iterrows() if row["state"] == "firing"]
        pending = [str(name) for name, row in frame.iterrows() if row["state"] == "pending"]
        self.rb.progress.info(f"  firing: {firing or 'none'}; pending: {pending or 'none'}")
        rows = [{"alert": name, "state": row["state"], "severity": row["severity"], "for": f"{row['for_s']:g}s",
                 "active": row["active"], "health": row["health"], "summary": row["summary"]}
                for name, row in frame.iterrows()]
        show_table(f"The {len(rows)} alert rules of {self.config.alert_group}", rows,
                   ("alert", "state", "severity", "for", "active", "health", "summary"))

    # --- 5. the report -------------------------------------------------------------------------------------------
    def report(self) -> Path | None:
        """The plotly SLO report as one self-contained HTML file (``report_path``, default: in the record)."""
        if self.skip_section("SLO report"):
            return None
        path = (self.params.report_path or record_path(self.rb, REPORT_FILE)).resolve()
        window = timedelta(minutes=self.params.lag_window_minutes)

        queries = self.queries
        assert queries is not None

        def write() -> str:
            write_report(collect_report(queries, window, self.config), path)
            return str(path)

        self.rb.step("write the SLO report", changes=f"write {path}", apply=write)
        if self.rb.dry_run:
            self.rb.checks.skip("SLO report written", f"dry run: would write {path}")
            return None
        text = path.read_text(encoding="utf-8") if path.is_file() else ""
        self_contained = "<script src=\"http" not in text and "plotly" in text.lower()
        self.rb.checks.record("SLO report written (self-contained HTML)", bool(text) and self_contained,
                              measured=str(path), detail=f"{len(text) // 1024} KiB")
        self.report_file = path
        self.rb.progress.info(f"  SLO report: {path}")
        return path

    def close(self) -> None:
        if self.queries is not None:
            self.queries.close()
        if self.drill is not None:
            self.drill.close()
        if self.backend is not None:
            self.backend.close()

