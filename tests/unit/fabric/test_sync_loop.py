"""The blocking facade's event loop ends like asyncio.run's: what still runs on it is cancelled and waited for, so
no task is left to be destroyed pending (gRPC's task of a call that still waits for its status printed "Task was
destroyed but it is pending!" at the end of scripts that used SyncGateway)."""

from __future__ import annotations

import asyncio
import gc
import logging

import pytest

from gxlib.fabric.sync import _LoopThread


def test_tasks_still_running_when_the_loop_stops_are_cancelled_and_ended(caplog: pytest.LogCaptureFixture) -> None:
    runner = _LoopThread()
    cleaned_up: list[str] = []

    async def waits_forever() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            cleaned_up.append("finally ran")

    async def start() -> asyncio.Task[None]:
        return asyncio.get_running_loop().create_task(waits_forever())

    task = runner.run(start())
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        runner.stop()
        assert task.cancelled() and cleaned_up == ["finally ran"]
        gc.collect()
    assert runner.loop.is_closed() and not runner.thread.is_alive()
    assert "was destroyed but it is pending" not in caplog.text
