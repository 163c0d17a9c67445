"""``gx bench``: benchmarks against the local network. Thin: options in, :mod:`gxlib.bench.gateway` does the work."""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path

import click
from rich.console import Console

from gxlib.bench.gateway import DEFAULT_ARGS, DEFAULT_FUNCTION, DEFAULT_IDENTITY, GatewayBenchReport, GatewayBenchSpec
from gxlib.config import ChaincodeSettings, DevnetSettings, FabricBuildSettings
from gxlib.progress import Progress

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


@click.group()
def bench() -> None:
    """Benchmarks on the local network: figures to compare, never pass/fail."""


@bench.command("gateway")
@click.option("--concurrency", type=click.IntRange(min=1, max=10_000), default=10, show_default=True,
              help="Submits in flight at once (one connection).")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=3600), default=10.0, show_default=True,
              help="How long to keep submitting.")
@click.option("--function", "function", default=DEFAULT_FUNCTION, show_default=True,
              help="Chaincode function to submit (Contract:Function).")
@click.option("--arg", "args", multiple=True, metavar="TEMPLATE",
              help="An argument (repeat in order); {n} is the submit's number, {run} this run's tag. "
                   f"Default for {DEFAULT_FUNCTION}: {' '.join(DEFAULT_ARGS)}; none for other functions.")
