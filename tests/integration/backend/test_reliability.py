"""Reliability of the real pipeline (issue 5, R1–R3 and replicas): the backend's three services as local
processes on a real PostgreSQL, the session devnet with gxtv3, a steady command load through the API — and
services killed with SIGKILL, a Gateway peer stopped, two submitters racing. Each test proves on the ledger
itself that every accepted command took effect exactly once."""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine

from gxlib.backend.db import make_engine
from gxlib.backend.eventsource import Checkpoint
from gxlib.backend.ledger_replay import fresh_database, replay_ledger
from gxlib.backend.local import LocalBackend
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.projector import Projector
from gxlib.chaincode.deploy import DeployReport
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from tests.integration.backend.harness import (
    CommandLoad,
    api_client,
    assert_exactly_once,
    chaos,
    free_port,
    fund_transfer_accounts,
    ledger_scan,
    make_backend,
    metric,
    service,
    wait_final,
    wait_until,
)
from tests.integration.gx_fixtures import GxClient

# Short leases and commit timeouts: the background Kubernetes build (tests/prebuild.py) is paused meanwhile.
pytestmark = [pytest.mark.integration, pytest.mark.quiet_machine]
KILLS = 20


@pytest.fixture
def pg_engine_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    yield postgres_cluster.create_database(f"gx_{request.node.name[5:30]}_{secrets.token_hex(3)}")


@pytest.fixture
def engine_of(pg_engine_url: str) -> Iterator[Engine]:
    engine = make_engine(pg_engine_url)
    yield engine
    engine.dispose()


def _running(local: LocalBackend) -> LocalBackend:
    local.up()
    return local


def test_r1_submitter_killed_20_times_under_load_commits_every_command_exactly_once(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        pg_engine_url: str, engine_of: Engine) -> None:
    local = _running(make_backend(devnet, "backend-r1", pg_engine_url))
    tag = f"r1-{secrets.token_hex(3)}"
    try:
        with api_client(local) as client:
            funded = fund_transfer_accounts(client, local, tag)
            load = CommandLoad(client, tag, rate_per_s=8, transfer_accounts=tuple(funded))
            load.start()
            try:
                killed = chaos(local, "submitter", KILLS)
            finally:
                load.stop()
            local.wait_idle(timeout_s=120)
        summary = assert_exactly_once(devnet, engine_of, load.accepted, super_admin, funded)
    finally:
        local.down()
    assert len(set(killed)) == KILLS
    assert summary["commands"] >= 100, summary


def _last_event_position(devnet: Devnet) -> tuple[int, int]:
    events, _ = ledger_scan(devnet, [])
    return (events[-1].block_number, events[-1].tx_index)


def test_r2_projector_killed_20_times_under_load_leaves_read_models_equal_to_a_full_replay(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        pg_engine_url: str, engine_of: Engine) -> None:
    local = _running(make_backend(devnet, "backend-r2", pg_engine_url))
    tag = f"r2-{secrets.token_hex(3)}"
    try:
        with api_client(local) as client:
            funded = fund_transfer_accounts(client, local, tag)
            load = CommandLoad(client, tag, rate_per_s=8, transfer_accounts=tuple(funded))
            load.start()
            try:
                chaos(local, "projector", KILLS)
            finally:
                load.stop()
            local.wait_idle(timeout_s=120)
            last = _last_event_position(devnet)
            projector = Projector(engine_of)

            def caught_up() -> bool:
                checkpoint = projector.checkpoint()
                return checkpoint is not None and checkpoint.position >= last

            wait_until(f"the projector to reach block {last[0]} tx {last[1]}", caught_up, 90)
            # The read model agrees with the chaincode for every account the load touched.
            for account in list(funded) + [f"{tag}-mint-{n}" for n in range(load.mint_accounts)]:
                assert client.get(f"/api/v1/accounts/{account}").json()["balance"] == super_admin.balance(account)
        environment = devnet.environment()
        with fresh_database(pg_engine_url) as target_url:
            target = make_engine(target_url)
            try:
                report = asyncio.run(replay_ledger(environment, environment["channel"], ChaincodeSettings().name,
                                                   engine_of, target))
            finally:
                target.dispose()
    finally:
        local.down()
    assert report.checkpoint is not None and report.checkpoint.position == projector.checkpoint().position  # type: ignore[union-attr]
    assert report.events >= len(load.accepted)
    assert report.differences == [], report.differences[:10]


def _breaker(local: LocalBackend) -> float | None:
    return metric(service(local, "submitter").url + "/metrics", "circuit_breaker_state")


