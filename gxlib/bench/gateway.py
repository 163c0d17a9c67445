"""``gx bench gateway``: raw Gateway submits against the devnet — throughput, submit→commit latency, CPU per tx.

The figure is the ceiling the backend pipeline is later measured against, and the one compared with the official
Go and Node clients (benchmarks/gateway_vs_node.py). Every submit gets its own arguments from templates (``{run}`` and
``{n}``), so the default Mint credits a fresh account each time and concurrent submits never MVCC-conflict.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from gxlib.bench.cpu import cpu_snapshot, cpu_spent, own_cpu_seconds
from gxlib.bench.submits import bench_submits
from gxlib.errors import GxError
from gxlib.fabric.gateway import Gateway

if TYPE_CHECKING:
    from gxlib.config import ChaincodeSettings
    from gxlib.devnet.network import Devnet

DEFAULT_FUNCTION = "TokenomicsContract:Mint"
# One fresh account per submit: Mint(accountID, amount, remark) as the super admin.
DEFAULT_ARGS: tuple[str, ...] = ("bench-{run}-{n}", "1", "gx bench gateway")
DEFAULT_IDENTITY = "super_admin"

# Called about once a second while the benchmark runs: (seconds elapsed, submits started so far).
TickCallback = Callable[[float, int], None]


class BenchNotReadyError(GxError):
    """The devnet or the chaincode a benchmark needs is not there."""


@dataclass(frozen=True)
class GatewayBenchSpec:
    """What to submit, as whom, how many at once and for how long."""

    concurrency: int
    seconds: float
    chaincode: str = "gxtv3"
    function: str = DEFAULT_FUNCTION
    args: tuple[str, ...] = DEFAULT_ARGS
    identity: str = DEFAULT_IDENTITY
    # Distinguishes this run's accounts from every earlier run's (and from a concurrent client's).
    run_tag: str = field(default_factory=lambda: secrets.token_hex(4))

    def __post_init__(self) -> None:
        if self.concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {self.concurrency}")
        if self.seconds <= 0:
            raise ValueError(f"seconds must be positive, got {self.seconds}")
        if not self.function:
            raise ValueError("function must not be empty")

    def args_for(self, n: int) -> tuple[str, ...]:
        """The arguments of the ``n``-th submit: the templates with ``{run}`` and ``{n}`` filled in."""
        return tuple(a.replace("{run}", self.run_tag).replace("{n}", str(n)) for a in self.args)


@dataclass(frozen=True)
class GatewayBenchReport:
    """One client's figures for one run (latencies in ms, CPU in seconds per committed transaction).

    The Go and Node clients in benchmarks/go-gateway and benchmarks/node-gateway print the same fields.
    """

    client: str
    function: str
    concurrency: int
    seconds: float
    committed: int
    failed: int
    throughput_tps: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]
    client_cpu_s_per_tx: float | None
    fabric_nodes_cpu_s_per_tx: float | None
    fabric_nodes_cpu_s: dict[str, float]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def per_tx(seconds: float, committed: int) -> float | None:
    """CPU seconds per committed transaction, ``None`` when nothing committed."""
    return round(seconds / committed, 6) if committed else None


async def run_gateway_bench(environment: Mapping[str, Any], spec: GatewayBenchSpec, *,
                            node_pids: Mapping[str, int] | None = None,
                            on_tick: TickCallback | None = None) -> GatewayBenchReport:
    """Connect as ``spec.identity``, warm up with one submit, then run ``spec`` and measure it.

    The CPU window is the Go and Node clients' (benchmarks/go-gateway, benchmarks/node-gateway): from after the
    untimed warm-up submit to the end of the last worker's last submit, every thread of the process. Start-up,
    imports, the connection and its TLS handshake and the opening of the commit-status stream are outside it.
    ``node_pids`` (name → pid of the peers and the orderer) adds their CPU time over the run to the report.
    """
    env = dict(environment)
    started_submits = 0

    def args_for(n: int) -> Sequence[str]:
        nonlocal started_submits
        started_submits += 1
        return spec.args_for(n)

    async with Gateway.from_environment(env, spec.identity) as gateway:
        contract = gateway.network(env["channel"]).contract(spec.chaincode)
        # Untimed: opens the TLS connection and lets the chaincode servers see a first transaction.
        await contract.submit(spec.function, *spec.args_for(0))
        nodes_before = cpu_snapshot(node_pids or {})
        cpu_before = own_cpu_seconds()
        began = time.monotonic()
        ticker = asyncio.create_task(_tick(on_tick, began, lambda: started_submits)) if on_tick else None
        try:
            result = await bench_submits(contract, spec.function, args_for, concurrency=spec.concurrency,
                                         seconds=spec.seconds)
        finally:
            if ticker is not None:
                ticker.cancel()
        client_cpu = own_cpu_seconds() - cpu_before
        nodes = cpu_spent(nodes_before, cpu_snapshot(node_pids or {}))
    return GatewayBenchReport(
        client="gxlib", function=spec.function, concurrency=result.concurrency, seconds=result.seconds,
        committed=result.committed, failed=result.failed, throughput_tps=result.throughput_tps,
        p50_ms=result.p50_ms, p95_ms=result.p95_ms, p99_ms=result.p99_ms, errors=result.errors,
        client_cpu_s_per_tx=per_tx(client_cpu, result.committed),
        fabric_nodes_cpu_s_per_tx=per_tx(sum(nodes.values()), result.committed) if nodes else None,
        fabric_nodes_cpu_s={name: round(seconds, 3) for name, seconds in nodes.items()},
    )


async def _tick(on_tick: TickCallback, began: float, started: Callable[[], int]) -> None:
    while True:
        await asyncio.sleep(1.0)
        on_tick(time.monotonic() - began, started())


def fabric_node_pids(devnet: Devnet) -> dict[str, int]:
    """Name → pid of every running peer and orderer of the devnet."""
    from gxlib.devnet import processes

    return {node.name: pid for node in devnet.layout.nodes if (pid := processes.running_pid(node)) is not None}


def check_ready(devnet: Devnet, chaincode: ChaincodeSettings) -> None:
    """Refuse early, with what to run, unless every node is healthy and the chaincode is committed and answers."""
    from gxlib.chaincode.deploy import ChaincodeOperator

    status = devnet.status()
    if not status.all_healthy:
        down = ", ".join(f"{n.name} ({n.detail or 'unhealthy'})" for n in status.nodes if not n.healthy)
        raise BenchNotReadyError(f"the devnet in {devnet.layout.root} is not up: {down}",
                                 hint="run `gx devnet up` (same --state-dir / GX_DEVNET_STATE_DIR) first")
    state = ChaincodeOperator(devnet, chaincode, devnet.progress).status()
    if not state.committed:
        raise BenchNotReadyError(f"chaincode {chaincode.name} is not committed on channel {state.channel}",
                                 hint="run `gx chaincode deploy --version 1.0` first")
    if not state.answering:
        raise BenchNotReadyError(f"chaincode {chaincode.name} is committed but its servers do not answer",
                                 hint="run `gx chaincode deploy --version "
                                      f"{state.version or '1.0'}` to start them again")
