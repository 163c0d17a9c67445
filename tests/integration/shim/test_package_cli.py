"""Our CCaaS package and package ID agree with Fabric's `peer lifecycle chaincode` commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from gxlib.devnet.network import Devnet
from gxlib.fabric.lifecycle.package import ConnectionInfo, build_ccaas_package, package_id
from tests.integration.conftest import DeployedChaincode

pytestmark = pytest.mark.integration


def test_package_id_matches_peer_calculatepackageid(devnet: Devnet, tmp_path: Path) -> None:
    package = build_ccaas_package("gxtv3_1.1", ConnectionInfo(address="127.0.0.1:7052", dial_timeout="5s"))
    pkg_file = tmp_path / "gxtv3_1.1.tar.gz"
    pkg_file.write_bytes(package)
    out = devnet.peer_cli("org1").run("lifecycle", "chaincode", "calculatepackageid", str(pkg_file))
    assert out.strip() == package_id("gxtv3_1.1", package)


def test_installed_package_ids_are_ours(devnet: Devnet, test_chaincode: DeployedChaincode) -> None:
    for org, pkg_id in test_chaincode.package_ids.items():
        out = devnet.peer_cli(org).run("lifecycle", "chaincode", "queryinstalled")
        assert f"Package ID: {pkg_id}, Label: {test_chaincode.label}" in out
