"""``gx bench``: benchmarks against the local network. Thin: options in, :mod:`gxlib.bench.gateway` does the work."""

from __future__ import annotations

import asyncio
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
def gateway(concurrency: int, seconds: float, function: str, args: tuple[str, ...], identity: str,
            state_dir: Path | None, as_json: bool) -> None:
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
    progress = Progress(err)
    overrides = {"state_dir": state_dir} if state_dir else {}
    devnet = Devnet(DevnetSettings(**overrides), FabricBuildSettings(), Progress(err, quiet=True))
    with progress.task(f"checking the devnet in {devnet.layout.root} and {chaincode.name}"):
        check_ready(devnet, chaincode)

    def tick(elapsed: float, started: int) -> None:
        progress.info(f"  … {min(elapsed, seconds):.0f}s of {seconds:g}s, {started} submits started")

    with progress.task(f"submitting {function} from {concurrency} workers for {seconds:g}s"):
        report = asyncio.run(run_gateway_bench(devnet.environment(), spec, node_pids=fabric_node_pids(devnet),
                                               on_tick=tick))
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
