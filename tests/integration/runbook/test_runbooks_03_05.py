"""Runbooks 03 (bootstrap), 04 (validate CQRS) and 05 (validate monitoring) through `gxlib.runbook.run`, against
real devnets, real backend processes and a real Prometheus/Alertmanager — nothing faked.

Two networks, because the bootstrap happens once per ledger:
- ``fresh``: a throwaway devnet (port offset GX_TEST_PORT_OFFSET + 300) with gxtv3 deployed and its own backend
  and monitoring stack. Runbook 03 bootstraps this ledger for real, then runs again (already done) and dry;
  runbook 05's circuit-breaker drill stops and restarts this devnet's org1 peer, so the session devnet is never
  disturbed.
- the session ``devnet``, bootstrapped by the ``bootstrapped`` fixture the other integration tests share: 03 finds
  it bootstrapped and posts nothing; 04 runs its commands there.

Run: ``GX_TEST_PORT_OFFSET=21800 .venv/bin/pytest tests/integration/runbook/test_runbooks_03_05.py``.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, inspect, select, table

from gxlib.backend.client import BackendApiError, BackendClient, BackendUnreachable
from gxlib.backend.db import make_engine
from gxlib.backend.ids import LEDGER_ID_PATTERN
from gxlib.backend.local import LocalBackend
from gxlib.backend.settings import BackendSettings, SubmitterSettings
from gxlib.chaincode.deploy import ChaincodeOperator, DeployError, DeployReport
from gxlib.chaincode.servers import ChaincodeServerError
from gxlib.config import ChaincodeSettings
from gxlib.devnet.binaries import FabricInstall
from gxlib.devnet.network import Devnet
from gxlib.monitoring.settings import LocalStackSettings, LocalTargets, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress
from gxlib.runbook import InvalidParameter, RunbookFailed, RunRecord, run
from gxlib.runbook.checks import summary_text
from gxlib.runbook.settings import RunbookSettings
from gxlib.runbook.steps_backend import (
    BOOTSTRAP_POOLS,
    CommandTrace,
    LedgerReader,
    idempotency_key,
    ledger_height,
    pool_units,
)
from gxlib.runbook.validate_monitoring import notified
from tests.conftest import BASE_TEST_OFFSET, make_devnet
from tests.integration.gx_fixtures import GxClient

pytestmark = pytest.mark.integration

FRESH_OFFSET = BASE_TEST_OFFSET + 300
# Longer than FabricCircuitBreakerOpen's `for: 1m` plus the stack's 1 s evaluation: the breaker must stay open
# (state 1) until the alert fires; with the default 10 s cool-down it turns half-open between probes.
DRILL_BREAKER_COOLDOWN_S = 90.0


def free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        ports = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


@dataclass
class Cqrs:
    """A devnet with gxtv3, its backend processes, and (optionally) a monitoring stack scraping them."""

    devnet: Devnet
    backend: LocalBackend
    stack: LocalMonitoringStack | None = None

    @property
    def api_url(self) -> str:
        return self.backend.services[0].url

    @property
    def submitter_metrics_url(self) -> str:
        return self.backend.services[1].url

    def parameters(self, **extra: object) -> dict[str, object]:
        """Runbooks 03/04: where the devnet, the API and the submitter's metrics are (the token: its file)."""
        return {"devnet_state_dir": str(self.devnet.layout.root), "api_url": self.api_url,
                "submitter_metrics_url": self.submitter_metrics_url, **extra}

    def monitoring_parameters(self, **extra: object) -> dict[str, object]:
        """Runbook 05: the above and the monitoring stack's URLs and state directory."""
        assert self.stack is not None
        return self.parameters(prometheus_url=self.stack.prometheus_url, alertmanager_url=self.stack.alertmanager_url,
                               monitoring_state_dir=str(self.stack.layout.root), **extra)

    def api(self) -> BackendClient:
        return BackendClient(self.api_url, next(iter(self.backend.api_tokens())))

    def row_counts(self) -> dict[str, int]:
        engine = make_engine(self.backend.settings.database_url)
        try:
            with engine.connect() as connection:
                return {name: int(connection.execute(select(func.count()).select_from(table(name))).scalar_one())
                        for name in inspect(engine).get_table_names()}
        finally:
            engine.dispose()

    def state(self) -> tuple[int | None, dict[str, int]]:
        """(ledger height, rows per table): what a dry run must leave unchanged."""
        self.backend.wait_idle(30)
        return ledger_height(self.devnet), self.row_counts()


