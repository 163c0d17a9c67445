"""Our CCaaS external builder follows Fabric's detect/build/release contract."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from gxlib.devnet.binaries import FabricInstall

CONNECTION = {"address": "127.0.0.1:9999", "dial_timeout": "10s", "tls_required": False}


def _run(install: FabricInstall, step: str, *args: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(install.builder_dir / "bin" / step), *map(str, args)], capture_output=True, text=True,
                          check=False)


@pytest.fixture
def package(tmp_path: Path) -> tuple[Path, Path]:
    source, metadata = tmp_path / "src", tmp_path / "md"
    source.mkdir()
    metadata.mkdir()
    (source / "connection.json").write_text(json.dumps(CONNECTION))
    (metadata / "metadata.json").write_text(json.dumps({"type": "ccaas", "label": "gxtv3_1.0"}))
    return source, metadata


def test_detect_accepts_ccaas_and_refuses_other_types(fabric_install: FabricInstall,
                                                      package: tuple[Path, Path]) -> None:
    source, metadata = package
    assert _run(fabric_install, "detect", source, metadata).returncode == 0
    (metadata / "metadata.json").write_text(json.dumps({"type": "golang", "label": "x"}))
    refused = _run(fabric_install, "detect", source, metadata)
    assert refused.returncode != 0 and "not ccaas" in refused.stderr


def test_build_then_release_puts_connection_json_where_the_peer_reads_it(
        fabric_install: FabricInstall, package: tuple[Path, Path], tmp_path: Path) -> None:
    source, metadata = package
    output, release = tmp_path / "out", tmp_path / "release"
    assert _run(fabric_install, "build", source, metadata, output).returncode == 0
    assert _run(fabric_install, "release", output, release).returncode == 0
    assert json.loads((release / "chaincode" / "server" / "connection.json").read_text()) == CONNECTION


def test_build_refuses_a_package_without_an_address(fabric_install: FabricInstall, package: tuple[Path, Path],
                                                    tmp_path: Path) -> None:
    source, metadata = package
    (source / "connection.json").write_text(json.dumps({"dial_timeout": "10s"}))
    refused = _run(fabric_install, "build", source, metadata, tmp_path / "out")
    assert refused.returncode != 0 and "address is empty" in refused.stderr
