"""What `gx demo --env devnet` hands the runbooks."""

from __future__ import annotations

from pathlib import Path

from gxlib.demo import RUNBOOKS, accepted_parameters
from gxlib.demo_k8s import CHAINCODE_ADDRESSING_VARIABLE, CLUSTER_STATE_DIR_VARIABLE, ClusterRun


def _run(tmp_path: Path) -> ClusterRun:
    return ClusterRun("devnet", tmp_path / "kubeconfig.yaml", tmp_path / "fabric-network.json", tmp_path / "devnet",
                      tmp_path / "cluster")


def test_every_runbook_is_pointed_at_the_cluster_with_env_devnet(tmp_path: Path) -> None:
    run = _run(tmp_path)
    for name in RUNBOOKS:
        parameters = accepted_parameters(name, run.parameters(name, drill=True))
        assert parameters["env"] == "devnet", name
        assert parameters["kubeconfig"] == str(tmp_path / "kubeconfig.yaml"), name
        # The API, its token and the backend's network come from the cluster: nothing local stands in for them.
        assert not {"api_url", "api_token", "submitter_metrics_url", "prometheus_url"} & set(parameters), name


def test_02_gets_the_devnet_document_with_its_admins_and_05_the_devnet_whose_peer_the_drill_stops(
        tmp_path: Path) -> None:
    run = _run(tmp_path)
    upgrade = accepted_parameters("02-upgrade-chaincode", run.parameters("02-upgrade-chaincode", drill=True))
    assert upgrade["fabric_network_file"] == str(tmp_path / "fabric-network.json")
    monitoring = accepted_parameters("05-validate-monitoring", run.parameters("05-validate-monitoring", drill=True))
    assert monitoring["devnet_state_dir"] == str(tmp_path / "devnet") and monitoring["breaker_drill"] is True
    assert run.parameters("05-validate-monitoring", drill=False)["breaker_drill"] is False
    assert run.drill_marker.parent == tmp_path / "devnet"


def test_the_runbooks_kernels_address_the_chaincode_by_cluster_ip_know_the_node_and_get_no_local_api_token(
        tmp_path: Path) -> None:
    run = _run(tmp_path)
    assert run.environ({"PATH": "/usr/bin", "GX_API_TOKEN": "local-admin-token"}) == {"PATH": "/usr/bin"}
    # The node's state dir: runbook 02 imports the chaincode image it builds into that node's containerd.
    assert run.kernel_environ() == {CHAINCODE_ADDRESSING_VARIABLE: "cluster-ip",
                                    CLUSTER_STATE_DIR_VARIABLE: str(tmp_path / "cluster")}
