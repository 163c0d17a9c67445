"""gxlib's Gateway client against the official Go and Node clients (hyperledger/fabric-gateway), side by side in
one run.

Brings a throwaway devnet up on shifted ports, deploys gxtv3, builds the Go client (benchmarks/go-gateway, with
the local Go, cached under ~/.cache/gxlib/bench/ by a hash of its sources) and installs the Node script's pinned
packages (`npm ci`, once), warms every client up, then alternates them — gxlib, go, node, gxlib, go, node — at
each concurrency level. All submit TokenomicsContract:Mint as the super admin through the same peer, one fresh
account per submit, and each runs as its own process so that its CPU-seconds per committed tx are its own.
Prints JSON: every run, the mean per client and level, and the ratios gxlib/go and gxlib/node (throughput:
higher is better; p95 and client CPU per tx: lower is better).

    .venv/bin/python benchmarks/gateway_vs_node.py [--clients gxlib go node] [--concurrency 10 50] [--seconds 5]
                                                   [--rounds 2] [--port-offset 23300]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import mean
from typing import Any

from gxlib.bench.gateway import fabric_node_pids
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress

NODE_DIR = Path(__file__).resolve().parent / "node-gateway"
GO_DIR = Path(__file__).resolve().parent / "go-gateway"
GO_SOURCES = ("go.mod", "go.sum", "main.go")
CLIENTS = ("gxlib", "go", "node")
FIGURES = ("throughput_tps", "p50_ms", "p95_ms", "p99_ms", "client_cpu_s_per_tx", "fabric_nodes_cpu_s_per_tx")


def ensure_node_packages(progress: Progress) -> None:
    """`npm ci` from the lock file unless node_modules already matches it."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        sys.exit("error: node and npm are needed for the Node client (Node.js >= 20.9)")
    installed_lock = NODE_DIR / "node_modules" / ".package-lock.json"
    if installed_lock.exists() and installed_lock.stat().st_mtime >= (NODE_DIR / "package-lock.json").stat().st_mtime:
        return
    with progress.task("npm ci in benchmarks/node-gateway"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True,
                       stdout=subprocess.DEVNULL)


def go_client_path(cache_root: Path | None = None) -> Path:
    """Where the Go client built from the current sources is cached (outside the repository, like Fabric)."""
    digest = hashlib.sha256()
    for name in GO_SOURCES:
        digest.update((GO_DIR / name).read_bytes())
    root = cache_root or FabricBuildSettings().cache_root
    return root / "bench" / f"go-gateway-{digest.hexdigest()[:12]}"


def ensure_go_client(progress: Progress) -> Path:
    """`go build` the Go client once per source version (modules from the Go module proxy, pinned by go.sum)."""
    binary = go_client_path()
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        sys.exit("error: Go is needed to build the Go client (benchmarks/go-gateway)")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    with progress.task(f"go build benchmarks/go-gateway → {binary}"):
        subprocess.run(["go", "build", "-mod=readonly", "-trimpath", "-o", str(partial), "."], cwd=GO_DIR,
                       check=True)
        partial.replace(binary)
    return binary


def run_gx(state_dir: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "gxlib.cli", "bench", "gateway", "--state-dir", str(state_dir),
               "--concurrency", str(concurrency), "--seconds", str(seconds), "--json"]
    return _run_json(command, cwd=None)


def run_node(env_file: Path, pids: dict[str, int], concurrency: int, seconds: float) -> dict[str, Any]:
    command = ["node", str(NODE_DIR / "bench.mjs"), "--env", str(env_file), "--concurrency", str(concurrency),
               "--seconds", str(seconds), "--node-pids", ",".join(f"{n}={p}" for n, p in pids.items()),
               "--clk-tck", str(os.sysconf("SC_CLK_TCK")), "--quiet"]
    return _run_json(command, cwd=NODE_DIR)


def run_go(binary: Path, env_file: Path, pids: dict[str, int], concurrency: int, seconds: float) -> dict[str, Any]:
    command = [str(binary), "--env", str(env_file), "--concurrency", str(concurrency), "--seconds", str(seconds),
               "--node-pids", ",".join(f"{n}={p}" for n, p in pids.items()),
               "--clk-tck", str(os.sysconf("SC_CLK_TCK")), "--quiet"]
    return _run_json(command, cwd=None)