@click.option("--identity", default=DEFAULT_IDENTITY, show_default=True,
              help="Who submits: super_admin, service, admin:org1, or a full identity name.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="The devnet's state directory [env GX_DEVNET_STATE_DIR].")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
@click.option("--quiet", is_flag=True,
              help="No progress lines on stderr while it runs (as the Go and Node clients' --quiet, so that a "
                   "side-by-side run measures the clients alone).")
def gateway(concurrency: int, seconds: float, function: str, args: tuple[str, ...], identity: str,
            state_dir: Path | None, as_json: bool, quiet: bool) -> None:
    """Raw Gateway submits on the devnet: throughput, p50/p95/p99 submit→commit latency, and CPU-seconds per
    committed transaction of this client and of the peers and orderer.

    Needs the devnet up (`gx devnet up`) and the GX chaincode committed (`gx chaincode deploy --version 1.0`).
    The default submits Mint as the super admin, one fresh account per submit, so no two conflict.
    """
    from gxlib.bench.gateway import check_ready, fabric_node_pids, run_gateway_bench
    from gxlib.devnet.network import Devnet

    chaincode = ChaincodeSettings()
    if not args and function == DEFAULT_FUNCTION:
        args = DEFAULT_ARGS
    spec = GatewayBenchSpec(concurrency=concurrency, seconds=seconds, chaincode=chaincode.name,
                            function=function, args=args, identity=identity)
    progress = Progress(err, quiet=quiet)
    settings = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    devnet = Devnet(settings, FabricBuildSettings(), Progress(err, quiet=True))
    with progress.task(f"checking the devnet in {devnet.layout.root} and {chaincode.name}"):
        check_ready(devnet, chaincode)

    def tick(elapsed: float, started: int) -> None:
        progress.info(f"  … {min(elapsed, seconds):.0f}s of {seconds:g}s, {started} submits started")

    with progress.task(f"submitting {function} from {concurrency} workers for {seconds:g}s"):
        report = asyncio.run(run_gateway_bench(devnet.environment(), spec, node_pids=fabric_node_pids(devnet),
                                               on_tick=None if quiet else tick))
    if as_json:
        out.print(json.dumps(report.to_json(), indent=2), markup=False)
    else:
        _print_report(report)


def _print_report(report: GatewayBenchReport) -> None:
    def cpu(value: float | None) -> str:
        return f"{value * 1000:.2f} ms" if value is not None else "-"

    out.print(f"{report.function}: {report.committed} committed, {report.failed} failed in {report.seconds:g}s "
              f"at concurrency {report.concurrency}", markup=False)
    out.print(f"throughput   {report.throughput_tps:g} tx/s")
    out.print(f"latency      p50 {report.p50_ms:g} ms · p95 {report.p95_ms:g} ms · p99 {report.p99_ms:g} ms "
              "(submit→commit)")
    out.print(f"CPU per tx   client {cpu(report.client_cpu_s_per_tx)} · peers+orderer "
              f"{cpu(report.fabric_nodes_cpu_s_per_tx)} "
              f"({', '.join(f'{n} {s:g}s' for n, s in report.fabric_nodes_cpu_s.items()) or 'not measured'})")
    if report.errors:
        out.print("errors       " + ", ".join(f"{k} ×{v}" for k, v in report.errors.items()), markup=False)


@bench.command("clients")
@click.option("--clients", "clients", default="gxlib,go,node", show_default=True,
              help="Clients to alternate, comma-separated: gxlib, go (official Go client), node (official Node).")
@click.option("--concurrency", default="10,50", show_default=True, help="Concurrency levels, comma-separated.")
@click.option("--seconds", type=click.FloatRange(min=0, min_open=True, max=3600), default=5.0, show_default=True,
              help="Length of each run.")
@click.option("--rounds", type=click.IntRange(min=1, max=100), default=3, show_default=True,
              help="Runs of every client per level (the summary is their median).")
@click.option("--port-offset", type=click.IntRange(min=0, max=50000), default=23300, show_default=True,
              help="Port offset of the throwaway devnet it brings up.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def clients_command(clients: str, concurrency: str, seconds: float, rounds: int, port_offset: int,
                    as_json: bool) -> None:
    """gxlib's Gateway client beside the official Go and Node clients in one run, on a throwaway devnet: each
    client's throughput, p95 and CPU ms per committed transaction (median of the rounds) and gxlib's ratios.

    Needs Go (the Go client is built once, cached under ~/.cache/gxlib/bench) and Node.js for the Node client.
    """
    from gxlib.bench.clients import ClientsBenchSpec, run_side_by_side

    try:
        spec = ClientsBenchSpec(clients=tuple(c.strip() for c in clients.split(",") if c.strip()),
                                concurrency=tuple(int(c) for c in concurrency.split(",") if c.strip()),
                                seconds=seconds, rounds=rounds, port_offset=port_offset)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    report = run_side_by_side(spec, Progress(err))
    if as_json:
        out.print(json.dumps(report, indent=2), markup=False)
        return
    for level, figures in report["levels"].items():
        out.print(f"concurrency {level} (median of {report['rounds']} rounds)", markup=False)
        for client in report["clients"]:
            f = figures[client]
            out.print(f"  {client:<6} {f['throughput_tps']} tx/s · p95 {f['p95_ms']} ms · client CPU "
                      f"{f['client_cpu_ms_per_tx']} ms/tx", markup=False)
        for key, value in figures.items():
            if key.startswith("client_cpu_ratio"):
                out.print(f"  {key} {value}", markup=False)


def _rates(value: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(part) for part in value.split(",") if part.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers") from None
    if not rates or any(r <= 0 for r in rates):
        raise click.BadParameter("every rate must be a positive number")
    return rates


@bench.command("pipeline")
@click.option("--rates", default="10,20,40,80,160,320", show_default=True,
              help="Commands per second to offer, in rising order (stops at the first saturated one).")
@click.option("--seconds", type=click.FloatRange(min=1, max=3600), default=10.0, show_default=True,
              help="How long to post at each rate.")
@click.option("--gateway-concurrency", type=click.IntRange(min=1, max=10_000), default=32, show_default=True,
              help="Concurrency of the raw Gateway run measured first (the ceiling).")
@click.option("--gateway-seconds", type=click.FloatRange(min=1, max=3600), default=10.0, show_default=True)
@click.option("--headroom-commands", type=click.IntRange(min=10, max=1_000_000), default=2000, show_default=True,
              help="Commands for the outbox-alone headroom run (in a fresh database).")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="The devnet's state directory [env GX_DEVNET_STATE_DIR].")
@click.option("--database-url", default=None,
              help="The backend's database [env GX_BACKEND_DATABASE_URL; default: the running backend's].")
@click.option("--connections", type=click.IntRange(min=1, max=4096), default=64, show_default=True,
              help="Keep-alive connections of the load client.")
@click.option("--profile", "profile_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Sample every backend service with py-spy while the rates run; write the collapsed stacks to "
                   "this directory and print each service's top 10 functions by own CPU.")
@click.option("--profile-rate", type=click.IntRange(min=1, max=1000), default=100, show_default=True,
              help="py-spy samples per second (with --profile).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def pipeline(rates: str, seconds: float, gateway_concurrency: int, gateway_seconds: float, headroom_commands: int,
             state_dir: Path | None, database_url: str | None, connections: int, profile_dir: Path | None,
             profile_rate: int, as_json: bool) -> None:
    """The CQRS pipeline (API → outbox → submitter → Fabric → projector) at rising command rates until it
    saturates, next to raw Gateway submits in the same run: throughput, p50/p95/p99 accepted→committed and
    accepted→projected, CPU-seconds per committed command per service, each stage's headroom alone, the ledger
    replay rate, and the ratios to the goals.

    Needs the devnet, gxtv3 and the backend up (`gx devnet up`, `gx chaincode deploy`, `gx backend up`).
    """
    from gxlib.backend.local import LocalBackend
    from gxlib.backend.settings import BackendSettings
    from gxlib.bench.gateway import check_ready
    from gxlib.bench.pipeline import PipelineBenchSpec, run_pipeline_bench
    from gxlib.bench.profile import ServiceProfiler
    from gxlib.devnet.network import Devnet

    if profile_dir is not None:
        ServiceProfiler.executable()  # refuse before anything runs if py-spy is missing
    spec = PipelineBenchSpec(rates=_rates(rates), seconds_per_rate=seconds, gateway_concurrency=gateway_concurrency,
                             gateway_seconds=gateway_seconds, headroom_commands=headroom_commands,
                             connections=connections, profile_dir=profile_dir,
                             profile_rate=profile_rate)
    chaincode = ChaincodeSettings()
    progress = Progress(err)
    settings = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    devnet = Devnet(settings, FabricBuildSettings(), Progress(err, quiet=True))
    local = LocalBackend(devnet, BackendSettings(database_url=database_url) if database_url else BackendSettings(),
                         Progress(err, quiet=True))
    with progress.task(f"checking the devnet in {devnet.layout.root}, {chaincode.name} and the backend"):
        check_ready(devnet, chaincode)
        if not local.status().all_healthy:
            raise click.ClickException("the backend is not up: run `gx backend up` (same settings) first")
        local.require_running_database()  # a given database the services do not write: refused, both named
    report = asyncio.run(run_pipeline_bench(local, spec, chaincode=chaincode.name, progress=progress.info))
    if as_json:
        out.print(json.dumps(report.to_json(), indent=2, default=str), markup=False)
        return
    g = report.gateway
    out.print(f"raw Gateway   {g['throughput_tps']:g} tx/s · p50 {g['p50_ms']:g} · p95 {g['p95_ms']:g} · "
              f"p99 {g['p99_ms']:g} ms (concurrency {g['concurrency']})", markup=False)
    for lv in report.levels:
        c, p = lv.committed_latency, lv.projected_latency
        out.print(f"offered {lv.offered_per_s:>6g}/s  accepted {lv.accepted_per_s:>7g}/s  committed "
                  f"{lv.committed_per_s:>7g}/s (p50 {c.p50_ms:g} p95 {c.p95_ms:g} p99 {c.p99_ms:g} ms; endorsed by p95 "
                  f"{lv.endorsed_latency.p95_ms:g} ms)  projected "
                  f"{lv.projected_per_s:>7g}/s (p95 {p.p95_ms:g} ms)  CPU/cmd "
                  + ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in lv.cpu_s_per_committed.items() if v is not None)
                  + f"  load client {_ms(lv.load_client_cpu_s_per_command)} CPU/posted"
                  + ("  SATURATED" if lv.saturated else ""), markup=False)
    out.print("headroom      " + ", ".join(f"{k} {v:g}" for k, v in report.headroom.items()), markup=False)
    out.print("replay        " + ", ".join(f"{k} {v:g}" for k, v in report.replay.items()), markup=False)
    out.print("ratios        " + ", ".join(f"{k} {v}" for k, v in report.ratios.items()), markup=False)
    out.print("goals         " + ", ".join(f"{k}: {'met' if v else 'MISSED' if v is False else '-'}"
                                           for k, v in report.goals_met.items()), markup=False)
    for profile in report.profiles:
        out.print(f"profile {profile.service} (pid {profile.pid}): {profile.samples} samples, top by own CPU "
                  f"— {profile.raw_file}", markup=False)
        for entry in profile.top:
            out.print(f"  {entry.own_share * 100:5.1f}%  {entry.own_samples:>6}  {entry.function}", markup=False)


