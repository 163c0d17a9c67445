"""Settings of the monitoring code: selectors, thresholds, scrape targets, ports, runbook links.

Two ways in:

* ``MonitoringConfig`` — a plain model whose defaults are what the committed artifacts are rendered from
  (``gx monitoring render`` and the drift test use ``MonitoringConfig()``, so the environment of whoever runs
  the render can never leak into a committed file).
* ``MonitoringSettings`` — the same fields read from the environment (``GX_MONITORING_*``, nested with
  ``__``), for the live local stack (``gx monitoring up``), which renders its own copy into its state
  directory with the ports actually in use.
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from gxlib.config import APP_NAME, DEFAULT_BACKEND_PORTS, DevnetSettings, Environment, environment_profile

KUBERNETES_ENVIRONMENTS: tuple[Environment, ...] = (Environment.MAINNET, Environment.TESTNET, Environment.DEVNET)


def _backend_namespaces() -> list[str]:
    return [environment_profile(env).backend_namespace for env in KUBERNETES_ENVIRONMENTS]


class AlertThresholds(BaseModel):
    """The numbers in the alert expressions (SPEC §6). Percentages are 0–100, durations milliseconds."""

    transaction_success_rate_percent: float = 99.9
    projection_lag_warning_ms: float = 5000
    projection_lag_critical_ms: float = 10000
    api_p95_warning_ms: float = 500
    api_p95_critical_ms: float = 1000
    outbox_pending_warning: float = 100
    outbox_pending_critical: float = 500
    dlq_growth_in_5m: float = 10
    dlq_critical: float = 50
    fabric_failure_ratio_warning: float = 0.05
    fabric_failure_ratio_critical: float = 0.20
    projector_failed_events_per_second: float = 0.1
    cpu_percent: float = 80
    memory_percent_of_limit: float = 85
    restarts_per_minute: float = 0.1


class AlertSelectors(BaseModel):
    """Label matchers (PromQL, without braces) that pick the backend's series out of everything scraped."""

    # Every backend series carries the namespace its target was discovered in (or was labelled with locally).
    backend_series: str = 'namespace=~"backend-.*"'
    # Scrape jobs of the backend (BackendServiceDown; process-level resource alerts locally).
    backend_jobs: str = 'job=~"gx-.*"'
    # cAdvisor/kube-state-metrics series of backend containers (Kubernetes resource alerts).
    backend_containers: str = 'namespace=~"backend-.*",container!="",container!="POD"'


class LocalResourceLimits(BaseModel):
    """Local processes have no container limits; these stand in for them in the resource alerts.

    CPU: 100 % is one core (``rate(process_cpu_seconds_total)``). Memory: the resident set is compared with
    this budget per backend process.
    """

    cpu_cores: float = 1.0
    memory_bytes: int = 512 * 1024 * 1024
    # A local process "restarts" when its process_start_time_seconds changes; counted over this window.
    restart_window_minutes: int = 15


class KubernetesScrapeSettings(BaseModel):
    """The backend scrape jobs on Kubernetes (SPEC §5)."""

    namespaces: list[str] = Field(default_factory=_backend_namespaces)
    submitter_service: str = "outbox-submitter-metrics"
    projector_service: str = "projector-metrics"
    api_pod_labels: dict[str, str] = Field(default_factory=lambda: {"tier": "backend", "component": "api"})
    submitter_metric_keep_regex: str = "outbox_.*|fabric_.*|circuit_breaker_.*|db_pool_.*|process_.*|python_.*"
    projector_metric_keep_regex: str = "projector_.*|db_pool_.*|process_.*|python_.*"
    monitoring_namespace: str = environment_profile(Environment.MAINNET).monitoring_namespace
    configmap_rules_name: str = "prometheus-alerts-backend"
    configmap_scrape_name: str = "prometheus-scrape-backend"
    configmap_dashboard_name: str = "grafana-dashboard-cqrs-backend"


class LocalTargets(BaseModel):
    """Where the local backend processes serve ``/metrics`` (static targets of the local profile)."""

    host: str = "127.0.0.1"
    namespace: str = environment_profile(Environment.LOCAL).backend_namespace
    # Where the backend listens by default; BackendSettings takes the same defaults from gxlib.config.
    api_metrics_port: int = DEFAULT_BACKEND_PORTS.api
    submitter_metrics_port: int = DEFAULT_BACKEND_PORTS.submitter_metrics
    projector_metrics_port: int = DEFAULT_BACKEND_PORTS.projector_metrics


class LocalStackSettings(BaseModel):
    """The local Prometheus/Alertmanager/webhook receiver started by ``gx monitoring up``."""

    host: str = "127.0.0.1"
    prometheus_port: int = 19090
    alertmanager_port: int = 19093
    webhook_port: int = 19094
    scrape_interval_s: int = 15
    evaluation_interval_s: int = 15
    prometheus_binary: str = "/usr/bin/prometheus"
    alertmanager_binary: str = "/usr/bin/prometheus-alertmanager"
    # Alertmanager notification timing (short: the local stack exists for drills).
    group_wait_s: int = 10
    group_interval_s: int = 30
    repeat_interval_h: int = 4


def _default_stack_state_dir() -> Path:
    return Path(platformdirs.user_state_dir(APP_NAME)) / "monitoring"


class MonitoringConfig(BaseModel):
    """Everything the rendered artifacts depend on; defaults are what is committed."""

    alert_group: str = "gx_backend_cqrs_alerts"
    thresholds: AlertThresholds = AlertThresholds()
    selectors: AlertSelectors = AlertSelectors()
    local_limits: LocalResourceLimits = LocalResourceLimits()
    kubernetes: KubernetesScrapeSettings = KubernetesScrapeSettings()
    local_targets: LocalTargets = LocalTargets()
    local_stack: LocalStackSettings = LocalStackSettings()
    # runbook_url of alert X is <runbook_base_url>/<X>.md (the written responses in docs/runbooks/alerts/).
    runbook_base_url: str = "https://gxlib.example/blob/main/docs/runbooks/alerts"
    dashboard_uid: str = "gx-cqrs-backend"
    dashboard_title: str = "CQRS Backend Monitoring"
    stack_state_dir: Path = Field(default_factory=_default_stack_state_dir)

    def runbook_url(self, alert_name: str) -> str:
        return f"{self.runbook_base_url.rstrip('/')}/{alert_name}.md"


class MonitoringSettings(MonitoringConfig, BaseSettings):
    """``MonitoringConfig`` read from the environment (``GX_MONITORING_LOCAL_STACK__PROMETHEUS_PORT=...``)."""

    model_config = SettingsConfigDict(env_prefix="GX_MONITORING_", env_nested_delimiter="__", extra="ignore")


def committed_devnet_settings() -> DevnetSettings:
    """The devnet's default settings, not read from the environment (for the committed local config)."""
    return DevnetSettings.model_construct()
