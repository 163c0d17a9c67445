"""Which image runbook 02 rolls the chaincode Deployments to (``chaincode_image``): built and imported on this
machine's node, a given reference, or the Deployments' own — and ``build`` refused on any other cluster, naming the
parameter. No cluster: the node is a state directory with a kubeconfig (and, for "running", a socket file)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gxlib.errors import Unavailable
from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8simages.settings import ImageSettings
from gxlib.platform.chaincode_image import ImageSource, NodeImages, choose, parse_choice
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, prepare

NODE_API = "https://10.244.0.1:6443"
ELSEWHERE = "https://127.0.0.1:40123"


def _node(tmp_path: Path, *, running: bool = True, api: str = NODE_API) -> NodeImages:
    layout = ClusterLayout(tmp_path / "state")
    layout.kubeconfig.parent.mkdir(parents=True)
    layout.kubeconfig.write_text(yaml.safe_dump({"clusters": [{"name": "gx", "cluster": {"server": api + "/"}}]}))
    if running:
        layout.containerd_socket.parent.mkdir(parents=True, exist_ok=True)
        layout.containerd_socket.write_text("")
    return NodeImages(K8sClusterSettings(state_dir=layout.root), ImageSettings(cache_root=tmp_path / "images"),
                      Progress(quiet=True))


@pytest.mark.parametrize("value", ["auto", "build", "keep", "registry.example.com:5000/gx/chaincode:1.1",
                                   "gx/chaincode@sha256:" + "a" * 64, "chaincode:2550ad1b"])
def test_the_choices_and_image_references_are_accepted(value: str) -> None:
    assert parse_choice(value) == value


@pytest.mark.parametrize("value", ["", "Build", "chaincode", "gx chaincode:1.1", "gx/chaincode:"])
def test_anything_else_is_refused_naming_the_forms(value: str) -> None:
    with pytest.raises(ValueError, match="is not auto, build, keep or an image reference"):
        parse_choice(value)


def test_auto_on_this_machines_node_builds_the_catalog_image_for_the_chaincode_sources(tmp_path: Path) -> None:
    node = _node(tmp_path)
    image = choose("auto", NODE_API, node)
    assert image.source is ImageSource.BUILT_ON_NODE and image.node is node
    assert image.reference == node.reference
    assert image.reference.startswith("registry.gx.local/gx/chaincode:")
    assert choose("build", NODE_API + "/", node).reference == node.reference


def test_auto_elsewhere_keeps_the_deployments_image_and_says_which_clusters_it_compared(tmp_path: Path) -> None:
    image = choose("auto", ELSEWHERE, _node(tmp_path))
    assert image.source is ImageSource.KEPT and image.reference is None and image.node is None
    assert ELSEWHERE in image.reason and NODE_API in image.reason and "chaincode/Dockerfile" in image.reason


def test_a_node_whose_containerd_is_not_running_is_not_a_target(tmp_path: Path) -> None:
    assert choose("auto", NODE_API, _node(tmp_path, running=False)).source is ImageSource.KEPT


def test_build_on_another_cluster_is_refused_naming_the_parameter_and_the_ways_out(tmp_path: Path) -> None:
    with pytest.raises(Unavailable) as caught:
        choose("build", ELSEWHERE, _node(tmp_path))
    assert caught.value.parameter == "chaincode_image"
    assert "chaincode_image=<reference>" in caught.value.reason and "chaincode_image=keep" in caught.value.reason
    with pytest.raises(Unavailable, match="that one: none"):
        choose("build", ELSEWHERE, NodeImages(K8sClusterSettings(state_dir=tmp_path / "no-node")))


def test_keep_and_a_reference_need_no_node(tmp_path: Path) -> None:
    absent = NodeImages(K8sClusterSettings(state_dir=tmp_path / "no-node"))
    assert choose("keep", NODE_API, absent).reference is None
    given = choose("registry.example.com/gx/chaincode:1.1", ELSEWHERE, absent)
    assert (given.source, given.reference) == (ImageSource.GIVEN, "registry.example.com/gx/chaincode:1.1")


def test_runbook_02_takes_the_image_choice_off_local_and_refuses_it_on_local(tmp_path: Path) -> None:
    network = tmp_path / "network.json"
    network.write_text("{}")
    _, params = prepare("02-upgrade-chaincode", {"env": "devnet", "fabric_network_file": str(network),
                                                 "chaincode_image": " keep "})
    assert params.chaincode_image == "keep"  # type: ignore[attr-defined]
    with pytest.raises(InvalidParameter, match="chaincode_image"):
        prepare("02-upgrade-chaincode", {"env": "devnet", "fabric_network_file": str(network),
                                         "chaincode_image": "not an image"})
    with pytest.raises(InvalidParameter, match="env=local runs the chaincode servers as processes"):
        prepare("02-upgrade-chaincode", {"env": "local", "chaincode_image": "build"})
