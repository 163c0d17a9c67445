"""`gx k8s images`: every catalog image with its reference and state; --json for scripts (kustomize overrides)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from gxlib.cli import cli

pytestmark = pytest.mark.skipif(
    shutil.which("go") is None or shutil.which("cc") is None, reason="image inputs name the Go and C toolchains"
)


def test_images_json_lists_every_image_as_missing_in_an_empty_cache(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["k8s", "images", "--json"], env={"GX_IMAGES_CACHE_ROOT": str(tmp_path)})
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["cache_root"] == str(tmp_path)
    by_name = {row["name"]: row for row in doc["images"]}
    assert set(by_name) >= {"pause", "prometheus", "backend", "postgresql"}
    assert all(row["state"] == "missing" and row["archive"] is None for row in doc["images"])
    prometheus = by_name["prometheus"]
    assert prometheus["reference"] == f"registry.gx.local/gx/prometheus:{prometheus['tag']}"
    assert prometheus["inputs"]["module"] == "github.com/prometheus/prometheus@v0.55.1"


def test_building_one_named_image_reports_it_built_then_cached(tmp_path: Path) -> None:
    env = {"GX_IMAGES_CACHE_ROOT": str(tmp_path)}
    first = CliRunner().invoke(cli, ["k8s", "images", "--build", "--json", "pause"], env=env)
    second = CliRunner().invoke(cli, ["k8s", "images", "--build", "--json", "pause"], env=env)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    [built] = json.loads(first.stdout)["images"]
    [cached] = json.loads(second.stdout)["images"]
    assert (built["state"], cached["state"]) == ("built", "cached")
    assert Path(cached["archive"]).is_file()


def test_an_unknown_image_name_is_refused_with_the_known_names(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["k8s", "images", "grafana"], env={"GX_IMAGES_CACHE_ROOT": str(tmp_path)})
    assert result.exit_code != 0
    assert "known images" in result.output + str(result.exception)


def test_an_image_without_a_build_is_shown_as_not_built(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["k8s", "images", "pause"], env={"GX_IMAGES_CACHE_ROOT": str(tmp_path)})
    assert result.exit_code == 0, result.output
    assert result.stdout.rstrip().endswith("not built")
    assert "unpacked -" not in result.stdout


def test_prune_removes_an_old_tag_and_says_what_it_freed(tmp_path: Path) -> None:
    env = {"GX_IMAGES_CACHE_ROOT": str(tmp_path)}
    built = CliRunner().invoke(cli, ["k8s", "images", "--build", "--json", "pause"], env=env)
    assert built.exit_code == 0, built.output
    old = tmp_path / "pause" / "00000000000000aa"  # a build of inputs the catalog no longer has
    old.mkdir()
    (old / "image.oci.tar").write_bytes(b"\0" * 2 * 1024 * 1024)
    result = CliRunner().invoke(cli, ["k8s", "images", "--prune", "pause"], env=env)
    assert result.exit_code == 0, result.output
    assert "pruned pause:00000000000000aa (2.0 MiB)" in result.stdout
    assert "freed 2.0 MiB" in result.stdout
    assert not old.exists()
    [row] = json.loads(CliRunner().invoke(cli, ["k8s", "images", "--json", "pause"], env=env).stdout)["images"]
    assert row["state"] == "cached"  # the current build is kept
