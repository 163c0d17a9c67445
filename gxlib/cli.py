"""``gx`` — the operator's command line. Thin: each command parses options and calls into gxlib."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gxlib import __version__
from gxlib.config import DevnetSettings, FabricBuildSettings
from gxlib.errors import GxError
from gxlib.extras import missing_extra, needs_extra_command
from gxlib.progress import Progress

if TYPE_CHECKING:
    from gxlib.devnet.network import Devnet, DevnetStatus

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)
if not out.is_terminal:
    # Piped or captured (CI, notebooks): do not squeeze tables into 80 columns.
    out.width = 160


def _command(module: str, name: str) -> Callable[[], click.Command]:
    """A loader of the command ``name`` of ``module``."""
    return lambda: cast(click.Command, getattr(importlib.import_module(module), name))


def _runbook_group() -> click.Command:
    try:  # the runbooks need gxlib[runbooks]; the services (gx serve *) do not
        from gxlib.runbook.cli import runbook
    except ModuleNotFoundError as missing:
        return needs_extra_command("runbook", missing)
    return runbook


def _k8s_group() -> click.Command:
    from gxlib.k8sdeploy.cli import deploy_command, down_command
    from gxlib.k8simages.cli import images_command
    from gxlib.platform.cli import k8s

    k8s.add_command(images_command)
    k8s.add_command(deploy_command)
    # `gx k8s down` also stops the devnet `gx k8s deploy` started.
    k8s.add_command(down_command)
    return k8s


# The command groups defined in other modules, imported when a command line names them (or `gx --help` lists them):
# `gx serve api` imports the services and not the runbooks, Kubernetes or monitoring layers (measured here:
# `gx serve api --help` takes 0.45 s; importing every group takes about 2 s more), so a service restarts sooner.
LAZY_COMMANDS: dict[str, Callable[[], click.Command]] = {
    "backend": _command("gxlib.backend.cli", "backend"),
    "bench": _command("gxlib.bench.cli", "bench"),
    "chaincode": _command("gxlib.chaincode.cli", "chaincode"),
    "k8s": _k8s_group,
    "monitoring": _command("gxlib.monitoring.cli", "monitoring"),
    "projector": _command("gxlib.backend.cli", "projector"),
    "runbook": _runbook_group,
    "serve": _command("gxlib.backend.serve_cli", "serve"),
}


class LazyGroup(click.Group):
    """A group whose commands in ``lazy`` (name → loader) are imported the first time they are looked up."""

    def __init__(self, *args: Any, lazy: Mapping[str, Callable[[], click.Command]], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in self.lazy:
            self.add_command(self.lazy[cmd_name](), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=LazyGroup, lazy=LAZY_COMMANDS,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="gx")
def cli() -> None:
    """gx — operate the GX Protocol: its Fabric ledger, CQRS backend and monitoring.

    Settings come from the environment (GX_DEVNET_*, GX_FABRIC_*); see `gx devnet --help`.
    """


# --- gx fabric -------------------------------------------------------------------------------------------
@cli.group()
def fabric() -> None:
    """Hyperledger Fabric binaries, built from source with `go install` and cached."""


@fabric.command("build")
@click.option("--force", is_flag=True, help="Rebuild even if the cache is complete.")
def fabric_build(force: bool) -> None:
    """Build peer, orderer, configtxgen, osnadmin and the CCaaS builder into the cache.

    The cache is ~/.cache/gxlib/fabric-<commit>/ (GX_FABRIC_CACHE_ROOT moves it). A complete cache is
    reused; an incomplete one is completed.
    """
    from gxlib.devnet.binaries import build_fabric

    install = build_fabric(FabricBuildSettings(), Progress(err), force=force)
    out.print(str(install.root))


@fabric.command("where")
def fabric_where() -> None:
    """Print the cache directory and whether the build in it is complete."""
    from gxlib.devnet.binaries import fabric_install

    install = fabric_install(FabricBuildSettings())
    out.print(json.dumps({"root": str(install.root), "complete": install.is_complete(),
                          "manifest": install.manifest()}, indent=2))


# --- gx devnet -------------------------------------------------------------------------------------------
def _devnet(state_dir: Path | None, quiet: bool = False) -> Devnet:
    from gxlib.devnet.network import Devnet

    settings = DevnetSettings(state_dir=state_dir) if state_dir else DevnetSettings()
    return Devnet(settings, FabricBuildSettings(), Progress(err, quiet=quiet))


state_dir_option = click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None,
    help="Directory holding the network's state [env GX_DEVNET_STATE_DIR; default ~/.local/state/gxlib/devnet].",
)


@cli.group()
def devnet() -> None:
    """The local Fabric network: one Raft orderer, Org1 and Org2 with peer0 each, as local processes.

    \b
    Settings (environment):
      GX_DEVNET_STATE_DIR       where all state lives
      GX_DEVNET_CHANNEL         application channel (default gxchannel-local)
      GX_DEVNET_PORT_OFFSET     added to every port (run a second network beside the first)
      GX_DEVNET_BATCH_TIMEOUT_MS, GX_DEVNET_MAX_MESSAGE_COUNT   block cutting
      GX_DEVNET_GATEWAY_CONCURRENCY_LIMIT                       the peers' Gateway limit
    """


@devnet.command("up")
@state_dir_option
def devnet_up(state_dir: Path | None) -> None:
    """Create and start the network; completes a half-created one; a no-op when it is up."""
    net = _devnet(state_dir)
    report = net.up()
    if not report.changed:
        err.print("[green]devnet is already up[/] — nothing changed")
    _print_status(net.status())


@devnet.command("status")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def devnet_status(state_dir: Path | None, as_json: bool) -> None:
    """Per node: role, pid, endpoints, health (/healthz) and ledger height. Exit 1 unless all healthy."""
    status = _devnet(state_dir, quiet=True).status()
    if as_json:
        out.print_json(status.model_dump_json())
    else:
        _print_status(status)
    sys.exit(0 if status.all_healthy else 1)


@devnet.command("down")
@state_dir_option
@click.option("--purge", is_flag=True, help="Also delete the state directory (ledgers, crypto, logs).")
def devnet_down(state_dir: Path | None, purge: bool) -> None:
    """Stop every node (SIGTERM, SIGKILL after 15 s)."""
    net = _devnet(state_dir)
    stopped = net.down(purge=purge)
    for name, pids in stopped.items():
        err.print(f"stopped {name} (pid {', '.join(map(str, pids))})")
    if not stopped:
        err.print("no devnet process was running")
    if purge:
        err.print(f"removed {net.layout.root}")


@devnet.command("logs")
@state_dir_option
@click.argument("node")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("-n", "--lines", default=100, show_default=True, help="How many lines of the end to print.")
def devnet_logs(state_dir: Path | None, node: str, follow: bool, lines: int) -> None:
    """Print a node's log (NODE: orderer0, peer0-org1, peer0-org2)."""
    from gxlib.devnet import processes

    net = _devnet(state_dir, quiet=True)
    try:
        target = net.layout.node(node)
    except KeyError as exc:
        raise GxError(str(exc).strip("'\"")) from None
    if not target.log_file.exists():
        raise GxError(f"{node} has no log yet ({target.log_file})", hint="run `gx devnet up` first")
    out.print(processes.log_tail(target, lines), markup=False)
    if follow:
        try:
            for line in processes.follow_log(target):
                out.print(line, markup=False)
        except KeyboardInterrupt:
            pass


