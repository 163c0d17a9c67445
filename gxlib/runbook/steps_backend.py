"""What runbooks 03–05 share about the CQRS backend: finding it, reading the ledger, and following a command
API → outbox → block → projection with the time of each stage.

``local_backend(params)`` resolves the local profile: the devnet (its state directory), the API (``api_url`` or
the backend's ``GX_BACKEND_*`` settings), the admin token (``api_token`` / ``$GX_API_TOKEN``, else the token file
``gx backend up`` wrote next to the devnet) and the submitter's ``/metrics``. It answers with the reason when
something is missing, so a runbook can say what the operator has to start, instead of failing somewhere later.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families

from gxlib.backend.api.schemas import CommandView
from gxlib.backend.client import FINAL_STATUSES, BackendApiError, BackendClient
from gxlib.backend.settings import BackendSettings
from gxlib.config import ChaincodeSettings, DevnetSettings
from gxlib.devnet.network import Devnet
from gxlib.fabric.sync import SyncContract, SyncGateway
from gxlib.progress import Progress
from gxlib.runbook.parameters import PRECISION, BackendParameters
from gxlib.runbook.session import Runbook

# SPEC §2.3: the pools BootstrapSystem mints, in coins.
BOOTSTRAP_POOLS: dict[str, int] = {
    "SYSTEM_USER_GENESIS_POOL": 500_000_000,
    "SYSTEM_GOVT_GENESIS_POOL": 300_000_000,
    "SYSTEM_CHARITABLE_POOL": 50_000_000,
    "SYSTEM_LOAN_POOL": 100_000_000,
}
BREAKER_STATES = {0.0: "closed", 0.5: "half-open", 1.0: "open"}


def pool_units(pool: str) -> int:
    """The amount BootstrapSystem mints into ``pool``, in precision units."""
    return BOOTSTRAP_POOLS[pool] * PRECISION


def idempotency_key(runbook: str, *parts: object) -> str:
    """A fixed key for a runbook's command: the same parameters give the same key, so a re-run never enqueues a
    second command (the API returns the original). Printable ASCII, no spaces, at most 200 characters."""
    text = ":".join([runbook, *(str(p) for p in parts)])
    return "".join(c if 0x21 <= ord(c) <= 0x7E else "_" for c in text)[:200]


# --- the ledger ------------------------------------------------------------------------------------------------
class LedgerReader:
    """Read-only questions to the GX chaincode through the Gateway, as the service identity."""

    def __init__(self, devnet: Devnet, channel: str, chaincode: str) -> None:
        self.gateway = SyncGateway.from_environment(devnet.environment(), "service")
        self.network = self.gateway.network(channel)
        self.contract: SyncContract = self.network.contract(chaincode)

    def _evaluate(self, function: str, *args: str) -> Any:
        raw = self.contract.evaluate(function, *args)
        return json.loads(raw) if raw else None

    def system_status(self) -> dict[str, Any]:
        """``AdminContract:GetSystemStatus``: bootstrapped, the pools' balances, the counters."""
        return dict(self._evaluate("AdminContract:GetSystemStatus"))

    def balance(self, account_id: str) -> int:
        return int(self._evaluate("TokenomicsContract:GetBalance", account_id)["balance"])

    def user(self, user_id: str) -> dict[str, Any] | None:
        """The user's ledger record, or ``None`` when it does not exist."""
        from gxlib.fabric.errors import EvaluateError

        try:
            return dict(self._evaluate("IdentityContract:GetUser", user_id))
        except EvaluateError as exc:
            if "does not exist" in str(exc):
                return None
            raise

    def height(self) -> int:
        """The channel's height on the Gateway peer."""
        return self.network.block_height()

    def close(self) -> None:
        self.gateway.close()


# --- the submitter ---------------------------------------------------------------------------------------------
def metric_samples(metrics_url: str, *, timeout_s: float = 5.0) -> dict[str, float]:
    """The unlabelled samples of a Prometheus ``/metrics`` page (name → value); raises ``httpx.HTTPError``."""
    response = httpx.get(metrics_url.rstrip("/") + "/metrics", timeout=timeout_s)
    response.raise_for_status()
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if not sample.labels:
                samples[sample.name] = float(sample.value)
    return samples


