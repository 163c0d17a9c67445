"""Fault drills R7–R10 (issue 13) on the real pipeline: the session devnet with gxtv3, the backend's three services as
local processes on a real PostgreSQL, a steady command load through the API — and a fault an operator will meet:
the database stopped (R8), the orderer killed (R9), a chaincode server killed (R10), the chaincode upgraded by
runbook 02 (R7). Each drill proves on the ledger that every accepted command took effect exactly once, and reports
its figures as one JSON line (``DRILL {...}`` on stdout with ``pytest -s``, and ``drills.jsonl`` in pytest's base
temporary directory, printed at the end of the session)."""

from __future__ import annotations

import datetime as dt
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gxlib.backend.api.problems import PROBLEM_JSON
from gxlib.backend.db import make_engine
from gxlib.backend.local import LocalBackend
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.settings import SubmitterSettings
from gxlib.chaincode.deploy import ChaincodeOperator, DeployReport
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress
from gxlib.runbook import RunbookFailed
from gxlib.runbook import run as run_runbook
from gxlib.runbook.settings import RunbookSettings
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.backend.harness import (
    CommandLoad,
    Refusal,
    alert_watch,
    alerts_during,
    api_client,
    assert_exactly_once,
    breaker_transitions,
    drill_figures,
    fund_transfer_accounts,
    gauge_max,
    kill_9_process,
    latency_by_window,
    make_backend,
    replay_report,
    report_drill,
    service,
    wait_projected,
    wait_until,
)
from tests.integration.gx_fixtures import GxClient
from tests.integration.runbook.test_runbooks_03_05 import deploy_retrying_races
from tests.unit.backend.dbfixtures import throwaway_postgres

pytestmark = pytest.mark.integration
SERVICES = ("api", "submitter", "projector")
RUNBOOK_02 = "02-upgrade-chaincode"
DB_OUTAGE_S = 15.0
# The submitter's production retry policy (the harness's default of 200 quick attempts suits kill -9 chaos, but would
# hide a fault that burns attempts).
PRODUCTION_RETRIES = {name: SubmitterSettings.model_fields[name].default
                      for name in ("max_attempts", "backoff_base_s", "backoff_max_s", "breaker_failure_threshold",
                                   "breaker_cooldown_s")}
NODE_DOWN_S = 15.0  # how long a killed orderer or chaincode server stays down before the operator restarts it
OUTAGE_STATUSES = frozenset({500, 502, 503, 504})  # what the load repeats (and records) while something is down


