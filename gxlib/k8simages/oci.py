"""Assemble an OCI image (image layout directory, and the tar of it that ``ctr images import`` reads).

An image is its layers (see :mod:`gxlib.k8simages.layer`), an image config (entrypoint, command, environment,
user, working directory, exposed ports, labels) and a reference: a full name and a tag. The index names the
manifest under ``io.containerd.image.name`` (the full reference, which ``ctr images import`` uses as the
image's name) and ``org.opencontainers.image.ref.name`` (the tag, as the image-layout spec has it). Every JSON
document is written with sorted keys and no spaces, and the config's ``created`` is fixed, so the same layers
and config always give the same manifest digest.

    ref = ImageReference("registry.gx.local/gx/pause", "0123abcd")
    image = write_layout(ref, ImageConfig(entrypoint=("/pause",)), [blob], cache / "layout")
    write_archive(image.layout_dir, cache / "pause.oci.tar")  # then: ctr -n k8s.io images import pause.oci.tar
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from gxlib.k8simages.errors import ImageError
from gxlib.k8simages.layer import LAYER_MTIME, LayerBlob

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
ANNOTATION_CONTAINERD_NAME = "io.containerd.image.name"
ANNOTATION_REF_NAME = "org.opencontainers.image.ref.name"
CREATED = "2000-01-01T00:00:00Z"

# A tag as the distribution spec allows it; a repository with a registry host first (the kubelet would try to
# pull a short name from docker.io).
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_REPOSITORY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9]+(?:[._-][a-z0-9]+)*)+$")


@dataclass(frozen=True)
class ImageReference:
    """A full image name and its tag: ``registry.gx.local/gx/pause`` and ``3f2a…``.

    ``latest`` is refused: the kubelet pulls an image tagged ``latest`` even when it is present locally.
    """

    repository: str
    tag: str

    def __post_init__(self) -> None:
        if not _REPOSITORY.match(self.repository) or "." not in self.repository.split("/", 1)[0]:
            raise ImageError(
                f"image repository {self.repository!r} is not a full name with a registry host",
                reference=str(self),
                hint="use e.g. registry.gx.local/gx/<name>",
            )
        if not _TAG.match(self.tag) or self.tag == "latest":
            raise ImageError(
                f"image tag {self.tag!r} is not a valid tag other than 'latest'",
                reference=str(self),
                hint="tag the image with its input digest",
            )

    def __str__(self) -> str:
        return f"{self.repository}:{self.tag}"


@dataclass(frozen=True)
class ImageConfig:
    """What a container of the image runs (the ``config`` object of the OCI image config)."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    user: str = ""
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    labels: Mapping[str, str] = field(default_factory=dict)
    stop_signal: str = ""

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {}
        if self.entrypoint:
            doc["Entrypoint"] = list(self.entrypoint)
        if self.cmd:
            doc["Cmd"] = list(self.cmd)
        if self.env:
            doc["Env"] = [f"{key}={value}" for key, value in self.env.items()]
        if self.user:
            doc["User"] = self.user
        if self.working_dir:
            doc["WorkingDir"] = self.working_dir
        if self.exposed_ports:
            doc["ExposedPorts"] = {_port_key(port): {} for port in self.exposed_ports}
        if self.labels:
            doc["Labels"] = dict(self.labels)
        if self.stop_signal:
            doc["StopSignal"] = self.stop_signal
        return doc


def _port_key(port: str) -> str:
    return port if "/" in port else f"{port}/tcp"


@dataclass(frozen=True)
class OciImage:
    """A written image layout: where it is, its digests and its size."""

    reference: ImageReference
    layout_dir: Path
    manifest_digest: str
    config_digest: str
    layers: tuple[LayerBlob, ...]

    @property
    def compressed_size(self) -> int:
        """Bytes of the gzipped layers (what an import transfers)."""
        return sum(layer.size for layer in self.layers)

    @property
    def unpacked_size(self) -> int:
        """Bytes of the layers' tars (about what the image takes in the runtime's snapshotter)."""
        return sum(layer.tar_size for layer in self.layers)


