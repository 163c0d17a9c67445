"""Long-running worker processes: the submitter and the projector with their metrics endpoint, stopped
gracefully by SIGTERM/SIGINT (claim nothing new, finish what is in flight, then exit).

The Fabric side is passed in: ``serve_submitter(settings, gateway)`` with a :class:`TxGateway`,
``serve_projector(settings, source)`` with an :class:`EventSource`.
"""

from __future__ import annotations

import asyncio
import logging
import signal

from prometheus_client import CollectorRegistry, start_http_server

from gxlib.backend.arrivals import command_arrivals
from gxlib.backend.db import make_engine, migrate
from gxlib.backend.eventsource import EventSource
from gxlib.backend.metrics import projector_metrics, submitter_metrics
from gxlib.backend.outbox import Outbox
from gxlib.backend.projector import Projector
from gxlib.backend.settings import BackendSettings
from gxlib.backend.submitter import Submitter
from gxlib.backend.txgateway import TxGateway

log = logging.getLogger("gxlib.backend.service")


def stop_on_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def serve_submitter(settings: BackendSettings, gateway: TxGateway, *, stop: asyncio.Event | None = None,
                          registry: CollectorRegistry | None = None) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    registry = registry or CollectorRegistry()
    metrics = submitter_metrics(registry)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    if settings.migrate_on_start:
        migrate(engine)
    server, thread = start_http_server(settings.submitter_metrics_port, settings.metrics_host, registry)
    try:
        arrivals = command_arrivals(engine) if settings.submitter.listen_for_commands else None
        await Submitter(Outbox(engine), gateway, settings.submitter, metrics=metrics, arrivals=arrivals).run(stop)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        engine.dispose()


async def serve_projector(settings: BackendSettings, source: EventSource, *, stop: asyncio.Event | None = None,
                          registry: CollectorRegistry | None = None) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    registry = registry or CollectorRegistry()
    metrics = projector_metrics(registry)
    engine = make_engine(settings.database_url, pool_size=settings.db_pool_size, max_overflow=settings.db_max_overflow)
    if settings.migrate_on_start:
        migrate(engine)
    server, thread = start_http_server(settings.projector_metrics_port, settings.metrics_host, registry)
    try:
        metrics.db_pool.observe(engine)
        await Projector(engine, metrics=metrics, settings=settings.projector).run(source, stop)
    finally:
        server.shutdown()
        thread.join(timeout=5)
        engine.dispose()