@pytest.fixture(scope="session")
def drill_record(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.getbasetemp() / "drills.jsonl"
    yield path
    if path.exists():
        print(f"\ndrill figures ({path}):\n{path.read_text()}")


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster, request: pytest.FixtureRequest) -> str:
    return postgres_cluster.create_database(f"gx_{request.node.name[5:30]}_{secrets.token_hex(3)}")


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A PostgreSQL cluster of this test alone (the drill stops it; the session's cluster serves other tests)."""
    with throwaway_postgres("gx-drill-postgres-") as cluster:
        yield cluster


def _keep_logs(local: LocalBackend, dest: Path) -> None:
    """Copy the services' logs out of the devnet (removed at the end of the session) for the post-mortem."""
    dest.mkdir(parents=True, exist_ok=True)
    for node in local.services:
        if node.log_file.exists():
            shutil.copy(node.log_file, dest / f"{node.name}.log")


def _pids(local: LocalBackend) -> dict[str, int | None]:
    return {name: processes.running_pid(service(local, name)) for name in SERVICES}


def _ask(client: httpx.Client, path: str) -> tuple[int, Refusal | None]:
    """The status of ``GET path`` and, unless it is 200, what was refused (status 0: the connection failed)."""
    try:
        response = client.get(path)
    except httpx.HTTPError as exc:
        return 0, Refusal(f"GET {path}", 0, "", f"{exc.__class__.__name__}: {exc}")
    return response.status_code, None if response.status_code == 200 else Refusal.of(f"GET {path}", response)


def _readyz_reason(client: httpx.Client) -> dict[str, Any]:
    try:
        response = client.get("/readyz")
    except httpx.HTTPError as exc:
        return {"status": 0, "content_type": "", "detail": f"{exc.__class__.__name__}: {exc}", "checks": None}
    body = response.json() if response.content else {}
    return {"status": response.status_code, "content_type": response.headers.get("content-type", ""),
            "detail": body.get("detail"), "checks": body.get("checks")}


def test_r8_postgresql_stopped_15s_under_load_answers_503_and_the_services_reconnect_losing_nothing(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        own_postgres: PostgresCluster, drill_record: Path) -> None:
    url = own_postgres.create_database("gx_drill_r8")
    engine = make_engine(url)
    local = make_backend(devnet, "backend-r8", url)
    local.up()
    tag = f"r8-{secrets.token_hex(3)}"
    during: list[tuple[str, int, Refusal | None]] = []
    readyz_down: list[dict[str, Any]] = []
    try:
        with api_client(local) as client:
            funded = fund_transfer_accounts(client, local, tag)
            pids_before = _pids(local)
            load = CommandLoad(client, tag, rate_per_s=5, transfer_accounts=tuple(funded),
                               retry_statuses=OUTAGE_STATUSES)
            started = time.monotonic()
            load.start()
            try:
                wait_until("the load's first commands", lambda: len(load.accepted) >= 10, 30)
                known = load.accepted[0].command_id
                own_postgres.stop()
                stopped = time.monotonic()
                try:
                    while time.monotonic() - stopped < DB_OUTAGE_S:
                        for path in (f"/api/v1/commands/{known}", f"/api/v1/accounts/{next(iter(funded))}",
                                     "/api/v1/system/status"):
                            status, refusal = _ask(client, path)
                            during.append((path, status, refusal))
                        readyz_down.append(_readyz_reason(client))
                        time.sleep(1.0)
                finally:
                    own_postgres.start()
                restored = time.monotonic()
                accepted_at_restore = len(load.accepted)
                # The services reconnect by themselves: new commands are taken in and committed after the restore.
                wait_until("20 commands accepted after the restore",
                           lambda: len(load.accepted) >= accepted_at_restore + 20, 60)
            finally:
                load.stop()
            duration_s = time.monotonic() - started
            local.wait_idle(timeout_s=180)
            pids_after = _pids(local)
            readyz_after = _readyz_reason(client)
        summary = assert_exactly_once(devnet, engine, load.accepted, super_admin, funded)
        checkpoint = wait_projected(devnet, engine, 120)
        replay = replay_report(devnet, url, engine)
        figures = drill_figures(
            engine, load.accepted, duration_s, outage_s=round(restored - stopped, 1),
            load_refused={f"{r.status} {r.content_type}": sum(1 for x in load.refused if x.status == r.status)
                          for r in load.refused},
            queries_during_outage={f"{status}": sum(1 for _, s, _ in during if s == status)
                                   for _, status, _ in during},
            readyz_during_outage=readyz_down[0] if readyz_down else None,
            services_restarted=[n for n in SERVICES if pids_after[n] != pids_before[n]],
            replay_events=replay.events, replay_differences=len(replay.differences))
        report_drill(drill_record, "R8 PostgreSQL stopped 15 s", figures)
    finally:
        local.down()
        engine.dispose()
        _keep_logs(local, drill_record.parent / "r8-logs")

    # While the database was down: every command and query answered 503 problem+json, never 500.
    refusals = [r for _, _, r in during if r is not None] + load.refused
    assert refusals, "nothing was refused while the database was down"
    assert {(r.status, r.content_type) for r in refusals} == {(503, PROBLEM_JSON)}, \
        sorted({(r.status, r.content_type, r.detail) for r in refusals})
    assert [s for _, s, _ in during if s == 200] == []
    assert any(r.request.startswith("POST") for r in load.refused), "no command was posted during the outage"
    # /readyz said why.
    assert readyz_down and all(r["status"] == 503 and r["checks"] == {"database": "unreachable"}
                               for r in readyz_down), readyz_down
    assert readyz_after["status"] == 200, readyz_after
    # Submitter and projector reconnected by themselves: the same processes, every command committed once.
    assert pids_after == pids_before and None not in pids_after.values(), (pids_before, pids_after)
    assert summary["commands"] == figures["accepted"] == figures["committed"]
    assert figures["dlq"] == 0, figures
    assert replay.checkpoint is not None and replay.checkpoint.position == checkpoint.position
    assert replay.differences == [], replay.differences[:10]


Fault = Callable[[], dict[str, Any]]


def _drill_under_load(drill: str, devnet: Devnet, super_admin: GxClient, database_url: str, fault: Fault,
                      record: Path, *, min_before: int = 10) -> dict[str, Any]:
    """Run ``fault`` (which breaks something and restores it, returning its own figures) under a steady command
    load, with the local monitoring stack watching; then prove every accepted command committed exactly once,
    report the figures and return them."""
    engine = make_engine(database_url)
    key = drill.split()[0].lower()
    local = make_backend(devnet, f"backend-{key}", database_url, **PRODUCTION_RETRIES)
    local.up()
    tag = f"{key}-{secrets.token_hex(3)}"
    try:
        with alert_watch(devnet, local, record.parent / f"{key}-monitoring") as stack, api_client(local) as client:
            funded = fund_transfer_accounts(client, local, tag)
            pids_before = _pids(local)
            log_offset = service(local, "submitter").log_file.stat().st_size
            load = CommandLoad(client, tag, rate_per_s=5, transfer_accounts=tuple(funded),
                               retry_statuses=OUTAGE_STATUSES)
            window_start, started = time.time(), time.monotonic()
            load.start()
            try:
                wait_until("the load's first commands", lambda: len(load.accepted) >= min_before, 30 + min_before)
                fault_figures = fault()
                accepted_at_restore = len(load.accepted)
                wait_until("20 commands accepted after the restore",
                           lambda: len(load.accepted) >= accepted_at_restore + 20, 60)
            finally:
                load.stop()
            duration_s = time.monotonic() - started
            local.wait_idle(timeout_s=180)
            time.sleep(3)  # a few more scrapes and rule evaluations of the recovered state
            window_end = time.time()
            alerts = alerts_during(stack, window_start, window_end)
            peaks = {name: gauge_max(stack, f"max({name})", window_start, window_end)
                     for name in ("circuit_breaker_state", "outbox_pending_commands", "outbox_dlq_commands",
                                  "projector_lag_milliseconds")}
            errors = gauge_max(stack, 'sum(increase(fabric_transaction_submissions_total{status="error"}[1m]))',
                               window_start, window_end)
        windows = fault_figures.pop("windows", None)
        if windows:
            fault_figures["latency_by_window"] = latency_by_window(engine, load.accepted, windows)
        figures = drill_figures(
            engine, load.accepted, duration_s, **fault_figures, retry_policy=PRODUCTION_RETRIES,
            load_refused=len(load.refused), breaker_transitions=breaker_transitions(local, log_offset),
            peaks=peaks, fabric_submission_errors_max_per_min=errors, alerts=alerts,
            services_restarted=[n for n in SERVICES if _pids(local)[n] != pids_before[n]])
        report_drill(record, drill, figures)
        # Nothing lost, nothing doubled: every accepted command committed, its effect once on the ledger.
        summary = assert_exactly_once(devnet, engine, load.accepted, super_admin, funded)
    finally:
        local.down()
        engine.dispose()
        _keep_logs(local, record.parent / f"{key}-logs")
    assert summary["commands"] == figures["accepted"] and figures["dlq"] == 0, figures
    assert figures["services_restarted"] == [], figures
    return figures


def test_r9_orderer_killed_and_restarted_under_load_commits_every_command_exactly_once(
        devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any], super_admin: GxClient,
        pg_url: str, drill_record: Path) -> None:
    orderer = devnet.layout.orderer

    def kill_and_restart_the_orderer() -> dict[str, Any]:
        pid = kill_9_process(orderer, orderer.host, orderer.ports.values())
        killed = time.monotonic()
        time.sleep(NODE_DOWN_S)
        devnet.up()  # what an operator runs: starts the missing orderer and waits until it is healthy
        return {"killed": f"{orderer.name} pid {pid}", "down_s": round(time.monotonic() - killed, 1)}

    _drill_under_load("R9 orderer kill -9", devnet, super_admin, pg_url, kill_and_restart_the_orderer,
                                drill_record)
    assert processes.running_pid(orderer) is not None


