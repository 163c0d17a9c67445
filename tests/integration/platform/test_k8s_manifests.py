"""The kustomize overlays: they build, every object passes strict schema validation for the Kubernetes release the
tests run, and the three backend scrape jobs select exactly the objects the manifests label for them."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from gxlib.backend.settings import BackendSettings
from gxlib.cli import cli
from gxlib.config import Environment, environment_profile
from gxlib.k8sbuild.binaries import kubernetes_version
from gxlib.monitoring.dashboard import DASHBOARD_FILE_NAME
from gxlib.monitoring.render import K8S_DASHBOARD_FILE, RULES_KEY, SCRAPE_KEY, committed_artifacts
from gxlib.monitoring.scrape import BACKEND_SERVICES_JOB, PROJECTOR_JOB, SUBMITTER_JOB
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.platform.kubernetes import dashboard_config_map, monitoring_objects
from gxlib.platform.settings import CHAINCODE_ID_KEY, KubernetesPlatformSettings, chaincode_names
from tests.integration.platform.conftest import K8S_DIR, KUBERNETES_ENVS, REPO_ROOT, find

Objects = list[dict[str, Any]]
SCHEMA_VERSION = ".".join(kubernetes_version().lstrip("v").split(".")[:2]) + ".0"


# --- a small model of Prometheus' Kubernetes discovery + relabelling (keep and replace only) -----------------
def _sanitize(name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _relabel(labels: dict[str, str], rules: list[dict[str, Any]]) -> dict[str, str] | None:
    """Apply ``rules`` as Prometheus does; None when a keep rule drops the target."""
    labels = dict(labels)
    for rule in rules:
        value = rule.get("separator", ";").join(labels.get(s, "") for s in rule.get("source_labels", []))
        match = re.fullmatch(rule.get("regex", "(.*)"), value)
        action = rule.get("action", "replace")
        if action == "keep":
            if not match:
                return None
        elif action == "replace":
            if match:
                labels[rule["target_label"]] = match.expand(re.sub(r"\$(\d+)", r"\\\1", rule.get("replacement", "$1")))
        else:
            raise AssertionError(f"the model does not know relabel action {action!r}")
    return labels


def _service_targets(objects: Objects, namespace: str) -> list[dict[str, str]]:
    targets = []
    for svc in objects:
        if svc["kind"] != "Service" or svc["metadata"].get("namespace") != namespace:
            continue
        for port in svc["spec"]["ports"]:
            name = svc["metadata"]["name"]
            labels = {"__meta_kubernetes_namespace": namespace, "__meta_kubernetes_service_name": name,
                      "__address__": f"{name}.{namespace}.svc:{port['port']}"}
            labels |= {f"__meta_kubernetes_service_label_{_sanitize(k)}": v
                       for k, v in svc["metadata"].get("labels", {}).items()}
            targets.append(labels)
    return targets


def _pod_targets(objects: Objects, namespace: str) -> list[dict[str, str]]:
    """One target per declared container port of every Deployment's pod template (role: pod)."""
    targets = []
    for deployment in _kind(objects, "Deployment", namespace):
        template = deployment["spec"]["template"]
        for container in template["spec"]["containers"]:
            for port in container.get("ports", []):
                name = deployment["metadata"]["name"]
                labels = {"__meta_kubernetes_namespace": namespace, "__address__": f"10.0.0.1:{port['containerPort']}",
                          "__meta_kubernetes_pod_name": f"{name}-0", "__deployment": name}
                labels |= {f"__meta_kubernetes_pod_label_{_sanitize(k)}": v
                           for k, v in template["metadata"].get("labels", {}).items()}
                labels |= {f"__meta_kubernetes_pod_annotation_{_sanitize(k)}": v
                           for k, v in template["metadata"].get("annotations", {}).items()}
                targets.append(labels)
    return targets


def _kind(objects: Objects, kind: str, namespace: str | None = None) -> Objects:
    return [o for o in objects
            if o["kind"] == kind and (namespace is None or o["metadata"].get("namespace") == namespace)]


def _scrape_jobs() -> dict[str, dict[str, Any]]:
    config_map = yaml.safe_load((REPO_ROOT / "k8s/monitoring/prometheus/scrape-backend.yaml").read_text())
    return {job["job_name"]: job for job in yaml.safe_load(config_map["data"][SCRAPE_KEY])["scrape_configs"]}


def _kept(job: dict[str, Any], targets: list[dict[str, str]]) -> list[dict[str, str]]:
    namespaces = job["kubernetes_sd_configs"][0]["namespaces"]["names"]
    return [kept for t in targets if t["__meta_kubernetes_namespace"] in namespaces
            and (kept := _relabel(t, job["relabel_configs"])) is not None]