@devnet.command("env")
@state_dir_option
@click.option("--json", "as_json", is_flag=True, help="Everything a client needs, as JSON (the default).")
@click.option("--peer-cli", "peer_cli", metavar="ORG",
              help="Print `export` lines after which Fabric's `peer` CLI works as ORG's admin (org1|org2).")
def devnet_env(state_dir: Path | None, as_json: bool, peer_cli: str | None) -> None:
    """Endpoints, TLS CA files and MSP directories of every identity; or shell exports for `peer`."""
    net = _devnet(state_dir, quiet=True)
    if peer_cli:
        try:
            cli_env = net.peer_cli(peer_cli)
        except KeyError as exc:
            raise GxError(str(exc).strip("'\"")) from None
        out.print(cli_env.export_lines(), markup=False)
        return
    out.print_json(json.dumps(net.environment()))


@cli.command("demo")
@click.option("--env", "env", type=click.Choice(["local", "devnet"]), default="local", show_default=True,
              help="local: processes on this machine (`make demo`); devnet: the real single-node cluster "
                   "(`make demo-k8s`)")
def demo(env: str) -> None:
    """The main job (`make demo`): bring up the devnet, the GX chaincode, the backend and the monitoring stack,
    run the five runbooks in order, and print the SLO report's path and a summary. Safe to run again.

    With --env devnet: `gx k8s deploy` (the cluster, the devnet overlay, the Fabric nodes on the node IP, chaincode
    1.0 in the pods), then the same five runbooks with env=devnet on that cluster, and the same summary.
    """
    from gxlib.demo import DemoReport

    report: DemoReport
    title = "gx demo"
    if env == "local":
        from gxlib.demo import run_demo

        report = run_demo(Progress(err))
    else:
        from gxlib.demo_k8s import run_cluster_demo
        from gxlib.k8sdeploy.settings import DeploySettings

        cluster_report = run_cluster_demo(Progress(err), settings=DeploySettings(env=env))
        title = f"gx demo --env {env} (deploy {cluster_report.deploy_seconds:.0f}s)"
        report = cluster_report
    table = Table(title=f"{title} — {report.seconds:.0f}s")
    for column in ("runbook", "result", "seconds", "record"):
        table.add_column(column)
    for outcome in report.runbooks:
        result = "[green]passed[/]" if outcome.passed else f"[red]FAILED[/] {escape(outcome.error or '')}"
        table.add_row(outcome.name, result, f"{outcome.seconds:.0f}", outcome.record or "-")
    out.print(table)
    out.print(f"SLO report: {report.report_path or '(none produced)'}", markup=False)
    sys.exit(0 if report.passed else 1)


