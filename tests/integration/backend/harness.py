"""What the reliability tests share: a backend of the session devnet on its own PostgreSQL database, a steady
command load through the API, chaos (kill -9 a service at random moments), and the ledger-side checks — every
accepted command on the ledger exactly once, by tx ID, by a scan of every block, and by balances."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import math
import os
import random
import re
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine

from gxlib.backend.db import make_engine
from gxlib.backend.eventsource import Checkpoint
from gxlib.backend.ledger_replay import fresh_database, replay_ledger
from gxlib.backend.local import BackendService, LocalBackend
from gxlib.backend.outbox import CommandRecord, Outbox
from gxlib.backend.projector import Projector
from gxlib.backend.replay import ReplayReport
from gxlib.backend.settings import BackendSettings, ProjectorSettings, SubmitterSettings
from gxlib.config import ChaincodeSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.fabric.events import events_in_block
from gxlib.fabric.gateway import Gateway
from gxlib.monitoring.settings import LocalStackSettings, LocalTargets, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.progress import Progress

TERMINAL = ("COMMITTED", "FAILED", "DLQ")
FUNDING = 10**12  # units minted to each transfer account before the load starts


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_backend(devnet: Devnet, name: str, database_url: str, **submitter: Any) -> LocalBackend:
    """A LocalBackend in ``<devnet>/<name>/`` on ``database_url`` with free ports and short leases, so a killed
    submitter's commands are reclaimed within seconds."""
    options: dict[str, Any] = {"lease_s": 6.0, "commit_timeout_s": 4.0, "status_timeout_s": 2.0,
                               "backoff_base_s": 0.2, "backoff_max_s": 2.0, "max_attempts": 200,
                               "gauge_interval_s": 0.5, "batch_size": 20, "max_in_flight": 32}
    options.update(submitter)
    settings = BackendSettings(database_url=database_url, api_port=free_port(), submitter_metrics_port=free_port(),
                               projector_metrics_port=free_port(), submitter=SubmitterSettings(**options),
                               projector=ProjectorSettings(retry_base_s=0.2, retry_max_s=2.0))
    local = LocalBackend(devnet, settings, Progress(quiet=True))
    local.root = devnet.layout.root / name
    local.services = [BackendService(s.name, local.root / s.name, s.host, s.port, s.health_path)
                      for s in local.services]
    return local


def service(local: LocalBackend, name: str) -> BackendService:
    return next(s for s in local.services if s.name == name)


def api_client(local: LocalBackend) -> httpx.Client:
    token = next(iter(local.api_tokens()))
    return httpx.Client(base_url=service(local, "api").url, headers={"Authorization": f"Bearer {token}"},
                        timeout=15)


def metric(url: str, name: str, labels: str = "") -> float | None:
    """One sample of a Prometheus text endpoint (``labels`` like ``status="success"``), None when absent."""
    text = httpx.get(url, timeout=5).text
    pattern = re.compile(rf"^{re.escape(name)}(\{{[^}}]*\}})? ([0-9.eE+-]+)$", re.M)
    for match in pattern.finditer(text):
        if labels in (match.group(1) or ""):
            return float(match.group(2))
    return None


def wait_until(what: str, check: Callable[[], bool], timeout_s: float, poll_s: float = 0.25) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(poll_s)


@dataclass
class Accepted:
    command_id: str
    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class Refusal:
    """One answer other than success: which request, its status, media type and problem detail."""

    request: str
    status: int
    content_type: str
    detail: str

    @classmethod
    def of(cls, request: str, response: httpx.Response) -> Refusal:
        try:
            detail = str(response.json().get("detail", ""))
        except ValueError:
            detail = response.text[:200]
        return cls(request, response.status_code, response.headers.get("content-type", ""), detail)


