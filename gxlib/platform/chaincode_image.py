"""The image runbook 02 rolls the chaincode Deployments to on Kubernetes.

``chaincode_image`` (a runbook parameter) says where it comes from:

- ``build``: built from ``chaincode/Dockerfile`` by :mod:`gxlib.k8simages` (the tag is the start of the inputs'
  digest, so it is rebuilt only when the chaincode's sources change, and the same sources give the same image) and
  imported into the containerd of the node ``gx k8s up`` runs on this machine. That needs no registry, and is only
  possible when the runbook's cluster *is* that node (its API server is the node's); on any other cluster ``build``
  is refused, saying so.
- ``auto`` (the default): ``build`` when the cluster is this machine's node, else ``keep``.
- ``keep``: the Deployments keep the image they name (a cluster elsewhere pulls what CI built from
  ``chaincode/Dockerfile`` and pushed to the registry the overlay names).
- anything else is an image reference the nodes can pull (e.g. what CI pushed), set as is.

:class:`NodeImages` is the node as an image target; :func:`choose` turns the parameter and the cluster into a
:class:`ChaincodeImage`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

from gxlib.errors import Unavailable
from gxlib.k8scluster import containerd
from gxlib.k8scluster.layout import ClusterLayout
from gxlib.k8scluster.settings import K8sClusterSettings
from gxlib.k8simages.catalog import CHAINCODE_DOCKERFILE, chaincode
from gxlib.k8simages.recipe import reference_of
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress

AUTO, BUILD, KEEP = "auto", "build", "keep"
# name[:tag][@digest] with an optional registry host[:port]/ — what a pod spec's image may say.
_REFERENCE = re.compile(r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*"
                        r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$")


def parse_choice(value: str) -> str:
    """``auto``, ``build``, ``keep`` or an image reference; ValueError naming the forms otherwise."""
    if value in (AUTO, BUILD, KEEP) or (_REFERENCE.fullmatch(value) and (":" in value or "/" in value)):
        return value
    raise ValueError(f"{value!r} is not auto, build, keep or an image reference (registry/name:tag or "
                     "name@sha256:<digest>)")


class ImageSource(StrEnum):
    BUILT_ON_NODE = "built from chaincode/Dockerfile, imported into the node"
    GIVEN = "the reference chaincode_image gives"
    KEPT = "the image the Deployments name"


@dataclass(frozen=True)
class ChaincodeImage:
    """What the roll sets the chaincode container's image to: ``reference`` (None: left as it is), and why."""

    source: ImageSource
    reference: str | None
    reason: str
    node: NodeImages | None = None  # for BUILT_ON_NODE: where to build and import it


@dataclass(frozen=True)
class LoadedImage:
    reference: str
    built: bool  # False: the cached archive of the same inputs was used
    imported: bool  # False: the node had it already
    manifest_digest: str
    compressed_size: int
    archive: Path


class NodeImages:
    """The node ``gx k8s up`` runs on this machine (``GX_K8S_CLUSTER_*``), as the target of the chaincode image:
    built into the image cache (``GX_IMAGES_*``), imported into the node's containerd."""

    def __init__(self, cluster_settings: K8sClusterSettings | None = None,
                 image_settings: ImageSettings | None = None, progress: Progress | None = None) -> None:
        self.cluster_settings = cluster_settings or K8sClusterSettings()
        self.image_settings = image_settings or ImageSettings()
        self.layout = ClusterLayout(self.cluster_settings.state_dir)
        self.progress = progress or Progress()
        self.recipe = chaincode()

    @property
    def api_server(self) -> str | None:
        """The API server the node's admin kubeconfig names (None: no node's state here)."""
        try:
            document = yaml.safe_load(self.layout.kubeconfig.read_text())
            return str(document["clusters"][0]["cluster"]["server"]).rstrip("/")
        except (OSError, yaml.YAMLError, KeyError, IndexError, TypeError):
            return None

    def serves(self, api_server: str) -> bool:
        """Whether the cluster at ``api_server`` is this node, with its containerd running."""
        return self.api_server == api_server.rstrip("/") and self.layout.containerd_socket.exists()

    @property
    def reference(self) -> str:
        """The image's reference for the chaincode's current sources (no build needed to know it)."""
        return str(reference_of(self.recipe))

    def on_node(self) -> bool:
        return self.reference in containerd.image_names(self.cluster_settings, self.layout)

    def load(self) -> LoadedImage:
        """Build the image unless the cache has it for these inputs, and import it unless the node has it."""
        store = ImageStore(self.image_settings.cache_root)
        with self.progress.task(f"chaincode image {self.reference} from {CHAINCODE_DOCKERFILE} (built only when "
                                "its inputs changed)"):
            ensured = store.ensure(self.recipe, self.progress)
        with self.progress.task(f"importing {ensured.image.reference} into the node's containerd"):
            imported = containerd.import_image(self.cluster_settings, self.layout, ensured.image.archive,
                                               ensured.image.reference)
        image = ensured.image
        return LoadedImage(image.reference, ensured.built, imported, image.manifest_digest, image.compressed_size,
                           image.archive)


def choose(choice: str, api_server: str, node: NodeImages | None = None) -> ChaincodeImage:
    """The chaincode image for ``chaincode_image=choice`` on the cluster at ``api_server``. Unavailable (naming the
    parameter) when ``build`` is asked on a cluster that is not this machine's node."""
    node = node or NodeImages()
    if choice == KEEP:
        return ChaincodeImage(ImageSource.KEPT, None, "chaincode_image=keep: the Deployments keep their image")
    if choice not in (AUTO, BUILD):
        return ChaincodeImage(ImageSource.GIVEN, choice, f"chaincode_image={choice}: pulled by the nodes")
    if node.serves(api_server):
        return ChaincodeImage(ImageSource.BUILT_ON_NODE, node.reference,
                              f"the cluster at {api_server} is this machine's node (state "
                              f"{node.cluster_settings.state_dir}): built here and imported into its containerd",
                              node)
    elsewhere = (f"the cluster at {api_server} is not the node `gx k8s up` runs on this machine (that one: "
                 f"{node.api_server or 'none'}, state {node.cluster_settings.state_dir})")
    if choice == BUILD:
        raise Unavailable(f"chaincode_image=build: {elsewhere}, so the image cannot be loaded into its nodes — "
                          "build chaincode/Dockerfile in CI, push it and give chaincode_image=<reference>, or give "
                          "chaincode_image=keep, or point GX_K8S_CLUSTER_STATE_DIR at the node's state directory",
                          parameter="chaincode_image")
    return ChaincodeImage(ImageSource.KEPT, None,
                          f"{elsewhere}: the Deployments keep their image (CI builds chaincode/Dockerfile and pushes "
                          "it; chaincode_image=<reference> sets another)")
