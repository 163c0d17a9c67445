"""The local platform: the monitoring artifacts as the stack's files, and a reload of a real local Prometheus (Debian's
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


def _platform(stack: LocalMonitoringStack) -> LocalPlatform:
    return LocalPlatform(stack.config, stack.devnet)


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
    _platform(running_stack).reload_prometheus(method)
    deadline = time.monotonic() + 15
    while _last_reload(running_stack) <= before:
        assert time.monotonic() < deadline, f"Prometheus did not reload after {method.value}"
        time.sleep(0.2)


def test_reload_without_a_running_prometheus_says_how_to_start_it(tmp_path: Path) -> None:
    with pytest.raises(PrometheusReloadError, match="gx monitoring up"):
        _platform(_stack(tmp_path / "state")).reload_prometheus()


def test_write_deploys_the_artifacts_once_and_they_then_read_unchanged(tmp_path: Path) -> None:
    platform = _platform(_stack(tmp_path / "state"))
    artifacts = platform.artifacts()
    assert [a.state for a in artifacts] == ["new", "new", "new"]
    assert platform.write(artifacts) == [a.location for a in artifacts]
    assert [a.state for a in platform.artifacts()] == ["unchanged", "unchanged", "unchanged"]
    assert all(Path(a.location).read_text(encoding="utf-8") == a.rendered for a in artifacts)


def test_local_platform_does_not_pretend_to_roll_chaincode(tmp_path: Path) -> None:
    with pytest.raises(PlatformError, match="no chaincode Deployments"):
        _platform(_stack(tmp_path / "state")).roll_chaincode({"org1": "gxtv3_1.1:00"})
