"""``gx bench pipeline``: the whole CQRS path under load, next to the raw Gateway ceiling measured in the same run.

Commands (MINT, one fresh account each, so none MVCC-conflict — the same work as ``gx bench gateway``) are posted
to the API open-loop at rising rates until the pipeline saturates. For each rate: accepted→committed (outbox
``created_at`` → ``committed_at``) and accepted→projected (``created_at`` → the moment the mint shows up in the
read model) throughput and p50/p95/p99, and CPU-seconds per committed command of each service (from
``process_cpu_seconds_total`` on its /metrics), of the Fabric nodes and of the benchmark's own load client
(:mod:`gxlib.bench.http_load`, so it is seen not to be what saturates the machine). Then each stage's headroom
alone: the
outbox + submitter with no Fabric behind it, the projector applying events already in memory, and the ledger
replay against the raw event delivery rate. With ``profile_dir`` the services are sampled with py-spy while the
rates run (:mod:`gxlib.bench.profile`).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from sqlalchemy import Engine, select

from gxlib.bench.cpu import cpu_snapshot, cpu_spent, machine_cores, nodes_cpu_reading, own_cpu_seconds
from gxlib.bench.gateway import GatewayBenchSpec, fabric_node_pids, run_gateway_bench
from gxlib.bench.http_load import COMMANDS_PATH, Endpoint, LoadResult, build_post, mint_body, post_open_loop
from gxlib.bench.profile import ServiceProfile, ServiceProfiler
from gxlib.bench.stats import percentile

if TYPE_CHECKING:
    from gxlib.backend.local import LocalBackend

GOALS = {"throughput_ratio_min": 0.9, "p95_ratio_max": 1.5, "replay_ratio_min": 0.8}
COMPONENTS = ("api", "submitter", "projector")
Progress = Callable[[str], None]


@dataclass(frozen=True)
class PipelineBenchSpec:
    rates: tuple[float, ...] = (10, 20, 40, 80, 160, 320)
    seconds_per_rate: float = 10.0
    gateway_concurrency: int = 32
    gateway_seconds: float = 10.0
    drain_timeout_s: float = 120.0
    headroom_commands: int = 2000
    saturation: float = 0.85  # committed/s below this share of accepted/s: saturated, stop rising
    connections: int = 64  # keep-alive connections of the load client
    profile_dir: Path | None = None  # py-spy the services while the rates run, collapsed stacks written here
    profile_rate: int = 100  # py-spy samples per second
    run_tag: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        if not self.rates or any(r <= 0 for r in self.rates):
            raise ValueError("rates must be positive")
        if self.seconds_per_rate <= 0 or self.gateway_seconds <= 0 or self.gateway_concurrency < 1:
            raise ValueError("seconds must be positive and concurrency at least 1")
        if self.connections < 1 or self.profile_rate < 1:
            raise ValueError("connections and the profile's sample rate must be at least 1")


@dataclass(frozen=True)
class Latencies:
    p50_ms: float
    p95_ms: float
    p99_ms: float

    @classmethod
    def of(cls, values_ms: list[float]) -> Latencies:
        return cls(round(percentile(values_ms, 0.5), 1), round(percentile(values_ms, 0.95), 1),
                   round(percentile(values_ms, 0.99), 1))


@dataclass(frozen=True)
class LevelFigures:
    offered_per_s: float
    posted: int
    accepted: int
    rejected: int
    accepted_per_s: float
    committed: int
    committed_per_s: float
    projected: int
    projected_per_s: float
    committed_latency: Latencies  # accepted → committed
    endorsed_latency: Latencies  # accepted → endorsed (see outbox_latencies)
    projected_latency: Latencies  # accepted → in the read model
    cpu_s_per_committed: dict[str, float | None]
    load_client_cpu_s_per_command: float | None  # the load generator alone, per command posted
    saturated: bool


@dataclass(frozen=True)
class PipelineBenchReport:
    database: str
    gateway: dict[str, Any]
    levels: list[LevelFigures]
    best: LevelFigures
    headroom: dict[str, float]
    replay: dict[str, float]
    ratios: dict[str, float | None]
    goals_met: dict[str, bool | None]
    profiles: list[ServiceProfile] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# --- the load ----------------------------------------------------------------------------------------------------
async def _post_at_rate(endpoint: Endpoint, token: str, rate: float, seconds: float, prefix: str,
                        connections: int) -> tuple[dict[str, str], LoadResult]:
    """POST MINT commands at ``rate`` per second for ``seconds`` (open loop) with the lean client, every request
    serialised before the clock starts. Returns remark → command ID of the accepted ones, and the load's figures."""
    remarks = [f"{prefix}-{n}" for n in range(max(1, int(rate * seconds)))]
    requests = [build_post(endpoint, COMMANDS_PATH, token, mint_body(remark)) for remark in remarks]
    result = await post_open_loop(endpoint, requests, rate, connections=connections)
    return {remarks[n]: command_id for n, command_id in result.accepted.items()}, result


