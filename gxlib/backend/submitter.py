"""The outbox-submitter (SPEC §3.2): claims commands, writes them to Fabric through a :class:`TxGateway`,
records the outcome.

Exactly-once effect: the tx ID and signed envelope are stored before the envelope is sent; a command that
comes back with a stored tx ID (reclaimed after a crash, or retried after an unknown outcome) first asks the
commit status of that ID and re-sends only that same envelope, which Fabric accepts at most once. Only an
MVCC/phantom-read invalidation makes a new transaction.

Circuit breaker: commands are claimed only while it is closed. Half-open is probed with a commit-status query
(a tx ID nobody has), never with a command, so an outage — however long — costs the waiting commands no
attempts. A probe that reaches the Gateway lets one command through as the trial (the peer may answer while the
orderer is down); that command's success closes the breaker, its transport failure opens it again. A transport
failure that finds or leaves the breaker open does not count towards
``max_attempts`` either, so a Gateway outage alone never sends a command to the DLQ.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import socket
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from gxlib.backend.arrivals import CommandArrivals
from gxlib.backend.backoff import backoff_delay
from gxlib.backend.batching import WriteBatcher
from gxlib.backend.breaker import BreakerState, CircuitBreaker
from gxlib.backend.commands import command_spec
from gxlib.backend.errors import LeaseLostError
from gxlib.backend.metrics import SubmitterMetrics
from gxlib.backend.outbox import CommandRecord, Outbox
from gxlib.backend.settings import SubmitterSettings
from gxlib.backend.txgateway import (
    EndorsementMismatchError,
    EndorsementRejectedError,
    PreparedTx,
    TransportError,
    TxGateway,
    TxRequest,
    TxState,
    TxStatus,
)

log = logging.getLogger("gxlib.backend.submitter")
# A well-formed transaction ID that no transaction has: what the half-open probe asks about.
IDLE_PROBE_TX_ID = "0" * 64
T = TypeVar("T")


class Outcome(StrEnum):
    COMMITTED = "committed"
    FAILED = "failed"  # chaincode rejection → FAILED + DLQ row
    DLQ = "dlq"  # attempts exhausted or a non-retryable validation code
    RETRY = "retry"  # back to PENDING with a due time
    RELEASED = "released"  # not tried: the breaker is open
    LEASE_LOST = "lease_lost"  # another worker owns it now
    ABANDONED = "abandoned"  # the outcome could not be recorded (database trouble): the lease expires, it is reclaimed


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class Submitter:
    def __init__(self, outbox: Outbox, gateway: TxGateway, settings: SubmitterSettings, *,
                 metrics: SubmitterMetrics | None = None, breaker: CircuitBreaker | None = None,
                 worker_id: str | None = None, rng: random.Random | None = None,
                 arrivals: CommandArrivals | None = None) -> None:
        self.outbox = outbox
        self.arrivals = arrivals
        self.gateway = gateway
        self.settings = settings
        self.metrics = metrics
        self.worker_id = worker_id or settings.worker_id or default_worker_id()
        self.rng = rng or random.Random()
        self.breaker = breaker or CircuitBreaker(settings.breaker_failure_threshold, settings.breaker_cooldown_s)
        self._wake: asyncio.Event | None = None  # the running loop's: set, it claims
        self.breaker.add_listener(self._breaker_changed)
        self._in_flight: set[asyncio.Task[Outcome]] = set()
        self._probe: asyncio.Task[None] | None = None
        self._last_gauges = 0.0
        self._last_claim_at = -float("inf")  # when the newest claim started (time.monotonic())
        self._last_found_at = -float("inf")  # when the newest claim that found commands started
        # The outcomes and tx IDs of the commands in flight are written together (one transaction per batch).
        self._writes = WriteBatcher(outbox.engine)

    def _breaker_changed(self, state: BreakerState) -> None:
        log.log(logging.WARNING if state is not BreakerState.CLOSED else logging.INFO,
                "circuit breaker %s", state.name.lower(), extra={"breaker_state": state.name})
        if self.metrics:
            self.metrics.breaker_state.set(state.gauge_value)
        if self._wake is not None:
            self._wake.set()  # closed after a trial, or half-open: the loop decides what to claim now

    async def _db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def _write(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        """An outbox write (taking ``connection=``), committed together with the other commands' writes."""
        await self._writes.run(lambda connection: fn(*args, connection=connection, **kwargs))

    # --- loop -------------------------------------------------------------------------------------------------
    async def run_once(self) -> list[Outcome]:
        """Claim one batch (as much as the breaker and the in-flight bound allow), process it concurrently,
        and return the outcomes. The building block of :meth:`run`, and what tests step through."""
        if self._may_probe():
            await self._probe_gateway()
        claimed, trial = await self._claim(min(self.settings.batch_size, self.settings.max_in_flight))
        if self.metrics:
            self.metrics.breaker_state.set(self.breaker.state.gauge_value)
        return list(await asyncio.gather(*(self.process(c, trial=trial) for c in claimed)))

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set: keep up to ``max_in_flight`` commands in flight, claiming as slots free up, when
        ``arrivals`` says commands were enqueued, and every ``poll_interval_s`` otherwise. On stop, claims nothing
        more and waits for the commands in flight (graceful drain)."""
        log.info("submitter started", extra={"worker_id": self.worker_id})
        wake = self._wake = asyncio.Event()

        def finished(task: asyncio.Task[Outcome]) -> None:
            was_full = len(self._in_flight) >= self.settings.max_in_flight
            self._in_flight.discard(task)
            # A freed slot is worth a claim when slots were short, or when new commands are not announced: then
            # this claim is what finds them before the poll. Announced ones wake the loop themselves.
            if was_full or self.arrivals is None or not self.arrivals.listening.is_set():
                wake.set()

        listener = asyncio.create_task(self.arrivals.watch(self._arrival_wake(wake))) if self.arrivals else None
        try:
            await self._loop(stop, wake, finished)
        finally:
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await listener
        if self._in_flight:
            log.info("draining", extra={"in_flight": len(self._in_flight)})
            await asyncio.gather(*self._in_flight, return_exceptions=True)
        await self._refresh_gauges(force=True)
        log.info("submitter stopped", extra={"worker_id": self.worker_id})

    def _arrival_wake(self, wake: asyncio.Event) -> Callable[[], None]:
        """What to call when commands were enqueued: wake the loop now if no claim that found commands started in
        the last ``arrival_coalesce_s``, else make sure one starts by then (a poll that found nothing does not
        make an arrival wait).

        A claim that starts after a notification sees its command (the notification comes after the commit), so
        arrivals close together share one claim, and a claim for another reason (slots freed at capacity, the
        poll) covers them too. A claim costs 0.5-1.7 ms of CPU here: one per arrival was most of the submitter's
        CPU at 80 commands/s. When quiet, the arrival is claimed at once instead of at the next poll."""
        loop = asyncio.get_running_loop()
        pending_since: float | None = None  # the oldest arrival no claim has started after
        timer: asyncio.TimerHandle | None = None

        def covered() -> bool:
            return pending_since is None or self._last_claim_at >= pending_since

        def deadline() -> None:
            nonlocal timer
            timer = None
            if not covered():
                wake.set()

        def arrived() -> None:
            nonlocal pending_since, timer
            now = time.monotonic()
            if covered():
                pending_since = now
            if len(self._in_flight) >= self.settings.max_in_flight:
                return  # full: a finishing command wakes the loop, and that claim covers this arrival
            due = self._last_found_at + self.settings.arrival_coalesce_s
            if now >= due:
                wake.set()
            elif timer is None:
                timer = loop.call_at(loop.time() + (due - now), deadline)

        return arrived

    async def _loop(self, stop: asyncio.Event, wake: asyncio.Event,
                    finished: Callable[[asyncio.Task[Outcome]], None]) -> None:
        while not stop.is_set():
            # Cleared before the claim: a command enqueued or finished while the claim runs wakes the next one.
            wake.clear()
            await self._refresh_gauges()
            if self._may_probe():
                self._probe = asyncio.create_task(self._probe_gateway())
                self._probe.add_done_callback(lambda _: wake.set())
            free = self.settings.max_in_flight - len(self._in_flight)
            wanted = min(self.settings.batch_size, free)
            claimed: list[CommandRecord] = []
            trial = False
            started = time.monotonic()
            if wanted > 0:
                self._last_claim_at = started  # what this claim will see was enqueued before now
            try:
                claimed, trial = await self._claim(wanted)
            except Exception:
                log.exception("claiming commands failed")
            if claimed:
                self._last_found_at = started
            if self.metrics:
                self.metrics.breaker_state.set(self.breaker.state.gauge_value)
            for command in claimed:
                task = asyncio.create_task(self.process(command, trial=trial))
                self._in_flight.add(task)
                task.add_done_callback(finished)
            if len(claimed) < wanted or wanted == 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(_first(stop.wait(), wake.wait()), self.settings.poll_interval_s)

    async def _claim(self, slots: int) -> tuple[list[CommandRecord], bool]:
        """The commands to process now (up to ``slots``), and whether the one claimed is the half-open trial.
        Commands are claimed while the breaker is closed; half-open, one after a successful probe."""
        if slots <= 0:
            return [], False
        if self.breaker.state is BreakerState.CLOSED:
            return await self._db(self.outbox.claim, self.worker_id, slots, self.settings.lease_s), False
        if not self.breaker.try_acquire_trial():
            return [], False
        try:
            claimed = await self._db(self.outbox.claim, self.worker_id, 1, self.settings.lease_s)
        except BaseException:
            self.breaker.release_trial()
            raise
        if not claimed:
            self.breaker.record_success()  # nothing to try: the probe's answer is all there is to know
        return claimed, bool(claimed)

    def _may_probe(self) -> bool:
        """True (and the probe permit taken) when the breaker is half-open and no probe is running."""
        return self._probe is None and self.breaker.state is BreakerState.HALF_OPEN and self.breaker.try_acquire()

    async def _probe_gateway(self) -> None:
        """The half-open probe: a status query for an ID that does not exist answers "unknown" when the
        Gateway is reachable and raises TransportError when it is not. No command is spent on it."""
        try:
            await self.gateway.status(IDLE_PROBE_TX_ID, min(2.0, self.settings.status_timeout_s))
        except TransportError:
            self.breaker.record_failure()
        except Exception:  # the probe told nothing about reachability
            self.breaker.release()
        else:
            self.breaker.probe_succeeded()
        finally:
            self._probe = None

    async def _refresh_gauges(self, force: bool = False) -> None:
        if not self.metrics or (not force and time.monotonic() - self._last_gauges < self.settings.gauge_interval_s):
            return
        self._last_gauges = time.monotonic()
        try:
            counts = await self._db(self.outbox.counts)
        except Exception:
            log.exception("reading outbox counts failed")
            return
        self.metrics.pending.set(counts["PENDING"])
        self.metrics.processing.set(counts["PROCESSING"])
        self.metrics.dlq.set(counts["dlq_rows"])
        self.metrics.db_pool.observe(self.outbox.engine)

    # --- one command ------------------------------------------------------------------------------------------
    async def process(self, command: CommandRecord, *, trial: bool = False) -> Outcome:
        """Take one claimed command as far as it goes now (``trial``: it is the half-open breaker's trial call).
        Never raises (a crash is the only way out without an outcome): when even recording the outcome fails, the
        command keeps its lease until it expires and is reclaimed, and its stored tx ID makes the next attempt ask
        Fabric first."""
        try:
            return await self._process(command, trial)
        except Exception:
            log.exception("could not record the outcome; the command will be reclaimed when its lease expires",
                          extra={"command_id": command.id})
            return Outcome.ABANDONED
        finally:
            if trial:  # a trial that neither closed nor opened the breaker (e.g. a lost lease) makes room for another
                self.breaker.release_trial()

    async def _process(self, command: CommandRecord, trial: bool = False) -> Outcome:
        if self.breaker.state is not BreakerState.CLOSED and not trial:
            # The breaker opened after this command was claimed: nothing is submitted, the command goes back to
            # PENDING untouched (its attempt is given back).
            return await self._guard(command, self._release(command))
        try:
            outcome = await asyncio.wait_for(self._execute(command), timeout=self.settings.lease_s * 0.9)
        except (TransportError, TimeoutError) as exc:
            self.breaker.record_failure()
            self._count_submission("error")
            code = exc.code if isinstance(exc, TransportError) else "DEADLINE_EXCEEDED"
            outage = self.breaker.state is not BreakerState.CLOSED
            log.warning("transport failure", extra={"command_id": command.id, "code": code, "error": str(exc),
                                                    "breaker_open": outage})
            # During an outage (the breaker is open) the attempt is not held against the command: it waits.
            return await self._guard(command, self._retry(command, code, str(exc) or code, keep_tx=True,
                                                          exhaustible=not outage))
        except LeaseLostError as exc:
            log.warning("lease lost", extra={"command_id": command.id, "error": str(exc)})
            return Outcome.LEASE_LOST
        except Exception as exc:  # a bug or an unexpected answer: keep the command, try again later
            log.exception("unexpected error", extra={"command_id": command.id})
            return await self._guard(command, self._retry(command, "INTERNAL", repr(exc), keep_tx=True))
        self.breaker.record_success()
        return outcome

    async def _guard(self, command: CommandRecord, step: Awaitable[Outcome]) -> Outcome:
        try:
            return await step
        except LeaseLostError:
            log.warning("lease lost", extra={"command_id": command.id})
            return Outcome.LEASE_LOST

    async def _execute(self, command: CommandRecord) -> Outcome:
        started = time.monotonic()
        if command.fabric_tx_id is not None and command.tx_envelope is not None:
            # A tx was prepared (and maybe sent) before: ask for it by ID before sending anything.
            known = await self.gateway.status(command.fabric_tx_id, self.settings.status_timeout_s)
            if known.state is not TxState.UNKNOWN:
                return await self._settle(command, known)
            prepared = PreparedTx(command.fabric_tx_id, command.tx_envelope)
            log.info("re-sending stored transaction", extra={"command_id": command.id, "tx_id": prepared.tx_id})
        else:
            spec = command_spec(command.command_type)
            request = TxRequest(command.id, spec.function, tuple(spec.chaincode_args(command.payload)), spec.identity)
            try:
                prepared = await self.gateway.prepare(request)
            except EndorsementRejectedError as exc:
                await self._write(self.outbox.mark_failed, command.id, self.worker_id, code="ENDORSEMENT_REJECTED",
                               message=exc.chaincode_message)
                self._count(command, "failed")
                log.info("chaincode rejected command", extra={"command_id": command.id,
                                                              "error": exc.chaincode_message})
                return Outcome.FAILED
            except EndorsementMismatchError as exc:
                # The peers answered (the Gateway is fine) but disagreed: endorse afresh shortly, like an MVCC retry.
                log.info("endorsements differ; endorsing again", extra={"command_id": command.id, "error": str(exc)})
                return await self._retry(command, "ENDORSEMENT_MISMATCH", str(exc), keep_tx=False,
                                         delay_s=self._contention_delay(command), exhaustible=False)
            await self._write(self.outbox.record_tx, command.id, self.worker_id, prepared.tx_id, prepared.envelope)
        await self.gateway.submit(prepared)
        status = await self.gateway.status(prepared.tx_id, self.settings.commit_timeout_s)
        if self.metrics:
            self.metrics.tx_duration_ms.observe((time.monotonic() - started) * 1000)
        return await self._settle(command, status)

    async def _settle(self, command: CommandRecord, status: TxStatus) -> Outcome:
        if status.state is TxState.COMMITTED:
            await self._write(self.outbox.mark_committed, command.id, self.worker_id, status.block_number)
            self._count_submission("success")
            self._count(command, "success")
            log.info("committed", extra={"command_id": command.id, "tx_id": status.tx_id,
                                         "block_number": status.block_number})
            return Outcome.COMMITTED
        self._count_submission("error")
        if status.state is TxState.UNKNOWN:
            # Sent, outcome not known yet (e.g. a peer just restarted and still catching up): not a failure, so it
            # spends no attempt — a command moved to the DLQ here could still commit. The next attempt asks the
            # status of the same tx and re-sends only that envelope.
            return await self._retry(command, "COMMIT_STATUS_UNKNOWN",
                                     f"tx {status.tx_id} not committed yet", keep_tx=True, exhaustible=False)
        code = status.validation_code or "INVALID"
        if status.retry_with_new_tx:
            return await self._retry(command, code, f"tx {status.tx_id} invalidated: {code}", keep_tx=False,
                                     delay_s=self._contention_delay(command), exhaustible=False)
        await self._write(self.outbox.move_to_dlq, command.id, self.worker_id, code=code,
                       message=f"tx {status.tx_id} invalidated in block {status.block_number}: {code}")
        self._count(command, "failed")
        return Outcome.DLQ

    def _contention_delay(self, command: CommandRecord) -> float:
        """Pause before a new transaction after contention (MVCC/phantom conflict, differing endorsements).
        Contention is not a fault of the command, so it spends none of ``max_attempts`` — a backlog released after
        an outage conflicts on its hot accounts again and again (drills R7, R9, R10 sent commands to the DLQ that
        way); instead the pause grows with the command's retries, with jitter, up to ``contention_backoff_max_s``."""
        return backoff_delay(command.attempts + command.free_retries, self.settings.mvcc_retry_delay_s,
                             self.settings.contention_backoff_max_s, self.rng)

    async def _retry(self, command: CommandRecord, code: str, message: str, *, keep_tx: bool,
                     delay_s: float | None = None, exhaustible: bool = True) -> Outcome:
        if exhaustible and command.attempts >= self.settings.max_attempts:
            await self._write(self.outbox.move_to_dlq, command.id, self.worker_id, code=code,
                           message=f"{command.attempts} attempts exhausted; last error: {message}")
            self._count(command, "failed")
            return Outcome.DLQ
        if delay_s is None:
            delay_s = backoff_delay(command.attempts, self.settings.backoff_base_s, self.settings.backoff_max_s,
                                    self.rng)
        await self._write(self.outbox.schedule_retry, command.id, self.worker_id, delay_s, code=code, message=message,
                       keep_tx=keep_tx, spend_attempt=exhaustible)
        self._count(command, "retry")
        return Outcome.RETRY

    async def _release(self, command: CommandRecord) -> Outcome:
        await self._write(self.outbox.release, command.id, self.worker_id)
        return Outcome.RELEASED

    def _count(self, command: CommandRecord, status: str) -> None:
        if self.metrics:
            self.metrics.processed.labels(status=status, commandType=command.command_type).inc()

    def _count_submission(self, status: str) -> None:
        if self.metrics:
            self.metrics.submissions.labels(status=status).inc()


async def _first(*waits: Awaitable[Any]) -> None:
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
