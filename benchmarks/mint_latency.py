"""Mint's submit→commit latency on the devnet (the issue's closing figure), alone and under concurrency.

Brings a throwaway devnet up on shifted ports, deploys gxtv3 with `gx chaincode deploy`'s code, then times
TokenomicsContract:Mint as the super admin: sequential submits (one in flight: p50/p95 is the latency a lone
command sees, bounded below by the orderer's batch timeout) and concurrent ones (throughput). Prints JSON,
including CPU-seconds per committed Mint for this client process and for the chaincode servers.

    .venv/bin/python benchmarks/mint_latency.py [--count 100] [--concurrency 20] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from gxlib.bench.stats import percentile
from gxlib.bench.submits import bench_submits
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import DevnetSettings
from gxlib.devnet import processes
from gxlib.devnet.network import Devnet
from gxlib.fabric.gateway import Gateway
from gxlib.progress import Progress


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()

    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _measure(devnet: Devnet, count: int, concurrency: int, seconds: float) -> dict[str, object]:
    env = devnet.environment()
    async with Gateway.from_environment(env, "super_admin") as gateway:
        contract = gateway.network(env["channel"]).contract("gxtv3", "TokenomicsContract")
        await contract.submit("Mint", "bench-warmup", "1", "warm-up")
        latencies = []
        cpu_before = _own_cpu()
        for i in range(count):
            started = time.perf_counter()
            await contract.submit("Mint", f"bench-{i % 10}", "100000000", "latency benchmark")
            latencies.append((time.perf_counter() - started) * 1000)
        sequential_cpu = (_own_cpu() - cpu_before) / count
        concurrent = await bench_submits(contract, "Mint",
                                         lambda n: (f"bench-c{n % 50}", "1", "throughput benchmark"),
                                         concurrency=concurrency, seconds=seconds)
    return {
        "sequential": {"count": count, "p50_ms": round(percentile(latencies, 0.5), 1),
                       "p95_ms": round(percentile(latencies, 0.95), 1),
                       "p99_ms": round(percentile(latencies, 0.99), 1),
                       "client_cpu_s_per_mint": round(sequential_cpu, 4)},
        "concurrent": concurrent.to_json(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--port-offset", type=int, default=23100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gx-bench-") as state:
        devnet = Devnet(DevnetSettings(state_dir=Path(state), port_offset=args.port_offset),
                        progress=Progress(quiet=True))
        try:
            devnet.up()
            operator = ChaincodeOperator(devnet, progress=Progress(quiet=True))
            operator.deploy("1.0")
            server_pids = [processes.running_pid(s) for s in operator.servers]
            cc_cpu_before = sum(_cpu_seconds(p) for p in server_pids if p)
            figures = asyncio.run(_measure(devnet, args.count, args.concurrency, args.seconds))
            cc_cpu = sum(_cpu_seconds(p) for p in server_pids if p) - cc_cpu_before
            committed = args.count + int(figures["concurrent"]["committed"])  # type: ignore[index]
            figures["chaincode_servers_cpu_s_per_mint"] = round(cc_cpu / max(committed, 1), 4)
            figures["batch_timeout_ms"] = devnet.settings.batch_timeout_ms
        finally:
            devnet.down(purge=True)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
