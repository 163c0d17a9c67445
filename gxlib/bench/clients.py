"""gxlib's Gateway client against the official Go and Node clients (hyperledger/fabric-gateway), side by side in one
run — the library half of ``gx bench clients`` and ``benchmarks/gateway_vs_node.py``.

Brings a throwaway devnet up on shifted ports, deploys gxtv3, builds the Go client (``benchmarks/go-gateway``, with
the local Go, cached under ``~/.cache/gxlib/bench/`` by a hash of its sources) and installs the Node script's pinned
packages (``npm ci``, once), warms every client up, then alternates them — gxlib, go, node, gxlib, go, node — at
each concurrency level. All submit TokenomicsContract:Mint as the super admin through the same peer, one fresh
account per submit, and each runs as its own process so that its CPU-seconds per committed tx are its own.
The summary per client and level is the median over the rounds; the ratios gxlib/other are of those medians
(throughput: higher is better; p95 and client CPU per tx: lower is better), and per round, of the runs back to back.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from statistics import median
from typing import Any

from gxlib.errors import GxError
from gxlib.progress import Progress

BENCHMARKS_DIR = Path(__file__).resolve().parents[2] / "benchmarks"
GO_SOURCES = ("go.mod", "go.sum", "main.go")
CLIENTS = ("gxlib", "go", "node")
FIGURES = ("throughput_tps", "p50_ms", "p95_ms", "p99_ms", "client_cpu_s_per_tx", "fabric_nodes_cpu_s_per_tx")


class ClientBenchError(GxError):
    """A client of the side-by-side benchmark could not be built or run."""


def _client_dir(name: str, benchmarks_dir: Path) -> Path:
    directory = benchmarks_dir / name
    if not directory.is_dir():
        raise ClientBenchError(f"{directory} is missing", hint="run from a checkout of the gxlib repository, "
                               "which holds benchmarks/go-gateway and benchmarks/node-gateway")
    return directory


def ensure_node_packages(progress: Progress, benchmarks_dir: Path = BENCHMARKS_DIR) -> Path:
    """`npm ci` from the lock file unless node_modules already matches it; returns the Node client's directory."""
    node_dir = _client_dir("node-gateway", benchmarks_dir)
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ClientBenchError("node and npm are needed for the Node client", hint="install Node.js >= 20.9")
    installed_lock = node_dir / "node_modules" / ".package-lock.json"
    if installed_lock.exists() and installed_lock.stat().st_mtime >= (node_dir / "package-lock.json").stat().st_mtime:
        return node_dir
    with progress.task("npm ci in benchmarks/node-gateway"):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=node_dir, check=True,
                       stdout=subprocess.DEVNULL)
    return node_dir


def go_client_path(cache_root: Path | None = None, benchmarks_dir: Path = BENCHMARKS_DIR) -> Path:
    """Where the Go client built from the current sources is cached (outside the repository, like Fabric)."""
    from gxlib.config import FabricBuildSettings

    go_dir = _client_dir("go-gateway", benchmarks_dir)
    digest = hashlib.sha256()
    for name in GO_SOURCES:
        digest.update((go_dir / name).read_bytes())
    root = cache_root or FabricBuildSettings().cache_root
    return root / "bench" / f"go-gateway-{digest.hexdigest()[:12]}"


def ensure_go_client(progress: Progress, benchmarks_dir: Path = BENCHMARKS_DIR) -> Path:
    """`go build` the Go client once per source version (modules from the Go module proxy, pinned by go.sum)."""
    binary = go_client_path(benchmarks_dir=benchmarks_dir)
    if binary.is_file():
        return binary
    if shutil.which("go") is None:
        raise ClientBenchError("Go is needed to build the Go client (benchmarks/go-gateway)",
                               hint="install Go >= 1.22 or leave `go` out of --clients")
    binary.parent.mkdir(parents=True, exist_ok=True)
    partial = binary.with_name(binary.name + ".partial")
    with progress.task(f"go build benchmarks/go-gateway → {binary}"):
        subprocess.run(["go", "build", "-mod=readonly", "-trimpath", "-o", str(partial), "."],
                       cwd=benchmarks_dir / "go-gateway", check=True)
        partial.replace(binary)
    return binary


