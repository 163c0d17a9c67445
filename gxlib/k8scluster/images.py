"""The images the node itself needs, built by gxlib.k8simages (cached by input digest) and imported into
containerd's ``k8s.io`` namespace: the pause image (the CRI sandbox image) and CoreDNS (the cluster DNS)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gxlib.k8simages.catalog import coredns
from gxlib.k8simages.pause import ensure_pause_image
from gxlib.k8simages.settings import ImageSettings
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress


@dataclass(frozen=True)
class NodeImage:
    role: str  # "sandbox" or "dns"
    reference: str
    archive: Path


def node_images(settings: ImageSettings, progress: Progress) -> list[NodeImage]:
    """The pause and CoreDNS images, each built first when its inputs changed."""
    pause = ensure_pause_image(settings, progress)
    dns = ImageStore(settings.cache_root).ensure(coredns(settings), progress).image
    return [NodeImage("sandbox", pause.reference, pause.archive), NodeImage("dns", dns.reference, dns.archive)]
