"""`gx bench pipeline` on a throwaway network: devnet (port offset 23500) + gxtv3 + the backend's three services,
first on SQLite, then (unless --sqlite-only) on a throwaway PostgreSQL. Prints one JSON object: per database the
raw Gateway ceiling, the pipeline at rising rates, stage headroom, replay figures and the ratios to the goals.

    .venv/bin/python benchmarks/pipeline.py [--rates 10,20,40,80,160] [--seconds 10]
                                            [--sqlite-only | --postgresql-only] [--profile DIR]

--profile samples the api, submitter and projector with py-spy while the rates run (collapsed stacks in
DIR/<database>/, each service's top 10 by own CPU in the JSON).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from gxlib.backend.db import make_engine
from gxlib.backend.local import BackendService, LocalBackend
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.projector import Projector
from gxlib.backend.settings import BackendSettings
from gxlib.bench.pipeline import PipelineBenchSpec, run_pipeline_bench
from gxlib.chaincode.deploy import ChaincodeOperator
from gxlib.config import ChaincodeSettings, DevnetSettings
from gxlib.devnet.network import Devnet
from gxlib.fabric.sync import SyncGateway
from gxlib.progress import Progress


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def backend(devnet: Devnet, name: str, database_url: str | None) -> LocalBackend:
    overrides: dict[str, Any] = {"database_url": database_url} if database_url else {}
    settings = BackendSettings(api_port=free_port(), submitter_metrics_port=free_port(),
                               projector_metrics_port=free_port(), log_level="WARNING", **overrides)
    local = LocalBackend(devnet, settings, Progress(quiet=True))
    local.root = devnet.layout.root / name
    local.services = [BackendService(s.name, local.root / s.name, s.host, s.port, s.health_path)
                      for s in local.services]
    if not database_url:
        local.settings = local.settings.model_copy(
            update={"database_url": f"sqlite:///{local.root / 'gx-backend.sqlite3'}"})
    return local


def wait_projector_caught_up(devnet: Devnet, local: LocalBackend, timeout_s: float = 300) -> None:
    environment = devnet.environment()
    with SyncGateway.from_environment(environment, "service") as gateway:
        height = gateway.network(environment["channel"]).block_height()
    engine = make_engine(local.settings.database_url)
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            checkpoint = Projector(engine).checkpoint()
            if checkpoint is not None and checkpoint.block_number >= height - 3:
                return
            time.sleep(0.5)
    finally:
        engine.dispose()


def run_on(devnet: Devnet, name: str, database_url: str | None, spec: PipelineBenchSpec) -> dict[str, Any]:
    local = backend(devnet, name, database_url)
    say(f"backend on {local.settings.database_url.split(':', 1)[0]}: up")
    local.up()
    try:
        wait_projector_caught_up(devnet, local)
        report = asyncio.run(run_pipeline_bench(local, spec, chaincode=ChaincodeSettings().name, progress=say))
        return report.to_json()
    finally:
        local.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port-offset", type=int, default=23500)
    parser.add_argument("--rates", default="10,20,40,80,160,320")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--gateway-concurrency", type=int, default=32)
    parser.add_argument("--gateway-seconds", type=float, default=10.0)
    parser.add_argument("--headroom-commands", type=int, default=2000)
    only = parser.add_mutually_exclusive_group()
    only.add_argument("--sqlite-only", action="store_true")
    only.add_argument("--postgresql-only", action="store_true")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR",
                        help="py-spy the services while the rates run; collapsed stacks in DIR/<database>/")
    parser.add_argument("--profile-rate", type=int, default=100, help="py-spy samples per second")
    args = parser.parse_args()
    rates = tuple(float(r) for r in args.rates.split(","))
    results: dict[str, Any] = {"machine_cpus": __import__("os").cpu_count()}
    state = Path(tempfile.mkdtemp(prefix="gx-bench-pipeline-"))
    pg_root = Path(tempfile.mkdtemp(prefix="gx-bench-pg-"))
    devnet = Devnet(DevnetSettings(state_dir=state, port_offset=args.port_offset), progress=Progress(quiet=True))
    cluster: PostgresCluster | None = None
    try:
        say(f"devnet up in {state} (port offset {args.port_offset})")
        devnet.up()
        say("gxtv3 deploy + BootstrapSystem")
        ChaincodeOperator(devnet, ChaincodeSettings(), Progress(quiet=True)).deploy("1.0")
        environment = devnet.environment()
        with SyncGateway.from_environment(environment, "super_admin") as gateway:
            gateway.network(environment["channel"]).contract(ChaincodeSettings().name).submit(
                "AdminContract:BootstrapSystem")

        def spec(database: str) -> PipelineBenchSpec:
            return PipelineBenchSpec(rates=rates, seconds_per_rate=args.seconds,
                                     gateway_concurrency=args.gateway_concurrency,
                                     gateway_seconds=args.gateway_seconds, headroom_commands=args.headroom_commands,
                                     profile_dir=args.profile / database if args.profile else None,
                                     profile_rate=args.profile_rate)

        if not args.postgresql_only:
            results["sqlite"] = run_on(devnet, "backend-sqlite", None, spec("sqlite"))
        if not args.sqlite_only:
            cluster = PostgresCluster(pg_root / "cluster").start()
            database_url = cluster.create_database("gx_bench")
            results["postgresql"] = run_on(devnet, "backend-pg", database_url, spec("postgresql"))
    finally:
        say("tearing down")
        devnet.down(purge=True)
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(pg_root, ignore_errors=True)
        shutil.rmtree(state, ignore_errors=True)
    print(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
