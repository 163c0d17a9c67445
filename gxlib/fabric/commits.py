"""Commit statuses of many transactions learned from one filtered-block stream, instead of one call per transaction.

A :class:`CommitWatcher` holds one ``DeliverFiltered`` stream of a channel from the Gateway peer. A transaction is
*tracked* just before it is sent (:meth:`CommitWatcher.track`); when a block that holds it arrives, its waiter
(:meth:`CommitWatcher.wait`) gets the validation code and block number — no signed ``CommitStatus`` request and no
gRPC call per transaction. The stream is only an accelerator; the per-transaction commit-status call stays the
authority, and :class:`~gxlib.fabric.gateway.Gateway` falls back to it whenever :meth:`wait` answers ``None``:

- the transaction was not tracked: the stream was not live yet when it was sent (a live stream has delivered a
  block, so every block after it will come), or it was sent elsewhere, or too many were tracked at once;
- the stream broke or ended while waiting (every waiter is released at once, then the stream reopens lazily on a
  later :meth:`track`, after ``retry_after_s``);
- the budget ran out (the stream may be behind the ledger).

The Gateway also confirms every non-VALID code with the per-transaction call: a re-sent envelope whose first copy
committed before it was tracked shows up in the stream as ``DUPLICATE_TXID``, while the ledger's status of that tx ID
is the first copy's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import cast

import grpc
from fabric_protos.common import common_pb2
from fabric_protos.peer import events_pb2, events_pb2_grpc

from gxlib.fabric.commit import CommitStatus
from gxlib.fabric.connection import PeerEndpoint
from gxlib.fabric.events import seek_envelope
from gxlib.fabric.identity import Identity
from gxlib.fabric.signer import Signer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CommitStreamSettings:
    """How a Gateway learns commit statuses from a block stream (``enabled=False``: one call per transaction).

    ``final_check_s``: of a commit-status wait's deadline, the part kept for the authoritative per-transaction call
    when the stream has not answered (at most half the deadline). ``retry_after_s``: how long after a broken or
    refused stream the next one may be opened. ``max_tracked``: transactions tracked at once (the oldest is released
    to the per-transaction call beyond it).
    """

    enabled: bool = True
    final_check_s: float = 2.0
    retry_after_s: float = 10.0
    max_tracked: int = 10_000

    def __post_init__(self) -> None:
        if self.final_check_s < 0 or self.retry_after_s < 0:
            raise ValueError("final_check_s and retry_after_s must not be negative")
        if self.max_tracked < 1:
            raise ValueError(f"max_tracked must be at least 1, got {self.max_tracked}")


class CommitWatcher:
    """One filtered-block stream of channel ``channel_name`` resolving the commit statuses of tracked transactions."""

    def __init__(self, channel: grpc.aio.Channel, endpoint: PeerEndpoint, channel_name: str, identity: Identity,
                 signer: Signer, settings: CommitStreamSettings | None = None) -> None:
        self._stub = events_pb2_grpc.DeliverStub(channel)
        self._endpoint = endpoint
        self._channel_name = channel_name
        self._identity = identity
        self._signer = signer
        self.settings = settings or CommitStreamSettings()
        # tx ID → its status once a block held it (None: released to the per-transaction call).
        self._waiting: dict[str, asyncio.Future[CommitStatus | None]] = {}
        self._task: asyncio.Task[None] | None = None
        self._live = False
        self._ended_at: float | None = None
        self._closed = False
        self.last_block: int | None = None
        self.streams_opened = 0

    @property
    def live(self) -> bool:
        """True while the stream is open and has delivered a block (so it will deliver every later one)."""
        return self._live

    def track(self, tx_id: str) -> bool:
        """Watch for ``tx_id``; call before the transaction is sent. False (and opens the stream if it may) when the
        stream cannot vouch for it, so its status must come from the per-transaction call."""
        if self._closed:
            return False
        if not self._live:
            self._ensure_stream()
            return False
        if tx_id in self._waiting:
            return True
        if len(self._waiting) >= self.settings.max_tracked:
            self._release(next(iter(self._waiting)))
        self._waiting[tx_id] = asyncio.get_running_loop().create_future()
        return True

    def forget(self, tx_id: str) -> None:
        """Stop watching ``tx_id`` (its send failed)."""
        self._release(tx_id)

    async def wait(self, tx_id: str, timeout: float) -> CommitStatus | None:
        """The status of tracked ``tx_id`` from the stream, or ``None`` if the stream cannot tell within ``timeout``
        (not tracked, stream broken, or too slow). Stops watching it either way."""
        waiter = self._waiting.get(tx_id)
        if waiter is None:
            return None
        try:
            if waiter.done():
                return waiter.result()
            if timeout <= 0:
                return None
            # One timer that answers None at the deadline, rather than asyncio.timeout + shield (a Timeout, a task
            # cancellation and a second future for every transaction).
            expiry = asyncio.get_running_loop().call_later(timeout, _answer_none, waiter)
            try:
                return await waiter
            except asyncio.CancelledError:
                # The waiter is shared by every wait for this tx ID, and awaiting it directly means a cancelled wait
                # cancels it: the other waits then go to the per-transaction call; only the cancelled one raises.
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise
                return None
            finally:
                expiry.cancel()
        finally:
            self._release(tx_id)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._release_all()

    # --- the stream ----------------------------------------------------------------------------------------------
    def _ensure_stream(self) -> None:
        if self._task is not None:
            return
        if self._ended_at is not None and time.monotonic() - self._ended_at < self.settings.retry_after_s:
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"commit-watch:{self._channel_name}")

    async def _run(self) -> None:
        call = self._stub.DeliverFiltered()
        self.streams_opened += 1
        reason = "the peer closed the stream"
        try:
            await call.write(seek_envelope(self._channel_name, self._identity, self._signer, None,
                                           self._endpoint.tls_cert_hash))
            while True:
                answer = await call.read()
                if answer is grpc.aio.EOF:
                    break
                response = cast(events_pb2.DeliverResponse, answer)
                kind = response.WhichOneof("Type")
                if kind == "filtered_block":
                    self._resolve(response.filtered_block)
                elif kind == "status":
                    reason = f"the peer ended the stream with status {common_pb2.Status.Name(response.status)}"
                    break
        except grpc.aio.AioRpcError as exc:
            reason = f"{exc.code().name}: {exc.details()}"
        except asyncio.CancelledError:
            reason = "closed"
            raise
        except Exception as exc:  # a malformed response: the per-transaction call still answers for every waiter
            reason = f"{type(exc).__name__}: {exc}"
        finally:
            call.cancel()
            self._live = False
            self._task = None
            self._ended_at = time.monotonic()
            self._release_all()
            if not self._closed:
                log.warning("commit-status stream of channel %s from %s ended (%s); commit statuses come from one "
                            "call per transaction until it reopens (in %gs at the earliest)", self._channel_name,
                            self._endpoint.address, reason, self.settings.retry_after_s)

    def _resolve(self, block: events_pb2.FilteredBlock) -> None:
        self.last_block = int(block.number)
        self._live = True
        if not self._waiting:
            return
        for tx in block.filtered_transactions:
            waiter = self._waiting.get(tx.txid)
            if waiter is not None and not waiter.done():
                waiter.set_result(CommitStatus(tx.txid, int(tx.tx_validation_code), int(block.number)))

    def _release(self, tx_id: str) -> None:
        waiter = self._waiting.pop(tx_id, None)
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _release_all(self) -> None:
        waiting, self._waiting = self._waiting, {}
        for waiter in waiting.values():
            if not waiter.done():
                waiter.set_result(None)


def _answer_none(waiter: asyncio.Future[CommitStatus | None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
