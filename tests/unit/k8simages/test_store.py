"""The image cache builds an image only when its inputs' digest has no archive yet."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from gxlib.k8simages.layer import LayerEntry, write_layer
from gxlib.k8simages.oci import ImageConfig
from gxlib.k8simages.recipe import ImageContent, reference_of
from gxlib.k8simages.store import ImageStore
from gxlib.progress import Progress
from tests.unit.k8simages.oci_archive import read_archive

QUIET = Progress(quiet=True)


class CountingRecipe:
    """A recipe whose single input is a version string; counts its builds."""

    name = "demo"

    def __init__(self, version: str = "1", fail: bool = False) -> None:
        self.version = version
        self.fail = fail
        self.builds = 0

    def inputs(self) -> Mapping[str, str]:
        return {"version": self.version}

    def build(self, workdir: Path, progress: Progress) -> ImageContent:
        self.builds += 1
        if self.fail:
            raise RuntimeError("compiler crashed")
        layer = write_layer([LayerEntry.from_bytes("VERSION", self.version.encode())], workdir)
        return ImageContent(layers=(layer,), config=ImageConfig(cmd=("/bin/true",)))


def test_first_ensure_builds_and_a_second_reuses_the_archive(tmp_path: Path) -> None:
    store, recipe = ImageStore(tmp_path), CountingRecipe()
    first = store.ensure(recipe, QUIET)
    second = store.ensure(recipe, QUIET)
    assert (first.built, second.built) == (True, False)
    assert recipe.builds == 1
    assert second.image == first.image
    assert read_archive(first.image.archive).index["manifests"][0]["annotations"]["io.containerd.image.name"] == (
        first.image.reference
    )


def test_tag_comes_from_the_input_digest_and_changes_with_the_inputs(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    old = store.ensure(CountingRecipe("1"), QUIET).image
    new_recipe = CountingRecipe("2")
    new = store.ensure(new_recipe, QUIET)
    assert new.built and new_recipe.builds == 1
    assert old.tag == old.input_digest.split(":")[1][:16]
    assert new.image.tag != old.tag
    assert new.image.reference == f"registry.gx.local/gx/demo:{new.image.tag}"


def test_the_record_says_what_the_image_was_built_from_and_how_big_it_is(tmp_path: Path) -> None:
    image = ImageStore(tmp_path).ensure(CountingRecipe("7"), QUIET).image
    record = json.loads((image.archive.parent / "record.json").read_text())
    assert record["inputs"] == {"version": "7"}
    assert record["reference"] == image.reference
    assert record["compressed_size"] > 0 and record["unpacked_size"] >= record["compressed_size"]


def test_a_failed_build_leaves_no_record_so_the_next_ensure_builds_again(tmp_path: Path) -> None:
    store, broken = ImageStore(tmp_path), CountingRecipe("3", fail=True)
    with pytest.raises(RuntimeError):
        store.ensure(broken, QUIET)
    assert store.cached(broken) is None
    assert list((tmp_path / "demo").glob(".build-*")) == []
    broken.fail = False
    assert store.ensure(broken, QUIET).built


def test_an_archive_deleted_from_the_cache_is_built_again(tmp_path: Path) -> None:
    store, recipe = ImageStore(tmp_path), CountingRecipe()
    store.ensure(recipe, QUIET).image.archive.unlink()
    assert store.ensure(recipe, QUIET).built
    assert recipe.builds == 2


def test_the_cache_entry_is_named_by_image_and_tag(tmp_path: Path) -> None:
    store, recipe = ImageStore(tmp_path), CountingRecipe()
    image = store.ensure(recipe, QUIET).image
    assert image.archive == tmp_path / "demo" / reference_of(recipe).tag / "image.oci.tar"


def test_prune_removes_the_tags_of_older_inputs_and_keeps_the_current_one(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    old = store.ensure(CountingRecipe("1"), QUIET).image
    current_recipe = CountingRecipe("2")
    current = store.ensure(current_recipe, QUIET).image
    pruned = store.prune([current_recipe])
    assert [(entry.name, entry.tag) for entry in pruned] == [("demo", old.tag)]
    assert pruned[0].size >= old.compressed_size  # what it freed: at least the archive
    assert not old.archive.exists()
    assert store.cached(current_recipe) == current  # the current build is untouched and still used
    assert store.prune([current_recipe]) == []  # a second prune has nothing to do


def test_prune_removes_an_interrupted_builds_work_directory_but_not_other_images(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    recipe = CountingRecipe("1")
    store.ensure(recipe, QUIET)
    leftover = tmp_path / "demo" / ".build-0123456789abcdef"
    (leftover / "work").mkdir(parents=True)
    (leftover / "work" / "half-written").write_bytes(b"x" * 10)
    other = tmp_path / "gx-test-busybox" / "0123456789abcdef"
    other.mkdir(parents=True)
    pruned = store.prune([recipe])
    assert [(entry.tag, entry.size) for entry in pruned] == [("0123456789abcdef", 10)]
    assert not leftover.exists() and other.is_dir()
