"""Security of the rendered overlays: pod and container hardening, secrets, the NetworkPolicies (checked
statically, SPEC §10), and checkov's Kubernetes policies with the exceptions of k8s/policy-exceptions.yaml."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from gxlib.backend.fabric_client import (
    FABRIC_CLIENT_MOUNT_DIR,
    FABRIC_CLIENT_SECRET,
    FABRIC_READER_SECRET,
    NETWORK_FILE_NAME,
    NETWORK_FILE_VARIABLE,
)
from gxlib.config import Environment, environment_profile
from gxlib.platform.chaincode_tls import CA_KEY, CERT_KEY, KEY_KEY
from gxlib.platform.settings import KubernetesPlatformSettings, chaincode_names
from tests.integration.platform.conftest import K8S_DIR, KUBERNETES_ENVS, find
from tests.integration.platform.netpol import Endpoint, allowed

Objects = list[dict[str, Any]]
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "DaemonSet")
# The pods that talk to the Kubernetes API: Prometheus (service discovery) and kube-state-metrics (list/watch).
API_CLIENTS = {("StatefulSet", "prometheus"), ("Deployment", "kube-state-metrics")}
EXCEPTIONS_FILE = K8S_DIR / "policy-exceptions.yaml"

# Pods that are not in these manifests but that the policies must account for.
PEER = Endpoint("fabric", {"app.kubernetes.io/component": "peer", "app.kubernetes.io/name": "peer0-org1"}, "peer")
INTRUDER = Endpoint("default", {"app": "somebody-else"}, "a pod in another namespace")
NEIGHBOUR = Endpoint("fabric", {"app.kubernetes.io/name": "loki"}, "another pod in namespace fabric")
KUBE_DNS = Endpoint("kube-system", {"k8s-app": "kube-dns"}, "kube-dns")
DATABASE = Endpoint.external("the database")
ELSEWHERE = Endpoint.external("an address on the internet")


def _workloads(objects: Objects) -> Objects:
    return [o for o in objects if o["kind"] in WORKLOAD_KINDS]


def _policies(objects: Objects) -> Objects:
    return [o for o in objects if o["kind"] == "NetworkPolicy"]


def _pod(objects: Objects, kind: str, name: str, namespace: str) -> Endpoint:
    workload = find(objects, kind, name, namespace)
    return Endpoint(namespace, workload["spec"]["template"]["metadata"]["labels"], f"{namespace}/{name}")


def _backend_pods(objects: Objects, env: Environment) -> dict[str, Endpoint]:
    namespace = f"backend-{env.value}"
    return {name: _pod(objects, "Deployment", name, namespace) for name in ("api", "outbox-submitter", "projector")}


def _id(workload: dict[str, Any]) -> str:
    return f"{workload['kind']}/{workload['metadata'].get('namespace')}/{workload['metadata']['name']}"


# --- pods and containers -------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_every_container_runs_unprivileged_on_a_read_only_root(overlays: dict[Environment, Objects],
                                                               env: Environment) -> None:
    workloads = _workloads(overlays[env])
    assert workloads
    for workload in workloads:
        pod = workload["spec"]["template"]["spec"]
        assert pod["securityContext"].get("runAsNonRoot") is True, _id(workload)
        for container in pod["containers"] + pod.get("initContainers", []):
            where = f"{_id(workload)} container {container['name']}"
            context = container.get("securityContext", {})
            assert context.get("allowPrivilegeEscalation") is False, where
            assert context.get("readOnlyRootFilesystem") is True, where
            assert context.get("privileged", False) is False, where
            assert context.get("capabilities", {}).get("drop") == ["ALL"], where
            assert not context.get("capabilities", {}).get("add"), where
            seccomp = context.get("seccompProfile") or pod["securityContext"].get("seccompProfile")
            assert seccomp == {"type": "RuntimeDefault"}, where


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_only_prometheus_mounts_a_service_account_token(overlays: dict[Environment, Objects],
                                                        env: Environment) -> None:
    for workload in _workloads(overlays[env]):
        pod = workload["spec"]["template"]["spec"]
        expected = (workload["kind"], workload["metadata"]["name"]) in API_CLIENTS
        assert pod.get("automountServiceAccountToken") is expected, _id(workload)
    assert find(overlays[env], "StatefulSet", "prometheus", "fabric")["spec"]["template"]["spec"][
        "serviceAccountName"] == "prometheus"


def _mounted_paths(container: dict[str, Any]) -> list[str]:
    return [m["mountPath"] for m in container.get("volumeMounts", [])]


def test_what_the_monitoring_programs_write_is_on_volumes(overlays: dict[Environment, Objects]) -> None:
    objects = overlays[Environment.DEVNET]
    prometheus = find(objects, "StatefulSet", "prometheus", "fabric")["spec"]["template"]["spec"]["containers"][0]
    assert "--storage.tsdb.path=/prometheus" in prometheus["args"] and "/prometheus" in _mounted_paths(prometheus)
    alertmanager = find(objects, "Deployment", "alertmanager", "fabric")["spec"]["template"]["spec"]["containers"][0]
    assert "--storage.path=/alertmanager" in alertmanager["args"]
    assert "/alertmanager" in _mounted_paths(alertmanager)
    grafana = find(objects, "Deployment", "grafana", "fabric")["spec"]["template"]["spec"]["containers"][0]
    assert {"/var/lib/grafana", "/tmp"} <= set(_mounted_paths(grafana))
    assert {"name": "GF_LOG_MODE", "value": "console"} in grafana["env"]


# --- secrets ---------------------------------------------------------------------------------------------------
def _secret_references(workload: dict[str, Any]) -> list[tuple[str, bool]]:
    """(Secret name, optional) for every way the pod template uses a Secret."""
    pod = workload["spec"]["template"]["spec"]
    found: list[tuple[str, bool]] = []
    for container in pod["containers"]:
        for source in container.get("envFrom", []):
            if "secretRef" in source:
                found.append((source["secretRef"]["name"], source["secretRef"].get("optional", False)))
        for variable in container.get("env", []):
            ref = variable.get("valueFrom", {}).get("secretKeyRef")
            if ref:
                found.append((ref["name"], ref.get("optional", False)))
    for volume in pod.get("volumes", []):
        if "secret" in volume:
            found.append((volume["secret"]["secretName"], volume["secret"].get("optional", False)))
        for source in volume.get("projected", {}).get("sources", []):
            if "secret" in source:
                found.append((source["secret"]["name"], source["secret"].get("optional", False)))
    return found


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_backend_secrets_are_required_files_and_tokens_reach_only_the_api(overlays: dict[Environment, Objects],
                                                                          env: Environment) -> None:
    namespace = f"backend-{env.value}"
    settings = find(overlays[env], "ConfigMap", "backend-settings", namespace)["data"]
    for name in ("api", "outbox-submitter", "projector"):
        workload = find(overlays[env], "Deployment", name, namespace)
        references = _secret_references(workload)
        assert ("backend-secrets", False) in references, name
        assert all(not optional for _, optional in references), f"{name}: a Secret is optional"
        container = workload["spec"]["template"]["spec"]["containers"][0]
        # Files, not environment variables (the process environment leaks into child processes and dumps).
        assert not any("secretRef" in s for s in container.get("envFrom", [])), name
        assert settings["GX_BACKEND_SECRETS_DIR"] in _mounted_paths(container), name
        gets_tokens = ("backend-api-tokens", False) in references
        assert gets_tokens is (name == "api"), f"{name} {'gets' if gets_tokens else 'lacks'} the API tokens"


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_chaincode_servers_serve_tls_with_client_auth_from_their_orgs_required_secret(
        overlays: dict[Environment, Objects], env: Environment) -> None:
    profile = environment_profile(env)
    for org in KubernetesPlatformSettings().orgs:
        names = chaincode_names(profile, org)
        workload = find(overlays[env], "Deployment", names.deployment, names.namespace)
        assert _secret_references(workload) == [(names.tls_secret, False)], org
        pod = workload["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if "secret" in v]
        (container,) = pod["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True
        assert volume["secret"]["defaultMode"] & 0o027 == 0  # no write, nothing for others
        # The variables the chaincode server reads (gxshim.serve), each a key of the kubernetes.io/tls Secret.
        variables = {e["name"]: e.get("value") for e in container["env"]}
        files = {name: variables[name] for name in ("CHAINCODE_TLS_CERT", "CHAINCODE_TLS_KEY",
                                                     "CHAINCODE_CLIENT_CA_CERT")}
        assert files == {"CHAINCODE_TLS_CERT": f"{mount['mountPath']}/{CERT_KEY}",
                         "CHAINCODE_TLS_KEY": f"{mount['mountPath']}/{KEY_KEY}",
                         "CHAINCODE_CLIENT_CA_CERT": f"{mount['mountPath']}/{CA_KEY}"}
        # TCP probes: they never reach the TLS layer, so client auth does not fail them (a grpc probe would).
        for probe in ("readinessProbe", "livenessProbe"):
            assert "tcpSocket" in container[probe] and "grpc" not in container[probe], (org, probe)


def test_grafana_admin_password_comes_from_a_required_secret(overlays: dict[Environment, Objects]) -> None:
    grafana = find(overlays[Environment.DEVNET], "Deployment", "grafana", "fabric")
    container = grafana["spec"]["template"]["spec"]["containers"][0]
    env = {v["name"]: v for v in container["env"]}
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env, "no password in the manifest"
    password_file = Path(env["GF_SECURITY_ADMIN_PASSWORD__FILE"]["value"])
    mount = next(m for m in container["volumeMounts"] if Path(m["mountPath"]) == password_file.parent)
    volume = next(v for v in grafana["spec"]["template"]["spec"]["volumes"] if v["name"] == mount["name"])
    assert volume["secret"]["secretName"] == "grafana-admin" and not volume["secret"].get("optional", False)
    assert {"key": "admin-password", "path": password_file.name} in volume["secret"]["items"]


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_the_submitter_and_the_projector_each_mount_only_their_own_fabric_client_secret_read_only(
        overlays: dict[Environment, Objects], env: Environment) -> None:
    """The Fabric signing keys reach the two pods that sign or read blocks, as required 0440 files named by
    GX_BACKEND_FABRIC_NETWORK_FILE: the submitter the Secret with the super-admin key, the projector the one with
    the service key only; no other pod of any namespace gets either."""
    namespace = f"backend-{env.value}"
    owners = {FABRIC_CLIENT_SECRET: "outbox-submitter", FABRIC_READER_SECRET: "projector"}
    for secret, name in owners.items():
        users = {_id(w) for w in _workloads(overlays[env])
                 if any(used == secret for used, _ in _secret_references(w))}
        assert users == {f"Deployment/{namespace}/{name}"}, secret
        workload = find(overlays[env], "Deployment", name, namespace)
        assert (secret, False) in _secret_references(workload), f"{name}: the Secret is optional"
        assert {used for used, _ in _secret_references(workload)} & set(owners) == {secret}, name
        pod = workload["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v.get("secret", {}).get("secretName") == secret]
        assert volume["secret"]["defaultMode"] == 0o440 and volume["secret"]["optional"] is False, name
        (container,) = pod["containers"]
        (mount,) = [m for m in container["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True and mount["mountPath"] == str(FABRIC_CLIENT_MOUNT_DIR), name
        variables = {e["name"]: e.get("value") for e in container.get("env", [])}
        assert variables[NETWORK_FILE_VARIABLE] == str(FABRIC_CLIENT_MOUNT_DIR / NETWORK_FILE_NAME), name
    api = find(overlays[env], "Deployment", "api", namespace)["spec"]["template"]["spec"]["containers"][0]
    assert NETWORK_FILE_VARIABLE not in {e["name"] for e in api.get("env", [])}


# --- network policies ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_every_pod_of_ours_is_isolated_both_ways(overlays: dict[Environment, Objects], env: Environment) -> None:
    policies = _policies(overlays[env])
    for workload in _workloads(overlays[env]):
        namespace = workload["metadata"]["namespace"]
        pod = _pod(overlays[env], workload["kind"], workload["metadata"]["name"], namespace)
        # A pod no policy selects takes anything: from an unrelated pod on an unrelated port it must be refused.
        assert not allowed(policies, INTRUDER, pod, 12345), f"{pod} is not isolated for ingress"
        assert not allowed(policies, pod, ELSEWHERE, 12345), f"{pod} is not isolated for egress"


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_prometheus_scrapes_every_backend_pods_metrics_port_and_nobody_else_does(
        overlays: dict[Environment, Objects], env: Environment) -> None:
    objects, policies = overlays[env], _policies(overlays[env])
    prometheus = _pod(objects, "StatefulSet", "prometheus", "fabric")
    grafana = _pod(objects, "Deployment", "grafana", "fabric")
    pods = _backend_pods(objects, env)
    for name, pod in pods.items():
        workload = find(objects, "Deployment", name, f"backend-{env.value}")
        for port in workload["spec"]["template"]["spec"]["containers"][0]["ports"]:
            assert allowed(policies, prometheus, pod, port["containerPort"]), f"Prometheus → {pod}:{port}"
    for port, name in ((9101, "outbox-submitter"), (9102, "projector")):
        for source in (INTRUDER, grafana, pods["api"], NEIGHBOUR):
            assert not allowed(policies, source, pods[name], port), f"{source} → {name}:{port}"


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_the_api_is_the_backends_only_entry_point(overlays: dict[Environment, Objects], env: Environment) -> None:
    policies, pods = _policies(overlays[env]), _backend_pods(overlays[env], env)
    assert allowed(policies, INTRUDER, pods["api"], 8080)
    assert not allowed(policies, INTRUDER, pods["api"], 9101)
    assert not allowed(policies, INTRUDER, pods["outbox-submitter"], 9101)
    assert not allowed(policies, INTRUDER, pods["projector"], 9102)


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_workers_reach_only_the_peers_the_database_and_dns(overlays: dict[Environment, Objects],
                                                           env: Environment) -> None:
    objects, policies = overlays[env], _policies(overlays[env])
    pods = _backend_pods(objects, env)
    chaincode = _pod(objects, "Deployment", f"gxtv3-org1-{env.value}", "fabric")
    prometheus = _pod(objects, "StatefulSet", "prometheus", "fabric")
    for name in ("outbox-submitter", "projector"):
        worker = pods[name]
        assert allowed(policies, worker, PEER, 7051), f"{name} → peer Gateway"
        assert allowed(policies, worker, DATABASE, 5432), f"{name} → database"
        assert allowed(policies, worker, KUBE_DNS, 53, "UDP"), f"{name} → DNS"
        for destination, port in ((ELSEWHERE, 443), (pods["api"], 8080), (prometheus, 9090), (chaincode, 9999),
                                  (INTRUDER, 8080)):
            assert not allowed(policies, worker, destination, port), f"{name} → {destination}:{port}"
    assert allowed(policies, pods["api"], DATABASE, 5432)
    assert not allowed(policies, pods["api"], PEER, 7051), "the API writes to the outbox, not to Fabric"
    assert not allowed(policies, pods["api"], ELSEWHERE, 443)


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_prometheus_lifecycle_endpoints_are_out_of_reach_of_other_pods(overlays: dict[Environment, Objects],
                                                                       env: Environment) -> None:
    objects, policies = overlays[env], _policies(overlays[env])
    prometheus = _pod(objects, "StatefulSet", "prometheus", "fabric")
    grafana = _pod(objects, "Deployment", "grafana", "fabric")
    alertmanager = _pod(objects, "Deployment", "alertmanager", "fabric")
    assert allowed(policies, grafana, prometheus, 9090), "Grafana's data source"
    others = [INTRUDER, NEIGHBOUR, PEER, alertmanager, *_backend_pods(objects, env).values()]
    for source in others:
        assert not allowed(policies, source, prometheus, 9090), f"{source} could POST /-/reload or /-/quit"
    # Prometheus itself reaches what it needs: Alertmanager, the Fabric nodes, the API server.
    assert allowed(policies, prometheus, alertmanager, 9093)
    assert allowed(policies, prometheus, PEER, 9443)
    assert allowed(policies, prometheus, Endpoint.external("the API server"), 6443)
    assert not allowed(policies, grafana, alertmanager, 9093)


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_grafana_serves_everyone_and_the_chaincode_only_the_peers(overlays: dict[Environment, Objects],
                                                                  env: Environment) -> None:
    objects, policies = overlays[env], _policies(overlays[env])
    grafana = _pod(objects, "Deployment", "grafana", "fabric")
    assert allowed(policies, INTRUDER, grafana, 3000)
    assert not allowed(policies, grafana, ELSEWHERE, 443), "no plugin downloads or phoning home"
    for org in ("org1", "org2"):
        chaincode = _pod(objects, "Deployment", f"gxtv3-{org}-{env.value}", "fabric")
        assert allowed(policies, PEER, chaincode, 9999)
        assert not allowed(policies, _backend_pods(objects, env)["outbox-submitter"], chaincode, 9999)
        assert not allowed(policies, chaincode, ELSEWHERE, 443)


def test_policies_leave_the_fabric_nodes_alone(overlays: dict[Environment, Objects]) -> None:
    """Namespace fabric also holds the peers and orderers, deployed elsewhere: no policy here may isolate them."""
    policies = _policies(overlays[Environment.DEVNET])
    orderer = Endpoint("fabric", {"app.kubernetes.io/component": "orderer"}, "orderer")
    assert allowed(policies, INTRUDER, PEER, 7051) and allowed(policies, PEER, orderer, 7050)


# --- checkov ---------------------------------------------------------------------------------------------------
def _exceptions() -> list[dict[str, Any]]:
    return yaml.safe_load(EXCEPTIONS_FILE.read_text())["exceptions"]


def test_every_policy_exception_has_a_check_resources_and_a_reason() -> None:
    for entry in _exceptions():
        assert set(entry) == {"check", "resources", "reason"}, entry
        assert entry["check"].startswith("CKV_K8S_") and entry["resources"], entry
        assert len(entry["reason"].split()) >= 10, f"{entry['check']}: say why"


def _excepted(check: str, resource: str) -> bool:
    return any(e["check"] == check and ("*" in e["resources"] or resource in e["resources"]) for e in _exceptions())


@pytest.fixture(scope="module")
def checkov_failures(overlays: dict[Environment, Objects], tmp_path_factory: pytest.TempPathFactory
                     ) -> dict[Environment, set[tuple[str, str]]]:
    """env → {(check ID, resource)} that checkov fails on `kustomize build k8s/overlays/<env>` (offline)."""
    directory = tmp_path_factory.mktemp("rendered")
    files = {}
    for env in KUBERNETES_ENVS:
        files[env] = directory / f"{env.value}.yaml"
        files[env].write_text(yaml.safe_dump_all(overlays[env], sort_keys=False))
    checkov = Path(sys.executable).with_name("checkov")
    # Offline: no guideline download from the vendor's platform, no version check against the package index.
    env_vars = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CKV_SKIP_PACKAGE_UPDATE_CHECK": "TRUE",
                "LOG_LEVEL": "WARNING"}
    command = [str(checkov), "--framework", "kubernetes", "--skip-download", "--quiet", "--compact", "-o", "json"]
    for path in files.values():
        command += ["-f", str(path)]
    proc = subprocess.run(command, capture_output=True, text=True, env=env_vars, check=False, timeout=600)
    assert proc.returncode in (0, 1), f"checkov crashed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
    report = json.loads(proc.stdout)
    summary = report["summary"]
    assert summary["passed"] > 0 and summary["parsing_errors"] == 0, f"checkov checked nothing: {summary}"
    failures: dict[Environment, set[tuple[str, str]]] = {env: set() for env in KUBERNETES_ENVS}
    for failure in report["results"].get("failed_checks", []):
        env = next(e for e, path in files.items() if Path(failure["file_abs_path"]).name == path.name)
        failures[env].add((failure["check_id"], failure["resource"]))
    return failures


@pytest.mark.parametrize("env", KUBERNETES_ENVS, ids=lambda e: e.value)
def test_checkov_finds_nothing_outside_the_written_exceptions(checkov_failures: dict[Environment, set[tuple[str, str]]],
                                                              env: Environment) -> None:
    unexcepted = sorted(f for f in checkov_failures[env] if not _excepted(*f))
    assert unexcepted == [], f"checkov failures in {env.value} not in {EXCEPTIONS_FILE.name}: {unexcepted}"


def test_every_policy_exception_is_still_needed(checkov_failures: dict[Environment, set[tuple[str, str]]]) -> None:
    failed = set().union(*checkov_failures.values())
    for entry in _exceptions():
        resources = entry["resources"]
        used = [f for f in failed if f[0] == entry["check"] and ("*" in resources or f[1] in resources)]
        assert used, f"{entry['check']} {resources} no longer fails: remove the exception"
