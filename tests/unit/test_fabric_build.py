"""The Fabric build: pinned release, cache keyed by commit, a clear error without Go."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gxlib.config import FabricBuildSettings
from gxlib.devnet import binaries
from gxlib.devnet.binaries import (
    FABRIC_COMMANDS,
    FABRIC_RELEASE,
    FabricInstall,
    GoMissingError,
    build_fabric,
    fabric_commit,
    fabric_install,
)

# Fabric release -> commit, from the project's tags; a go.mod change must keep them in step.
KNOWN_RELEASE_COMMITS = {"2.5.9": "7c3876255bf0"}


def test_pinned_module_version_is_the_release_we_stamp() -> None:
    assert KNOWN_RELEASE_COMMITS[FABRIC_RELEASE] == fabric_commit()
    assert binaries.fabric_module_version().endswith(f"-{fabric_commit()}")


def test_cache_directory_is_keyed_by_commit_outside_the_repo(tmp_path: Path) -> None:
    install = fabric_install(FabricBuildSettings(cache_root=tmp_path))
    assert install.root == tmp_path / f"fabric-{fabric_commit()}"
    assert not install.is_complete()


def test_missing_go_is_a_clear_error_naming_what_to_install(tmp_path: Path) -> None:
    settings = FabricBuildSettings(cache_root=tmp_path, go_binary="/nonexistent/go")
    with pytest.raises(GoMissingError) as caught:
        build_fabric(settings)
    assert "Go was not found" in caught.value.message
    assert caught.value.hint is not None and "install Go 1.24 or newer" in caught.value.hint
    assert not (tmp_path / f"fabric-{fabric_commit()}").exists()


def test_built_binaries_report_the_pinned_release(fabric_install: FabricInstall) -> None:
    assert fabric_install.is_complete()
    for command in FABRIC_COMMANDS:
        assert fabric_install.binary(command).exists(), command
    version = subprocess.run([str(fabric_install.binary("peer")), "version"], capture_output=True, text=True,
                             check=True).stdout
    assert f"Version: {FABRIC_RELEASE}" in version
    assert f"Commit SHA: {fabric_commit()[:7]}" in version


def test_second_build_reuses_the_cache(fabric_install: FabricInstall) -> None:
    mtime = fabric_install.binary("peer").stat().st_mtime
    again = build_fabric(FabricBuildSettings(cache_root=fabric_install.root.parent))
    assert again.root == fabric_install.root
    assert fabric_install.binary("peer").stat().st_mtime == mtime
