"""What the Gateway channel's options must not cost: deadlines and big messages, against the fake Gateway service."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gxlib.fabric.connection import STREAM_WINDOW_BYTES
from gxlib.fabric.errors import DeadlineExceededError
from gxlib.fabric.gateway import Gateway, Timeouts

from .fake_gateway import FakeGateway, with_gateway


def test_a_peer_that_does_not_answer_in_time_still_fails_at_the_gateways_deadline(
        monkeypatch: pytest.MonkeyPatch) -> None:
    answered = FakeGateway.Evaluate

    async def slow_evaluate(self: FakeGateway, request: Any, context: Any) -> Any:
        await asyncio.sleep(30)
        return await answered(self, request, context)

    monkeypatch.setattr(FakeGateway, "Evaluate", slow_evaluate)

    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        with pytest.raises(DeadlineExceededError) as caught:
            await gateway.network("ch").contract("cc").evaluate("Get", "k")
        assert caught.value.code.name == "DEADLINE_EXCEEDED" and caught.value.tx_id

    with_gateway(body, gateway_options={"timeouts": Timeouts(evaluate=0.5)})


def test_messages_larger_than_a_stream_window_and_grpcs_default_limit_go_and_come_back_whole() -> None:
    big = bytes(range(256)) * (STREAM_WINDOW_BYTES // 256 + 4096)

    async def body(gateway: Gateway, fake: FakeGateway) -> None:
        answer = await gateway.network("ch").contract("cc").evaluate("Echo", big)
        assert answer == b"Echo|" + big

    limits = [("grpc.max_receive_message_length", 2 * len(big)), ("grpc.max_send_message_length", 2 * len(big))]
    with_gateway(body, server_options=limits)
