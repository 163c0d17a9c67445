"""The platform on the local profile: the monitoring stack of `gx monitoring up` (its ``config/`` files, Prometheus
reloaded through its lifecycle endpoint or by SIGHUP).

Rendering uses the same settings as ``gx monitoring up`` (``GX_MONITORING_*``, the devnet's settings in force), so an
unchanged checkout finds the stack's own files "unchanged". The local profile has no Grafana: the dashboard is kept
in ``config/dashboards/`` as the file a Grafana would provision. Rolling the chaincode is not done here: locally the
chaincode servers are processes that ``gxlib.chaincode.deploy`` restarts as part of the upgrade itself.

    platform = LocalPlatform(MonitoringSettings(), DevnetSettings())
    platform.write([a for a in platform.artifacts() if a.changed]); platform.reload_prometheus()
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from gxlib.config import DevnetSettings, Environment
from gxlib.monitoring.artifacts import ALERT_RULES, DASHBOARD, SCRAPE_CONFIG, MonitoringArtifact
from gxlib.monitoring.dashboard import DASHBOARD_FILE_NAME, render_dashboard_json
from gxlib.monitoring.queries import PrometheusError, PrometheusQueries
from gxlib.monitoring.scrape import FABRIC_ORDERER_JOB, FABRIC_PEER_JOB
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.monitoring.stack import PROMETHEUS, LocalMonitoringStack
from gxlib.platform.base import ChaincodeRoll, ReloadMethod
from gxlib.platform.errors import PlatformError, PrometheusReloadError


class LocalPlatform:
    env = Environment.LOCAL
    fabric_jobs: tuple[str, ...] = (FABRIC_ORDERER_JOB, FABRIC_PEER_JOB)
    # The stack reads its files when it starts: with Prometheus down there is nothing to gain from writing them now.
    deploys_without_prometheus = False

    def __init__(self, config: MonitoringConfig, devnet: DevnetSettings, *, prometheus_url: str | None = None,
                 alertmanager_url: str | None = None) -> None:
        self.config = config
        self.stack = LocalMonitoringStack(config, devnet)
        self.prometheus_url = (prometheus_url or self.stack.prometheus_url).rstrip("/")
        self.alertmanager_url = (alertmanager_url or self.stack.alertmanager_url).rstrip("/")
        self.namespace = config.local_targets.namespace
        self.description = f"this machine: the monitoring stack in {self.stack.layout.root}"

    @property
    def reload_action(self) -> str:
        return f"POST {self.prometheus_url}/-/reload (lifecycle API): load the scrape jobs and rules"

    @property
    def dashboard_file(self) -> Path:
        return self.stack.layout.config_dir / "dashboards" / DASHBOARD_FILE_NAME

    def _files(self) -> list[tuple[str, Path, str]]:
        rendered = self.stack.rendered_files()
        layout = self.stack.layout
        return [
            (SCRAPE_CONFIG, layout.prometheus_config, rendered[layout.prometheus_config]),
            (ALERT_RULES, layout.rules_file, rendered[layout.rules_file]),
            (DASHBOARD, self.dashboard_file, render_dashboard_json(self.config)),
        ]

    def check_available(self) -> None:
        """The stack's files can always be read and written."""

    def prometheus_unready(self) -> str | None:
        if self.stack.running_pid(PROMETHEUS) is None:
            return (f"the local Prometheus of the stack in {self.stack.layout.root} is not running "
                    "(start it with `gx monitoring up`)")
        with self.prometheus() as prometheus:
            return prometheus.unready()

    def prometheus(self) -> PrometheusQueries:
        return PrometheusQueries(self.prometheus_url, alert_group=self.config.alert_group)

    def artifacts(self) -> list[MonitoringArtifact]:
        found = []
        for name, path, content in self._files():
            deployed = path.read_text(encoding="utf-8") if path.is_file() else None
            found.append(MonitoringArtifact(name, str(path), content, deployed))
        return found

    def write(self, artifacts: list[MonitoringArtifact]) -> list[str]:
        for artifact in artifacts:
            path = Path(artifact.location)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text(artifact.rendered, encoding="utf-8")
            tmp.replace(path)  # Prometheus never reads a half-written file
        return [artifact.location for artifact in artifacts]

    def loaded_state(self) -> tuple[bool, str]:
        """Whether Prometheus runs with the files in the stack's config/ (its last reload succeeded, after they were
        last written; the rules as rendered there), and what it reports."""
        layout = self.stack.layout
        rules = yaml.safe_load(layout.rules_file.read_text(encoding="utf-8")) if layout.rules_file.is_file() else {}
        group = self.config.alert_group
        groups: list[dict[str, Any]] = (rules or {}).get("groups", [])
        rendered_rules: list[dict[str, Any]] = next((g.get("rules", []) for g in groups if g.get("name") == group), [])
        with self.prometheus() as prometheus:
            loaded = prometheus.loaded_configuration()
        ok, state = loaded.state(group, rendered_rules, None)
        written = [p.stat().st_mtime for p in (layout.prometheus_config, layout.rules_file) if p.is_file()]
        loaded_at = loaded.loaded_at.timestamp() if loaded.loaded_at is not None else 0.0
        if written and loaded_at < int(max(written)):  # lastConfigTime has whole seconds
            newest = datetime.fromtimestamp(max(written), UTC)
            return False, f"{state}; the files were written at {newest:%H:%M:%S} UTC, after the last reload"
        return ok and bool(written), state

    def config_loaded(self) -> bool:
        try:
            return self.loaded_state()[0]
        except PrometheusError:
            return False

    def reload_prometheus(self, method: ReloadMethod = ReloadMethod.HTTP) -> None:
        """Reload the local Prometheus (lifecycle endpoint, or SIGHUP to its process) and check it loaded the files."""
        pid = self.stack.running_pid(PROMETHEUS)
        if pid is None:
            raise PrometheusReloadError("prometheus", "local", method.value, "the local Prometheus is not running "
                                        "(start it with `gx monitoring up`)")
        if method is ReloadMethod.SIGNAL:
            os.kill(pid, signal.SIGHUP)
            return
        try:
            with self.prometheus() as prometheus:
                prometheus.reload()
        except PrometheusError as exc:
            raise PrometheusReloadError("prometheus", "local", f"POST {self.prometheus_url}/-/reload",
                                        exc.message) from exc
        ok, state = self.loaded_state()
        if not ok:
            raise PrometheusError(f"Prometheus at {self.prometheus_url} answered the reload but does not run the "
                                  f"deployed configuration: {state}", url=self.prometheus_url)

    def roll_chaincode(self, package_ids: dict[str, str], *, image: str | None = None,
                       timeout_s: float = 300.0) -> list[ChaincodeRoll]:
        raise PlatformError("the local platform has no chaincode Deployments to roll",
                            hint="locally the upgrade restarts the chaincode processes itself (gx chaincode upgrade)")
