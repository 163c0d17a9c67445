"""``gx bench replay``: the replay figure P4 alone — replay events/s ÷ raw event delivery events/s of the same blocks.

On a devnet whose ledger holds at least ``spec.events`` GX events (topped up with raw Gateway Mint submits, one
fresh account each, as ``gx bench gateway`` does), for each database:

1. the live projector (:meth:`Projector.run` over the Fabric event stream, batches of ``ProjectorSettings``)
   projects the whole history into a fresh database: the live projector's catch-up rate, and the "live" read
   models a replay must equal;
2. raw delivery of the same blocks, events extracted and dropped (the ceiling);
3. the ledger replay (:func:`~gxlib.backend.ledger_replay.replay_ledger`: delivery in a reader process, set-based
   apply here, one write) into another fresh database, compared with (1) — P4 is its rate over (2)'s;
4. the same replay with delivery in this process (how it ran before the reader process, for comparison);
5. the set-based apply alone on the events already in memory.

2–4 run back to back ``spec.rounds`` times; each round gives its own P4, and the report gives the median of the
rounds' ratios (a shared machine's noise hits a round's delivery and replay alike) and the median rates.

Each figure carries CPU-seconds per 1000 events of this process (all its threads) and of the reader process where
there is one (a PostgreSQL server's own CPU is not in it). Every database beside ``database_url`` is created fresh
and dropped afterwards.

Delivery and the replay also carry the devnet's Fabric nodes' CPU over the same time (the Gateway peer serving the
blocks), when their pids are given. From it each round computes P4's **CPU ceiling**: the fastest the replay could
go if every core of this machine did nothing but its work (its processes and the nodes, per event), over the round's
delivery rate. Where delivery alone keeps the cores busy — a peer and a client on 2 cores — P4 cannot pass that
ceiling whatever the overlap; only less CPU per event can raise it. It leaves out CPU the report does not see (a
PostgreSQL server, other work on the machine), so it is an upper bound.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from statistics import median_low
from typing import Any

from gxlib.backend.eventsource import Checkpoint
from gxlib.bench.cpu import machine_cores, nodes_cpu_reading, own_cpu_seconds
from gxlib.bench.gateway import GatewayBenchSpec, run_gateway_bench
from gxlib.errors import GxError

Progress = Callable[[str], None]
GOAL_RATIO = 0.8


class ReplayBenchError(GxError):
    """The replay benchmark could not produce its figures (history not reached, projector stuck, replay unequal)."""


@dataclass(frozen=True)
class ReplayBenchSpec:
    events: int = 5000  # GX events the ledger holds at least before measuring
    submit_concurrency: int = 32  # of the Mint submits that top the history up
    live_projector: bool = True  # also measure the live projector's catch-up over the same history
    projector_timeout_s: float = 600.0
    rounds: int = 3  # delivery, replay and in-process replay back to back, this many times; medians reported

    def __post_init__(self) -> None:
        if self.events < 1 or self.submit_concurrency < 1 or self.rounds < 1 or self.projector_timeout_s <= 0:
            raise ValueError("events, submit concurrency and rounds must be at least 1, the timeout positive")


@dataclass(frozen=True)
class Rate:
    """``events`` handled in ``elapsed_s`` wall time, costing ``cpu_s`` CPU-seconds of this process (and its reader
    process), and ``nodes_cpu_s`` of the devnet's Fabric nodes meanwhile (None: not measured)."""

    events: int
    elapsed_s: float
    cpu_s: float
    nodes_cpu_s: float | None = None

    @property
    def events_per_s(self) -> float:
        return round(self.events / self.elapsed_s, 1) if self.elapsed_s > 0 else 0.0

    @property
    def cpu_s_per_1000_events(self) -> float | None:
        return round(self.cpu_s * 1000 / self.events, 4) if self.events else None

    @property
    def nodes_cpu_s_per_1000_events(self) -> float | None:
        if self.nodes_cpu_s is None or not self.events:
            return None
        return round(self.nodes_cpu_s * 1000 / self.events, 4)

    def to_json(self) -> dict[str, float | int | None]:
        return {"events": self.events, "elapsed_s": round(self.elapsed_s, 3), "events_per_s": self.events_per_s,
                "cpu_s_per_1000_events": self.cpu_s_per_1000_events,
                "nodes_cpu_s_per_1000_events": self.nodes_cpu_s_per_1000_events}


