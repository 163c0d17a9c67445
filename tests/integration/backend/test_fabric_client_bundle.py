"""A submitter and a projector that know Fabric only through the client bundle (what a pod's Secret holds):
started as local processes with GX_BACKEND_FABRIC_NETWORK_FILE and a devnet state directory that does not exist,
they commit commands signed by both identities and project their events."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gxlib.backend.fabric_client import NETWORK_FILE_NAME, fabric_client_bundle, write_bundle
from gxlib.backend.local import BackendService, LocalBackend
from gxlib.backend.settings import BackendSettings
from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress
from tests.integration.backend.api_steps import post_command, wait_final, wait_projected_balance
from tests.integration.gx_fixtures import GxClient

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BundleOnlyBackend(LocalBackend):
    """The three services as `gx backend up` starts them, except that the submitter and projector get the bundle's
    network file and every service gets a devnet state directory that is not there."""

    def __init__(self, devnet: Devnet, settings: BackendSettings, root: Path, network_file: Path) -> None:
        super().__init__(devnet, settings, Progress(quiet=True), root=root)
        self.network_file = network_file
        self.absent_devnet = root / "no-devnet-here"

    def _environment(self, service: BackendService) -> dict[str, str]:
        env = super()._environment(service)
        env["GX_DEVNET_STATE_DIR"] = str(self.absent_devnet)
        if service.service in ("submitter", "projector"):
            env["GX_BACKEND_FABRIC_NETWORK_FILE"] = str(self.network_file)
        return env


@pytest.fixture(scope="module")
def bundle_backend(devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any],
                   tmp_path_factory: pytest.TempPathFactory) -> Iterator[BundleOnlyBackend]:
    root = tmp_path_factory.mktemp("bundle-backend")
    files = fabric_client_bundle(devnet.environment(), host=devnet.layout.settings.host)
    network_file = write_bundle(files, root / "gx-fabric")
    settings = BackendSettings(api_port=_free_port(), submitter_metrics_port=_free_port(),
                               projector_metrics_port=_free_port(),
                               database_url=f"sqlite:///{root / 'gx-backend.sqlite3'}")
    local = BundleOnlyBackend(devnet, settings, root, network_file)
    local.up()
    try:
        yield local
    finally:
        local.down()








def test_services_with_only_the_bundle_commit_and_project_commands(bundle_backend: BundleOnlyBackend,
                                                                   super_admin: GxClient) -> None:
    network = json.loads((bundle_backend.network_file.parent / NETWORK_FILE_NAME).read_text())
    assert set(network["roles"]) == {"super_admin", "service"}
    token = next(iter(bundle_backend.api_tokens()))
    with httpx.Client(base_url=bundle_backend.services[0].url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as api:
        user = f"bundle-user-{time.time_ns()}"
        created = wait_final(api, post_command(api, "CREATE_USER", {"userId": user, "countryCode": "US",
                                                                    "displayName": user}, f"create-{user}"))
        assert created["status"] == "COMMITTED" and created["fabricTxId"], created
        genesis = wait_final(api, post_command(api, "DISTRIBUTE_GENESIS", {"userId": user}, f"genesis-{user}"))
        assert genesis["status"] == "COMMITTED", genesis  # signed as the service identity
        minted = wait_final(api, post_command(api, "MINT", {"accountId": user, "amount": 7, "remark": "bundle"},
                                              f"mint-{user}"))
        assert minted["status"] == "COMMITTED", minted  # signed as the super admin
        ledger_balance = super_admin.balance(user)
        assert ledger_balance > 7
        wait_projected_balance(api, user, ledger_balance)
    # Nothing looked for a devnet: its state directory setting pointed nowhere and nothing created it.
    assert not bundle_backend.absent_devnet.exists()