@dataclass
class CommandLoad:
    """Posts MINT / CREATE_USER / TRANSFER commands to the API at ``rate_per_s`` from a thread until stopped.

    Mints go to a few mint-only accounts (concurrent mints of one account MVCC-conflict, which exercises the
    retry-with-a-new-tx path); transfers move 1 unit between funded accounts; every command's remark or user ID
    is unique, so its effect can be found on the ledger. A post that fails is repeated with the same
    idempotency key until it is answered."""

    client: httpx.Client
    tag: str
    rate_per_s: float = 10.0
    mint_accounts: int = 6
    transfer_accounts: tuple[str, ...] = ()
    # Answers a client meets during an outage and repeats (same idempotency key); each one is recorded in
    # ``refused``. Empty: any answer but 202 fails the load.
    retry_statuses: frozenset[int] = frozenset()
    accepted: list[Accepted] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _error: BaseException | None = None
    _rng: random.Random = field(default_factory=lambda: random.Random(5))

    def command(self, n: int) -> tuple[str, dict[str, Any]]:
        roll = self._rng.random()
        if roll < 0.15:
            return "CREATE_USER", {"userId": f"{self.tag}-user-{n}", "countryCode": "US", "displayName": f"u{n}"}
        if roll < 0.3 and len(self.transfer_accounts) >= 2:
            source, target = self._rng.sample(self.transfer_accounts, 2)
            return "TRANSFER", {"fromId": source, "toId": target, "amount": 1, "remark": f"{self.tag}-t-{n}"}
        account = f"{self.tag}-mint-{n % self.mint_accounts}"
        return "MINT", {"accountId": account, "amount": self._rng.randint(1, 10**9), "remark": f"{self.tag}-m-{n}"}

    def post(self, kind: str, payload: dict[str, Any], key: str) -> str:
        for _ in range(200):
            try:
                response = self.client.post("/api/v1/commands",
                                            json={"type": kind, "payload": payload, "idempotencyKey": key})
            except httpx.HTTPError:
                time.sleep(0.1)
                continue
            if response.status_code in self.retry_statuses:
                self.refused.append(Refusal.of("POST /api/v1/commands", response))
                time.sleep(0.2)
                continue
            assert response.status_code == 202, response.text
            command_id = str(response.json()["commandId"])
            self.accepted.append(Accepted(command_id, kind, payload))
            return command_id
        raise AssertionError(f"the API never accepted {key}")

    def _run(self) -> None:
        try:
            self._post_steadily()
        except BaseException as exc:  # re-raised by stop(): a load that died must fail the test, not go quiet
            self._error = exc

    def _post_steadily(self) -> None:
        n = 0
        started = time.monotonic()
        while not self._stop.is_set():
            kind, payload = self.command(n)
            self.post(kind, payload, f"{self.tag}-{n}")
            n += 1
            pause = started + n / self.rate_per_s - time.monotonic()
            if pause > 0:
                self._stop.wait(pause)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"load-{self.tag}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=60)
        if self._error is not None:
            raise AssertionError(f"the command load {self.tag} stopped early: {self._error}") from self._error


def kill_9(node: BackendService) -> int:
    """SIGKILL the service's process (no drain, no cleanup); returns its pid once it is gone."""
    return kill_9_process(node, node.host, [node.port])


def kill_9_process(node: processes.ManagedProcess, host: str, ports: Iterable[int]) -> int:
    """SIGKILL any managed process (backend service, Fabric node, chaincode server); returns its pid once it is gone
    and ``ports`` on ``host`` are free again."""
    pid = processes.running_pid(node)
    assert pid is not None, f"{node.name} is not running"
    os.kill(pid, signal.SIGKILL)
    wait_until(f"{node.name} pid {pid} to die", lambda: processes.running_pid(node) is None, 10, 0.02)
    # A dying process loses its memory (and so its marker) before its sockets: wait for the ports as well.
    for port in ports:
        wait_until(f"{node.name}'s port {port} to be released", lambda p=port: processes.port_is_free(host, p),
                   10, 0.02)
    return pid


def chaos(local: LocalBackend, name: str, kills: int, *, min_gap_s: float = 0.2, max_gap_s: float = 1.2,
          seed: int = 7) -> list[int]:
    """kill -9 service ``name`` ``kills`` times at random moments, restarting it after each kill."""
    rng = random.Random(seed)
    node = service(local, name)
    killed = []
    for _ in range(kills):
        time.sleep(rng.uniform(min_gap_s, max_gap_s))
        killed.append(kill_9(node))
        local.start_extra(node)  # starts the missing process and waits until it is healthy
    return killed


def _some(found: dict[str, Any], n: int = 5) -> dict[str, Any]:
    return dict(list(found.items())[:n])


def outbox_records(engine: Engine, ids: list[str]) -> dict[str, CommandRecord]:
    outbox = Outbox(engine)
    return {cid: outbox.get(cid) for cid in ids}


