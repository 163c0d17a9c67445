"""A small key-value contract used to test the chaincode runtime (and the Gateway client) on the devnet."""

from __future__ import annotations

import json
from typing import Any

from gxshim import ChaincodeError, Context, Contract, PeerError, evaluate, transaction

EVENT_NAME = "TestEvent"


class TestContract(Contract):
    """Put/Get/Del/Range over simple keys, composite keys, events, errors, and who-am-I."""

    __test__ = False  # not a pytest test class

    @transaction
    def Put(self, ctx: Context, key: str, value: str) -> None:
        ctx.stub.put_state(key, value)

    @evaluate
    def Get(self, ctx: Context, key: str) -> str:
        value = ctx.stub.get_state(key)
        if value is None:
            raise ChaincodeError(f"key {key!r} does not exist")
        return value.decode()

    @transaction
    def Del(self, ctx: Context, key: str) -> None:
        ctx.stub.del_state(key)

    @transaction
    def PutMany(self, ctx: Context, prefix: str, count: int) -> int:
        """Write ``prefix000``..: enough keys to make the peer answer a range query in several batches."""
        for i in range(count):
            ctx.stub.put_state(f"{prefix}{i:04d}", str(i))
        return count

    @evaluate
    def Range(self, ctx: Context, start: str, end: str) -> list[list[str]]:
        with ctx.stub.get_state_by_range(start, end) as results:
            return [[kv.key, kv.value.decode()] for kv in results]

    @evaluate
    def RangePage(self, ctx: Context, start: str, end: str, page_size: int, bookmark: str) -> dict[str, Any]:
        results, page = ctx.stub.get_state_by_range_with_pagination(start, end, page_size, bookmark)
        with results:
            keys = [kv.key for kv in results]
        return {"keys": keys, "bookmark": page.bookmark, "count": page.fetched_records_count}

    @evaluate
    def History(self, ctx: Context, key: str) -> list[dict[str, Any]]:
        with ctx.stub.get_history_for_key(key) as changes:
            return [{"txId": c.tx_id, "value": c.value.decode(), "isDelete": c.is_delete} for c in changes]

    @transaction
    def PutComposite(self, ctx: Context, object_type: str, attributes: list, value: str) -> str:
        key = ctx.stub.create_composite_key(object_type, [str(a) for a in attributes])
        ctx.stub.put_state(key, value)
        return key

    @evaluate
    def QueryComposite(self, ctx: Context, object_type: str, attributes: list) -> list[list[Any]]:
        found = []
        with ctx.stub.get_state_by_partial_composite_key(object_type, [str(a) for a in attributes]) as results:
            for kv in results:
                _, attrs = ctx.stub.split_composite_key(kv.key)
                found.append([attrs, kv.value.decode()])
        return found

    @transaction
    def Emit(self, ctx: Context, key: str, payload: str) -> None:
        """Write ``key`` and attach an event; the second SetEvent wins (one event per transaction)."""
        ctx.stub.put_state(key, payload)
        ctx.stub.set_event("Overwritten", b"never delivered")
        ctx.stub.set_event(EVENT_NAME, json.dumps({"key": key, "payload": payload,
                                                   "timestamp": ctx.stub.tx_timestamp_seconds}))

    @transaction
    def Fail(self, ctx: Context, message: str) -> None:
        ctx.stub.put_state("fail-never-written", message)
        raise ChaincodeError(message)

    @transaction
    def WriteAfterPagedQuery(self, ctx: Context, key: str) -> None:
        """The peer refuses writes after a paginated query: its ERROR reply must surface as PeerError."""
        results, _ = ctx.stub.get_state_by_range_with_pagination("", "", 1, "")
        results.close()
        ctx.stub.put_state(key, "x")

    @transaction
    def CatchPeerError(self, ctx: Context, key: str) -> str:
        """Like WriteAfterPagedQuery, but catches the PeerError and returns what the peer said."""
        results, _ = ctx.stub.get_state_by_range_with_pagination("", "", 1, "")
        results.close()
        try:
            ctx.stub.put_state(key, "x")
        except PeerError as exc:
            return f"PeerError({exc.request}): {exc.peer_message}"
        return "no error"

    @evaluate
    def Whoami(self, ctx: Context) -> dict[str, Any]:
        ident = ctx.client_identity
        return {"mspId": ident.msp_id, "ous": ident.ous, "attrs": ident.attributes, "cn": ident.common_name,
                "id": ident.id}

    @evaluate
    def TxInfo(self, ctx: Context) -> dict[str, Any]:
        stub = ctx.stub
        return {"txId": stub.tx_id, "channel": stub.channel_id, "timestamp": stub.tx_timestamp.isoformat(),
                "transient": {k: v.decode(errors="replace") for k, v in stub.transient.items()}}

    @transaction
    def InvokeChaincode(self, ctx: Context, name: str, args: list) -> dict[str, Any]:
        """Call chaincode ``name`` with ``args`` in this transaction and report its response."""
        result = ctx.stub.invoke_chaincode(name, [str(a) for a in args])
        return {"status": result.status, "message": result.message, "payload": result.payload.decode()}

    @evaluate
    def Add(self, ctx: Context, a: int, b: int) -> int:
        return a + b