def start_backend(devnet: Devnet, **submitter: Any) -> LocalBackend:
    api_port, submitter_port, projector_port = free_ports(3)
    settings = BackendSettings(api_port=api_port, submitter_metrics_port=submitter_port,
                               projector_metrics_port=projector_port, submitter=SubmitterSettings(**submitter))
    backend = LocalBackend(devnet, settings, Progress(quiet=True))
    backend.up()
    _wait_projected_to_the_ledger(devnet, backend)
    return backend


def _wait_projected_to_the_ledger(devnet: Devnet, backend: LocalBackend, timeout_s: float = 180.0) -> None:
    """A new backend on a shared ledger first projects every earlier event; tests that compare read-model row
    counts before and after a run must start once that catch-up is over (the projector's checkpoint and the
    read models stop moving)."""
    token = next(iter(backend.api_tokens()))
    deadline = time.monotonic() + timeout_s
    last: Any = None
    stable = 0
    while time.monotonic() < deadline:
        try:
            status = httpx.get(f"{backend.services[0].url}/api/v1/system/status", timeout=5,
                               headers={"Authorization": f"Bearer {token}"}).json()
        except httpx.HTTPError:
            status = None
        stable = stable + 1 if status is not None and status == last else 0
        if stable >= 3:
            return
        last = status
        time.sleep(1.0)
    raise AssertionError(f"the projector did not catch up with the ledger within {timeout_s:.0f}s")


def start_stack(devnet: Devnet, backend: LocalBackend, state_dir: Path, *,
                namespace: str | None = None) -> LocalMonitoringStack:
    """A monitoring stack scraping ``backend``; its series carry ``namespace`` (default: backend-local)."""
    prometheus_port, alertmanager_port, webhook_port = free_ports(3)
    settings = backend.settings
    labels = {"namespace": namespace} if namespace is not None else {}
    config = MonitoringConfig(
        stack_state_dir=state_dir,
        local_targets=LocalTargets(**labels, api_metrics_port=settings.api_port,
                                   submitter_metrics_port=settings.submitter_metrics_port,
                                   projector_metrics_port=settings.projector_metrics_port),
        local_stack=LocalStackSettings(prometheus_port=prometheus_port, alertmanager_port=alertmanager_port,
                                       webhook_port=webhook_port, scrape_interval_s=1, evaluation_interval_s=1,
                                       group_wait_s=1, group_interval_s=5),
    )
    stack = LocalMonitoringStack(config, devnet.settings)
    stack.up()
    return stack


# Two races outside this module make a first deploy fail now and then; a re-run skips what is done:
# - commit readiness is asked of org1's peer, which may not yet have the block with org2's approval;
# - a chaincode server checked right after its fork, before exec, does not yet carry its marker variable
#   in /proc/<pid>/environ and is taken for "exited during start-up".
TRANSIENT_DEPLOY_ERRORS = ("have not approved", "exited during start-up")


def deploy_retrying_races(operator: ChaincodeOperator, attempts: int = 5) -> None:
    """``deploy("1.0")``, again after one of the transient failures above."""
    for attempt in range(attempts):
        try:
            operator.deploy("1.0")
            return
        except (DeployError, ChaincodeServerError) as exc:
            if not any(text in str(exc) for text in TRANSIENT_DEPLOY_ERRORS) or attempt == attempts - 1:
                raise
            time.sleep(1.0)


