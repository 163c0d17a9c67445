"""An image archive is an OCI image layout that `ctr images import` names by its full reference, reproducibly."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from gxlib.k8simages.errors import ImageError
from gxlib.k8simages.layer import LayerBlob, LayerEntry, write_layer
from gxlib.k8simages.oci import (
    MEDIA_CONFIG,
    MEDIA_INDEX,
    MEDIA_LAYER_GZIP,
    MEDIA_MANIFEST,
    ImageConfig,
    ImageReference,
    host_platform,
    write_archive,
    write_layout,
)
from tests.unit.k8simages.oci_archive import read_archive

REFERENCE = ImageReference("registry.gx.local/gx/demo", "0123456789abcdef")
CONFIG = ImageConfig(
    entrypoint=("/usr/bin/app",),
    cmd=("--serve",),
    env={"PATH": "/usr/bin", "APP_MODE": "server"},
    user="65534:65534",
    working_dir="/srv",
    exposed_ports=("8080", "9999/udp"),
    labels={"org.opencontainers.image.title": "demo"},
)


def _layers(tmp_path: Path) -> list[LayerBlob]:
    return [
        write_layer([LayerEntry.from_bytes("etc/passwd", b"nobody:x:65534:65534::/:/sbin/nologin\n")], tmp_path),
        write_layer([LayerEntry.from_bytes("usr/bin/app", b"binary", mode=0o755)], tmp_path),
    ]


def _archive(tmp_path: Path, config: ImageConfig = CONFIG, reference: ImageReference = REFERENCE) -> Path:
    image = write_layout(reference, config, _layers(tmp_path / "layers"), tmp_path / "layout")
    return write_archive(image.layout_dir, tmp_path / "image.oci.tar")


def test_archive_is_an_oci_layout_whose_descriptors_match_their_blobs(tmp_path: Path) -> None:
    read = read_archive(_archive(tmp_path))  # checks every digest and size on the way
    assert read.index["mediaType"] == MEDIA_INDEX and read.index["schemaVersion"] == 2
    assert read.index["manifests"][0]["mediaType"] == MEDIA_MANIFEST
    assert read.manifest["mediaType"] == MEDIA_MANIFEST
    assert read.manifest["config"]["mediaType"] == MEDIA_CONFIG
    assert [layer["mediaType"] for layer in read.manifest["layers"]] == [MEDIA_LAYER_GZIP] * 2
    diff_ids = [f"sha256:{hashlib.sha256(tar).hexdigest()}" for tar in read.layer_tars]
    assert read.config["rootfs"] == {"type": "layers", "diff_ids": diff_ids}
    with tarfile.open(fileobj=io.BytesIO(read.layer_tars[0])) as first:
        assert first.getnames() == ["etc", "etc/passwd"]


def test_index_names_the_manifest_by_full_reference_and_tag_for_the_host_platform(tmp_path: Path) -> None:
    [entry] = read_archive(_archive(tmp_path)).index["manifests"]
    assert entry["annotations"] == {
        "io.containerd.image.name": "registry.gx.local/gx/demo:0123456789abcdef",
        "org.opencontainers.image.ref.name": "0123456789abcdef",
    }
    os_name, arch = host_platform()
    assert entry["platform"] == {"os": os_name, "architecture": arch}


def test_image_config_carries_what_the_container_runs(tmp_path: Path) -> None:
    config = read_archive(_archive(tmp_path)).config
    assert config["config"] == {
        "Entrypoint": ["/usr/bin/app"],
        "Cmd": ["--serve"],
        "Env": ["PATH=/usr/bin", "APP_MODE=server"],
        "User": "65534:65534",
        "WorkingDir": "/srv",
        "ExposedPorts": {"8080/tcp": {}, "9999/udp": {}},
        "Labels": {"org.opencontainers.image.title": "demo"},
    }
    assert (config["os"], config["architecture"]) == host_platform()


def test_same_inputs_give_the_same_manifest_digest_and_the_same_archive_bytes(tmp_path: Path) -> None:
    first = _archive(tmp_path / "a")
    second = _archive(tmp_path / "b")
    assert read_archive(first).index == read_archive(second).index
    assert first.read_bytes() == second.read_bytes()


def test_a_changed_config_gives_another_manifest_digest(tmp_path: Path) -> None:
    plain = read_archive(_archive(tmp_path / "a")).index["manifests"][0]["digest"]
    changed = ImageConfig(entrypoint=("/usr/bin/app", "--other"))
    assert read_archive(_archive(tmp_path / "b", changed)).index["manifests"][0]["digest"] != plain


def test_writing_a_layout_again_replaces_it_whole(tmp_path: Path) -> None:
    write_layout(REFERENCE, CONFIG, _layers(tmp_path / "l1"), tmp_path / "layout")
    (tmp_path / "layout" / "blobs" / "sha256" / "stale").write_text("left over")
    write_layout(REFERENCE, CONFIG, _layers(tmp_path / "l2"), tmp_path / "layout")
    assert not (tmp_path / "layout" / "blobs" / "sha256" / "stale").exists()


@pytest.mark.parametrize(
    ("repository", "tag"),
    [
        ("registry.gx.local/gx/demo", "latest"),  # the kubelet would try to pull it
        ("gx/demo", "v1"),  # no registry host: the kubelet would look on docker.io
        ("registry.gx.local/gx/Demo", "v1"),
        ("registry.gx.local/gx/demo", "-v1"),
    ],
)
def test_references_the_kubelet_would_pull_or_reject_are_refused(repository: str, tag: str) -> None:
    with pytest.raises(ImageError) as caught:
        ImageReference(repository, tag)
    assert caught.value.reference == f"{repository}:{tag}"


def test_an_image_without_layers_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ImageError, match="at least one layer"):
        write_layout(REFERENCE, CONFIG, [], tmp_path / "layout")
