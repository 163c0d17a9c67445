"""Runbook 02 with env=devnet, through the platform layer: the lifecycle on a real Fabric network, the chaincode
servers as Deployments on a real kube-apiserver (controller-manager, scheduler, kwok's fake nodes).

What is real and what stands in:
- The Fabric network is a throw-away local devnet of this module (channel ``gxchannel-devnet``), with ``1.0``
  deployed by ``ChaincodeOperator``; its environment document (``gx devnet env --json``) is the runbook's
  ``fabric_network_file``. Install, approve, commit readiness and commit go to its peers over gRPC, as on a cluster.
- The chaincode servers are the devnet overlay's Deployments ``gxtv3-orgN-devnet`` in namespace ``fabric``; the
  runbook rolls them through ``KubernetesCluster.roll_chaincode`` and the rollouts are real (ReplicaSets, pods
  scheduled on kwok nodes, the pod template's package-ID annotation, the ConfigMap's CHAINCODE_ID).
- kwok pods run no process, so nothing in the cluster could answer the peers. For "the new version answers" the
  test starts stand-in chaincode servers — the local chaincode server processes of ``gxlib.chaincode.servers``,
  registered with the new package IDs — on loopback ports, and points the packages there with the runbook's
  ``chaincode_addresses`` parameter (on a cluster the default, the org's Service address, is used). The verify step
  therefore proves the peers reach a chaincode with the new package ID; it does not prove a pod serves it.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
import pytest
from kubernetes import client as k8s_client

from gxlib.chaincode import servers
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.chaincode.servers import ChaincodeServer
from gxlib.config import ChaincodeSettings, Environment
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.network import Devnet
from gxlib.errors import Unavailable
from gxlib.k8sbuild.controlplane import LocalControlPlane, free_port
from gxlib.platform.kubernetes import KubernetesCluster
from gxlib.platform.kubernetes_chaincode import KubernetesChaincodeOperator, kubernetes_operator
from gxlib.platform.settings import CHAINCODE_ID_KEY, PACKAGE_ID_ANNOTATION, chaincode_names, platform_settings
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, RunbookFailed, prepare, run
from gxlib.runbook.parameters import UpgradeChaincodeParameters
from gxlib.runbook.settings import RunbookSettings
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.platform.conftest import make_platform

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

RUNBOOK = "02-upgrade-chaincode"
CHANNEL = "gxchannel-devnet"
OFFSET = BASE_TEST_OFFSET + 400
NEW_VERSION = "1.1"
ORGS = ("org1", "org2")


@dataclass
class Fabric:
    devnet: Devnet
    operator: ChaincodeOperator
    network_file: Path


@dataclass
class World:
    fabric: Fabric
    platform: KubernetesCluster
    kubeconfig: Path
    addresses: dict[str, str]
    new_ids: dict[str, str]
    stand_ins: list[ChaincodeServer]


@pytest.fixture(scope="module")
def fabric(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fabric]:
    """The devnet env's Fabric network: a local devnet on channel gxchannel-devnet with gxtv3 1.0 committed."""
    root = tmp_path_factory.mktemp("k8s-fabric")
    devnet = make_devnet(root / "devnet", OFFSET, channel=CHANNEL)
    try:
        devnet.up()
        operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
        operator.deploy("1.0")
        network_file = root / "fabric-network.json"
        network_file.write_text(json.dumps(devnet.environment(), indent=2))
        yield Fabric(devnet, operator, network_file)
    finally:
        devnet.down(purge=True)