def test_r10_chaincode_server_killed_and_restarted_under_load_commits_every_command_exactly_once(
        devnet: Devnet, gx_deployed: DeployReport, gx_operator: ChaincodeOperator, bootstrapped: dict[str, Any],
        super_admin: GxClient, pg_url: str, drill_record: Path) -> None:
    server = gx_operator.servers[0]

    def kill_and_restart_a_chaincode_server() -> dict[str, Any]:
        pid = kill_9_process(server, server.host, [server.port])
        killed = time.monotonic()
        time.sleep(NODE_DOWN_S)
        # No supervisor runs the chaincode servers locally: the operator re-runs the (idempotent) deploy of the
        # committed version, which starts the server that is missing.
        committed = gx_operator.committed()
        gx_operator.deploy(committed.version if committed else gx_deployed.version)
        return {"killed": f"{server.name} pid {pid}", "down_s": round(time.monotonic() - killed, 1)}

    _drill_under_load("R10 chaincode server kill -9", devnet, super_admin, pg_url,
                                kill_and_restart_a_chaincode_server, drill_record)
    assert gx_operator.status().answering


UPGRADE_OFFSET = BASE_TEST_OFFSET + 600  # R7's own devnet (other tests' devnets use +100 … +500)


@pytest.fixture(scope="module")
def upgrade_devnet(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[tuple[Devnet, GxClient]]:
    """A devnet of R7 alone, with gxtv3 1.0 deployed and bootstrapped, and a super-admin client.

    Not the session devnet: upgrading its gxtv3 in place would move the committed version and sequence under
    later tests that check them (tests/integration/chaincode/test_deploy.py), and the local chaincode servers of
    a second chaincode name would take the same per-org ports as gxtv3's."""
    devnet = make_devnet(tmp_path_factory.mktemp("devnet-r7"), UPGRADE_OFFSET)
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    client: GxClient | None = None
    try:
        devnet.up()
        deploy_retrying_races(operator)
        client = GxClient(devnet, "super_admin")
        client.submit("AdminContract:BootstrapSystem")
        yield devnet, client
    finally:
        if client is not None:
            client.close()
        operator.stop_servers()
        devnet.down(purge=True)


def test_r7_runbook_02_upgrades_1_0_to_1_1_to_1_2_under_load_commits_every_command_exactly_once(
        upgrade_devnet: tuple[Devnet, GxClient], postgres_cluster: PostgresCluster, gx_kernel: str,
        drill_record: Path) -> None:
    devnet, super_admin = upgrade_devnet
    url = postgres_cluster.create_database(f"gx_drill_r7_{secrets.token_hex(3)}")
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    runs = drill_record.parent / "r7-runbook-runs"
    summaries: dict[str, dict[str, Any]] = {}

    def upgrade_twice_with_runbook_02() -> dict[str, Any]:
        windows: dict[str, tuple[dt.datetime, dt.datetime]] = {}
        mark = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)  # "before 1.1": everything the load sent before the first run
        for version in ("1.1", "1.2"):
            started = dt.datetime.now(dt.UTC)
            windows[f"before {version}"] = (mark, started)
            try:
                record = run_runbook(RUNBOOK_02, {"devnet_state_dir": str(devnet.layout.root),
                                                  "chaincode_version": version},
                                     settings=RunbookSettings(runs_dir=runs, kernel_name=gx_kernel),
                                     progress=Progress(quiet=True))
                summaries[version] = record.summary or {}
            except RunbookFailed as failure:
                summaries[version] = failure.summary or {"passed": False, "error": str(failure)}
            mark = dt.datetime.now(dt.UTC)
            windows[f"during {version}"] = (started, mark)
        windows["after"] = (mark, dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10))
        committed = operator.committed()
        return {"upgrades": {v: {"passed": s.get("passed"),
                                 "steps": {step["name"]: step["outcome"] for step in s.get("steps", [])}}
                             for v, s in summaries.items()},
                "committed_after": f"{committed.version} sequence {committed.sequence}" if committed else None,
                "windows": windows}

    figures = _drill_under_load("R7 runbook 02 upgrade 1.0 → 1.1 → 1.2", devnet, super_admin, url,
                                upgrade_twice_with_runbook_02, drill_record, min_before=50)
    failed = {v: [c for c in s.get("checks", []) if c.get("status") == "FAIL"] for v, s in summaries.items()
              if not s.get("passed")}
    assert failed == {}, failed
    assert figures["committed_after"].startswith("1.2 sequence "), figures