def breaker_state(metrics_url: str) -> tuple[float | None, str]:
    """The submitter's ``circuit_breaker_state`` and a description (``None`` when it cannot be read)."""
    try:
        value = metric_samples(metrics_url).get("circuit_breaker_state")
    except httpx.HTTPError as exc:
        return None, f"{metrics_url}/metrics unreachable: {exc.__class__.__name__}"
    if value is None:
        return None, f"{metrics_url}/metrics has no circuit_breaker_state"
    return value, f"circuit_breaker_state {value:g} ({BREAKER_STATES.get(value, 'unknown')})"


# --- finding the local backend ---------------------------------------------------------------------------------
@dataclass
class LocalBackendTarget:
    """The local profile's devnet, API client, ledger reader and submitter metrics URL."""

    devnet: Devnet
    api: BackendClient
    ledger: LedgerReader
    submitter_metrics_url: str
    channel: str
    chaincode: str = field(default_factory=lambda: ChaincodeSettings().name)

    def close(self) -> None:
        self.api.close()
        self.ledger.close()


def local_devnet(params: BackendParameters, progress: Progress) -> Devnet | str:
    """The devnet ``params`` point at (its settings in force), or why it cannot be used now."""
    overrides = {"state_dir": params.devnet_state_dir} if params.devnet_state_dir else {}
    devnet = Devnet(DevnetSettings(**overrides), progress=progress)
    if not devnet.layout.settings_file.exists():
        return f"there is no devnet in {devnet.layout.root} (create it with `gx devnet up`, or set devnet_state_dir)"
    # Again with the settings in force (port offset, channel), so that `up()` (the drill's restore) finds no
    # mismatch with what the network was created with.
    devnet = Devnet(devnet.settings, progress=progress)
    status = devnet.status()
    if not status.all_healthy:
        down = ", ".join(n.name for n in status.nodes if not n.healthy) or "every node"
        return f"the devnet in {devnet.layout.root} is not up ({down} not healthy): start it with `gx devnet up`"
    if params.channel is not None and params.channel != devnet.settings.channel:
        return (f"channel {params.channel!r} is not on the devnet in {devnet.layout.root}, whose channel is "
                f"{devnet.settings.channel!r}")
    return devnet


def local_backend(params: BackendParameters, progress: Progress) -> LocalBackendTarget | str:
    """Everything runbooks 03–05 talk to on the local profile, or why it is not there."""
    found = local_devnet(params, progress)
    if isinstance(found, str):
        return found
    devnet = found
    settings = BackendSettings()
    api_url = params.api_url or f"http://{settings.api_host}:{settings.api_port}"
    metrics_url = params.submitter_metrics_url or f"http://{settings.metrics_host}:{settings.submitter_metrics_port}"
    token = params.api_token.get_secret_value() if params.api_token is not None else None
    token_file = devnet.layout.root / "backend" / "api-token"
    if not token and token_file.is_file():
        token = token_file.read_text().strip()
    if not token:
        return (f"no API token: set $GX_API_TOKEN (or api_token), or start the backend with `gx backend up`, which "
                f"writes {token_file}")
    api = BackendClient(api_url, token)
    healthy, seen = api.healthy()
    if not healthy:
        api.close()
        return f"the backend API does not answer: {seen} (start it with `gx backend up`, or set api_url)"
    try:
        status = api.system_status()  # proves the token too
    except BackendApiError as exc:  # unreachable, or the token refused (401/403)
        api.close()
        return str(exc)
    progress.info(f"  backend API {api_url}: read model at block {status.checkpointBlock}, outbox {status.outbox}")
    ledger = LedgerReader(devnet, devnet.settings.channel, ChaincodeSettings().name)
    return LocalBackendTarget(devnet, api, ledger, metrics_url, devnet.settings.channel)


