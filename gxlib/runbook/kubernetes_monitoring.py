"""Runbook 01 on Kubernetes (SPEC §8.1): the monitoring ConfigMaps in namespace ``fabric`` and the Prometheus of
``prometheus-0``, through :class:`gxlib.platform.kubernetes.KubernetesPlatform`.

What is deployed is what `gx monitoring render` writes to ``k8s/monitoring`` (the defaults, nothing read from the
environment, so a run deploys what is committed and reviewed): the ConfigMaps with the alert rules and with the
backend's scrape jobs, and the dashboard's ConfigMap that Grafana provisions from. One Prometheus scrapes every
environment, so these are the same for devnet, testnet and mainnet; ``env`` selects the backend namespace that is
verified (``backend-<env>``).

Prometheus is read through the API server's pod proxy with the kubeconfig's credentials
(:mod:`gxlib.platform.pod_proxy`), or at ``prometheus_url`` (an operator's `kubectl port-forward`). It is reloaded
by the platform (POST /-/reload through the proxy, or ``kill -HUP 1``) again and again until it reports the rendered
rules and scrape jobs: the kubelet brings a changed ConfigMap into the pod a minute or two after the apply, and a
reload before that reads the old files.

The ConfigMaps are applied even while Prometheus does not answer: they are the deployment, and a Prometheus that
starts — or stops crash-looping on a bad configuration — reads them. The reload and the verification then wait for
a Prometheus that answers.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

import httpx
import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic.exceptions import DynamicApiError

from gxlib.config import Environment, environment_profile
from gxlib.monitoring.alerts import DeploymentTarget, rule_groups_document
from gxlib.monitoring.queries import (
    PrometheusError,
    PrometheusQueries,
    PrometheusResponseError,
    PrometheusUnreachableError,
    parse_duration,
)
from gxlib.monitoring.render import K8S_ALERTS_FILE, K8S_DASHBOARD_FILE, K8S_SCRAPE_FILE, render_artifacts
from gxlib.monitoring.scrape import kubernetes_scrape_document
from gxlib.monitoring.settings import MonitoringConfig, committed_devnet_settings
from gxlib.platform.base import ReloadMethod
from gxlib.platform.errors import KubernetesApiError
from gxlib.platform.kubernetes import KubernetesPlatform, monitoring_objects
from gxlib.platform.pod_proxy import ApiServerAccess, pod_proxy_url
from gxlib.platform.settings import KubernetesPlatformSettings, prometheus_pod
from gxlib.progress import Progress
from gxlib.runbook.deploy_monitoring import ALERT_RULES, DASHBOARD, SCRAPE_CONFIG, MonitoringArtifact
from gxlib.runbook.parameters import DeployMonitoringParameters, ValidateMonitoringParameters

# The Fabric job of the shared Prometheus (k8s/monitoring/stack/prometheus.yml; a test holds the two together).
KUBERNETES_FABRIC_JOBS: tuple[str, ...] = ("fabric-nodes",)
IN_CLUSTER = "in-cluster service account"
# Artifact name → the rendered file, in the order the runbook shows them.
_ARTIFACT_FILES: tuple[tuple[str, PurePosixPath], ...] = (
    (SCRAPE_CONFIG, K8S_SCRAPE_FILE), (ALERT_RULES, K8S_ALERTS_FILE), (DASHBOARD, K8S_DASHBOARD_FILE))
_CLUSTER_DOWN = (urllib3.exceptions.HTTPError, OSError)


@dataclass(frozen=True)
class Cluster:
    """Which cluster a run acts on, as the operator chose it: what every message about it names."""

    server: str
    context: str
    kubeconfig: str

    def __str__(self) -> str:
        if self.context == IN_CLUSTER:
            return f"{self.server} ({IN_CLUSTER})"
        return f"{self.server} (context {self.context}, kubeconfig {self.kubeconfig})"


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


def platform_settings(params: DeployMonitoringParameters | ValidateMonitoringParameters) -> KubernetesPlatformSettings:
    """``GX_K8S_PLATFORM_*``, with the runbook's ``kubeconfig`` / ``kube_context`` taking precedence."""
    overrides: dict[str, Any] = {}
    if params.kubeconfig is not None:
        overrides["kubeconfig"] = params.kubeconfig
    if params.kube_context is not None:
        overrides["context"] = params.kube_context
    return KubernetesPlatformSettings(**overrides)