class _ProjectionWatcher:
    """Notes when each mint of this level first appears in the read model (polled every ``poll_s``)."""

    def __init__(self, engine: Engine, prefix: str, poll_s: float = 0.05) -> None:
        self.engine = engine
        self.prefix = prefix
        self.poll_s = poll_s
        self.seen: dict[str, dt.datetime] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="projection-watcher", daemon=True)

    def _run(self) -> None:
        from gxlib.backend.models import MintEvent

        query = select(MintEvent.remark).where(MintEvent.remark.like(f"{self.prefix}-%"))
        while not self._stop.is_set():
            with self.engine.connect() as connection:
                remarks = connection.execute(query).scalars().all()
            now = dt.datetime.now(dt.UTC)
            for remark in remarks:
                self.seen.setdefault(remark, now)
            self._stop.wait(self.poll_s)

    def __enter__(self) -> _ProjectionWatcher:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def scrape_cpu_seconds(urls: Mapping[str, str]) -> dict[str, float]:
    """``process_cpu_seconds_total`` of each service's /metrics (services that do not answer are left out)."""
    found = {}
    for name, url in urls.items():
        try:
            text = httpx.get(url, timeout=5).text
        except httpx.HTTPError:
            continue
        match = re.search(r"^process_cpu_seconds_total ([0-9.eE+-]+)$", text, re.M)
        if match:
            found[name] = float(match.group(1))
    return found


def _wait_final(engine: Engine, ids: list[str], timeout_s: float) -> dict[str, Any]:
    from gxlib.backend.models import OutboxCommand

    deadline = time.monotonic() + timeout_s
    rows: dict[str, Any] = {}
    while time.monotonic() < deadline:
        with engine.connect() as connection:
            for start in range(0, len(ids), 500):
                chunk = ids[start:start + 500]
                for row in connection.execute(select(OutboxCommand.id, OutboxCommand.status, OutboxCommand.created_at,
                                                     OutboxCommand.first_submitted_at, OutboxCommand.committed_at)
                                              .where(OutboxCommand.id.in_(chunk))):
                    rows[row.id] = row
        if all(r.status in ("COMMITTED", "FAILED", "DLQ") for r in rows.values()) and len(rows) == len(ids):
            break
        time.sleep(0.2)
    return rows


def outbox_latencies(committed: Sequence[Any]) -> tuple[Latencies, Latencies]:
    """Of committed commands' outbox rows: accepted → committed, and accepted → endorsed (``first_submitted_at``,
    recorded once the transaction is endorsed and before it goes to the orderer: the outbox's wait, the claim and
    the endorsement; the rest is ordering, block cutting, validation and learning the commit)."""
    return (Latencies.of([(r.committed_at - r.created_at).total_seconds() * 1000 for r in committed]),
            Latencies.of([(r.first_submitted_at - r.created_at).total_seconds() * 1000
                          for r in committed if r.first_submitted_at is not None]))


def _rate(count: int, first: dt.datetime | None, last: dt.datetime | None) -> float:
    if not count or first is None or last is None:
        return 0.0
    return round(count / max((last - first).total_seconds(), 1e-3), 1)