@dataclass(frozen=True)
class LedgerEvent:
    block_number: int
    tx_index: int
    tx_id: str
    name: str
    payload: bytes


async def _ledger_scan(environment: dict[str, Any], tx_ids: list[str]) -> tuple[list[LedgerEvent], dict[str, Any]]:
    chaincode = ChaincodeSettings().name
    async with Gateway.from_environment(environment, "service") as gateway:
        network = gateway.network(environment["channel"])
        height = await network.block_height()
        events = [LedgerEvent(e.block_number, e.tx_index, e.tx_id, e.event_name, e.payload)
                  async for block in network.blocks(0, height - 1) for e in events_in_block(block, chaincode)]
        statuses: dict[str, Any] = {}
        for start in range(0, len(tx_ids), 32):
            chunk = tx_ids[start:start + 32]
            found = await asyncio.gather(*(network.transaction_status(t) for t in chunk))
            statuses.update(zip(chunk, found, strict=True))
    return events, statuses


def ledger_scan(devnet: Devnet, tx_ids: list[str]) -> tuple[list[LedgerEvent], dict[str, Any]]:
    """Every gxtv3 event of a VALID transaction from block 0 to the top, and the ledger status of each tx ID."""
    return asyncio.run(_ledger_scan(devnet.environment(), tx_ids))


def effect_key(kind: str, payload: dict[str, Any]) -> tuple[str, str]:
    """What marks one command's effect on the ledger: (event name, unique field value)."""
    if kind == "MINT":
        return "CoinsMinted", payload["remark"]
    if kind == "TRANSFER":
        return "TransferEvent", payload["remark"]
    if kind == "CREATE_USER":
        return "UserCreated", payload["userId"]
    raise ValueError(kind)


def assert_exactly_once(devnet: Devnet, engine: Engine, accepted: list[Accepted], super_admin: Any,
                        funded: dict[str, int]) -> dict[str, Any]:
    """Every accepted command is COMMITTED (none in the DLQ), its stored tx ID is VALID on the ledger in its stored
    block, its effect appears in exactly one VALID transaction (that one), and each touched account's chaincode
    balance is what the committed commands add up to. Returns a summary."""
    records = outbox_records(engine, [a.command_id for a in accepted])
    not_committed = {cid: (r.status, r.error_code, r.error_message) for cid, r in records.items()
                     if r.status != "COMMITTED"}
    assert not_committed == {}, f"{len(not_committed)} accepted commands are not COMMITTED, e.g. {_some(not_committed)}"
    committed = accepted
    tx_ids = [records[a.command_id].fabric_tx_id or "" for a in committed]
    events, statuses = ledger_scan(devnet, tx_ids)

    # By tx ID: the stored tx is VALID on the ledger, in the block the outbox recorded.
    invalid = {a.command_id: statuses.get(t) for a, t in zip(committed, tx_ids, strict=True)
               if statuses.get(t) is None or not statuses[t].successful
               or statuses[t].block_number != records[a.command_id].block_number}
    assert invalid == {}, f"{len(invalid)} stored tx IDs not VALID (or in another block): {_some(invalid)}"

    # By a scan of every block: each command's effect is in exactly one VALID transaction, the stored one.
    seen: Counter[tuple[str, str]] = Counter()
    tx_of: dict[tuple[str, str], str] = {}
    for e in events:
        body = json.loads(e.payload)
        for key in (("CoinsMinted", body.get("remark")), ("TransferEvent", body.get("remark")),
                    ("UserCreated", body.get("userId"))):
            if e.name == key[0] and key[1] is not None:
                seen[(key[0], str(key[1]))] += 1
                tx_of[(key[0], str(key[1]))] = e.tx_id
    wrong = {}
    for a, tx_id in zip(committed, tx_ids, strict=True):
        key = effect_key(a.kind, a.payload)
        if seen[key] != 1 or tx_of.get(key) != tx_id:
            wrong[a.command_id] = (key, seen[key], tx_of.get(key), tx_id)
    assert wrong == {}, f"{len(wrong)} effects not on the ledger exactly once (key, count, ledger tx, stored tx): " \
                        f"{_some(wrong)}"

    # By balances read from the chaincode.
    expected: Counter[str] = Counter(funded)
    for a in committed:
        if a.kind == "MINT":
            expected[a.payload["accountId"]] += a.payload["amount"]
        elif a.kind == "TRANSFER":
            expected[a.payload["fromId"]] -= a.payload["amount"]
            expected[a.payload["toId"]] += a.payload["amount"]
    balances = {account: super_admin.balance(account) for account in expected}
    assert balances == dict(expected)
    return {"commands": len(committed), "by_kind": dict(Counter(a.kind for a in committed)),
            "accounts_checked": len(balances), "retried": sum(1 for r in records.values() if r.attempts > 1)}


