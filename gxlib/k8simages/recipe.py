"""What an image is built from and how: the protocol every image of the catalog follows.

A recipe names its inputs (source files' digests, a Go module version, a Debian suite and package list, the
compiler it uses); the sha256 over them is the image's *input digest*, and the image's tag is taken from it.
So an image is rebuilt exactly when something it is built from changes, and two machines with the same inputs
agree on the tag.

    recipe = PauseRecipe(cc="cc")
    recipe.reference()  # registry.gx.local/gx/pause:<16 hex of the input digest>
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gxlib.k8simages.layer import LayerBlob
from gxlib.k8simages.oci import ImageConfig, ImageReference, canonical_json
from gxlib.progress import Progress

REGISTRY = "registry.gx.local/gx"
# Bumped when the way images are assembled changes (layer format, config defaults): every tag changes with it.
RECIPE_FORMAT = "1"
TAG_LENGTH = 16


@dataclass(frozen=True)
class ImageContent:
    """What a recipe's build produced: the layers (written under the build's work directory) and the config."""

    layers: tuple[LayerBlob, ...]
    config: ImageConfig


class ImageRecipe(Protocol):
    """One image of the catalog."""

    @property
    def name(self) -> str:
        """Short name (``pause``, ``backend``); the repository is ``registry.gx.local/gx/<name>``."""
        ...

    def inputs(self) -> Mapping[str, str]:
        """Every input by name, each as a digest or a pinned version (cheap: no build, no network)."""
        ...

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        """Build the image's layers under ``workdir`` (empty, removed afterwards)."""
        ...


def input_digest(recipe: ImageRecipe) -> str:
    """sha256 over the recipe's name, the recipe format and its inputs."""
    doc = {"format": RECIPE_FORMAT, "image": recipe.name, "inputs": dict(recipe.inputs())}
    return f"sha256:{hashlib.sha256(canonical_json(doc)).hexdigest()}"


def reference_of(recipe: ImageRecipe) -> ImageReference:
    """The full name and tag the image is imported under: the tag is the start of the input digest."""
    return ImageReference(f"{REGISTRY}/{recipe.name}", input_digest(recipe).split(":", 1)[1][:TAG_LENGTH])


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return f"sha256:{digest.hexdigest()}"


def tree_digest(root: Path, *, exclude: tuple[str, ...] = ()) -> str:
    """sha256 over the relative paths, modes and contents of the files under ``root`` (sorted)."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        if any(part in exclude for part in path.relative_to(root).parts):
            continue
        digest.update(f"{relative}\0{path.stat().st_mode & 0o111:o}\0{file_digest(path)}\n".encode())
    return f"sha256:{digest.hexdigest()}"