def _run_json(command: list[str], cwd: Path | None) -> dict[str, Any]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        sys.exit(f"error: {' '.join(command[:4])} … exited {done.returncode}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout))


def summarise(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each figure over the runs of one client at one level (CPU per tx: over all committed tx)."""
    summary: dict[str, Any] = {"runs": len(runs), "committed": sum(r["committed"] for r in runs),
                               "failed": sum(r["failed"] for r in runs)}
    for figure in FIGURES:
        values = [r[figure] for r in runs if r.get(figure) is not None]
        summary[figure] = round(mean(values), 6 if "cpu" in figure else 2) if values else None
    return summary


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def level_summary(runs: list[dict[str, Any]], clients: list[str]) -> dict[str, Any]:
    """Each client's means at one level, and gxlib's ratios to each other client (side by side in this run)."""
    level: dict[str, Any] = {c: summarise([r for r in runs if r["client"] == c]) for c in clients}
    if "gxlib" in clients:
        gx = level["gxlib"]
        for other in (c for c in clients if c != "gxlib"):
            theirs = level[other]
            level[f"throughput_ratio_gxlib_over_{other}"] = ratio(gx["throughput_tps"], theirs["throughput_tps"])
            level[f"p95_ratio_gxlib_over_{other}"] = ratio(gx["p95_ms"], theirs["p95_ms"])
            level[f"client_cpu_ratio_gxlib_over_{other}"] = ratio(gx["client_cpu_s_per_tx"],
                                                                 theirs["client_cpu_s_per_tx"])
    for c in clients:
        cpu = level[c]["client_cpu_s_per_tx"]
        level[c]["client_cpu_ms_per_tx"] = round(cpu * 1000, 3) if cpu is not None else None
    return level


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", nargs="+", choices=CLIENTS, default=list(CLIENTS),
                        help="which clients to alternate, in this order")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="rounds of every client per concurrency level")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--port-offset", type=int, default=23300)
    args = parser.parse_args()
    clients: list[str] = list(dict.fromkeys(args.clients))
    progress = Progress()
    go_binary = ensure_go_client(progress) if "go" in clients else None
    if "node" in clients:
        ensure_node_packages(progress)
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gx-vs-node-") as tmp:
        state_dir = Path(tmp) / "devnet"
        devnet = Devnet(DevnetSettings(state_dir=state_dir, port_offset=args.port_offset),
                        progress=Progress(quiet=True))
        try:
            with progress.task(f"devnet up on port offset {args.port_offset}"):
                devnet.up()
            with progress.task("deploying gxtv3 1.0"):
                ChaincodeOperator(devnet, progress=Progress(quiet=True)).deploy("1.0")
            env_file = Path(tmp) / "devnet-env.json"
            env_file.write_text(json.dumps(devnet.environment()))
            pids = fabric_node_pids(devnet)

            def run(client: str, concurrency: int, seconds: float) -> dict[str, Any]:
                if client == "gxlib":
                    return run_gx(state_dir, concurrency, seconds)
                if client == "go":
                    assert go_binary is not None
                    return run_go(go_binary, env_file, pids, concurrency, seconds)
                return run_node(env_file, pids, concurrency, seconds)

            with progress.task(f"warming up every client ({args.warmup_seconds:g}s each)"):
                for client in clients:
                    run(client, min(args.concurrency), args.warmup_seconds)
            for concurrency in args.concurrency:
                for round_no in range(1, args.rounds + 1):
                    for client in clients:
                        with progress.task(f"{client} at concurrency {concurrency}, round {round_no}"):
                            figures = run(client, concurrency, args.seconds)
                        progress.info(f"  {figures['throughput_tps']} tx/s, p95 {figures['p95_ms']} ms, "
                                      f"client CPU {figures['client_cpu_s_per_tx']} s/tx")
                        runs.append({"round": round_no, **figures})
        finally:
            with progress.task("devnet down"):
                devnet.down(purge=True)
    levels = {str(c): level_summary([r for r in runs if r["concurrency"] == c], clients) for c in args.concurrency}
    print(json.dumps({"clients": clients, "seconds_per_run": args.seconds, "rounds": args.rounds,
                      "batch_timeout_ms": devnet.settings.batch_timeout_ms, "levels": levels, "runs": runs},
                     indent=2))


if __name__ == "__main__":
    main()
