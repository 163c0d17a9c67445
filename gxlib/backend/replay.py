"""Replay: rebuild the read models from the event history into a fresh schema and compare with the live ones.

A projector that applies every event exactly once leaves the live read models equal to a replay up to the
same checkpoint; any difference found here is a projection bug (or a lost/duplicated event).
"""

from __future__ import annotations

import resource
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from gxlib.backend.db import migrate
from gxlib.backend.errors import BackendError
from gxlib.backend.eventsource import ChaincodeEvent, Checkpoint
from gxlib.backend.models import (
    Account,
    Base,
    Country,
    MintEvent,
    Pool,
    ProjectorCheckpoint,
    Proposal,
    Transfer,
    UserProfile,
)
from gxlib.backend.projector import DEFAULT_STREAM, ApplyResult, Projector
from gxlib.backend.setreplay import SetProjection, gc_paused

# Per table: the natural key, and the columns that legitimately differ between two projections.
COMPARED: tuple[tuple[type[Base], tuple[str, ...], frozenset[str]], ...] = (
    (UserProfile, ("user_id",), frozenset()),
    (Account, ("account_id",), frozenset()),
    (Pool, ("pool_id",), frozenset()),
    (Country, ("code",), frozenset()),
    (MintEvent, ("tx_id", "mint_index"), frozenset({"id"})),
    (Transfer, ("tx_id",), frozenset({"id"})),
    (Proposal, ("proposal_id",), frozenset()),
    (ProjectorCheckpoint, ("stream",), frozenset({"updated_at"})),
)


# Events per database transaction in a replay through the live projector (the fresh target has no reader waiting
# for each event).
REPLAY_BATCH = 500


class ReplayTargetNotEmptyError(BackendError):
    def __init__(self, url: str) -> None:
        super().__init__(f"replay target {url} already holds a projector checkpoint",
                         hint="replay into a fresh, empty database or schema")


@dataclass(frozen=True)
class Difference:
    table: str
    key: tuple[Any, ...]
    live: dict[str, Any] | None  # None: the row is missing in the live read model
    replayed: dict[str, Any] | None  # None: the row is missing in the replay


@dataclass(frozen=True)
class ReplayReport:
    events: int
    applied: int
    unknown: int
    checkpoint: Checkpoint | None
    elapsed_s: float
    differences: list[Difference] = field(default_factory=list)
    cpu_s: float = 0.0  # CPU-seconds of this process (all threads) over elapsed_s
    nodes_cpu_s: float | None = None  # the Fabric nodes' CPU-seconds over elapsed_s, when a reading was given

    @property
    def equal(self) -> bool:
        return not self.differences

    @property
    def events_per_s(self) -> float:
        return self.events / self.elapsed_s if self.elapsed_s > 0 else 0.0


def replay(events: Iterable[ChaincodeEvent], target: Engine, *, until: Checkpoint | None = None,
           stream: str = DEFAULT_STREAM, batch_size: int | None = None) -> ReplayReport:
    """Apply ``events`` (from block 0, in ledger order) to a fresh schema in ``target``; stop after ``until``.
    By default set-based (:mod:`gxlib.backend.setreplay`: the read models built in memory, one bulk write with one
    checkpoint); with ``batch_size``, through the live projector ``batch_size`` events per transaction. A
    malformed event raises, as it does in the live projector: a replay never skips."""
    migrate(target)
    projector = Projector(target, stream=stream)
    if projector.checkpoint() is not None:
        raise ReplayTargetNotEmptyError(target.url.render_as_string(hide_password=True))
    started, cpu_started = time.perf_counter(), own_cpu_seconds()
    if batch_size is None:
        projection = SetProjection(stream=stream)
        with gc_paused():
            results = projection.add(_upto(events, until))
            projection.write(target)
    else:
        results = _apply_in_batches(projector, _upto(events, until), batch_size)
    applied = sum(r is ApplyResult.APPLIED for r in results)
    unknown = sum(r is ApplyResult.UNKNOWN_TYPE for r in results)
    elapsed, cpu = time.perf_counter() - started, own_cpu_seconds() - cpu_started
    return ReplayReport(len(results), applied, unknown, projector.checkpoint(), elapsed, cpu_s=cpu)


def own_cpu_seconds() -> float:
    """User + system CPU seconds of this process so far, all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _upto(events: Iterable[ChaincodeEvent], until: Checkpoint | None) -> Iterator[ChaincodeEvent]:
    for event in events:
        if until is not None and event.position > until.position:
            return
        yield event


def _apply_in_batches(projector: Projector, events: Iterable[ChaincodeEvent], batch_size: int) -> list[ApplyResult]:
    results: list[ApplyResult] = []
    batch: list[ChaincodeEvent] = []
    for event in events:
        batch.append(event)
        if len(batch) >= batch_size:
            results += projector.apply_batch(batch)
            batch = []
    results += projector.apply_batch(batch)
    return results


def _rows(engine: Engine, model: type[Base], key: tuple[str, ...], ignored: frozenset[str]
          ) -> dict[tuple[Any, ...], dict[str, Any]]:
    columns = [c for c in inspect(model).columns if c.key not in ignored]
    with Session(engine) as session:
        found = session.execute(select(*columns)).mappings().all()
    return {tuple(row[k] for k in key): dict(row) for row in found}


def compare_read_models(live: Engine, replayed: Engine) -> list[Difference]:
    """Every row that differs between the two databases' read models (empty: equal)."""
    differences: list[Difference] = []
    for model, key, ignored in COMPARED:
        a, b = _rows(live, model, key, ignored), _rows(replayed, model, key, ignored)
        for k in sorted(a.keys() | b.keys(), key=repr):
            if a.get(k) != b.get(k):
                differences.append(Difference(model.__tablename__, k, a.get(k), b.get(k)))
    return differences


def replay_and_compare(events: Iterable[ChaincodeEvent], live: Engine, target: Engine, *,
                       stream: str = DEFAULT_STREAM) -> ReplayReport:
    """Replay up to the live projector's checkpoint into ``target`` and compare the read models."""
    until = Projector(live, stream=stream).checkpoint()
    report = replay([] if until is None else events, target, until=until, stream=stream)
    return ReplayReport(report.events, report.applied, report.unknown, report.checkpoint, report.elapsed_s,
                        compare_read_models(live, target), report.cpu_s)
