"""``gx backend`` — the CQRS backend's commands (the lead mounts this group in gxlib/cli.py).

Thin: each command builds BackendSettings (GX_BACKEND_*) and calls one library function.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from gxlib.backend.settings import BackendSettings

if TYPE_CHECKING:
    from gxlib.backend.local import LocalBackend


def _settings(database_url: str | None) -> BackendSettings:
    return BackendSettings(database_url=database_url) if database_url else BackendSettings()


database_option = click.option("--database-url", default=None,
                               help="SQLAlchemy URL [env GX_BACKEND_DATABASE_URL; default: the running services' "
                                    "one, else a local SQLite file].")


@click.group()
def backend() -> None:
    """The CQRS backend: database, API, outbox (settings from GX_BACKEND_*)."""


@backend.command("migrate")
@database_option
def migrate_command(database_url: str | None) -> None:
    """Create or upgrade the backend schema to the newest migration; prints the revision."""
    from gxlib.backend.db import make_engine, migrate

    engine = make_engine(_settings(database_url).database_url)
    try:
        click.echo(migrate(engine))
    finally:
        engine.dispose()


@backend.command("api")
@database_option
@click.option("--host", default=None, help="listen address [env GX_BACKEND_API_HOST; default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="listen port [env GX_BACKEND_API_PORT; default 8000]")
def api_command(database_url: str | None, host: str | None, port: int | None) -> None:
    """Serve the HTTP API (JSON logs on stderr; SIGTERM stops it gracefully)."""
    from gxlib.backend.api import create_app
    from gxlib.backend.api.server import serve
    from gxlib.backend.logs import configure_logging

    settings = _settings(database_url)
    configure_logging(settings.service_name, settings.log_level)
    serve(create_app(settings), settings, host=host, port=port)


@backend.command("outbox")
@database_option
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def outbox_command(database_url: str | None, as_json: bool) -> None:
    """Commands per status and rows in the dead-letter queue."""
    counts = _with_outbox(database_url, lambda outbox: outbox.counts())
    if as_json:
        click.echo(json.dumps(counts))
    else:
        for status, count in counts.items():
            click.echo(f"{status:<12} {count}")


@backend.command("dlq")
@database_option
@click.option("--limit", type=click.IntRange(1, 10_000), default=50)
def dlq_command(database_url: str | None, limit: int) -> None:
    """The newest dead letters as JSON lines (command, final status, error, tx ID)."""
    for letter in _with_outbox(database_url, lambda outbox: outbox.dead_letters(limit)):
        click.echo(json.dumps(letter.__dict__, default=str))


@backend.command("command")
@database_option
@click.argument("command_id")
def command_command(database_url: str | None, command_id: str) -> None:
    """One command's state as JSON."""
    record = _with_outbox(database_url, lambda outbox: outbox.get(command_id))
    fields = {k: v for k, v in record.__dict__.items() if k != "tx_envelope"}
    click.echo(json.dumps(fields, default=str, indent=2))


def _with_outbox(database_url: str | None, action: Any) -> Any:
    from gxlib.backend.db import make_engine, migrate
    from gxlib.backend.outbox import Outbox

    engine = make_engine(_settings(database_url).database_url)
    try:
        migrate(engine)
        return action(Outbox(engine))
    finally:
        engine.dispose()


def _local_backend(state_dir: Path | None, database_url: str | None, quiet: bool = False) -> LocalBackend:
    from gxlib.backend.local import LocalBackend
    from gxlib.config import DevnetSettings
    from gxlib.devnet.network import Devnet
    from gxlib.progress import Progress

    progress = Progress(quiet=quiet)
    devnet = Devnet(DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings(), progress=progress)
    return LocalBackend(devnet, _settings(database_url), progress)


state_dir_option = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                                help="The devnet's state directory [env GX_DEVNET_STATE_DIR].")


@backend.command("up")
@state_dir_option
@database_option
def up_command(state_dir: Path | None, database_url: str | None) -> None:
    """Start api, submitter and projector as local processes against the devnet (idempotent)."""
    local = _local_backend(state_dir, database_url)
    started = local.up()
    click.echo(("started " + ", ".join(started)) if started else "backend is already up — nothing changed", err=True)
    _print_status(local.status(), as_json=False)


@backend.command("down")
@state_dir_option
def down_command(state_dir: Path | None) -> None:
    """Stop the three services (SIGTERM: they drain; SIGKILL after 20 s)."""
    stopped = _local_backend(state_dir, None, quiet=True).down()
    click.echo("\n".join(f"stopped {n} (pid {', '.join(map(str, p))})" for n, p in stopped.items())
               or "no backend service was running", err=True)


@backend.command("status")
@state_dir_option
@database_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status_command(state_dir: Path | None, database_url: str | None, as_json: bool) -> None:
    """Each service's URL, pid and health. Exit 1 unless all three are healthy."""
    status = _local_backend(state_dir, database_url, quiet=True).status()
    _print_status(status, as_json=as_json)
    sys.exit(0 if status.all_healthy else 1)


