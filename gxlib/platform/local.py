"""The platform on the local profile: the artifacts are files in the repository, Prometheus is the local stack.

Rolling the chaincode is not done here: locally the chaincode servers are processes that
``gxlib.chaincode.deploy`` restarts as part of the upgrade itself.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx

from gxlib.monitoring.render import Artifact, stale_artifacts, write_artifacts
from gxlib.monitoring.stack import PROMETHEUS, LocalMonitoringStack
from gxlib.platform.base import AppliedObject, ChaincodeRoll, ReloadMethod
from gxlib.platform.errors import PlatformError, PrometheusReloadError


class LocalPlatform:
    def __init__(self, root: Path, stack: LocalMonitoringStack) -> None:
        self.root = root
        self.stack = stack

    def monitoring_diff(self, artifacts: list[Artifact]) -> list[str]:
        return [str(path) for path in stale_artifacts(self.root, artifacts)]

    def deployed_artifacts(self, artifacts: list[Artifact]) -> dict[str, str | None]:
        deployed: dict[str, str | None] = {}
        for artifact in artifacts:
            target = self.root / artifact.path
            deployed[str(artifact.path)] = target.read_text(encoding="utf-8") if target.is_file() else None
        return deployed

    def apply_monitoring(self, artifacts: list[Artifact], *, dry_run: bool = False) -> list[AppliedObject]:
        stale = {str(path) for path in stale_artifacts(self.root, artifacts)}
        if not dry_run:
            write_artifacts(self.root, artifacts)
        return [AppliedObject(kind="File", name=str(a.path), namespace=None, changed=str(a.path) in stale,
                              dry_run=dry_run) for a in artifacts]

    def reload_prometheus(self, method: ReloadMethod = ReloadMethod.HTTP) -> None:
        pid = self.stack.running_pid(PROMETHEUS)
        if pid is None:
            raise PrometheusReloadError("prometheus", "local", method.value, "the local Prometheus is not running "
                                        "(start it with `gx monitoring up`)")
        if method is ReloadMethod.SIGNAL:
            os.kill(pid, signal.SIGHUP)
            return
        url = f"{self.stack.prometheus_url}/-/reload"
        try:
            response = httpx.post(url, timeout=10.0)
        except httpx.HTTPError as exc:
            raise PrometheusReloadError("prometheus", "local", f"POST {url}", str(exc)) from exc
        if response.status_code != 200:
            raise PrometheusReloadError("prometheus", "local", f"POST {url}",
                                        f"HTTP {response.status_code}: {response.text.strip()}")

    def roll_chaincode(self, package_ids: dict[str, str], *, timeout_s: float = 300.0) -> list[ChaincodeRoll]:
        raise PlatformError("the local platform has no chaincode Deployments to roll",
                            hint="locally the upgrade restarts the chaincode processes itself (gx chaincode upgrade)")