@pytest.fixture(scope="module")
def fresh(fabric_install: FabricInstall, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cqrs]:
    """A throwaway devnet whose ledger nobody has bootstrapped, with gxtv3, a backend and a monitoring stack."""
    devnet = make_devnet(tmp_path_factory.mktemp("devnet03"), FRESH_OFFSET)
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    backend: LocalBackend | None = None
    stack: LocalMonitoringStack | None = None
    try:
        devnet.up()
        deploy_retrying_races(operator)
        backend = start_backend(devnet, breaker_cooldown_s=DRILL_BREAKER_COOLDOWN_S)
        stack = start_stack(devnet, backend, tmp_path_factory.mktemp("monitoring05"))
        yield Cqrs(devnet, backend, stack)
    finally:
        if stack is not None:
            stack.down()
        if backend is not None:
            backend.down()
        operator.stop_servers()
        devnet.down(purge=True)


@pytest.fixture(scope="module")
def session_cqrs(devnet: Devnet, gx_deployed: DeployReport, bootstrapped: dict[str, Any]) -> Iterator[Cqrs]:
    """The session devnet, bootstrapped by the shared fixture, with a backend of this module's own."""
    # Earlier modules may have upgraded the chaincode or stopped its servers: redeploying the committed version
    # changes nothing on the ledger and starts the servers that are not running.
    operator = ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True))
    committed = operator.status()
    operator.deploy(committed.version or gx_deployed.version)
    backend = start_backend(devnet)
    try:
        yield Cqrs(devnet, backend)
    finally:
        backend.down()


def settings(tmp_path: Path, gx_kernel: str) -> RunbookSettings:
    return RunbookSettings(runs_dir=tmp_path / "runs", kernel_name=gx_kernel)


def run_runbook(name: str, parameters: dict[str, object], tmp_path: Path, gx_kernel: str, *,
                dry_run: bool | None = None) -> RunRecord:
    record = run(name, parameters, dry_run=dry_run, settings=settings(tmp_path, gx_kernel),
                 progress=Progress(quiet=True), environ={})
    show(record.summary)
    return record


def show(summary: dict[str, Any] | None) -> None:
    """Print the run's tables (pytest -s shows them; they are also in the record)."""
    assert summary is not None
    print(f"\n=== {summary['runbook']}{' (dry run)' if summary['dry_run'] else ''}")
    print(summary_text(summary["steps"], ("name", "outcome", "changes")))
    print(summary_text(summary["checks"], ("name", "status", "measured", "expected", "detail")))


def steps(record: RunRecord) -> dict[str, str]:
    assert record.summary is not None
    return {s["name"]: s["outcome"] for s in record.summary["steps"]}


def checks(record: RunRecord) -> dict[str, dict[str, str]]:
    assert record.summary is not None
    return {c["name"]: c for c in record.summary["checks"]}


# --- the pieces, without a network -----------------------------------------------------------------------------
def test_idempotency_keys_are_fixed_by_the_parameters_and_fit_the_api() -> None:
    key = idempotency_key("04-validate-cqrs", "gxchannel-local", "MINT", "user 1", 250)
    assert key == idempotency_key("04-validate-cqrs", "gxchannel-local", "MINT", "user 1", 250)
    assert key != idempotency_key("04-validate-cqrs", "gxchannel-local", "MINT", "user 1", 251)
    assert re.fullmatch(LEDGER_ID_PATTERN, key), "a key is a ledger ID (SPEC §9), as the API requires"
    long_a, long_b = idempotency_key("x", "y" * 500), idempotency_key("x", "y" * 499)
    assert len(long_a) == 128 and long_a != long_b and re.fullmatch(LEDGER_ID_PATTERN, long_a)
    spaced = idempotency_key("04", "user 1")
    assert spaced != idempotency_key("04", "user_1") and re.fullmatch(LEDGER_ID_PATTERN, spaced)


