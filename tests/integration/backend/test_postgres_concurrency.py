"""Several claimer processes and submitter replicas on one real PostgreSQL never take the same command."""

from __future__ import annotations

import asyncio
import multiprocessing
import random
from collections import Counter

from gxlib.backend.db import make_engine, migrate
from gxlib.backend.models import CommandStatus
from gxlib.backend.outbox import Outbox
from gxlib.backend.pgcluster import PostgresCluster
from gxlib.backend.settings import SubmitterSettings
from gxlib.backend.submitter import Submitter
from tests.unit.backend.fakefabric import FakeFabric


def _claim_until_empty(args: tuple[str, str]) -> list[str]:
    url, worker = args
    engine = make_engine(url, pool_size=2, max_overflow=0)
    outbox = Outbox(engine)
    taken: list[str] = []
    try:
        while batch := outbox.claim(worker, random.randint(1, 9), lease_s=300):
            taken += [c.id for c in batch]
    finally:
        engine.dispose()
    return taken


def _fill(url: str, n: int) -> list[str]:
    engine = make_engine(url)
    migrate(engine)
    outbox = Outbox(engine)
    ids = [outbox.enqueue("MINT", {"accountId": f"a{i}", "amount": i + 1, "remark": "load"}, f"k{i}").command.id
           for i in range(n)]
    engine.dispose()
    return ids


def test_claimer_processes_on_postgresql_never_take_the_same_command(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database("gx_claimers")
    ids = _fill(url, 600)
    with multiprocessing.get_context("spawn").Pool(6) as pool:
        results = pool.map(_claim_until_empty, [(url, f"worker-{n}") for n in range(6)])
    taken = [cid for batch in results for cid in batch]
    duplicates = [cid for cid, count in Counter(taken).items() if count > 1]
    assert duplicates == []
    assert sorted(taken) == sorted(ids)
    assert sum(1 for r in results if r) >= 2  # the work really was shared


def test_two_submitter_replicas_on_postgresql_submit_each_command_once(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database("gx_replicas")
    ids = _fill(url, 120)
    fabric = FakeFabric(submit_latency_s=0.005)
    settings = SubmitterSettings(batch_size=5, max_in_flight=10, lease_s=60, commit_timeout_s=5)
    engines = [make_engine(url, pool_size=12, max_overflow=0) for _ in range(2)]
    replicas = [Submitter(Outbox(e), fabric, settings, worker_id=f"replica-{n}") for n, e in enumerate(engines)]

    async def run() -> None:
        stop = asyncio.Event()
        tasks = [asyncio.create_task(r.run(stop)) for r in replicas]
        for _ in range(1000):
            await asyncio.sleep(0.02)
            if len(fabric.valid_effects()) == len(ids):
                break
        stop.set()
        await asyncio.gather(*tasks)

    try:
        asyncio.run(run())
        counts = Outbox(engines[0]).counts()
        owners = Counter(Outbox(engines[0]).get(cid).block_number is not None for cid in ids)
    finally:
        for e in engines:
            e.dispose()
    assert fabric.valid_effects() == dict.fromkeys(ids, 1)
    assert fabric.calls["prepare"] == len(ids) and fabric.duplicate_submissions == 0
    assert counts[CommandStatus.COMMITTED.value] == len(ids)
    assert owners == {True: len(ids)}