@backend.command("fabric-bundle")
@state_dir_option
@click.option("--host", default=None, help="The address pods dial the peers at [default: the devnet's host].")
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Write the files here (0600) instead of printing the Secret.")
@click.option("--namespace", default="backend-devnet", show_default=True, help="The printed Secret's namespace.")
@click.option("--for", "service", type=click.Choice(["submitter", "projector"]), default="submitter",
              show_default=True, help="submitter: Secret backend-fabric-client (super_admin and service identities); "
              "projector: Secret backend-fabric-reader (the service identity only)")
def fabric_bundle_command(state_dir: Path | None, host: str | None, out_dir: Path | None, namespace: str,
                          service: str) -> None:
    """A backend worker's Fabric client bundle from the devnet: its files into --out, or the Secret as JSON
    (kubectl apply -f -)."""
    from gxlib.backend.fabric_client import (
        FABRIC_CLIENT_SECRET,
        FABRIC_READER_SECRET,
        READER_ROLES,
        SERVICE_ROLES,
        fabric_client_bundle,
        fabric_client_secret,
        write_bundle,
    )
    from gxlib.config import DevnetSettings
    from gxlib.devnet.network import Devnet
    from gxlib.progress import Progress

    devnet = Devnet(DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings(),
                    progress=Progress(quiet=True))
    roles, secret = (READER_ROLES, FABRIC_READER_SECRET) if service == "projector" else (SERVICE_ROLES,
                                                                                         FABRIC_CLIENT_SECRET)
    files = fabric_client_bundle(devnet.environment(), host=host, roles=roles)
    if out_dir is None:
        click.echo(json.dumps(fabric_client_secret(files, namespace, secret), indent=2))
        return
    click.echo(f"wrote {write_bundle(files, out_dir)} and {len(files) - 1} files it names", err=True)


def _print_status(status: Any, *, as_json: bool) -> None:
    if as_json:
        click.echo(status.model_dump_json(indent=2))
        return
    click.echo(f"database: {status.database_url}")
    if status.token_file:
        click.echo(f"admin token: {status.token_file}")
    for s in status.services:
        state = "healthy" if s.healthy else f"UNHEALTHY ({s.detail})"
        click.echo(f"  {s.name:<10} {s.url:<28} pid {s.pid or '-':<8} {state}  log {s.log_file}")


@click.group()
def projector() -> None:
    """The projector's read models: rebuild and verify them from the ledger."""


@projector.command("replay")
@state_dir_option
@database_option
@click.option("--target-url", default=None,
              help="Replay into this empty database [default: a fresh one beside the live database, removed after].")
@click.option("--keep", is_flag=True, help="Keep the fresh replay database (its URL is printed).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def replay_command(state_dir: Path | None, database_url: str | None, target_url: str | None, keep: bool,
                   as_json: bool) -> None:
    """Rebuild the read models from block 0 of the ledger into a fresh database and compare them with the live
    ones, up to the live projector's checkpoint. Prints every difference; exit 1 if there is one."""
    import asyncio
    import contextlib

    from gxlib.backend.db import make_engine
    from gxlib.backend.dburl import redacted_database_url
    from gxlib.backend.ledger_replay import fresh_database, replay_ledger
    from gxlib.config import ChaincodeSettings

    local = _local_backend(state_dir, database_url, quiet=True)
    environment = local.devnet.environment()
    live = make_engine(local.settings.database_url)
    with contextlib.ExitStack() as stack:
        stack.callback(live.dispose)
        url = target_url or stack.enter_context(fresh_database(local.settings.database_url, keep=keep))
        target = make_engine(url)
        stack.callback(target.dispose)
        report = asyncio.run(replay_ledger(environment, environment["channel"], ChaincodeSettings().name, live,
                                           target))
    checkpoint = report.checkpoint
    figures = {"events": report.events, "applied": report.applied, "unknown": report.unknown,
               "checkpoint": None if checkpoint is None else {"block": checkpoint.block_number,
                                                              "txIndex": checkpoint.tx_index},
               "elapsed_s": round(report.elapsed_s, 3), "events_per_s": round(report.events_per_s, 1),
               "equal": report.equal, "differences": [d.__dict__ for d in report.differences],
               "target": redacted_database_url(url) if (keep or target_url) else None}
    if as_json:
        click.echo(json.dumps(figures, default=str, indent=2))
    else:
        at = "nothing projected yet" if checkpoint is None else \
            f"up to block {checkpoint.block_number} tx {checkpoint.tx_index}"
        click.echo(f"replayed {report.events} events ({report.unknown} of unknown type) {at} in "
                   f"{report.elapsed_s:.2f}s ({report.events_per_s:.0f} events/s)")
        for d in report.differences:
            click.echo(f"DIFF {d.table} {d.key}: live={json.dumps(d.live, default=str)} "
                       f"replayed={json.dumps(d.replayed, default=str)}")
        click.echo("read models equal the replay" if report.equal
                   else f"{len(report.differences)} differences between the live read models and the replay")
        if figures["target"]:
            click.echo(f"replay database: {figures['target']}")
    sys.exit(0 if report.equal else 1)
