"""The overlays and the platform layer against a real kube-apiserver (etcd, controller-manager, scheduler, and kwok
for the nodes) on loopback. Pods are kwok's fakes: they are scheduled and reported Running/Ready, nothing runs in
them — so rollouts, ReplicaSets, PDBs and pod state are real, a container's answer is not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from kubernetes import client as k8s_client

from gxlib.config import Environment, environment_profile
from gxlib.monitoring.render import K8S_ALERTS_FILE, committed_artifacts, render_artifacts, unified_diff
from gxlib.monitoring.settings import (
    AlertThresholds,
    KubernetesScrapeSettings,
    MonitoringConfig,
    committed_devnet_settings,
)
from gxlib.platform.base import AppliedObject, ReloadMethod
from gxlib.platform.errors import KubernetesApiError, PrometheusReloadError, UnknownOrgError
from gxlib.platform.settings import CHAINCODE_ID_KEY, PACKAGE_ID_ANNOTATION, chaincode_names
from tests.integration.platform.conftest import KUBERNETES_ENVS, make_platform

pytestmark = pytest.mark.timeout(600)

NEW_PACKAGE = "gxtv3_1.1:" + "ab" * 32


@dataclass
class OverlayApply:
    dry_run: list[AppliedObject]
    existed_after_dry_run: list[str]
    real: list[AppliedObject]
    again: list[AppliedObject]


def _exists(api: k8s_client.ApiClient, env: Environment, obj: dict[str, Any]) -> bool:
    meta = obj["metadata"]
    return make_platform(api, env).get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace")) is not None


@pytest.fixture(scope="module")
def applied(api: k8s_client.ApiClient, overlay_objects: dict[Environment, list[dict[str, Any]]],
            prometheus_volume: str) -> dict[Environment, OverlayApply]:
    """Each overlay: a server-side dry run, then the real apply, then the same apply again."""
    results: dict[Environment, OverlayApply] = {}
    for env in KUBERNETES_ENVS:
        platform, objects = make_platform(api, env), overlay_objects[env]
        dry = platform.apply(objects, dry_run=True)
        backend = [o for o in objects if o["metadata"].get("namespace") == environment_profile(env).backend_namespace]
        existed = [o["metadata"]["name"] for o in backend if _exists(api, env, o)]
        real = platform.apply(objects)
        again = platform.apply(objects)
        results[env] = OverlayApply(dry, existed, real, again)
    return results


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_overlay_passes_a_server_side_dry_run_that_creates_nothing(applied: dict[Environment, OverlayApply],
                                                                   overlay_objects: dict[Environment, list[Any]],
                                                                   env: Environment) -> None:
    result = applied[env]
    assert len(result.dry_run) == len(overlay_objects[env])
    assert all(o.dry_run for o in result.dry_run)
    assert result.existed_after_dry_run == []


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_overlay_applies_and_a_second_apply_changes_nothing(api: k8s_client.ApiClient,
                                                            applied: dict[Environment, OverlayApply],
                                                            overlay_objects: dict[Environment, list[Any]],
                                                            env: Environment) -> None:
    result = applied[env]
    backend_ns = environment_profile(env).backend_namespace
    assert all(o.changed for o in result.real if o.namespace == backend_ns)
    assert [o for o in result.again if o.changed] == []
    assert all(_exists(api, env, o) for o in overlay_objects[env])


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_backend_deployments_roll_out_on_the_fake_nodes(api: k8s_client.ApiClient,
                                                        applied: dict[Environment, OverlayApply],
                                                        env: Environment) -> None:
    platform, namespace = make_platform(api, env), environment_profile(env).backend_namespace
    for name in ("api", "outbox-submitter", "projector"):
        state = platform.wait_for_rollout(name, namespace, timeout_s=120)
        assert state.complete and state.available_replicas == state.replicas >= 1
    api_pods = platform.pods(namespace, "tier=backend,component=api")
    assert api_pods and all(p.phase == "Running" and p.ready and p.node for p in api_pods)
    assert all(p.annotations["prometheus.io/port"] == "8080" for p in api_pods)


def test_prometheus_0_is_scheduled_with_its_claim_bound(api: k8s_client.ApiClient,
                                                        applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.DEVNET)

    def running() -> tuple[bool, str | None]:
        pods = {p.name: p for p in platform.pods("fabric", "app.kubernetes.io/name=prometheus")}
        pod = pods.get("prometheus-0")
        return (pod is not None and pod.phase == "Running" and pod.ready), repr(pod)

    platform.progress.wait_until("prometheus-0 Running", running, timeout_s=120, interval_s=0.5)


def test_monitoring_diff_sees_a_changed_threshold_and_apply_deploys_it(api: k8s_client.ApiClient,
                                                                      applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.TESTNET)
    committed = committed_artifacts()
    assert platform.monitoring_diff(committed) == []
    changed_config = MonitoringConfig(thresholds=AlertThresholds(outbox_pending_warning=150))
    changed = render_artifacts(changed_config, committed_devnet_settings())
    try:
        assert platform.monitoring_diff(changed) == [changed_config.kubernetes.configmap_rules_name]
        deployed = platform.deployed_artifacts(changed)[str(K8S_ALERTS_FILE)]
        rendered = next(a.content for a in changed if a.path == K8S_ALERTS_FILE)
        diff = unified_diff(deployed, rendered, str(K8S_ALERTS_FILE))
        removed = [line for line in diff.splitlines() if line.startswith("-") and "outbox_pending_commands" in line]
        added = [line for line in diff.splitlines() if line.startswith("+") and "outbox_pending_commands" in line]
        assert [line.endswith("> 100") for line in removed] == [True]
        assert [line.endswith("> 150") for line in added] == [True]
        dry = platform.apply_monitoring(changed, dry_run=True)
        assert platform.monitoring_diff(changed) != []
        assert len(dry) == 3
        applied_now = platform.apply_monitoring(changed)
        assert [o.name for o in applied_now if o.changed] == [changed_config.kubernetes.configmap_rules_name]
        assert platform.monitoring_diff(changed) == []
        assert not any(o.changed for o in platform.apply_monitoring(changed))
    finally:
        platform.apply_monitoring(committed)
    assert platform.monitoring_diff(committed) == []


def test_dashboard_loads_into_the_configmap_grafana_provisions_from(api: k8s_client.ApiClient,
                                                                    applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.DEVNET)
    dashboard = next(a.content for a in committed_artifacts() if a.path.suffix == ".json")
    result = platform.load_dashboard(dashboard.replace('"CQRS Backend Monitoring"', '"CQRS Backend Monitoring (t)"'))
    assert result.changed and result.name == "grafana-dashboard-cqrs-backend"
    assert platform.monitoring_diff(committed_artifacts()) == ["grafana-dashboard-cqrs-backend"]
    assert platform.load_dashboard(dashboard).changed
    assert platform.monitoring_diff(committed_artifacts()) == []


def test_roll_chaincode_to_a_new_package_id_completes_the_rollout(api: k8s_client.ApiClient,
                                                                   applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.DEVNET)
    before = platform.chaincode_package_ids()
    old_pods = {org: {p.name for p in platform.chaincode_pods(org)} for org in platform.settings.orgs}
    rolls = platform.roll_chaincode({"org1": NEW_PACKAGE, "org2": NEW_PACKAGE.replace("ab", "cd")}, timeout_s=180)
    assert [r.org for r in rolls] == ["org1", "org2"]
    for roll in rolls:
        assert roll.rollout.complete and roll.previous_package_id == before[roll.org]
        names = chaincode_names(platform.profile, roll.org)
        config_map = platform.get("v1", "ConfigMap", names.config_map, names.namespace)
        assert config_map is not None and config_map["data"][CHAINCODE_ID_KEY] == roll.package_id
        pods = platform.chaincode_pods(roll.org)
        live = [p for p in pods if p.phase == "Running"]
        assert live and all(p.annotations[PACKAGE_ID_ANNOTATION] == roll.package_id for p in live)
        assert not {p.name for p in live} & old_pods[roll.org]
    # The other environments' chaincode servers were not touched.
    assert make_platform(api, Environment.TESTNET).chaincode_package_ids() == {
        "org1": before["org1"], "org2": before["org2"]}


def test_roll_chaincode_for_an_unknown_org_is_refused_and_changes_nothing(
        api: k8s_client.ApiClient, applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.MAINNET)
    before = platform.chaincode_package_ids()
    with pytest.raises(UnknownOrgError, match="org3"):
        platform.roll_chaincode({"org1": NEW_PACKAGE, "org3": NEW_PACKAGE})
    assert platform.chaincode_package_ids() == before


def test_reload_of_a_prometheus_pod_that_does_not_exist_names_the_pod_and_status(
        api: k8s_client.ApiClient, applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.DEVNET)
    elsewhere = KubernetesScrapeSettings(monitoring_namespace="no-such-namespace")
    platform.monitoring = MonitoringConfig(kubernetes=elsewhere)
    for method in (ReloadMethod.HTTP, ReloadMethod.SIGNAL):
        with pytest.raises(PrometheusReloadError) as caught:
            platform.reload_prometheus(method)
        assert "no-such-namespace/prometheus-0" in str(caught.value) and "404" in str(caught.value)


def test_an_object_the_server_rejects_names_kind_name_and_reason(api: k8s_client.ApiClient,
                                                                 applied: dict[Environment, OverlayApply]) -> None:
    platform = make_platform(api, Environment.DEVNET)
    bad = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "Not_A_Valid_Name", "namespace": "fabric"},
           "data": {"k": "v"}}
    with pytest.raises(KubernetesApiError) as caught:
        platform.apply([bad], dry_run=True)
    assert caught.value.status == 422 and "Not_A_Valid_Name" in str(caught.value)
