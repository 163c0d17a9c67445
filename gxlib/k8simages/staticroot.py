"""The base layer of an image that runs one static binary: users, groups, CA certificates, the directories the
manifests mount. Nothing else (no shell, no package manager, no libc).

    root = StaticRoot(directories=(OwnedDirectory("prometheus", uid=NOBODY, gid=NOBODY),), ca_certificates=True)
    layer_entries = root.entries()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from gxlib.k8simages.errors import ImageBuildError
from gxlib.k8simages.layer import LayerEntry
from gxlib.k8simages.recipe import file_digest

NOBODY = 65534
# Debian's bundle (package ca-certificates): the host's copy goes into the image, and its digest is an input.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_BUNDLE_PATH = "etc/ssl/certs/ca-certificates.crt"


@dataclass(frozen=True)
class OwnedDirectory:
    """A directory in the image with its owner and mode (a mount point the manifests use, or a data dir)."""

    path: str
    uid: int = 0
    gid: int = 0
    mode: int = 0o755


@dataclass(frozen=True)
class StaticRoot:
    """Users root and nobody (65534), their groups, ``/tmp``, and the listed directories; CA certificates on
    request (for a program that dials TLS endpoints whose CA is not mounted)."""

    directories: tuple[OwnedDirectory, ...] = ()
    ca_certificates: bool = False
    ca_bundle: Path = field(default=HOST_CA_BUNDLE)

    def passwd(self) -> bytes:
        return b"root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"

    def group(self) -> bytes:
        return b"root:x:0:\nnogroup:x:65534:\n"

    def inputs(self) -> Mapping[str, str]:
        described = ";".join(f"{d.path}:{d.uid}:{d.gid}:{d.mode:o}" for d in self.directories)
        inputs = {"root.directories": described, "root.users": "root,nobody", "root.layout": "1"}
        if self.ca_certificates:
            inputs["root.ca-certificates"] = file_digest(self._checked_bundle())
        return inputs

    def entries(self) -> list[LayerEntry]:
        entries = [
            LayerEntry.from_bytes("etc/passwd", self.passwd()),
            LayerEntry.from_bytes("etc/group", self.group()),
            LayerEntry.directory("tmp", mode=0o1777),
            LayerEntry.directory("root", mode=0o700),
        ]
        entries += [LayerEntry.directory(d.path, mode=d.mode, uid=d.uid, gid=d.gid) for d in self.directories]
        if self.ca_certificates:
            entries.append(LayerEntry.from_file(CA_BUNDLE_PATH, self._checked_bundle(), mode=0o644))
        return entries

    def _checked_bundle(self) -> Path:
        if not self.ca_bundle.is_file():
            raise ImageBuildError(
                "(static root)",
                f"reading the CA bundle {self.ca_bundle}",
                hint="install Debian's ca-certificates (scripts/system-packages.txt lists it)",
            )
        return self.ca_bundle
