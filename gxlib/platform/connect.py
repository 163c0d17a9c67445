"""The one entry point to where the system runs: ``connect(env, ...)`` gives the environment's :class:`Platform` —
the local monitoring stack on ``local``, the cluster of the kubeconfig on devnet/testnet/mainnet — or raises
:class:`gxlib.errors.Unavailable` naming the parameter to fix (kubeconfig, kube_context, prometheus_url, ...).

    platform = connect(Environment.DEVNET, kubeconfig=Path("~/.kube/dev"), kube_context="dev")
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gxlib.backend.local import devnet_api_token_file
from gxlib.backend.settings import BackendSettings
from gxlib.config import DevnetSettings, Environment
from gxlib.devnet.network import Devnet
from gxlib.monitoring.settings import MonitoringSettings
from gxlib.platform.base import Platform, ReloadMethod
from gxlib.platform.kubernetes_platform import KubernetesPlatform
from gxlib.platform.local import LocalPlatform
from gxlib.platform.settings import platform_settings
from gxlib.progress import Progress


def local_platform(*, monitoring_state_dir: Path | None = None, devnet_state_dir: Path | None = None,
                   prometheus_url: str | None = None, alertmanager_url: str | None = None) -> LocalPlatform:
    """The local monitoring stack, rendered with the devnet's settings in force (port offset, channel: its state
    directory has them) so that an unchanged checkout finds the stack's own files unchanged."""
    monitoring = MonitoringSettings(stack_state_dir=monitoring_state_dir) if monitoring_state_dir \
        else MonitoringSettings()
    given = DevnetSettings(state_dir=devnet_state_dir) if devnet_state_dir else DevnetSettings()
    devnet = Devnet(given, progress=Progress(quiet=True)).settings
    return LocalPlatform(monitoring, devnet, prometheus_url=prometheus_url, alertmanager_url=alertmanager_url)


@dataclass(frozen=True)
class LocalBackendEndpoints:
    """Where the local backend (`gx backend up`) answers: its settings in force (``GX_BACKEND_*``)."""

    api_url: str
    submitter_metrics_url: str


def local_backend_endpoints() -> LocalBackendEndpoints:
    settings = BackendSettings()
    return LocalBackendEndpoints(api_url=f"http://{settings.api_host}:{settings.api_port}",
                                 submitter_metrics_url=f"http://{settings.metrics_host}:"
                                                       f"{settings.submitter_metrics_port}")


def local_api_token(devnet_state_dir: Path | None = None) -> str | None:
    """The admin token `gx backend up` generated for the local devnet (None: there is none to read)."""
    path = devnet_api_token_file(devnet_state_dir or DevnetSettings().state_dir)
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def connect(env: Environment, *, kubeconfig: Path | None = None, kube_context: str | None = None,
            prometheus_url: str | None = None, alertmanager_url: str | None = None,
            monitoring_state_dir: Path | None = None, devnet_state_dir: Path | None = None,
            reload_method: ReloadMethod = ReloadMethod.HTTP, reload_timeout_s: float = 180.0,
            progress: Progress | None = None) -> Platform:
    """The platform of ``env``; Unavailable (naming the parameter) when it cannot be reached from here."""
    if env is Environment.LOCAL:
        return local_platform(monitoring_state_dir=monitoring_state_dir, devnet_state_dir=devnet_state_dir,
                              prometheus_url=prometheus_url, alertmanager_url=alertmanager_url)
    return KubernetesPlatform.connect(env, platform_settings(kubeconfig, kube_context), prometheus_url=prometheus_url,
                                      reload_method=reload_method, reload_timeout_s=reload_timeout_s,
                                      progress=progress)
