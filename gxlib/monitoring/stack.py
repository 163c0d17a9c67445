"""The local monitoring stack: Debian's Prometheus and Alertmanager on loopback, plus a webhook receiver.

``gx monitoring up`` renders the local configuration with the settings in force (ports, the devnet's port
offset) into the stack's state directory and starts three processes there, detached:

* Prometheus — the local scrape jobs (backend static targets with ``namespace: backend-local``, the devnet's
  orderer and peers) and the 18 alert rules;
* Alertmanager — routes every alert to the webhook receiver (clustering off, so it binds nothing else);
* the webhook receiver (:mod:`gxlib.monitoring.webhook`) — records each notification in
  ``notifications.jsonl``.

Everything lives in one directory (config, data, logs, pid files) that ``down --purge`` removes.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import BaseModel

from gxlib.config import DevnetSettings
from gxlib.errors import GxError
from gxlib.files import LOG_FILE_MODE, open_append
from gxlib.monitoring.alertmanager import WEBHOOK_PATH, local_alertmanager_config
from gxlib.monitoring.alertmanager_client import AlertmanagerClient
from gxlib.monitoring.alerts import DeploymentTarget, rule_groups_document
from gxlib.monitoring.queries import PrometheusError, PrometheusQueries
from gxlib.monitoring.render import LOCAL_RULES_FILE, to_yaml
from gxlib.monitoring.scrape import local_prometheus_config
from gxlib.monitoring.settings import MonitoringConfig
from gxlib.monitoring.webhook import read_notifications
from gxlib.progress import Progress

PROMETHEUS, ALERTMANAGER, WEBHOOK = "prometheus", "alertmanager", "webhook"


class MonitoringStackError(GxError):
    """The local monitoring stack could not be started, reached or stopped."""


@dataclass(frozen=True)
class StackLayout:
    """Where the stack keeps everything."""

    root: Path

    @property
    def config_dir(self) -> Path:
        return self.root / "config"

    @property
    def prometheus_config(self) -> Path:
        return self.config_dir / "prometheus.yml"

    @property
    def rules_file(self) -> Path:
        return self.config_dir / "rules" / LOCAL_RULES_FILE.name

    @property
    def alertmanager_config(self) -> Path:
        return self.config_dir / "alertmanager.yml"

    @property
    def notifications_file(self) -> Path:
        return self.root / "notifications.jsonl"

    def data_dir(self, component: str) -> Path:
        return self.root / "data" / component

    def log_file(self, component: str) -> Path:
        return self.root / "logs" / f"{component}.log"

    def pid_file(self, component: str) -> Path:
        return self.root / f"{component}.pid"


@dataclass(frozen=True)
class Component:
    name: str
    command: list[str]
    port: int
    ready_url: str
    reload_url: str | None


# --- status model (also the --json schema) ---------------------------------------------------------------
class ComponentStatus(BaseModel):
    name: str
    pid: int | None
    running: bool
    ready: bool
    url: str


class TargetStatus(BaseModel):
    job: str
    instance: str
    health: str
    last_error: str


class AlertStatus(BaseModel):
    name: str
    state: str
    labels: dict[str, str]


class StackStatus(BaseModel):
    state_dir: str
    components: list[ComponentStatus]
    rule_groups: dict[str, int]  # group name → number of rules loaded
    targets: list[TargetStatus]
    alerts: list[AlertStatus]
    notifications_received: int

    @property
    def all_ready(self) -> bool:
        return bool(self.components) and all(c.running and c.ready for c in self.components)


@dataclass
class UpReport:
    started: list[str]
    reloaded: list[str]


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _pid_is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in {"Z", "X"}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return ""


class LocalMonitoringStack:
    """Start, inspect and stop the local stack described by ``config`` for the devnet of ``devnet``."""

    def __init__(self, config: MonitoringConfig, devnet: DevnetSettings, progress: Progress | None = None) -> None:
        self.config = config
        self.devnet = devnet
        self.layout = StackLayout(config.stack_state_dir)
        self.progress = progress or Progress(quiet=True)

    # --- configuration ----------------------------------------------------------------------------------
    def rendered_files(self) -> dict[Path, str]:
        """The stack's configuration files with the settings in force (ports, devnet offset)."""
        layout = self.layout
        rule_file = str(layout.rules_file.relative_to(layout.config_dir))
        return {
            layout.prometheus_config: to_yaml(local_prometheus_config(self.config, self.devnet, [rule_file])),
            layout.rules_file: to_yaml(rule_groups_document(self.config, DeploymentTarget.LOCAL)),
            layout.alertmanager_config: to_yaml(local_alertmanager_config(self.config)),
        }

    def _write_config(self) -> bool:
        changed = False
        for path, content in self.rendered_files().items():
            if path.is_file() and path.read_text(encoding="utf-8") == content:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content, encoding="utf-8")
            changed = True
        return changed

    def components(self) -> list[Component]:
        stack, layout = self.config.local_stack, self.layout
        host = stack.host
        prometheus_url = f"http://{host}:{stack.prometheus_port}"
        alertmanager_url = f"http://{host}:{stack.alertmanager_port}"
        return [
            Component(WEBHOOK, [sys.executable, "-m", "gxlib.monitoring.webhook", "--host", host,
                                "--port", str(stack.webhook_port), "--record", str(layout.notifications_file)],
                      stack.webhook_port, f"http://{host}:{stack.webhook_port}/healthz", None),
            Component(ALERTMANAGER, [
                stack.alertmanager_binary,
                f"--config.file={layout.alertmanager_config}",
                f"--storage.path={layout.data_dir(ALERTMANAGER)}",
                f"--web.listen-address={host}:{stack.alertmanager_port}",
                f"--web.external-url={alertmanager_url}",
                "--cluster.listen-address=",  # no gossip port: a single local instance
            ], stack.alertmanager_port, f"{alertmanager_url}/-/ready", f"{alertmanager_url}/-/reload"),
            Component(PROMETHEUS, [
                stack.prometheus_binary,
                f"--config.file={layout.prometheus_config}",
                f"--storage.tsdb.path={layout.data_dir(PROMETHEUS)}",
                f"--web.listen-address={host}:{stack.prometheus_port}",
                f"--web.external-url={prometheus_url}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=7d",
            ], stack.prometheus_port, f"{prometheus_url}/-/ready", f"{prometheus_url}/-/reload"),
        ]

    @property
    def prometheus_url(self) -> str:
        return f"http://{self.config.local_stack.host}:{self.config.local_stack.prometheus_port}"

    @property
    def alertmanager_url(self) -> str:
        return f"http://{self.config.local_stack.host}:{self.config.local_stack.alertmanager_port}"

    # --- processes --------------------------------------------------------------------------------------
    def running_pid(self, component: str) -> int | None:
        """The pid of ``component`` if a process of this stack (its state directory) runs it."""
        try:
            pid = int(self.layout.pid_file(component).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        if _pid_is_alive(pid) and str(self.layout.root) in _cmdline(pid):
            return pid
        return None

    def _start(self, component: Component) -> subprocess.Popen[bytes]:
        executable = component.command[0]
        if not Path(executable).is_file():
            raise MonitoringStackError(
                f"{executable} is not installed",
                hint="install Debian's prometheus and prometheus-alertmanager packages: "
                     "scripts/ensure-system-packages scripts/system-packages.txt")
        host = self.config.local_stack.host
        if not port_is_free(host, component.port):
            raise MonitoringStackError(
                f"port {component.port} on {host} ({component.name}) is already in use by another process",
                hint=f"stop it, or move the stack: GX_MONITORING_LOCAL_STACK__{component.name.upper()}_PORT=<port>")
        log_file = self.layout.log_file(component.name)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        base_env = {k: os.environ[k] for k in ("PATH", "HOME", "TMPDIR", "LANG", "PYTHONPATH") if k in os.environ}
        with open_append(log_file, LOG_FILE_MODE) as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {' '.join(component.command)}\n".encode())
            log.flush()
            process = subprocess.Popen(component.command, cwd=self.layout.root, env=base_env,
                                       stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        self.layout.pid_file(component.name).write_text(f"{process.pid}\n")
        # Reap the child if it exits while this process lives on (a test session).
        threading.Thread(target=process.wait, name=f"reap-{component.name}", daemon=True).start()
        return process

    def _unready(self, component: Component) -> str | None:
        """Why ``component`` does not answer its readiness endpoint now (``None``: ready)."""
        if component.name == PROMETHEUS:
            with PrometheusQueries(self.prometheus_url, timeout_s=2.0, retries=0) as prometheus:
                return prometheus.unready()
        if component.name == ALERTMANAGER:
            with AlertmanagerClient(self.alertmanager_url, timeout_s=2.0) as alertmanager:
                return alertmanager.unready()
        try:  # the webhook receiver: our own process, not a Prometheus or Alertmanager
            response = httpx.get(component.ready_url, timeout=2.0)
        except httpx.HTTPError as exc:
            return f"{component.ready_url}: {exc.__class__.__name__}"
        return None if response.status_code == 200 else f"{component.ready_url}: HTTP {response.status_code}"

    def _reload(self, component: Component) -> None:
        """Make a running Prometheus or Alertmanager re-read its configuration (MonitoringStackError if refused)."""
        try:
            if component.name == PROMETHEUS:
                with PrometheusQueries(self.prometheus_url, timeout_s=10.0) as prometheus:
                    prometheus.reload()
            elif component.name == ALERTMANAGER:
                with AlertmanagerClient(self.alertmanager_url, timeout_s=10.0) as alertmanager:
                    alertmanager.reload()
        except PrometheusError as exc:
            raise MonitoringStackError(f"{component.name} refused the new configuration: {exc.message}") from exc

    def _wait_ready(self, component: Component, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
        def probe() -> tuple[bool, str | None]:
            if process.poll() is not None:
                tail = self.log_tail(component.name)
                raise MonitoringStackError(
                    f"{component.name} exited during start-up (exit code {process.returncode}); "
                    f"last lines of its log:\n{tail}")
            reason = self._unready(component)
            return reason is None, reason

        self.progress.wait_until(f"{component.name} to be ready", probe, timeout_s=timeout_s)

    def log_tail(self, component: str, lines: int = 20) -> str:
        log_file = self.layout.log_file(component)
        if not log_file.is_file():
            return ""
        return "\n".join(log_file.read_text(errors="replace").splitlines()[-lines:])

    def up(self) -> UpReport:
        """Start what is not running; reload what runs if its configuration changed. Idempotent."""
        self.layout.root.mkdir(parents=True, exist_ok=True)
        config_changed = self._write_config()
        report = UpReport(started=[], reloaded=[])
        for component in self.components():
            if self.running_pid(component.name) is None:
                self._wait_ready(component, self._start(component))
                report.started.append(component.name)
            elif config_changed and component.reload_url:
                self._reload(component)
                report.reloaded.append(component.name)
        return report

    def down(self, *, purge: bool = False, timeout_s: float = 15.0) -> dict[str, int]:
        """Stop every component (SIGTERM, SIGKILL after ``timeout_s``); returns the stopped pids by name."""
        stopped: dict[str, int] = {}
        for component in reversed(self.components()):
            pid = self.running_pid(component.name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGTERM)
                deadline = time.monotonic() + timeout_s
                while _pid_is_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.1)
                if _pid_is_alive(pid):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    while _pid_is_alive(pid):
                        time.sleep(0.05)
                stopped[component.name] = pid
            self.layout.pid_file(component.name).unlink(missing_ok=True)
        if purge and self.layout.root.exists():
            shutil.rmtree(self.layout.root)
        return stopped

    # --- inspection -------------------------------------------------------------------------------------
    def status(self) -> StackStatus:
        components: list[ComponentStatus] = []
        for component in self.components():
            pid = self.running_pid(component.name)
            ready = False
            if pid is not None:
                ready = self._unready(component) is None
            base_url = component.ready_url.rsplit("/", 2)[0] if component.name != WEBHOOK else (
                f"http://{self.config.local_stack.host}:{component.port}{WEBHOOK_PATH}")
            components.append(ComponentStatus(name=component.name, pid=pid, running=pid is not None, ready=ready,
                                              url=base_url))
        rule_groups: dict[str, int] = {}
        targets: list[TargetStatus] = []
        alerts: list[AlertStatus] = []
        prometheus = next(c for c in components if c.name == PROMETHEUS)
        if prometheus.ready:
            with contextlib.suppress(PrometheusError), PrometheusQueries(self.prometheus_url, timeout_s=5.0) as client:
                rule_groups = {g["name"]: len(g["rules"]) for g in client.rule_groups()}
                targets = [TargetStatus(job=str(t["job"]), instance=str(t["instance"]), health=str(t["health"]),
                                        last_error=str(t["last_error"]))
                           for t in client.target_health().to_dict("records")]
                alerts = [AlertStatus(name=a["labels"]["alertname"], state=a["state"], labels=a["labels"])
                          for a in client.alerts()]
        return StackStatus(state_dir=str(self.layout.root), components=components, rule_groups=rule_groups,
                           targets=targets, alerts=alerts,
                           notifications_received=len(read_notifications(self.layout.notifications_file)))

    def notifications(self) -> list[dict[str, Any]]:
        return read_notifications(self.layout.notifications_file)
