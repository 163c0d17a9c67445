"""What an operator sees from `gx`: help that explains, errors that say what to do, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def gx(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gxlib.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, check=False, timeout=120)


def test_help_lists_the_command_groups() -> None:
    result = gx("--help")
    assert result.returncode == 0
    assert "devnet" in result.stdout and "fabric" in result.stdout


def test_devnet_help_explains_settings_and_commands() -> None:
    result = gx("devnet", "--help")
    assert result.returncode == 0
    for word in ("up", "status", "down", "logs", "env", "GX_DEVNET_PORT_OFFSET", "GX_DEVNET_CHANNEL"):
        assert word in result.stdout


def test_status_of_a_network_that_was_never_created_is_unhealthy(tmp_path: Path) -> None:
    result = gx("devnet", "status", "--json", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert status["created"] is False
    assert [n["name"] for n in status["nodes"]] == ["orderer0", "peer0-org1", "peer0-org2"]
    assert all(n["healthy"] is False and n["detail"] == "not running" for n in status["nodes"])


def test_logs_of_an_unknown_node_names_the_known_ones(tmp_path: Path) -> None:
    result = gx("devnet", "logs", "peer9", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "no node 'peer9'" in result.stderr and "peer0-org1" in result.stderr


def test_peer_cli_env_for_an_unknown_org_is_an_error(tmp_path: Path) -> None:
    result = gx("devnet", "env", "--peer-cli", "org7", "--state-dir", str(tmp_path))
    assert result.returncode == 1
    assert "org7" in result.stderr and "org1" in result.stderr


def test_invalid_setting_is_refused_with_its_name(tmp_path: Path) -> None:
    result = gx("devnet", "status", "--state-dir", str(tmp_path), env={"GX_DEVNET_CHANNEL": "Bad_Name"})
    assert result.returncode == 2
    assert "channel" in result.stderr and "not valid for Fabric" in result.stderr


def test_missing_go_stops_the_build_with_what_to_install(tmp_path: Path) -> None:
    result = gx("fabric", "build", env={"GX_FABRIC_GO_BINARY": "/nonexistent/go",
                                        "GX_FABRIC_CACHE_ROOT": str(tmp_path)})
    assert result.returncode == 1
    assert "Go was not found" in result.stderr and "install Go" in result.stderr
