"""The platform on Kubernetes, through the API server with the ``kubernetes`` client.

Writes are server-side applies under one field manager (``gxlib``), so re-running a runbook is a no-op and an
object somebody else owns fields of is taken over explicitly (``force``). Prometheus is reloaded through the
API server's pod proxy (``POST /-/reload``) or by exec'ing ``kill -HUP 1`` in ``prometheus-0``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from typing import Any

import yaml
from kubernetes import client as k8s_client
from kubernetes.client.exceptions import ApiException
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.exceptions import DynamicApiError, NotFoundError
from kubernetes.stream import stream

from gxlib.config import EnvironmentProfile
from gxlib.monitoring.dashboard import DASHBOARD_FILE_NAME
from gxlib.monitoring.render import (
    GENERATED_HEADER,
    K8S_ALERTS_FILE,
    K8S_DASHBOARD_FILE,
    K8S_SCRAPE_FILE,
    Artifact,
    to_yaml,
)
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.platform.base import AppliedObject, ChaincodeRoll, PodState, ReloadMethod, RolloutState
from gxlib.platform.errors import (
    KubernetesApiError,
    PlatformError,
    PrometheusReloadError,
    RolloutFailedError,
    UnknownOrgError,
)
from gxlib.platform.settings import (
    CHAINCODE_ID_KEY,
    PACKAGE_ID_ANNOTATION,
    KubernetesPlatformSettings,
    chaincode_names,
    prometheus_pod,
)
from gxlib.progress import Progress

# Apply order: what others refer to first (namespaces, RBAC, configuration), workloads last.
_KIND_ORDER = ("Namespace", "CustomResourceDefinition", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role",
               "RoleBinding", "Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "StatefulSet", "Deployment",
               "DaemonSet", "PodDisruptionBudget")
# Where a dry run validates objects whose namespace does not exist yet (it always exists).
DRY_RUN_STAND_IN_NAMESPACE = "default"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
DASHBOARD_LABELS = {"grafana-dashboard": "1", "app.kubernetes.io/part-of": "gx-monitoring"}


def dashboard_config_map(config: MonitoringConfig, dashboard_json: str) -> dict[str, Any]:
    """The ConfigMap Grafana provisions the dashboard from (the same object k8s/monitoring generates)."""
    k8s = config.kubernetes
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": k8s.configmap_dashboard_name, "namespace": k8s.monitoring_namespace,
                         "labels": dict(DASHBOARD_LABELS)},
            "data": {DASHBOARD_FILE_NAME: dashboard_json}}


def monitoring_objects(config: MonitoringConfig, artifacts: Iterable[Artifact]) -> list[dict[str, Any]]:
    """The Kubernetes objects of the rendered artifacts: the two ConfigMaps as rendered, the dashboard wrapped."""
    by_path = {artifact.path: artifact for artifact in artifacts}
    missing = [str(p) for p in (K8S_ALERTS_FILE, K8S_SCRAPE_FILE, K8S_DASHBOARD_FILE) if p not in by_path]
    if missing:
        raise PlatformError(f"the rendered artifacts lack {', '.join(missing)}",
                            hint="render them with `gx monitoring render` first")
    return [yaml.safe_load(by_path[K8S_ALERTS_FILE].content), yaml.safe_load(by_path[K8S_SCRAPE_FILE].content),
            dashboard_config_map(config, by_path[K8S_DASHBOARD_FILE].content)]


def _kind_rank(obj: dict[str, Any]) -> int:
    kind = obj.get("kind", "")
    return _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)


def _error_reason(exc: ApiException | DynamicApiError) -> str:
    body = getattr(exc, "body", None)
    try:
        return str(json.loads(body)["message"]) if body else str(exc.reason)
    except (ValueError, KeyError, TypeError):
        return str(getattr(exc, "reason", exc))


class KubernetesCluster:
    """The runbooks' operations against one environment's cluster objects."""

    def __init__(self, api: k8s_client.ApiClient, profile: EnvironmentProfile, *,
                 settings: KubernetesPlatformSettings | None = None, monitoring: MonitoringConfig | None = None,
                 progress: Progress | None = None) -> None:
        self.api = api
        self.profile = profile
        self.settings = settings or KubernetesPlatformSettings()
        self.monitoring = monitoring or MonitoringConfig()
        self.progress = progress or Progress(quiet=True)
        self.dynamic = DynamicClient(api)
        self.core = k8s_client.CoreV1Api(api)

    @property
    def monitoring_namespace(self) -> str:
        return self.monitoring.kubernetes.monitoring_namespace

    # --- generic apply / read ---------------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> Any:
        return self.dynamic.resources.get(api_version=api_version, kind=kind)

    def get(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """The object as a dict, or None when it does not exist."""
        try:
            return dict(self._resource(api_version, kind).get(name=name, namespace=namespace).to_dict())
        except NotFoundError:
            return None
        except DynamicApiError as exc:
            raise KubernetesApiError("reading", kind, name, namespace, exc.status, _error_reason(exc)) from exc

    def apply(self, objects: Iterable[dict[str, Any]], *, dry_run: bool = False) -> list[AppliedObject]:
        """Server-side apply ``objects`` (namespaces and RBAC first); ``dry_run`` asks the server to validate only."""
        applied: list[AppliedObject] = []
        missing_namespaces: set[str] = set()
        if dry_run:
            missing_namespaces = {o["metadata"]["name"] for o in objects if o["kind"] == "Namespace"
                                  and self.get("v1", "Namespace", o["metadata"]["name"]) is None}
        for obj in sorted(objects, key=_kind_rank):
            meta = obj.get("metadata", {})
            kind, name, namespace = obj["kind"], meta["name"], meta.get("namespace")
            resource = self._resource(obj["apiVersion"], kind)
            stand_in = DRY_RUN_STAND_IN_NAMESPACE if namespace in missing_namespaces else None
            if stand_in:
                obj = {**obj, "metadata": {**meta, "namespace": stand_in}}
            target_namespace = stand_in or namespace
            before = self.get(obj["apiVersion"], kind, name, target_namespace)
            try:
                after = resource.server_side_apply(
                    body=obj, name=name, namespace=target_namespace if resource.namespaced else None,
                    field_manager=self.settings.field_manager, force_conflicts=True,
                    dry_run="All" if dry_run else None)
            except DynamicApiError as exc:
                raise KubernetesApiError("applying" if not dry_run else "dry-run applying", kind, name, namespace,
                                         exc.status, _error_reason(exc)) from exc
            changed = before is None or _spec_changed(before["metadata"], after.metadata)
            applied.append(AppliedObject(kind=kind, name=name, namespace=namespace, changed=changed, dry_run=dry_run,
                                         validated_in_namespace=stand_in))
        return applied

    # --- monitoring (runbook 01) ------------------------------------------------------------------------------
    def monitoring_diff(self, artifacts: list[Artifact]) -> list[str]:
        """Names of the monitoring ConfigMaps whose deployed data differs from the rendered one (or is missing)."""
        differing: list[str] = []
        for obj in monitoring_objects(self.monitoring, artifacts):
            meta = obj["metadata"]
            deployed = self.get("v1", "ConfigMap", meta["name"], meta["namespace"])
            if deployed is None or (deployed.get("data") or {}) != obj["data"]:
                differing.append(meta["name"])
        return differing

    def deployed_artifacts(self, artifacts: list[Artifact]) -> dict[str, str | None]:
        """Each monitoring artifact's path → its deployed content in the rendered file's form (None: not deployed),
        so ``render.unified_diff(deployed, artifact.content, path)`` shows what an apply would change."""
        by_path = {artifact.path: artifact for artifact in artifacts}
        deployed: dict[str, str | None] = {}
        for path, obj in zip((K8S_ALERTS_FILE, K8S_SCRAPE_FILE, K8S_DASHBOARD_FILE),
                             monitoring_objects(self.monitoring, artifacts), strict=True):
            meta = obj["metadata"]
            current = self.get("v1", "ConfigMap", meta["name"], meta["namespace"])
            if current is None:
                deployed[str(path)] = None
            elif path == K8S_DASHBOARD_FILE:
                deployed[str(path)] = (current.get("data") or {}).get(DASHBOARD_FILE_NAME, "")
            else:
                document = yaml.safe_load(by_path[path].content)
                document["data"] = current.get("data") or {}
                deployed[str(path)] = GENERATED_HEADER + to_yaml(document)
        return deployed

    def apply_monitoring(self, artifacts: list[Artifact], *, dry_run: bool = False) -> list[AppliedObject]:
        """Apply the rules and scrape ConfigMaps and the dashboard ConfigMap in the monitoring namespace."""
        with self.progress.task(f"applying the monitoring ConfigMaps in namespace {self.monitoring_namespace}"):
            return self.apply(monitoring_objects(self.monitoring, artifacts), dry_run=dry_run)

    def load_dashboard(self, dashboard_json: str) -> AppliedObject:
        """Apply only the dashboard ConfigMap (Grafana's file provisioner picks it up)."""
        return self.apply([dashboard_config_map(self.monitoring, dashboard_json)])[0]

    def reload_prometheus(self, method: ReloadMethod = ReloadMethod.HTTP) -> None:
        pod, namespace = prometheus_pod(self.settings), self.monitoring_namespace
        with self.progress.task(f"reloading Prometheus in {namespace}/{pod} ({method.value})"):
            if method is ReloadMethod.HTTP:
                self._reload_by_proxy(pod, namespace)
            else:
                self._reload_by_signal(pod, namespace)

    def _reload_by_proxy(self, pod: str, namespace: str) -> None:
        try:
            self.core.connect_post_namespaced_pod_proxy_with_path(
                name=f"{pod}:{self.settings.prometheus_port}", namespace=namespace, path="-/reload",
                _request_timeout=self.settings.request_timeout_s)
        except ApiException as exc:
            raise PrometheusReloadError(pod, namespace, "POST /-/reload through the API server's pod proxy",
                                        f"HTTP {exc.status}: {_error_reason(exc)}") from exc

    def _reload_by_signal(self, pod: str, namespace: str) -> None:
        try:
            output = stream(self.core.connect_get_namespaced_pod_exec, pod, namespace,
                            container=self.settings.prometheus_container, command=["kill", "-HUP", "1"],
                            stderr=True, stdin=False, stdout=True, tty=False,
                            _request_timeout=self.settings.request_timeout_s)
        except ApiException as exc:
            raise PrometheusReloadError(pod, namespace, "exec `kill -HUP 1`",
                                        f"HTTP {exc.status}: {_error_reason(exc)}") from exc
        if output and output.strip():
            raise PrometheusReloadError(pod, namespace, "exec `kill -HUP 1`", output.strip())

    # --- chaincode (runbook 02) -------------------------------------------------------------------------------
    def chaincode_package_ids(self) -> dict[str, str | None]:
        """org → the CHAINCODE_ID its server is configured with (None when its ConfigMap is missing)."""
        ids: dict[str, str | None] = {}
        for org in self.settings.orgs:
            names = chaincode_names(self.profile, org)
            config_map = self.get("v1", "ConfigMap", names.config_map, names.namespace)
            ids[org] = (config_map or {}).get("data", {}).get(CHAINCODE_ID_KEY) if config_map else None
        return ids

    def chaincode_images(self) -> dict[str, str | None]:
        """org → the image its chaincode Deployment's container names (None: no Deployment or no such container)."""
        images: dict[str, str | None] = {}
        for org in self.settings.orgs:
            names = chaincode_names(self.profile, org)
            deployment = self.get("apps/v1", "Deployment", names.deployment, names.namespace) or {}
            containers = (((deployment.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers")
            images[org] = next((c.get("image") for c in containers or []
                                if c.get("name") == self.settings.chaincode_container), None)
        return images

    def roll_chaincode(self, package_ids: dict[str, str], *, image: str | None = None,
                       timeout_s: float = 300.0) -> list[ChaincodeRoll]:
        """Set each org's CHAINCODE_ID and stamp it on the pod template — and, with ``image``, set the chaincode
        container's image — then wait for every rollout and for the pods of the old template to go."""
        unknown = sorted(set(package_ids) - set(self.settings.orgs))
        if unknown:
            raise UnknownOrgError(f"no chaincode server for org(s) {', '.join(unknown)} in {self.profile.env.value}; "
                                  f"known: {', '.join(self.settings.orgs)}")
        previous = self.chaincode_package_ids()
        container = self.settings.chaincode_container
        images = self.chaincode_images() if image is not None else {}
        for org, package_id in package_ids.items():
            names = chaincode_names(self.profile, org)
            if self.get("apps/v1", "Deployment", names.deployment, names.namespace) is None:
                raise PlatformError(f"deployment {names.namespace}/{names.deployment} does not exist",
                                    hint=f"apply the {self.profile.env.value} overlay (k8s/overlays) first")
            if image is not None and images.get(org) is None:
                raise PlatformError(f"deployment {names.namespace}/{names.deployment} has no container {container}",
                                    hint="set GX_K8S_PLATFORM_CHAINCODE_CONTAINER to the chaincode container's name")
            # Merge patches, not applies: an apply of only these fields would drop the rest of what this field
            # manager applied from the overlay (labels, the container spec).
            self._merge_patch("v1", "ConfigMap", names.config_map, names.namespace,
                              {"data": {CHAINCODE_ID_KEY: package_id}})
            # A changed pod template is what starts a rollout; the ConfigMap alone would reach new pods only.
            template: dict[str, Any] = {"metadata": {"annotations": {PACKAGE_ID_ANNOTATION: package_id}}}
            if image is not None:
                # Strategic merge: the container list is merged by name (a JSON merge patch would replace it).
                template["spec"] = {"containers": [{"name": container, "image": image}]}
            self._patch("apps/v1", "Deployment", names.deployment, names.namespace, {"spec": {"template": template}},
                        STRATEGIC_MERGE_PATCH)
        rolls: list[ChaincodeRoll] = []
        for org, package_id in package_ids.items():
            names = chaincode_names(self.profile, org)
            state = self.wait_for_rollout(names.deployment, names.namespace, timeout_s=timeout_s)
            self._wait_old_chaincode_pods_gone(org, package_id, image, timeout_s=timeout_s)
            rolls.append(ChaincodeRoll(org=org, deployment=names.deployment, namespace=names.namespace,
                                       package_id=package_id, previous_package_id=previous.get(org), rollout=state,
                                       image=image))
        return rolls

    def _wait_old_chaincode_pods_gone(self, org: str, package_id: str, image: str | None = None, *,
                                      timeout_s: float) -> None:
        """Wait until every chaincode pod of the org was started with ``package_id`` (and ``image``, when given).
        A rollout is complete while the old pods still terminate; until they are gone, a peer's new connection to
        the Service may still reach one (the node's proxy rules lag behind the endpoints), which registers with the
        old package ID and keeps the peer waiting for the new one until its chaincode start-up timeout."""
        names = chaincode_names(self.profile, org)
        container = self.settings.chaincode_container
        deadline = time.monotonic() + timeout_s
        with self.progress.task(f"waiting for the old pods of deployment {names.namespace}/{names.deployment} to go"):
            while True:
                old = sorted(p.name for p in self.chaincode_pods(org)
                             if p.annotations.get(PACKAGE_ID_ANNOTATION) != package_id
                             or (image is not None and p.images.get(container) != image))
                if not old:
                    return
                if time.monotonic() >= deadline:
                    raise RolloutFailedError(names.namespace, names.deployment,
                                             f"timed out after {timeout_s:.0f}s; pods of another package ID or "
                                             f"image remain: {', '.join(old)}")
                time.sleep(self.settings.poll_interval_s)

    def _merge_patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict[str, Any]) -> None:
        self._patch(api_version, kind, name, namespace, patch, MERGE_PATCH)

    def _patch(self, api_version: str, kind: str, name: str, namespace: str, patch: dict[str, Any],
               content_type: str) -> None:
        try:
            self._resource(api_version, kind).patch(name=name, namespace=namespace, body=patch,
                                                    content_type=content_type,
                                                    field_manager=self.settings.field_manager)
        except DynamicApiError as exc:
            raise KubernetesApiError("patching", kind, name, namespace, exc.status, _error_reason(exc)) from exc

    # --- state ------------------------------------------------------------------------------------------------
    def rollout_state(self, name: str, namespace: str) -> RolloutState:
        deployment = self.get("apps/v1", "Deployment", name, namespace)
        if deployment is None:
            raise PlatformError(f"deployment {namespace}/{name} does not exist")
        spec, status = deployment.get("spec", {}), deployment.get("status", {}) or {}
        generation = int(deployment["metadata"].get("generation", 0))
        observed = int(status.get("observedGeneration", 0))
        replicas = int(spec.get("replicas", 1))
        updated = int(status.get("updatedReplicas", 0))
        available = int(status.get("availableReplicas", 0))
        total = int(status.get("replicas", 0))
        failed = next((c.get("message") or c.get("reason") for c in status.get("conditions", []) or []
                       if c.get("type") == "Progressing" and c.get("reason") == "ProgressDeadlineExceeded"), None)
        complete = observed >= generation and updated == replicas and total == updated and available == updated
        return RolloutState(namespace=namespace, name=name, generation=generation, observed_generation=observed,
                            replicas=replicas, updated_replicas=updated, ready_replicas=int(status.get(
                                "readyReplicas", 0)), available_replicas=available, total_replicas=total,
                            complete=complete, failed_reason=failed)

    def wait_for_rollout(self, name: str, namespace: str, *, timeout_s: float = 300.0) -> RolloutState:
        """Poll until the Deployment's rollout is complete; RolloutFailedError on a deadline (its own or ours)."""
        deadline = time.monotonic() + timeout_s
        with self.progress.task(f"waiting for the rollout of deployment {namespace}/{name}"):
            while True:
                state = self.rollout_state(name, namespace)
                if state.complete:
                    return state
                if state.failed_reason:
                    raise RolloutFailedError(namespace, name, state.failed_reason)
                if time.monotonic() >= deadline:
                    raise RolloutFailedError(namespace, name, f"timed out after {timeout_s:.0f}s; {state.describe()}")
                time.sleep(self.settings.poll_interval_s)

    def pods(self, namespace: str, label_selector: str | None = None) -> list[PodState]:
        try:
            items = self._resource("v1", "Pod").get(namespace=namespace, label_selector=label_selector).to_dict()
        except DynamicApiError as exc:
            raise KubernetesApiError("listing", "Pod", label_selector or "*", namespace, exc.status,
                                     _error_reason(exc)) from exc
        states: list[PodState] = []
        for pod in items.get("items", []):
            meta, status = pod["metadata"], pod.get("status", {}) or {}
            containers = status.get("containerStatuses", []) or []
            ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", [])
                        or [])
            states.append(PodState(namespace=namespace, name=meta["name"], phase=status.get("phase", "Unknown"),
                                   ready=ready, restarts=sum(int(c.get("restartCount", 0)) for c in containers),
                                   node=pod.get("spec", {}).get("nodeName"), labels=meta.get("labels") or {},
                                   annotations=meta.get("annotations") or {},
                                   images={c["name"]: c.get("image", "")
                                           for c in (pod.get("spec") or {}).get("containers") or []}))
        return states

    def chaincode_pods(self, org: str) -> list[PodState]:
        names = chaincode_names(self.profile, org)
        return self.pods(names.namespace, f"gx.io/org={org},gx.io/env={self.profile.env.value}")


def _spec_changed(before: dict[str, Any], after: Any) -> bool:
    """Whether an apply changed the object. Objects with a ``generation`` (Deployments, StatefulSets, …) compare
    it: their controllers keep writing status, which moves ``resourceVersion`` without any change of ours.
    Others compare ``resourceVersion``. Labels and annotations changes count too."""
    if before.get("generation") is not None and getattr(after, "generation", None) is not None:
        return (before["generation"] != after.generation
                or (before.get("labels") or {}) != dict(getattr(after, "labels", None) or {})
                or _own_annotations(before.get("annotations")) != _own_annotations(getattr(after, "annotations", None)))
    return bool(before.get("resourceVersion") != after.resourceVersion)


def _own_annotations(annotations: Any) -> dict[str, str]:
    # Controllers add their own bookkeeping annotations (deployment.kubernetes.io/revision, …).
    return {k: v for k, v in dict(annotations or {}).items() if "kubernetes.io/" not in k}
