"""The local counterpart of the platform: artifacts as files, and a reload of a real local Prometheus (Debian's
/usr/bin/prometheus, started on loopback with free ports) by its lifecycle endpoint and by SIGHUP."""

from __future__ import annotations

import contextlib
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gxlib.monitoring.render import committed_artifacts
from gxlib.monitoring.settings import LocalStackSettings, MonitoringConfig, committed_devnet_settings
from gxlib.monitoring.stack import LocalMonitoringStack
from gxlib.platform.base import ReloadMethod
from gxlib.platform.errors import PlatformError, PrometheusReloadError
from gxlib.platform.local import LocalPlatform


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as sockets:
        ports = []
        for _ in range(count):
            sock = sockets.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            sock.bind(("127.0.0.1", 0))
            ports.append(int(sock.getsockname()[1]))
    return ports


def _stack(state_dir: Path) -> LocalMonitoringStack:
    prometheus, alertmanager, webhook = _free_ports(3)
    config = MonitoringConfig(stack_state_dir=state_dir, local_stack=LocalStackSettings(
        prometheus_port=prometheus, alertmanager_port=alertmanager, webhook_port=webhook))
    return LocalMonitoringStack(config, committed_devnet_settings())


@pytest.fixture(scope="module")
def running_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalMonitoringStack]:
    stack = _stack(tmp_path_factory.mktemp("monitoring"))
    try:
        stack.up()
        yield stack
    finally:
        stack.down()
        assert stack.running_pid("prometheus") is None


def _last_reload(stack: LocalMonitoringStack) -> float:
    text = httpx.get(f"{stack.prometheus_url}/metrics", timeout=5).text
    match = re.search(r"^prometheus_config_last_reload_success_timestamp_seconds (\S+)$", text, re.MULTILINE)
    assert match, "Prometheus does not export its last reload time"
    return float(match.group(1))


@pytest.mark.parametrize("method", [ReloadMethod.HTTP, ReloadMethod.SIGNAL], ids=lambda m: m.value)
def test_reload_makes_the_local_prometheus_reload(running_stack: LocalMonitoringStack, tmp_path: Path,
                                                  method: ReloadMethod) -> None:
    before = _last_reload(running_stack)
    time.sleep(1.1)  # the exported time has one-second resolution
    LocalPlatform(tmp_path, running_stack).reload_prometheus(method)
    deadline = time.monotonic() + 15
    while _last_reload(running_stack) <= before:
        assert time.monotonic() < deadline, f"Prometheus did not reload after {method.value}"
        time.sleep(0.2)


def test_reload_without_a_running_prometheus_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(PrometheusReloadError, match="gx monitoring up"):
        LocalPlatform(tmp_path, _stack(tmp_path / "state")).reload_prometheus()


def test_apply_writes_the_artifacts_once_and_reports_what_changed(tmp_path: Path) -> None:
    platform = LocalPlatform(tmp_path, _stack(tmp_path / "state"))
    artifacts = committed_artifacts()
    assert all(content is None for content in platform.deployed_artifacts(artifacts).values())
    assert len(platform.monitoring_diff(artifacts)) == len(artifacts)
    assert platform.apply_monitoring(artifacts, dry_run=True)[0].changed
    assert not (tmp_path / artifacts[0].path).exists()
    assert all(o.changed for o in platform.apply_monitoring(artifacts))
    assert platform.monitoring_diff(artifacts) == []
    assert not any(o.changed for o in platform.apply_monitoring(artifacts))
    assert platform.deployed_artifacts(artifacts) == {str(a.path): a.content for a in artifacts}


def test_local_platform_does_not_pretend_to_roll_chaincode(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="no chaincode Deployments"):
        LocalPlatform(tmp_path, _stack(tmp_path / "state")).roll_chaincode({"org1": "gxtv3_1.1:00"})
