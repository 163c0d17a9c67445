"""`gx backend api` as a real process on loopback against PostgreSQL: serves, logs JSON, stops on SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import httpx

from gxlib.backend.pgcluster import PostgresCluster, free_port


def test_the_api_process_serves_commands_and_drains_on_sigterm(postgres_cluster: PostgresCluster) -> None:
    url = postgres_cluster.create_database("gx_api_process")
    port = free_port()
    env = {**os.environ, "GX_BACKEND_DATABASE_URL": url, "GX_BACKEND_API_TOKENS": json.dumps({"t-admin": "admin"}),
           "GX_BACKEND_API_PORT": str(port)}
    process = subprocess.Popen([sys.executable, "-c", "from gxlib.backend.cli import backend; backend(['api'])"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            assert time.monotonic() < deadline, "the API did not become ready"
            time.sleep(0.2)
        headers = {"Authorization": "Bearer t-admin"}
        command = {"type": "BOOTSTRAP_SYSTEM", "payload": {}, "idempotencyKey": "boot-1"}
        first = httpx.post(f"{base}/api/v1/commands", json=command, headers=headers, timeout=5)
        again = httpx.post(f"{base}/api/v1/commands", json=command, headers=headers, timeout=5)
        assert first.status_code == again.status_code == 202
        assert first.json()["commandId"] == again.json()["commandId"]
        metrics = httpx.get(f"{base}/metrics", timeout=5).text
        sample = 'http_requests_total{endpoint="/api/v1/commands",method="POST",service="gx-backend-api",status="202"}'
        assert f"{sample} 2.0" in metrics
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            _, stderr = process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    # uvicorn shuts down gracefully, then re-raises the signal it caught: exit by SIGTERM after a clean drain.
    assert process.returncode in (0, -signal.SIGTERM), stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert any("Finished server process" in line["msg"] for line in lines), stderr
    assert any(line.get("logger") == "gxlib.backend.api.access" and line.get("status") == 202 for line in lines)