def test_r3_dead_gateway_opens_the_breaker_keeps_commands_pending_and_the_backlog_drains_after_restore(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        pg_engine_url: str, engine_of: Engine) -> None:
    # Two attempts only, and an outage of many cool-downs: an outage must cost the waiting commands nothing
    # (half-open is probed with a status query, not with a command), so none may reach the DLQ.
    local = _running(make_backend(devnet, "backend-r3", pg_engine_url, breaker_failure_threshold=3,
                                  breaker_cooldown_s=2.0, commit_timeout_s=3.0, max_attempts=2))
    tag = f"r3-{secrets.token_hex(3)}"
    gateway_peer = devnet.layout.peer_of("org1")
    log = service(local, "submitter").log_file
    try:
        with api_client(local) as client:
            load = CommandLoad(client, tag)
            before = [load.post("MINT", {"accountId": f"{tag}-a{n}", "amount": 5, "remark": f"{tag}-m-{n}"},
                                f"{tag}-{n}") for n in range(5)]
            wait_final(client, before, timeout_s=60)
            assert _breaker(local) == 0
            log_offset = log.stat().st_size
            processes.stop_node(gateway_peer)
            try:
                backlog = [load.post("MINT", {"accountId": f"{tag}-a{n}", "amount": 5, "remark": f"{tag}-m-{n}"},
                                     f"{tag}-{n}") for n in range(5, 45)]
                wait_until("circuit_breaker_state 1 (open)", lambda: _breaker(local) == 1, 90)
                time.sleep(12)  # six cool-downs: half-open probes fail and the breaker opens again
                statuses = client.get("/api/v1/system/status").json()["outbox"]
                states = {client.get(f"/api/v1/commands/{c}").json()["status"] for c in backlog}
                assert states <= {"PENDING", "PROCESSING"}, states
                assert statuses["DLQ"] == 0 and statuses["FAILED"] == 0 and statuses["COMMITTED"] == 5, statuses
            finally:
                devnet.up()  # restarts the stopped peer
            wait_final(client, backlog, timeout_s=150)
            wait_until("circuit_breaker_state 0 (closed)", lambda: _breaker(local) == 0, 30)
        transitions = [json.loads(line).get("msg", "") for line in log.read_text()[log_offset:].splitlines()
                       if line.startswith("{") and "circuit breaker" in line]
        summary = assert_exactly_once(devnet, engine_of, load.accepted, super_admin, {})
    finally:
        local.down()
    states_seen = [t.removeprefix("circuit breaker ") for t in transitions]
    assert "open" in states_seen, transitions
    first_open = states_seen.index("open")
    assert "half_open" in states_seen[first_open:], transitions
    assert states_seen[-1] == "closed" and states_seen[-2] == "half_open", transitions
    assert summary["commands"] == 45


def test_two_submitter_processes_on_postgresql_commit_each_command_once_on_the_ledger(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        pg_engine_url: str, engine_of: Engine) -> None:
    local = _running(make_backend(devnet, "backend-replicas", pg_engine_url, batch_size=4, max_in_flight=8))
    replica = local.submitter_replica(2, free_port())
    tag = f"rep-{secrets.token_hex(3)}"
    try:
        local.start_extra(replica)
        with api_client(local) as client:
            load = CommandLoad(client, tag, rate_per_s=1000)
            ids = [load.post("MINT", {"accountId": f"{tag}-a{n}", "amount": n + 1, "remark": f"{tag}-m-{n}"},
                             f"{tag}-{n}") for n in range(150)]
            wait_final(client, ids, timeout_s=180)
        successes = [metric(s.url + "/metrics", "outbox_commands_processed_total", 'status="success"') or 0
                     for s in (service(local, "submitter"), replica)]
        summary = assert_exactly_once(devnet, engine_of, load.accepted, super_admin, {})
    finally:
        processes.stop_node(replica)
        local.down()
    assert all(s > 0 for s in successes), f"both replicas must have committed commands: {successes}"
    assert sum(successes) == len(ids) == summary["commands"]


def test_projector_replay_cli_reports_equal_read_models_and_exit_0(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], pg_engine_url: str,
        engine_of: Engine) -> None:
    from click.testing import CliRunner

    from gxlib.backend.cli import projector

    local = _running(make_backend(devnet, "backend-replay-cli", pg_engine_url))
    tag = f"cli-{secrets.token_hex(3)}"
    try:
        with api_client(local) as client:
            load = CommandLoad(client, tag)
            ids = [load.post("MINT", {"accountId": f"{tag}-a", "amount": 7, "remark": f"{tag}-{n}"}, f"{tag}-{n}")
                   for n in range(3)]
            wait_final(client, ids, timeout_s=60)
        last = _last_event_position(devnet)
        wait_until("the projector to catch up",
                   lambda: (Projector(engine_of).checkpoint() or Checkpoint(-1, -1)).position >= last, 60)
        args = ["replay", "--state-dir", str(devnet.layout.root), "--database-url", pg_engine_url, "--json"]
        result = CliRunner().invoke(projector, args, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        report = json.loads(result.output)
        assert report["equal"] is True and report["events"] >= 3 and report["differences"] == []
        # A read model changed behind the projector's back is reported, with exit 1.
        with engine_of.begin() as connection:
            connection.exec_driver_sql(f"UPDATE accounts SET balance = balance + 1 WHERE account_id = '{tag}-a'")
        result = CliRunner().invoke(projector, args[:-1], catch_exceptions=False)
        assert result.exit_code == 1, result.output
        assert f"DIFF accounts ('{tag}-a',)" in result.output
    finally:
        local.down()