def _ms(seconds: float | None) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds is not None else "-"


@bench.command("replay")
@click.option("--events", type=click.IntRange(min=1, max=10_000_000), default=5000, show_default=True,
              help="GX events the ledger must hold; topped up with Mint submits (one fresh account each) if fewer.")
@click.option("--database", "databases", type=click.Choice(["sqlite", "postgresql"]), multiple=True,
              help="Where to replay (repeatable; default both). postgresql without --postgresql-url starts a "
                   "throwaway local cluster.")
@click.option("--postgresql-url", default=None,
              help="A PostgreSQL server to create the fresh databases on (its user may CREATE DATABASE).")
@click.option("--live-projector/--no-live-projector", default=True, show_default=True,
              help="Also time the live projector catching up over the same history (it builds the read models "
                   "the replay is compared with; without it they are built set-based).")
@click.option("--rounds", type=click.IntRange(min=1, max=100), default=3, show_default=True,
              help="Delivery, replay and in-process replay back to back this many times; P4 is the median of the "
                   "rounds' ratios.")
@click.option("--state-dir", type=click.Path(path_type=Path), default=None,
              help="The devnet's state directory [env GX_DEVNET_STATE_DIR].")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as one JSON object.")
def replay_command(events: int, databases: tuple[str, ...], postgresql_url: str | None, live_projector: bool,
                   rounds: int, state_dir: Path | None, as_json: bool) -> None:
    """The replay figure (P4) alone: raw event delivery, the ledger replay and their ratio, the set-based apply on
    events in memory and the live projector's catch-up — events/s and CPU-seconds per 1000 events of this process,
    on SQLite and PostgreSQL, every database fresh and dropped afterwards.

    Delivery and the replay also show the Fabric nodes' CPU per 1000 events, and P4's CPU ceiling: the ratio the
    replay would reach if this machine's cores did nothing but its work (its processes and the peer's, per event).
    When that ceiling is below the goal, the machine, not the overlap, bounds P4.

    Needs the devnet up and the GX chaincode committed (`gx devnet up`, `gx chaincode deploy --version 1.0`);
    no backend processes.
    """
    import tempfile

    from gxlib.bench.gateway import check_ready, fabric_node_pids
    from gxlib.bench.replay import ReplayBenchSpec, report_lines, run_replay_bench
    from gxlib.devnet.network import Devnet

    chaincode = ChaincodeSettings()
    progress = Progress(err)
    settings = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    devnet = Devnet(settings, FabricBuildSettings(), Progress(err, quiet=True))
    with progress.task(f"checking the devnet in {devnet.layout.root} and {chaincode.name}"):
        check_ready(devnet, chaincode)
    wanted = databases or ("sqlite", "postgresql")
    with contextlib.ExitStack() as stack:
        urls: dict[str, str] = {}
        if "sqlite" in wanted:
            urls["sqlite"] = f"sqlite:///{stack.enter_context(tempfile.TemporaryDirectory())}/live.sqlite3"
        if "postgresql" in wanted:
            urls["postgresql"] = postgresql_url or _throwaway_postgresql(stack, progress)
        report = asyncio.run(run_replay_bench(devnet.environment(), chaincode.name, urls,
                                              ReplayBenchSpec(events=events, live_projector=live_projector,
                                                              rounds=rounds),
                                              node_pids=fabric_node_pids(devnet), progress=progress.info))
    if as_json:
        out.print(json.dumps(report.to_json(), indent=2), markup=False)
        return
    for line in report_lines(report):
        out.print(line, markup=False)


def _throwaway_postgresql(stack: contextlib.ExitStack, progress: Progress) -> str:
    """A local PostgreSQL cluster in a temporary directory, stopped and removed when ``stack`` closes."""
    import tempfile

    from gxlib.backend.pgcluster import PostgresCluster

    root = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="gx-bench-pg-")))
    with progress.task(f"starting a throwaway PostgreSQL in {root}"):
        cluster = PostgresCluster(root / "cluster").start()
    stack.callback(cluster.stop)
    return cluster.create_database("gx_bench_replay")
