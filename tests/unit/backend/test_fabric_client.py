"""The Fabric client bundle: the Secret a submitter or projector pod reaches the peers with, and loading it."""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gxlib.backend.fabric_client import (
    FABRIC_READER_SECRET,
    NETWORK_FILE_NAME,
    READER_ROLES,
    FabricClientError,
    fabric_client_bundle,
    fabric_client_secret,
    load_network_file,
    with_host,
    write_bundle,
)
from gxlib.backend.settings import BackendSettings
from gxlib.config import DevnetSettings
from gxlib.devnet.crypto import generate_crypto
from gxlib.devnet.network import Devnet
from gxlib.fabric.connection import peer_endpoints_from_environment
from gxlib.fabric.gateway import Gateway
from gxlib.fabric.identity import identity_from_environment
from gxlib.progress import Progress


@pytest.fixture(scope="module")
def devnet_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A devnet's client environment with real crypto material (no node runs; nothing dials)."""
    devnet = Devnet(DevnetSettings(state_dir=tmp_path_factory.mktemp("fabric-client-devnet")),
                    progress=Progress(quiet=True))
    generate_crypto(devnet.layout)
    return devnet.environment()


def _is_private_key(data: bytes) -> bool:
    return b"PRIVATE KEY" in data


def test_the_bundle_holds_the_two_signing_identities_and_their_peer_only(devnet_environment: dict[str, Any]) -> None:
    files = fabric_client_bundle(devnet_environment)
    network = json.loads(files[NETWORK_FILE_NAME])
    roles = devnet_environment["roles"]
    assert network["roles"] == {"super_admin": roles["super_admin"], "service": roles["service"]}
    assert sorted(files) == sorted([NETWORK_FILE_NAME, "super_admin-cert.pem", "super_admin-key.pem",
                                    "service-cert.pem", "service-key.pem", "org1-tls-ca.pem"])
    # Two private keys, exactly the signing keys of those two identities: no admin, peer or TLS key.
    keys = {name for name, data in files.items() if _is_private_key(data)}
    assert keys == {"super_admin-key.pem", "service-key.pem"}
    by_name = {i["name"]: i for i in devnet_environment["identities"]}
    for role in ("super_admin", "service"):
        source = by_name[roles[role]]
        assert files[f"{role}-key.pem"] == Path(source["key_file"]).read_bytes()
        assert files[f"{role}-cert.pem"] == Path(source["cert_file"]).read_bytes()
    super_admin = next(i for i in network["identities"] if i["name"] == roles["super_admin"])
    assert super_admin["attributes"] == by_name[roles["super_admin"]]["attributes"] != {}
    # Only the gateway peer of the identities' org, no orderer, no host paths.
    assert [p["org"] for p in network["peers"]] == ["org1"]
    assert "orderer" not in network and "state_dir" not in network and "fabric" not in network
    assert network["channel"] == devnet_environment["channel"]
    named = [p["tls_ca_file"] for p in network["peers"]] + [
        i[key] for i in network["identities"] for key in ("cert_file", "key_file")]
    assert named and all("/" not in name for name in named)  # relative to the network file: a Secret is flat


def test_the_projectors_bundle_holds_the_service_identity_only_never_the_super_admin_key(
        devnet_environment: dict[str, Any], tmp_path: Path) -> None:
    files = fabric_client_bundle(devnet_environment, roles=READER_ROLES)
    assert sorted(files) == sorted([NETWORK_FILE_NAME, "service-cert.pem", "service-key.pem", "org1-tls-ca.pem"])
    super_admin_key = fabric_client_bundle(devnet_environment)["super_admin-key.pem"]
    assert super_admin_key not in files.values()
    assert {name for name, data in files.items() if _is_private_key(data)} == {"service-key.pem"}
    secret = fabric_client_secret(files, "backend-devnet", FABRIC_READER_SECRET)
    assert secret["metadata"]["name"] == "backend-fabric-reader"
    environment = load_network_file(write_bundle(files, tmp_path / "gx-fabric"))
    assert identity_from_environment(environment, "service").name == devnet_environment["roles"]["service"]
    assert set(environment["roles"]) == {"service"}


def test_a_host_rewrites_the_endpoints_and_keeps_the_tls_server_names(devnet_environment: dict[str, Any]) -> None:
    network = json.loads(fabric_client_bundle(devnet_environment, host="10.1.2.3")[NETWORK_FILE_NAME])
    org1 = next(p for p in devnet_environment["peers"] if p["org"] == "org1")
    port = org1["endpoint"].rsplit(":", 1)[1]
    assert network["peers"][0]["endpoint"] == f"10.1.2.3:{port}"
    assert network["peers"][0]["tls_server_name"] == org1["tls_server_name"]
    assert with_host("127.0.0.1:7051", "fd00::2") == "[fd00::2]:7051"


def test_the_secret_holds_the_bundle_under_valid_secret_keys(devnet_environment: dict[str, Any]) -> None:
    files = fabric_client_bundle(devnet_environment)
    secret = fabric_client_secret(files, "backend-devnet")
    assert secret["metadata"]["name"] == "backend-fabric-client"
    assert secret["metadata"]["namespace"] == "backend-devnet"
    assert all(re.fullmatch(r"[-._a-zA-Z0-9]+", key) for key in secret["data"])  # what Kubernetes accepts
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == files


