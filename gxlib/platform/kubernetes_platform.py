"""The platform on Kubernetes (env=devnet/testnet/mainnet, SPEC §8.1): the monitoring ConfigMaps in namespace ``fabric``
and the Prometheus of ``prometheus-0``, through :class:`gxlib.platform.kubernetes.KubernetesCluster`.

What is deployed is what `gx monitoring render` writes to ``k8s/monitoring`` (the defaults, nothing read from the
environment, so a run deploys what is committed and reviewed): the ConfigMaps with the alert rules and with the
backend's scrape jobs, and the dashboard's ConfigMap that Grafana provisions from. One Prometheus scrapes every
environment, so these are the same for devnet, testnet and mainnet; ``env`` selects the backend namespace that is
verified (``backend-<env>``).

Prometheus is read through the API server's pod proxy with the kubeconfig's credentials
(:mod:`gxlib.platform.pod_proxy`), or at ``prometheus_url`` (an operator's `kubectl port-forward`). It is reloaded
by the platform (POST /-/reload through the proxy, or ``kill -HUP 1``) again and again until it reports the rendered
rules and scrape jobs: the kubelet brings a changed ConfigMap into the pod at its next sync of the pod (a minute or two
after the apply on a kubelet with Kubernetes' defaults, about 10 s on `gx k8s`'s own node), and a reload before that
reads the old files.

The ConfigMaps are applied even while Prometheus does not answer: they are the deployment, and a Prometheus that
starts — or stops crash-looping on a bad configuration — reads them. The reload and the verification then wait for
a Prometheus that answers.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from gxlib.config import Environment, environment_profile
from gxlib.errors import Unavailable
from gxlib.monitoring.alerts import DeploymentTarget, rule_groups_document
from gxlib.monitoring.artifacts import ALERT_RULES, DASHBOARD, SCRAPE_CONFIG, MonitoringArtifact
from gxlib.monitoring.queries import PrometheusError, PrometheusQueries
from gxlib.monitoring.render import K8S_ALERTS_FILE, K8S_DASHBOARD_FILE, K8S_SCRAPE_FILE, render_artifacts
from gxlib.monitoring.scrape import kubernetes_scrape_document
from gxlib.monitoring.settings import MonitoringConfig, committed_devnet_settings
from gxlib.platform.base import ReloadMethod
from gxlib.platform.cluster import CLUSTER_DOWN, ClusterConnection, connect_cluster
from gxlib.platform.errors import KubernetesApiError
from gxlib.platform.kubernetes import KubernetesCluster, monitoring_objects
from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url
from gxlib.platform.settings import KubernetesPlatformSettings, prometheus_pod
from gxlib.progress import Progress

# The Fabric job of the shared Prometheus (k8s/monitoring/stack/prometheus.yml; a test holds the two together).
KUBERNETES_FABRIC_JOBS: tuple[str, ...] = ("fabric-nodes",)
# Artifact name → the rendered file, in the order the runbook shows them.
_ARTIFACT_FILES: tuple[tuple[str, PurePosixPath], ...] = (
    (SCRAPE_CONFIG, K8S_SCRAPE_FILE), (ALERT_RULES, K8S_ALERTS_FILE), (DASHBOARD, K8S_DASHBOARD_FILE))


class KubernetesPlatform:
    """The monitoring of one Kubernetes environment, as the runbooks read, change and verify it.

        platform = KubernetesPlatform.connect(Environment.DEVNET, KubernetesPlatformSettings())
        platform.check_available(); print(platform.prometheus_unready())
    """

    # The ConfigMaps are the deployment: applied even when Prometheus does not answer (see the module docstring).
    deploys_without_prometheus = True

    def __init__(self, cluster_api: KubernetesCluster, cluster: ClusterConnection, access: ApiServerAccess, *,
                 prometheus_url: str | None = None, reload_method: ReloadMethod = ReloadMethod.HTTP,
                 reload_timeout_s: float = 180.0, reload_interval_s: float = 5.0) -> None:
        self.cluster_api = cluster_api
        self.cluster = cluster
        self.access = access
        self.env: Environment = cluster_api.profile.env
        self.namespace = cluster_api.profile.backend_namespace
        self.config = cluster_api.monitoring
        self.fabric_jobs = KUBERNETES_FABRIC_JOBS
        self.reload_method = reload_method
        self.reload_timeout_s = reload_timeout_s
        self.reload_interval_s = reload_interval_s
        self.pod = prometheus_pod(cluster_api.settings)
        self.monitoring_namespace = cluster_api.monitoring_namespace
        self.proxied = prometheus_url is None
        self.prometheus_url = (prometheus_url or pod_proxy_url(access.server, self.monitoring_namespace, self.pod,
                                                               cluster_api.settings.prometheus_port)).rstrip("/")
        self.description = f"Kubernetes API server {cluster}"
        self._rendered = [a for a in render_artifacts(self.config, committed_devnet_settings())
                          if a.path in (K8S_ALERTS_FILE, K8S_SCRAPE_FILE, K8S_DASHBOARD_FILE)]
        # monitoring_objects() gives the rules, the scrape jobs and the dashboard, in that order.
        objects = monitoring_objects(self.config, self._rendered)
        self._objects = {self._location(obj): obj for obj in objects}
        self._locations = dict(zip((K8S_ALERTS_FILE, K8S_SCRAPE_FILE, K8S_DASHBOARD_FILE), self._objects, strict=True))
        self._rendered_rules: list[dict[str, Any]] = rule_groups_document(
            self.config, DeploymentTarget.KUBERNETES)["groups"][0]["rules"]
        scrape_jobs = kubernetes_scrape_document(self.config)["scrape_configs"]
        self._rendered_jobs = [str(job["job_name"]) for job in scrape_jobs]

    @classmethod
    def connect(cls, env: Environment, settings: KubernetesPlatformSettings, *, prometheus_url: str | None = None,
                reload_method: ReloadMethod = ReloadMethod.HTTP, reload_timeout_s: float = 180.0,
                progress: Progress | None = None) -> KubernetesPlatform:
        """The platform of ``env``'s cluster; Unavailable when this machine cannot reach it."""
        try:
            cluster = connect_cluster(settings)
        except Unavailable as exc:
            raise Unavailable(f"env={env.value}: {exc.reason}", parameter=exc.parameter) from exc
        try:
            # The dynamic client reads the API server's discovery documents here: the first call that can fail.
            platform = KubernetesCluster(cluster.api, environment_profile(env), settings=settings,
                                         monitoring=MonitoringConfig(), progress=progress or Progress(quiet=True))
        except (ApiException, DynamicApiError) as exc:
            raise Unavailable(f"env={env.value}: the Kubernetes API server {cluster} refused the discovery request: "
                              f"HTTP {exc.status}: {exc.reason} — check the context's credentials",
                              parameter="kube_context") from exc
        except CLUSTER_DOWN as exc:
            raise Unavailable(f"env={env.value}: the Kubernetes API server {cluster} does not answer "
                              f"({exc.__class__.__name__}: {exc}) — check kube_context / kubeconfig and that the "
                              "cluster can be reached from here", parameter="kube_context") from exc
        return cls(platform, cluster, ApiServerAccess.from_configuration(cluster.api.configuration),
                   prometheus_url=prometheus_url, reload_method=reload_method, reload_timeout_s=reload_timeout_s)

    # --- where ------------------------------------------------------------------------------------------------
    @staticmethod
    def _location(obj: dict[str, Any]) -> str:
        meta = obj["metadata"]
        return f"ConfigMap {meta['namespace']}/{meta['name']}"

    @property
    def prometheus_description(self) -> str:
        if self.proxied:
            return f"Prometheus in {self.monitoring_namespace}/{self.pod} (through the API server's pod proxy)"
        return f"Prometheus at {self.prometheus_url} (prometheus_url)"

    @property
    def reload_action(self) -> str:
        how = (f"POST /-/reload to {self.monitoring_namespace}/{self.pod} through the API server's pod proxy"
               if self.reload_method is ReloadMethod.HTTP
               else f"`kill -HUP 1` in {self.monitoring_namespace}/{self.pod} (exec)")
        return f"{how}, repeated until Prometheus reports the rendered rules and scrape jobs"

    def check_available(self) -> None:
        """Unavailable when the ConfigMaps cannot be read or applied: the API server does not answer or refuses, or
        the monitoring namespace does not exist on this cluster."""
        namespace = self.monitoring_namespace
        try:
            found = self.cluster_api.get("v1", "Namespace", namespace)
        except KubernetesApiError as exc:
            raise Unavailable(f"the Kubernetes API server {self.cluster} refused to read namespace {namespace}: HTTP "
                              f"{exc.status}: {exc.reason} — check the context's credentials and your RBAC "
                              "permissions", parameter="kube_context") from exc
        except CLUSTER_DOWN as exc:
            raise Unavailable(f"the Kubernetes API server {self.cluster} does not answer ({exc.__class__.__name__}: "
                              f"{exc}) — check kube_context / kubeconfig and that the cluster can be reached from "
                              "here", parameter="kube_context") from exc
        if found is None:
            raise Unavailable(f"namespace {namespace} does not exist on {self.cluster}: the monitoring stack is not "
                              f"installed there — apply the environment's overlay (`gx k8s apply {self.env.value}`), "
                              "or choose the cluster that has it with kube_context", parameter="kube_context")

    def prometheus_unready(self) -> str | None:
        """Why Prometheus cannot be reloaded or asked now (its ``/-/ready`` through the proxy or prometheus_url)."""
        with self.prometheus() as prometheus:
            reason = prometheus.unready()
        return None if reason is None else f"{self.prometheus_description}: {reason}"

    def prometheus(self) -> PrometheusQueries:
        session = self.access.requests_session() if self.proxied else None
        return PrometheusQueries(self.prometheus_url, alert_group=self.config.alert_group,
                                 timeout_s=self.cluster_api.settings.request_timeout_s, session=session)

    # --- read and apply ---------------------------------------------------------------------------------------
    def artifacts(self) -> list[MonitoringArtifact]:
        deployed = self.cluster_api.deployed_artifacts(self._rendered)
        by_path = {artifact.path: artifact for artifact in self._rendered}
        return [MonitoringArtifact(name, self._locations[path], by_path[path].content, deployed[str(path)])
                for name, path in _ARTIFACT_FILES]

    def write(self, artifacts: list[MonitoringArtifact]) -> list[str]:
        """Server-side apply the ConfigMaps of ``artifacts`` (only those: each step applies its own)."""
        chosen = [self._objects[artifact.location] for artifact in artifacts]
        with self.cluster_api.progress.task(f"applying {', '.join(a.location for a in artifacts)}"):
            self.cluster_api.apply(chosen)
        return [artifact.location for artifact in artifacts]

    # --- reload -----------------------------------------------------------------------------------------------
    def loaded_state(self) -> tuple[bool, str]:
        """Whether Prometheus runs with the rendered rules and scrape jobs (its last reload succeeded), and what it
        reports."""
        with self.prometheus() as prometheus:
            loaded = prometheus.loaded_configuration()
        return loaded.state(self.config.alert_group, self._rendered_rules, self._rendered_jobs)

    def config_loaded(self) -> bool:
        try:
            return self.loaded_state()[0]
        except PrometheusError:
            return False

    def reload_prometheus(self) -> None:
        """Reload until Prometheus reports the rendered rules and jobs; PrometheusReloadError when a reload is
        refused (it names the pod, the namespace and the HTTP status), WaitTimeout when the kubelet never brought
        the ConfigMaps into the pod within the timeout."""
        def reloaded() -> tuple[bool, str]:
            self.cluster_api.reload_prometheus(self.reload_method)
            return self.loaded_state()

        self.cluster_api.progress.wait_until(
            f"{self.prometheus_description} to load the rendered rules and scrape jobs", reloaded,
            timeout_s=self.reload_timeout_s, interval_s=self.reload_interval_s)

