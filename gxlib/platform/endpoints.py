"""Where the runbooks reach Prometheus and Alertmanager of an environment.

On env=local: the local stack's URLs (or the given ``prometheus_url`` / ``alertmanager_url``), plain HTTP. On a
Kubernetes env: ``prometheus_url`` if given, else ``prometheus-0`` in the monitoring namespace through the API
server's pod proxy; ``alertmanager_url`` if given, else the ``alertmanager`` Service through the API server's service
proxy (a Deployment's pods have no fixed name) — both as the kubeconfig's user (:mod:`gxlib.platform.pod_proxy`).
With both URLs given no cluster is contacted.

    endpoints = kubernetes_endpoints(Environment.DEVNET, KubernetesPlatformSettings())
    with endpoints.prometheus.client(namespace="backend-devnet", alert_group="gx") as prometheus: ...
"""

from __future__ import annotations

from dataclasses import dataclass

from gxlib.config import Environment, environment_profile
from gxlib.errors import Unavailable
from gxlib.monitoring.alertmanager_client import AlertmanagerClient
from gxlib.monitoring.queries import PrometheusQueries
from gxlib.platform.cluster import connect_cluster
from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url, service_proxy_url
from gxlib.platform.settings import KubernetesPlatformSettings, prometheus_pod

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

    def prometheus(self, *, namespace: str, alert_group: str, timeout_s: float = 10.0) -> PrometheusQueries:
        """A Prometheus client of this endpoint (the caller closes it)."""
        session = self.access.requests_session() if self.access is not None else None
        return PrometheusQueries(self.url, namespace=namespace, alert_group=alert_group, timeout_s=timeout_s,
                                 session=session)

    def alertmanager(self) -> AlertmanagerClient:
        """An Alertmanager client of this endpoint (the caller closes it)."""
        session = self.access.requests_session() if self.access is not None else None
        return AlertmanagerClient(self.url, timeout_s=READY_TIMEOUT_S, session=session)


@dataclass(frozen=True)
class MonitoringEndpoints:
    prometheus: HttpEndpoint
    alertmanager: HttpEndpoint

    def prometheus_unready(self) -> str | None:
        """Why Prometheus does not answer ``GET /-/ready`` with 200 now (``None``: ready)."""
        with self.prometheus.prometheus(namespace=".*", alert_group="", timeout_s=READY_TIMEOUT_S) as client:
            reason = client.unready()
        return None if reason is None else f"{self.prometheus.description}: {reason}"

    def alertmanager_unready(self) -> str | None:
        with self.alertmanager.alertmanager() as client:
            reason = client.unready()
        return None if reason is None else f"{self.alertmanager.description}: {reason}"


def local_endpoints(prometheus_url: str, alertmanager_url: str) -> MonitoringEndpoints:
    return MonitoringEndpoints(HttpEndpoint("Prometheus", prometheus_url.rstrip("/")),
                               HttpEndpoint("Alertmanager", alertmanager_url.rstrip("/")))


def kubernetes_endpoints(env: Environment, settings: KubernetesPlatformSettings, *, prometheus_url: str | None = None,
                         alertmanager_url: str | None = None) -> MonitoringEndpoints:
    """Prometheus and Alertmanager of ``env``'s cluster (the cluster is asked only for what is not given by URL);
    Unavailable when the cluster cannot be reached."""
    if prometheus_url is not None and alertmanager_url is not None:
        return local_endpoints(prometheus_url, alertmanager_url)
    try:
        cluster = connect_cluster(settings)
    except Unavailable as exc:
        raise Unavailable(f"env={env.value}: {exc.reason} (or give prometheus_url and alertmanager_url)",
                          parameter=exc.parameter) from exc
    try:
        access = ApiServerAccess.from_configuration(cluster.api.configuration)
    finally:
        cluster.close()
    namespace = environment_profile(env).monitoring_namespace
    pod = prometheus_pod(settings)
    prometheus = (HttpEndpoint("Prometheus", prometheus_url.rstrip("/")) if prometheus_url else
                  HttpEndpoint("Prometheus", pod_proxy_url(access.server, namespace, pod, settings.prometheus_port),
                               access, f"{namespace}/{pod} (through the API server's pod proxy)"))
    service = settings.alertmanager_service
    alertmanager = (HttpEndpoint("Alertmanager", alertmanager_url.rstrip("/")) if alertmanager_url else
                    HttpEndpoint("Alertmanager", service_proxy_url(access.server, namespace, service,
                                                                   settings.alertmanager_port),
                                 access, f"{namespace}/service {service} (through the API server's service proxy)"))
    return MonitoringEndpoints(prometheus, alertmanager)
