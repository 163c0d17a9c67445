"""The webhook receiver records notifications; the local stack renders its config from the settings in force."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from gxlib.config import DevnetSettings
from gxlib.monitoring.settings import LocalStackSettings, MonitoringConfig
from gxlib.monitoring.stack import LocalMonitoringStack, MonitoringStackError
from gxlib.monitoring.webhook import make_handler, read_notifications


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    record = tmp_path / "notifications.jsonl"
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(record))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", record
    finally:
        server.shutdown()
        server.server_close()


def test_webhook_records_each_notification_as_a_json_line(receiver: tuple[str, Path]) -> None:
    url, record = receiver
    payload = {"status": "firing", "alerts": [{"labels": {"alertname": "BackendServiceDown"}, "status": "firing"}]}
    assert httpx.post(f"{url}/alerts", json=payload, timeout=5).status_code == 200
    assert httpx.post(f"{url}/alerts", json={**payload, "status": "resolved"}, timeout=5).status_code == 200
    recorded = read_notifications(record)
    assert [r["notification"]["status"] for r in recorded] == ["firing", "resolved"]
    assert httpx.get(f"{url}/notifications", timeout=5).json() == recorded
    assert httpx.get(f"{url}/healthz", timeout=5).json() == {"status": "ok"}


def test_webhook_refuses_what_is_not_a_notification(receiver: tuple[str, Path]) -> None:
    url, record = receiver
    assert httpx.post(f"{url}/alerts", content=b"not json", timeout=5).status_code == 400
    assert httpx.post(f"{url}/elsewhere", json={}, timeout=5).status_code == 404
    assert read_notifications(record) == []


def test_stack_config_uses_the_ports_and_devnet_offset_in_force(tmp_path: Path) -> None:
    config = MonitoringConfig(stack_state_dir=tmp_path, local_stack=LocalStackSettings(
        prometheus_port=31090, alertmanager_port=31093, webhook_port=31094))
    stack = LocalMonitoringStack(config, DevnetSettings.model_construct(port_offset=20600))
    files = {path.name: yaml.safe_load(text) for path, text in stack.rendered_files().items()}
    prometheus = files["prometheus.yml"]
    assert prometheus["rule_files"] == ["rules/gx-backend-cqrs-alerts.yml"]
    assert prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:31093"]
    peers = next(job for job in prometheus["scrape_configs"] if job["job_name"] == "fabric-peer")
    assert [c["targets"][0] for c in peers["static_configs"]] == ["127.0.0.1:30044", "127.0.0.1:30045"]
    assert files["alertmanager.yml"]["receivers"][0]["webhook_configs"][0]["url"] == "http://127.0.0.1:31094/alerts"
    assert len(files["gx-backend-cqrs-alerts.yml"]["groups"][0]["rules"]) == 18


def test_stack_refuses_a_busy_port_and_names_the_setting(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        config = MonitoringConfig(stack_state_dir=tmp_path, local_stack=LocalStackSettings(webhook_port=port))
        stack = LocalMonitoringStack(config, DevnetSettings.model_construct())
        with pytest.raises(MonitoringStackError) as refused:
            stack.up()
    assert f"port {port}" in refused.value.message
    assert "GX_MONITORING_LOCAL_STACK__WEBHOOK_PORT" in (refused.value.hint or "")
    assert stack.running_pid("webhook") is None


def test_status_of_a_stack_that_never_ran_reports_nothing_running(tmp_path: Path) -> None:
    stack = LocalMonitoringStack(MonitoringConfig(stack_state_dir=tmp_path), DevnetSettings.model_construct())
    status = stack.status()
    assert not status.all_ready
    assert [c.running for c in status.components] == [False, False, False]
    assert status.rule_groups == {} and status.notifications_received == 0
