"""Runbook 01 · deploy monitoring (SPEC §8.1): render from code, diff against what is deployed, apply, reload,
verify — one method per section of ``notebooks/01-deploy-monitoring.ipynb``.

The steps go through the environment's :class:`gxlib.platform.Platform` (``gxlib.platform.connect``): what is
deployed and how to change it. :class:`~gxlib.platform.local.LocalPlatform` is the stack of ``gx monitoring up`` (its
``config/`` files, reloaded through Prometheus' lifecycle endpoint); env=devnet/testnet/mainnet is
:class:`~gxlib.platform.kubernetes_platform.KubernetesPlatform` (the ConfigMaps in namespace ``fabric``, Prometheus in
``prometheus-0`` reloaded through the API server's pod proxy or by ``kill -HUP 1``).

A run stops before changing anything when the deployment cannot be read (no cluster, no namespace ``fabric``), and,
locally, when Prometheus is not running. On Kubernetes the ConfigMaps are applied even while Prometheus does not
answer; the run then fails on that check, with the reload and the verification not made. A reload that Prometheus
refuses is a failed check naming what refused it, not a traceback.

What the checks mean: a scrape target that Prometheus reports down is a measured failure (``up == 0`` is exactly
what BackendServiceDown fires on), so the three ``gx-*`` jobs fail their check while the backend is not running.
A dashboard query over series that do not exist yet answers "no data", like an SLO without data: it is neither
met nor breached, so the query passes when Prometheus accepts it, and fails only when its series exist and it
still returns nothing.
"""

from __future__ import annotations

import re
from typing import Any

import pandas as pd

from gxlib.config import Environment
from gxlib.errors import Unavailable
from gxlib.monitoring.alerts import DeploymentTarget, alert_rules
from gxlib.monitoring.artifacts import ALERT_RULES, DASHBOARD, SCRAPE_CONFIG, MonitoringArtifact
from gxlib.monitoring.dashboard import NAMESPACE_VARIABLE, dashboard_json_model
from gxlib.monitoring.queries import PrometheusError
from gxlib.monitoring.scrape import BACKEND_JOBS
from gxlib.monitoring.settings import MonitoringConfig, MonitoringSettings
from gxlib.platform import Platform
from gxlib.platform.connect import connect
from gxlib.progress import WaitTimeout
from gxlib.runbook.display import show_diff, show_markdown, show_table
from gxlib.runbook.endpoint_checks import monitoring_stack_exists
from gxlib.runbook.errors import StepFailed
from gxlib.runbook.parameters import DeployMonitoringParameters
from gxlib.runbook.section import RunbookSection
from gxlib.runbook.session import Runbook

