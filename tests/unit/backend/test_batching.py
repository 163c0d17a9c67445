"""The group-commit of the outbox's writes: concurrent writes share a transaction, and each caller still gets
exactly its own outcome — a lost lease or a failing row never takes the other commands' writes with it."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import Connection, Engine, text

from gxlib.backend.batching import WriteBatcher
from gxlib.backend.errors import LeaseLostError
from gxlib.backend.models import CommandStatus
from gxlib.backend.outbox import Outbox
from tests.unit.backend.helpers import mint_payload


def _claimed(outbox: Outbox, n: int) -> list[str]:
    ids = [outbox.enqueue("MINT", mint_payload(i), f"key-{i}").command.id for i in range(n)]
    assert len(outbox.claim("w1", n, 60)) == n
    return ids


def test_concurrent_outcomes_are_committed_together_and_each_lands(engine: Engine) -> None:
    outbox = Outbox(engine)
    ids = _claimed(outbox, 20)
    batcher = WriteBatcher(engine)

    async def main() -> None:
        await asyncio.gather(*(batcher.run(lambda c, cid=cid: outbox.mark_committed(cid, "w1", 7, connection=c))
                               for cid in ids))

    asyncio.run(main())
    assert all(outbox.get(cid).status == CommandStatus.COMMITTED for cid in ids)
    assert batcher.operations == 20 and batcher.batches < 20


def test_a_lost_lease_fails_only_its_own_write(engine: Engine) -> None:
    outbox = Outbox(engine)
    mine, stolen = _claimed(outbox, 2)
    batcher = WriteBatcher(engine)

    async def main() -> list[object]:
        return await asyncio.gather(
            batcher.run(lambda c: outbox.mark_committed(mine, "w1", 3, connection=c)),
            batcher.run(lambda c: outbox.mark_committed(stolen, "someone-else", 3, connection=c)),
            return_exceptions=True)

    ok, lost = asyncio.run(main())
    assert ok is None and isinstance(lost, LeaseLostError)
    assert outbox.get(mine).status == CommandStatus.COMMITTED
    assert outbox.get(stolen).status == CommandStatus.PROCESSING


def test_a_database_error_in_one_write_leaves_the_others_committed(engine: Engine) -> None:
    outbox = Outbox(engine)
    first, second = _claimed(outbox, 2)
    batcher = WriteBatcher(engine)

    def broken(connection: Connection) -> None:
        connection.execute(text("UPDATE no_such_table SET x = 1"))

    async def main() -> list[object]:
        return await asyncio.gather(
            batcher.run(lambda c: outbox.mark_committed(first, "w1", 3, connection=c)),
            batcher.run(broken),
            batcher.run(lambda c: outbox.mark_committed(second, "w1", 3, connection=c)),
            return_exceptions=True)

    results = asyncio.run(main())
    assert results[0] is None and results[2] is None
    assert isinstance(results[1], Exception)
    assert {outbox.get(first).status, outbox.get(second).status} == {CommandStatus.COMMITTED}


def test_a_batch_needs_room_for_one_write() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        WriteBatcher(None, max_batch=0)  # type: ignore[arg-type]