def fund_transfer_accounts(client: httpx.Client, local: LocalBackend, tag: str, count: int = 4) -> dict[str, int]:
    """Create ``count`` users through the API (their accounts are the service identity's) and mint FUNDING to
    each; returns account → funded balance."""
    load = CommandLoad(client, f"{tag}-setup")
    users = [f"{tag}-payer-{n}" for n in range(count)]
    # Users first: a mint to a missing account creates it without an owner, and CreateUser keeps that account.
    wait_final(client, [load.post("CREATE_USER", {"userId": u, "countryCode": "US", "displayName": u},
                                  f"{tag}-cu-{u}") for u in users], timeout_s=90)
    wait_final(client, [load.post("MINT", {"accountId": u, "amount": FUNDING, "remark": f"{tag}-fund-{u}"},
                                  f"{tag}-f-{u}") for u in users], timeout_s=90)
    return dict.fromkeys(users, FUNDING)


def wait_final(client: httpx.Client, ids: list[str], timeout_s: float) -> dict[str, str]:
    statuses: dict[str, str] = {}

    def done() -> bool:
        for cid in ids:
            if statuses.get(cid) not in TERMINAL:
                statuses[cid] = client.get(f"/api/v1/commands/{cid}").json()["status"]
                if statuses[cid] not in TERMINAL:
                    return False
        return True

    wait_until(f"{len(ids)} commands to finish", done, timeout_s, 0.3)
    assert set(statuses.values()) == {"COMMITTED"}, statuses
    return statuses


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q``-th percentile (0 < q <= 100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def latency_figures(records: list[CommandRecord], prefix: str = "") -> dict[str, Any]:
    """Accepted → committed (the outbox's created_at → committed_at, both database time) of committed records,
    in milliseconds: count, p50, p99, max."""
    ms = [(r.committed_at - r.created_at).total_seconds() * 1000 for r in records
          if r.committed_at is not None]
    figures = {"n": len(ms), "p50_ms": percentile(ms, 50), "p99_ms": percentile(ms, 99),
               "max_ms": max(ms) if ms else None}
    return {f"{prefix}{k}": round(v, 1) if isinstance(v, float) else v for k, v in figures.items()}


def latency_by_window(engine: Engine, accepted: list[Accepted],
                      windows: dict[str, tuple[dt.datetime, dt.datetime]]) -> dict[str, dict[str, Any]]:
    """Accepted → committed figures of the commands accepted in each named window (UTC start, end)."""
    records = list(outbox_records(engine, [a.command_id for a in accepted]).values())
    return {name: latency_figures([r for r in records if start <= _utc(r.created_at) < end])
            for name, (start, end) in windows.items()}


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def drill_figures(engine: Engine, accepted: list[Accepted], duration_s: float, **extra: Any) -> dict[str, Any]:
    """What a drill reports: accepted, committed, DLQ rows, commands retried (attempts > 1), the load's duration,
    the accepted → committed latency, and ``extra``."""
    records = list(outbox_records(engine, [a.command_id for a in accepted]).values())
    figures: dict[str, Any] = {
        "accepted": len(accepted), "committed": sum(1 for r in records if r.status == "COMMITTED"),
        "dlq": Outbox(engine).counts()["dlq_rows"], "retried": sum(1 for r in records if r.attempts > 1),
        "max_attempts": max((r.attempts for r in records), default=0), "duration_s": round(duration_s, 1),
        **latency_figures(records, "latency_")}
    figures.update(extra)
    return figures


def report_drill(record_file: Path, drill: str, figures: dict[str, Any]) -> None:
    """One JSON line per drill: printed (visible with ``pytest -s``) and appended to ``record_file``."""
    line = json.dumps({"drill": drill, **figures}, default=str, sort_keys=False)
    print(f"DRILL {line}", flush=True)
    with record_file.open("a") as out:
        out.write(line + "\n")


def last_event_position(devnet: Devnet) -> tuple[int, int]:
    """(block, tx index) of the newest gxtv3 event on the ledger."""
    events, _ = ledger_scan(devnet, [])
    return (events[-1].block_number, events[-1].tx_index)


def wait_projected(devnet: Devnet, engine: Engine, timeout_s: float) -> Checkpoint:
    """Wait until the projector's checkpoint reaches the newest event on the ledger; returns the checkpoint."""
    last = last_event_position(devnet)
    projector = Projector(engine)
    wait_until(f"the projector to reach block {last[0]} tx {last[1]}",
               lambda: (projector.checkpoint() or Checkpoint(-1, -1)).position >= last, timeout_s)
    checkpoint = projector.checkpoint()
    assert checkpoint is not None
    return checkpoint


def replay_report(devnet: Devnet, database_url: str, engine: Engine) -> ReplayReport:
    """Replay the ledger from block 0 into a fresh database next to ``database_url`` and compare read models."""
    environment = devnet.environment()
    with fresh_database(database_url) as target_url:
        target = make_engine(target_url)
        try:
            return asyncio.run(replay_ledger(environment, environment["channel"], ChaincodeSettings().name, engine,
                                             target))
        finally:
            target.dispose()


def breaker_transitions(local: LocalBackend, log_offset: int) -> list[str]:
    """The submitter's circuit-breaker transitions logged after byte ``log_offset`` of its log, oldest first."""
    text = service(local, "submitter").log_file.read_text()[log_offset:]
    return [json.loads(line)["msg"].removeprefix("circuit breaker ") for line in text.splitlines()
            if line.startswith("{") and '"circuit breaker ' in line]


@contextlib.contextmanager
def alert_watch(devnet: Devnet, local: LocalBackend, state_dir: Path) -> Iterator[LocalMonitoringStack]:
    """The local monitoring stack (Prometheus with the project's alert rules, Alertmanager, webhook receiver)
    scraping ``local``'s three services and the devnet's nodes every second, for as long as the block runs."""
    prometheus_port, alertmanager_port, webhook_port = (free_port() for _ in range(3))
    s = local.settings
    config = MonitoringConfig(
        stack_state_dir=state_dir,
        local_targets=LocalTargets(api_metrics_port=s.api_port, submitter_metrics_port=s.submitter_metrics_port,
                                   projector_metrics_port=s.projector_metrics_port),
        local_stack=LocalStackSettings(prometheus_port=prometheus_port, alertmanager_port=alertmanager_port,
                                       webhook_port=webhook_port, scrape_interval_s=1, evaluation_interval_s=1,
                                       group_wait_s=1, group_interval_s=5))
    stack = LocalMonitoringStack(config, devnet.settings)
    stack.up()
    try:
        yield stack
    finally:
        stack.down()


def alerts_during(stack: LocalMonitoringStack, start: float, end: float) -> dict[str, dict[str, Any]]:
    """Every alert that was pending or firing between the Unix times ``start`` and ``end``: seconds in each state
    and the rule's ``for`` duration (what it needs to fire), from Prometheus' ``ALERTS`` series."""
    url = stack.prometheus_url
    response = httpx.get(f"{url}/api/v1/query_range",
                         params={"query": "ALERTS", "start": start, "end": end, "step": 1}, timeout=10)
    response.raise_for_status()
    seen: dict[str, dict[str, Any]] = {}
    for series in response.json()["data"]["result"]:
        name, state = series["metric"]["alertname"], series["metric"]["alertstate"]
        entry = seen.setdefault(name, {"pending_s": 0, "firing_s": 0})
        entry[f"{state}_s"] += len(series["values"])
    rules = httpx.get(f"{url}/api/v1/rules", params={"type": "alert"}, timeout=10).json()["data"]["groups"]
    durations = {r["name"]: r.get("duration", 0) for g in rules for r in g["rules"]}
    for name, entry in seen.items():
        entry["for_s"] = durations.get(name)
    return seen


def gauge_max(stack: LocalMonitoringStack, expression: str, start: float, end: float) -> float | None:
    """The largest value ``expression`` took between ``start`` and ``end`` (Unix times), None without samples."""
    response = httpx.get(f"{stack.prometheus_url}/api/v1/query_range",
                         params={"query": expression, "start": start, "end": end, "step": 1}, timeout=10)
    response.raise_for_status()
    values = [float(v) for series in response.json()["data"]["result"] for _, v in series["values"]]
    return max(values) if values else None