def test_a_pod_loads_the_written_bundle_into_a_usable_gateway_environment(
        devnet_environment: dict[str, Any], tmp_path: Path) -> None:
    network_file = write_bundle(fabric_client_bundle(devnet_environment, host="10.1.2.3"), tmp_path / "gx-fabric")
    assert all(stat.S_IMODE(f.stat().st_mode) == 0o600 for f in network_file.parent.iterdir())
    environment = load_network_file(network_file)
    for role in ("super_admin", "service"):
        signing = identity_from_environment(environment, role)
        assert signing.name == devnet_environment["roles"][role]
    gateway = Gateway.from_environment(environment, "service")
    assert gateway.endpoint.address.startswith("10.1.2.3:")
    assert gateway.endpoint.server_name == peer_endpoints_from_environment(devnet_environment)["org1"].server_name


def test_a_missing_network_file_is_an_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(FabricClientError, match=f"cannot read the Fabric network file {tmp_path / 'nope.json'}"):
        load_network_file(tmp_path / "nope.json")


def test_a_network_file_without_a_key_names_the_file_and_the_key(
        devnet_environment: dict[str, Any], tmp_path: Path) -> None:
    network_file = write_bundle(fabric_client_bundle(devnet_environment), tmp_path)
    data = json.loads(network_file.read_text())
    del data["identities"][1]["key_file"]
    network_file.write_text(json.dumps(data))
    with pytest.raises(FabricClientError,
                       match=r"network.json is not valid: identities\[1\]\.key_file: Field required"):
        load_network_file(network_file)
    network_file.write_text("{not json")
    with pytest.raises(FabricClientError, match=f"{network_file} is not valid"):
        load_network_file(network_file)


def test_a_network_file_naming_an_absent_file_names_the_key(devnet_environment: dict[str, Any],
                                                           tmp_path: Path) -> None:
    network_file = write_bundle(fabric_client_bundle(devnet_environment), tmp_path)
    (tmp_path / "service-key.pem").unlink()
    with pytest.raises(FabricClientError, match=r"names service-key.pem at identities\[1\]\.key_file"):
        load_network_file(network_file)


def test_the_bundle_refuses_an_environment_without_the_services_identity(devnet_environment: dict[str, Any]) -> None:
    environment = {**devnet_environment, "roles": {"super_admin": devnet_environment["roles"]["super_admin"]}}
    with pytest.raises(FabricClientError, match="no identity for role 'service'"):
        fabric_client_bundle(environment)


def test_serve_reads_fabric_from_the_network_file_and_not_the_devnet(
        devnet_environment: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gxlib.backend.serve_cli import _fabric_context

    network_file = write_bundle(fabric_client_bundle(devnet_environment), tmp_path / "bundle")
    # A devnet state dir that does not exist: the pod has none, and nothing may look there.
    monkeypatch.setenv("GX_DEVNET_STATE_DIR", str(tmp_path / "no-devnet"))
    monkeypatch.setenv("GX_BACKEND_FABRIC_NETWORK_FILE", str(network_file))
    environment, channel, _ = _fabric_context(BackendSettings())
    assert channel == devnet_environment["channel"]
    assert environment["roles"]["service"] == devnet_environment["roles"]["service"]
    assert Path(environment["identities"][0]["cert_file"]).parent == network_file.parent
    assert not (tmp_path / "no-devnet").exists()


def test_gx_serve_submitter_with_a_missing_network_file_exits_with_the_file_named(tmp_path: Path) -> None:
    missing = tmp_path / "gx-fabric" / "network.json"
    env = {**os.environ, "GX_BACKEND_FABRIC_NETWORK_FILE": str(missing),
           "GX_BACKEND_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}", "COLUMNS": "400"}
    result = subprocess.run([sys.executable, "-m", "gxlib.cli", "serve", "submitter"], env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode != 0
    assert f"cannot read the Fabric network file {missing}" in " ".join(result.stderr.split())


def test_gx_backend_fabric_bundle_writes_the_files_or_prints_the_secret(
        devnet_environment: dict[str, Any], tmp_path: Path) -> None:
    from click.testing import CliRunner

    from gxlib.backend.cli import backend

    state_dir = devnet_environment["state_dir"]
    runner = CliRunner()
    printed = runner.invoke(backend, ["fabric-bundle", "--state-dir", state_dir, "--host", "10.1.2.3",
                                      "--namespace", "backend-testnet"])
    assert printed.exit_code == 0, printed.output
    secret = json.loads(printed.stdout)
    assert secret["metadata"] == {"name": "backend-fabric-client", "namespace": "backend-testnet",
                                  "labels": {"app.kubernetes.io/part-of": "gx-backend"}}
    network = json.loads(base64.b64decode(secret["data"][NETWORK_FILE_NAME]))
    assert network["peers"][0]["endpoint"].startswith("10.1.2.3:")
    written = runner.invoke(backend, ["fabric-bundle", "--state-dir", state_dir, "--out", str(tmp_path / "b")])
    assert written.exit_code == 0, written.output
    assert load_network_file(tmp_path / "b" / NETWORK_FILE_NAME)["roles"] == network["roles"]
