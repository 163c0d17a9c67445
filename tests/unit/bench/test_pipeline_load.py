"""`gx bench pipeline` posts its MINTs with the lean client: each accepted command is found again by its remark
(the read-model watcher looks for remarks), refused ones are counted, and the load's own CPU is reported."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

from gxlib.bench.http_load import LoadResult
from gxlib.bench.pipeline import _post_at_rate, outbox_latencies
from tests.unit.bench.test_http_load import api_server


def test_accepted_mints_map_remark_to_command_id_and_refusals_are_counted() -> None:
    def answer(n: int, body: bytes) -> tuple[int, bytes, bool]:
        command = json.loads(body)
        assert command["type"] == "MINT" and command["payload"]["accountId"] == command["idempotencyKey"]
        if command["idempotencyKey"].endswith("-3"):
            return 409, b'{"detail":"conflict"}', False
        return 202, json.dumps({"commandId": "cmd-" + command["idempotencyKey"]}).encode(), False

    async def scenario() -> tuple[dict[str, str], LoadResult]:
        async with api_server(answer) as (endpoint, _seen):
            return await _post_at_rate(endpoint, "token", rate=1000, seconds=0.005, prefix="pl-t-80", connections=2)

    accepted, load = asyncio.run(scenario())
    assert accepted == {f"pl-t-80-{n}": f"cmd-pl-t-80-{n}" for n in (0, 1, 2, 4)}
    assert load.refused == 1 and load.posted == 5
    assert load.client_cpu_s_per_command is not None and load.client_cpu_s_per_command >= 0


def test_the_outbox_latencies_split_accepted_to_committed_at_the_endorsement() -> None:
    accepted = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)

    def row(endorsed_ms: float | None, committed_ms: float) -> SimpleNamespace:
        return SimpleNamespace(created_at=accepted, committed_at=accepted + timedelta(milliseconds=committed_ms),
                               first_submitted_at=None if endorsed_ms is None
                               else accepted + timedelta(milliseconds=endorsed_ms))

    rows = [row(20 + n, 300 + 2 * n) for n in range(100)] + [row(None, 900)]  # one recorded without its tx time
    committed, endorsed = outbox_latencies(rows)
    assert (committed.p50_ms, committed.p95_ms, committed.p99_ms) == (400.0, 490.0, 498.0)  # of all 101
    assert (endorsed.p50_ms, endorsed.p95_ms, endorsed.p99_ms) == (69.0, 114.0, 118.0)  # of the 100 that have it