_METRIC_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{")
# A scrape that nothing answers: the process is not running (waiting longer will not bring it up).
_NOTHING_LISTENS = ("connection refused",)
PLATFORM_AVAILABLE = "platform available"


def backend_target_settled(health: str, last_error: str, last_scrape: pd.Timestamp | None,
                           since: pd.Timestamp) -> bool:
    """Whether waiting longer for a backend scrape target can change its verdict: it is up, or its latest
    scrape — one that started after ``since`` — found nothing listening. A refusal seen before ``since`` may
    be from before a restart, so it does not settle anything."""
    if health == "up":
        return True
    refused = health == "down" and any(text in last_error.lower() for text in _NOTHING_LISTENS)
    return refused and last_scrape is not None and last_scrape >= since


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows of ``frame`` as a table's rows."""
    return [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]


def platform_of(params: DeployMonitoringParameters, rb: Runbook) -> Platform:
    """The platform ``params`` point at; Unavailable when this machine has none (no kubeconfig, no cluster)."""
    return connect(params.env, kubeconfig=params.kubeconfig, kube_context=params.kube_context,
                   prometheus_url=params.prometheus_url, monitoring_state_dir=params.monitoring_state_dir,
                   devnet_state_dir=params.devnet_state_dir, reload_method=params.reload_method,
                   reload_timeout_s=params.rules_timeout_s, progress=rb.progress)


def _metric_names(query: str) -> set[str]:
    return set(_METRIC_SELECTOR.findall(query))


def dashboard_queries(config: MonitoringConfig) -> list[tuple[str, str]]:
    """(panel title / legend, expression) of every dashboard query, in panel order."""
    queries = []
    for panel in dashboard_json_model(config)["panels"]:
        for target in panel.get("targets", []):
            label = f"{panel['title']} / {target.get('legendFormat') or target.get('refId', '')}"
            queries.append((label, str(target["expr"])))
    return queries


class DeployMonitoring(RunbookSection[DeployMonitoringParameters]):
    """Runbook 01, section by section. Each method records its steps and checks on ``rb``; once the runbook has
    stopped (the platform is unavailable), the later sections say so and do nothing."""

    parameters = DeployMonitoringParameters

    def __init__(self, rb: Runbook, platform: Platform | None = None) -> None:
        super().__init__(rb)
        self.platform = platform
        if platform is None:
            try:
                self.platform = platform_of(self.params, rb)
            except Unavailable as exc:
                self.stopped = exc.reason
        self.prometheus_reachable = False
        self._artifacts: list[MonitoringArtifact] | None = None

    def _dry_run_skip(self, name: str) -> bool:
        if self.rb.dry_run:
            self.rb.checks.skip(name, "dry run: nothing was deployed, so there is nothing to verify")
            return True
        if not self.prometheus_reachable:
            self.rb.checks.skip(name, "Prometheus is not reachable (see the check above)")
            return True
        return False

    # --- 0. where --------------------------------------------------------------------------------------------
    def check_target(self) -> None:
        """Record where the monitoring goes and whether it can be reached; stop if it cannot."""
        env = f"env={self.params.env.value}"
        expected = "a platform this machine can act on"
        if self.platform is None:
            self.rb.checks.record(PLATFORM_AVAILABLE, False, measured=env, expected=expected, detail=self.stopped or "")
            return
        deployment = self.platform
        try:
            deployment.check_available()
        except Unavailable as exc:
            # Nothing deployed can be read: not even a dry run can show a diff.
            self.rb.checks.record(PLATFORM_AVAILABLE, False, measured=env, expected=expected, detail=exc.reason)
            self.stopped = exc.reason
            return
        self.rb.checks.record(PLATFORM_AVAILABLE, True, measured=deployment.description, expected=expected)
        reason = deployment.prometheus_unready()
        show_table("Where the monitoring is deployed", [
            {"what": "environment", "value": deployment.env.value},
            {"what": "platform", "value": deployment.description},
            {"what": "Prometheus", "value": deployment.prometheus_url},
            {"what": "backend namespace", "value": deployment.namespace},
            *({"what": a.name, "value": a.location} for a in self.artifacts()),
        ], ("what", "value"))
        name = f"Prometheus reachable at {deployment.prometheus_url}"
        if reason is None:
            self.prometheus_reachable = True
            self.rb.checks.record(name, True, measured="ready", expected="ready")
        elif self.rb.dry_run:
            # A dry run still shows the diff against what is deployed; it fails when the Prometheus the run would
            # reload does not answer (locally: one given by URL, or the stack's once the stack was set up).
            then = ("applies the artifacts, but cannot reload or verify" if deployment.deploys_without_prometheus
                    else "stops here")
            if self._prometheus_expected(deployment):
                self.rb.checks.record(name, False, measured="not ready", expected="ready",
                                      detail=f"dry run: {reason}; a real run {then}")
            else:
                self.rb.checks.skip(name, f"dry run: {reason}; a real run {then}")
        elif deployment.deploys_without_prometheus:
            self.rb.checks.record(name, False, measured="not ready", expected="ready",
                                  detail=f"{reason} — the artifacts are applied all the same (Prometheus reads them "
                                         "when it starts); the reload and the verification are not made")
        else:
            self.rb.checks.record(name, False, measured="not ready", expected="ready", detail=reason)
            self.stopped = reason

    def _prometheus_expected(self, deployment: Platform) -> bool:
        """Whether the run has a Prometheus to reach: on Kubernetes always; locally one given by prometheus_url,
        or the stack's once `gx monitoring up` set the stack up (before that there is nothing to reload)."""
        if deployment.env is not Environment.LOCAL:
            return True
        state_dir = self.params.monitoring_state_dir or MonitoringSettings().stack_state_dir
        return self.params.prometheus_url is not None or monitoring_stack_exists(state_dir)

    def artifacts(self) -> list[MonitoringArtifact]:
        if self._artifacts is None:
            assert self.platform is not None
            self._artifacts = self.platform.artifacts()
        return self._artifacts

    # --- 1. render ---------------------------------------------------------------------------------------------
    def render(self) -> list[MonitoringArtifact]:
        """Render the three artifacts from code and show each one's state against the deployed copy."""
        if self.skip_section("render") or self.platform is None:
            return []
        artifacts = self.artifacts()
        show_table("Rendered from gxlib.monitoring", [
            {"artifact": a.name, "state": a.state, "lines": len(a.rendered.splitlines()),
             "changed lines": a.changed_lines(), "deployed at": a.location} for a in artifacts],
            ("artifact", "state", "lines", "changed lines", "deployed at"))
        return artifacts

    # --- 2. diff -----------------------------------------------------------------------------------------------
    def show_diff(self) -> None:
        if self.skip_section("diff") or self.platform is None:
            return
        for artifact in self.artifacts():
            if not artifact.changed:
                show_markdown(f"**{artifact.name}** — `{artifact.location}`: unchanged, nothing to deploy")
            else:
                show_diff(f"{artifact.name} — {artifact.state}, {artifact.changed_lines()} lines differ",
                          artifact.diff())

    # --- 3. apply scrape config + rules, reload ---------------------------------------------------------------
    def apply(self) -> None:
        if self.skip_section("apply") or self.platform is None:
            return
        deployment = self.platform
        config = [a for a in self.artifacts() if a.name in (SCRAPE_CONFIG, ALERT_RULES)]
        changed = [a for a in config if a.changed]
        self.rb.step(
            "write scrape config and alert rules",
            changes=", ".join(f"{a.location} ({a.state}, {a.changed_lines()} lines)" for a in changed)
            or "nothing: both are deployed as rendered",
            is_done=lambda: not changed,
            apply=lambda: deployment.write(changed),
        )
        loaded = "Prometheus loaded the deployed configuration"
        if not self.params.reload:
            self.rb.progress.info("  reload=false: Prometheus keeps the configuration it has loaded")
            self.rb.checks.skip(loaded, "reload=false")
            return
        if not self.prometheus_reachable and not self.rb.dry_run:
            self.rb.checks.skip(loaded, "Prometheus does not answer (see the check above): nothing to reload")
            return

        def reload() -> None:
            deployment.reload_prometheus()

        try:
            self.rb.step(
                "reload Prometheus",
                changes=deployment.reload_action,
                is_done=lambda: not changed and deployment.config_loaded(),
                apply=reload,
            )
        except StepFailed as failure:
            # What refused the reload (pod, namespace, HTTP status; or Prometheus' own message) is the operator's
            # answer; the verification after it would only repeat that Prometheus does not run the new files.
            cause = failure.__cause__ or failure
            self.rb.checks.record(loaded, False, measured="reload failed", expected="loaded",
                                  detail=f"{type(cause).__name__}: {cause}")
            self.prometheus_reachable = False

    # --- 4. dashboard --------------------------------------------------------------------------------------------
    def load_dashboard(self) -> None:
        if self.skip_section("dashboard") or self.platform is None:
            return
        deployment = self.platform
        dashboard = next(a for a in self.artifacts() if a.name == DASHBOARD)
        self.rb.step(
            "load the dashboard",
            changes=f"write {dashboard.location} ({dashboard.state})",
            is_done=lambda: not dashboard.changed,
            apply=lambda: deployment.write([dashboard]),
        )

    # --- 5. targets ------------------------------------------------------------------------------------------------
    def verify_targets(self) -> None:
        """Wait until every target was scraped (Fabric ones up), then record one check per job."""
        if self.skip_section("targets") or self.platform is None or self._dry_run_skip("scrape targets"):
            return
        fabric_jobs = self.platform.fabric_jobs
        jobs = (*BACKEND_JOBS, *fabric_jobs)
        namespace = self.platform.namespace
        since = pd.Timestamp.now(tz="UTC")

        def of_this_env(frame: pd.DataFrame) -> pd.DataFrame:
            # One Prometheus may scrape several environments' backends: only this one's (namespace) count.
            backend = frame["job"].isin(BACKEND_JOBS)
            return frame[frame["job"].isin(jobs) & (~backend | (frame["namespace"] == namespace))]

        with self.platform.prometheus() as prometheus:
            def settled() -> tuple[bool, str]:
                frame = of_this_env(prometheus.target_health())
                fabric = frame[frame["job"].isin(fabric_jobs)]
                backend = frame[frame["job"].isin(BACKEND_JOBS)]
                seen = set(frame["job"])
                # A backend target refusing connections now has nothing listening: waiting longer will not help.
                backend_settled = all(backend_target_settled(str(row["health"]), str(row["last_error"]),
                                                             row["last_scrape"], since)
                                      for row in backend.to_dict("records"))
                state = ", ".join(f"{row.job} {row.instance} {row.health}" for row in frame.itertuples())
                done = (seen >= set(jobs) and not fabric.empty and bool((fabric["health"] == "up").all())
                        and backend_settled)
                return done, state or "no targets yet"

            try:
                self.rb.progress.wait_until("every scrape target to be scraped (Fabric targets up)", settled,
                                            timeout_s=self.params.targets_timeout_s, interval_s=1.0)
            except WaitTimeout as exc:
                self.rb.progress.info(f"  {exc}")
            every_target = prometheus.target_health()
        frame = of_this_env(every_target)
        show_table("Scrape targets", _records(every_target),
                   ("job", "instance", "namespace", "health", "last_error"))
        for job in jobs:
            rows = frame[frame["job"] == job]
            up = int((rows["health"] == "up").sum())
            errors = "; ".join(f"{r.instance}: {r.last_error}" for r in rows.itertuples() if r.health != "up")
            detail = errors
            if job in BACKEND_JOBS and up < len(rows):
                detail = (f"{errors} — the backend process is not serving /metrics here; BackendServiceDown "
                          "(critical) fires until it does")
            if rows.empty:
                detail = "the job is not in Prometheus' active targets"
            self.rb.checks.record(f"targets up: {job}", not rows.empty and up == len(rows),
                                  measured=f"{up}/{len(rows)} up", expected="all up", detail=detail)

    # --- 6. rules -------------------------------------------------------------------------------------------------
    def verify_rules(self) -> None:
        if self.skip_section("rules") or self.platform is None or self._dry_run_skip("alert rules loaded"):
            return
        expected = sorted(rule.name for rule in alert_rules(MonitoringConfig(), DeploymentTarget.LOCAL))
        with self.platform.prometheus() as prometheus:
            def loaded() -> tuple[bool, str]:
                frame = prometheus.alert_states()
                return sorted(frame.index) == expected, f"{len(frame)} rules in {prometheus.alert_group}"

            try:
                self.rb.progress.wait_until(f"the {len(expected)} alert rules to be loaded", loaded,
                                            timeout_s=self.params.rules_timeout_s, interval_s=1.0)
            except WaitTimeout as exc:
                self.rb.progress.info(f"  {exc}")
            frame = prometheus.alert_states()
            group = prometheus.alert_group
        show_table(f"Alert rules of {group}", _records(frame.reset_index()),
                   ("alert", "state", "severity", "for_s", "health", "last_error"))
        self.rb.checks.equal(f"alert rules loaded ({group})", len(frame), len(expected), unit="rules")
        missing = sorted(set(expected) - set(frame.index))
        self.rb.checks.record("alert rules are the rendered ones", not missing and len(frame) == len(expected),
                              measured=f"{len(expected) - len(missing)}/{len(expected)} names",
                              expected="every rendered rule",
                              detail=f"missing: {', '.join(missing)}" if missing else "")
        broken = [f"{name}: {row.last_error}" for name, row in frame.iterrows() if row.health == "err"]
        self.rb.checks.record("alert rules evaluate without error", not broken, measured=f"{len(broken)} errors",
                              expected="0 errors", detail="; ".join(broken))

    @staticmethod
    def _missing(query: str, names: set[str]) -> list[str]:
        """The metrics ``query`` selects that Prometheus has no series of."""
        return sorted(_metric_names(query) - names)

    # --- 7. dashboard queries ----------------------------------------------------------------------------------------
    def verify_dashboard_queries(self) -> None:
        if (self.skip_section("dashboard queries") or self.platform is None
                or self._dry_run_skip("dashboard queries")):
            return
        deployment = self.platform
        queries = [(label, expression.replace(f"${NAMESPACE_VARIABLE}", deployment.namespace))
                   for label, expression in dashboard_queries(MonitoringConfig())]
        with deployment.prometheus() as prometheus:
            # Metrics with a sample in the last lookback window (5 min), not every name the TSDB ever stored: a
            # series of an earlier run of the backend is history, and a query over it rightly returns nothing.
            used = sorted(set().union(*(_metric_names(query) for _, query in queries)))
            present = prometheus.instant(f'group by (__name__) ({{__name__=~"{"|".join(used)}"}})') if used else None
            names = set() if present is None or present.empty else set(present["__name__"])
            # The namespace variable's own query: which backend namespaces Prometheus knows.
            variable = prometheus.label_values("namespace", match='up{job=~"gx-.*"}')
            self.rb.checks.record("dashboard variable $namespace offers the backend namespace",
                                  deployment.namespace in variable, measured=", ".join(variable) or "none",
                                  expected=deployment.namespace)
            answers: dict[str, int | str] = {}

            def ask_all() -> tuple[bool, str]:
                for label, query in queries:
                    if answers.get(label):
                        continue
                    try:
                        answers[label] = len(prometheus.instant(query))
                    except PrometheusError as exc:
                        answers[label] = f"refused: {exc}"
                waiting = [label for label, query in queries if answers[label] == 0 and not self._missing(query, names)]
                return not waiting, f"no data yet from {', '.join(waiting)}"

            try:
                # A rate() needs two scrapes of a series that has just appeared: give it a few scrape intervals.
                self.rb.progress.wait_until("the dashboard queries whose series exist to return data", ask_all,
                                            timeout_s=min(30.0, self.params.targets_timeout_s), interval_s=1.0)
            except WaitTimeout as exc:
                self.rb.progress.info(f"  {exc}")
        rows = []
        for label, query in queries:
            answer, missing = answers[label], self._missing(query, names)
            if isinstance(answer, str):
                passed, measured, detail = False, "refused", answer
            elif answer:
                passed, measured, detail = True, f"{answer} series", ""
            elif missing:
                passed, measured = True, "0 series"
                detail = f"no data: this Prometheus has no series of {', '.join(missing)}"
            else:
                passed, measured, detail = False, "0 series", "its series exist but the query returns nothing"
            rows.append({"query": label, "accepted": "no" if isinstance(answer, str) else "yes",
                         "series": measured, "detail": detail})
            self.rb.checks.record(f"dashboard query: {label}", passed, measured=measured,
                                  expected="accepted; data where its series exist", detail=detail)
        show_table("Dashboard queries against Prometheus", rows, ("query", "accepted", "series", "detail"))