def connect(settings: KubernetesPlatformSettings) -> tuple[k8s_client.ApiClient, Cluster] | str:
    """An API client for the kubeconfig and context of ``settings`` (or the pod's service account), and which cluster
    that is; or why there is none — the kubeconfig's own complaint, which names the file or the context."""
    # What load_kube_config() would read by default, but looked up now (the environment may have changed since
    # the kubernetes package was imported).
    kubeconfig = str(settings.kubeconfig) if settings.kubeconfig else os.environ.get("KUBECONFIG", "~/.kube/config")
    configuration = k8s_client.Configuration()
    try:
        k8s_config.load_kube_config(config_file=kubeconfig, context=settings.context,
                                    client_configuration=configuration)
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
        context = settings.context or str(active["name"])
    except k8s_config.ConfigException as kubeconfig_error:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except k8s_config.ConfigException:
            return (f"no Kubernetes cluster to act on: the kubeconfig {kubeconfig} gives none ({kubeconfig_error}), "
                    "and this is not a pod with a service account — pass kubeconfig (and kube_context), or set "
                    "GX_K8S_PLATFORM_KUBECONFIG / $KUBECONFIG")
        context = IN_CLUSTER
    return k8s_client.ApiClient(configuration), Cluster(str(configuration.host), context, kubeconfig)


