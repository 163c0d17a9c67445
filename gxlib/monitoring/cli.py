"""``gx monitoring``: render the monitoring artifacts (scrape jobs, alert rules, dashboard, local stack config)."""

from __future__ import annotations

import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.markup import escape

from gxlib.errors import GxError

if TYPE_CHECKING:
    from gxlib.monitoring.stack import LocalMonitoringStack, StackStatus

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def repository_root() -> Path:
    """The checkout gxlib is installed from (editable install), where the committed artifacts live."""
    root = Path(__file__).resolve().parents[2]
    if not (root / "pyproject.toml").is_file():
        raise GxError(f"{root} is not a gxlib checkout (no pyproject.toml)",
                      hint="pass --root <checkout> to say where the artifacts go")
    return root


@click.group()
def monitoring() -> None:
    """Monitoring as code: Prometheus scrape jobs, the 18 backend alerts, the Grafana dashboard.

    Everything is defined once in gxlib/monitoring and rendered to files; the files are committed.
    """


@monitoring.command("render")
@click.option("--root", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Repository root to write under [default: the checkout gxlib runs from].")
@click.option("--check", is_flag=True,
              help="Write nothing; exit 1 if a committed artifact differs from a fresh render.")
def monitoring_render(root: Path | None, check: bool) -> None:
    """Write k8s/monitoring/** and monitoring/** from the definitions (default settings, not the environment).

    \b
      k8s/monitoring/prometheus/alerts-backend.yaml    ConfigMap: alert rules (Kubernetes)
      k8s/monitoring/prometheus/scrape-backend.yaml    ConfigMap: backend scrape jobs (Kubernetes SD)
      k8s/monitoring/grafana/dashboards/07-cqrs-backend-monitoring.json
      monitoring/prometheus/prometheus.yml             local Prometheus (static targets + devnet nodes)
      monitoring/prometheus/rules/gx-backend-cqrs-alerts.yml
      monitoring/alertmanager/alertmanager.yml
    """
    from gxlib.monitoring.render import committed_artifacts, stale_artifacts, write_artifacts

    target_root = root or repository_root()
    artifacts = committed_artifacts()
    if check:
        stale = stale_artifacts(target_root, artifacts)
        for path in stale:
            err.print(f"[red]stale:[/] {path}")
        if stale:
            err.print("run `gx monitoring render` and commit the result")
            sys.exit(1)
        err.print(f"[green]all {len(artifacts)} artifacts are up to date[/]")
        return
    changed = set(write_artifacts(target_root, artifacts))
    for artifact in artifacts:
        state = "[yellow]written[/]" if artifact.path in changed else "unchanged"
        out.print(f"{state:>20}  {artifact.path}  [dim]({artifact.description})[/]")


# --- the local stack -------------------------------------------------------------------------------------
def _stack(state_dir: Path | None, quiet: bool = False) -> LocalMonitoringStack:
    from gxlib.config import DevnetSettings
    from gxlib.monitoring.settings import MonitoringSettings
    from gxlib.monitoring.stack import LocalMonitoringStack
    from gxlib.progress import Progress

    settings = MonitoringSettings(stack_state_dir=state_dir) if state_dir else MonitoringSettings()
    return LocalMonitoringStack(settings, DevnetSettings(), Progress(err, quiet=quiet))


stack_dir_option = click.option(
    "--state-dir", type=click.Path(path_type=Path), default=None,
    help="Directory of the stack's config, data and logs [env GX_MONITORING_STACK_STATE_DIR; "
         "default ~/.local/state/gxlib/monitoring].",
)


@monitoring.command("up")
@stack_dir_option
def monitoring_up(state_dir: Path | None) -> None:
    """Start Prometheus, Alertmanager and the webhook receiver on loopback; reload them if the config changed.

    \b
    Settings (environment):
      GX_MONITORING_LOCAL_STACK__PROMETHEUS_PORT    default 19090
      GX_MONITORING_LOCAL_STACK__ALERTMANAGER_PORT  default 19093
      GX_MONITORING_LOCAL_STACK__WEBHOOK_PORT       default 19094
      GX_DEVNET_PORT_OFFSET                          which devnet's peers and orderer are scraped
    """
    stack = _stack(state_dir)
    report = stack.up()
    if report.started:
        err.print(f"started {', '.join(report.started)}")
    if report.reloaded:
        err.print(f"reloaded {', '.join(report.reloaded)} (configuration changed)")
    if not report.started and not report.reloaded:
        err.print("[green]monitoring stack is already up[/] — nothing changed")
    _print_stack_status(stack.status())


@monitoring.command("status")
@stack_dir_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def monitoring_status(state_dir: Path | None, as_json: bool) -> None:
    """Processes, rules loaded, scrape targets, alerts and notifications received. Exit 1 unless all ready."""
    status = _stack(state_dir, quiet=True).status()
    if as_json:
        out.print_json(status.model_dump_json())
    else:
        _print_stack_status(status)
    sys.exit(0 if status.all_ready else 1)


@monitoring.command("down")
@stack_dir_option
@click.option("--purge", is_flag=True, help="Also delete the state directory (TSDB, notifications, logs).")
def monitoring_down(state_dir: Path | None, purge: bool) -> None:
    """Stop the stack's processes (SIGTERM, SIGKILL after 15 s)."""
    stack = _stack(state_dir)
    stopped = stack.down(purge=purge)
    for name, pid in stopped.items():
        err.print(f"stopped {name} (pid {pid})")
    if not stopped:
        err.print("no monitoring process was running")
    if purge:
        err.print(f"removed {stack.layout.root}")


def _print_stack_status(status: StackStatus) -> None:
    from rich.table import Table

    table = Table(title=f"monitoring stack · {status.state_dir}")
    for column in ("component", "pid", "ready", "url"):
        table.add_column(column)
    for component in status.components:
        ready = "[green]yes[/]" if component.ready else "[red]no[/]"
        table.add_row(component.name, str(component.pid or "-"), ready, component.url)
    out.print(table)
    for group, count in status.rule_groups.items():
        out.print(f"rule group {group}: {count} rules loaded")
    targets = Table(title="scrape targets")
    for column in ("job", "instance", "health", "last error"):
        targets.add_column(column)
    for target in status.targets:
        health = "[green]up[/]" if target.health == "up" else f"[red]{target.health}[/]"
        targets.add_row(target.job, target.instance, health, target.last_error)
    if status.targets:
        out.print(targets)
    for alert in status.alerts:
        where = " ".join(alert.labels[key] for key in ("namespace", "job", "instance") if key in alert.labels)
        out.print(f"alert {alert.name} [{alert.state}] {where}", markup=False)
    out.print(f"notifications received by the webhook: {status.notifications_received}")


# --- the SLO report --------------------------------------------------------------------------------------
def _default_prometheus_url() -> str:
    from gxlib.monitoring.settings import MonitoringSettings

    stack = MonitoringSettings().local_stack
    return f"http://{stack.host}:{stack.prometheus_port}"


def _window(_ctx: click.Context, _param: click.Parameter, value: str) -> timedelta:
    from gxlib.monitoring.queries import parse_duration

    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc


@monitoring.command("report")
@click.option("--out", "out_path", type=click.Path(path_type=Path, dir_okay=False), required=True,
              help="The HTML file to write (one self-contained file: plotly.js inlined, no CDN).")
@click.option("--window", default="1h", show_default=True, callback=_window,
              help="How far back the time-series charts reach (30m, 1h, 6h, 1d, 1h30m).")
@click.option("--prometheus-url", default=None,
              help="Prometheus base URL [default: the local stack's, http://127.0.0.1:19090; the port follows "
                   "GX_MONITORING_LOCAL_STACK__PROMETHEUS_PORT].")
@click.option("--namespace", default=".*", show_default=True,
              help="Regex of the backend namespaces to include (the dashboard's namespace variable).")
def monitoring_report(out_path: Path, window: timedelta, prometheus_url: str | None, namespace: str) -> None:
    """Write the SLO report: the 4 SLO gauges, projection lag, outbox queue, Fabric tx duration, scrape targets
    and every alert rule's state, from a live Prometheus. Series without data are marked "no data"."""
    from gxlib.monitoring.report import build_slo_report

    url = prometheus_url or _default_prometheus_url()
    data = build_slo_report(url, out_path, window, namespace=namespace)  # a PrometheusError reaches `gx`'s handler
    for _, row in data.slos.iterrows():
        out.print(f"{row['title']:<26} {row['status']}")
    firing = int((data.alerts["state"] == "firing").sum()) if not data.alerts.empty else 0
    out.print(f"{len(data.alerts)} alert rules, {firing} firing · {len(data.targets)} scrape targets")
    err.print(f"[green]wrote[/] {escape(str(out_path))}")
