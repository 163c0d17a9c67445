"""The image cache: one OCI archive per image and input digest, built only when it is missing.

Layout under the cache root (``~/.cache/gxlib/images`` by default)::

    <name>/<tag>/image.oci.tar   the archive `ctr -n k8s.io images import` reads
    <name>/<tag>/record.json     reference, input digest and inputs, manifest digest, sizes, build time
    <name>/.lock                 serialises builds (and pruning) of one image between processes

    store = ImageStore(settings.cache_root)
    built = store.ensure(recipe, progress)  # cached, or built now; built.archive, built.reference
    store.prune(recipes)                    # removes the tags the recipes' inputs no longer produce
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gxlib.filelock import exclusive_lock
from gxlib.k8simages.oci import ImageReference, write_archive, write_layout
from gxlib.k8simages.recipe import ImageRecipe, input_digest, reference_of
from gxlib.progress import Progress

ARCHIVE_NAME = "image.oci.tar"
RECORD_NAME = "record.json"


@dataclass(frozen=True)
class BuiltImage:
    """A cached image: where its archive is and what it holds."""

    name: str
    repository: str
    tag: str
    input_digest: str
    inputs: dict[str, str]
    manifest_digest: str
    archive: Path
    compressed_size: int
    unpacked_size: int
    build_seconds: float

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}"

    def to_json(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["archive"] = str(self.archive)
        doc["reference"] = self.reference
        return doc


@dataclass(frozen=True)
class EnsuredImage:
    """An image after :meth:`ImageStore.ensure`: ``built`` is true when this call built it."""

    image: BuiltImage
    built: bool


@dataclass(frozen=True)
class PrunedEntry:
    """A cached build removed by :meth:`ImageStore.prune`: an old tag, or an interrupted build's work directory."""

    name: str
    tag: str
    path: Path
    size: int

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "tag": self.tag, "path": str(self.path), "size": self.size}


class ImageStore:
    """The cache of built images under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def entry_dir(self, reference: ImageReference) -> Path:
        return self.root / reference.repository.rsplit("/", 1)[1] / reference.tag

    def cached(self, recipe: ImageRecipe) -> BuiltImage | None:
        """The cached build of the recipe's current inputs, or None (missing, or its archive is gone)."""
        entry = self.entry_dir(reference_of(recipe))
        record_path = entry / RECORD_NAME
        archive = entry / ARCHIVE_NAME
        if not record_path.is_file() or not archive.is_file():
            return None
        try:
            doc = json.loads(record_path.read_text())
            doc.pop("reference", None)
            doc["archive"] = archive
            image = BuiltImage(**doc)
        except (ValueError, TypeError):
            return None  # a record from an older format: rebuild
        return image if image.input_digest == input_digest(recipe) else None

    def ensure(self, recipe: ImageRecipe, progress: Progress) -> EnsuredImage:
        """The cached image for the recipe's inputs; built first (under the image's lock) when missing."""
        reference = reference_of(recipe)
        existing = self.cached(recipe)
        if existing is not None:
            return EnsuredImage(existing, built=False)
        with exclusive_lock(self.root / recipe.name / ".lock"):
            existing = self.cached(recipe)  # another process may have built it while we waited
            if existing is not None:
                return EnsuredImage(existing, built=False)
            return EnsuredImage(self._build(recipe, reference, progress), built=True)

    def prune(self, recipes: Iterable[ImageRecipe]) -> list[PrunedEntry]:
        """Remove every cached build of these images except the one of their current inputs: older tags (the
        inputs changed since) and work directories that interrupted builds left. Each image is pruned under its
        build lock, so a build in progress is waited for, not removed. Directories of other names are left."""
        pruned: list[PrunedEntry] = []
        for recipe in recipes:
            image_dir = self.root / recipe.name
            if not image_dir.is_dir():
                continue
            current = reference_of(recipe).tag
            with exclusive_lock(image_dir / ".lock"):
                for entry in sorted(p for p in image_dir.iterdir() if p.is_dir()):
                    tag = entry.name.removeprefix(".build-")
                    if entry.name == current:
                        continue
                    size = _tree_size(entry)
                    shutil.rmtree(entry)
                    pruned.append(PrunedEntry(recipe.name, tag, entry, size))
        return pruned

    def _build(self, recipe: ImageRecipe, reference: ImageReference, progress: Progress) -> BuiltImage:
        entry = self.entry_dir(reference)
        workdir = entry.parent / f".build-{reference.tag}"
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
        started = time.monotonic()
        try:
            content = recipe.build(workdir / "work", progress)
            with progress.task(f"packing {reference} as an OCI archive"):
                oci = write_layout(reference, content.config, content.layers, workdir / "layout")
                entry.mkdir(parents=True, exist_ok=True)
                write_archive(oci.layout_dir, entry / ARCHIVE_NAME)
            image = BuiltImage(
                name=recipe.name,
                repository=reference.repository,
                tag=reference.tag,
                input_digest=input_digest(recipe),
                inputs=dict(recipe.inputs()),
                manifest_digest=oci.manifest_digest,
                archive=entry / ARCHIVE_NAME,
                compressed_size=oci.compressed_size,
                unpacked_size=oci.unpacked_size,
                build_seconds=round(time.monotonic() - started, 1),
            )
            # The record is written last: an interrupted build leaves no record, so it is built again.
            (entry / RECORD_NAME).write_text(json.dumps(image.to_json(), indent=2, sort_keys=True) + "\n")
            return image
        finally:
            shutil.rmtree(workdir, ignore_errors=True)


def _tree_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