def _settings_port(objects: Objects, namespace: str, key: str) -> int:
    return int(find(objects, "ConfigMap", "backend-settings", namespace)["data"][key])


def _container_port(deployment: dict[str, Any], port_ref: int | str) -> int:
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        for port in container.get("ports", []):
            if port_ref in (port.get("name"), port["containerPort"]):
                return int(port["containerPort"])
    raise AssertionError(f"no container port {port_ref!r} in deployment {deployment['metadata']['name']}")


def _selected_deployment(objects: Objects, service: dict[str, Any]) -> dict[str, Any]:
    namespace, selector = service["metadata"]["namespace"], service["spec"]["selector"]
    matches = [d for d in _kind(objects, "Deployment", namespace)
               if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()]
    assert len(matches) == 1, f"service {service['metadata']['name']} selects {len(matches)} deployments"
    return matches[0]


# --- the tests ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_every_object_of_the_overlay_passes_strict_validation(overlays: dict[Environment, Objects],
                                                              env: Environment) -> None:
    objects = overlays[env]
    assert len(objects) > 20
    failures = []
    for obj in objects:
        try:
            kubernetes_validate.validate(obj, SCHEMA_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            failures.append(f"{obj['kind']}/{obj['metadata']['name']}: {exc.message}")
    assert failures == []


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_service_jobs_keep_exactly_the_metrics_services_of_the_backend(overlays: dict[Environment, Objects],
                                                                       env: Environment) -> None:
    objects, namespace = overlays[env], environment_profile(env).backend_namespace
    jobs = _scrape_jobs()
    targets = _service_targets(objects, namespace)
    for job_name, service_name, port_key in (
        (SUBMITTER_JOB, "outbox-submitter-metrics", "GX_BACKEND_SUBMITTER_METRICS_PORT"),
        (PROJECTOR_JOB, "projector-metrics", "GX_BACKEND_PROJECTOR_METRICS_PORT"),
    ):
        kept = _kept(jobs[job_name], targets)
        assert [t["kubernetes_service"] for t in kept] == [service_name], job_name
        assert kept[0]["namespace"] == namespace
        service = find(objects, "Service", service_name, namespace)
        deployment = _selected_deployment(objects, service)
        (port,) = service["spec"]["ports"]
        assert _container_port(deployment, port["targetPort"]) == _settings_port(objects, namespace, port_key)


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_pod_job_keeps_only_api_pods_and_scrapes_their_metrics_port(overlays: dict[Environment, Objects],
                                                                    env: Environment) -> None:
    objects, namespace = overlays[env], environment_profile(env).backend_namespace
    kept = _kept(_scrape_jobs()[BACKEND_SERVICES_JOB], _pod_targets(objects, namespace))
    assert {t["__deployment"] for t in kept} == {"api"}
    api = find(objects, "Deployment", "api", namespace)
    api_port = _settings_port(objects, namespace, "GX_BACKEND_API_PORT")
    assert _container_port(api, "http") == api_port
    for target in kept:
        assert target["__address__"] == f"10.0.0.1:{api_port}"
        assert target["__metrics_path__"] == "/metrics"
        assert target["namespace"] == namespace
    labels = api["spec"]["template"]["metadata"]["labels"]
    assert MonitoringConfig().kubernetes.api_pod_labels.items() <= labels.items()


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_backend_settings_name_ports_the_backend_knows(overlays: dict[Environment, Objects], env: Environment) -> None:
    data = find(overlays[env], "ConfigMap", "backend-settings", environment_profile(env).backend_namespace)["data"]
    settings = BackendSettings.model_validate({k.removeprefix("GX_BACKEND_").lower(): v for k, v in data.items()})
    assert (settings.submitter_metrics_port, settings.projector_metrics_port) == (9101, 9102)
    serve = cli.get_command(click.Context(cli), "serve")
    assert isinstance(serve, click.Group)
    for deployment in _kind(overlays[env], "Deployment", environment_profile(env).backend_namespace):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"][0] == "serve" and container["args"][1] in serve.commands


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_backend_workloads_have_probes_limits_and_disruption_budgets(overlays: dict[Environment, Objects],
                                                                     env: Environment) -> None:
    objects, namespace = overlays[env], environment_profile(env).backend_namespace
    deployments = _kind(objects, "Deployment", namespace)
    assert {d["metadata"]["name"] for d in deployments} == {"api", "outbox-submitter", "projector"}
    budgets = _kind(objects, "PodDisruptionBudget", namespace)
    for deployment in deployments:
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["readinessProbe"] and container["livenessProbe"]
        assert {"cpu", "memory"} <= container["resources"]["limits"].keys()
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert any(b["spec"]["selector"]["matchLabels"].items() <= labels.items() for b in budgets), \
            deployment["metadata"]["name"]
        assert container["image"].startswith("registry.gx.local/gx-backend:")


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_monitoring_configmaps_are_the_rendered_files(overlays: dict[Environment, Objects], env: Environment) -> None:
    objects = overlays[env]
    config = MonitoringConfig()
    for wanted in monitoring_objects(config, committed_artifacts()):
        deployed = find(objects, "ConfigMap", wanted["metadata"]["name"], config.kubernetes.monitoring_namespace)
        assert deployed["data"] == wanted["data"]
        assert wanted["metadata"]["labels"].items() <= deployed["metadata"]["labels"].items()
    dashboard = (REPO_ROOT / K8S_DASHBOARD_FILE).read_text()
    generated = find(objects, "ConfigMap", config.kubernetes.configmap_dashboard_name)
    assert generated == dashboard_config_map(config, dashboard) | {"metadata": generated["metadata"]}
    assert json.loads(generated["data"][DASHBOARD_FILE_NAME])["uid"] == config.dashboard_uid


def test_prometheus_mounts_the_rendered_rules_and_scrape_jobs_where_its_config_looks(
        overlays: dict[Environment, Objects]) -> None:
    objects = overlays[Environment.DEVNET]
    k8s = MonitoringConfig().kubernetes
    statefulset = find(objects, "StatefulSet", "prometheus", k8s.monitoring_namespace)
    pod = statefulset["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == "prometheus"
    (container,) = pod["containers"]
    assert "--web.enable-lifecycle" in container["args"]
    volumes = {v["name"]: v.get("configMap", {}).get("name") for v in pod["volumes"]}
    mounts = {volumes[m["name"]]: m for m in container["volumeMounts"] if volumes.get(m["name"])}
    config_map = next(name for name in mounts if name.startswith("prometheus-config"))
    prometheus_yml = yaml.safe_load(find(objects, "ConfigMap", config_map)["data"]["prometheus.yml"])
    for rendered, key, setting in ((k8s.configmap_rules_name, RULES_KEY, "rule_files"),
                                   (k8s.configmap_scrape_name, SCRAPE_KEY, "scrape_config_files")):
        mount = mounts[rendered]
        assert "subPath" not in mount  # a subPath mount never sees an updated ConfigMap
        path = f"{mount['mountPath']}/{key}"
        assert any(Path(path).match(pattern) for pattern in prometheus_yml[setting]), (path, prometheus_yml[setting])
    assert find(objects, "Service", "alertmanager", k8s.monitoring_namespace)


def test_prometheus_may_discover_services_and_pods_cluster_wide(overlays: dict[Environment, Objects]) -> None:
    objects = overlays[Environment.DEVNET]
    role = find(objects, "ClusterRole", "gx-prometheus")
    core = next(r for r in role["rules"] if r["apiGroups"] == [""])
    assert {"services", "pods", "endpoints"} <= set(core["resources"]) and {"list", "watch"} <= set(core["verbs"])
    binding = find(objects, "ClusterRoleBinding", "gx-prometheus")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prometheus", "namespace": "fabric"}]


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_chaincode_servers_carry_the_names_the_platform_layer_rolls(overlays: dict[Environment, Objects],
                                                                    env: Environment) -> None:
    objects, profile = overlays[env], environment_profile(env)
    for org in KubernetesPlatformSettings().orgs:
        names = chaincode_names(profile, org)
        deployment = find(objects, "Deployment", names.deployment, names.namespace)
        find(objects, "ConfigMap", names.config_map, names.namespace)
        service = find(objects, "Service", names.deployment, names.namespace)
        assert _selected_deployment(objects, service) is deployment
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        env_vars = {e["name"]: e for e in container["env"]}
        assert env_vars[CHAINCODE_ID_KEY]["valueFrom"]["configMapKeyRef"] == {"name": names.config_map,
                                                                              "key": CHAINCODE_ID_KEY}
        assert env_vars["CHAINCODE_SERVER_ADDRESS"]["value"].endswith(f":{_container_port(deployment, 'grpc')}")
        assert container["image"].startswith("registry.gx.local/gxtv3-chaincode:")


def test_the_rendered_files_are_referenced_not_copied() -> None:
    """Only gxlib/monitoring writes rules: no YAML under k8s/ except the rendered one mentions an alert group."""
    group = MonitoringConfig().alert_group
    holders = [p.relative_to(REPO_ROOT) for p in K8S_DIR.rglob("*.y*ml") if group in p.read_text()]
    assert [str(p) for p in holders] == ["k8s/monitoring/prometheus/alerts-backend.yaml"]