def _print_status(status: DevnetStatus) -> None:
    table = Table(title=f"devnet · channel {status.channel} · Fabric {status.fabric_release} · {status.state_dir}")
    for column in ("node", "role", "MSP", "pid", "healthy", "height", "endpoints"):
        table.add_column(column)
    for node in status.nodes:
        health = "[green]yes[/]" if node.healthy else f"[red]no[/] {node.detail or ''}"
        endpoints = " · ".join(f"{k} {v.removeprefix('http://').removeprefix('https://')}"
                               for k, v in node.endpoints.items())
        table.add_row(node.name, node.role, node.msp_id, str(node.pid or "-"), health,
                      str(node.ledger_height if node.ledger_height is not None else "-"), endpoints)
    out.print(table)
    for node in status.nodes:
        if not node.healthy and node.log_tail:
            out.print(f"[bold]{node.name}[/] log tail ({node.log_file}):")
            out.print(node.log_tail, markup=False)


def main() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except GxError as exc:
        err.print(f"[red]error:[/] {escape(exc.message)}", highlight=False)
        if exc.hint:
            err.print(f"[yellow]hint:[/] {escape(exc.hint)}")
        sys.exit(1)
    except ValidationError as exc:
        err.print(f"[red]invalid settings:[/] {escape(str(exc))}")
        sys.exit(2)
    except ModuleNotFoundError as exc:  # a command that imports an optional dependency (gxlib[runbooks]) late
        missing = missing_extra(exc, f"`gx {' '.join(sys.argv[1:3])}`")
        if missing is None:
            raise
        err.print(f"[red]error:[/] {escape(missing.message)}", highlight=False)
        err.print(f"[yellow]hint:[/] {escape(missing.hint or '')}")
        sys.exit(1)
    except SystemExit:
        raise


if __name__ == "__main__":
    main()