def ledger_height(devnet: Devnet) -> int | None:
    """The channel's height on the devnet's peers (the lowest, while a block is still propagating)."""
    heights = [n.ledger_height for n in devnet.status().nodes if n.ledger_height is not None]
    return min(heights) if heights else None


# --- following a command ---------------------------------------------------------------------------------------
def _aware(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start).total_seconds() * 1000, 1)


@dataclass
class CommandTrace:
    """One command's way through the system, with the moment of each stage (UTC)."""

    name: str
    command_type: str
    idempotency_key: str
    command_id: str
    duplicate: bool
    status: str = "PENDING"
    accepted_at: datetime | None = None
    first_submitted_at: datetime | None = None
    committed_at: datetime | None = None
    projected_at: datetime | None = None
    fabric_tx_id: str | None = None
    block: int | None = None
    attempts: int = 0
    error: str | None = None

    def update(self, view: CommandView) -> None:
        self.status = view.status
        self.accepted_at = _aware(view.createdAt)
        self.first_submitted_at = _aware(view.firstSubmittedAt)
        self.committed_at = _aware(view.committedAt)
        self.fabric_tx_id = view.fabricTxId
        self.block = view.blockNumber
        self.attempts = view.attempts
        self.error = view.errorMessage

    @property
    def accepted_to_committed_ms(self) -> float | None:
        return _ms(self.accepted_at, self.committed_at)

    @property
    def committed_to_projected_ms(self) -> float | None:
        return _ms(self.committed_at, self.projected_at)

    def row(self) -> dict[str, Any]:
        return {
            "command": self.name, "type": self.command_type, "status": self.status,
            "commandId": self.command_id, "duplicate": self.duplicate, "block": self.block,
            "fabricTxId": (self.fabric_tx_id or "")[:16], "attempts": self.attempts,
            "accepted→committed ms": self.accepted_to_committed_ms,
            "committed→projected ms": self.committed_to_projected_ms,
        }


TRACE_COLUMNS = ("command", "type", "status", "block", "attempts", "accepted→committed ms", "committed→projected ms",
                 "duplicate", "commandId", "fabricTxId")


def submit_command(api: BackendClient, name: str, command_type: str, payload: dict[str, Any],
                   key: str) -> CommandTrace:
    """POST the command and start its trace."""
    accepted = api.submit(command_type, payload, key)
    trace = CommandTrace(name, command_type, key, accepted.commandId, accepted.duplicate, status=accepted.status)
    trace.update(api.command(accepted.commandId))
    return trace


def follow_to_block(rb: Runbook, api: BackendClient, trace: CommandTrace, timeout_s: float) -> CommandTrace:
    """Wait (with progress) until the command is final in the outbox: COMMITTED in a block, or FAILED/DLQ."""
    seen: list[str] = []

    def probe() -> tuple[bool, str | None]:
        trace.update(api.command(trace.command_id))
        stage = trace.status if trace.block is None else f"{trace.status} in block {trace.block}"
        if not seen or seen[-1] != stage:
            seen.append(stage)
            rb.progress.info(f"    {trace.name}: {' → '.join(seen)}")
        return trace.status in FINAL_STATUSES, f"{trace.status} after {trace.attempts} attempt(s)"

    rb.progress.wait_until(f"{trace.name} ({trace.command_id}) to reach its block", probe, timeout_s=timeout_s,
                           interval_s=0.1)
    return trace


def wait_projected(rb: Runbook, trace: CommandTrace, what: str, probe: Callable[[], tuple[bool, str | None]],
                   timeout_s: float) -> CommandTrace:
    """Wait until ``probe`` sees the command's effect in the read model; records when it was first seen."""
    rb.progress.wait_until(f"{what} in the read model", probe, timeout_s=timeout_s, interval_s=0.05)
    trace.projected_at = datetime.now(UTC)
    return trace


def record_path(rb: Runbook, name: str) -> Path:
    """Where a runbook writes a file of this run: its record directory, else the working directory."""
    return (rb.record_dir or Path.cwd()) / name