async def _level(local: LocalBackend, engine: Engine, endpoint: Endpoint, token: str, rate: float,
                 spec: PipelineBenchSpec, node_pids: Mapping[str, int]) -> LevelFigures:
    prefix = f"pl-{spec.run_tag}-{int(rate)}"
    urls = {s.name: s.url + "/metrics" for s in local.services}
    cpu_before, nodes_before, client_before = scrape_cpu_seconds(urls), cpu_snapshot(node_pids), own_cpu_seconds()
    with _ProjectionWatcher(engine, prefix) as watcher:
        accepted, load = await _post_at_rate(endpoint, token, rate, spec.seconds_per_rate, prefix, spec.connections)
        refused, posting_s = load.refused, load.seconds
        rows = await asyncio.to_thread(_wait_final, engine, list(accepted.values()), spec.drain_timeout_s)
        deadline = time.monotonic() + spec.drain_timeout_s
        while len(watcher.seen) < len(accepted) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    cpu_after, nodes_after, client_after = scrape_cpu_seconds(urls), cpu_snapshot(node_pids), own_cpu_seconds()
    committed = [r for r in rows.values() if r.status == "COMMITTED" and r.committed_at is not None]
    committed_latency, endorsed_latency = outbox_latencies(committed)
    created = {cid: rows[cid].created_at for cid in accepted.values() if cid in rows}
    projected = [(watcher.seen[remark] - created[cid]).total_seconds() * 1000
                 for remark, cid in accepted.items() if remark in watcher.seen and cid in created]
    first_created = min(created.values(), default=None)
    cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_before if name in cpu_after}
    nodes = cpu_spent(nodes_before, nodes_after)
    if nodes:
        cpu["fabric_nodes"] = sum(nodes.values())
    cpu["bench_client"] = client_after - client_before  # this process: the HTTP load and the read-model watcher
    cpu["load_client"] = load.client_cpu_s  # the HTTP load alone (the event loop's thread while posting)
    committed_per_s = _rate(len(committed), first_created, max((r.committed_at for r in committed), default=None))
    accepted_per_s = round(len(accepted) / posting_s, 1) if posting_s > 0 else 0.0
    return LevelFigures(
        offered_per_s=rate, posted=len(accepted) + refused, accepted=len(accepted), rejected=refused,
        accepted_per_s=accepted_per_s, committed=len(committed), committed_per_s=committed_per_s,
        projected=len(projected),
        projected_per_s=_rate(len(projected), first_created, max(watcher.seen.values(), default=None)),
        committed_latency=committed_latency, endorsed_latency=endorsed_latency,
        projected_latency=Latencies.of(projected),
        cpu_s_per_committed={name: round(s / len(committed), 6) if committed else None for name, s in cpu.items()},
        load_client_cpu_s_per_command=(round(per_command, 6) if (per_command := load.client_cpu_s_per_command)
                                       is not None else None),
        saturated=len(committed) < len(accepted) or committed_per_s < spec.saturation * min(accepted_per_s, rate)
        or accepted_per_s < spec.saturation * rate,
    )


# --- stage headroom ------------------------------------------------------------------------------------------------
class NullTxGateway:
    """A TxGateway that commits everything at once: what the outbox and submitter do with no Fabric behind them."""

    async def prepare(self, request: Any) -> Any:
        from gxlib.backend.txgateway import PreparedTx

        return PreparedTx(uuid.uuid4().hex, b"envelope")

    async def submit(self, prepared: Any) -> None:
        return None

    async def status(self, tx_id: str, timeout_s: float) -> Any:
        from gxlib.backend.txgateway import TxState, TxStatus

        return TxStatus(tx_id, TxState.COMMITTED, 0, "VALID")