def _run_json(command: list[str], cwd: Path | None) -> dict[str, Any]:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise ClientBenchError(f"{' '.join(command[:4])} … exited {done.returncode}:\n{done.stderr[-3000:]}")
    return dict(json.loads(done.stdout))


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarise(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Median of each figure over the runs of one client at one level (with the CPU per tx in ms too)."""
    summary: dict[str, Any] = {"runs": len(runs), "committed": sum(r["committed"] for r in runs),
                               "failed": sum(r["failed"] for r in runs)}
    for figure in FIGURES:
        values = [r[figure] for r in runs if r.get(figure) is not None]
        summary[figure] = round(median(values), 6 if "cpu" in figure else 2) if values else None
    cpu = summary["client_cpu_s_per_tx"]
    summary["client_cpu_ms_per_tx"] = round(cpu * 1000, 3) if cpu is not None else None
    return summary


def level_summary(runs: Sequence[dict[str, Any]], clients: Sequence[str]) -> dict[str, Any]:
    """Each client's medians at one level, and gxlib's ratios to each other client (side by side in this run):
    of the medians, and of each round's back-to-back runs (CPU per tx)."""
    level: dict[str, Any] = {c: summarise([r for r in runs if r["client"] == c]) for c in clients}
    if "gxlib" not in clients:
        return level
    gx = level["gxlib"]
    for other in (c for c in clients if c != "gxlib"):
        theirs = level[other]
        level[f"throughput_ratio_gxlib_over_{other}"] = _ratio(gx["throughput_tps"], theirs["throughput_tps"])
        level[f"p95_ratio_gxlib_over_{other}"] = _ratio(gx["p95_ms"], theirs["p95_ms"])
        level[f"client_cpu_ratio_gxlib_over_{other}"] = _ratio(gx["client_cpu_s_per_tx"],
                                                              theirs["client_cpu_s_per_tx"])
        by_round: dict[int, dict[str, float]] = {}
        for r in runs:
            if r["client"] in ("gxlib", other) and r.get("client_cpu_s_per_tx") is not None:
                by_round.setdefault(r["round"], {})[r["client"]] = r["client_cpu_s_per_tx"]
        level[f"client_cpu_ratio_gxlib_over_{other}_per_round"] = [
            _ratio(pair["gxlib"], pair[other]) for _, pair in sorted(by_round.items()) if len(pair) == 2]
    return level


@dataclass(frozen=True)
class ClientsBenchSpec:
    """Which clients to alternate, at which concurrency levels, for how long, on which port offset."""

    clients: tuple[str, ...] = CLIENTS
    concurrency: tuple[int, ...] = (10, 50)
    seconds: float = 5.0
    rounds: int = 3
    warmup_seconds: float = 3.0
    port_offset: int = 23300

    def __post_init__(self) -> None:
        unknown = set(self.clients) - set(CLIENTS)
        if unknown or not self.clients:
            raise ValueError(f"clients must be some of {', '.join(CLIENTS)}; got {', '.join(self.clients)}")
        if self.rounds < 1 or self.seconds <= 0 or not self.concurrency or min(self.concurrency) < 1:
            raise ValueError("rounds and every concurrency must be at least 1, seconds positive")


def run_side_by_side(spec: ClientsBenchSpec, progress: Progress) -> dict[str, Any]:
    """Run the clients alternately on a throwaway devnet; the JSON report (levels with ratios, and every run)."""
    from gxlib.bench.gateway import fabric_node_pids
    from gxlib.chaincode.deploy import ChaincodeOperator
    from gxlib.config import DevnetSettings
    from gxlib.devnet.network import Devnet

    clients = list(dict.fromkeys(spec.clients))
    go_binary = ensure_go_client(progress) if "go" in clients else None
    node_dir = ensure_node_packages(progress) if "node" in clients else None
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="gx-clients-") as tmp:
        state_dir = Path(tmp) / "devnet"
        devnet = Devnet(DevnetSettings(state_dir=state_dir, port_offset=spec.port_offset),
                        progress=Progress(quiet=True))
        try:
            with progress.task(f"devnet up on port offset {spec.port_offset}"):
                devnet.up()
            with progress.task("deploying gxtv3 1.0"):
                ChaincodeOperator(devnet, progress=Progress(quiet=True)).deploy("1.0")
            env_file = Path(tmp) / "devnet-env.json"
            env_file.write_text(json.dumps(devnet.environment()))
            pids = ",".join(f"{n}={p}" for n, p in fabric_node_pids(devnet).items())
            clk_tck = str(os.sysconf("SC_CLK_TCK"))
            commands: dict[str, Callable[[int, float], tuple[list[str], Path | None]]] = {
                "gxlib": lambda c, s: ([sys.executable, "-m", "gxlib.cli", "bench", "gateway", "--state-dir",
                                        str(state_dir), "--concurrency", str(c), "--seconds", str(s), "--json",
                                        "--quiet"],
                                       None),
                "go": lambda c, s: ([str(go_binary), "--env", str(env_file), "--concurrency", str(c), "--seconds",
                                     str(s), "--node-pids", pids, "--clk-tck", clk_tck, "--quiet"], None),
                "node": lambda c, s: (["node", str((node_dir or Path()) / "bench.mjs"), "--env", str(env_file),
                                       "--concurrency", str(c), "--seconds", str(s), "--node-pids", pids,
                                       "--clk-tck", clk_tck, "--quiet"], node_dir),
            }

            def run(client: str, concurrency: int, seconds: float) -> dict[str, Any]:
                command, cwd = commands[client](concurrency, seconds)
                return _run_json(command, cwd)

            with progress.task(f"warming up every client ({spec.warmup_seconds:g}s each)"):
                for client in clients:
                    run(client, min(spec.concurrency), spec.warmup_seconds)
            for concurrency in spec.concurrency:
                for round_no in range(1, spec.rounds + 1):
                    for client in clients:
                        with progress.task(f"{client} at concurrency {concurrency}, round {round_no}"):
                            figures = run(client, concurrency, spec.seconds)
                        cpu = figures["client_cpu_s_per_tx"]
                        progress.info(f"  {figures['throughput_tps']} tx/s, p95 {figures['p95_ms']} ms, client CPU "
                                      f"{'-' if cpu is None else f'{cpu * 1000:.3f}'} ms/tx, load "
                                      f"{os.getloadavg()[0]:.1f}")
                        runs.append({"round": round_no, "load_1m": round(os.getloadavg()[0], 2), **figures})
        finally:
            with progress.task("devnet down"):
                devnet.down(purge=True)
    levels = {str(c): level_summary([r for r in runs if r["concurrency"] == c], clients) for c in spec.concurrency}
    return {"clients": clients, "seconds_per_run": spec.seconds, "rounds": spec.rounds, "summary": "median",
            "cpu_count": os.cpu_count(), "batch_timeout_ms": devnet.settings.batch_timeout_ms, "levels": levels,
            "runs": runs}