def test_a_trace_times_each_stage_from_the_outbox_timestamps() -> None:
    trace = CommandTrace("mint", "MINT", "k", "c1", duplicate=False)
    trace.accepted_at = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)
    trace.committed_at = trace.accepted_at + timedelta(milliseconds=420)
    trace.projected_at = trace.committed_at + timedelta(milliseconds=35)
    assert (trace.accepted_to_committed_ms, trace.committed_to_projected_ms) == (420.0, 35.0)


def test_only_a_notification_of_this_drill_counts() -> None:
    began = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)

    def record(starts: str, status: str = "firing") -> dict[str, Any]:
        return {"notification": {"alerts": [{"labels": {"alertname": "FabricCircuitBreakerOpen"}, "status": status,
                                             "startsAt": starts}]}}

    assert not notified([record("2026-01-01T11:00:00Z")], "FabricCircuitBreakerOpen", "firing", began)
    assert not notified([record("2026-01-01T12:00:30Z", "resolved")], "FabricCircuitBreakerOpen", "firing", began)
    assert notified([record("2026-01-01T12:00:30.5Z")], "FabricCircuitBreakerOpen", "firing", began)


def test_the_client_names_the_refusal_and_never_the_token() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/api/v1/users/"):
            return httpx.Response(404, json={"detail": "user x is not in the read model"})
        assert request.headers["Authorization"] == "Bearer s3cret"
        return httpx.Response(403, json={"title": "Forbidden", "detail": "command MINT needs role admin"})

    with BackendClient("http://api.test", "s3cret", transport=httpx.MockTransport(answer)) as api:
        assert api.user("x") is None
        with pytest.raises(BackendApiError) as caught:
            api.submit("MINT", {"accountId": "a", "amount": 1, "remark": "r"}, "k1")
    assert caught.value.status == 403 and caught.value.detail == "command MINT needs role admin"
    assert "s3cret" not in str(caught.value) and "api_token" in str(caught.value)


def test_an_api_that_is_not_running_is_reported_as_unreachable() -> None:
    (port,) = free_ports(1)
    with BackendClient(f"http://127.0.0.1:{port}", "t") as api:
        assert api.healthy()[0] is False
        with pytest.raises(BackendUnreachable, match="does not answer"):
            api.system_status()


# --- parameters and platforms (no network needed) --------------------------------------------------------------
@pytest.mark.parametrize(("name", "parameter", "value"), [
    ("03-bootstrap-system", "commit_timeout_s", "0"),
    ("03-bootstrap-system", "submitter_metrics_url", "127.0.0.1:9101"),
    ("04-validate-cqrs", "test_user_country", "DE"),
    ("04-validate-cqrs", "countries", "US,usa"),
    ("05-validate-monitoring", "alert_firing_timeout_s", "-5"),
    ("05-validate-monitoring", "breaker_drill", "sometimes"),
])
def test_an_invalid_parameter_stops_the_run_before_anything_runs(name: str, parameter: str, value: str,
                                                                 tmp_path: Path, gx_kernel: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        run(name, {parameter: value}, settings=settings(tmp_path, gx_kernel), progress=Progress(quiet=True),
            environ={})
    assert caught.value.parameter == parameter
    assert not (tmp_path / "runs").exists(), "no record: the notebook never started"


def test_the_breaker_drill_on_a_shared_kubernetes_env_is_refused_before_anything_runs(tmp_path: Path,
                                                                                       gx_kernel: str) -> None:
    with pytest.raises(InvalidParameter) as caught:
        run("05-validate-monitoring", {"env": "testnet", "breaker_drill": "true"},
            settings=settings(tmp_path, gx_kernel), progress=Progress(quiet=True), environ={})
    assert caught.value.parameter == "breaker_drill" and "testnet" in caught.value.message
    assert not (tmp_path / "runs").exists(), "no record: the notebook never started"


@pytest.mark.parametrize(("name", "raw", "missing"), [
    ("03-bootstrap-system", {"env": "testnet"}, "api_token"),
    ("04-validate-cqrs", {"env": "testnet", "api_url": "http://api.test"}, "api_token"),
])
def test_a_kubernetes_env_with_neither_the_parameters_nor_a_cluster_fails_naming_both_ways_and_posts_nothing(
        name: str, raw: dict[str, object], missing: str, tmp_path: Path, gx_kernel: str) -> None:
    # Off local, what api_url/api_token/fabric_network_file do not give comes from the env's cluster (issue 14);
    # with no cluster to ask either, the reachability check fails before any command is posted.
    with pytest.raises(RunbookFailed) as caught:
        run(name, raw, settings=settings(tmp_path, gx_kernel), progress=Progress(quiet=True),
            environ={}, kernel_environ={"KUBECONFIG": str(tmp_path / "absent-kubeconfig")})
    summary = json.loads((caught.value.record_dir / "summary.json").read_text())
    [check] = summary["checks"]
    assert check["status"] == "FAIL" and summary["steps"] == []
    assert missing in check["detail"] and "env=testnet" in check["detail"] and "kubeconfig" in check["detail"]


# --- 03 on a ledger nobody bootstrapped ------------------------------------------------------------------------
def test_03_dry_run_on_a_fresh_ledger_changes_nothing(fresh: Cqrs, tmp_path: Path, gx_kernel: str) -> None:
    before = fresh.state()
    record = run_runbook("03-bootstrap-system", fresh.parameters(), tmp_path, gx_kernel, dry_run=True)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "would change (dry run)"}
    assert fresh.state() == before