class KubernetesMonitoringDeployment:
    """The monitoring of one Kubernetes environment, as runbook 01 reads, changes and verifies it."""

    # The ConfigMaps are the deployment: applied even when Prometheus does not answer (see the module docstring).
    deploys_without_prometheus = True

    def __init__(self, platform: KubernetesPlatform, cluster: Cluster, access: ApiServerAccess, *,
                 prometheus_url: str | None = None, reload_method: ReloadMethod = ReloadMethod.HTTP,
                 reload_timeout_s: float = 180.0, reload_interval_s: float = 5.0) -> None:
        self.platform = platform
        self.cluster = cluster
        self.access = access
        self.env: Environment = platform.profile.env
        self.namespace = platform.profile.backend_namespace
        self.config = platform.monitoring
        self.fabric_jobs = KUBERNETES_FABRIC_JOBS
        self.reload_method = reload_method
        self.reload_timeout_s = reload_timeout_s
        self.reload_interval_s = reload_interval_s
        self.pod = prometheus_pod(platform.settings)
        self.monitoring_namespace = platform.monitoring_namespace
        self.proxied = prometheus_url is None
        self.prometheus_url = (prometheus_url or pod_proxy_url(access.server, self.monitoring_namespace, self.pod,
                                                               platform.settings.prometheus_port)).rstrip("/")
        self.platform_description = f"Kubernetes API server {cluster}"
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
    def from_parameters(cls, params: DeployMonitoringParameters, *,
                        progress: Progress | None = None) -> KubernetesMonitoringDeployment | str:
        """The deployment of ``params.env``, or why this machine cannot reach its cluster."""
        settings = platform_settings(params)
        found = connect(settings)
        if isinstance(found, str):
            return f"env={params.env.value}: {found}"
        api, cluster = found
        try:
            # The dynamic client reads the API server's discovery documents here: the first call that can fail.
            platform = KubernetesPlatform(api, environment_profile(params.env), settings=settings,
                                          monitoring=MonitoringConfig(), progress=progress or Progress(quiet=True))
        except (ApiException, DynamicApiError) as exc:
            return (f"env={params.env.value}: the Kubernetes API server {cluster} refused the discovery request: "
                    f"HTTP {exc.status}: {exc.reason} — check the context's credentials")
        except _CLUSTER_DOWN as exc:
            return (f"env={params.env.value}: the Kubernetes API server {cluster} does not answer "
                    f"({exc.__class__.__name__}: {exc}) — check kube_context / kubeconfig and that the cluster can be "
                    "reached from here")
        return cls(platform, cluster, ApiServerAccess.from_configuration(api.configuration),
                   prometheus_url=params.prometheus_url, reload_method=params.reload_method,
                   reload_timeout_s=params.rules_timeout_s)

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

    def unavailable(self) -> str | None:
        """Why the ConfigMaps cannot be read or applied: the API server does not answer or refuses, or the
        monitoring namespace does not exist on this cluster."""
        namespace = self.monitoring_namespace
        try:
            found = self.platform.get("v1", "Namespace", namespace)
        except KubernetesApiError as exc:
            return (f"the Kubernetes API server {self.cluster} refused to read namespace {namespace}: "
                    f"HTTP {exc.status}: {exc.reason} — check the context's credentials and your RBAC permissions")
        except _CLUSTER_DOWN as exc:
            return (f"the Kubernetes API server {self.cluster} does not answer ({exc.__class__.__name__}: {exc}) — "
                    "check kube_context / kubeconfig and that the cluster can be reached from here")
        if found is None:
            return (f"namespace {namespace} does not exist on {self.cluster}: the monitoring stack is not installed "
                    f"there — apply the environment's overlay (`gx k8s apply {self.env.value}`), or choose the "
                    "cluster that has it with kube_context")
        return None

    def prometheus_unready(self) -> str | None:
        """Why Prometheus cannot be reloaded or asked now (its ``/-/ready`` through the proxy or prometheus_url)."""
        url = f"{self.prometheus_url}/-/ready"
        try:
            with self._http() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            return f"{self.prometheus_description} does not answer GET {url}: {exc.__class__.__name__}: {exc}"
        if response.status_code != 200:
            return (f"{self.prometheus_description} is not ready: GET {url} answered HTTP {response.status_code}: "
                    f"{response.text.strip()[:300]}")
        return None

    def _http(self) -> httpx.Client:
        timeout = self.platform.settings.request_timeout_s
        return self.access.httpx_client(timeout_s=timeout) if self.proxied else httpx.Client(timeout=timeout)

    def prometheus(self) -> PrometheusQueries:
        session = self.access.requests_session() if self.proxied else None
        return PrometheusQueries(self.prometheus_url, alert_group=self.config.alert_group,
                                 timeout_s=self.platform.settings.request_timeout_s, session=session)

    # --- read and apply ---------------------------------------------------------------------------------------
    def artifacts(self) -> list[MonitoringArtifact]:
        deployed = self.platform.deployed_artifacts(self._rendered)
        by_path = {artifact.path: artifact for artifact in self._rendered}
        return [MonitoringArtifact(name, self._locations[path], by_path[path].content, deployed[str(path)])
                for name, path in _ARTIFACT_FILES]

    def write(self, artifacts: list[MonitoringArtifact]) -> list[str]:
        """Server-side apply the ConfigMaps of ``artifacts`` (only those: each step applies its own)."""
        chosen = [self._objects[artifact.location] for artifact in artifacts]
        with self.platform.progress.task(f"applying {', '.join(a.location for a in artifacts)}"):
            self.platform.apply(chosen)
        return [artifact.location for artifact in artifacts]

    # --- reload -----------------------------------------------------------------------------------------------
    def _api(self, path: str) -> Any:
        url = f"{self.prometheus_url}/api/v1/{path}"
        try:
            with self._http() as client:
                response = client.get(url)
        except httpx.HTTPError as exc:
            raise PrometheusUnreachableError(f"{self.prometheus_description} does not answer GET /api/v1/{path}: "
                                             f"{exc.__class__.__name__}: {exc}", url=self.prometheus_url) from exc
        if response.status_code != 200:
            raise PrometheusResponseError(f"{self.prometheus_description} answered GET /api/v1/{path} with HTTP "
                                          f"{response.status_code}: {response.text.strip()[:300]}",
                                          url=self.prometheus_url)
        try:
            return response.json()["data"]
        except (ValueError, KeyError) as exc:
            raise PrometheusResponseError(f"{self.prometheus_description} did not answer GET /api/v1/{path} as the "
                                          f"Prometheus HTTP API does: {exc}", url=self.prometheus_url) from exc

    def loaded_state(self) -> tuple[bool, str]:
        """Whether Prometheus runs with the rendered rules and scrape jobs (its last reload succeeded), and what it
        reports."""
        reload_ok = bool(self._api("status/runtimeinfo").get("reloadConfigSuccess"))
        group = self.config.alert_group
        loaded = [rule for g in self._api("rules").get("groups", []) if g.get("name") == group
                  for rule in g.get("rules", [])]
        differing = rules_differing(self._rendered_rules, loaded)
        pools = set(self._api("scrape_pools").get("scrapePools", []))
        missing_jobs = [job for job in self._rendered_jobs if job not in pools]
        state = (f"last reload {'successful' if reload_ok else 'FAILED'}; {len(loaded)} rules in {group}"
                 f"{', not as rendered: ' + ', '.join(differing) if differing else ''}"
                 f"{'; scrape jobs missing: ' + ', '.join(missing_jobs) if missing_jobs else ''}")
        return reload_ok and not differing and not missing_jobs, state

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
            self.platform.reload_prometheus(self.reload_method)
            return self.loaded_state()

        self.platform.progress.wait_until(
            f"{self.prometheus_description} to load the rendered rules and scrape jobs", reloaded,
            timeout_s=self.reload_timeout_s, interval_s=self.reload_interval_s)

