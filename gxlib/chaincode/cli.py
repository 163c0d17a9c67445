"""``gx chaincode``: deploy/upgrade the GX chaincode on the local network, show its state, stop its servers."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Table

from gxlib.config import ChaincodeSettings, DevnetSettings, Environment, FabricBuildSettings
from gxlib.errors import GxError
from gxlib.progress import Progress

if TYPE_CHECKING:
    from gxlib.chaincode.deploy import ChaincodeOperator

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def _operator(state_dir: Path | None, quiet: bool = False) -> ChaincodeOperator:
    from gxlib.chaincode.deploy import ChaincodeOperator
    from gxlib.devnet.network import Devnet

    settings = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    progress = Progress(err, quiet=quiet)
    devnet = Devnet(settings, FabricBuildSettings(), progress)
    if not devnet.status().all_healthy:
        raise GxError(f"the devnet in {devnet.layout.root} is not up", hint="run `gx devnet up` first")
    return ChaincodeOperator(devnet, ChaincodeSettings(), progress)


state_dir_option = click.option("--state-dir", type=click.Path(path_type=Path), default=None,
                                help="The devnet's state directory [env GX_DEVNET_STATE_DIR].")
env_option = click.option("--env", "env", type=click.Choice([e.value for e in Environment]), default="local",
                          show_default=True, help="Target environment (only local runs here; Kubernetes "
                          "environments go through the platform layer).")


@click.group()
def chaincode() -> None:
    """The GX chaincode (gxtv3): deploy or upgrade, status, stop its servers.

    \b
    Settings (environment): GX_CHAINCODE_NAME (gxtv3), GX_CHAINCODE_LABEL_PREFIX (gxtv3),
    GX_CHAINCODE_DIAL_TIMEOUT (10s); server ports are the devnet's per-org ccaas_port.
    """


def _local_only(env: str) -> None:
    if env != Environment.LOCAL.value:
        raise GxError(f"--env {env} needs the Kubernetes platform layer, which this command does not drive yet",
                      hint="use --env local against the devnet")


@chaincode.command("deploy")
@click.option("--version", "version", required=True, help="Chaincode version, e.g. 1.0; the label is gxtv3_<version>.")
@env_option
@state_dir_option
def deploy(version: str, env: str, state_dir: Path | None) -> None:
    """Package, install on every peer, approve for every org, commit (sequence 1, or committed + 1 on upgrade),
    start one chaincode server per org with the new package ID, and wait until it answers.

    Deploying the committed version again reports "already committed" and changes nothing.
    """
    _local_only(env)
    report = _operator(state_dir).deploy(version)
    if report.already_committed and not report.changed:
        err.print(f"[green]{report.label} is already committed[/] (sequence {report.sequence}) — nothing changed")
    else:
        err.print(f"[green]{report.label} committed at sequence {report.sequence}[/]")
    for org, pkg in report.package_ids.items():
        out.print(f"{org}: {pkg}", markup=False)


@chaincode.command("status")
@env_option
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def status(env: str, state_dir: Path | None, as_json: bool) -> None:
    """Committed version and sequence, approvals per org, installed packages, servers and their health.
    Exit 1 unless committed, answering, and every server listening."""
    _local_only(env)
    state = _operator(state_dir, quiet=True).status()
    if as_json:
        out.print_json(state.model_dump_json())
    else:
        out.print(f"{state.name} on {state.channel}: " + (
            f"version {state.version}, sequence {state.sequence}, approvals "
            + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in state.approvals.items())
            if state.committed else "not committed") + f"; answering: {'yes' if state.answering else 'no'}")
        table = Table()
        for column in ("server", "org", "address", "pid", "listening", "package ID"):
            table.add_column(column)
        for s in state.servers:
            table.add_row(s.name, s.org, s.address, str(s.pid or "-"), "yes" if s.listening else "no",
                          s.package_id or "-")
        out.print(table)
        for org, ids in state.installed.items():
            out.print(f"installed on {org}: {', '.join(ids) or '-'}", markup=False)
    sys.exit(0 if state.healthy else 1)


@chaincode.command("stop")
@state_dir_option
def stop(state_dir: Path | None) -> None:
    """Stop the chaincode servers (the committed definition stays; `deploy` starts them again)."""
    stopped = _operator(state_dir, quiet=True).stop_servers()
    err.print("\n".join(f"stopped {n} (pid {', '.join(map(str, p))})" for n, p in stopped.items())
              or "no chaincode server was running")
