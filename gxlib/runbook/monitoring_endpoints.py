"""Where runbook 05 reaches Prometheus and Alertmanager, and how to speak HTTP to them.

On env=local: the local stack's URLs (or ``prometheus_url`` / ``alertmanager_url``), plain HTTP. On a Kubernetes
env, like runbook 01 (:mod:`gxlib.runbook.kubernetes_monitoring`): ``prometheus_url`` if given, else ``prometheus-0``
in the monitoring namespace through the API server's pod proxy; ``alertmanager_url`` if given, else the
``alertmanager`` Service through the API server's service proxy (a Deployment's pods have no fixed name) — both as
the kubeconfig's user (:mod:`gxlib.platform.pod_proxy`). With both URLs given no cluster is contacted.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from gxlib.config import environment_profile
from gxlib.monitoring.queries import PrometheusQueries
from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url, service_proxy_url
from gxlib.platform.settings import prometheus_pod
from gxlib.runbook.kubernetes_monitoring import connect, platform_settings
from gxlib.runbook.parameters import ValidateMonitoringParameters

READY_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class HttpEndpoint:
    """One monitoring service: its base URL, and the API server access it is proxied through (``None``: plain)."""

    name: str
    url: str
    access: ApiServerAccess | None = None
    proxied_as: str = ""  # e.g. "fabric/prometheus-0 through the API server's pod proxy"

    @property
    def description(self) -> str:
        if self.access is not None:
            return f"{self.name} in {self.proxied_as}"
        return f"{self.name} at {self.url}"

    def client(self, timeout_s: float = READY_TIMEOUT_S) -> httpx.Client:
        if self.access is not None:
            return self.access.httpx_client(timeout_s=timeout_s)
        return httpx.Client(timeout=timeout_s)

    def unready(self) -> str | None:
        """Why it does not answer ``GET /-/ready`` with 200 now (``None``: ready)."""
        try:
            with self.client() as client:
                response = client.get(f"{self.url}/-/ready")
        except httpx.HTTPError as exc:
            return f"{self.description} does not answer GET /-/ready: {exc.__class__.__name__}: {exc}"
        if response.status_code != 200:
            return (f"{self.description} is not ready: GET /-/ready answered HTTP {response.status_code}: "
                    f"{response.text.strip()[:300]}")
        return None

    def prometheus(self, *, namespace: str, alert_group: str) -> PrometheusQueries:
        """A query client for this endpoint (only meaningful for Prometheus)."""
        session = self.access.requests_session() if self.access is not None else None
        return PrometheusQueries(self.url, namespace=namespace, alert_group=alert_group, session=session)


@dataclass(frozen=True)
class MonitoringEndpoints:
    prometheus: HttpEndpoint
    alertmanager: HttpEndpoint


def local_endpoints(prometheus_url: str, alertmanager_url: str) -> MonitoringEndpoints:
    return MonitoringEndpoints(HttpEndpoint("Prometheus", prometheus_url.rstrip("/")),
                               HttpEndpoint("Alertmanager", alertmanager_url.rstrip("/")))


def kubernetes_endpoints(params: ValidateMonitoringParameters) -> MonitoringEndpoints | str:
    """Prometheus and Alertmanager of ``params.env``'s cluster, or why the cluster cannot be reached (asked only
    for what is not given by URL)."""
    if params.prometheus_url is not None and params.alertmanager_url is not None:
        return local_endpoints(params.prometheus_url, params.alertmanager_url)
    settings = platform_settings(params)
    found = connect(settings)
    if isinstance(found, str):
        return f"env={params.env.value}: {found} (or give prometheus_url and alertmanager_url)"
    api, _ = found
    try:
        access = ApiServerAccess.from_configuration(api.configuration)
    finally:
        api.close()
    namespace = environment_profile(params.env).monitoring_namespace
    pod = prometheus_pod(settings)
    prometheus = (HttpEndpoint("Prometheus", params.prometheus_url.rstrip("/")) if params.prometheus_url else
                  HttpEndpoint("Prometheus", pod_proxy_url(access.server, namespace, pod, settings.prometheus_port),
                               access, f"{namespace}/{pod} (through the API server's pod proxy)"))
    service = settings.alertmanager_service
    alertmanager = (HttpEndpoint("Alertmanager", params.alertmanager_url.rstrip("/")) if params.alertmanager_url else
                    HttpEndpoint("Alertmanager", service_proxy_url(access.server, namespace, service,
                                                                   settings.alertmanager_port),
                                 access, f"{namespace}/service {service} (through the API server's service proxy)"))
    return MonitoringEndpoints(prometheus, alertmanager)