def test_03_bootstraps_through_the_api_and_verifies_ledger_and_read_model(fresh: Cqrs, tmp_path: Path,
                                                                          gx_kernel: str) -> None:
    record = run_runbook("03-bootstrap-system", fresh.parameters(commit_timeout_s=90), tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "changed"}
    found = checks(record)
    assert found["BOOTSTRAP_SYSTEM committed"]["status"] == "pass"
    assert found["BOOTSTRAP_SYSTEM committed"]["detail"].startswith("block ")
    for pool in BOOTSTRAP_POOLS:
        assert found[f"ledger {pool}"]["measured"] == f"{pool_units(pool)} units"
        assert found[f"read model mint {pool}"]["status"] == "pass"
    ledger = LedgerReader(fresh.devnet.environment(), fresh.devnet.settings.channel, "gxtv3")
    try:
        assert ledger.balance("SYSTEM_LOAN_POOL") == 100_000_000 * 100_000_000
    finally:
        ledger.close()
    with fresh.api() as api:
        assert {p.poolId: p.minted for p in api.pools()} == {p: pool_units(p) for p in BOOTSTRAP_POOLS}


def test_03_second_run_reports_already_bootstrapped_and_posts_nothing(fresh: Cqrs, tmp_path: Path,
                                                                      gx_kernel: str) -> None:
    before = fresh.state()
    record = run_runbook("03-bootstrap-system", fresh.parameters(), tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "already done"}
    assert checks(record)["BOOTSTRAP_SYSTEM committed"]["status"] == "skipped"
    assert fresh.state() == before, "no command posted, no block"


# --- 03 on the session ledger, bootstrapped by the shared fixture ------------------------------------------------
def test_03_on_an_already_bootstrapped_ledger_changes_nothing(session_cqrs: Cqrs, super_admin: GxClient,
                                                              tmp_path: Path, gx_kernel: str) -> None:
    # Pools live on after the bootstrap: a later Mint into one (legitimate for the super admin) must not make the
    # runbook call the bootstrap wrong.
    super_admin.submit("TokenomicsContract:Mint", "SYSTEM_LOAN_POOL", "7", "rb03 test: a later mint into a pool")
    _wait_projected_to_the_ledger(session_cqrs.devnet, session_cqrs.backend)
    before = session_cqrs.state()
    record = run_runbook("03-bootstrap-system", session_cqrs.parameters(projection_timeout_s=60), tmp_path,
                         gx_kernel)
    assert steps(record) == {"submit BOOTSTRAP_SYSTEM": "already done"}
    assert record.passed
    found = checks(record)
    assert found["ledger SYSTEM_LOAN_POOL"]["status"] == "skipped"
    assert found["read model mint SYSTEM_LOAN_POOL"]["status"] == "pass"
    assert found["read model mint SYSTEM_LOAN_POOL"]["expected"].startswith(">= ")
    assert session_cqrs.state() == before