def outbox_headroom(database_url: str, settings: Any, commands: int) -> dict[str, float]:
    """Enqueue ``commands`` MINTs into a fresh database, then let one Submitter (``settings``) commit them through
    a :class:`NullTxGateway`: enqueue/s and claim→committed commands/s of the outbox alone."""
    from gxlib.backend.db import make_engine, migrate
    from gxlib.backend.ledger_replay import fresh_database
    from gxlib.backend.outbox import Outbox
    from gxlib.backend.submitter import Submitter

    with fresh_database(database_url) as url:
        engine = make_engine(url, pool_size=20, max_overflow=10)
        try:
            migrate(engine)
            outbox = Outbox(engine)
            started = time.perf_counter()
            for n in range(commands):
                outbox.enqueue("MINT", {"accountId": f"h{n}", "amount": 1, "remark": "headroom"}, f"h{n}")
            enqueue_s = time.perf_counter() - started
            submitter = Submitter(outbox, NullTxGateway(), settings, worker_id="headroom")

            async def drain() -> float:
                stop = asyncio.Event()
                began = time.perf_counter()
                task = asyncio.create_task(submitter.run(stop))
                while (await asyncio.to_thread(outbox.counts))["COMMITTED"] < commands:
                    await asyncio.sleep(0.05)
                elapsed = time.perf_counter() - began
                stop.set()
                await task
                return elapsed

            drain_s = asyncio.run(drain())
        finally:
            engine.dispose()
    return {"outbox_enqueue_per_s": round(commands / enqueue_s, 1),
            "outbox_claim_to_committed_per_s": round(commands / drain_s, 1)}


async def replay_figures(environment: Mapping[str, Any], chaincode: str, live: Engine, live_url: str,
                         node_pids: Mapping[str, int] | None = None) -> dict[str, float]:
    """The ledger replay (delivery + apply, overlapped) against the raw delivery of the same blocks, and the
    projector's apply rate alone on events already in memory. With ``node_pids`` (the Fabric nodes), also P4's
    CPU ceiling on this machine (:attr:`gxlib.bench.replay.ReplayRound.cpu_ceiling`)."""
    from gxlib.backend.db import make_engine
    from gxlib.backend.ledger_replay import fresh_database, ledger_event_batches, measure_delivery, replay_ledger
    from gxlib.backend.projector import Projector
    from gxlib.backend.replay import replay
    from gxlib.bench.replay import Rate, cpu_ceiling

    channel = environment["channel"]
    until = Projector(live).checkpoint()
    if until is None:
        return {}
    nodes_cpu = nodes_cpu_reading(node_pids) if node_pids else None
    cpu_before, nodes_before = own_cpu_seconds(), nodes_cpu() if nodes_cpu else None
    delivery = await measure_delivery(environment, channel, chaincode, until.block_number)
    delivery_rate = Rate(delivery.events, delivery.elapsed_s, own_cpu_seconds() - cpu_before,
                         nodes_cpu() - nodes_before if nodes_cpu and nodes_before is not None else None)
    with fresh_database(live_url) as url:
        target = make_engine(url)
        try:
            report = await replay_ledger(environment, channel, chaincode, live, target, nodes_cpu=nodes_cpu)
        finally:
            target.dispose()
    ceiling = cpu_ceiling(delivery_rate, Rate(report.events, report.elapsed_s, report.cpu_s, report.nodes_cpu_s),
                          machine_cores() if node_pids else None)
    events = [e async for batch in ledger_event_batches(environment, channel, chaincode, until.block_number)
              for e in batch]
    with fresh_database(live_url) as url:
        target = make_engine(url)
        try:
            alone = await asyncio.to_thread(replay, events, target, until=until)
        finally:
            target.dispose()
    return {"events": report.events, "blocks": delivery.blocks, "equal": float(report.equal),
            "delivery_events_per_s": round(delivery.events_per_s, 1),
            "replay_events_per_s": round(report.events_per_s, 1),
            "replay_cpu_s_per_1000_events": round(report.cpu_s * 1000 / report.events, 4) if report.events else 0.0,
            "projector_apply_events_per_s": round(alone.events_per_s, 1),
            **({"replay_cpu_ceiling": ceiling} if ceiling is not None else {})}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


async def _run_levels(local: LocalBackend, engine: Engine, endpoint: Endpoint, token: str, spec: PipelineBenchSpec,
                      node_pids: Mapping[str, int], levels: list[LevelFigures], say: Progress) -> None:
    """Each rate in turn until one saturates (appended to ``levels`` as they finish)."""
    for rate in spec.rates:
        say(f"pipeline at {rate:g} commands/s for {spec.seconds_per_rate:g}s")
        level = await _level(local, engine, endpoint, token, rate, spec, node_pids)
        levels.append(level)
        say(f"  accepted {level.accepted_per_s}/s, committed {level.committed_per_s}/s, "
            f"p95 {level.committed_latency.p95_ms} ms (endorsed by {level.endorsed_latency.p95_ms} ms), load client "
            f"{(level.load_client_cpu_s_per_command or 0) * 1000:.2f} ms CPU/command"
            f"{' — saturated' if level.saturated else ''}")
        if level.saturated:
            break


