"""Session fixtures around the GX chaincode, shared by every integration directory (imported by conftest.py):
gxtv3 deployed with `gx chaincode deploy`'s own code path, Gateway clients as the super admin and the service
identity, and the one-time BootstrapSystem."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from gxchaincode.amounts import PRECISION
from gxchaincode.settings import BOOTSTRAP_POOLS
from gxlib.chaincode.deploy import ChaincodeOperator, DeployReport
from gxlib.config import ChaincodeSettings
from gxlib.devnet.network import Devnet
from gxlib.fabric.contract import SubmitResult
from gxlib.fabric.errors import EndorseError
from gxlib.fabric.sync import SyncContract, SyncGateway
from gxlib.progress import Progress


@pytest.fixture(scope="session")
def gx_operator(devnet: Devnet) -> ChaincodeOperator:
    return ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))


@pytest.fixture(scope="session")
def gx_deployed(gx_operator: ChaincodeOperator) -> Iterator[DeployReport]:
    """gxtv3 1.0 committed on the session devnet with its two chaincode servers running."""
    report = gx_operator.deploy("1.0")
    try:
        yield report
    finally:
        gx_operator.stop_servers()


_MISMATCH_ATTEMPTS = 5


def _result(submitted: SubmitResult) -> dict[str, Any] | None:
    return json.loads(submitted.result) if submitted.result else None


class GxClient:
    """Submit/evaluate GX functions as one devnet identity through the Gateway."""

    def __init__(self, devnet: Devnet, identity: str) -> None:
        env = devnet.environment()
        self.gateway = SyncGateway.from_environment(env, identity)
        self.network = self.gateway.network(env["channel"])
        self.contract: SyncContract = self.network.contract(ChaincodeSettings().name)

    def submit(self, function: str, *args: str) -> dict[str, Any] | None:
        """Submit and wait for the commit on the Gateway's peer.

        A submit that reads what the previous one wrote can be endorsed by the other org's peer before that peer
        has committed the previous block: the two endorsements then differ and nothing is decided. It is endorsed
        again with a new proposal, as the backend's submitter does (EndorsementMismatchError), at most
        ``_MISMATCH_ATTEMPTS`` times in all.
        """
        for attempt in range(1, _MISMATCH_ATTEMPTS):
            try:
                return _result(self.contract.submit(function, *args))
            except EndorseError as exc:
                if not exc.payloads_differ:
                    raise
                time.sleep(0.1 * attempt)
        return _result(self.contract.submit(function, *args))

    def evaluate(self, function: str, *args: str) -> Any:
        raw = self.contract.evaluate(function, *args)
        return json.loads(raw) if raw else None

    def balance(self, account: str) -> int:
        return int(self.evaluate("TokenomicsContract:GetBalance", account)["balance"])

    def close(self) -> None:
        self.gateway.close()


@pytest.fixture(scope="session")
def super_admin(devnet: Devnet, gx_deployed: DeployReport) -> Iterator[GxClient]:
    client = GxClient(devnet, "super_admin")
    yield client
    client.close()


@pytest.fixture(scope="session")
def service(devnet: Devnet, gx_deployed: DeployReport) -> Iterator[GxClient]:
    client = GxClient(devnet, "service")
    yield client
    client.close()


@pytest.fixture(scope="session")
def bootstrapped(super_admin: GxClient, service: GxClient) -> dict[str, Any]:
    """BootstrapSystem, after checking that the service identity may not do it."""
    with pytest.raises(EndorseError, match="requires role gx_super_admin"):
        service.submit("AdminContract:BootstrapSystem")
    assert service.evaluate("AdminContract:GetSystemStatus")["bootstrapped"] is False
    event = super_admin.submit("AdminContract:BootstrapSystem")
    assert event is not None
    # Checked here, right after the bootstrap: later tests move coins out of the pools.
    for pool, coins in BOOTSTRAP_POOLS:
        assert service.balance(pool) == coins * PRECISION, pool
    return event
