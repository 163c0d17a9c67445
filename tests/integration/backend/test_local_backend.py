"""The whole CQRS path on the real devnet: API → outbox → submitter → Fabric → events → projector → read models,
with the three services started by `gx backend up` as local processes."""

from __future__ import annotations

import socket
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from gxlib.backend.local import LocalBackend
from gxlib.backend.settings import BackendSettings
from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress
from tests.integration.backend.api_steps import post_command, wait_final, wait_projected_balance
from tests.integration.gx_fixtures import GxClient

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def backend(devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any]) -> Iterator[LocalBackend]:
    settings = BackendSettings(api_port=_free_port(), submitter_metrics_port=_free_port(),
                               projector_metrics_port=_free_port())
    local = LocalBackend(devnet, settings, Progress(quiet=True))
    local.up()
    try:
        yield local
    finally:
        local.down()


@pytest.fixture(scope="module")
def api(backend: LocalBackend) -> Iterator[httpx.Client]:
    token = next(iter(backend.api_tokens()))
    with httpx.Client(base_url=backend.services[0].url, headers={"Authorization": f"Bearer {token}"},
                      timeout=10) as client:
        yield client








def test_backend_up_reports_three_healthy_services(backend: LocalBackend) -> None:
    status = backend.status()
    assert [s.name for s in status.services] == ["api", "submitter", "projector"]
    assert status.all_healthy, status
    assert backend.up() == [], "a second `up` starts nothing"


def test_backend_up_keeps_its_token_database_and_logs_from_other_users(backend: LocalBackend) -> None:
    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    database = Path(make_url(backend.settings.database_url).database or "")
    assert mode(backend.token_file) == 0o600
    assert mode(database) == 0o600
    assert {s.name: mode(s.log_file) for s in backend.services} == dict.fromkeys(("api", "submitter", "projector"),
                                                                                  0o640)


def test_commands_reach_the_ledger_and_the_read_models(api: httpx.Client, super_admin: GxClient) -> None:
    user = f"cqrs-user-{int(time.time())}"
    created = wait_final(api, post_command(api, "CREATE_USER",
                                           {"userId": user, "countryCode": "US", "displayName": user},
                                           f"create-{user}"))
    assert created["status"] == "COMMITTED" and created["fabricTxId"]
    genesis = wait_final(api, post_command(api, "DISTRIBUTE_GENESIS", {"userId": user}, f"genesis-{user}"))
    assert genesis["status"] == "COMMITTED"
    ledger_balance = super_admin.balance(user)
    assert ledger_balance > 0
    wait_projected_balance(api, user, ledger_balance)
    profile = api.get(f"/api/v1/users/{user}").json()
    assert profile["countryCode"] == "US" and profile["genesisDistributed"] is True


def test_a_repeated_idempotency_key_returns_the_original_command(api: httpx.Client) -> None:
    payload = {"accountId": "cqrs-idem", "amount": 5, "remark": "once"}
    first = post_command(api, "MINT", payload, "idem-key-1")
    second = api.post("/api/v1/commands", json={"type": "MINT", "payload": payload, "idempotencyKey": "idem-key-1"})
    assert second.status_code == 202 and second.json()["commandId"] == first and second.json()["duplicate"] is True
    assert wait_final(api, first)["status"] == "COMMITTED"


def test_a_chaincode_rejection_lands_in_the_dlq_with_its_message(api: httpx.Client) -> None:
    command = wait_final(api, post_command(api, "BOOTSTRAP_SYSTEM", {}, f"second-bootstrap-{time.time()}"))
    assert command["status"] in ("FAILED", "DLQ")
    assert "system already bootstrapped" in (command["errorMessage"] or "")


def test_backend_down_leaves_no_service_process(devnet: Devnet, gx_deployed: DeployReport,
                                                bootstrapped: dict[str, Any]) -> None:
    settings = BackendSettings(api_port=_free_port(), submitter_metrics_port=_free_port(),
                               projector_metrics_port=_free_port(), database_url="sqlite:///" + str(
                                   devnet.layout.root / "backend-down-test.sqlite3"))
    local = LocalBackend(devnet, settings, Progress(quiet=True), root=devnet.layout.root / "backend-down-test")
    local.up()
    assert local.status().all_healthy
    local.down()
    assert all(processes.running_pid(s) is None for s in local.services)
    assert not local.status().all_healthy