# --- the whole run -------------------------------------------------------------------------------------------------
async def run_pipeline_bench(local: LocalBackend, spec: PipelineBenchSpec, *, chaincode: str = "gxtv3",
                             progress: Progress | None = None) -> PipelineBenchReport:
    from gxlib.backend.db import make_engine

    say = progress or (lambda _msg: None)
    devnet = local.devnet
    environment = devnet.environment()
    node_pids = fabric_node_pids(devnet)
    say(f"raw Gateway ceiling: concurrency {spec.gateway_concurrency} for {spec.gateway_seconds:g}s")
    gateway = await run_gateway_bench(environment, GatewayBenchSpec(
        concurrency=spec.gateway_concurrency, seconds=spec.gateway_seconds, chaincode=chaincode), node_pids=node_pids)
    engine = make_engine(local.settings.database_url)
    token = next(iter(local.api_tokens()))
    levels: list[LevelFigures] = []
    try:
        endpoint = Endpoint.of(local.services[0].url)
        profiler: AbstractContextManager[object] = nullcontext()
        if spec.profile_dir is not None:
            pids = {s.name: s.pid for s in local.status().services if s.pid is not None}
            say(f"profiling {', '.join(pids)} with py-spy into {spec.profile_dir}")
            profiler = ServiceProfiler(pids, spec.profile_dir, rate=spec.profile_rate)
        with profiler:
            await _run_levels(local, engine, endpoint, token, spec, node_pids, levels, say)
        profiles = profiler.results() if isinstance(profiler, ServiceProfiler) else []
        say("stage headroom: outbox with no Fabric")
        headroom = await asyncio.to_thread(outbox_headroom, local.settings.database_url, local.settings.submitter,
                                           spec.headroom_commands)
        say("replay from block 0 against raw event delivery")
        replay = await replay_figures(environment, chaincode, engine, local.settings.database_url, node_pids)
    finally:
        engine.dispose()
    headroom["projector_apply_events_per_s"] = replay.get("projector_apply_events_per_s", 0.0)
    best = max(levels, key=lambda lv: lv.committed_per_s)
    # The latency goal compares like with like: the fastest level that is not saturated.
    steady = [lv for lv in levels if not lv.saturated] or levels[:1]
    steady_level = max(steady, key=lambda lv: lv.committed_per_s)
    ratios = {
        "pipeline_vs_gateway_throughput": _ratio(best.committed_per_s, gateway.throughput_tps),
        "projected_vs_gateway_throughput": _ratio(best.projected_per_s, gateway.throughput_tps),
        "e2e_p95_vs_gateway_p95": _ratio(steady_level.committed_latency.p95_ms, gateway.p95_ms),
        "projected_p95_vs_gateway_p95": _ratio(steady_level.projected_latency.p95_ms, gateway.p95_ms),
        "replay_vs_delivery_rate": _ratio(replay.get("replay_events_per_s"), replay.get("delivery_events_per_s")),
    }

    def meets(value: float | None, goal: float, at_least: bool) -> bool | None:
        return None if value is None else (value >= goal if at_least else value <= goal)

    goals = {
        "throughput >= 0.9x gateway": meets(ratios["pipeline_vs_gateway_throughput"],
                                            GOALS["throughput_ratio_min"], True),
        "e2e p95 <= 1.5x gateway p95": meets(ratios["e2e_p95_vs_gateway_p95"], GOALS["p95_ratio_max"], False),
        "replay >= 0.8x delivery": meets(ratios["replay_vs_delivery_rate"], GOALS["replay_ratio_min"], True),
    }
    return PipelineBenchReport(database=local.settings.database_url.split(":", 1)[0], gateway=gateway.to_json(),
                               levels=levels, best=best, headroom=headroom, replay=replay, ratios=ratios,
                               goals_met=goals, profiles=profiles)
