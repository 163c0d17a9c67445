"""Read an OCI archive back the way a runtime would, checking every digest and size against its descriptor."""

from __future__ import annotations

import gzip
import hashlib
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ReadImage:
    index: dict[str, Any]
    manifest: dict[str, Any]
    config: dict[str, Any]
    layer_tars: list[bytes]
    names: list[str]


def read_archive(archive: Path) -> ReadImage:
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    [manifest_desc] = index["manifests"]
    manifest_bytes = _blob(files, manifest_desc)
    manifest = json.loads(manifest_bytes)
    config = json.loads(_blob(files, manifest["config"]))
    layer_tars = [gzip.decompress(_blob(files, layer)) for layer in manifest["layers"]]
    return ReadImage(index, manifest, config, layer_tars, names)


def _blob(files: dict[str, bytes], descriptor: dict[str, Any]) -> bytes:
    algorithm, hex_digest = descriptor["digest"].split(":")
    assert algorithm == "sha256"
    content = files[f"blobs/sha256/{hex_digest}"]
    assert hashlib.sha256(content).hexdigest() == hex_digest
    assert len(content) == descriptor["size"]
    return content
