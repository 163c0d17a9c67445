"""`gx bench pipeline` posts its MINTs with the lean client: each accepted command is found again by its remark
(the read-model watcher looks for remarks), refused ones are counted, and the load's own CPU is reported."""

from __future__ import annotations

import asyncio
import json

from gxlib.bench.http_load import LoadResult
from gxlib.bench.pipeline import _post_at_rate
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
