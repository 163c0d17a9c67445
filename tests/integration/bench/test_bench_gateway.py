"""`gx bench gateway` against the real devnet: it submits, everything commits, and the figures hang together.

Figures only — no timing goal is asserted here (the benchmark's numbers go in the closing note, not in tests).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gxlib.bench.gateway import fabric_node_pids
from gxlib.chaincode.deploy import DeployReport
from gxlib.devnet.network import Devnet

pytestmark = pytest.mark.integration

BENCHMARKS = Path(__file__).resolve().parents[3] / "benchmarks"
NODE_DIR = BENCHMARKS / "node-gateway"
FIELDS = {"client", "function", "concurrency", "seconds", "committed", "failed", "throughput_tps", "p50_ms", "p95_ms",
          "p99_ms", "errors", "client_cpu_s_per_tx", "fabric_nodes_cpu_s_per_tx", "fabric_nodes_cpu_s"}


def assert_sane(figures: dict[str, Any], concurrency: int, nodes: set[str]) -> None:
    assert set(figures) == FIELDS
    assert figures["concurrency"] == concurrency
    assert figures["committed"] > 0
    assert figures["failed"] == 0, figures["errors"]
    assert figures["throughput_tps"] > 0
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"]
    assert figures["client_cpu_s_per_tx"] > 0
    assert set(figures["fabric_nodes_cpu_s"]) == nodes
    assert figures["fabric_nodes_cpu_s_per_tx"] > 0


def test_bench_gateway_json_reports_committed_submits_and_ordered_percentiles(
        devnet: Devnet, bench_gxtv3: DeployReport) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gxlib.cli", "bench", "gateway", "--seconds", "2", "--concurrency", "4", "--json",
         "--state-dir", str(devnet.layout.root)],
        capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["client"] == "gxlib" and figures["function"] == "TokenomicsContract:Mint"
    assert_sane(figures, 4, {n.name for n in devnet.layout.nodes})
    assert "submits started" in result.stderr  # progress while it runs, on stderr


@pytest.fixture(scope="module")
def node_client() -> Path:
    """The Node client's packages, installed from its lock file (`npm ci`) when missing. Node.js is part of this
    machine kind; a missing one fails the test."""
    assert shutil.which("node") and shutil.which("npm"), "Node.js and npm are needed for the reference client"
    if not (NODE_DIR / "node_modules").is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True, timeout=600)
    return NODE_DIR


def test_node_client_prints_the_same_fields_for_the_same_work(
        devnet: Devnet, bench_gxtv3: DeployReport, node_client: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "devnet-env.json"
    env_file.write_text(json.dumps(devnet.environment()))
    pids = fabric_node_pids(devnet)
    result = subprocess.run(
        ["node", "bench.mjs", "--env", str(env_file), "--seconds", "2", "--concurrency", "4", "--quiet",
         "--node-pids", ",".join(f"{n}={p}" for n, p in pids.items()), "--clk-tck", str(os.sysconf("SC_CLK_TCK"))],
        cwd=NODE_DIR, capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["client"] == "node" and figures["function"] == "TokenomicsContract:Mint"
    assert_sane(figures, 4, set(pids))


@pytest.fixture(scope="module")
def go_client() -> Path:
    """The Go client, built with the local Go by the side-by-side script's own build step (cached by source hash).
    Go is part of this machine kind (the Fabric build needs it); a missing one fails the test."""
    assert shutil.which("go"), "Go is needed for the reference client"
    spec = importlib.util.spec_from_file_location("gateway_vs_node", BENCHMARKS / "gateway_vs_node.py")
    assert spec is not None and spec.loader is not None
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    from gxlib.progress import Progress

    return Path(script.ensure_go_client(Progress(quiet=True)))


def test_go_client_prints_the_same_fields_for_the_same_work(
        devnet: Devnet, bench_gxtv3: DeployReport, go_client: Path, tmp_path: Path) -> None:
    env_file = tmp_path / "devnet-env.json"
    env_file.write_text(json.dumps(devnet.environment()))
    pids = fabric_node_pids(devnet)
    result = subprocess.run(
        [str(go_client), "--env", str(env_file), "--seconds", "2", "--concurrency", "4", "--quiet",
         "--node-pids", ",".join(f"{n}={p}" for n, p in pids.items()), "--clk-tck", str(os.sysconf("SC_CLK_TCK"))],
        capture_output=True, text=True, check=False, timeout=300)
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["client"] == "go" and figures["function"] == "TokenomicsContract:Mint"
    assert_sane(figures, 4, set(pids))