def host_platform() -> tuple[str, str]:
    """(os, architecture) in OCI terms for this machine: images built here run here."""
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    return "linux", arch


def canonical_json(doc: Mapping[str, Any]) -> bytes:
    """The one byte form of a document: sorted keys, no spaces (a digest depends on every byte)."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def config_document(config: ImageConfig, layers: Sequence[LayerBlob]) -> dict[str, Any]:
    os_name, arch = host_platform()
    return {
        "architecture": arch,
        "os": os_name,
        "created": CREATED,
        "config": config.to_json(),
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
        "history": [{"created": CREATED, "created_by": "gxlib.k8simages"} for _ in layers],
    }


def write_layout(
    reference: ImageReference, config: ImageConfig, layers: Sequence[LayerBlob], layout_dir: Path
) -> OciImage:
    """Write the OCI image layout for one image at ``layout_dir`` (replaced whole if it exists)."""
    if not layers:
        raise ImageError("an image needs at least one layer", reference=str(reference))
    os_name, arch = host_platform()
    config_bytes = canonical_json(config_document(config, layers))
    config_descriptor = _descriptor(MEDIA_CONFIG, config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": MEDIA_MANIFEST,
        "config": config_descriptor,
        "layers": [{"mediaType": MEDIA_LAYER_GZIP, "digest": layer.digest, "size": layer.size} for layer in layers],
    }
    manifest_bytes = canonical_json(manifest)
    manifest_descriptor = _descriptor(MEDIA_MANIFEST, manifest_bytes)
    index = {
        "schemaVersion": 2,
        "mediaType": MEDIA_INDEX,
        "manifests": [
            {
                **manifest_descriptor,
                "platform": {"architecture": arch, "os": os_name},
                "annotations": {ANNOTATION_CONTAINERD_NAME: str(reference), ANNOTATION_REF_NAME: reference.tag},
            }
        ],
    }

    layout_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=layout_dir.parent, prefix=f".{layout_dir.name}-"))
    try:
        blobs = staging / "blobs" / "sha256"
        blobs.mkdir(parents=True)
        for layer in layers:
            _place_blob(layer.path, blobs / _hex(layer.digest))
        (blobs / _hex(config_descriptor["digest"])).write_bytes(config_bytes)
        (blobs / _hex(manifest_descriptor["digest"])).write_bytes(manifest_bytes)
        (staging / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (staging / "index.json").write_bytes(canonical_json(index))
        if layout_dir.exists():
            shutil.rmtree(layout_dir)
        staging.replace(layout_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return OciImage(
        reference=reference,
        layout_dir=layout_dir,
        manifest_digest=manifest_descriptor["digest"],
        config_digest=config_descriptor["digest"],
        layers=tuple(replace(layer, path=layout_dir / "blobs" / "sha256" / _hex(layer.digest)) for layer in layers),
    )


def write_archive(layout_dir: Path, archive_path: Path) -> Path:
    """Tar the layout at ``layout_dir`` into ``archive_path`` (sorted, fixed mtimes): what ``ctr images import``
    and ``skopeo copy oci-archive:`` read."""
    if not (layout_dir / "index.json").is_file():
        raise ImageError(f"{layout_dir} is not an OCI image layout (no index.json)", reference=str(layout_dir))
    archive_path.parent.mkdir(parents=True, exist_ok=True)
    temp = archive_path.with_name(f".{archive_path.name}.part")
    paths = sorted(p for p in layout_dir.rglob("*"))
    with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
        for path in paths:
            info = tar.gettarinfo(str(path), arcname=path.relative_to(layout_dir).as_posix())
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = LAYER_MTIME
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            else:
                tar.addfile(info)
    temp.replace(archive_path)
    return archive_path


def _descriptor(media_type: str, content: bytes) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": f"sha256:{hashlib.sha256(content).hexdigest()}", "size": len(content)}


def _hex(digest: str) -> str:
    return digest.split(":", 1)[1]


def _place_blob(source: Path, target: Path) -> None:
    """Hard-link the blob into the layout when it is on the same file system; copy it otherwise."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
