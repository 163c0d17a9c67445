"""gxlib's Gateway client against the official Node client (@hyperledger/fabric-gateway), side by side in one run.

Brings a throwaway devnet up on shifted ports, deploys gxtv3, installs the Node script's pinned packages
(`npm ci`, once), warms both clients up, then alternates them — gx, node, gx, node — at each concurrency level.
Both submit TokenomicsContract:Mint as the super admin through the same peer, one fresh account per submit,
and each runs as its own process so that its CPU-seconds per committed tx are its own. Prints JSON: every run,
the mean per client and level, and the ratios gxlib/node (throughput: higher is better; p95: lower is better).

    .venv/bin/python benchmarks/gateway_vs_node.py [--concurrency 10 50] [--seconds 5] [--rounds 2]
"""

from __future__ import annotations

import argparse
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
from gxlib.config import DevnetSettings
from gxlib.devnet.network import Devnet
from gxlib.progress import Progress

NODE_DIR = Path(__file__).resolve().parent / "node-gateway"
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


def run_gx(state_dir: Path, concurrency: int, seconds: float) -> dict[str, Any]:
    command = [sys.executable, "-m", "gxlib.cli", "bench", "gateway", "--state-dir", str(state_dir),
               "--concurrency", str(concurrency), "--seconds", str(seconds), "--json"]
    return _run_json(command, cwd=None)


def run_node(env_file: Path, pids: dict[str, int], concurrency: int, seconds: float) -> dict[str, Any]:
    command = ["node", str(NODE_DIR / "bench.mjs"), "--env", str(env_file), "--concurrency", str(concurrency),
               "--seconds", str(seconds), "--node-pids", ",".join(f"{n}={p}" for n, p in pids.items()),
               "--clk-tck", str(os.sysconf("SC_CLK_TCK")), "--quiet"]
    return _run_json(command, cwd=NODE_DIR)


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[10, 50])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2, help="gx/node pairs per concurrency level")
    parser.add_argument("--warmup-seconds", type=float, default=3.0)
    parser.add_argument("--port-offset", type=int, default=23300)
    args = parser.parse_args()
    progress = Progress()
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
            with progress.task(f"warming up both clients ({args.warmup_seconds:g}s each)"):
                run_gx(state_dir, min(args.concurrency), args.warmup_seconds)
                run_node(env_file, pids, min(args.concurrency), args.warmup_seconds)
            for concurrency in args.concurrency:
                for round_no in range(1, args.rounds + 1):
                    for client in ("gxlib", "node"):
                        with progress.task(f"{client} at concurrency {concurrency}, round {round_no}"):
                            run = (run_gx(state_dir, concurrency, args.seconds) if client == "gxlib"
                                   else run_node(env_file, pids, concurrency, args.seconds))
                        progress.info(f"  {run['throughput_tps']} tx/s, p95 {run['p95_ms']} ms, "
                                      f"client CPU {run['client_cpu_s_per_tx']} s/tx")
                        runs.append({"round": round_no, **run})
        finally:
            with progress.task("devnet down"):
                devnet.down(purge=True)
    levels = {}
    for concurrency in args.concurrency:
        gx = summarise([r for r in runs if r["client"] == "gxlib" and r["concurrency"] == concurrency])
        node = summarise([r for r in runs if r["client"] == "node" and r["concurrency"] == concurrency])
        levels[str(concurrency)] = {
            "gxlib": gx, "node": node,
            "throughput_ratio_gxlib_over_node": ratio(gx["throughput_tps"], node["throughput_tps"]),
            "p95_ratio_gxlib_over_node": ratio(gx["p95_ms"], node["p95_ms"]),
            "client_cpu_ratio_gxlib_over_node": ratio(gx["client_cpu_s_per_tx"], node["client_cpu_s_per_tx"]),
        }
    print(json.dumps({"seconds_per_run": args.seconds, "rounds": args.rounds,
                      "batch_timeout_ms": devnet.settings.batch_timeout_ms, "levels": levels, "runs": runs},
                     indent=2))


if __name__ == "__main__":
    main()