@dataclass(frozen=True)
class ReplayRound:
    """One round: raw delivery, the replay and the in-process replay of the same history, back to back."""

    delivery: Rate
    replay: Rate
    replay_in_process: Rate
    cores: int | None = None  # of this machine, for the CPU ceiling

    def over_delivery(self, rate: Rate) -> float | None:
        """``rate``'s events/s ÷ this round's delivery events/s."""
        if not self.delivery.events_per_s:
            return None
        return round(rate.events_per_s / self.delivery.events_per_s, 3)

    @property
    def ratio(self) -> float | None:
        """P4 of this round: replay events/s ÷ delivery events/s."""
        return self.over_delivery(self.replay)

    @property
    def cpu_ceiling(self) -> float | None:
        """The highest P4 this machine's CPU allows in this round (:func:`cpu_ceiling`)."""
        return cpu_ceiling(self.delivery, self.replay, self.cores)

    def to_json(self) -> dict[str, Any]:
        return {"delivery": self.delivery.to_json(), "replay": self.replay.to_json(),
                "replay_in_process": self.replay_in_process.to_json(), "replay_vs_delivery_rate": self.ratio,
                "replay_in_process_vs_delivery_rate": self.over_delivery(self.replay_in_process),
                "cpu_ceiling": self.cpu_ceiling, "cores": self.cores}


def cpu_ceiling(delivery: Rate, replay: Rate, cores: int | None) -> float | None:
    """The highest replay ÷ delivery ratio ``cores`` allow: ``cores`` ÷ the replay's CPU-seconds per event (its
    processes' and the Fabric nodes') ÷ the delivery's events/s, at most 1. None when the nodes' CPU or the cores
    are not known."""
    if cores is None or replay.nodes_cpu_s is None or not replay.events or not delivery.events_per_s:
        return None
    cpu_per_event = (replay.cpu_s + replay.nodes_cpu_s) / replay.events
    if cpu_per_event <= 0:
        return None
    return round(min(1.0, cores / cpu_per_event / delivery.events_per_s), 3)