# --- 04 -------------------------------------------------------------------------------------------------------
def test_04_dry_run_changes_nothing(session_cqrs: Cqrs, tmp_path: Path, gx_kernel: str) -> None:
    before = session_cqrs.state()
    record = run_runbook("04-validate-cqrs", session_cqrs.parameters(test_user_id="rb04-dry-user"), tmp_path,
                         gx_kernel, dry_run=True)
    assert record.passed
    assert set(steps(record).values()) <= {"would change (dry run)", "already done"}
    assert steps(record)["create the test user"] == "would change (dry run)"
    assert session_cqrs.state() == before


def test_04_defaults_validate_the_whole_path_then_a_second_run_is_already_done(session_cqrs: Cqrs, tmp_path: Path,
                                                                               gx_kernel: str) -> None:
    record = run_runbook("04-validate-cqrs", session_cqrs.parameters(), tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"initialise countries": "already done", "create the test user": "changed",
                             "distribute genesis": "changed", "mint to the test user": "changed"}
    found = checks(record)
    for kind in ("CREATE_USER", "DISTRIBUTE_GENESIS", "MINT"):
        assert found[f"{kind} committed → projected"]["status"] == "pass"
        assert found[f"{kind} accepted → committed"]["status"] == "pass"
    assert found["balance gx-runbook-test-user: read model == ledger"]["status"] == "pass"

    before = session_cqrs.state()
    again = run_runbook("04-validate-cqrs", session_cqrs.parameters(), tmp_path, gx_kernel)
    assert again.passed
    assert set(steps(again).values()) == {"already done"}
    assert checks(again)["per-stage timings"]["status"] == "skipped"
    assert session_cqrs.state() == before


def test_04_non_default_user_countries_and_mint_amount(session_cqrs: Cqrs, super_admin: GxClient, tmp_path: Path,
                                                       gx_kernel: str) -> None:
    # The session ledger is shared: other tests initialise countries too (the contract tests add DE and FR), so
    # take a country nobody has initialised yet — the runbook must then add it ("changed").
    with session_cqrs.api() as api:
        known = set(api.system_status().countries)
    country = next(code for code in ("NZ", "IS", "UY", "KE", "VN", "PE") if code not in known)
    parameters = session_cqrs.parameters(test_user_id="rb04-user-2", countries=f"{country},US",
                                         test_user_country=country, mint_amount=250, projection_slo_ms=5000)
    record = run_runbook("04-validate-cqrs", parameters, tmp_path, gx_kernel)
    assert record.passed
    assert steps(record)["initialise countries"] == "changed"
    user = super_admin.evaluate("IdentityContract:GetUser", "rb04-user-2")
    assert user["countryCode"] == country
    assert super_admin.balance("rb04-user-2") == int(user["genesisAmount"]) + 250
    with session_cqrs.api() as api:
        assert country in api.system_status().countries
        profile = api.user("rb04-user-2")
        assert profile is not None and profile.countryCode == country and profile.genesisDistributed


def test_04_again_for_one_user_with_other_amounts_mints_each_and_an_amount_minted_before_is_already_done(
        session_cqrs: Cqrs, super_admin: GxClient, tmp_path: Path, gx_kernel: str) -> None:
    # Issue 12: "already done" is this run's own MINT (the command its parameters name), not balance arithmetic
    # that only holds for one amount.
    user, minted, grew = "rb04-user-3", [], []
    for amount in (700, 800, 700):
        record = run_runbook("04-validate-cqrs", session_cqrs.parameters(test_user_id=user, mint_amount=amount),
                             tmp_path, gx_kernel)
        assert record.passed, record.summary and record.summary["failed_checks"]
        minted.append(steps(record)["mint to the test user"])
        grew.append(checks(record)[f"balance {user} grew by mint_amount"]["status"])
    assert minted == ["changed", "changed", "already done"]
    assert grew == ["pass", "pass", "skipped"]
    genesis = int(super_admin.evaluate("IdentityContract:GetUser", user)["genesisAmount"])
    assert super_admin.balance(user) == genesis + 700 + 800, "each amount minted once, the repeat not again"