@pytest.fixture(scope="module")
def world(fabric: Fabric, control_plane: LocalControlPlane, api: k8s_client.ApiClient,
          overlay_objects: dict[Environment, list[dict[str, Any]]],
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The devnet overlay applied, and stand-in chaincode servers (new package IDs) where the packages point."""
    platform = make_platform(api, Environment.DEVNET)
    platform.apply(overlay_objects[Environment.DEVNET])
    for org in ORGS:
        names = chaincode_names(platform.profile, org)
        platform.wait_for_rollout(names.deployment, names.namespace, timeout_s=120)
    addresses = {org: f"127.0.0.1:{free_port()}" for org in ORGS}
    params = _params(fabric, control_plane.kubeconfig, addresses)
    operator = _operator(params)
    assert isinstance(operator, KubernetesChaincodeOperator), operator
    new_ids = operator.plan(NEW_VERSION).package_ids
    root = tmp_path_factory.mktemp("stand-ins")
    # The stand-ins serve what the pods would: TLS with client auth, with the material the packages carry.
    stand_ins = [ChaincodeServer(name=f"gxtv3-{s.org_key}-stand-in", org_key=s.org_key, msp_id=s.msp_id,
                                 host="127.0.0.1", port=int(s.address.rsplit(":", 1)[1]), dir=root / s.org_key,
                                 tls=s.tls)
                 for s in operator.servers]
    try:
        yield World(fabric, platform, control_plane.kubeconfig, addresses, new_ids, stand_ins)
    finally:
        for server in stand_ins:
            servers.stop(server)


def _params(fabric: Fabric, kubeconfig: Path, addresses: dict[str, str], **extra: object) -> UpgradeChaincodeParameters:
    _, params = prepare(RUNBOOK, _raw(fabric, kubeconfig, addresses, **extra), environ={})
    assert isinstance(params, UpgradeChaincodeParameters)
    return params


def _operator(params: UpgradeChaincodeParameters) -> KubernetesChaincodeOperator:
    assert params.fabric_network_file is not None
    return kubernetes_operator(params.env, platform_settings(params.kubeconfig, params.kube_context),
                               fabric_network_file=params.fabric_network_file, channel=params.channel_name(),
                               chaincode_name=params.chaincode_name, chaincode_addresses=params.chaincode_addresses,
                               restart_timeout_s=params.restart_timeout_s, progress=Progress(quiet=True))


def _why(params: UpgradeChaincodeParameters) -> str:
    """Why the operator of ``params`` cannot act."""
    with pytest.raises(Unavailable) as caught:
        _operator(params)
    return caught.value.reason


def _raw(fabric: Fabric, kubeconfig: Path, addresses: dict[str, str], **extra: object) -> dict[str, object]:
    return {"env": "devnet", "fabric_network_file": str(fabric.network_file), "kubeconfig": str(kubeconfig),
            "chaincode_version": NEW_VERSION, "chaincode_addresses": json.dumps(addresses), **extra}


def _run(world: World, settings: RunbookSettings, **extra: object) -> dict[str, Any]:
    try:
        record = run(RUNBOOK, _raw(world.fabric, world.kubeconfig, world.addresses, **extra), settings=settings,
                     progress=Progress(quiet=True))
    except RunbookFailed as failure:
        assert failure.summary is not None, failure
        return failure.summary
    assert record.summary is not None
    outputs = "\n".join(json.dumps(c.get("outputs", [])) for c in nbformat.read(record.notebook, 4).cells)
    return {**record.summary, "outputs": outputs}


def _steps(summary: dict[str, Any]) -> dict[str, str]:
    return {step["name"]: step["outcome"] for step in summary["steps"]}


def _checks(summary: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {check["name"]: check for check in summary["checks"]}


def _committed(fabric: Fabric) -> dict[str, tuple[str, int] | None]:
    found = {}
    for org in ORGS:
        committed = fabric.operator.committed(org)
        found[org] = (committed.version, committed.sequence) if committed else None
    return found


def _cluster_state(platform: KubernetesCluster) -> dict[str, tuple[str | None, dict[str, Any], int]]:
    """org → (ConfigMap CHAINCODE_ID, Deployment pod template, Deployment generation)."""
    state = {}
    for org in ORGS:
        names = chaincode_names(platform.profile, org)
        config_map = platform.get("v1", "ConfigMap", names.config_map, names.namespace) or {}
        deployment = platform.get("apps/v1", "Deployment", names.deployment, names.namespace) or {}
        state[org] = ((config_map.get("data") or {}).get(CHAINCODE_ID_KEY), deployment["spec"]["template"],
                      int(deployment["metadata"]["generation"]))
    return state


def _tls_secrets(platform: KubernetesCluster) -> dict[str, dict[str, Any] | None]:
    """org → its chaincode TLS Secret (None: there is none)."""
    found = {}
    for org in ORGS:
        names = chaincode_names(platform.profile, org)
        found[org] = platform.get("v1", "Secret", names.tls_secret, names.namespace)
    return found


@pytest.fixture
def settings(tmp_path: Path, gx_kernel: str) -> RunbookSettings:
    return RunbookSettings(runs_dir=tmp_path / "runs", kernel_name=gx_kernel)


def test_env_devnet_without_the_fabric_network_file_is_refused_naming_the_parameter(tmp_path: Path) -> None:
    settings = RunbookSettings(runs_dir=tmp_path / "runs")
    with pytest.raises(InvalidParameter) as caught:
        run(RUNBOOK, {"env": "devnet", "kubeconfig": "/nonexistent"}, settings=settings, progress=Progress(quiet=True))
    assert caught.value.parameter == "fabric_network_file" and "required when env is devnet" in str(caught.value)
    assert not settings.runs_dir.exists()


def test_what_cannot_be_reached_is_named_with_how_to_fix_it(world: World, tmp_path: Path) -> None:
    fabric, kubeconfig, addresses = world.fabric, world.kubeconfig, world.addresses
    # Validation refuses a missing network file up front; this one goes away between validation and the run.
    gone = tmp_path / "nope.json"
    gone.write_text("{}")
    missing = _params(fabric, kubeconfig, addresses, fabric_network_file=str(gone))
    gone.unlink()
    assert "cannot read the Fabric network file" in _why(missing)
    # A kubeconfig whose server is a closed loopback port.
    dead = tmp_path / "dead-kubeconfig.yaml"
    dead.write_text(kubeconfig.read_text().replace(world.platform.api.configuration.host,
                                                   f"https://127.0.0.1:{free_port()}"))
    reason = _why(_params(fabric, dead, addresses))
    assert "does not answer" in reason and "kubeconfig" in reason
    other = _params(fabric, kubeconfig, {}, chaincode_name="gxother")
    reason = _why(other)
    assert "deployment fabric/gxother-org1-devnet does not exist" in reason and "k8s/overlays/devnet" in reason


def test_the_default_package_address_is_the_orgs_service(world: World) -> None:
    params = _params(world.fabric, world.kubeconfig, {})
    operator = _operator(params)
    assert isinstance(operator, KubernetesChaincodeOperator), operator
    assert {s.org_key: s.address for s in operator.servers} == {
        "org1": "gxtv3-org1-devnet.fabric:9999", "org2": "gxtv3-org2-devnet.fabric:9999"}
    assert {s.org_key: s.msp_id for s in operator.servers} == {"org1": "Org1MSP", "org2": "Org2MSP"}


def test_dry_run_shows_the_plan_and_changes_nothing(world: World, settings: RunbookSettings) -> None:
    committed, cluster = _committed(world.fabric), _cluster_state(world.platform)
    summary = _run(world, settings, dry_run=True)
    assert summary["passed"] and summary["dry_run"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    assert set(_steps(summary).values()) == {"would change (dry run)"}
    assert _steps(summary)["restart the chaincode servers"] == "would change (dry run)"
    (_, sequence) = committed["org1"] or ("", 0)
    assert f"version {NEW_VERSION}, sequence {sequence + 1}" in summary["outputs"]
    assert all(pkg in summary["outputs"] for pkg in world.new_ids.values())
    checks = _checks(summary)
    assert checks["platform available"]["status"] == "pass"
    assert checks["dry run changed nothing: committed definition"]["status"] == "pass"
    assert checks["dry run changed nothing: chaincode servers' package IDs"]["status"] == "pass"
    assert "is not the node `gx k8s up` runs on this machine" in checks["chaincode image"]["detail"]
    assert "keep their image" in checks["chaincode image"]["detail"]
    assert _committed(world.fabric) == committed
    assert _cluster_state(world.platform) == cluster
    assert _tls_secrets(world.platform) == {org: None for org in ORGS}
    installed = world.fabric.operator.status().installed
    assert not any(pkg in ids for pkg in world.new_ids.values() for ids in installed.values())


def test_real_run_commits_the_next_sequence_rolls_both_deployments_and_the_new_version_answers(
        world: World, settings: RunbookSettings) -> None:
    before = _committed(world.fabric)["org1"]
    assert before is not None and before[0] == "1.0"
    for server in world.stand_ins:
        servers.start(server, world.new_ids[server.org_key], timeout_s=60)
    summary = _run(world, settings, commit_timeout_s=60, restart_timeout_s=180)
    assert summary["passed"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    steps = _steps(summary)
    assert set(steps.values()) == {"changed"} and len(steps) == 6
    assert _committed(world.fabric) == {org: (NEW_VERSION, before[1] + 1) for org in ORGS}
    for org, (chaincode_id, template, _) in _cluster_state(world.platform).items():
        assert chaincode_id == world.new_ids[org]
        assert template["metadata"]["annotations"][PACKAGE_ID_ANNOTATION] == world.new_ids[org]
        names = chaincode_names(world.platform.profile, org)
        assert world.platform.rollout_state(names.deployment, names.namespace).complete
        live = [p for p in world.platform.chaincode_pods(org) if p.phase == "Running"]
        assert live and all(p.annotations[PACKAGE_ID_ANNOTATION] == world.new_ids[org] for p in live)
    # Each org's chaincode TLS Secret: the server's pair and the client CA of the material its package carries.
    operator = _operator(_params(world.fabric, world.kubeconfig, world.addresses))
    for server in operator.servers:
        assert server.tls is not None
        secret = _tls_secrets(world.platform)[server.org_key]
        assert secret is not None and secret["type"] == "kubernetes.io/tls"
        decoded = {key: base64.b64decode(value) for key, value in secret["data"].items()}
        assert decoded == {"ca.crt": server.tls.ca_cert.read_bytes(), "tls.crt": server.tls.server_cert.read_bytes(),
                           "tls.key": server.tls.server_key.read_bytes()}
    checks = _checks(summary)
    assert checks["chaincode servers run the new package"]["status"] == "pass"
    for org in ORGS:
        assert checks[f"{org}'s peer: GetMetadata lists TokenomicsContract:Mint"]["status"] == "pass"
        assert checks[f"committed sequence on {org}'s peer"]["status"] == "pass"


def test_second_run_reports_every_step_already_done_and_changes_nothing(world: World,
                                                                        settings: RunbookSettings) -> None:
    committed, cluster = _committed(world.fabric), _cluster_state(world.platform)
    assert committed["org1"] is not None and committed["org1"][0] == NEW_VERSION
    summary = _run(world, settings)
    assert summary["passed"], [c for c in summary["checks"] if c["status"] == "FAIL"]
    assert set(_steps(summary).values()) == {"already done"}
    assert "already committed" in summary["outputs"]
    assert _committed(world.fabric) == committed
    assert _cluster_state(world.platform) == cluster