def _median_rate(rates: list[Rate]) -> Rate:
    """The rate of median events/s (the lower middle one of an even count)."""
    return sorted(rates, key=lambda r: r.events_per_s)[(len(rates) - 1) // 2]


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return median_low(known) if known else None


@dataclass(frozen=True)
class ReplayBenchFigures:
    database: str  # "sqlite" | "postgresql"
    blocks: int
    rounds: list[ReplayRound]
    apply_alone: Rate
    live_projector: Rate | None
    equal: bool

    @property
    def delivery(self) -> Rate:
        return _median_rate([r.delivery for r in self.rounds])

    @property
    def replay(self) -> Rate:
        return _median_rate([r.replay for r in self.rounds])

    @property
    def replay_in_process(self) -> Rate:
        return _median_rate([r.replay_in_process for r in self.rounds])

    @property
    def ratio(self) -> float | None:
        """P4: the median over the rounds of replay events/s ÷ delivery events/s, each measured back to back."""
        return _median([r.ratio for r in self.rounds])

    @property
    def in_process_ratio(self) -> float | None:
        """The same for the replay with delivery in this process."""
        return _median([r.over_delivery(r.replay_in_process) for r in self.rounds])

    @property
    def cpu_ceiling(self) -> float | None:
        """The median over the rounds of :attr:`ReplayRound.cpu_ceiling`."""
        return _median([r.cpu_ceiling for r in self.rounds])

    @property
    def goal_met(self) -> bool | None:
        return None if self.ratio is None else self.ratio >= GOAL_RATIO

    def to_json(self) -> dict[str, Any]:
        return {"database": self.database, "blocks": self.blocks, "equal": self.equal,
                "replay_vs_delivery_rate": self.ratio, "goal_met": self.goal_met, "cpu_ceiling": self.cpu_ceiling,
                "replay_in_process_vs_delivery_rate": self.in_process_ratio,
                "delivery": self.delivery.to_json(), "replay": self.replay.to_json(),
                "replay_in_process": self.replay_in_process.to_json(),
                "apply_alone": self.apply_alone.to_json(),
                "live_projector": self.live_projector.to_json() if self.live_projector else None,
                "rounds": [r.to_json() for r in self.rounds]}


@dataclass(frozen=True)
class History:
    blocks: int  # blocks 0..blocks-1 read
    events: int
    last: Checkpoint | None  # position of the last GX event


async def ledger_history(environment: Mapping[str, Any], chaincode: str) -> History:
    """How many GX events the channel holds now, and where the last one is."""
    from gxlib.backend.ledger_replay import ledger_event_batches
    from gxlib.fabric.gateway import Gateway

    env = dict(environment)
    async with Gateway.from_environment(env, "service") as gateway:
        height = await gateway.network(env["channel"]).block_height()
    events, last = 0, None
    async for batch in ledger_event_batches(env, env["channel"], chaincode, height - 1):
        events += len(batch)
        if batch:
            last = Checkpoint(batch[-1].block_number, batch[-1].tx_index, batch[-1].tx_id)
    return History(height, events, last)


async def top_up_history(environment: Mapping[str, Any], chaincode: str, spec: ReplayBenchSpec,
                         say: Progress) -> History:
    """Submit Mints (one fresh account each) until the ledger holds at least ``spec.events`` GX events."""
    history = await ledger_history(environment, chaincode)
    rate = 100.0  # a first guess of committed Mints per second; corrected by each round
    for _round in range(20):
        missing = spec.events - history.events
        if missing <= 0:
            return history
        seconds = min(60.0, max(2.0, missing / rate))
        say(f"ledger holds {history.events} GX events; submitting Mints for {seconds:.0f}s to reach {spec.events}")
        report = await run_gateway_bench(environment, GatewayBenchSpec(
            concurrency=spec.submit_concurrency, seconds=seconds, chaincode=chaincode))
        rate = max(report.throughput_tps, 1.0)
        history = await ledger_history(environment, chaincode)
    if history.events < spec.events:
        raise ReplayBenchError(f"the ledger holds {history.events} GX events after 20 rounds of submits, "
                               f"not {spec.events}", hint="check the devnet's health (`gx devnet status`)")
    return history


async def _live_projection(environment: Mapping[str, Any], chaincode: str, target_url: str, last: Checkpoint,
                           events: int, timeout_s: float) -> Rate:
    """The live projector from an empty database up to ``last``: its catch-up rate over the history."""
    from gxlib.backend.db import make_engine, migrate
    from gxlib.backend.fabric_events import FabricEventSource
    from gxlib.backend.projector import Projector

    engine = make_engine(target_url)
    try:
        await asyncio.to_thread(migrate, engine)
        projector = Projector(engine, stream=chaincode)
        source = FabricEventSource(dict(environment), environment["channel"], chaincode)
        stop = asyncio.Event()
        cpu_before, started = own_cpu_seconds(), time.perf_counter()
        task = asyncio.create_task(projector.run(source, stop))
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                checkpoint = await asyncio.to_thread(projector.checkpoint)
                if checkpoint is not None and checkpoint.position >= last.position:
                    break
                if task.done() or time.monotonic() > deadline:
                    raise ReplayBenchError(f"the live projector did not reach block {last.block_number} in "
                                           f"{timeout_s:g}s (at {checkpoint})")
                await asyncio.sleep(0.05)
            rate = Rate(events, time.perf_counter() - started, own_cpu_seconds() - cpu_before)
        finally:
            stop.set()
            with contextlib.suppress(Exception):
                await task
        return rate
    finally:
        engine.dispose()


async def measure_replay(environment: Mapping[str, Any], chaincode: str, database_url: str, history: History, *,
                         live_projector: bool = True, timeout_s: float = 600.0, rounds_wanted: int = 3,
                         node_pids: Mapping[str, int] | None = None, say: Progress | None = None
                         ) -> ReplayBenchFigures:
    """The four measurements of the module docstring on the database server of ``database_url`` (a SQLite URL:
    files beside it in a temporary directory). With ``node_pids`` (name → pid of the devnet's Fabric nodes) the
    delivery and the replay carry the nodes' CPU, and the rounds their CPU ceiling."""
    from gxlib.backend.db import make_engine
    from gxlib.backend.ledger_replay import (
        fresh_database,
        ledger_event_batches,
        measure_delivery,
        replay_ledger,
    )
    from gxlib.backend.replay import replay

    say = say or (lambda _msg: None)
    if history.last is None:
        raise ReplayBenchError("the ledger holds no GX event to replay", hint="top the history up first")
    nodes_cpu = nodes_cpu_reading(node_pids) if node_pids else None
    cores = machine_cores() if node_pids else None
    database = "sqlite" if database_url.startswith("sqlite") else "postgresql"
    channel = environment["channel"]
    last = history.last
    with contextlib.ExitStack() as stack:
        live_url = stack.enter_context(fresh_database(database_url))
        say(f"{database}: live projector over {history.events} events" if live_projector else
            f"{database}: building the live read models (set-based)")
        projector_rate: Rate | None = None
        if live_projector:
            projector_rate = await _live_projection(environment, chaincode, live_url, last, history.events,
                                                    timeout_s)
        live = make_engine(live_url)
        stack.callback(live.dispose)
        if not live_projector:
            events = [e async for b in ledger_event_batches(environment, channel, chaincode, last.block_number)
                      for e in b]
            await asyncio.to_thread(replay, events, live, until=last, stream=chaincode)

        rounds: list[ReplayRound] = []
        equal = True
        for number in range(1, rounds_wanted + 1):
            say(f"{database}: round {number}/{rounds_wanted}: raw delivery of blocks 0..{last.block_number}, the "
                "replay, the replay with delivery in this process")
            cpu_before, nodes_before = own_cpu_seconds(), nodes_cpu() if nodes_cpu else None
            delivery = await measure_delivery(environment, channel, chaincode, last.block_number)
            delivery_rate = Rate(delivery.events, delivery.elapsed_s, own_cpu_seconds() - cpu_before,
                                 nodes_cpu() - nodes_before if nodes_cpu and nodes_before is not None else None)
            replays = []
            for reader_process in (True, False):
                with fresh_database(database_url) as url:
                    target = make_engine(url)
                    try:
                        report = await replay_ledger(environment, channel, chaincode, live, target, stream=chaincode,
                                                     reader_process=reader_process, nodes_cpu=nodes_cpu)
                    finally:
                        target.dispose()
                equal = equal and report.equal
                replays.append(Rate(report.events, report.elapsed_s, report.cpu_s, report.nodes_cpu_s))
            rounds.append(ReplayRound(delivery_rate, replays[0], replays[1], cores))

        say(f"{database}: set-based apply alone on events in memory")
        events = [e async for b in ledger_event_batches(environment, channel, chaincode, last.block_number)
                  for e in b]
        alone_target = make_engine(stack.enter_context(fresh_database(database_url)))
        stack.callback(alone_target.dispose)
        alone = await asyncio.to_thread(replay, events, alone_target, until=last, stream=chaincode)
        alone_rate = Rate(alone.events, alone.elapsed_s, alone.cpu_s)
    return ReplayBenchFigures(database, delivery.blocks, rounds, alone_rate, projector_rate, equal)


@dataclass(frozen=True)
class ReplayBenchReport:
    events: int
    blocks: int
    figures: list[ReplayBenchFigures]
    load_average: tuple[float, float, float]

    def to_json(self) -> dict[str, Any]:
        return {"events": self.events, "blocks": self.blocks, "load_average": list(self.load_average),
                "figures": [f.to_json() for f in self.figures]}


async def run_replay_bench(environment: Mapping[str, Any], chaincode: str, database_urls: Mapping[str, str],
                           spec: ReplayBenchSpec, *, node_pids: Mapping[str, int] | None = None,
                           progress: Progress | None = None) -> ReplayBenchReport:
    """Top the history up to ``spec.events``, then measure on each of ``database_urls`` (name → URL) in turn.
    ``node_pids``: the devnet's Fabric nodes (name → pid), whose CPU the figures then carry."""
    say = progress or (lambda _msg: None)
    history = await top_up_history(environment, chaincode, spec, say)
    figures = []
    for url in database_urls.values():
        figures.append(await measure_replay(environment, chaincode, url, history, live_projector=spec.live_projector,
                                            timeout_s=spec.projector_timeout_s, rounds_wanted=spec.rounds,
                                            node_pids=node_pids, say=say))
    return ReplayBenchReport(history.events, history.blocks, figures, os.getloadavg())


def report_lines(report: ReplayBenchReport) -> list[str]:
    """The report as the CLI prints it."""
    def cpu(rate: Rate | None) -> str:
        if rate is None or rate.cpu_s_per_1000_events is None:
            return "-"
        nodes = rate.nodes_cpu_s_per_1000_events
        return f"{rate.cpu_s_per_1000_events:.3f} CPU-s/1000 ev" + (f", Fabric nodes {nodes:.3f}" if nodes is not None
                                                                     else "")

    def ceiling(f: ReplayBenchFigures) -> list[str]:
        if f.cpu_ceiling is None:
            return []
        cores = next((r.cores for r in f.rounds if r.cores), None)
        return [f"  CPU ceiling     {f.cpu_ceiling}  on {cores} cores: P4 if they did nothing but the replay's "
                f"work (median of: {' '.join(str(r.cpu_ceiling) for r in f.rounds)})"]

    lines = [f"history       {report.events} GX events in {report.blocks} blocks · load average "
             + " ".join(f"{x:.2f}" for x in report.load_average)]
    for f in report.figures:
        live = (f"{f.live_projector.events_per_s:g} ev/s ({cpu(f.live_projector)})" if f.live_projector else "-")
        lines += [
            f"{f.database}",
            f"  delivery        {f.delivery.events_per_s:>10g} ev/s  ({cpu(f.delivery)})",
            f"  replay          {f.replay.events_per_s:>10g} ev/s  ({cpu(f.replay)})"
            f"  {'equal to the live read models' if f.equal else 'DIFFERS from the live read models'}",
            f"  ratio (P4)      {f.ratio}  goal >= {GOAL_RATIO}: {'met' if f.goal_met else 'MISSED'}"
            f"  (median of {len(f.rounds)} rounds: {' '.join(str(r.ratio) for r in f.rounds)})",
            *ceiling(f),
            f"  in-process      {f.replay_in_process.events_per_s:>10g} ev/s  ({cpu(f.replay_in_process)})"
            f"  ratio {f.in_process_ratio} (delivery in this process)",
            f"  apply alone     {f.apply_alone.events_per_s:>10g} ev/s  ({cpu(f.apply_alone)})",
            f"  live projector  {live}",
        ]
    return lines