# --- 05 -------------------------------------------------------------------------------------------------------
def test_05_dry_run_changes_nothing(fresh: Cqrs, tmp_path: Path, gx_kernel: str) -> None:
    before = fresh.state()
    record = run_runbook("05-validate-monitoring", fresh.monitoring_parameters(breaker_drill=True), tmp_path, gx_kernel,
                         dry_run=True)
    assert record.passed
    assert steps(record) == {"make the gateway unreachable": "would change (dry run)",
                             "write the SLO report": "would change (dry run)"}
    assert fresh.state() == before
    assert not (record.record_dir / "slo-report.html").exists()


def test_05_without_the_drill_reads_only_and_writes_the_report_where_asked(fresh: Cqrs, tmp_path: Path,
                                                                           gx_kernel: str) -> None:
    report = tmp_path / "reports" / "slo.html"
    before = fresh.state()
    parameters = fresh.monitoring_parameters(breaker_drill=False, lag_window_minutes=5, report_path=str(report))
    record = run_runbook("05-validate-monitoring", parameters, tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"write the SLO report": "changed"}
    found = checks(record)
    assert found["alert rules loaded"]["measured"] == "18"
    assert found["SLO report written (self-contained HTML)"]["measured"] == str(report)
    assert report.is_file() and "<script src=\"http" not in report.read_text()
    assert fresh.state() == before


def test_05_breaker_drill_opens_fires_reaches_alertmanager_restores_and_commits(fresh: Cqrs, tmp_path: Path,
                                                                                gx_kernel: str) -> None:
    parameters = fresh.monitoring_parameters(breaker_drill=True, lag_window_minutes=10)
    _until_prometheus_has("projector_lag_milliseconds", fresh)  # a stack started seconds ago has no samples yet
    record = run_runbook("05-validate-monitoring", parameters, tmp_path, gx_kernel)
    assert record.passed
    assert steps(record) == {"make the gateway unreachable": "changed", "restore the gateway": "changed",
                             "write the SLO report": "changed"}
    found = checks(record)
    for stage in ("circuit breaker open (1)", "FabricCircuitBreakerOpen pending", "FabricCircuitBreakerOpen firing",
                  "FabricCircuitBreakerOpen active in Alertmanager", "FabricCircuitBreakerOpen notified to the webhook",
                  "circuit breaker closed (0)", "drill command committed", "FabricCircuitBreakerOpen resolved"):
        assert found[f"drill: {stage}"]["status"] == "pass", stage
    assert found["drill: nothing lost"]["measured"] == "COMMITTED"
    assert (record.record_dir / "slo-report.html").is_file()
    assert fresh.devnet.status().all_healthy, "the gateway peer is back"
    # The record a person opens shows the lag as a chart against its SLO line, not only the check's number.
    assert found["projection lag max over 10 min"]["status"] == "pass"
    html = record.html.read_text()
    assert 'class="plotly-graph-div"' in html and "Projection lag (ms)" in html and "SLO 5000 ms" in html


def _until_prometheus_has(metric: str, cqrs: Cqrs, timeout_s: float = 60) -> None:
    assert cqrs.stack is not None
    deadline = time.monotonic() + timeout_s
    while True:
        answer = httpx.get(f"{cqrs.stack.prometheus_url}/api/v1/query", params={"query": metric}, timeout=5).json()
        if answer["data"]["result"]:
            return
        assert time.monotonic() < deadline, f"Prometheus has scraped no {metric} in {timeout_s:g} s"
        time.sleep(1)
