"""``bench_submits`` against a real Gateway client connected to a fake Gateway service."""

from __future__ import annotations

from gxlib.bench.submits import bench_submits
from gxlib.fabric.gateway import Gateway

from ..fabric.fake_gateway import FakeGateway, with_gateway


def test_bench_counts_every_committed_submit_and_reports_latency_percentiles() -> None:
    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        contract = gateway.network("ch").contract("cc")
        result = await bench_submits(contract, "Put", lambda n: (f"k{n}", "v"), concurrency=4, seconds=0.3)
        assert result.committed == len(fake.submitted) > 0 and result.failed == 0
        assert 0 < result.p50_ms <= result.p95_ms <= result.p99_ms
        assert result.to_json()["concurrency"] == 4

    with_gateway(body)
